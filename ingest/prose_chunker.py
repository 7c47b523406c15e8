"""Semantic chunking of prose: cut where neighbouring sentences stop talking about the same thing.

Example:
    >>> chunker = SemanticChunker(tokenizer=model.tokenizer, embed=fast_model.encode, max_tokens=256)
    >>> pieces = chunker.run([TextBlock("Leave ... Pay ...", headings=["Parental leave"])])
    >>> pieces[0].headings
    ['Parental leave']

Why not langchain's SemanticChunker: it embeds every sentence of every document with the main
embedder and cuts on a global percentile, with no token bound. Here only blocks that exceed the
token budget are embedded (with a fast model), cuts are made recursively at the largest similarity
drop so every piece fits the embedder, and small neighbouring paragraphs of one section are merged
so no chunk is a lonely sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from langchain_text_splitters import RecursiveCharacterTextSplitter

from erag.schema import TextBlock

EmbedFn = Callable[[list[str]], np.ndarray]
_WHITESPACE = re.compile(r"[ \t\r\f\v]+")
_SOFT_BREAK = re.compile(r"(?<![\n.:;!?])\n(?!\n|\s*[-*•\d])")


@dataclass
class ProsePiece:
    """A chunk of prose before embedding: body text, the headings above it, and its page."""

    body: str
    headings: list[str] = field(default_factory=list)
    page: int | None = None
    tokens: int = 0


def _normalise(text: str) -> str:
    """Join lines a PDF or a text file wrapped mid-sentence, and collapse runs of spaces."""
    return _WHITESPACE.sub(" ", _SOFT_BREAK.sub(" ", text)).strip()


def _sentence_splitter():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.max_length = 5_000_000
    return nlp


class SemanticChunker:
    """Split prose blocks into token-bounded pieces at semantic breakpoints."""

    def __init__(
        self,
        tokenizer,
        embed: EmbedFn | None,
        max_tokens: int = 256,
        min_tokens: int = 48,
        breakpoint_percentile: float = 80.0,
    ) -> None:
        if not 0 < min_tokens < max_tokens:
            raise ValueError(f"need 0 < min_tokens < max_tokens, got {min_tokens} and {max_tokens}")
        if not 0 < breakpoint_percentile < 100:
            raise ValueError(f"breakpoint_percentile must be in (0, 100), got {breakpoint_percentile}")
        self.tokenizer = tokenizer
        self.embed = embed
        self.max_tokens = max_tokens
        self.min_tokens = min_tokens
        self.percentile = breakpoint_percentile
        self._nlp = _sentence_splitter()
        self._splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer, chunk_size=max_tokens, chunk_overlap=0
        )
        # Sentence vectors by text. Embedding one document's sentences per call leaves the model
        # mostly idle on overhead; `warm` embeds the sentences of many blocks in one batch first.
        self._vectors: dict[str, np.ndarray] = {}

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def run(self, blocks: Sequence[TextBlock], budget: int | None = None) -> list[ProsePiece]:
        """Pieces of at most `budget` tokens (default: max_tokens), in reading order."""
        budget = budget or self.max_tokens
        pieces: list[ProsePiece] = []
        for block in blocks:
            text = _normalise(block.text)
            if not text:
                continue
            for body, tokens in self._split_block(text, budget):
                pieces.append(ProsePiece(body=body, headings=list(block.headings), page=block.page, tokens=tokens))
        return self._merge_small(pieces, budget)

    def warm(self, blocks: Sequence[TextBlock], budget: int | None = None) -> None:
        """Embed, in one batch, the sentences of every block that `run` will have to split."""
        if self.embed is None:
            return
        budget = budget or self.max_tokens
        texts = [t for t in (_normalise(b.text) for b in blocks) if t]
        long_texts = [t for t, n in zip(texts, self.count_tokens(texts), strict=True) if n > budget]
        self._cache_vectors([s for t in long_texts for s in self._sentences(t)])

    def forget(self) -> None:
        """Drop cached sentence vectors (call between batches of documents to bound memory)."""
        self._vectors.clear()

    def _cache_vectors(self, sentences: list[str]) -> None:
        """Embed, in one call, the sentences not cached yet."""
        missing = list(dict.fromkeys(s for s in sentences if s not in self._vectors))
        if missing and self.embed is not None:
            self._vectors.update(zip(missing, np.asarray(self.embed(missing), dtype=np.float32), strict=True))

    def _embed_sentences(self, sentences: list[str]) -> np.ndarray:
        self._cache_vectors(sentences)
        return np.stack([self._vectors[s] for s in sentences])

    def _sentences(self, text: str) -> list[str]:
        sentences = [s.text.strip() for s in self._nlp(text).sents if s.text.strip()]
        out: list[str] = []
        for sentence, tokens in zip(sentences, self.count_tokens(sentences), strict=True):
            out.extend(self._splitter.split_text(sentence) if tokens > self.max_tokens else [sentence])
        return out

    def _split_block(self, text: str, budget: int) -> list[tuple[str, int]]:
        (total,) = self.count_tokens([text])
        if total <= budget:
            return [(text, total)]
        sentences = self._sentences(text)
        tokens = self.count_tokens(sentences)
        if self.embed is not None and len(sentences) > 2:
            vectors = self._embed_sentences(sentences)
            vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
            distance = 1.0 - np.sum(vectors[:-1] * vectors[1:], axis=1)
        else:
            distance = np.zeros(max(len(sentences) - 1, 0), dtype=np.float32)
        threshold = float(np.percentile(distance, self.percentile)) if len(distance) else 1.0
        spans = self._cut(0, len(sentences), tokens, distance, threshold, budget)
        return [(" ".join(sentences[a:b]), sum(tokens[a:b])) for a, b in spans]

    def _cut(
        self, start: int, end: int, tokens: list[int], distance: np.ndarray, threshold: float, budget: int
    ) -> list[tuple[int, int]]:
        """Recursively split sentences[start:end] at the largest similarity drop until every span fits."""
        size = sum(tokens[start:end])
        if end - start <= 1:
            return [(start, end)]
        fits = size <= budget
        # Candidate cut after sentence i keeps both sides at least min_tokens long when possible.
        prefix = np.cumsum(tokens[start:end])
        candidates = [
            i for i in range(start, end - 1)
            if prefix[i - start] >= self.min_tokens and size - prefix[i - start] >= self.min_tokens
        ]
        if fits and (not candidates or max(distance[i] for i in candidates) <= threshold):
            return [(start, end)]
        if not candidates:
            if fits:
                return [(start, end)]
            # Too long and no balanced cut: cut nearest the token middle.
            candidates = list(range(start, end - 1))
            best = min(candidates, key=lambda i: abs(prefix[i - start] - size / 2))
        else:
            best = max(candidates, key=lambda i: (distance[i], -abs(prefix[i - start] - size / 2)))
        return self._cut(start, best + 1, tokens, distance, threshold, budget) + self._cut(
            best + 1, end, tokens, distance, threshold, budget
        )

    def _merge_small(self, pieces: list[ProsePiece], budget: int) -> list[ProsePiece]:
        """Join neighbouring pieces of one page: freely within a section, across sections only while small."""
        merged: list[ProsePiece] = []
        for piece in pieces:
            last = merged[-1] if merged else None
            if (
                last is not None
                and last.page == piece.page
                and last.tokens + piece.tokens + 2 <= budget
                and (last.headings == piece.headings or last.tokens < self.min_tokens)
            ):
                # A new section inside a merged chunk keeps its heading as a line of its own.
                new_section = last.headings != piece.headings and piece.headings
                joiner = f"\n{piece.headings[-1]}\n" if new_section else "\n"
                last.body = f"{last.body}{joiner}{piece.body}"
                last.tokens += piece.tokens + 2 + (len(joiner.split()) if new_section else 0)
                continue
            merged.append(piece)
        return merged
