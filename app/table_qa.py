"""Answers computed over the real table: the model writes one SQL query, the sandbox runs it, the answer quotes it.

Example:
    >>> qa = TableAnswerer(table_store, generator)
    >>> computed = qa.run("How many employees work in the Berlin office?", sources, groups=("all",))
    >>> computed.sql, computed.result.rows, computed.answer_text()
    ("SELECT count(*) FROM employees WHERE office ILIKE 'Berlin'", [(13,)], '13 [1].')

A 1.5B model reading a few hundred tokens of rows cannot count, sum or rank a table it does not see whole, and
adds unreliably even when it does. A coder model writes SQL well, so when the retrieved sources include tables the
user may read and the question asks for a computation or a row lookup, the model writes one SELECT over those
tables (their schemas: name, title, columns with types and units, a few rows; all rows of a small table). The
query is checked and run in the table store's sandbox (a fresh in-memory DuckDB holding only the tables it names,
no files, no network, time and row limits). An error is shown to the model once, with a request to correct the
query; a second failure or an empty result leaves the question to the text answer. The answer states the
computed value, cites the table's retrieved source, and carries the SQL and the rows the value came from, which
the source card shows as "How this was computed".
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from app.answer_checks import PAY_ASKED, PAY_NAMED
from app.citations import CITATION
from app.evidence import Source, content_words, word_stems
from app.period_change import PeriodQuestion, best_row, period_sql, year_column, year_columns
from app.period_peak import PeakQuestion, peak_sql
from app.prompt import SYSTEM_PROMPT, sql_examples, sql_messages, sql_prompt_starts
from app.row_order import bare_operand, neighbour_of_named, row_order_sql
from app.sql_intent import (
    TOTAL_ROW,
    actual_not_planned,
    is_total_row_answer,
    label_for_which,
    label_named,
    plan_agrees,
    without_rows,
    years_not_read,
)
from app.two_rows import TwoRowQuestion, totals_named, two_row_sql
from app.value_links import relocate
from erag.access import GroupScope
from erag.table_types import is_dash
from index.tables import ColumnInfo, QueryError, QueryResult, StaleTableError, TableInfo, TableRow, TableStore
from ingest.table_summary import SUMMARY_KIND, summary_columns, summary_values

log = logging.getLogger(__name__)

# Words that ask for a computation over rows. A question with none of them ("How do I reset my VPN token?") is a
# question for the text, even when a table is among the sources.
COMPUTE_CUE = re.compile(
    r"\b(how (many|much)|number of|count|total|sum|average|avg|mean|median|highest|lowest|largest|smallest|"
    r"biggest|greatest|least|most|fewest|maximum|minimum|top|bottom|rank\w*|more|less|fewer|compare\w*|combined|"
    r"longest|shortest|oldest|youngest|earliest|tallest|fastest|slowest|farthest|furthest|"
    r"altogether|overall|"
    r"difference|differ|chang\w*|increas\w*|decreas\w*|grow\w*|growth|declin\w*|rise|rose|fell|drop\w*|ratio|"
    r"percent\w*|proportion|share|per)\b",
    re.IGNORECASE,
)
# Words of a row lookup ("which team...", "who was..."): nearly every question has one, so they send a question to
# the table only when a table is the best source. With a policy page first and the staff list third, "What is the
# maternity leave?" had the model count employees (0) instead of reading the policy.
LOOKUP_CUE = re.compile(r"\b(list|which|who|whose|what (was|were|is|are)|when|where|name)\b", re.IGNORECASE)
# Questions that also ask for reasons or context: the computed value goes to the model as one more source.
EXPLAIN_CUE = re.compile(r"\b(why|reason|because|cause\w*|explain\w*|driv\w*|due to|led to|what happened)\b", re.I)
_SQL_START = re.compile(r"\b(select|with)\b", re.IGNORECASE)
_STRING_LITERAL = re.compile(r"('(?:[^']|'')*')")
_PERCENT_LITERAL = re.compile(r"(\d)%(?!\s*[\d(])")
_FENCE = re.compile(r"```(?:sql)?", re.IGNORECASE)
_CITATION = re.compile(rf"\s*{CITATION.pattern}\s*$", re.MULTILINE)
MAX_RESULT_VALUES = 20
TABLE_KINDS = ("table", SUMMARY_KIND)
# The fixed rules in the words the source card and `erag ask` show (a stored turn without one was a change).
RULE_CHANGE = "one row compared between periods"
RULE_PEAK = "the period one row peaks in"
RULE_TWO_ROWS = "two rows of one period set against each other"
_CURRENCY_SIGNS = {"$", "¥"}  # the signs erag/table_types.py keeps as units (£ is GBP, € EUR)
_SCALE_NAMES = {"k": "thousand", "m": "million", "bn": "billion"}  # a currency unit's scale ("$ m"), in words
_ENTITY_QUESTION = re.compile(r"^\s*(who|which|where|when|whose|name)\b", re.IGNORECASE)
# A column of years ("year", "start_year"), not of money per year ("fy_2026", "year_2026")
_YEAR_COLUMN = re.compile(r"^(\w*_)?(year|yr|season)s?$", re.IGNORECASE)
_RULE_MAX_ROWS = 500  # the rule reads every row label; financial statements have dozens
# Two or more capitalised words, as people and products are named ("Daniel Ferreira", "Helios Lens").
_FULL_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)+\b")
_LABEL_MAX_ROWS = 60  # row labels a question may name word for word (app/sql_intent.label_named)


@dataclass
class Computation:
    """One table question: the query that ran (or the error), its result, the tables and source rows behind it."""

    question: str
    sql: str
    result: QueryResult | None
    tables: list[TableInfo]
    source: Source
    rows: list[TableRow] = field(default_factory=list)
    attempts: int = 1
    error: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    unit: str | None = None  # the result's unit when the query decides it (a percentage change); None: from columns
    # The fixed rule that wrote the SQL instead of the model (app/period_change.py, app/period_peak.py), in the words
    # of the source card ("the period one row peaks in"); empty when the model wrote it.
    rule: str = ""
    written: str = ""  # the query before its text matches were relaxed: its literals as the model wrote them
    # The rules that corrected the model's query (app/row_order.py, app/sql_intent.py, app/value_links.py), named
    # for the source card and the evaluation's reports: "written by the model" alone would not say who chose the rows.
    rewrites: list[str] = field(default_factory=list)

    @property
    def by_rule(self) -> bool:
        return bool(self.rule)

    @property
    def ok(self) -> bool:
        return self.result is not None and bool(self.result.rows) and not all(
            v is None for row in self.result.rows for v in row) and not self.reads_a_header()

    @property
    def answered(self) -> bool:
        """A result to state: rows (`ok`), and not a count or sum over a filter that matched nothing."""
        return self.ok and not counted_nothing(self.sql, self.result)

    def reads_a_header(self) -> bool:
        """Every value returned is its own column's header: a header line stored as a row (a TAT-QA table restates
        its headers above a second block of years), not data. "What was the revenue in the fiscal 2019 third
        quarter?" was answered "Total", the total column's header."""
        assert self.result is not None
        columns = self._columns()

        def header(name: str) -> set[str]:
            column = columns.get(name.lower())
            return {column.name.lower(), column.label.strip().lower()} if column else set()

        return all(isinstance(v, str) and v.strip().lower() in header(name)
                   for row in self.result.rows for name, v in zip(self.result.columns, row, strict=True))

    def _columns(self) -> dict[str, ColumnInfo]:
        """The queried tables' columns by lower-cased SQL name."""
        return {c.name.lower(): c for t in self.tables for c in t.columns}

    def values(self) -> str:
        """The result in words: a value, a list of values, or a few rows of 'column: value'."""
        assert self.result is not None
        result = self.result
        if len(result.columns) == 1:
            plain = bool(_YEAR_COLUMN.search(result.columns[0]))  # 2002, not "2,002"
            shown = [show_value(row[0], plain) for row in result.rows[:MAX_RESULT_VALUES] if row[0] is not None]
            more = len(result.rows) - MAX_RESULT_VALUES
            text = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
            unit = self.result_unit()
            if unit == "%" and len(shown) == 1:
                return f"{text}%"
            sign, _, scale = unit.partition(" ")
            if sign in _CURRENCY_SIGNS and len(shown) == 1:  # "$225", "-$1,011", "$230 million" as reports write them
                text = f"-{sign}{text[1:]}" if text.startswith("-") else f"{sign}{text}"
                return f"{text} {_SCALE_NAMES.get(scale, scale)}".strip()
            return f"{text} {unit}" if unit and len(shown) == 1 else text
        lines = ["; ".join(f"{c}: {show_value(v)}" for c, v in zip(result.columns, row, strict=True))
                 for row in result.rows[:5]]
        more = len(result.rows) - 5
        return " | ".join(lines) + (f" (and {more} more rows)" if more > 0 else "")

    def result_unit(self) -> str:
        """The unit of the one column a single-value result reads (sum/avg/min/max/plain), if that column has one."""
        if self.unit is not None:
            return self.unit
        try:
            tree = sqlglot.parse_one(self.sql, dialect="duckdb")
        except sqlglot.errors.SqlglotError:
            return ""
        if not isinstance(tree, exp.Select) or len(tree.expressions) != 1:
            return ""
        projection = tree.expressions[0].unalias()
        if isinstance(projection, exp.Count) or projection.find(exp.Count):
            return ""
        columns = {c.name.lower() for c in projection.find_all(exp.Column)}
        units = {c.unit for t in self.tables for c in t.columns if c.name.lower() in columns and c.unit}
        return units.pop() if len(units) == 1 and len(columns) == 1 else ""

    def reads_what_was_asked(self) -> bool:
        """The query measures something the question names: a summed, averaged, ranked or looked-up column shares a
        word with the question (compared on 5-letter stems: salary / salaries). A small model asked for a salary
        over a budget table computes "staff costs" instead; this keeps such a value from being presented as the
        answer (the text path and its abstention take over). Counting rows, and who/which questions that return a
        name, need no such word. Pay asked for must be read from a column that names pay."""
        try:
            tree = sqlglot.parse_one(self.sql, dialect="duckdb")
        except sqlglot.errors.SqlglotError:
            return False
        columns = self._columns()
        measured: set[str] = set()
        for node in tree.find_all(exp.Sum, exp.Avg):
            measured |= {c.name.lower() for c in node.find_all(exp.Column)}
        select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
        if select is not None and not _ENTITY_QUESTION.search(self.question):
            for projection in select.expressions:
                if not projection.find(exp.AggFunc):
                    measured |= {c.name.lower() for c in projection.find_all(exp.Column)
                                 if c.name.lower() in columns and columns[c.name.lower()].type != "text"}
        if not measured:
            return True
        if PAY_ASKED.search(self.question) and not any(
                PAY_NAMED.search(f"{columns[n].name} {columns[n].label}" if n in columns else n) for n in measured):
            # Pay asked for is read from a column that names pay, as the text path's figures must be: "What is the
            # total salary bill of the HR department?" was answered with HR's quarterly costs, a column named by its
            # period only ("q3_2026"), which the word check below cannot judge.
            return False
        # A column named by a year or a code ("c1870", "y2019") has no word to compare: it is not checked.
        measured = {n for n in measured if re.search(r"[a-z]{3}", re.sub(r"[^a-z]", " ", n))}
        if not measured:
            return True
        asked = _stems(self.question)
        if all(_PERIOD_COLUMN.match(n) for n in measured):
            # A statement's period column ("q3_2026_actual") holds every line item: the row the query filters on
            # names what it measures. "What was total revenue in the quarter?" read q3_2026_actual where line_item
            # is 'Total revenue', and was refused for a column named only by its period.
            try:
                written = sqlglot.parse_one(self.written, dialect="duckdb") if self.written else tree
            except sqlglot.errors.SqlglotError:
                written = tree
            labels = " ".join(str(lit.this) for lit in written.find_all(exp.Literal) if lit.is_string)
            return bool((_stems(labels) & asked) - _GENERIC)
        return any(_stems(f"{columns[n].name} {columns[n].label} {columns[n].unit or ''}" if n in columns else n)
                   & asked for n in measured)

    def where(self) -> str:
        used = self.result.tables if self.result is not None else self.tables
        return ", ".join(dict.fromkeys(t.file_name or t.title for t in used))

    def answer_text(self) -> str:
        """The answer: the computed value, said once, citing the table's source.

        The value comes first and alone: where it was computed is the citation's card ("How this was computed",
        with the table, the SQL and the rows) and the CLI's SQL block, so the text does not repeat the file name;
        "Computed over tbl_3.csv: 25.19%" made a reader (and TAT-QA's token F1) wade through words that were not
        the answer."""
        return f"{self.values()} [{self.source.number}]."

    def as_source(self) -> str:
        """The computation as the text the model reads when it also has to explain (text + table questions)."""
        assert self.result is not None
        return (f"Computed with SQL over {self.where()}:\n{self.sql}\nResult:\n{self.result.text(max_rows=20)}")

    def record(self) -> dict[str, Any]:
        """What a stored turn and the source card keep: the SQL, the result, the table and the rows behind it."""
        result = self.result
        return {
            "sql": self.sql, "error": self.error, "attempts": self.attempts,
            "written_by": "rule" if self.by_rule else "model", "rule": self.rule, "rewrites": list(self.rewrites),
            "columns": list(result.columns) if result else [],
            "rows": [[show_value(v) for v in row] for row in (result.rows[:50] if result else [])],
            "truncated": bool(result and (result.truncated or len(result.rows) > 50)),
            "tables": [{"name": t.name, "file_name": t.file_name, "title": t.title, "sheet": t.sheet, "page": t.page}
                       for t in self.tables],
            "source_rows": [{"row_id": r.row_id, **r.texts} for r in self.rows[:20]],
        }


