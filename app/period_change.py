"""Rules-first SQL for the commonest question over a financial table: one row compared between two periods.

Example:
    >>> ask = PeriodQuestion.parse("What was the percentage change in net debt from 2018 to 2019?")
    >>> ask.op, ask.old, ask.new, sorted(ask.subject)
    ('percent', '2018', '2019', ['debt', 'net'])
    >>> PeriodQuestion.parse("What is the change in prepaid expenses between 2019 and 2018?").old
    '2018'
    >>> PeriodQuestion.parse("Who approved the 2019 budget?") is None
    True
    >>> best_row(ask.subject, {3: "Total debt", 4: "Net debt", 5: "Cash and cash equivalents"})
    (4, 1.0)
    >>> period_sql(ask, "erag_t_1", ["y2018", "y2019"], row_id=4)
    'SELECT ROUND((y2019 - y2018) * 100.0 / y2018, 2) AS percentage_change FROM erag_t_1 WHERE row_id = 4'
    >>> PeriodQuestion.parse("What was the average cost of revenues between 2017-2019?").years()
    ['2017', '2018', '2019']
    >>> PeriodQuestion.parse("What is the average specific allowance for credit losses?").years()  # every year
    []
    >>> total = PeriodQuestion.parse("What is the total deposits in 2017 and 2019?")
    >>> total.op, total.years()
    ('sum', ['2017', '2019'])
    >>> PeriodQuestion.parse("What was total revenue in 2019 compared to 2018?") is None  # two years, not a sum
    True
    >>> PeriodQuestion.parse("What is the average total costs for 2017,2018 and 2019?").years()
    ['2017', '2018', '2019']
    >>> PeriodQuestion.parse("What is the average cost in 2015, 2017 and 2019?") is None  # not one span
    True

Why by rule: "What was the change in total debt between 2017 and 2018?" is nearly half of TAT-QA's arithmetic
questions and the everyday question over an annual report. The 1.5B model writes SQL for it unreliably (a
wrong column, a missing sign, `WHERE label = 'total debt'` that matches nothing) and, answering from text, does
the subtraction in its head. The shape is narrow enough to recognise exactly: two years, a change/percentage
change/average/difference/total word ("the total X in 2018 and 2019" adds them up, unless asked "respectively"),
a row label the question names. When any part is not clear-cut (three years named, two rows scoring the same, a
year that heads two columns, a column of two years) this returns nothing and the model writes the query.
The SQL runs through the same sandbox and is shown on the source card like the model's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from app.evidence import word_stems

Op = Literal["change", "percent", "average", "sum"]

YEAR = re.compile(r"\b((?:19|20)\d\d)\b")  # also app/period_peak.py
_YEAR_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")  # y2019, fy_2019
_PERCENT = re.compile(r"(\bpercent(age)?|%)\s*(change|increase|decrease|growth|rise|decline)\b|\bchange\s*\(%\)|"
                      r"\bgrowth rate\b|\brate of (change|growth)\b|\bby what percent(age)?\b", re.I)
_CHANGE = re.compile(r"\b(change|difference|increase|decrease|variance|movement)\b", re.I)
_AVERAGE = re.compile(r"\baverage\b", re.I)
# "the total X in 2018 and 2019", "the sum of X ...", "X in both years": one row added up over the years named.
_SUM = re.compile(r"\b(total|sum|altogether|combined|both)\b", re.I)
# ... unless each year is asked for, or the years are compared: "respectively", "which year had higher ...",
# "in 2019 compared to 2018".
_EACH = re.compile(r"\b(respectively|each|which|higher|lower|more|less|greater|smaller|compared|versus|vs)\b", re.I)
_RANGE = re.compile(r"\b(between|from)\s+(?:(?:fiscal|fy|the years?|years?)\s+)?(?:19|20)\d\d\s*(?:and|to|-)\s*"
                    r"(?:(?:fiscal|fy)\s+)?(?:19|20)\d\d\b|\b(?:19|20)\d\d\s*-\s*(?:19|20)\d\d\b", re.I)
_FROM_TO = re.compile(r"\bfrom\s+(?:(?:fiscal|fy|the year|year)\s+)?((?:19|20)\d\d)\b.*?\bto\s+"
                      r"(?:(?:fiscal|fy|the year|year)\s+)?((?:19|20)\d\d)\b", re.I)
# Words that shape the question rather than name the row: "What was the percentage change in X between ...".
_FRAME = set(word_stems(
    "what was were is are the a an in of for from to between and change changes difference increase decrease "
    "variance movement percentage percent growth rate average how much did does do by year years fiscal fy "
    "value amount company group its their during period compared sum altogether combined both"
))


@dataclass(frozen=True)
class PeriodQuestion:
    """A question comparing one row between two years: `op` over the `old` and `new` year columns."""

    op: Op
    old: str
    new: str
    subject: frozenset[str]  # word stems naming the row

    span: bool = True  # an average or sum reads every year from `old` to `new` ("between 2017 and 2019")

    def years(self) -> list[str]:
        """The years whose columns the computation reads: from the old to the new one, and for an average or a sum
        over a span every year between them ("the average ... between 2017-2019" is over three years); none for
        an average that names no year (every year column of the table)."""
        if not self.old:
            return []
        if self.op in ("average", "sum") and self.span:
            low, high = sorted((int(self.old), int(self.new)))
            return [str(year) for year in range(low, high + 1)]
        return [self.old, self.new]

    @classmethod
    def parse(cls, question: str) -> PeriodQuestion | None:
        years = list(dict.fromkeys(YEAR.findall(question)))
        percent, change, average = (bool(p.search(question)) for p in (_PERCENT, _CHANGE, _AVERAGE))
        if average and (change or percent):  # "the average change" is another computation
            return None
        if not years and average and not _EACH.search(question):
            # "What is the average specific allowance for credit losses?" over a table of years: the row's average
            # over every year the table shows (`years()` is empty: the caller takes the table's year columns).
            words = set(word_stems(question)) - _FRAME
            return cls("average", "", "", frozenset(words), False) if words else None
        if len(years) > 2:
            return cls._listed(question, years, average, change or percent)
        if len(years) != 2:
            return None
        op: Op | None = "percent" if percent else "change" if change else "average" if average else None
        if op is None and _SUM.search(question) and not _EACH.search(question):
            op = "sum"
        if op is None:
            return None
        ordered = _FROM_TO.search(question)
        # "from 2018 to 2019" says the order; "between 2019 and 2018" is read as later minus earlier, as in
        # annual reports (and TAT-QA's answers).
        old, new = (ordered.group(1), ordered.group(2)) if ordered else (min(years), max(years))
        words = set(word_stems(YEAR.sub(" ", question))) - _FRAME
        span = op != "sum" or bool(_RANGE.search(question))  # "in 2017 and 2019" adds those two years only
        return cls(op, old, new, frozenset(words), span) if words else None

    @classmethod
    def _listed(cls, question: str, years: list[str], average: bool, compared: bool) -> PeriodQuestion | None:
        """"The average X for 2017, 2018 and 2019", "the total X in 2017, 2018 and 2019": an average or a sum over
        three or more years named one by one, read as the span they fill; years with a gap between them, or
        compared ("the change ... 2017, 2018 and 2019"), are not this shape."""
        numbers = sorted(int(year) for year in years)
        summed = bool(_SUM.search(question)) and not _EACH.search(question)
        if compared or not (average or summed) or numbers != list(range(numbers[0], numbers[-1] + 1)):
            return None
        words = set(word_stems(YEAR.sub(" ", question))) - _FRAME
        op: Op = "average" if average else "sum"
        return cls(op, str(numbers[0]), str(numbers[-1]), frozenset(words), True) if words else None


def best_row(subject: frozenset[str] | set[str], labels: dict[int, str]) -> tuple[int, float] | None:
    """The row whose label the subject names best and its score (Dice overlap of word stems), or None when no
    label shares half its words with the subject or two different labels score the same."""
    scored: list[tuple[float, int, str]] = []
    for row_id, label in labels.items():
        stems = set(word_stems(label))
        if not stems:
            continue
        shared = len(stems & subject)
        if shared:
            scored.append((2 * shared / (len(stems) + len(subject)), row_id, label.strip().lower()))
    if not scored:
        return None
    scored.sort(key=lambda s: -s[0])
    best = scored[0]
    if best[0] < 0.5 or any(s[0] == best[0] and s[2] != best[2] for s in scored[1:]):
        return None
    return best[1], best[0]


def years_of(name: str, label: str) -> set[str]:
    """The years a column's header or SQL name holds ("Year ended May 31, 2019", `fy_2018`)."""
    return {*YEAR.findall(label), *_YEAR_IN_NAME.findall(name)}


