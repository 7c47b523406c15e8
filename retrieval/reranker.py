"""Cross-encoder reranking of the top fused candidates, with its scores kept beside the fused ones.

Example:
    >>> reranker = Reranker.from_name("all-MiniLM-L6-v2", cache=settings.model_cache, top_n=30, fused_weight=0.0)
    >>> hits = reranker.run("How many days of parental leave?", hits)
    >>> hits[0].scores
    {'fused': 0.032, 'rerank': 4.1}
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from erag.models import resolve_model_path
from erag.schema import Hit
from erag.settings import Settings


def _default(field: str):
    """The Settings default of `field`: a Reranker built without it behaves like one built from the settings."""
    return Settings.model_fields[field].default


class Reranker:
    """Score (query, chunk) pairs with a sentence-transformers CrossEncoder and reorder by that score."""

    FUSIONS = ("rank", "score")

    def __init__(self, model, top_n: int = _default("rerank_top_n"), batch_size: int = _default("rerank_batch_size"),
                 fused_weight: float = _default("rerank_fused_weight"), k: int = _default("rrf_k"),
                 fusion: str = _default("rerank_fusion")) -> None:
        if top_n < 1 or batch_size < 1:
            raise ValueError(f"top_n and batch_size must be >= 1, got {top_n} and {batch_size}")
        if fused_weight < 0 or k < 1:
            raise ValueError(f"fused_weight must be >= 0 and k >= 1, got {fused_weight} and {k}")
        if fusion not in self.FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(self.FUSIONS)}, got '{fusion}'")
        self.model = model
        self.top_n = top_n
        self.batch_size = batch_size
        self.fused_weight = fused_weight
        self.k = k
        self.fusion = fusion

    @classmethod
    def from_name(
        cls, name: str, cache, top_n: int = _default("rerank_top_n"), batch_size: int = _default("rerank_batch_size"),
        threads: int = _default("torch_threads"), max_tokens: int = _default("rerank_max_tokens"),
        precision: str = _default("rerank_precision"), fused_weight: float = _default("rerank_fused_weight"),
        k: int = _default("rrf_k"), fusion: str = _default("rerank_fusion"),
    ) -> Reranker:
        """Load any CrossEncoder-compatible model by name or path (packaged names resolve offline).

        `precision="int8"` runs an ONNX Runtime int8 copy built once from the weights (a local folder):
        about 3x cheaper per pair on CPU, which is what keeps reranking the top 30 under half a second.
        """
        if precision == "int8":
            import sys
            from pathlib import Path

            from erag.onnx_encoder import OnnxCrossEncoder

            source = Path(resolve_model_path(name, cache))
            if not source.is_dir():
                raise ValueError(f"int8 reranking needs a local model folder, got '{name}' (ERAG_RERANK_PRECISION="
                                 "float32 runs any CrossEncoder name)")
            model = OnnxCrossEncoder.load(source, cache, threads, max_tokens, log=lambda m: print(m, file=sys.stderr))
            return cls(model, top_n, batch_size, fused_weight, k, fusion)
        import torch
        from sentence_transformers import CrossEncoder

        torch.set_num_threads(threads)
        # num_labels=1: one relevance score per pair, also when the weights carry no classifier head.
        # max_length bounds the cost: pairs are cut to the chunk size the index was built with, not 512.
        model = CrossEncoder(resolve_model_path(name, cache), num_labels=1, device="cpu", max_length=max_tokens)
        return cls(model, top_n, batch_size, fused_weight, k, fusion)

    def run(self, query: str, hits: list[Hit]) -> list[Hit]:
        """The top `top_n` hits reordered by cross-encoder score (or by its rank fused with the first-pass
        rank when `fused_weight` > 0); the rest follow in their fused order."""
        head, tail = hits[: self.top_n], hits[self.top_n :]
        if not head:
            return hits
        scores = self.model.predict(
            [(query, h.text) for h in head], batch_size=self.batch_size, show_progress_bar=False
        )
        reranked = []
        for hit, score in zip(head, scores, strict=True):
            reranked.append(replace(hit, scores={**hit.scores, "rerank": float(score)}))
        by_score = sorted(range(len(reranked)), key=lambda i: reranked[i].scores["rerank"], reverse=True)
        if self.fused_weight:
            blended = self._blend(head, np.asarray([h.scores["rerank"] for h in reranked], dtype=float), by_score)
            for i, value in enumerate(blended):
                reranked[i].scores["blend"] = float(value)
            by_score = sorted(range(len(reranked)), key=lambda i: blended[i], reverse=True)
        return [reranked[i] for i in by_score] + tail

    def _blend(self, head: list[Hit], rerank: np.ndarray, by_score: list[int]) -> np.ndarray:
        """The cross-encoder's vote plus `fused_weight` times the first pass's, per candidate.

        Keeping the first pass in the vote stops a reranker that is unsure (small, trained on little data)
        from pushing a passage that both retrievers agreed on out of the top. "rank" adds reciprocal ranks
        (RRF); "score" adds z-normalised scores, which keeps how far apart the first pass put two candidates
        (its fused score is high when dense and BM25 agree). With the shipped model, score fusion at weights
        1 to 4 measures within noise in domain and more weight loses less out of domain
        (docs/eval/reranker/sweep.md).
        """
        if self.fusion == "score":
            first = np.asarray([h.score for h in head], dtype=float)
            return _z(rerank) + self.fused_weight * _z(first)
        ranks = np.empty(len(head))
        ranks[by_score] = np.arange(len(head))
        return 1 / (self.k + ranks + 1) + self.fused_weight / (self.k + np.arange(len(head)) + 1)


def _z(values: np.ndarray) -> np.ndarray:
    """Scores on one scale per query (the cross-encoder's sigmoid and the engine's RRF sums are unrelated)."""
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)
