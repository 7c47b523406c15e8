"""Cut retrieved chunks down to the sentences (or table rows) that bear on the question.

Example:
    >>> selector = EvidenceSelector.from_settings(get_settings())
    >>> sources = selector.run("How many weeks of partner leave?", retriever.run("partner leave").hits, budget=320)
    >>> sources[0].number, sources[0].file_name, sources[0].relevance
    (1, 'parental_leave_policy.md', 0.71)

Why by hand: the prompt must stay small (prefill runs at ~80 tokens/s on 2 cores), and a 256-token
chunk usually answers with one or two of its sentences. Every sentence and table row of the retrieved
chunks is scored against the question with the fast MiniLM model (tens of short texts: ~0.1 s) plus
a small bonus for the question's words it contains (names, places, numbers that embeddings blur);
the best units across all chunks fill the token budget. The best unit's cosine is also the
relevance signal the chat abstains on, since the engine's fused RRF score only ranks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from erag.models import load_sentence_transformer
from erag.schema import Hit
from erag.settings import Settings
from ingest.table_summary import SUMMARY_KIND

CountTokens = Callable[[str], int]
_WORD = re.compile(r"[\w$€£%.-]+", re.UNICODE)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_MAX_UNIT_CHARS = 600  # a bullet list joined into one "sentence" must not eat the whole budget
_WRAP_MIN_CHARS = 60
_WORDS = re.compile(r"[^\W\d_]{2,}|\d+")
# A line that stops on a word or a comma (not on a number: PDF table rows end in figures) ...
_OPEN_END = re.compile(r"[^\W\d_],?\s*$")
# ... and a next line that starts something of its own.
_NEW_ITEM = re.compile(r"\s*(?:[-*•|#>]|\d{1,2}[.)]\s|[QA]:|\w[\w ]{0,30}:\s)")
LEXICAL_WEIGHT = 0.3
# A list item's lead-in: "Phone lost, stolen or reset: call the Service Desk ...", "Codes rejected: check ...".
# Short, opening on a letter, with no sentence end or clock time ("10:00") inside.
_LEAD_IN = re.compile(r"^([^\W\d_][^:.!?\n]{2,60}):\s+\S")


def approx_tokens(text: str) -> int:
    """Token count without loading the LLM's tokenizer (BPE averages ~3.8 characters per token in English)."""
    return len(text) // 4 + 1


@lru_cache(maxsize=1)
def _sentencizer():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


_YEAR = re.compile(r"\b(19[5-9]\d|20\d\d)\b")  # a year as people write one: 2024, not FY2024's digits


def years_named(text: str) -> list[str]:
    """The years a text names, in order, once each: "Q3 2024 against 2023" -> ['2024', '2023']."""
    return list(dict.fromkeys(_YEAR.findall(text)))


def content_words(text: str) -> set[str]:
    """Lower-cased words of `text` without stopwords or trailing punctuation."""
    words = {w.strip(".-").lower() for w in _WORD.findall(text)}
    return {w for w in words if w and w not in _stopwords()}


def word_stems(text: str) -> set[str]:
    """Content words cut to their first 5 letters, with snake_case, hyphenated and bracketed names split: a
    column "salary_gbp" or "Headcount (Dec 2026)" then shares stems with a question's "salaries" or "headcount"."""
    return {w[:5] for w in content_words(re.sub(r"[_()/-]", " ", text)) if len(w) > 1}


@dataclass
class Unit:
    """A sentence of a prose chunk or one row of a table chunk, with its score for the question."""

    text: str
    order: int
    score: float = 0.0
    cosine: float = 0.0
    row: list[str] | None = None
    # The line (list item, paragraph) a sentence was cut from, that item's lead-in ("Phone lost, stolen or reset")
    # and whether the sentence opens the item (and so holds the lead-in). A procedure's steps are sentences of one
    # item: read alone, "Scan the new QR code with SafeKey" no longer says it is the new-phone case, and the model
    # mixed the new-phone and lost-phone steps into one list.
    item: int | None = None
    case: str = ""
    opens: bool = True

    @property
    def label(self) -> str:
        """The lead-in this unit needs in front of it: its item's, when it does not open the item."""
        return "" if self.opens else self.case

    @property
    def read(self) -> str:
        """The unit as a reader needs it: with its item's lead-in when it does not open the item."""
        return f"{self.label}: {self.text}" if self.label else self.text