def _stems(text: str) -> set[str]:
    """Word stems of a text or a snake_case name, numbers left out (a year in a question names no column)."""
    return {stem for stem in word_stems(text) if not stem.isdigit()}


# Stems a row label shares with almost any question about a statement ("Total revenue", "total headcount").
_GENERIC = {"total", "overa", "amoun", "value", "figur", "numbe", "sum"}
# A column named only by its period and whether it is the actual or the plan: "q3_2026_actual", "fy_2026", "h1_budget".
_PERIOD_COLUMN = re.compile(r"^(?:(?:q[1-4]|h[12]|fy|ytd|\d{2,4}|actual|budget|plan|forecast|target)(?:_|$))+$")


# Words an employee uses for the people of a company: "How many people in the staff directory..." asks about the
# employees table, whose name and columns say "employee". Matched as one word when naming tables only.
_PEOPLE = {"peopl", "perso", "staff", "emplo", "colle", "worke", "workf", "headc", "membe"}


# Stems of what a question computes, not of what it is about: "What was the change in total debt?" put a table whose
# row reads "Total change in general and administrative expenses" before the one holding "Total debt" (TAT-QA dev).
# Left out of the words `by_words` looks for; on wtq_dev the first table right is unchanged (0.656 -> 0.657,
# simulated over the stored candidates of 2,831 questions).
_OPERATION = {"chang", "diffe", "incre", "decre", "avera", "perce", "media", "ratio", "growt"}