def year_columns(columns: list[tuple[str, str]]) -> list[str]:
    """Every numeric column headed by one year, oldest first; none when a year heads two columns or fewer than
    two years are found (the columns an average over "every year" reads)."""
    found = {name: years_of(name, label) for name, label in columns}
    single = [(years.pop(), name) for name, years in found.items() if len(years) == 1]
    if len(single) < 2 or len({year for year, _ in single}) < len(single):
        return []
    return [name for _, name in sorted(single)]


def year_column(columns: list[tuple[str, str]], year: str) -> str | None:
    """The one numeric column (name, header label) headed by `year` and no other year; None when none or several
    are. "2019 vs 2018 variance" and "2021-2022" are columns of neither year."""
    found = [name for name, label in columns if years_of(name, label) == {year}]
    return found[0] if len(found) == 1 else None


def period_sql(ask: PeriodQuestion, table: str, columns: list[str], row_id: int,
               nil: frozenset[str] = frozenset()) -> str:
    """The query computing `ask` for one row: `columns` are the year columns of `ask.years()`, oldest first;
    those in `nil` hold a dash in that row, which a statement writes for zero ("Preferred stock disposition |
    (9.9) | —": a change of -9.9), so they are read as 0 rather than as a missing value."""
    read = [f"COALESCE({c}, 0)" if c in nil else c for c in columns]
    old, new = read[0], read[-1]
    if ask.op == "percent":
        expr, alias = f"ROUND(({new} - {old}) * 100.0 / {old}, 2)", "percentage_change"
    elif ask.op == "average":
        expr, alias = f"({' + '.join(read)}) / {float(len(read))}", "average"
    elif ask.op == "sum":
        expr, alias = " + ".join(read), "total"
    else:
        expr, alias = f"{new} - {old}", "change"
    return f"SELECT {expr} AS {alias} FROM {table} WHERE row_id = {row_id}"
