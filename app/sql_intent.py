"""Does the model's query read what the question asks? Four checks the packaged 1.5B model needs on business tables.

Example:
    >>> from index.tables import ColumnInfo, TableInfo
    >>> cols = tuple(ColumnInfo(n, n, t) for n, t in (("row_id", "integer"), ("line_item", "text"),
    ...              ("q3_2026_budget", "integer"), ("q3_2026_actual", "integer")))
    >>> report = TableInfo("report", "k", "d", "v", 0, "Q3 2026 results", "q3.pdf", "Q3", None, 1, cols, 9, ("all",))
    >>> print(actual_not_planned("What was total revenue in Q3 2026?",
    ...                          "SELECT q3_2026_budget FROM report WHERE line_item = 'Total revenue'", [report]))
    SELECT q3_2026_actual FROM report WHERE line_item = 'Total revenue'
    >>> print(label_named("What is the budgeted operating profit for FY 2026?",
    ...       "SELECT fy_2026 FROM summary WHERE line_item = 'Operating expenses - Staff costs'",
    ...       {"line_item": ["Total revenue", "Operating expenses - Staff costs", "Operating profit"]}))
    SELECT fy_2026 FROM summary WHERE line_item = 'Operating profit'
    >>> years_not_read("What was total revenue in Q3 2024?", "SELECT q3_2026_actual FROM report", [report], [])
    ['2024']
    >>> is_total_row_answer("Which department spent most?", [("Total operating expenses",)])
    True

What each catches, seen on the sample company's question set (eval/sets/sample_company):
- `actual_not_planned`: a quarterly report has budget and actual columns side by side; asked "What was total
  revenue in Q3 2026?", the model read the budget column. A question that names no plan (budget, forecast,
  target, plan) asks for what happened, so a planned column with an actual twin is read as that twin.
- `years_not_read`: asked for Q3 2024, the model answered from the Q3 2026 report's only revenue row. A year the
  question names must be read somewhere (the query, the table's title, a column, a cell), else the table does
  not hold the answer and the text path (and its abstention) takes the question.
- `label_named`: asked "the budgeted operating profit for FY 2026", the model filtered the summary sheet on
  "Operating expenses - Staff costs"; a row label the question names word for word is the row it asks about.
- `is_total_row_answer`: asked which department spent most, the model returned the "Total operating expenses"
  row. A which/who question is never answered by a total row unless it asks about totals; `without_rows` runs
  such a query again over the table without its total rows.
- `label_for_which`: asked "which show had the highest rating?", the model selected the rating (9.4), not the
  show. A which/who question asks for a row's name: the query keeps its figure and names the row first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import sqlglot
from sqlglot import exp

from app.evidence import years_named
from app.row_order import bare_operand, plain_select
from erag.table_types import ROW_ID
from index.tables import TableInfo

_PLANNED = re.compile(r"budget\w*|forecast\w*|plan(ned)?|target\w*|estimate\w*|projected", re.I)
_PLANNED_WORD = re.compile(rf"\b(?:{_PLANNED.pattern})\b", re.I)
_AGAINST_PLAN = re.compile(rf"\b(against|versus|vs\.?|compared (to|with)|relative to|over|under|above|below|to|"
                           rf"than|beat|missed?)\s+(the\s+|its\s+|their\s+)?(?:{_PLANNED.pattern})\b", re.I)
TOTAL_ROW = re.compile(r"^\s*(grand |sub-?)?total\b|^\s*all\b", re.IGNORECASE)
_WHICH = re.compile(r"^\s*(which|who|what (department|team|office|segment|region|quarter|division|unit))\b", re.I)
# The noun a which-question asks for ("which show", "what team"); "who" asks for a person.
_ASKED_NOUN = re.compile(r"^\s*(?:which|what)\s+(?:of\s+the\s+)?(\w+)", re.I)
_PERIOD_NOUNS = {"year", "years", "month", "months", "day", "days", "date", "season", "seasons", "quarter", "week",
                 "time", "period", "decade", "century"}
_PERSON_COLUMN = re.compile(r"name|player|person|driver|rider|athlete|candidate|artist|author|winner|member|"
                            r"employee|manager|coach|owner|representative|director|leader|holder", re.I)


def actual_not_planned(question: str, sql: str, tables: Sequence[TableInfo]) -> str | None:
    """`sql` with each planned column (q3_2026_budget) read as its actual twin (q3_2026_actual) when the question
    names no plan and the table has that twin; None when nothing changes."""
    if _PLANNED.search(question):
        return None
    names = {c.name.lower() for t in tables for c in t.columns}

    def twin(node: exp.Expression) -> exp.Expression | None:
        if isinstance(node, exp.Column) and _PLANNED.search(node.name):
            actual = _PLANNED.sub("actual", node.name.lower())
            if actual in names and actual != node.name.lower():
                return exp.column(actual, table=node.table or None)
        return None

    return _rewritten(sql, twin)


def _rewritten(sql: str, replace: Callable[[exp.Expression], exp.Expression | None]) -> str | None:
    """`sql` with every node `replace` gives a replacement for replaced; None when none is (or sql does not
    parse)."""
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.SqlglotError:
        return None
    changed = False

    def visit(node: exp.Expression) -> exp.Expression:
        nonlocal changed
        new = replace(node)
        if new is None:
            return node
        changed = True
        return new

    fixed = tree.transform(visit)
    return fixed.sql(dialect="duckdb") if changed else None


def without_rows(sql: str, rows: dict[str, list[int]]) -> str | None:
    """The query with each table of `rows` (by name) read without those row ids, or None when it cannot be parsed
    or reads none of them. Each reference becomes a subquery under the reference's own name, so the rest of the
    query (columns qualified by the table's name, joins, subqueries over the same table) reads as written: a
    ranking that topped out on a total row is run again over the line items (`is_total_row_answer`)."""

    def narrow(node: exp.Expression) -> exp.Expression | None:
        if not isinstance(node, exp.Table) or node.name.lower() not in rows:
            return None
        ids = ", ".join(str(int(r)) for r in rows[node.name.lower()])
        inner = sqlglot.parse_one(f"SELECT * FROM {node.name} WHERE {ROW_ID} NOT IN ({ids})", dialect="duckdb")
        return exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(node.alias_or_name)))

    return _rewritten(sql, narrow)


def plan_agrees(question: str, table: TableInfo) -> bool:
    """Does the table's name (title, file, sheet) name a plan exactly when the question does? Asked "What was
    total revenue in Q3 2026?", the model read the budget workbook's Q3 column, listed first because its rows
    ranked first; a question that names no plan asks what happened, so a plan's table goes after the others,
    and one that does ("budgeted total revenue") reads the plan's table before a report's budget column. A plan
    named as the yardstick ("the variance against budget", "above forecast") asks about what happened."""
    named = f"{table.title} {table.doc_title} {table.file_name} {table.sheet or ''}"
    asked = _AGAINST_PLAN.sub(" ", question)
    return bool(_PLANNED_WORD.search(asked)) == bool(_PLANNED_WORD.search(named))


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def _phrase_in(words: list[str], asked: list[str]) -> bool:
    n = len(words)
    return n > 0 and any(asked[i:i + n] == words for i in range(len(asked) - n + 1))


def label_named(question: str, sql: str, labels: dict[str, Sequence[str]]) -> str | None:
    """`sql` with a text condition `col = 'Operating expenses - Staff costs'` rewritten to the row label of that
    column the question names word for word ("budgeted operating profit" names the row "Operating profit"), when
    the model's label is not in the question's words; None when nothing changes. `labels` holds each text column's
    values (small tables). Only the longest label named is used, and only when it is the only one that long:
    "total revenue of Platform" keeps 'Revenue - Platform', whose words the question holds."""
    asked = _words(question)

    def fix(node: exp.Expression) -> exp.Expression | None:
        if not isinstance(node, (exp.EQ, exp.Like, exp.ILike)) or node.args.get("negate") or isinstance(
                node.parent, exp.Not):
            return None  # "NOT ILIKE 'total%'" leaves rows out: naming a row there would turn it into a lookup
        column, literal = _bare(node.left), _bare(node.right)
        if not (isinstance(column, exp.Column) and isinstance(literal, exp.Literal) and literal.is_string):
            return None
        values = labels.get(column.name.lower())
        written = _words(literal.this)
        if not values or not written or set(written) <= set(asked):
            return None
        named = [v for v in values if _phrase_in(_words(v), asked)]
        longest = max((len(_words(v)) for v in named), default=0)
        best = [v for v in named if len(_words(v)) == longest]
        if len(set(best)) != 1:
            return None
        return exp.EQ(this=column.copy(), expression=exp.Literal.string(best[0]))

    return _rewritten(sql, fix)


def _bare(node: exp.Expression) -> exp.Expression:
    """`bare_operand`, and a literal's text without LIKE's % wildcards."""
    node = bare_operand(node)
    if isinstance(node, exp.Literal) and node.is_string and "%" in node.this:
        return exp.Literal.string(node.this.strip("%"))
    return node


def years_not_read(question: str, sql: str, tables: Sequence[TableInfo], cells: Sequence[str]) -> list[str]:
    """Years the question names that neither the query, the tables' titles and columns, nor `cells` (the tables'
    text) hold."""
    asked = years_named(question)
    if not asked:
        return []
    seen = " ".join([sql, *(f"{t.title} {t.doc_title} {t.file_name} {t.sheet or ''}" for t in tables),
                     *(f"{c.name} {c.label}" for t in tables for c in t.columns), *cells])
    return [year for year in asked if year not in seen]


def is_total_row_answer(question: str, rows: Sequence[Sequence[object]]) -> bool:
    """A which/who question answered with a total row's label ("Total operating expenses")."""
    if not _WHICH.search(question) or re.search(r"\btotals?\b", question, re.I):
        return False
    labels = [row[0] for row in rows if row and isinstance(row[0], str)]
    return bool(labels) and all(TOTAL_ROW.search(label) for label in labels)