def _identity_stems(text: str) -> set[str]:
    stems = _stems(text)
    return stems | {"emplo"} if stems & _PEOPLE else stems


def name_stems(table: TableInfo) -> set[str]:
    """Stems of what a table is called: its title, file name and sheet ("staff directory" reaches employees.csv by
    "employees", `_identity_stems`)."""
    return _identity_stems(f"{table.title} {Path(table.file_name).stem} {table.sheet or ''}")


_PHRASE_WORD = re.compile(r"[\w'.&-]+")


def cell_phrases(question: str, longest: int = 4) -> set[str]:
    """Runs of up to `longest` words of the question, lower-cased, that could be a whole cell: not stopwords alone,
    not a bare number (a year or a count matches cells of every table), not one or two letters."""
    words = [w.strip(".,'").lower() for w in _PHRASE_WORD.findall(question)]
    out: set[str] = set()
    for n in range(1, longest + 1):
        for i in range(len(words) - n + 1):
            run = words[i : i + n]
            if not all(run) or not content_words(" ".join(run)):
                continue
            if n == 1 and (len(run[0]) < 3 or run[0].replace(",", "").replace(".", "").isdigit()):
                continue
            out.add(" ".join(run))
    return out


def names_a_cell_and_a_column(question: str, source: Source) -> bool:
    """The question names a whole cell of this table source (a row's label: "Engineering") and, with other words, one
    of its columns ("headcount"): a row-and-column lookup, which a query answers exactly. Asked "What was the
    Engineering headcount on 30 September 2026?", the report's prose ranked first and the model read the company's
    total, 180, for Engineering's 56 in the table its summary described."""
    kind = source.hit.payload.get("kind")
    if kind not in TABLE_KINDS:
        return False
    text = source.hit.text
    if kind == "table":
        table = source.table or {}
        cells = {str(c).strip().lower() for row in table.get("rows") or [] for c in row}
        columns = " ".join(map(str, table.get("columns") or []))
    else:
        cells, columns = summary_values(text), summary_columns(text)
    named = {p for p in cell_phrases(question) if p in cells and not p.replace(" ", "").isdigit()}
    if not named:
        return False
    rest = _stems(question) - _stems(" ".join(named))
    return bool(rest & (_stems(columns) - {"text", "integ", "numbe", "date"}))


def _sum_lines(rows: Sequence[TableRow], label: str, columns: Sequence[str]) -> dict[int, str]:
    """"Total" for each unlabelled row that is the sum of the rows above it in every one of `columns` (see
    `totals_named`): "the total costs in 2018 and 2019" reads a statement's unlabelled sum line. Nothing when a
    row is labelled "Total": the unlabelled lines are then subtotals, and the labelled one is the total."""
    if any(word_stems(str(r.texts.get(label, ""))) == {"total"} for r in rows):
        return {}
    found = [totals_named([(r.row_id, str(r.texts.get(label, "")),
                            0 if is_dash(r.texts.get(column, "")) else r.values.get(column)) for r in rows])
             for column in columns]
    return {row_id: name for row_id, name in found[0].items() if all(row_id in f for f in found[1:])} if found else {}


def _figure_columns(info: TableInfo) -> list[tuple[str, str]]:
    """The (SQL name, header) of a table's number columns after its label column: the columns a rule computes over."""
    return [(c.name, c.label) for c in info.columns[1:] if c.type in ("integer", "number")]


def text_columns(info: TableInfo) -> list[str]:
    """The names of a table's text columns (row_id left out): where its labels and names are."""
    return [c.name for c in info.columns[1:] if c.type == "text"]


