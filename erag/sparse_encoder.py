"""BM25 as sparse vectors: Qdrant Edge's tokenizer (English stemming and stopwords) on both sides.

Documents get BM25 term-frequency weights; the engine multiplies them by IDF at query time (the
sparse vector is declared with the IDF modifier), so the index stays correct as documents come and go.
The same encoder feeds a Qdrant server, so both backends rank alike.

Example:
    >>> enc = SparseEncoder()
    >>> idx, val = enc.run("Parental leave for part-time staff")
"""

from __future__ import annotations

import qdrant_edge as qe


class SparseEncoder:
    """Text to (indices, values) for the `bm25` sparse vector."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, avg_len: float = 90.0, language: str = "english") -> None:
        try:
            self.model = qe.Bm25(qe.Bm25Config(k=k1, b=b, avg_len=avg_len, language=language))
        except ValueError as exc:
            raise ValueError(f"invalid BM25 settings (k1={k1}, b={b}, avg_len={avg_len}, {language}): {exc}") from exc

    def run(self, text: str) -> tuple[list[int], list[float]]:
        vec = self.model.embed_document(text)
        return list(vec.indices), list(vec.values)

    def query(self, text: str) -> tuple[list[int], list[float]]:
        vec = self.model.embed_query(text)
        return list(vec.indices), list(vec.values)