def label_for_which(question: str, sql: str, tables: Sequence[TableInfo]) -> str | None:
    """`sql` with the row's name selected first when a which/who question's query selects only figures; None when
    the query already selects what the question asks for, or is not one SELECT over one of `tables` whose figures
    are plain columns or a MAX/MIN of one (which becomes the row ordered first by that column).

    The name is the column the question's noun names ("which show" -> `show`, "which year" -> `year`), for "who" a
    text column of people, else the table's first text column (where a table keeps its row labels). The figure
    stays beside it, so the answer reads the name with what ranked it.

    >>> from index.tables import ColumnInfo, TableInfo
    >>> cols = tuple(ColumnInfo(n, n, t) for n, t in (("row_id", "integer"), ("show", "text"), ("rating", "number")))
    >>> shows = TableInfo("tv", "k", "d", "v", 0, "Ratings", "tv.csv", None, None, 1, cols, 9, ("all",))
    >>> print(label_for_which("Which show had the highest rating?", "SELECT MAX(rating) FROM tv", [shows]))
    SELECT "show", rating FROM tv ORDER BY rating DESC LIMIT 1
    """
    if not _WHICH.search(question) or re.search(r"\bhow (many|much)\b", question, re.I):
        return None
    tree = plain_select(sql, aggregates=True)
    if tree is None:
        return None
    source = tree.args.get("from_", tree.args.get("from")).this
    info = next((t for t in tables if t.name.lower() == source.name.lower()), None)
    if info is None:
        return None
    kinds = {c.name.lower(): c.type for c in info.columns}
    label = _label_column(question, info)
    extreme: tuple[exp.Column, bool] | None = None
    for projection in tree.expressions:
        node = projection.unalias()
        if isinstance(node, (exp.Max, exp.Min)) and isinstance(node.this, exp.Column) and len(tree.expressions) == 1:
            extreme = (node.this, isinstance(node, exp.Max))
            node = node.this
        if not isinstance(node, exp.Column) or kinds.get(node.name.lower()) not in ("integer", "number"):
            return None  # a name already, an expression or another aggregate: left as written
        if label is not None and node.name.lower() == label.lower():
            return None  # "which year ...?" answered from the year column: what it asks for is selected
    if label is None:
        return None
    named = tree.copy()
    if extreme is not None:
        column, highest = extreme
        named.set("expressions", [exp.column(label), column.copy()])
        named.set("order", exp.Order(expressions=[exp.Ordered(this=column.copy(), desc=highest, nulls_first=False)]))
        named.set("limit", exp.Limit(expression=exp.Literal.number(1)))
    else:
        named.set("expressions", [exp.column(label), *(e.copy() for e in tree.expressions)])
    return named.sql(dialect="duckdb")


def _label_column(question: str, info: TableInfo) -> str | None:
    columns = list(info.columns[1:])
    noun = _ASKED_NOUN.match(question)
    if noun:
        stem = noun.group(1).lower()[:5]
        for column in columns:
            if any(word[:5] == stem for word in _words(f"{column.name} {column.label}")):
                return column.name
    texts = [c for c in columns if c.type == "text"]
    if noun and noun.group(1).lower() in _PERIOD_NOUNS:
        return None  # "which year ...?" with no year column: the date the query selected is the answer's period
    if re.match(r"^\s*who\b", question, re.I):
        for column in texts:
            if _PERSON_COLUMN.search(f"{column.name} {column.label}"):
                return column.name
    return texts[0].name if texts else None
