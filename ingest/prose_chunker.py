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
from erag.textsafe import break_long_runs
from ingest.table_chunker import CHARS_PER_TOKEN_BOUND

EmbedFn = Callable[[list[str]], np.ndarray]
# Longest run without whitespace a block keeps (URLs are kept up to 2,048): tokenizers and text splitters
# cut at whitespace, and one endless "word" made splitting fall back to single characters (minutes for 3 MB).
MAX_RUN_CHARS = 200
# Text handed to the sentence splitter at once: bounds its memory, and a block can exceed nlp.max_length.
_NLP_SLICE_CHARS = 1_000_000
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
    """Join lines a PDF or a text file wrapped mid-sentence, collapse runs of spaces, break endless runs."""
    return break_long_runs(_WHITESPACE.sub(" ", _SOFT_BREAK.sub(" ", text)).strip(), MAX_RUN_CHARS)


def _slices(text: str, size: int) -> list[str]:
    """`text` cut into parts of at most `size` characters, at a space where there is one."""
    parts, start = [], 0
    while len(text) - start > size:
        cut = text.rfind(" ", start, start + size) + 1 or start + size
        parts.append(text[start:cut])
        start = cut
    return [*parts, text[start:]]


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
        max_chars: int | None = None,
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
        # A hard bound beside the token bound: one unknown-word token can stand for 200 characters.
        self.max_chars = max_chars or max_tokens * CHARS_PER_TOKEN_BOUND
        self._nlp = _sentence_splitter()
        self._char_splitter = RecursiveCharacterTextSplitter(chunk_size=self.max_chars, chunk_overlap=0)
        # Sentence vectors by text. Embedding one document's sentences per call leaves the model
        # mostly idle on overhead; `warm` embeds the sentences of many blocks in one batch first.
        self._vectors: dict[str, np.ndarray] = {}
        # Sentences of the blocks `warm` saw, by text and budget, taken (and dropped) by `run`.
        self._units: dict[tuple[str, int], list[tuple[str, bool]]] = {}

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
        short = [t for t in texts if len(t) <= self.max_chars]  # a longer text never fits: not worth counting
        fitting = {t for t, n in zip(short, self.count_tokens(short), strict=True) if n <= budget}
        for text in texts:
            if text not in fitting:
                self._units[text, budget] = self._sentences(text, budget)
        self._cache_vectors([s for units in self._units.values() for s, whole in units if whole])

    def forget(self) -> None:
        """Drop cached sentences and vectors (call between batches of documents to bound memory)."""
        self._vectors.clear()
        self._units.clear()

    def _cache_vectors(self, sentences: list[str]) -> None:
        """Embed, in one call, the sentences not cached yet."""
        missing = list(dict.fromkeys(s for s in sentences if s not in self._vectors))
        if missing and self.embed is not None:
            self._vectors.update(zip(missing, np.asarray(self.embed(missing), dtype=np.float32), strict=True))

    def _embed_sentences(self, sentences: list[str]) -> np.ndarray:
        self._cache_vectors(sentences)
        return np.stack([self._vectors[s] for s in sentences])

    def _sentences(self, text: str, budget: int) -> list[tuple[str, bool]]:
        """The sentences of `text`, each with True, except that a sentence over max_tokens or max_chars comes
        back as pieces of at most `budget` tokens marked False: cut at arbitrary words, they mark no change of
        topic and are not embedded."""
        sentences = [
            s.text.strip() for part in _slices(text, _NLP_SLICE_CHARS) for s in self._nlp(part).sents if s.text.strip()
        ]
        short = [s for s in sentences if len(s) <= self.max_chars]
        fitting = {s for s, n in zip(short, self.count_tokens(short), strict=True) if n <= self.max_tokens}
        units: list[tuple[str, bool]] = []
        for sentence in sentences:
            if sentence in fitting:
                units.append((sentence, True))
            else:
                units += [(piece, False) for piece in self._pack_words(sentence, budget)]
        return units

    def _pack_words(self, sentence: str, budget: int) -> list[str]:
        """A sentence cut at whitespace into pieces within `budget` tokens and max_chars characters.

        Written here because langchain's token splitter measures every candidate piece with a tokenizer call
        of its own (a 3 MB base64 blob took minutes); here all words are counted in one batch.
        """
        words = sentence.split()
        counts = self.count_tokens(words)
        if any(n > budget for n in counts):
            # A word over the budget (a long URL) is cut every budget // 4 characters: no tokenizer makes
            # more than 4 tokens of one character (UTF-8 bytes), so each part fits.
            step = max(budget // 4, 1)
            words = [p for w, n in zip(words, counts, strict=True)
                     for p in ([w] if n <= budget else [w[i:i + step] for i in range(0, len(w), step)])]
            counts = self.count_tokens(words)
        pieces: list[str] = []
        current: list[str] = []
        used = length = 0
        for word, count in zip(words, counts, strict=True):
            if current and (used + count > budget or length + 1 + len(word) > self.max_chars):
                pieces.append(" ".join(current))
                current, used, length = [], 0, 0
            current.append(word)
            used += count
            length += len(word) + (1 if len(current) > 1 else 0)
        return [*pieces, " ".join(current)]

    def _split_block(self, text: str, budget: int) -> list[tuple[str, int]]:
        if len(text) <= self.max_chars:  # a longer text never fits: not worth counting
            (total,) = self.count_tokens([text])
            if total <= budget:
                return [(text, total)]
        units = self._units.pop((text, budget), None) or self._sentences(text, budget)
        sentences = [sentence for sentence, _ in units]
        tokens = self.count_tokens(sentences)
        distance, threshold = self._distances(units)
        spans = self._cut(0, len(sentences), tokens, distance, threshold, budget)
        return self._bound_chars([(" ".join(sentences[a:b]), sum(tokens[a:b])) for a, b in spans])

    def _distances(self, units: list[tuple[str, bool]]) -> tuple[np.ndarray, float]:
        """Cosine distance between neighbouring sentences (0 beside pieces of a cut sentence), and the
        percentile of the real distances above which a cut is wanted."""
        distance = np.zeros(max(len(units) - 1, 0), dtype=np.float32)
        pairs = [i for i in range(len(units) - 1) if units[i][1] and units[i + 1][1]]
        if self.embed is None or len(units) <= 2 or not pairs:
            return distance, (0.0 if len(distance) else 1.0)
        whole = [i for i, (_, is_whole) in enumerate(units) if is_whole]
        vectors = self._embed_sentences([units[i][0] for i in whole])
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
        row = {i: k for k, i in enumerate(whole)}
        left, right = vectors[[row[i] for i in pairs]], vectors[[row[i + 1] for i in pairs]]
        distance[pairs] = 1.0 - np.sum(left * right, axis=1)
        return distance, float(np.percentile(distance[pairs], self.percentile))

    def _bound_chars(self, pieces: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """Pieces over `max_chars` cut by characters, at whitespace where there is some."""
        out: list[tuple[str, int]] = []
        for body, tokens in pieces:
            if len(body) <= self.max_chars:
                out.append((body, tokens))
                continue
            parts = self._char_splitter.split_text(body)
            out.extend(zip(parts, self.count_tokens(parts), strict=True))
        return out

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
                and len(last.body) + len(piece.body) + len(piece.headings[-1] if piece.headings else "") + 2
                <= self.max_chars
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