@dataclass
class Source:
    """A retrieved chunk as the answer sees it: its citation number, the excerpt in the prompt, its relevance."""

    number: int
    hit: Hit
    header: str
    units: list[Unit]
    selected: list[Unit] = field(default_factory=list)
    relevance: float = 0.0
    # Set by a selector whose settings ask for the injection guard: the prompt then quotes this source and
    # withholds its instruction-like sentences (app/prompt.py, app/injection.py).
    guard: bool = False

    @property
    def excerpt(self) -> str:
        return "\n".join(([self.header] if self.header else []) + self.body_lines())

    def body_lines(self) -> list[str]:
        """The selected units as the prompt shows them, one per line. Best first, since a small model leans on
        what it reads first, but by item: the sentences of one list item or paragraph stay together in the
        document's order (a procedure's steps in their order), opened by the item's lead-in."""
        items: dict[tuple[str, int], list[Unit]] = {}
        for unit in self.selected:
            key = ("item", unit.item) if unit.item is not None else ("unit", unit.order)
            items.setdefault(key, []).append(unit)
        lines: list[str] = []
        for units in sorted(items.values(), key=lambda us: -max(u.score for u in us)):
            units.sort(key=lambda u: u.order)
            lines += [units[0].read, *(u.text for u in units[1:])]
        return lines

    @property
    def file_name(self) -> str:
        p = self.hit.payload
        return str(p.get("file_name") or p.get("title") or p.get("doc_id") or "?")

    @property
    def location(self) -> str:
        return self.hit.location()

    @property
    def table(self) -> dict[str, Any] | None:
        return self.hit.payload.get("table")

    @property
    def best_score(self) -> float:
        return max((u.score for u in self.selected), default=0.0)

    def label(self) -> str:
        where = self.location
        return f"[{self.number}] {self.file_name}" + (f" ({where})" if where else "")

    def row_text(self, unit: Unit) -> str:
        """A table row read aloud: 'column: value; ...', for extractive answers."""
        columns = (self.table or {}).get("columns") or []
        if unit.row is None or not columns:
            return unit.text
        return "; ".join(f"{c}: {v}" for c, v in zip(columns, unit.row, strict=False) if v)


def _wraps_on(line: str, following: str) -> bool:
    """Does `line` break mid-sentence into `following`? Plain text and HTML are often hard-wrapped at ~90
    characters: "... completes the course each year by" / "31 March. New starters ...". Cut there, the evidence
    budget kept one half and the model answered "by [1]." A long line that ends on a word or a comma continues
    into a line that is not a list item, a table row or a Q/A turn; short lines (headings) never do."""
    if len(line) < _WRAP_MIN_CHARS or not following.strip():
        return False
    return bool(_OPEN_END.search(line)) and not _NEW_ITEM.match(following)


def _whole_lines(text: str) -> list[str]:
    """The text's lines, a line that opens a bracket it does not close or wraps mid-sentence (`_wraps_on`)
    joined to the next: HTML and PDF text wrap inside "(internal extension\n4357)", and a unit cut there shows
    the model a number torn from its sentence."""
    lines: list[str] = []
    pending = ""
    raw = text.splitlines()
    for i, line in enumerate(raw):
        pending = f"{pending} {line.strip()}" if pending else line
        following = raw[i + 1] if i + 1 < len(raw) else ""
        # A cell cut short ("Subcontractor costs (in Consulting staf…") leaves its bracket open for good.
        unclosed = pending.count("(") > pending.count(")") and not pending.rstrip().endswith("…")
        opened = unclosed or _wraps_on(line, following)
        if not opened or len(pending) > _MAX_UNIT_CHARS:
            lines.append(pending)
            pending = ""
    if pending:
        lines.append(pending)
    return lines


def rows_of_summary(summary: Hit, rows: Hit) -> bool:
    """`rows` is a chunk of rows of the table that `summary` (a table summary chunk) describes: the same document,
    page, sheet and headings, and the summary's caption opens with the rows' caption ("Table: 4.1 Annual leave
    entitlement" / "Table: 4.1 Annual leave entitlement (employee_handbook.docx) - summary")."""
    s, r = summary.payload, rows.payload
    if s.get("kind") != SUMMARY_KIND or r.get("kind") != "table" or summary.doc_id != rows.doc_id:
        return False
    if any(s.get(k) != r.get(k) for k in ("page", "sheet", "version")) or (s.get("headings") or []) != (
            r.get("headings") or []):
        return False
    caption = rows.text.split("\n", 1)[0].strip()
    return summary.text.startswith(f"{caption} (")


def rows_in_place_of_summaries(hits: Sequence[Hit]) -> list[Hit]:
    """The hits without the table summaries whose rows are among them, the rows moved up to the summary's rank.

    A summary chunk is how a question finds a table; once rows of the table are retrieved they are the evidence,
    and the summary only repeats their columns and blurs their values into ranges: its "Annual leave: 25 to 30"
    outscored the rows for the evidence budget, and asked about 6 years of service the model answered 25.
    """
    out: list[Hit] = []
    for hit in hits:
        if any(hit.id == kept.id for kept in out):
            continue  # moved up already
        rows = [other for other in hits if rows_of_summary(hit, other) and all(other.id != k.id for k in out)]
        out += rows or [hit]
    return out