def show_value(value: object, plain: bool = False) -> str:
    """A cell as a person writes it: 15,400 and 90,333.33 (`plain`: 2002, for years), dates as ISO, no float
    noise or exponent."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | Decimal | float):
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        if number == number.to_integral_value():
            return f"{int(number)}" if plain else f"{int(number):,}"
        return f"{float(number):,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, dt.date):
        return value.isoformat()
    return " ".join(str(value).split())


def extract_sql(reply: str) -> str:
    """The query in the model's reply: code fences, words before SELECT/WITH and citation markers dropped (the
    shared system message asks every answer to cite, and a small model cites its SQL too), one statement."""
    text = _FENCE.sub(" ", reply)
    match = _SQL_START.search(text)
    if match is None:
        return ""
    sql = text[match.start():].split(";")[0]
    # Coder models escape a quote inside a string the C way ('J\'Adore'); SQL doubles it ('J''Adore').
    sql = sql.replace("\\'", "''")
    # ... and write a percentage as the question does ("ratings = 14.0%"), which SQL reads as a modulo with no
    # right side; the table stores the number.
    sql = "".join(part if part.startswith("'") else _PERCENT_LITERAL.sub(r"\1", part)
                  for part in _STRING_LITERAL.split(sql))
    return _CITATION.sub("", sql).strip()


def one_row_unordered(sql: str) -> str | None:
    """`sql` without its ORDER BY when it aggregates the whole table (no GROUP BY): one row, so the order is moot,
    and DuckDB refuses an order by a plain column ("column must appear in the GROUP BY clause"). The model writes
    "SELECT COUNT(DISTINCT season) ... ORDER BY season DESC" for "how many consecutive times...", and its retry
    kept the ORDER BY. None when the query is not of that shape."""
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.SqlglotError:
        return None
    if not isinstance(tree, exp.Select) or tree.args.get("group") or not tree.args.get("order") or tree.find(
            exp.Window) or not tree.expressions or not all(e.find(exp.AggFunc) for e in tree.expressions):
        return None
    tree.set("order", None)
    return tree.sql(dialect="duckdb")


def relax_text_matches(sql: str, tables: Sequence[TableInfo] = ()) -> str:
    """Text compared as a person means it: `col = 'Text'` and `col LIKE 'text%'` without case and surrounding
    spaces, and a date column compared with a date written the way the table writes it ('January 26, 1982').

    Told to use ILIKE, a small model still writes `name = 'US Bank Plaza'` against a cell written "US Bank plaza",
    and gets no row. Equality with a string literal becomes `lower(trim(col)) = lower(trim('...'))` (no wildcard
    surprises, unlike ILIKE) and LIKE becomes ILIKE, for text columns; a string compared with a DATE column is
    rewritten as an ISO date when it reads as one. The query is otherwise unchanged; unparsable SQL is returned as
    it is, for the store's check to refuse with its own message.
    """
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.SqlglotError:
        return sql
    types = {c.name.lower(): c.type for t in tables for c in t.columns}

    def fold(node: exp.Expression) -> exp.Expression:
        if isinstance(node, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.ILike, exp.Like)):
            left, right = bare_operand(node.left), bare_operand(node.right)
            if isinstance(right, exp.Column) and isinstance(left, exp.Literal):
                left, right = right, left
            if isinstance(left, exp.Column) and isinstance(right, exp.Literal) and right.is_string:
                kind = types.get(left.name.lower(), "text")
                if kind == "date" and not isinstance(node, (exp.Like, exp.ILike)):
                    iso = _iso_date(right.this)
                    if iso is not None:
                        return node.__class__(this=left.copy(), expression=exp.Literal.string(iso))
                elif kind == "text" and (isinstance(node, exp.EQ) or (
                        isinstance(node, (exp.Like, exp.ILike)) and not re.search(r"[%_]", right.this))):
                    return _same_text(left, right.this)
        if isinstance(node, exp.In) and isinstance(node.this, exp.Column) and \
                types.get(node.this.name.lower()) == "date":
            dates = [_iso_date(e.this) if isinstance(e, exp.Literal) and e.is_string else None
                     for e in node.expressions]
            if dates and None not in dates:
                return exp.In(this=node.this.copy(), expressions=[exp.Literal.string(d) for d in dates])
        if isinstance(node, exp.Like):
            return exp.ILike(this=node.this.copy(), expression=node.expression.copy())
        return node

    return tree.transform(fold).sql(dialect="duckdb")


def _same_text(column: exp.Column, text: str) -> exp.Expression:
    """`column` holds `text` up to case, spaces and punctuation, in the whole cell or its first line: "U.S. Bank
    Plaza" is the "US Bank Plaza" asked for, '"Our Way"' is "Our Way", "2nd\n(1956)" is "2nd". Both sides keep only
    letters and digits (any script). A literal that is all punctuation ("—" for a blank) keeps the case-free
    comparison."""
    kept = "".join(ch for ch in text.lower() if ch.isalnum())
    if not kept:
        return exp.EQ(this=exp.Lower(this=exp.Trim(this=column.copy())),
                      expression=exp.Lower(this=exp.Trim(this=exp.Literal.string(text))))

    def letters(value: exp.Expression) -> exp.Expression:
        return exp.RegexpReplace(this=exp.Lower(this=value), expression=exp.Literal.string(r"[^\p{L}\p{N}]"),
                                 replacement=exp.Literal.string(""), modifiers=exp.Literal.string("g"))

    whole = exp.EQ(this=letters(column.copy()), expression=exp.Literal.string(kept))
    # A cell's first line is its value when later lines annotate it ("2nd\n(1956)", a name over a caption).
    first_line = exp.SplitPart(this=column.copy(), delimiter=exp.Chr(expressions=[exp.Literal.number(10)]),
                               part_index=exp.Literal.number(1))
    return exp.Paren(this=exp.Or(this=whole, expression=exp.EQ(this=letters(first_line),
                                                                expression=exp.Literal.string(kept))))


def _iso_date(text: str) -> str | None:
    """'January 26, 1982', '26 Jan 1982', '1982-01-26' as 1982-01-26; None for anything that is not a full date."""
    import pandas as pd

    if not re.search(r"\d{4}", text) or not re.search(r"\d{1,2}\D+\d{4}|\d{4}\D+\d{1,2}", text):
        return None
    try:
        return pd.to_datetime(text, errors="raise").date().isoformat()
    except (ValueError, TypeError, OverflowError):
        return None


NO_ROWS_HINT = ("the query returned no rows. Check each text value against the rows shown (spelling, "
                "abbreviations); match part of a text with ILIKE '%word%'.")
TOTAL_ROW_HINT = ("that is a total row, and the question asks which one: leave total rows out (WHERE <label "
                  "column> NOT ILIKE 'total%').")
# The errors a small model makes most on tables as people write them, each with the fix it misses when it only
# reads the engine's message (on 80 wtq_dev questions, 10 of the 22 queries still failing after a plain retry were
# of these kinds).
_ERROR_HINTS = (
    (re.compile(r"VARCHAR.*(INTEGER|DOUBLE|DECIMAL|BIGINT)|(INTEGER|DOUBLE|DECIMAL|BIGINT).*VARCHAR|"
                r"No function matches.*VARCHAR|Could not convert string .* to (FLOAT|DOUBLE|INT|DECIMAL|BIGINT)",
                re.I | re.S),
     "That column is text: read its number with TRY_CAST(regexp_extract(col, '-?[0-9][0-9,.]*') AS DOUBLE) "
     "after replace(col, ',', '')."),
    (re.compile(r"date field format|Could not convert string .* to DATE|DATE.*VARCHAR", re.I | re.S),
     "Compare dates as the column writes them, or use the ISO form 'YYYY-MM-DD' for a DATE column."),
    (re.compile(r"Referenced column .* not found", re.I),
     "Use only the column names listed under Columns, exactly as written."),
)


def counted_nothing(sql: str, result: QueryResult | None) -> bool:
    """A COUNT or SUM over a WHERE that matched no row (one value, 0 or empty): most often a filter written unlike
    the table's text, not a true zero. It is treated as no rows (one retry, then the text answer), so a wrong
    "0 employees" is never stated; the cost is that a true zero is answered from the text instead."""
    if result is None or len(result.rows) != 1 or len(result.rows[0]) != 1 or result.rows[0][0] not in (0, None):
        return False
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.SqlglotError:
        return False
    return tree.args.get("where") is not None and tree.find(exp.Count, exp.Sum) is not None


def error_with_hint(error: str) -> str:
    """The engine's message, shortened, with the fix for the common mistakes it names."""
    message = " ".join(error.split())[:300]
    hints = [hint for pattern, hint in _ERROR_HINTS if pattern.search(message)]
    return f"{message} {hints[0]}" if hints else message


