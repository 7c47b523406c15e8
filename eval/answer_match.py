"""Is an answer right? Each dataset's own notion of "the same value": WikiTableQuestions' and TAT-QA's.

Example:
    >>> wtq_denotation(["13"], ["13.0"])                       # numbers compared as numbers
    True
    >>> wtq_denotation(["Leeds", "Berlin"], ["berlin", "Leeds"])  # lists order-insensitive, case-free
    True
    >>> wtq_contains("There are 13 employees in Berlin [1].", ["13"])
    True
    >>> tatqa_numbers_match("The change was $1,452.4 million [2].", ["1452.4"], scale="million")
    True

WikiTableQuestions' official evaluator (`evaluator.py` upstream) is a script, not a package, so its value
normalisation is written out here: a value is a number when it parses as one (thousands separators
removed), a date when it reads as yyyy-mm-dd (xx for unknown parts), else a string compared after
removing accents, quote and dash variants, trailing citations and parentheses, a final full stop, extra
spaces and case. A predicted list matches the gold list when both have the same size and every gold value
matches some predicted value (`wtq_denotation`). A chat answer is a sentence, not a list: `wtq_contains`
asks whether every gold value occurs in it (numbers among the numbers the sentence states, strings as
whole words), which is how the text-only and the table-native answers are compared side by side.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

_NUMBER = re.compile(r"(?<![\w.])[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])|(?<![\w.])[-−]?\.\d+")


def wtq_normalize(text: str) -> str:
    """The official evaluator's string normalisation."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c) != "Mn")
    text = re.sub(r"[‘’´`]", "'", text)
    text = re.sub(r"[“”]", '"', text)
    text = re.sub(r"[‐‑‒–—−]", "-", text)
    while True:
        before = text
        text = re.sub(r"((?<!^)\[[^\]]*\]|\[\d+\]|[•♦†‡*#+])*$", "", text.strip())  # trailing citations, marks
        text = re.sub(r"(?<!^)( \([^)]*\))*$", "", text.strip())  # trailing details in parentheses
        text = re.sub(r'^"([^"]*)"$', r"\1", text.strip())  # outer quotes
        if text == before:
            break
    if text.endswith("."):
        text = text[:-1]
    return re.sub(r"\s+", " ", text).lower().strip()


def parse_number(text: str) -> float | None:
    """A number written plainly ('1,234', '-3.5', '13.0'); None for anything else (units, words, dates)."""
    clean = text.strip().replace(",", "").replace("−", "-")
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", clean):
        return None
    value = float(clean)
    return value if math.isfinite(value) else None


def parse_date(text: str) -> tuple[int, int, int] | None:
    """yyyy-mm-dd with 'xx' for unknown parts, as the WTQ targets write dates; None otherwise."""
    parts = text.strip().lower().split("-")
    if len(parts) != 3 or not all(re.fullmatch(r"\d+|x+", p) for p in parts):
        return None
    year, month, day = (-1 if p.startswith("x") else int(p) for p in parts)
    if (year, month, day) == (-1, -1, -1) or not (month == -1 or 1 <= month <= 12) or not (day == -1 or 1 <= day <= 31):
        return None
    return year, month, day


@dataclass(frozen=True)
class Value:
    """One answer value: a number, a date or a (normalised) string."""

    text: str
    number: float | None = None
    date: tuple[int, int, int] | None = None

    @classmethod
    def of(cls, raw: object) -> Value:
        text = _plain(raw)
        number = parse_number(text)
        return cls(wtq_normalize(text), number, None if number is not None else parse_date(text))

    def matches(self, other: Value) -> bool:
        if self.number is not None and other.number is not None:
            return abs(self.number - other.number) < 1e-6
        if self.date is not None and other.date is not None:
            return self.date == other.date
        return self.text == other.text


def _plain(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def wtq_denotation(gold: Sequence[object], predicted: Sequence[object]) -> bool:
    """The official check: as many predicted values as gold ones, and each gold value matched by one of them."""
    golds, preds = [Value.of(g) for g in gold], [Value.of(p) for p in predicted]
    return len(golds) == len(preds) and all(any(g.matches(p) for p in preds) for g in golds)


def numbers_in(text: str) -> list[float]:
    """Every number a sentence states ('1,452.4', '-3', '.5'); citation markers like [2] are not numbers."""
    text = re.sub(r"\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\]", " ", text)
    out = []
    for match in _NUMBER.finditer(text):
        number = parse_number(match.group(0))
        if number is not None:
            out.append(number)
    return out


def wtq_contains(answer: str, gold: Sequence[object]) -> bool:
    """Every gold value occurs in a sentence: numbers among its numbers, strings (and dates) as whole words."""
    if not gold:
        return False
    stated = numbers_in(answer)
    words = " " + re.sub(r"[^\w\s'-]", " ", wtq_normalize(answer)) + " "
    words = re.sub(r"\s+", " ", words)
    for value in (Value.of(g) for g in gold):
        if value.number is not None:
            if not any(abs(value.number - n) < 1e-6 for n in stated):
                return False
            continue
        target = re.sub(r"\s+", " ", re.sub(r"[^\w\s'-]", " ", value.text)).strip()
        if not target or f" {target} " not in words:
            return False
    return True


_SCALES = {"": 1.0, "thousand": 1e3, "million": 1e6, "billion": 1e9, "percent": 1.0}


def tatqa_numbers_match(answer: str, gold: Sequence[object], scale: str = "") -> bool:
    """TAT-QA's numeric answers: every gold number stated in the answer, rounded to 2 decimals as the official
    script rounds, accepting the value written in the answer's own scale ('1.2 billion' for 1,200 million)."""
    golds = [parse_number(str(g)) for g in gold]
    if not golds or any(g is None for g in golds):
        return False
    stated = numbers_in(answer)
    factor = _SCALES.get(scale.lower(), 1.0)
    scaled = set()
    for n in stated:
        for other in _SCALES.values():
            scaled.add(round(n * other / factor, 2))  # the answer may say "1.2 billion" for 1,200 (million)
        scaled.add(round(n, 2))
    return all(round(abs(g), 2) in {abs(s) for s in scaled} for g in golds if g is not None)
