"""Should the chat answer? A support score of the question against its sources, calibrated on the dev sets.

Example:
    >>> gate = AbstentionGate()
    >>> features = support_features("What was Hardware revenue in 2019?",
    ...     ["Revenue by segment 2019 2018 | Hardware | 1,204 | 1,118"], [0.62])
    >>> [round(f, 2) for f in features]
    [0.62, 1.0, 1.0, 1.0]
    >>> gate.decide(features) is None   # supported: answer
    True

The score is a logistic model over four signals read from the sources the answer would use:
- the best sentence or row cosine to the question (the MiniLM the evidence selector already ran),
- the share of the question's word stems that the best source holds,
- the share of the question's *specific* terms (numbers, years, capitalised names, codes) that the best source
  holds ("Hardware", "2019", "Okafor"), and whether one source holds them all: a source can be close in meaning
  and still be about another company, segment or year.
Weights and threshold are learnt by `eval/abstention_calibration.py` on half of the dev questions (answerable
with the gold documents present, unanswerable with them hidden, and the sample company's own) and reported on
the other half (docs/eval/abstention/report.md). The chat applies it above a cosine floor. It catches some
questions whose documents are hidden (16% on docugami_sec10q, half of the sample company's unanswerable ones on
the dev half), far from all: those corpora hold near-copies of the hidden documents (other companies' tables of
the same layout, other quarters of the same filing) that these signals cannot tell apart; see the README.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.evidence import Source, content_words, word_stems, years_named
from retrieval.recency import quarters_named

# Fitted by `python -m eval.abstention_calibration --llm` (docs/eval/abstention/calibration.json): weights of
# FEATURES, the bias, and the support threshold chosen on the dev half.
FEATURES = ("best cosine", "question words held", "specific terms held", "every specific term held")
WEIGHTS = (2.436, 2.22, 0.392, 0.76)
BIAS = -3.803
THRESHOLD = 0.212

_SPECIFIC = re.compile(r"^(?:.*\d.*|[A-Z][\w&'.-]*|[A-Z0-9&.-]{2,})$")
_WORD = re.compile(r"[\w&'.-]+")


def specific_terms(question: str) -> set[str]:
    """Numbers, years, codes and capitalised names in the question (its first word excepted), lowercased."""
    terms: set[str] = set()
    for word in _WORD.findall(question)[1:]:
        word = re.sub(r"'s$", "", word.strip(".'-"))
        if word and _SPECIFIC.match(word):
            terms |= content_words(word)
    return terms


def support_features(question: str, source_texts: Sequence[str], cosines: Sequence[float]) -> list[float]:
    """(best cosine, best share of question word stems held, best share of specific terms held, 1.0 when one
    source holds every specific term) over the sources."""
    if not source_texts:
        return [0.0, 0.0, 0.0, 0.0]
    words = word_stems(question)
    specific = specific_terms(question)
    held_words, held_specific = 0.0, 0.0
    for text in source_texts:
        lowered = text.lower()
        if words:
            held_words = max(held_words, len(words & word_stems(text)) / len(words))
        if specific:
            # Substring, not word, match: "2019" is in "FY2019", "Okafor" in "Okafor-Smith".
            held_specific = max(held_specific, sum(term in lowered for term in specific) / len(specific))
    if not specific:
        held_specific = 1.0  # nothing specific asked, nothing specific missing
    return [max(cosines, default=0.0), held_words, held_specific, float(held_specific == 1.0)]


def source_features(question: str, sources: Sequence[Source]) -> list[float]:
    """`support_features` of the chat's scored sources: each whole chunk (header and every sentence or row)."""
    texts = [f"{source.header}\n" + "\n".join(unit.text for unit in source.units) for source in sources]
    return support_features(question, texts, [source.relevance for source in sources])


# A year that bounds a range ("started in 2024 or later", "since 2019") asks about rows of other years too: the
# sources need not name it.
_OPEN_RANGE = re.compile(r"\b(since|after|before|until|till|by|from)\s+(\w+\s+)?\d{4}\b|\b\d{4}\s+(or|and)\s+"
                         r"(later|earlier|after|before|onwards?|since)\b|\b\d{4}\s+onwards?\b", re.I)


def other_period(question: str, source_texts: Sequence[str]) -> str | None:
    """The reason to abstain when the question names a year no source holds while the sources name other years:
    asked for Q3 2024 revenue, the Q3 2026 report holds a revenue line, every word of the question but the year,
    and the model answered with its 2026 figure. Sources that name no year at all (a leave policy asked about
    "in 2026") are not judged by this."""
    asked = years_named(_OPEN_RANGE.sub(" ", question))
    if not asked:
        return None
    held = years_named("\n".join(source_texts))
    missing = [year for year in asked if year not in held]
    if not missing or not held:
        return None
    return (f"the sources speak of {', '.join(sorted(held, reverse=True)[:3])}, not of {', '.join(missing)}, "
            f"which the question asks about")


def other_quarter(question: str, periods: Sequence[tuple[int, int] | None]) -> str | None:
    """The reason to abstain when the question names quarters and every source is a document of another period,
    by what names it (`retrieval.recency.document_period` of each source: "AAPL 10-Q 2023 Q1"). Asked about
    "Intel's Q2 2023 report" with that filing out of reach, Intel's Q1 and Q3 filings hold the same line items and
    the model answered from them. A source of the whole year covers its quarters; a source whose name gives no
    period could be any, and then nothing is judged."""
    asked = quarters_named(question)
    if not asked or not periods or any(p is None for p in periods):
        return None
    held = {p for p in periods if p is not None}
    if any((year, quarter) in held or (year, 0) in held for year, quarter in asked):
        return None
    shown = ", ".join(f"{y} Q{q}" if q else str(y) for y, q in sorted(held, reverse=True)[:3])
    return (f"the sources are documents of {shown}, not of {', '.join(f'Q{q} {y}' for y, q in asked)}, which the "
            "question asks about")


@dataclass(frozen=True)
class AbstentionGate:
    """Answer when the calibrated support is at least `threshold`; else the reason to say "I don't know"."""

    weights: tuple[float, float, float, float] = WEIGHTS
    bias: float = BIAS
    threshold: float = THRESHOLD

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURES):
            raise ValueError(f"need {len(FEATURES)} weights ({', '.join(FEATURES)}), got {len(self.weights)}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold is a probability in [0, 1], got {self.threshold}")

    def support(self, features: Sequence[float]) -> float:
        z = self.bias + sum(w * f for w, f in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-z))

    def decide(self, features: Sequence[float]) -> str | None:
        """None to answer; otherwise the reason shown with the abstention."""
        support = self.support(features)
        if support >= self.threshold:
            return None
        return (f"the sources do not support an answer (support {support:.2f} < {self.threshold:.2f}: closest "
                f"passage {features[0]:.2f}, question words held {features[1]:.0%}, names and figures held "
                f"{features[2]:.0%})")
