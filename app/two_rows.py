"""Rules-first SQL for two rows of one table in one period: a share of a total, a ratio, a difference, a sum.

Example:
    >>> ask = TwoRowQuestion.parse("In 2019, what is the percentage of warranty reserve among total accrued "
    ...                            "liabilities?")
    >>> ask.op, ask.year, [(sorted(a), sorted(b)) for a, b in ask.splits][:1]
    ('share', '2019', [(['reser', 'warra'], ['accru', 'liabi', 'total'])])
    >>> pick = ask.pick({1: "Warranty reserve", 2: "Accrued payroll", 3: "Total accrued liabilities"})
    >>> pick
    (1, 3, 2.0)
    >>> totals_named([(1, "Payroll", 346.0), (2, "Warranty reserve", 529.0), (3, "", 875.0)])  # an unlabelled sum
    {3: 'Total'}
    >>> print(two_row_sql(ask, "erag_t_1", "y2019", pick[0], pick[1]).replace(" FROM", "\\nFROM"))
    SELECT ROUND(a.y2019 * 100.0 / b.y2019, 2) AS percentage
    FROM erag_t_1 AS a, erag_t_1 AS b WHERE a.row_id = 1 AND b.row_id = 3
    >>> TwoRowQuestion.parse("What proportion of total fair value is made up of level 2 inputs?").op
    'ratio'
    >>> TwoRowQuestion.parse("What is the difference between the domestic and international rates in 2019?").op
    'difference'
    >>> TwoRowQuestion.parse("What is the percentage change in revenue between 2018 and 2019?") is None
    True

Why by rule: after one row compared between years (app/period_change.py), the commonest computation asked of a
financial statement or a budget is two rows of the same period set against each other: "what share of total
costs is staff", "the ratio of current assets to current liabilities", "the difference between domestic and
international sales in 2019". The 1.5B model writes such a query unreliably (a filter that matches neither label,
the ratio upside down) and, answering from text, divides in its head. The shape is recognised only when it is
clear: one year named (or a table with a single figure column), a share/proportion/ratio/difference/sum word
followed by two phrases that each name one row of the same table, no other split of the question naming
different rows as well. Anything less clear is left to the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from app.evidence import word_stems
from app.period_change import YEAR, best_row

TwoRowOp = Literal["share", "ratio", "difference", "sum"]

# The first row is the part, the second the whole: "the percentage of X in/among/of/over/out of Y".
_SHARE = re.compile(r"\b(?:percentage|percent|%|share|portion)\s+(?:constitution\s+|contribution\s+)?of\s+(?P<rest>.+)",
                    re.I)
_RATIO = re.compile(r"\b(?:proportion|ratio|fraction)\s+of\s+(?P<rest>.+)", re.I)
_DIFFERENCE = re.compile(r"\bdifference\s+between\s+(?P<rest>.+)", re.I)
_SUM = re.compile(r"\b(?:sum|total|combined)\s+of\s+(?P<rest>.+)", re.I)
# "X as a percentage of Y" names the part first; "what percentage of Y is made up of X" names the whole first.
_AS_SHARE = re.compile(r"^(?:what|how much)\s+(?:is|was|are|were)\s+(?P<a>.+?)\s+as\s+an?\s+"
                       r"(?P<kind>percentage|percent|proportion|share|ratio|fraction)\s+of\s+(?P<b>.+)", re.I)
_WHOLE_FIRST = re.compile(r"^(?:what|how much)\s+(?P<kind>percentage|percent|proportion|share|portion|fraction)\s+"
                          r"of\s+(?P<b>.+?)\s+(?:is|was|are|were)\s+(?:made up of|accounted for by|attributable to|"
                          r"represented by|from|due to)?\s*(?P<a>.+)", re.I)
_PART_OF = re.compile(r"\s+(?:in|of|among|amongst|over|out of|to|within|from|relative to|compared to|against)\s+",
                      re.I)
_AND = re.compile(r"\s+and\s+", re.I)
# A change between periods (app/period_change.py) or an average of several rows is another computation.
_OTHER = re.compile(r"\b(?:change|growth|increase|decrease|average|mean|median)\b", re.I)
# When the question names the date, the period phrase is no part of the row's name.
_PERIOD = re.compile(r"\b(?:as\s+(?:of|at)|at|on|in|for|during|by)\s+(?:the\s+)?(?:end\s+of\s+)?(?:fiscal\s+|fy\s*)?"
                     r"(?:(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d{1,2},?\s+)?"
                     r"(?:19|20)\d\d\b", re.I)
_FRAME = set(word_stems(
    "what is was are were the a an of in for at as on by company company's group its their value amount respective "
    "respectively year years fiscal fy end period reported how much"
))
_TOTAL = frozenset(word_stems("total"))


@dataclass(frozen=True)
class TwoRowQuestion:
    """`op` over two rows of one period column: the rows each split's two subjects name, in `year`'s column."""

    op: TwoRowOp
    year: str  # empty: the table must have a single figure column
    splits: tuple[tuple[frozenset[str], frozenset[str]], ...]  # (first row's stems, second row's stems) per reading

    @classmethod
    def parse(cls, question: str) -> TwoRowQuestion | None:
        years = list(dict.fromkeys(YEAR.findall(question)))
        if len(years) > 1 or _OTHER.search(question):
            return None
        text = YEAR.sub(" ", _PERIOD.sub(" ", question)).strip(" ,?.")
        pairs: list[tuple[str, str]] = []
        op: TwoRowOp | None = None
        if (found := _AS_SHARE.search(text)) or (found := _WHOLE_FIRST.search(text)):
            op = "ratio" if found.group("kind").lower() in ("proportion", "ratio", "fraction") else "share"
            pairs = [(found.group("a"), found.group("b"))]
        else:
            for pattern, kind, splitter in ((_SHARE, "share", _PART_OF), (_RATIO, "ratio", _PART_OF),
                                            (_DIFFERENCE, "difference", _AND), (_SUM, "sum", _AND)):
                found = pattern.search(text)
                if found:
                    rest = found.group("rest")
                    pairs = [(rest[:m.start()], rest[m.end():]) for m in splitter.finditer(rest)]
                    op = kind  # type: ignore[assignment]
                    break
        if op == "difference" and re.search(r"\bpercent", question, re.I):
            return None  # "the percentage difference between X and Y" is relative to one of them
        if op in ("share", "ratio"):
            # "the proportion of land and leasehold improvements over ..." adds two rows first: another computation.
            pairs = [(a, b) for a, b in pairs if not _AND.search(a)]
        splits = tuple((a, b) for a, b in ((cls._stems(a), cls._stems(b)) for a, b in pairs) if a and b and a != b)
        return cls(op, years[0] if years else "", splits) if op and splits else None

    @staticmethod
    def _stems(text: str) -> frozenset[str]:
        return frozenset(set(word_stems(text)) - _FRAME)

    def pick(self, labels: dict[int, str]) -> tuple[int, int, float] | None:
        """The (first row, second row, score) that a reading of the question names best: two different rows, each
        named clearly (`best_row`); None when none is, or when two readings name different rows equally well."""
        found: dict[tuple[int, int], float] = {}
        # The whole of a share is written "Total X" in the table whether or not the question says "total".
        whole = _TOTAL if self.op in ("share", "ratio") else frozenset()
        for first, second in self.splits:
            a, b = best_row(first, labels), best_row(second | whole, labels)
            if a is None or b is None or a[0] == b[0]:
                continue
            pair = (a[0], b[0])
            found[pair] = max(found.get(pair, 0.0), a[1] + b[1])
        if not found:
            return None
        ranked = sorted(found.items(), key=lambda item: -item[1])
        if len(ranked) > 1 and ranked[1][1] == ranked[0][1]:
            return None
        (a_row, b_row), score = ranked[0]
        return a_row, b_row, score


def totals_named(rows: list[tuple[int, str, object]]) -> dict[int, str]:
    """"Total" for each unlabelled row whose figure is the sum of the rows above it, back to the block's heading
    (a row without a figure) or the previous such total: statements often leave their sum line unlabelled
    ("| $3,571 | $3,416" under the accrued liabilities), and a share of "the total" is read from that line."""
    named: dict[int, str] = {}
    block: list[float] = []
    for row_id, label, cell in rows:
        value = float(cell) if isinstance(cell, (int, float, Decimal)) and not isinstance(cell, bool) else None
        if value is None:
            block = []
        elif not label.strip():
            if len(block) >= 2 and abs(sum(block) - value) <= max(1.0, abs(value) * 0.001):
                named[row_id] = "Total"
            block = []
        else:
            block.append(value)
    return named


def two_row_sql(ask: TwoRowQuestion, table: str, column: str, first: int, second: int) -> str:
    """The query computing `ask` over rows `first` and `second` of `column` (a self-join: one row each side)."""
    a, b = f"a.{column}", f"b.{column}"
    expr, alias = {
        "share": (f"ROUND({a} * 100.0 / {b}, 2)", "percentage"),
        "ratio": (f"ROUND({a} * 1.0 / {b}, 2)", "ratio"),
        "difference": (f"{a} - {b}", "difference"),
        "sum": (f"{a} + {b}", "total"),
    }[ask.op]
    return (f"SELECT {expr} AS {alias} FROM {table} AS a, {table} AS b WHERE a.row_id = {first} "
            f"AND b.row_id = {second}")