def split_units(hit: Hit) -> tuple[str, list[Unit]]:
    """The chunk's header (breadcrumb, or table caption and header row) and its sentences or rows."""
    text = hit.text
    table = hit.payload.get("table")
    if hit.payload.get("kind") == "table" and table and table.get("rows"):
        lines = text.splitlines()
        header = "\n".join(lines[:3])
        return header, [
            Unit("| " + " | ".join(row) + " |", i, row=list(row)) for i, row in enumerate(table["rows"])
        ]
    header = ""
    if hit.payload.get("headings") or "\n" in text:
        first, _, rest = text.partition("\n")
        if hit.payload.get("headings") or (len(first) < 120 and " > " in first):
            header, text = first, rest
    units: list[Unit] = []
    # Lines first: list items and table-like lines are units of their own even without a full stop.
    for item, line in enumerate(_whole_lines(text)):
        line = _BULLET.sub("", line).strip()
        if not line:
            continue
        lead = _LEAD_IN.match(line)
        opened = False
        stub = ""
        for sentence in _sentencizer()(line).sents:
            clean = " ".join(f"{stub} {sentence.text}".split())
            # "A: No." alone means nothing and scores low: an FAQ's answer was left out of the prompt while its
            # reason was kept, and the model could not say no. A sentence of one or two words opens the next.
            if len(_WORDS.findall(clean)) <= 2 and sentence.end < len(sentence.doc):
                stub = clean
                continue
            stub = ""
            if len(clean) > 2 and all(u.text != clean[:_MAX_UNIT_CHARS] for u in units):
                units.append(Unit(clean[:_MAX_UNIT_CHARS], len(units), item=item,
                                  case=lead.group(1) if lead else "", opens=not opened))
                opened = True
    return header, units


class EvidenceSelector:
    """Score the sentences and rows of retrieved hits and keep the best within a token budget."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], count_tokens: CountTokens = approx_tokens,
                 guard: bool = False) -> None:
        self.encode = encode
        self.count_tokens = count_tokens
        self.guard = guard

    @classmethod
    def from_settings(cls, settings: Settings, count_tokens: CountTokens = approx_tokens) -> EvidenceSelector:
        model = load_sentence_transformer(settings.breakpoint_embedder, settings.model_cache, settings.torch_threads)

        def encode(texts: list[str]) -> np.ndarray:
            return model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)

        return cls(encode, count_tokens, guard=settings.chat_injection_guard)

    def prepare(self, hits: Sequence[Hit]) -> list[Source]:
        """Hits as sources numbered 1..n in retrieval order, split into units (cheap: no model). A table summary
        whose rows are among the hits gives its place to them (`rows_in_place_of_summaries`)."""
        sources = []
        for hit in rows_in_place_of_summaries(hits):
            header, units = split_units(hit)
            if units:
                sources.append(Source(len(sources) + 1, hit, header, units, guard=self.guard))
        return sources

    def score(self, question: str, sources: list[Source], budget: int) -> list[Source]:
        """Score every unit and select the best across sources into the budget; sources keep their numbers.

        A source none of whose units made it stays listed (it was retrieved) but is left out of the prompt.
        """
        if budget < 1:
            raise ValueError(f"budget must be at least 1 token, got {budget}")
        if not sources:
            return sources
        texts = [question] + [self._scored_text(s, u) for s in sources for u in s.units]
        vectors = self.encode(texts)
        cosines = vectors[1:] @ vectors[0]
        q_words = content_words(question)
        k = 0
        for source in sources:
            source.selected = []
            for unit in source.units:
                unit.cosine = float(cosines[k])
                overlap = len(q_words & content_words(unit.text)) / len(q_words) if q_words else 0.0
                unit.score = unit.cosine + LEXICAL_WEIGHT * overlap
                k += 1
            source.relevance = max(u.cosine for u in source.units)

        ranked = sorted(((u.score, i, u) for i, s in enumerate(sources) for u in s.units), key=lambda t: -t[0])
        used = 0
        # A sentence already chosen from a better-ranked source is not shown again: quarterly filings repeat their
        # boilerplate word for word ("The accounting policies for segment reporting are the same as for Intel as a
        # whole." from three 10-Qs filled a third of the budget), and a copy tells the model nothing new.
        shown: set[str] = set()
        for _, i, unit in ranked:
            source = sources[i]
            said = " ".join(unit.text.lower().split())
            if said in shown:
                continue
            cost = self.count_tokens(unit.text) + (0 if source.selected else self.count_tokens(source.header) + 12)
            if used + cost > budget and used:
                continue  # the single best unit always goes in, even over a tiny budget
            source.selected.append(unit)
            shown.add(said)
            used += cost
        return sources

    def run(self, question: str, hits: Sequence[Hit], budget: int) -> list[Source]:
        return self.score(question, self.prepare(hits), budget)

    @staticmethod
    def _scored_text(source: Source, unit: Unit) -> str:
        # A row alone ("| 12 | Berlin |") means little to an embedder; with its column names it reads as a fact.
        if unit.row is not None:
            return f"{source.header.splitlines()[0]}: {source.row_text(unit)}"
        return unit.read