def _examples(table: TableInfo) -> str:
    """sql_examples with this table's name, its first text column and its first numeric column."""
    label = next(iter(text_columns(table)), table.columns[-1].name)
    measure = next((c.name for c in table.columns[1:] if c.type in ("integer", "number")), None)
    return sql_examples(table.name, label, measure)


def provenance_sql(sql: str) -> str | None:
    """A query for the row ids a result came from, when that is well defined: one table, no join or set operation.

    A lookup keeps its WHERE, ORDER BY and LIMIT (the rows shown are the rows returned); an aggregate keeps only its
    WHERE (the rows counted or summed). Anything more complex gets no row citation rather than a wrong one.
    """
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.SqlglotError:
        return None
    # sqlglot 30 renamed the "from"/"with" args to "from_"/"with_"; read either so the pin can move
    if not isinstance(tree, exp.Select) or tree.args.get("with_", tree.args.get("with")) or tree.args.get("joins"):
        return None
    source = tree.args.get("from_", tree.args.get("from"))
    if source is None or not isinstance(source.this, exp.Table):
        return None
    aggregate = any(e.find(exp.AggFunc) for e in tree.expressions) or tree.args.get("group") is not None
    rows = tree.copy()
    rows.set("expressions", [exp.column("row_id")])
    rows.set("distinct", None)
    for part in ("group", "having") + (("order", "limit", "offset") if aggregate else ()):
        rows.set(part, None)
    if any(w.find(exp.Window) for w in rows.find_all(exp.Window)):
        return None
    if rows.args.get("limit") is None:
        rows = rows.limit(50)
    return rows.sql(dialect="duckdb")


