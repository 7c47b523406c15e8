"""Sentence embeddings from a GGUF embedding model through llama.cpp, with the surface `erag.embedder.Embedder`
wraps around a sentence-transformers model (`encode`, `tokenizer`, `max_seq_length`, `get_embedding_dimension`).

Example:
    >>> encoder = load_nomic_encoder("nomic-embed-text-v1.5-256", get_settings().model_cache)
    >>> queries = encoder.encode(["How many days of parental leave?"], prompt_name="query")
    >>> passages = encoder.encode(["Primary carers receive 26 weeks of leave."], prompt_name="document")
    >>> queries.shape, float(queries[0] @ passages[0]) > 0.5
    ((1, 256), True)

nomic-embed-text-v1.5 (Apache-2.0; the f16 GGUF of erag/nomic_model.py) reads `search_query: ` before a query
and `search_document: ` before a passage, pools by the mean of its token vectors (the GGUF says so and the
load checks it) and was trained Matryoshka-style, so its first 256 dimensions make a smaller embedding of
their own. Its vocabulary is bert-base-uncased WordPiece, the same 30,522 entries as the packaged
all-MiniLM-L6-v2, whose Hugging Face tokenizer therefore counts tokens for the chunker exactly as llama.cpp
cuts them (tests/test_gguf_encoder.py checks both).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from erag.model_files import ModelNotAvailable
from erag.models import packaged_nomic_dims, resolve_model_path

NOMIC_PROMPTS = {"query": "search_query: ", "document": "search_document: "}
# Text tokens per chunk, prompt and [CLS]/[SEP] not counted. The model reads 2,048, but the product's chunk
# settings stop at 512 (ERAG_CHUNK_MAX_TOKENS, le=512) and its default chunks are 256; 512 keeps the
# whole chunk range open without paying for windows nothing fills: a 256-token text embeds 4x slower than a
# 64-token one here (bench/embedder_bakeoff.py), so longer windows would cost more than they could help.
NOMIC_MAX_SEQ_LENGTH = 512
# Short texts share a llama.cpp call up to this many tokens; longer ones get a call each. The encoder attends
# over the whole call (a mask keeps the texts apart, but the work is done), so packing pays only while the
# per-call overhead outweighs that quadratic term. Measured on 2 cores (bench/embedder_bakeoff.py --packing):
# 8-token texts ran 1.8x faster packed into 256-token calls, 64-256-token texts the same (within 7%), and
# packing 64-256-token texts into 768- or 2,048-token calls made them 13-47% slower.
DEFAULT_PACK_TOKENS = 256
_LAYER_NORM_EPS = 1e-5  # torch.nn.functional.layer_norm's default, which nomic's Matryoshka recipe calls


class GgufSentenceEncoder:
    """One llama.cpp embedding context; `encode` is safe to call from several threads (they take turns).

    `dims` below the model's width applies nomic's Matryoshka recipe: layer norm over the full vector, keep
    the first `dims` values, then L2-normalise. At full width the vector is the plain mean-pooled one, as
    sentence-transformers gives it (a layer norm there would move it for nothing).
    """

    def __init__(
        self,
        model_path: Path,
        tokenizer_path: Path,
        *,
        dims: int | None = None,
        max_seq_length: int = NOMIC_MAX_SEQ_LENGTH,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = "document",
        threads: int = 2,
        pack_tokens: int = DEFAULT_PACK_TOKENS,
        context_tokens: int | None = None,
    ) -> None:
        try:
            import llama_cpp
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise ModelNotAvailable("llama-cpp-python is not installed: run `make install`") from exc
        self.prompts = dict(NOMIC_PROMPTS if prompts is None else prompts)
        if default_prompt_name is not None and default_prompt_name not in self.prompts:
            raise ValueError(f"default_prompt_name '{default_prompt_name}' is not one of {sorted(self.prompts)}")
        self.default_prompt_name = default_prompt_name
        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path))
        self.max_seq_length = int(max_seq_length)
        longest_prompt = max((len(self.tokenizer.tokenize(p)) for p in self.prompts.values()), default=0)
        # The longest text llama.cpp may see: a full chunk, its prompt, [CLS] and [SEP].
        self.window = self.max_seq_length + longest_prompt + 2
        # llama.cpp pads the context to a multiple of 256 and then aborts the whole process (GGML_ASSERT in
        # build_pooling) when the batch does not match it: measured with 518, 600 and 1,000 tokens here.
        self.context_tokens = -(-max(self.window, context_tokens or 0) // 256) * 256
        self.pack_tokens = int(pack_tokens)
        try:
            # A non-causal encoder must see each text whole in one micro-batch: n_ubatch = n_batch = n_ctx.
            self.model = llama_cpp.Llama(
                model_path=str(model_path), embedding=True, n_ctx=self.context_tokens, n_batch=self.context_tokens,
                n_ubatch=self.context_tokens, n_threads=threads, n_threads_batch=threads, verbose=False,
            )
        except Exception as exc:  # llama.cpp reports a damaged file as a bare ValueError
            raise ModelNotAvailable(f"embedding model {model_path} could not be loaded ({exc}); it may be damaged") \
                from exc
        if self.model.pooling_type() != llama_cpp.LLAMA_POOLING_TYPE_MEAN:
            raise ModelNotAvailable(f"{model_path} pools by type {self.model.pooling_type()}, not by the mean")
        self.path = Path(model_path)
        self.full_dim = int(self.model.n_embd())
        self.dim = self.full_dim if dims is None else int(dims)
        if not 32 <= self.dim <= self.full_dim:
            raise ValueError(f"dims must be between 32 and {self.full_dim}, got {dims}")
        self._lock = threading.Lock()  # a llama.cpp context is not safe to use from two threads at once

    def get_embedding_dimension(self) -> int:
        return self.dim

    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = True,
        convert_to_numpy: bool = True,
        show_progress_bar: bool = False,
        prompt_name: str | None = None,
        prompt: str | None = None,
        **_ignored,
    ) -> np.ndarray:
        """Embeddings as a float32 array, (n, dims), or (dims,) for a single string.

        `prompt_name` ("query" or "document"; default `default_prompt_name`) or a literal `prompt` is put
        before every text, as sentence-transformers does. `batch_size` bounds the texts per llama.cpp call
        (`pack_tokens` bounds their tokens); `convert_to_numpy` and `show_progress_bar` are accepted for the
        same call signature: the result is always numpy, and nothing is printed.
        """
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        prefix = self._prefix(prompt_name, prompt)
        prepared = [self._fit(prefix + text) for text in texts]
        pooled = np.zeros((len(texts), self.full_dim), dtype=np.float32)
        with self._lock:
            for rows in self._calls([n for _, n in prepared], batch_size):
                vectors = self.model.embed([prepared[i][0] for i in rows], normalize=False, truncate=False)
                pooled[rows] = np.asarray(vectors, dtype=np.float32)
        out = matryoshka(pooled, self.dim)
        if normalize_embeddings:
            out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-12
        return out[0] if single else out

    def count_tokens(self, text: str) -> int:
        """Tokens llama.cpp evaluates for `text` as given, with [CLS] and [SEP]."""
        return len(self.model.tokenize(text.encode("utf-8"), add_bos=True, special=False))

    def close(self) -> None:
        with self._lock:
            self.model.close()

    def _prefix(self, prompt_name: str | None, prompt: str | None) -> str:
        return prompt_prefix(self.prompts, prompt_name or self.default_prompt_name, prompt)

    def _fit(self, text: str) -> tuple[str, int]:
        """The text, cut to the window, and its token count. llama.cpp's own cut would drop the closing [SEP],
        so a longer text is cut here, at the character where its last kept token ends (the Hugging Face
        tokenizer's offsets; it splits as llama.cpp does), which keeps the text as written."""
        count = self.count_tokens(text)
        if count <= self.window:
            return text, count
        offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        keep = min(self.window - 2, len(offsets))
        while True:
            cut = text[: offsets[keep - 1][1]]
            count = self.count_tokens(cut)
            if count <= self.window or keep == 1:
                return cut, count
            keep = max(1, keep - (count - self.window))

    def _calls(self, lengths: list[int], batch_size: int):
        """Row groups for one llama.cpp call each: similar lengths together, at most `pack_tokens` tokens (a
        longer text alone)."""
        order = np.argsort([-n for n in lengths], kind="stable")
        group: list[int] = []
        tokens = 0
        for i in order:
            if group and (tokens + lengths[i] > self.pack_tokens or len(group) >= batch_size):
                yield np.asarray(group)
                group, tokens = [], 0
            group.append(int(i))
            tokens += lengths[i]
        if group:
            yield np.asarray(group)


def prompt_prefix(prompts: dict[str, str], name: str | None, prompt: str | None = None) -> str:
    """The text put before every input: a literal `prompt`, else the prompt called `name` ("" for None), as
    sentence-transformers reads `prompt` and `prompt_name`."""
    if prompt is not None:
        return prompt
    if name is None:
        return ""
    if name not in prompts:
        raise ValueError(f"prompt_name '{name}' is not one of {sorted(prompts)}")
    return prompts[name]


def matryoshka(pooled: np.ndarray, dims: int) -> np.ndarray:
    """Mean-pooled vectors cut to `dims` the nomic v1.5 way (layer norm over the full vector, then the first `dims`
    values; the caller L2-normalises); at full width they are returned as they are.

    >>> matryoshka(np.ones((2, 768), dtype=np.float32) + np.arange(768), 256).shape
    (2, 256)
    """
    if dims >= pooled.shape[1]:
        return pooled
    centred = pooled - pooled.mean(axis=1, keepdims=True)
    normed = centred / np.sqrt((centred**2).mean(axis=1, keepdims=True) + _LAYER_NORM_EPS)
    return np.ascontiguousarray(normed[:, :dims], dtype=np.float32)


def nomic_tokenizer_path(cache: Path) -> Path:
    """The packaged all-MiniLM-L6-v2 folder, whose bert-base-uncased WordPiece tokenizer nomic v1.5 shares."""
    return Path(resolve_model_path("all-MiniLM-L6-v2", cache))


def load_nomic_encoder(name: str, cache: Path, threads: int = 2) -> GgufSentenceEncoder:
    """The packaged nomic-embed-text-v1.5 at the width its name asks for (768, or 256 for "...-256"), loaded
    once per process and width whichever alias names it."""
    return _load_nomic(packaged_nomic_dims(name), Path(cache), threads)


@lru_cache(maxsize=2)
def _load_nomic(dims: int, cache: Path, threads: int) -> GgufSentenceEncoder:
    from erag.nomic_model import nomic_gguf_path

    return GgufSentenceEncoder(nomic_gguf_path(cache), nomic_tokenizer_path(cache), dims=dims, threads=threads)
