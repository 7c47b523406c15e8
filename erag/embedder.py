"""Dense embeddings with sentence-transformers, L2-normalised so cosine is a dot product.

Example:
    >>> embedder = Embedder.from_settings(get_settings())
    >>> embedder.run(["How many days of parental leave?"]).shape
    (1, 768)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from erag.gguf_encoder import load_nomic_encoder
from erag.models import load_int8_encoder, load_sentence_transformer, nomic_dims
from erag.nomic_onnx import load_nomic_int8
from erag.settings import Settings


class Embedder:
    """Embed documents and queries with one sentence-transformers model, in float32 (PyTorch) or int8 (ONNX),
    or the packaged nomic-embed-text-v1.5 (768-d, or 256-d as "nomic-embed-text-v1.5-256"): its int8 ONNX copy, or
    at float32 precision its f16 GGUF on llama.cpp.

    The int8 copy gives the same rankings (mean cosine to float32 0.994 for mpnet, 0.996 for MiniLM, 0.995 for
    nomic against llama.cpp's f16), so an index built with one precision is searched with the other: `precision`
    is a speed setting, not part of the index identity. A model with prompts (nomic: `search_query: `,
    `search_document: `) embeds chunks with `run` and queries with `run_queries`; for the others the two are the same.
    """

    def __init__(self, model, name: str, batch_size: int = 32, precision: str = "float32") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.name = name
        self.batch_size = batch_size
        self.precision = precision
        self.dim = int(model.get_embedding_dimension())

    @classmethod
    def from_settings(cls, settings: Settings, name: str | None = None) -> Embedder:
        name = name or settings.embedder
        if nomic_dims(name) is not None:
            if settings.embed_precision == "int8":
                model = load_nomic_int8(name, settings.model_cache, settings.torch_threads)
                return cls(model, name, settings.embed_batch_size, "int8")
            # The reference: llama.cpp runs the f16 GGUF as shipped; "f16" keeps the eval cache's key honest.
            model = load_nomic_encoder(name, settings.model_cache, settings.torch_threads)
            return cls(model, name, settings.embed_batch_size, "f16")
        if settings.embed_precision == "int8":
            model = load_int8_encoder(name, settings.model_cache, settings.torch_threads)
        else:
            model = load_sentence_transformer(name, settings.model_cache, settings.torch_threads)
        return cls(model, name, settings.embed_batch_size, settings.embed_precision)

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def run(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Embeddings of chunks (documents)."""
        return self._encode(texts, "document", show_progress)

    def run_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of search queries: with the model's query prompt when it has one."""
        return self._encode(texts, "query", False)

    def _encode(self, texts: Sequence[str], kind: str, show_progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # sentence-transformers refuses a prompt name its model does not define, and MiniLM and mpnet define none.
        prompt = {"prompt_name": kind} if kind in (getattr(self.model, "prompts", None) or {}) else {}
        return self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
            **prompt,
        ).astype(np.float32, copy=False)
