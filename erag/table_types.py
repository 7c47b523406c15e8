"""Column types of a parsed table, read the way finance and HR tables are written, for storing it as a SQL table.

Example:
    >>> block = TableBlock(frame=pd.DataFrame({"Name": ["Ada", "Ben"], "Salary (£)": ["61,000", "(1,250)"]}))
    >>> typed = TableTyper().run(block)
    >>> [(c.name, c.type, c.unit) for c in typed.columns]
    [('name', 'text', None), ('salary', 'integer', 'GBP')]
    >>> typed.columns[1].values, typed.columns[1].texts
    ((61000, -1250), ('61,000', '(1,250)'))

Every column gets a SQL name (lower snake case, unique, valid without quotes in DuckDB: a year header "2019"
becomes `y2019`, an empty header `column_3`, a keyword such as "Order" `order_`), the header as written
(`label`), a type ("integer", "number", "date" or "text"), a unit when the header or the cells carry one ("GBP k",
"$ m", "%", "USD", "days") and typed values beside each cell's original text (kept for showing rows).

Cells are read as accountants write them: thousands separators ("1,234", "1 234"), currency signs and codes
($ £ € USD ...), percentages ("12.5%" is 12.5 with unit %), negatives in parentheses ("(1,234)") or with a
unicode minus, blanks and dashes ("", "-", "—", "n/a") as NULL, and dates (ISO, "3 March 2026", "Mar 2026",
"03/04/2026" read day-first only when the column's unambiguous dates say so). A column is a number or date
column only when at least `min_parsed` (90%) of its non-blank cells read as such; otherwise it is text, its
strings unchanged. Numbers are exact `Decimal`s (money must add up to the cent), integers `int`s.

Finance tables often carry more than one header row (TAT-QA: a blank first cell above "2019 | 2018", then
"(in millions)"): leading rows whose first cell is blank above a column of row labels are read as header
rows, their texts joined into the column labels, and a lone unit caption among them ("(in millions)",
"U.S. $ in thousands") or above the row labels ("($ in millions)") applies to every value column. A row of years
or of units under blank headers is a header row even with a caption in its first cell ("For the year ended
December 31: | 2019 | 2018"). Row numbers (`row_ids`) stay those of the source
table, so they match the row ranges that table chunks cite.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation, localcontext
from functools import lru_cache
from typing import Any, Literal

import duckdb
import pandas as pd
import sqlglot
from sqlglot import exp

from erag.schema import TableBlock
from erag.settings import Settings

ColumnType = Literal["integer", "number", "date", "text"]
DateOrder = Literal["auto", "dayfirst", "monthfirst"]
Value = int | Decimal | dt.date | str | None

ROW_ID = "row_id"  # the column every stored table gets: the source row number (reserved for that)
MAX_NAME_CHARS = 48
MAX_SCALE = 9  # digits kept after the decimal point (a SQL DECIMAL(38, 9) still holds 29 integer digits)
MAX_DIGITS = 38  # DECIMAL(38, s) in DuckDB and Postgres: wider numbers stay text rather than lose digits

# Cells that mean "no value" in a typed column (a text column keeps them as written).
_NULL_WORDS = {"", "n/a", "na", "n.a.", "n.a", "nm", "n.m.", "nil", "none", "null", "nan", "#n/a", "tbc", "tbd"}
_DASHES = "-‐‑‒–—―−"  # hyphen, the typographic dashes and the unicode minus
_MINUS = "-−–"  # as a sign: hyphen-minus, unicode minus, en dash (typeset negatives)

# Currency signs to the code written in units; "$" stays "$" (US, Canadian, Australian... dollars).
_SIGNS = {"$": "$", "£": "GBP", "€": "EUR", "¥": "¥", "₹": "INR", "US$": "USD", "A$": "AUD", "C$": "CAD",
          "HK$": "HKD", "S$": "SGD", "NZ$": "NZD", "R$": "BRL"}
_CODES = {"USD", "GBP", "EUR", "JPY", "CHF", "CAD", "AUD", "NZD", "INR", "CNY", "RMB", "HKD", "SGD", "SEK", "NOK",
          "DKK", "PLN", "ZAR", "BRL", "MXN", "KRW", "TWD", "ILS", "AED", "SAR", "CZK", "HUF", "TRY", "RUB"}
_SCALES = {"k": "k", "thousand": "k", "thousands": "k", "000": "k", "000s": "k", "m": "m", "mn": "m", "mm": "m",
           "million": "m", "millions": "m", "b": "bn", "bn": "bn", "billion": "bn", "billions": "bn"}
_SCALE_EXPONENTS = {"k": 3, "m": 6, "bn": 9}
_SCALE_WORDS = {"k": "thousands", "m": "millions", "bn": "billions"}  # a scale without a currency, in words
_PERCENT_WORDS = {"%", "percent", "per cent", "pct", "percentage"}

# Why a hand-written reader: no maintained library reads "(£1,234.5k)" or "USD 12 m" into a value *and* the
# currency, scale and sign it was written with (pandas.to_numeric, babel's parse_decimal and price-parser each
# cover a part: none keeps the unit, which the column's unit is made of). The grammar is kept to one pattern.
_CURRENCY = r"US\$|HK\$|NZ\$|[ACSR]\$|[$£€¥₹]|" + "|".join(sorted(_CODES))
_NUMBER = re.compile(
    rf"""^(?P<cur1>{_CURRENCY})?\s*
    (?P<sign>[-+])?\s*
    (?P<int>\d{{1,3}}(?:,\d{{3}})+|\d{{1,3}}(?:[ \u00a0\u2009\u202f]\d{{3}})+|\d{{1,3}}(?:'\d{{3}})+|\d+)?
    (?P<frac>\.\d+)?
    (?:\s*(?P<scale>k|K|m|M|mn|bn|BN|b|B)(?![^\W\d_]))?
    \s*(?P<pct>%)?
    \s*(?P<cur2>{_CURRENCY})?
    (?:\s+(?P<unit>[^\W\d_]{{1,12}}(?:/[^\W\d_]{{1,8}})?))?$""",
    re.VERBOSE,
)
_SPACES = re.compile(r"\s+")
# An accounting negative, the currency sign outside or inside: "(1,234)", "($1,234)", "$(1,011)", "$ (3.5)", "(4.1)%",
# "(16) bps" (a lower-case unit after it: "(1) Revenue" is a numbered label, not minus one).
_WRAPPED = re.compile(rf"^(?P<cur>{_CURRENCY})?\s*\((?P<inner>[^()]+)\)\s*(?P<tail>%|[a-z]{{1,12}})?$")

# Date formats tried in order; each is applied by pandas to the whole column at once (fast, and pandas'
# strptime rejects impossible days). Numeric day/month orders are decided per column (see _numeric_dates).
_ISO_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M",
                "%Y-%m"]
_WORD_FORMATS = ["%d %B %Y", "%d %b %Y", "%B %d %Y", "%b %d %Y", "%d-%b-%Y", "%d-%b-%y", "%d-%B-%Y", "%B %Y", "%b %Y",
                 "%b-%Y", "%b-%y", "%B-%Y"]
# What may be a date at all (checked before pandas is asked): ISO-like, numeric day/month/year, or a month's name.
_MONTHS = r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b"
_DATE_SHAPE = re.compile(r"^\d{4}[-/.]\d{1,2}([-/.]\d{1,2})?([ T]\d{1,2}:\d{2}(:\d{2})?)?$"
                         r"|^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}$" + rf"|{_MONTHS}.*\d|\d.*{_MONTHS}", re.I)
_DAY_FIRST = ["%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%y"]
_MONTH_FIRST = ["%m/%d/%Y", "%m-%d-%Y", "%m.%d.%Y", "%m/%d/%y"]
_NUMERIC_DATE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})$")
_WEEKDAY = re.compile(r"^(mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*\.?,?\s+", re.I)
_ORDINAL = re.compile(r"\b(\d{1,2})(st|nd|rd|th)\b", re.I)
_MONTH_DOT = re.compile(r"\b(jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\.", re.I)
_SEPT = re.compile(r"\bsept\b", re.I)
_MONTH = re.compile(r"^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?$", re.I)

_US_DOLLARS = re.compile(r"\bU\.?S\.? ?dollars?\b", re.I)
_DOLLARS = re.compile(r"\bdollars?\b", re.I)
_EUROS = re.compile(r"\beuros?\b", re.I)
_STERLING = re.compile(r"\b(pounds sterling|sterling)\b", re.I)
_AUTO_LABEL = re.compile(r"^(column_\d+|Unnamed: \d+.*)$")
_YEAR = re.compile(r"^(19|20)\d\d\b")
_PAREN = re.compile(r"\(([^()]*)\)")
# A short parenthesised measure ("Area (km²)", "Leave (days)"): a unit when it is one word without digits.
_MEASURE = re.compile(r"^/?[^\W\d_]{1,10}(?:/[^\W\d_]{1,8})?$")


@dataclass(frozen=True)
class TypedColumn:
    """One column: SQL `name`, header `label`, `type`, `unit`, and per row the typed value and the original text."""

    name: str
    label: str
    type: ColumnType
    unit: str | None
    values: tuple[Value, ...]
    texts: tuple[str, ...]
    scale: int = 0  # digits after the decimal point of a "number" column (its SQL DECIMAL scale)


@dataclass
class TypedTable:
    """A table ready for SQL: typed columns over the same rows, and where it came from."""

    columns: list[TypedColumn]
    row_ids: list[int]  # 1-based row numbers in the source table (header rows read from the body are skipped)
    title: str = ""
    page: int | None = None
    sheet: str | None = None
    headings: list[str] = field(default_factory=list)
    header_rows: int = 0  # leading body rows read as header rows

    @property
    def n_rows(self) -> int:
        return len(self.row_ids)

    def records(self) -> list[dict[str, Value]]:
        """Rows as {column name: typed value}, with the source row number under `row_id`."""
        names = [c.name for c in self.columns]
        return [{ROW_ID: rid, **dict(zip(names, vals, strict=True))}
                for rid, vals in zip(self.row_ids, zip(*(c.values for c in self.columns), strict=True), strict=True)]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({ROW_ID: self.row_ids, **{c.name: list(c.values) for c in self.columns}})


@dataclass(frozen=True)
class _Number:
    value: Decimal
    decimals: int
    currency: str | None
    scale: str | None  # "k" | "m" | "bn" written on the cell (with a currency)
    percent: bool
    unit: str | None  # any other unit word ("days", "GB", "m" without a currency)


@dataclass(frozen=True)
class _HeaderUnit:
    currency: str | None = None
    scale: str | None = None
    percent: bool = False
    measure: str | None = None

    def __bool__(self) -> bool:
        return bool(self.currency or self.scale or self.percent or self.measure)

    def merged(self, other: _HeaderUnit) -> _HeaderUnit:
        return _HeaderUnit(self.currency or other.currency, self.scale or other.scale,
                           self.percent or other.percent, self.measure or other.measure)


class TableTyper:
    """Infer SQL names, types, units and typed values of a `TableBlock`'s columns.

    Example:
        >>> frame = pd.DataFrame({"Name": ["Ada", "Ben"], "Started": ["03/02/2021", "15/09/2019"],
        ...                       "Salary (£)": ["61,000", "58,500"]})
        >>> typer = TableTyper(min_parsed=0.9, date_order="auto")
        >>> typed = typer.run(TableBlock(frame=frame, title="Staff"))
        >>> typed.columns[1].values  # auto: "15/09/2019" can only be day-first, so the whole column is
        (datetime.date(2021, 2, 3), datetime.date(2019, 9, 15))
        >>> typed.columns[2].type, typed.columns[2].unit
        ('integer', 'GBP')
    """

    def __init__(self, min_parsed: float = 0.9, date_order: DateOrder = "auto", max_header_rows: int = 3) -> None:
        if not 0.5 < min_parsed <= 1.0:
            raise ValueError(f"min_parsed must be above 0.5 and at most 1.0 (a share of cells), got {min_parsed}")
        if date_order not in ("auto", "dayfirst", "monthfirst"):
            raise ValueError(f"date_order must be 'auto', 'dayfirst' or 'monthfirst', got {date_order!r}")
        if max_header_rows < 0:
            raise ValueError(f"max_header_rows must be 0 or more, got {max_header_rows}")
        self.min_parsed = min_parsed
        self.date_order = date_order
        self.max_header_rows = max_header_rows

    @classmethod
    def from_settings(cls, settings: Settings) -> TableTyper:
        return cls(min_parsed=settings.tables_min_parsed, date_order=settings.tables_date_order)

    def run(self, block: TableBlock) -> TypedTable:
        frame = block.frame
        raw = [[_raw(v) for v in row] for row in frame.itertuples(index=False, name=None)]
        texts = [[_text(v) for v in row] for row in raw]
        width = len(frame.columns)
        labels = [_text(c) for c in frame.columns]
        labels = ["" if _AUTO_LABEL.match(lab) else lab.strip() for lab in labels]
        head = self._header_rows(texts, width, labels)
        # A unit above the row labels ("($ in millions)" heading the label column) is the unit of every figure.
        spanning = (_unit_phrase(labels[0].strip("()")) or _HeaderUnit()) if width > 1 else _HeaderUnit()
        if head:
            labels, in_rows = _join_header_rows(labels, texts[:head])
            spanning = spanning.merged(in_rows)
        body_raw, body_texts = raw[head:], texts[head:]
        # A section caption (WTQ: "City Proper" in every cell; TAT-QA: "Consolidated Balance Sheets Data:" alone
        # in a value column) says nothing about the columns' types.
        captions = {i for i, row in enumerate(body_texts) if width >= 3 and _is_caption(row)}
        columns: list[TypedColumn] = []
        names = _Names()
        for j in range(width):
            label = labels[j]
            header_unit, name_source = _header_unit(label)
            if j > 0 or width == 1:
                header_unit = header_unit.merged(spanning)
            cells_raw = [row[j] for row in body_raw]
            cells_text = [row[j] for row in body_texts]
            kind, values, unit, scale = self._type_column(cells_raw, cells_text, captions, header_unit)
            name = names.take(name_source, j)
            columns.append(TypedColumn(name, label or f"column_{j + 1}", kind, unit, tuple(values),
                                       tuple(cells_text), scale))
        return TypedTable(columns=columns, row_ids=list(range(head + 1, len(raw) + 1)), title=block.title,
                          page=block.page, sheet=block.sheet, headings=list(block.headings), header_rows=head)

    # --- header rows ---------------------------------------------------------------------------

    def _header_rows(self, texts: list[list[str]], width: int, labels: list[str]) -> int:
        """How many leading body rows continue the header: a blank first cell, something in the others, and no
        plain number there (years excepted), above a body whose first column mostly holds row labels. A row of
        years under blank headers, or of units only, is a header row whatever its first cell says ("For the year
        ended December 31: | 2019 | 2018", "Revenue by country | $M | $M"): annual reports put a caption there."""
        if width < 2:
            return 0
        count = 0
        for row in texts[: self.max_header_rows]:
            rest = [c.strip() for c in row[1:] if c.strip()]
            # The first cell is blank, or only states the unit of the figures ("$ MILLION", "(in thousands of
            # U.S. dollars)").
            captioned = bool(row[0].strip()) and _unit_phrase(row[0].strip().strip("()")) is None
            if (captioned and not _header_row_under_caption(row, labels)) or not rest:
                break
            if count and len(rest) == 1 and len(row) > 2 and _unit_phrase(rest[0].strip("()")) is None:
                break  # one caption under the header ("Consolidated Statements of Operations Data:") opens the body
            if any(_is_plain_number(c) for c in rest):
                break
            count += 1
        body = texts[count:]
        if not count or not body or sum(1 for r in body if r[0].strip()) < 0.5 * len(body):
            return 0
        return count

    # --- typing one column ---------------------------------------------------------------------

    def _type_column(
        self, cells: list[Any], texts: list[str], captions: set[int], header: _HeaderUnit
    ) -> tuple[ColumnType, list[Value], str | None, int]:
        voting = [i for i, t in enumerate(texts) if i not in captions and not _is_blank(t)]
        # Text stays as written, only without surrounding spaces (so `office = 'Berlin'` finds " Berlin").
        text_values: list[Value] = [t.strip() or None for t in texts]
        if not voting:
            return "text", text_values, header_text_unit(header), 0
        allowed_misses = math.floor(len(voting) * (1 - self.min_parsed) + 1e-9)
        numbers = _read_numbers(cells, texts, voting, allowed_misses)
        if numbers is not None:
            typed = _number_column(numbers, header, len(texts))
            if typed is not None:
                return typed
        dates = self._read_dates(cells, texts, voting, allowed_misses)
        if dates is not None:
            values: list[Value] = [dates.get(i) for i in range(len(texts))]
            return "date", values, None, 0
        return "text", text_values, None, 0

    def _read_dates(self, cells: list[Any], texts: list[str], voting: list[int],
                    allowed_misses: int) -> dict[int, dt.date] | None:
        found: dict[int, dt.date] = {}
        pending: dict[int, str] = {}
        for i in voting:
            cell = cells[i]
            if isinstance(cell, dt.datetime | pd.Timestamp):
                if cell.time() == dt.time(0):
                    found[i] = cell.date()
            elif isinstance(cell, dt.date):
                found[i] = cell
            elif isinstance(cell, str) and len(cell) <= 40:
                tidy = _date_text(cell)
                if _DATE_SHAPE.search(tidy):
                    pending[i] = tidy
        if len(voting) - len(found) - len(pending) > allowed_misses:
            return None
        if pending:
            series = pd.Series(pending, dtype=object)
            worded = series.str.contains(r"[A-Za-z]", regex=True)
            for formats, part in ((_ISO_FORMATS, series[~worded]), (_WORD_FORMATS, series[worded])):
                for fmt in formats:
                    if part.empty:
                        break
                    parsed = pd.to_datetime(part, format=fmt, errors="coerce")
                    hits = parsed.notna() & (parsed == parsed.dt.normalize())  # a time of day is not a date
                    for i, stamp in parsed[hits].items():
                        found[int(i)] = stamp.date()
                    part = part[~hits]
                if formats is _ISO_FORMATS:
                    found.update(self._numeric_dates(part))
        if len(voting) - len(found) > allowed_misses:
            return None
        return found

    def _numeric_dates(self, series: pd.Series) -> dict[int, dt.date]:
        """03/04/2026: day-first or month-first as the setting says, or (auto) as the column's unambiguous
        dates say (25/04/2026 is day-first, 04/25/2026 month-first); a column of only ambiguous dates is not
        read as dates at all, since a wrong month would be silently wrong."""
        series = series[series.str.match(_NUMERIC_DATE)]
        if series.empty:
            return {}
        day_first, month_first = _first_parse(series, _DAY_FIRST), _first_parse(series, _MONTH_FIRST)
        order = self.date_order
        if order == "auto":
            only_day = int((day_first.notna() & month_first.isna()).sum())
            only_month = int((month_first.notna() & day_first.isna()).sum())
            if only_day > only_month:
                order = "dayfirst"
            elif only_month > only_day:
                order = "monthfirst"
            else:  # no evidence (or a tie): only dates that read the same both ways (01/01/2026)
                same = day_first.notna() & (day_first == month_first)
                return {int(i): s.date() for i, s in day_first[same].items()}
        chosen = day_first if order == "dayfirst" else month_first
        return {int(i): s.date() for i, s in chosen[chosen.notna()].items()}


def _first_parse(series: pd.Series, formats: list[str]) -> pd.Series:
    """Each cell parsed by the first of `formats` that reads it (NaT when none does)."""
    parsed = pd.to_datetime(series, format=formats[0], errors="coerce")
    for fmt in formats[1:]:
        parsed = parsed.fillna(pd.to_datetime(series, format=fmt, errors="coerce"))
    return parsed


def type_table(block: TableBlock, min_parsed: float = 0.9, date_order: DateOrder = "auto") -> TypedTable:
    """`TableTyper(min_parsed, date_order).run(block)`."""
    return TableTyper(min_parsed=min_parsed, date_order=date_order).run(block)


# --- numbers -------------------------------------------------------------------------------------


def _read_numbers(cells: list[Any], texts: list[str], voting: list[int],
                  allowed_misses: int) -> dict[int, _Number] | None:
    found: dict[int, _Number] = {}
    misses = 0
    for i in voting:
        cell = cells[i]
        number = _native_number(cell) if not isinstance(cell, str) else _parse_number(texts[i])
        if number is None:
            misses += 1
            if misses > allowed_misses:  # stop early: most text columns fail on their first cells
                return None
        else:
            found[i] = number
    # A unit word must be the column's own ("25 days" on most cells), not one cell's note ("53 WEEKS" above the
    # figures of a report): cells with another or a minority unit word do not count as numbers.
    words = Counter(n.unit for n in found.values() if n.unit)
    if words:
        unit, carried = words.most_common(1)[0]
        keep = unit if 2 * carried >= len(found) else None
        odd = [i for i, n in found.items() if n.unit and n.unit != keep]
        if misses + len(odd) > allowed_misses:
            return None
        for i in odd:
            del found[i]
    return found if found else None


def _native_number(cell: Any) -> _Number | None:
    """A spreadsheet's own int or float (XLSX cells arrive typed); bools and dates are not numbers."""
    if isinstance(cell, bool) or not isinstance(cell, int | float):
        return None
    if isinstance(cell, float) and not math.isfinite(cell):
        return None
    value = Decimal(cell) if isinstance(cell, int) else Decimal(repr(cell))
    decimals = max(0, -value.as_tuple().exponent) if isinstance(cell, float) and not cell.is_integer() else 0
    if decimals == 0:
        value = value.to_integral_value()
    return _Number(value, decimals, None, None, False, None)


@lru_cache(maxsize=65536)
def _parse_number(text: str) -> _Number | None:
    """One cell as a number with what it was written with, or None. Cached: columns repeat their values."""
    s = _SPACES.sub(" ", text.strip().replace("U.S. $", "US$").replace("U.S.$", "US$"))
    negative = False
    wrapped = _WRAPPED.match(s)
    if wrapped:
        tail = wrapped["tail"] or ""
        s = (wrapped["cur"] or "") + wrapped["inner"].strip() + (tail if tail == "%" else f" {tail}" if tail else "")
        negative = True
    if s and s[0] in _MINUS:
        s, negative = s[1:].lstrip(), not negative
    elif s.startswith("+"):
        s = s[1:].lstrip()
    for ch in _MINUS[1:]:  # "$−1,234": a typographic minus after the currency
        s = s.replace(ch, "-")
    match = _NUMBER.match(s)
    if not match or not (match["int"] or match["frac"]):
        return None
    if len(match["int"] or "") > 1 and match["int"].startswith("0") and match["int"].isdigit():
        return None  # "01067", "007": a code (postcode, ID) whose leading zero a number would lose
    if match["sign"] == "-":
        negative = not negative
    if match["cur1"] and match["cur2"]:
        return None
    currency = _currency(match["cur1"] or match["cur2"])
    digits = re.sub(r"[^\d]", "", match["int"] or "0") + (match["frac"] or "")
    try:
        value = Decimal(digits)
    except InvalidOperation:
        return None
    decimals = len(match["frac"]) - 1 if match["frac"] else 0
    scale, unit = match["scale"], match["unit"]
    if scale and not currency:  # "5 m" is five metres as often as five million: keep what was written
        if unit:
            return None
        scale, unit = None, scale
    elif scale:
        scale = _SCALES[scale.lower()]
    if unit and unit.lower() in _SCALES and currency and not scale:  # "USD 12 million"
        scale, unit = _SCALES[unit.lower()], None
    if unit and (unit.lower() in _NULL_WORDS or unit.lower() in _PERCENT_WORDS or _MONTH.match(unit)):
        return None  # "1 July" is a day without its year, not one July
    percent = bool(match["pct"]) or (unit or "").lower() in _PERCENT_WORDS
    if percent and currency:
        return None
    return _Number(-value if negative else value, decimals, currency, scale, percent, unit)


def _number_column(numbers: dict[int, _Number], header: _HeaderUnit,
                   n_rows: int) -> tuple[ColumnType, list[Value], str | None, int] | None:
    """Typed values and the unit of a column whose cells read as numbers, or None when their units disagree
    (dollars beside euros, days beside weeks): such a column stays text, as no sum over it would be right. A few
    percentages among money (a statement's rate row) are left without a value instead."""
    with localcontext() as ctx:
        ctx.prec = 2 * MAX_DIGITS  # exact arithmetic for every value that fits DECIMAL(38, s)
        return _number_values(numbers, header, n_rows)


def _number_values(numbers: dict[int, _Number], header: _HeaderUnit,
                   n_rows: int) -> tuple[ColumnType, list[Value], str | None, int] | None:
    currencies = {n.currency for n in numbers.values() if n.currency}
    units = {n.unit for n in numbers.values() if n.unit}
    if len(currencies) > 1 or len(units) > 1 or (units and currencies):
        return None
    shares = {i for i, n in numbers.items() if n.percent}
    if currencies and shares:
        # A statement's ratio row under its money rows ("Effective income tax rate | 22.6%" below "Total | $196"):
        # the column is money and that row's cells are not, so they keep their text and no value (a sum over the
        # column leaves them out). Reading the column as text instead hid every figure of the year from a query.
        if 3 * len(shares) > len(numbers):
            return None  # as many rates as amounts: no one unit describes the column
        numbers = {i: n for i, n in numbers.items() if i not in shares}
    percent = any(n.percent for n in numbers.values()) or header.percent
    currency = next(iter(currencies), None) or header.currency
    if percent and currencies:
        return None
    written_scales = {n.scale for n in numbers.values() if n.currency}
    values: dict[int, Decimal] = {}
    rescaled = len(written_scales) > 1
    if rescaled:  # "$850k" beside "$1.2m": bring every value to units
        for i, n in numbers.items():
            values[i] = n.value.scaleb(_SCALE_EXPONENTS.get(n.scale or "", 0) if n.currency else 0)
        scale_unit = None
    else:
        values = {i: n.value for i, n in numbers.items()}
        scale_unit = next(iter(written_scales), None) or header.scale
    decimals = max((max(0, -v.normalize().as_tuple().exponent) if v != v.to_integral_value() else 0)
                   for v in values.values())
    # Decimals as written count ("61,000.00" is money to the penny) unless the values were rescaled.
    written = 0 if rescaled else max(n.decimals for n in numbers.values())
    scale = min(max(decimals, written), MAX_SCALE)
    if any(v.adjusted() + 1 + scale > MAX_DIGITS for v in values.values()):
        return None
    unit_word = next(iter(units), None) or header.measure
    if percent:
        unit = "%"
    elif currency:
        unit = " ".join(p for p in (currency, scale_unit) if p)
    elif scale_unit:
        unit = _SCALE_WORDS[scale_unit]
    else:
        unit = unit_word
    out: list[Value] = [None] * n_rows
    if scale == 0 and all(abs(v) < 2**63 for v in values.values()):
        for i, v in values.items():
            out[i] = int(v)
        return "integer", out, unit, 0
    quantum = Decimal(1).scaleb(-scale)
    for i, v in values.items():
        out[i] = v.quantize(quantum)
    return "number", out, unit, scale


def _currency(token: str | None) -> str | None:
    if not token:
        return None
    return _SIGNS.get(token, token.upper())


# --- header labels, units and names --------------------------------------------------------------


def _join_header_rows(labels: list[str], rows: list[list[str]]) -> tuple[list[str], _HeaderUnit]:
    """Column labels from the header and the header rows found in the body, top down. A header row with a
    single filled value cell that is only a unit ("(in millions)") applies to every value column instead."""
    spanning = _HeaderUnit()
    parts = [[lab] if lab else [] for lab in labels]
    for row in rows:
        if row[0].strip():  # a unit caption in the label column (_header_rows let nothing else through)
            spanning = spanning.merged(_unit_phrase(row[0].strip().strip("()")) or _HeaderUnit())
            row = ["", *row[1:]]
        filled = [j for j in range(1, len(row)) if row[j].strip()]
        if len(filled) == 1:
            unit = _unit_phrase(row[filled[0]].strip().strip("()"))
            if unit is not None:
                spanning = spanning.merged(unit)
                continue
        for j, cell in enumerate(row):
            cell = cell.strip()
            if cell and (not parts[j] or parts[j][-1] != cell):
                parts[j].append(cell)
    return [" ".join(p) for p in parts], spanning


def header_text_unit(header: _HeaderUnit) -> str | None:
    """The unit a header alone gives a column (used for columns without typed cells)."""
    if header.percent:
        return "%"
    if header.currency:
        return " ".join(p for p in (header.currency, header.scale) if p)
    if header.scale:
        return _SCALE_WORDS[header.scale]
    return header.measure


def _header_unit(label: str) -> tuple[_HeaderUnit, str]:
    """The unit a header states ("Salary (£)", "2019 €m", "Revenue (USD k)", "Margin %", "(in millions)",
    "Area (km²)") and the label without it, which the column's name is made from ("%" stays, as "pct")."""
    label = label.replace("U.S. $", "US$").replace("U.S.$", "US$")
    whole = _unit_phrase(label.strip().strip("()"))
    if whole is not None:  # the label is only a unit ("USD", "(in millions)"): it still names the column
        return whole, label
    unit = _HeaderUnit()
    rest = label
    for match in _PAREN.finditer(label):
        group = match.group(1)
        found = _unit_phrase(group)
        # A measure ("Area (km²)") is the label's last word, set apart by a space: "Income (loss) from ..." and
        # "Episode(s)" are words of the label.
        at_end = not label[match.end():].strip() and (match.start() == 0 or label[match.start() - 1].isspace())
        if found is None and at_end and _MEASURE.match(group.strip()):
            found = _HeaderUnit(measure=group.strip())
        if found is not None:
            unit = unit.merged(found)
            rest = rest.replace(f"({group})", " ", 1)
    words = rest.split()
    # Trailing unit words without parentheses: "2019 €m", "Revenue USD m", "Salary £", "Margin %". A label that
    # is only a unit ("USD") keeps its words for the name.
    for take in (3, 2, 1):
        if take < len(words):
            found = _unit_phrase(" ".join(words[-take:]))
            if found is not None and (found.currency or found.percent):
                unit = unit.merged(found)
                if not found.percent:  # "%" stays in the name as "pct": "% of total" must not become "of total"
                    words = words[:-take]
                break
    if not unit.percent and re.search(r"%|\bper ?cent\b|\bpct\b", rest, re.I):
        unit = unit.merged(_HeaderUnit(percent=True))
    return unit, " ".join(words)


@lru_cache(maxsize=4096)
def _unit_phrase(text: str) -> _HeaderUnit | None:
    """A phrase that only states a unit: currency, scale, percent ("$ in millions", "£,000", "USD k", "%"),
    else None. A bare "m" or "k" is a scale only beside a currency or after "in" ("in m"): alone it may be metres."""
    s = text.strip().replace("U.S. $", "US$").replace("U.S.$", "US$")
    s = _US_DOLLARS.sub("US$", s)
    s = _DOLLARS.sub("$", _EUROS.sub("€", _STERLING.sub("£", s)))
    if not s:
        return None
    tokens = re.findall(r"US\$|HK\$|NZ\$|[ACSR]\$|[$£€¥₹%]|'?,?000s?|[A-Za-z]+(?: cent)?", s)
    leftover = re.sub(r"US\$|HK\$|NZ\$|[ACSR]\$|[$£€¥₹%]|'?,?000s?|[A-Za-z]+(?: cent)?|[\s,.'()/]", "", s)
    if leftover:
        return None
    currency = scale = None
    percent = saw_in = False
    for token in tokens:
        low = token.lower().lstrip("',")
        if token in _SIGNS or (token.isupper() and token in _CODES):
            currency = _currency(token)
        elif low in _PERCENT_WORDS:
            percent = True
        elif low in _SCALES:
            scale = _SCALES[low]
        elif low in ("in", "of", "amounts", "us", "s", "expressed", "figures"):
            saw_in = saw_in or low == "in"
        else:
            return None
    if scale and not currency and not saw_in and any(t.lower() in ("m", "k", "b", "mn", "bn") for t in tokens):
        return None
    if not (currency or scale or percent):
        return None
    return _HeaderUnit(currency=currency, scale=scale, percent=percent)


class _Names:
    """Unique SQL names for one table's columns (`row_id` is taken by the stored row number)."""

    def __init__(self) -> None:
        self.used = {ROW_ID}

    def take(self, label: str, index: int) -> str:
        base = sql_name(label) or f"column_{index + 1}"
        name, n = base, 2
        while name in self.used:
            name, n = f"{base}_{n}", n + 1
        self.used.add(name)
        return name


def sql_name(label: str, max_chars: int = MAX_NAME_CHARS) -> str:
    """A label as a lower snake case SQL name that DuckDB reads without quotes, or "" when nothing is left.

    >>> sql_name("2019"), sql_name("Salary (£)"), sql_name("Order"), sql_name("% change"), sql_name("名字")
    ('y2019', 'salary', 'order_', 'pct_change', '')
    """
    text = label.replace("%", " pct ").replace("&", " and ").replace("#", " num ").replace("£", " ").replace("€", " ")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    name = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    if not name:
        return ""
    if name[0].isdigit():
        name = ("y" if _YEAR.match(name) else "c") + name
    if len(name) > max_chars:
        cut = name[:max_chars]
        name = cut[: cut.rfind("_")] if "_" in cut[max_chars // 2:] else cut
    name = name.strip("_")
    if not is_plain_identifier(name):
        name += "_"
    return name


@lru_cache(maxsize=8192)
def is_plain_identifier(name: str) -> bool:
    """True when `name` is a lower snake case identifier that DuckDB and sqlglot both read as a plain column."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name) or name in _reserved_words():
        return False
    try:
        select = sqlglot.parse_one(f"SELECT {name} FROM t WHERE {name} IS NULL", read="duckdb")
    except sqlglot.errors.ParseError:
        return False
    column = select.expressions[0] if isinstance(select, exp.Select) and select.expressions else None
    return isinstance(column, exp.Column) and column.name == name and not column.table


@lru_cache(maxsize=1)
def _reserved_words() -> frozenset[str]:
    """DuckDB's words that cannot name a column unquoted ('reserved' and 'type_function': order, left, join...)."""
    con = duckdb.connect(":memory:")
    try:
        rows = con.execute("SELECT keyword_name FROM duckdb_keywords() "
                           "WHERE keyword_category IN ('reserved', 'type_function')").fetchall()
    finally:
        con.close()
    return frozenset(r[0].lower() for r in rows)


# --- cells ---------------------------------------------------------------------------------------


def _raw(value: Any) -> Any:
    """A frame cell with pandas' missing values as None (XLSX sheets arrive with NaN, NaT and typed cells)."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _text(value: Any) -> str:
    """A cell's text as a person reads it: 61000 rather than 61000.0, a date without midnight."""
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.datetime | pd.Timestamp):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _is_blank(text: str) -> bool:
    return text.strip().lower() in _NULL_WORDS or is_dash(text)


def is_dash(text: str) -> bool:
    """A dash standing for a figure ("—", "- - %", "$ —"): nil in a financial statement, where a blank cell is
    nothing at all. Both are NULL in the typed column; a computation over one row may read the dash as zero."""
    core = re.sub(r"[\s%$£€¥₹()]", "", text.strip())
    return bool(core) and all(ch in _DASHES for ch in core)


def _is_plain_number(text: str) -> bool:
    """A figure (not a year, not "53 WEEKS"): what a header row never holds."""
    number = _parse_number(text)
    return number is not None and not number.unit and not _YEAR.match(text.strip())


# A column's year as a header writes it: "2019", "FY 2019", "Fiscal 2018", "2018 (4)" (a footnote mark).
_ANY_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_YEAR_CELL = re.compile(r"^(?:(?:fiscal|fy)\s*)?(?:19|20)\d\d(?:\s*\(\w{1,2}\))?$", re.I)
# A header's words beside the years: "Variance", "Amount", "Yr.-to-Yr. Percent Change" (a letter first, no digit).
_WORD_LABEL = re.compile(r"^[^\W\d][^\d]{0,30}$")


def _header_row_under_caption(row: list[str], labels: list[str]) -> bool:
    """A body row that continues the header although its first cell holds a caption: its value cells are only
    units ("Revenue by country | $M | $M"), or they are two or more distinct years with at most a word or two
    beside them ("For the year ended December 31: | 2019 | 2018 | Variance") under a header that names no year
    and is blank above at least half of those years. A data row of years ("Model X | 1999 | 2005") sits under
    real labels."""
    cells = {j: c.strip() for j, c in enumerate(row) if j > 0 and c.strip()}
    if not cells:
        return False
    if all(_unit_phrase(c.strip("()")) is not None for c in cells.values()):
        return True
    years = {j: c for j, c in cells.items() if _YEAR_CELL.match(c)}
    if len(set(years.values())) < 2 or any(_ANY_YEAR.search(lab) for lab in labels[1:]):
        return False
    if not all(_WORD_LABEL.match(c) for j, c in cells.items() if j not in years):
        return False
    return sum(1 for j in years if not labels[j]) * 2 >= len(years)


def _is_caption(row: list[str]) -> bool:
    """The same text in every filled cell, or one text alone in a value column ("| Consolidated Balance Sheets
    Data: | | |", a section heading of an annual report's table set off from the row labels)."""
    filled = [c.strip() for c in row if c.strip()]
    if len(filled) == 1:
        return not row[0].strip() and _parse_number(filled[0]) is None and not _is_blank(filled[0])
    return len(filled) >= 2 and len(set(filled)) == 1


def _date_text(text: str) -> str:
    """A date cell tidied for strptime: no weekday, ordinal or comma ("Tuesday, March 3rd, 2026")."""
    s = _WEEKDAY.sub("", _SPACES.sub(" ", text.strip()))
    s = _ORDINAL.sub(r"\1", s)
    s = _MONTH_DOT.sub(r"\1", s)
    s = _SEPT.sub("Sep", s)
    return s.replace(",", " ").replace("  ", " ").strip()