class TableAnswerer:
    """Answer a question by SQL over the tables among its sources; `run` returns a Computation, or None."""

    def __init__(self, tables: TableStore, generator: Any, max_tables: int = 2, sample_rows: int = 3,
                 whole_below: int = 12, max_cell_chars: int = 32, max_sql_tokens: int = 160,
                 schema_tokens: int = 420) -> None:
        if max_tables < 1 or sample_rows < 1 or max_sql_tokens < 16 or schema_tokens < 64:
            raise ValueError(f"need max_tables >= 1, sample_rows >= 1, max_sql_tokens >= 16, schema_tokens >= 64, "
                             f"got {max_tables}, {sample_rows}, {max_sql_tokens}, {schema_tokens}")
        self.tables = tables
        self.generator = generator
        self.max_tables = max_tables
        self.sample_rows = sample_rows
        self.whole_below = whole_below
        self.max_cell_chars = max_cell_chars
        self.max_sql_tokens = max_sql_tokens
        # Prefill runs at ~80 tokens/s on 2 cores: the schema is what a table answer waits for before the first
        # token, so it is kept to a few hundred tokens (rows are dropped from the end, then the second table).
        self.schema_tokens = schema_tokens

    def wants(self, question: str, sources: Sequence[Source]) -> bool:
        """A computation question with a table among the three best sources, or a row lookup with a table first or
        a table among the three best whose cell and column the question names (`names_a_cell_and_a_column`)."""
        if not sources:
            return False
        if COMPUTE_CUE.search(question):
            return any(s.hit.payload.get("kind") in TABLE_KINDS for s in sources[:3])
        if not LOOKUP_CUE.search(question):
            return False
        return sources[0].hit.payload.get("kind") in TABLE_KINDS or any(
            names_a_cell_and_a_column(question, s) for s in sources[:3])

    def candidates(self, sources: Sequence[Source], groups: GroupScope) -> list[tuple[Source, TableInfo]]:
        """The user's catalog tables behind the table sources, best source first, of the version retrieved; then
        the tables of documents whose prose is among the three best sources. Asked "What was total revenue in Q3
        2026?", the quarterly report's highlights paragraph ranked first and its results table not at all, so
        the model computed over the budget, the only table retrieved."""
        wanted = [s for s in sources if s.hit.payload.get("kind") in TABLE_KINDS]
        if not wanted:
            return []
        prose = [s for s in sources[:3] if s.hit.payload.get("kind") not in TABLE_KINDS]
        catalog = self.tables.catalog(groups, doc_ids={s.hit.doc_id for s in [*wanted, *prose]})
        out: list[tuple[Source, TableInfo]] = []
        for source in wanted:
            p = source.hit.payload
            matching = [t for t in catalog if t.doc_id == source.hit.doc_id and t.version == p.get("version")]
            # A document with several tables (sheets, PDF pages): the one this chunk was cut from, by sheet or page.
            exact = [t for t in matching if (p.get("sheet") is not None and t.sheet == p.get("sheet"))
                     or (p.get("page") is not None and t.page == p.get("page"))]
            if not exact and len(matching) > 1:
                # An HTML or DOCX document has neither sheets nor pages: its tables are told apart by the title
                # every table chunk opens with ("Table: Service Desk support hours - ..."); without this the
                # first table of the page was queried for a question about its third.
                caption = source.hit.text.split("\n", 1)[0]
                exact = [t for t in matching if t.title and t.title in caption]
            for table in exact or matching:
                if all(table.key != known.key for _, known in out):
                    out.append((source, table))
        for source in prose:
            for table in catalog:
                if table.doc_id == source.hit.doc_id and table.version == source.hit.payload.get("version") and all(
                        table.key != known.key for _, known in out):
                    out.append((source, table))
        return out

    def schema(self, tables: Sequence[TableInfo]) -> tuple[str, list[TableInfo]]:
        """The tables as the prompt shows them, within `schema_tokens`: columns with types, header and unit, then
        rows (a small table whole, else the first few); returns the text and the tables it kept."""
        blocks: list[str] = []
        kept: list[TableInfo] = []
        for info in tables:
            block = self._block(info)
            if kept and self.generator.count_tokens("\n\n".join([*blocks, block])) > self.schema_tokens:
                break  # the second table does not fit: the best one alone
            blocks.append(block)
            kept.append(info)
        return "\n\n".join(blocks), kept

    def _block(self, info: TableInfo) -> str:
        where = ", ".join(p for p in (info.file_name, f"sheet {info.sheet}" if info.sheet else "",
                                      f"page {info.page}" if info.page is not None else "") if p)
        head = [f'TABLE {info.name}: "{info.title}" ({where}), {info.row_count:,} rows. Columns:']
        for c in info.columns[1:]:  # row_id is explained once, in the row listing
            label = "" if c.label.lower().replace(" ", "_") == c.name else f' "{c.label}"'
            head.append(f"  {c.name} {c.sql_type.split('(')[0]}{label}" + (f" ({c.unit})" if c.unit else ""))
        limit = info.row_count if info.row_count <= self.whole_below else self.sample_rows
        names = [c.name for c in info.columns]
        rows = [
            "| " + " | ".join([str(r.row_id)] + [self._cell(r.texts.get(n, "")) for n in names[1:]]) + " |"
            for r in self.tables.rows(info, limit=max(limit, 1))
        ]
        title = ("All rows" if limit >= info.row_count else "First rows") + " (row_id = row number):"
        totals = self._total_rows(info)
        if totals:
            head.append(f"Rows {', '.join(map(str, totals))} are totals: leave them out unless the question asks for "
                        "that total.")
        while rows:
            block = "\n".join([*head, title, "| " + " | ".join(names) + " |", *rows])
            if len(rows) == 1 or self.generator.count_tokens(block) <= self.schema_tokens:
                return block
            rows = rows[:-1]
            title = "First rows (row_id = row number):"
        return "\n".join(head)

    def _past_totals(self, computation: Computation, sql: str, tables: Sequence[TableInfo]) -> bool:
        """Run `sql` again over the tables without their total rows, keeping the result when it names a line item
        (True). "Which department had the highest operating expenses?" ranked "Total operating expenses" first;
        told so, the model wrote the same query again. Leaving the rows out is what the hint asks of it, done
        without a second query from the model."""
        rows = {t.name.lower(): ids for t in tables if (ids := self._total_rows(t))}
        narrowed = without_rows(sql, rows) if rows else None
        if narrowed is None:
            return False
        try:
            result = self.tables.query(relax_text_matches(narrowed, tables), tables)
        except QueryError:
            return False
        if not result.rows or is_total_row_answer(computation.question, result.rows):
            return False
        computation.result, computation.sql = result, result.sql
        computation.rewrites.append("total rows left out")
        return computation.ok

    def _relocated(self, computation: Computation, sql: str, tables: Sequence[TableInfo]) -> list[str]:
        """Run `sql` again with its text filters moved to where the tables hold their text (`relocate`), keeping
        the result when it has rows; returns what was found for the model's retry otherwise."""
        def run(query: str, read: Sequence[TableInfo]) -> list[tuple]:
            return self.tables.query(query, read).rows

        try:
            found = relocate(sql, tables, run, relax=lambda q: relax_text_matches(q, tables),
                             question=computation.question)
            result = self.tables.query(relax_text_matches(found.sql, tables), tables) if found.sql else None
        except QueryError:
            return []
        if result is not None and result.rows and not counted_nothing(result.sql, result):
            computation.result, computation.sql = result, result.sql
            computation.rewrites.append("text found in " + "; ".join(found.moved))
            return []
        return found.facts

    def _total_rows(self, info: TableInfo) -> list[int]:
        """Row ids whose first text cell reads as a total ("Total revenue", "Grand total"): a small model counts and
        ranks them with the line items unless told which they are."""
        first_text = next(iter(text_columns(info)), None)
        if first_text is None or info.row_count > 200:
            return []
        return [r.row_id for r in self.tables.rows(info, limit=info.row_count)
                if TOTAL_ROW.search(str(r.texts.get(first_text, "")))][:5]

    def _cell(self, text: str) -> str:
        text = " ".join(str(text).split()).replace("|", "/")
        return text if len(text) <= self.max_cell_chars else text[: self.max_cell_chars - 1] + "…"

    def keep_starts(self, groups: GroupScope, stop: Callable[[], bool] = lambda: False, limit: int = 16) -> int:
        """Have the generator evaluate and keep, while it is idle, the start of a SQL prompt over each table `groups`
        may read (its block alone): the first question over a table then evaluates only the rest (the task, a
        second table), not ~300-700 tokens of schema. Returns how many tables were kept; stops when `stop()`.

        Only a catalog of at most `limit` tables is kept whole (half the generator's kept states, so questions keep
        room for theirs); a larger one is left to the states questions leave: an arbitrary part of hundreds of
        tables would hold the model for minutes and be pushed out by the first questions."""
        catalog = self.tables.catalog(groups)
        if len(catalog) > limit:
            log.info("%d tables: their SQL starts are kept as questions read them, not ahead", len(catalog))
            return 0
        kept = 0
        for info in catalog:
            if stop():
                break
            try:
                block = self._block(info)
            except StaleTableError:
                continue  # replaced meanwhile: the next question sees the new version
            while not stop():  # while a question holds the model, it goes first
                if self.generator.keep(SYSTEM_PROMPT, sql_prompt_starts(block)[:1], wait_s=1.0):
                    kept += 1
                    break
        return kept

    def run(self, question: str, sources: Sequence[Source], groups: GroupScope) -> Computation | None:
        """Write, check and run one query (one retry after an error); None when no table of the sources applies."""
        ordered = self.ordered(question, self.candidates(sources, groups))
        # A rule reads every candidate, not only the tables the model would see: that a table has the question's
        # years as columns and a row it names is itself the evidence (no model call, a few hundred rows at most).
        # "What was the change in total debt between 2017 and 2018?" ranked the only such table third, after a
        # table of expense changes and a balance sheet without 2017.
        return self.compute(question, ordered[: self.max_tables], ruled_over=ordered) if ordered else None

    def ordered(self, question: str, pairs: list[tuple[Source, TableInfo]]) -> list[tuple[Source, TableInfo]]:
        """The candidate tables best first: a table whose plan agrees with the question's (`plan_agrees`), then the
        words the question shares with each table (`by_words`), then a person's own row (`_by_own_row`)."""
        return self._by_own_row(question, self.by_words(question, pairs))

    def by_words(self, question: str, pairs: list[tuple[Source, TableInfo]],
                 rank_weight: float = 0.5) -> list[tuple[Source, TableInfo]]:
        """Tables whose plan agrees with the question's first (a budget for "budgeted", else actuals), then by the
        question's words found anywhere in the table (its name, counted twice, its column labels and its cells),
        each weighted by how few of the candidates hold it, less `rank_weight` per place its source is ranked
        lower (by candidate order where no source is given).

        Retrieval ranks a chunk of rows, not the table: "who scored more points, larry johnson or charlie ward?"
        reached a hockey table whose chunk said "points". Rarity among the candidates, not a count, is what tells
        tables apart: on wtq_dev, counting the name and column words the question shares ("year", "team" name a
        column of most tables) put the gold table first less often than retrieval order does (0.578 against 0.641
        of 2,831 questions, simulated); with the cell counts after it 0.611, with these weights 0.650 (0.641 on the
        seeded half rank_weight was chosen on, 0.659 on the other). The name counts twice: "staff" in the
        budget's "Staff costs" must not outweigh "employees" naming employees.csv for "the staff directory"."""
        if len(pairs) < 2:
            return pairs
        asked = _identity_stems(question) - _OPERATION
        names = [name_stems(t) for _, t in pairs]
        words = [name | self._word_stems(t) for name, (_, t) in zip(names, pairs, strict=True)]
        held = {w: sum(w in found for found in words) for w in asked}
        weight = {w: math.log((len(pairs) + 1) / (n + 0.5)) for w, n in held.items()}

        def score(i: int) -> float:
            source = pairs[i][0]
            rank = source.number - 1 if source is not None else i  # the chunk's place: two chunks of one table count
            return (sum(weight[w] for w in asked & words[i]) + sum(weight[w] for w in asked & names[i])
                    - rank_weight * rank)

        order = sorted(range(len(pairs)), key=lambda i: (not plan_agrees(question, pairs[i][1]), -score(i)))
        return [pairs[i] for i in order]

    def _word_stems(self, info: TableInfo, limit: int = 500) -> set[str]:
        """Stems of a table's column labels and of the cells of its first `limit` rows (labels only when the table
        was replaced meanwhile)."""
        labels = _identity_stems(" ".join(c.label for c in info.columns[1:]))
        try:
            rows = self.tables.rows(info, limit=limit)
        except StaleTableError:
            return labels
        return labels | word_stems(" ".join(str(v) for r in rows for v in r.texts.values()))

    def _first_row(self, sql: str, info: TableInfo) -> tuple | None:
        """The first row of a query over one table, or None when the table cannot be read (replaced meanwhile)."""
        try:
            found = self.tables.query(sql, [info])
        except (QueryError, StaleTableError):
            return None
        return found.rows[0] if found.rows else None

    def _by_own_row(self, question: str, pairs: list[tuple[Source, TableInfo]]) -> list[tuple[Source, TableInfo]]:
        """Tables where a name the question gives ("Daniel Ferreira") fills one column in exactly one row first: that
        is the name's own row. Asked "Which office is Daniel Ferreira based in?", the model read the budget, where he
        owns three rows (one per office), instead of the staff directory, where he has one."""
        names = list(dict.fromkeys(_FULL_NAME.findall(question)))
        if not names or len(pairs) < 2:
            return pairs

        def own_row(pair: tuple[Source, TableInfo]) -> bool:
            info = pair[1]
            text = text_columns(info)
            if not text:
                return False
            # Rows per (column, name): a manager column names him four times, his own row's name column once.
            counts = ", ".join(f"SUM(CASE WHEN lower(trim(\"{c}\")) = '{n.lower().replace(chr(39), chr(39) * 2)}' "
                               f"THEN 1 ELSE 0 END)" for c in text for n in names)
            row = self._first_row(f"SELECT {counts} FROM {info.name}", info)
            return row is not None and 1 in row

        return sorted(pairs, key=lambda pair: not own_row(pair))  # stable: the order so far breaks ties

    def compute(self, question: str, pairs: list[tuple[Source, TableInfo]],
                ruled_over: list[tuple[Source, TableInfo]] | None = None) -> Computation:
        """The query over these (source, table) pairs, best first: the evaluation calls this with the gold table.
        The rules (`by_rule`) look at `ruled_over` when given, else at `pairs`."""
        import time

        started = time.perf_counter()
        ruled = self.by_rule(question, ruled_over or pairs)
        if ruled is not None:
            ruled.timings["sql_s"] = time.perf_counter() - started
            return ruled
        schema, tables = self.schema([t for _, t in pairs])
        pairs = [(s, t) for s, t in pairs if t in tables]
        computation = Computation(question, "", None, tables, pairs[0][0])
        examples = _examples(tables[0])
        labels = self._labels(tables)
        previous, error = "", ""
        shared = sql_prompt_starts(schema, examples)
        for attempt in (1, 2):
            computation.attempts = attempt
            reply = self.generator.complete(sql_messages(question, schema, previous, error, examples),
                                            max_tokens=self.max_sql_tokens, stop=[";", "\n\n\n"],
                                            shared=shared)
            sql = extract_sql(reply)
            computation.rewrites = []
            for name, rule in (("row order", lambda q: row_order_sql(question, q)
                                or neighbour_of_named(question, q, labels)),
                               ("actual figures", lambda q: actual_not_planned(question, q, tables)),
                               ("row label named", lambda q: label_named(question, q, labels)),
                               ("row name selected", lambda q: label_for_which(question, q, tables)),
                               ("order of one row dropped", one_row_unordered)):
                fixed = rule(sql) if sql else None
                if fixed:
                    sql = fixed
                    computation.rewrites.append(name)
            computation.sql = computation.written = sql
            if not sql:
                error = "the reply held no SELECT query"
                previous = reply.strip()[:300]
                continue
            try:
                computation.result = self.tables.query(relax_text_matches(sql, tables), tables)
                computation.sql = computation.result.sql
                error = ""
                total = computation.ok and is_total_row_answer(question, computation.result.rows)
                if total and self._past_totals(computation, sql, tables):
                    total = False
                facts = [] if total or computation.answered else self._relocated(computation, sql, tables)
                if not total and computation.answered:
                    break
                if attempt == 2:
                    computation.result = None  # nothing matched twice: the text answer takes the question
                    break
                # No rows is most often a text value written otherwise than in the table ("US Bank Plaza" for
                # "U.S. Bank Plaza"): one retry is cheap, as the generator keeps the evaluated schema (`shared`).
                error, previous = (TOTAL_ROW_HINT if total else " ".join([NO_ROWS_HINT, *facts])), sql
            except StaleTableError as exc:  # replaced while we worked: the next question sees the new version
                error = str(exc)
                break
            except QueryError as exc:
                error, previous = error_with_hint(str(exc)), sql
        missing = self._years_not_read(computation) if computation.ok else []
        if computation.ok and not computation.reads_what_was_asked():
            computation.error = "the query measures a column the question does not mention"
            computation.result = None
        elif missing:
            computation.error = f"the tables read hold no {', '.join(missing)}"
            computation.result = None
        else:
            computation.error = error
        computation.timings["sql_s"] = time.perf_counter() - started
        if computation.ok:
            computation.rows = self._source_rows(computation)
            computation.source = self._cited_source(computation, pairs)
        return computation

    def _labels(self, tables: Sequence[TableInfo]) -> dict[str, list[str]]:
        """Each text column's values, for tables of statement size (their row labels); big tables give none."""
        out: dict[str, list[str]] = {}
        for info in tables:
            if info.row_count > _LABEL_MAX_ROWS:
                continue
            text = text_columns(info)
            for row in self.tables.rows(info, limit=info.row_count):
                for name in text:
                    out.setdefault(name.lower(), []).append(str(row.texts.get(name, "")))
        return out

    def _years_not_read(self, computation: Computation) -> list[str]:
        """Years the question names that the query, the tables it read and their cells leave out (the Q3 2026
        report read for Q3 2024). The cells are read only when the query and the tables' names miss a year."""
        read = computation.result.tables if computation.result is not None else computation.tables
        missing = years_not_read(computation.question, computation.sql, read, [])
        if not missing:
            return []
        cells = [" ".join(map(str, r.texts.values())) for t in read
                 for r in self.tables.rows(t, limit=min(t.row_count, _RULE_MAX_ROWS))]
        return years_not_read(computation.question, computation.sql, read, cells)

    def by_rule(self, question: str, pairs: list[tuple[Source, TableInfo]]) -> Computation | None:
        """Three question shapes computed without the model: one row compared between years (app/period_change.py),
        the period a row peaks in or passes a threshold (app/period_peak.py), and two rows of one year
        (app/two_rows.py), over the candidate table whose row labels the question names best (ties: retrieval
        order); None when the question or the tables are not clearly of that shape."""
        change = PeriodQuestion.parse(question)
        peak = None if change is not None else PeakQuestion.parse(question)
        if change is None and peak is None:
            two = TwoRowQuestion.parse(question)
            return self._by_two_rows(question, two, pairs) if two is not None else None
        subject = change.subject if change is not None else peak.subject  # type: ignore[union-attr]
        best: tuple[float, Source, TableInfo, list[tuple[str, str]], TableRow] | None = None
        for source, info in pairs:
            numeric = _figure_columns(info)
            if change is not None and not change.years():
                columns = [(c, c) for c in year_columns(numeric)]
            elif change is not None:
                found_columns = [year_column(numeric, year) for year in change.years()]
                columns = [(c, c) for c in found_columns if c] if None not in found_columns else []
            else:
                columns = peak.columns(numeric)  # type: ignore[union-attr]
            label = next(iter(text_columns(info)), None)
            if not columns or label is None or info.row_count > _RULE_MAX_ROWS:
                continue
            # Only rows with something in those columns: a section heading ("Adjusted EBITDA:") above the row of the
            # same name ("Adjusted EBITDA") would otherwise tie with it. A row whose cells there are text (a rate
            # row left without values in a money column) competes, so that naming it is not read as naming the
            # next best row; it cannot be computed (below).
            read = self.tables.rows(info, limit=info.row_count)
            rows = {r.row_id: r for r in read if any(str(r.texts.get(name, "")).strip() for name, _ in columns)}
            labels = {row_id: str(r.texts.get(label, "")) for row_id, r in rows.items()}
            labels.update(_sum_lines(read, label, [name for name, _ in columns]))
            found = best_row(subject, labels)
            if found is not None and change is not None and not change.years() and "avera" in word_stems(
                    labels[found[0]]):
                found = None  # "the average price per share" names a row that is an average, not an average to take
            if found is not None and (best is None or found[1] > best[0]):
                best = (found[1], source, info, columns, rows[found[0]])
        if best is None:
            return None
        _, source, info, columns, row = best
        if not any(row.values.get(name) is not None or is_dash(row.texts.get(name, "")) for name, _ in columns):
            return None  # the row named holds no figure in those columns (a rate among money)
        row_id = row.row_id
        if change is not None:
            names = [name for name, _ in columns]
            nil = frozenset(name for name in names if row.values.get(name) is None and is_dash(row.texts.get(name, "")))
            if change.op == "percent" and names[0] in nil:
                return None  # a change from nothing has no percentage
            sql = period_sql(change, info.name, names, row_id, nil)
        else:
            sql = peak_sql(peak, info.name, columns, row_id)  # type: ignore[arg-type]
        unit = None
        if change is not None:
            # A change, sum or average of year columns keeps the unit they share ("$280", as the two-row rule's
            # "$225"); the SQL's own projection reads two columns, whose unit `result_unit` will not guess.
            shared = {c.unit or "" for c in info.columns if c.name in {name for name, _ in columns}}
            unit = "%" if change.op == "percent" else shared.pop() if len(shared) == 1 else None
        return self._ruled(question, sql, source, info, [row], unit=unit,
                           rule=RULE_CHANGE if change is not None else RULE_PEAK)

    def _ruled(self, question: str, sql: str, source: Source, info: TableInfo, rows: list[TableRow],
               unit: str | None, rule: str) -> Computation | None:
        """A rule's query run in the sandbox, with the rows it read as its source rows; None when it fails or
        returns nothing the chat could state (the model then writes the query)."""
        try:
            result = self.tables.query(sql, [info])
        except (QueryError, StaleTableError):
            return None
        computation = Computation(question, result.sql, result, [info], source, attempts=0, unit=unit, rule=rule)
        if not computation.ok:
            return None
        computation.rows = rows
        computation.source = self._cited_source(computation, [(source, info)])
        return computation

    def _by_two_rows(self, question: str, ask: TwoRowQuestion,
                     pairs: list[tuple[Source, TableInfo]]) -> Computation | None:
        """Two rows of one period column set against each other (app/two_rows.py), over the candidate table whose
        row labels the question names best (ties: retrieval order)."""
        best: tuple[float, Source, TableInfo, str, TableRow, TableRow] | None = None
        for source, info in pairs:
            numeric = _figure_columns(info)
            column = year_column(numeric, ask.year) if ask.year else (numeric[0][0] if len(numeric) == 1 else None)
            label = next(iter(text_columns(info)), None)
            if column is None or label is None or info.row_count > _RULE_MAX_ROWS:
                continue
            read = self.tables.rows(info, limit=info.row_count)
            # Rows with anything in the column compete (as in by_rule); only those with a figure can be computed.
            rows = {r.row_id: r for r in read if str(r.texts.get(column, "")).strip()}
            labels = {row_id: str(r.texts.get(label, "")) for row_id, r in rows.items()}
            labels.update(_sum_lines(read, label, [column]))
            found = ask.pick(labels)
            if found is not None and (best is None or found[2] > best[0]):
                best = (found[2], source, info, column, rows[found[0]], rows[found[1]])
        if best is None:
            return None
        _, source, info, column, first, second = best
        if first.values.get(column) is None or second.values.get(column) is None:
            return None  # a dash or a rate left without a value in a money column
        if ask.op in ("share", "ratio") and not second.values.get(column):
            return None  # a share of nothing
        # A share is a percentage and a ratio has no unit; a difference or a sum keeps the column's.
        return self._ruled(question, two_row_sql(ask, info.name, column, first.row_id, second.row_id), source, info,
                           [first, second], unit={"share": "%", "ratio": ""}.get(ask.op), rule=RULE_TWO_ROWS)

    def _source_rows(self, computation: Computation) -> list[TableRow]:
        """The source rows the result came from (see `provenance_sql`); none when that is not well defined."""
        query = provenance_sql(computation.sql)
        if query is None:
            return []
        try:
            found = self.tables.query(query, computation.result.tables if computation.result else [], max_rows=50)
        except QueryError:
            return []
        ids = [int(row[0]) for row in found.rows if row and row[0] is not None]
        if not ids:
            return []
        table = found.tables[0]
        return self.tables.rows(table, limit=len(ids), row_ids=ids)

    @staticmethod
    def _cited_source(computation: Computation, pairs: list[tuple[Source, TableInfo]]) -> Source:
        """The retrieved chunk to cite: the one of the table the query read holding most of the rows behind it."""
        used = {t.key for t in (computation.result.tables if computation.result else [])}
        candidates = [s for s, t in pairs if t.key in used] or [pairs[0][0]]
        row_ids = {r.row_id for r in computation.rows}

        def covered(source: Source) -> int:
            p = source.hit.payload
            start, end = p.get("row_start"), p.get("row_end")
            if start is None or end is None:
                return 0
            return sum(1 for r in row_ids if start <= r <= end)

        return max(candidates, key=covered)

