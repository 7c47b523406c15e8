"""Rules-first SQL for "in which quarter (month, year) was X highest?": the period is a column header, not a cell.

Example:
    >>> ask = PeakQuestion.parse("In which quarter of 2026 is budgeted total revenue highest?")
    >>> ask.period, ask.highest, ask.years, sorted(ask.subject)
    ('quarter', True, ('2026',), ['budge', 'reven', 'total'])
    >>> columns = [("q1_2026", "Q1 2026"), ("q2_2026", "Q2 2026"), ("fy_2026", "FY 2026")]
    >>> ask.columns(columns)
    [('q1_2026', 'Q1 2026'), ('q2_2026', 'Q2 2026')]
    >>> print(peak_sql(ask, "summary", ask.columns(columns), row_id=4).replace(" UNION ALL ", "\\nUNION ALL "))
    SELECT quarter FROM (SELECT 'Q1 2026' AS quarter, q1_2026 AS value FROM summary WHERE row_id = 4
    UNION ALL SELECT 'Q2 2026' AS quarter, q2_2026 AS value FROM summary WHERE row_id = 4) ORDER BY value DESC LIMIT 1
    >>> PeakQuestion.parse("In which year was the net revenue higher, 2019 or 2018?").years
    ('2019', '2018')
    >>> PeakQuestion.parse("Which department spent most in Q3 2026?") is None
    True
    >>> years = PeakQuestion.parse("In which year was Total Other largest?")
    >>> years.columns([("y2019", "2019"), ("years_ended_december_31_2018", "Years Ended December 31, 2018")])
    [('y2019', '2019'), ('years_ended_december_31_2018', '2018')]
    >>> below = PeakQuestion.parse("In which years was lease obligation less than 2,500 thousands?")
    >>> below.threshold, sorted(below.subject)
    (('<', 2500.0), ['lease', 'oblig'])
    >>> peak_sql(below, "t", [("y2019", "2019"), ("y2018", "2018")], row_id=3).split(") ")[1]
    'WHERE value < 2500.0 ORDER BY value ASC'
    >>> PeakQuestion.parse("In which year was the share without religion at least 20%?").threshold
    ('>=', 20.0)
    >>> years.columns([("c2009_10", "2009/10"), ("c2010_11", "2010/11")])  # a fiscal year is shown as written
    [('c2009_10', '2009/10'), ('c2010_11', '2010/11')]

Why by rule: a budget or a report lays its periods out as columns (Q1 2026 ... Q4 2026, FY 2026), so the answer
to "which quarter" is a header. The 1.5B model then reads one quarter's column and returns its figure (asked for
the quarter of highest budgeted revenue, it returned 11,300, the Q3 budget); it does not write the unpivot. The
shape is narrow: a which-quarter/month/year question with a superlative or comparative, a row label it names (as for
app/period_change.py, `best_row`) and at least two columns headed by that kind of period; anything less clear
is left to the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.evidence import word_stems
from app.period_change import YEAR, years_of

_WHICH = re.compile(r"\b(?:which|what)\s+(quarter|month|year)s?\b", re.I)
# Comparatives too: "In which year was net revenue higher?" over a 2019 | 2018 table asks the same.
_HIGH = re.compile(r"\b(highest|most|largest|biggest|greatest|maximum|max|peak|best|top|higher|larger|bigger|"
                   r"greater|more)\b", re.I)
_LOW = re.compile(r"\b(lowest|least|smallest|fewest|minimum|min|worst|lower|smaller|less|fewer)\b", re.I)
# "less than 500", "exceed $20,000 thousand": every period past a threshold, not the best one. The figure is
# compared as the question writes it, in the table's own scale (TAT-QA and a reader of the table both do).
_THRESHOLD = re.compile(r"\b(?P<way>at least|at most|less|lower|fewer|smaller|below|under|more|greater|higher|larger|"
                        r"above|over|exceed(?:s|ed|ing)?)\s+(?:than\s+)?(?:USD|EUR|GBP|\$|£|€)?\s*(?P<figure>-?\d[\d,]*(?:\.\d+)?)"
                        r"(?:\s*(?:%|percent|thousands?|millions?|billions?|years?|days?)\b|%)?", re.I)
_BELOW = {"less", "lower", "fewer", "smaller", "below", "under"}
_INCLUSIVE = {"at least": ">=", "at most": "<="}
# A header that is only a (fiscal) year is shown as written ("2010/11", "FY 2019"); a longer one by its year
# ("Years Ended December 31, 2018" is 2018).
_YEAR_HEADER = re.compile(r"^\s*(?:FY\s*)?(?:19|20)\d\d(?:\s*[/-]\s*\d{2,4})?\s*$", re.I)
_MONTH_NAMES = r"\b(Jan(uary)?|Feb(ruary)?|Mar(ch)?|Apr(il)?|May|June?|July?|Aug(ust)?|Sep(t(ember)?)?|Oct(ober)?|" \
    r"Nov(ember)?|Dec(ember)?)\b"
_MONTH = re.compile(_MONTH_NAMES, re.I)  # in a header ("JAN 2026", "March")
_MONTH_ASKED = re.compile(_MONTH_NAMES)  # in a question, capitalised: "may" is a verb, "mar" starts "margin"
_PERIOD_LABEL = {
    "quarter": re.compile(r"\bQ[1-4]\b|\b[1-4](st|nd|rd|th) quarter\b", re.I),
    "month": _MONTH,
}
_NAMED = {"quarter": re.compile(r"\bQ[1-4]\b"), "month": _MONTH_ASKED}
_NAMED_ANY = re.compile(rf"{_NAMED['quarter'].pattern}|{_MONTH_NAMES}")
# A year's total beside its quarters or months ("FY 2026") is not one of them.
_WHOLE_YEAR = re.compile(r"\b(FY|total|full year|year to date|YTD)\b", re.I)
_FRAME = set(word_stems(
    "in which what quarter quarters month months year years of the a an is was were are did does do had has have "
    "highest most largest biggest greatest maximum max peak best top lowest least smallest fewest minimum min "
    "worst higher larger bigger greater more lower smaller less fewer value amount period during or than"
))


@dataclass(frozen=True)
class PeakQuestion:
    """Which `period` column holds the highest (or lowest) value of the row the `subject` names."""

    period: str
    highest: bool
    years: tuple[str, ...]  # the years named: the one the quarters or months are of, or the years to compare
    subject: frozenset[str]
    named: tuple[str, ...] = ()  # the quarters or months to compare, when the question lists them ("Q2 or Q3")
    threshold: tuple[str, float] | None = None  # ("<", 500.0): every period below (or above) it, not the best one

    @classmethod
    def parse(cls, question: str) -> PeakQuestion | None:
        which = _WHICH.search(question)
        past = _THRESHOLD.search(question)
        threshold = None
        if past is not None:
            way = past.group("way").lower()
            way = _INCLUSIVE.get(way) or ("<" if way in _BELOW else ">")
            threshold = (way, float(past.group("figure").replace(",", "")))
            question = question[:past.start()] + " " + question[past.end():]
        high, low = bool(_HIGH.search(question)), bool(_LOW.search(question))
        if which is None or (threshold is None and high == low):
            return None
        if threshold is not None:
            high = threshold[0].startswith(">")
        years = tuple(dict.fromkeys(YEAR.findall(question)))
        period = which.group(1).lower()
        if (period == "year" and len(years) == 1) or (period != "year" and len(years) > 1):
            return None
        named = tuple(m.group(0).lower()[:3] for m in _NAMED[period].finditer(question)) if period in _NAMED else ()
        subject = set(word_stems(_NAMED_ANY.sub(" ", YEAR.sub(" ", question)))) - _FRAME
        return cls(period, high, years, frozenset(subject), named, threshold) if subject else None

    def columns(self, numeric: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The (name, period) of the numeric columns headed by one period of this kind (of the year asked); a
        year column's period is its year, since that is what "which year" asks for."""
        if self.period == "year":
            # By the years a header holds, as the change rule reads them: "Years Ended December 31, 2018" is 2018
            # (its "31" had hidden it, so the union left that year out), "2019 vs 2018" is neither.
            single = [(name, label, years) for name, label in numeric if len(years := years_of(name, label)) == 1]
            found = [(name, label.strip() if _YEAR_HEADER.match(label) else next(iter(years)))
                     for name, label, years in single if not self.years or years <= set(self.years)]
            return found if len(found) >= 2 and len({year for _, year in found}) == len(found) else []
        kind = _PERIOD_LABEL[self.period]
        found = [(name, label) for name, label in numeric
                 if kind.search(label) and (not self.years or any(year in label for year in self.years))
                 and (not self.named or any(re.search(rf"\b{n}", label, re.I) for n in self.named))
                 and not _WHOLE_YEAR.search(label)]
        return found if len(found) >= 2 else []


def peak_sql(ask: PeakQuestion, table: str, columns: list[tuple[str, str]], row_id: int) -> str:
    """One SELECT per period column (the header names the period, the cell holds its value), the best period (or
    every period past the threshold)."""
    parts = [f"SELECT '{label.replace(chr(39), chr(39) * 2)}' AS {ask.period}, {name} AS value FROM {table} "
             f"WHERE row_id = {row_id}" for name, label in columns]
    union = f"SELECT {ask.period} FROM ({' UNION ALL '.join(parts)})"
    order = f"ORDER BY value {'DESC' if ask.highest else 'ASC'}"
    if ask.threshold is not None:
        return f"{union} WHERE value {ask.threshold[0]} {ask.threshold[1]} {order}"
    return f"{union} {order} LIMIT 1"
