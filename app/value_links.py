"""Where a query's text values are in its tables, when a filter matched no row: found, the filter is moved there.

Example (a table of townships titled "Leavenworth County, Kansas"; the county is in no cell):
    >>> relocate("SELECT COUNT(*) FROM t WHERE township = 'leavenworth'", [table], run).sql
    'SELECT COUNT(*) FROM t WHERE TRUE'

The packaged 1.5B model writes a text filter as the question words it ("site = 'eugene'"), on the column the
question seems to name ("township = 'leavenworth'"), and gets no row: on the 60 seeded wtq_dev questions end to end,
12 of the 24 questions the table path gave up on were queries that returned nothing or a zero count. A second try
with "check your text values" rarely finds the cell, because the model sees only three sample rows. The table does
know: each filter that matches nothing on its own is looked up in the cells, and moved where the text is:
  * the question's own words around the text, when they are a whole cell of the column ('Gandhara' is one of
    several Gandharas; the question says "antara gandhara");
  * a whole word run inside the same column's cells ("Autzen Stadium • Eugene, OR"): matched as words within;
  * a whole cell of exactly one other column: compared with that column;
  * words within exactly one other column's cells: matched there;
  * no cell, but the table's title ("Leavenworth County, Kansas"): every row is about it, so the filter goes.
What is found nowhere gets the column's nearest values, for the model's one retry. Text-to-SQL systems call this
value linking; it is written here because it reads our sandboxed table store, not a schema of a database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from app.row_order import bare_operand
from index.tables import TableInfo

# A query over some tables returning its rows (the table store's sandbox); errors propagate.
Run = Callable[[str, Sequence[TableInfo]], list[tuple]]

_WORD = re.compile(r"[^\W_]+")
_MIN_WITHIN = 3  # letters and digits a text needs before it is looked for inside cells ("o" is in everything)


@dataclass
class Relocation:
    """What `relocate` found: `sql` with the filters moved (None when none moved) and `facts` for the model."""

    sql: str | None = None
    moved: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)


def _words(text: str) -> str:
    """The text as its lower-cased words between single spaces, padded: ' autzen stadium eugene or '."""
    return " " + " ".join(_WORD.findall(text.lower())) + " "


def _words_sql(column: exp.Expression) -> exp.Expression:
    """`_words` in SQL, for a column (the same letters and digits in any script, via RE2's classes)."""
    spaced = exp.RegexpReplace(this=exp.Lower(this=exp.Cast(this=column, to=exp.DataType.build("VARCHAR"))),
                               expression=exp.Literal.string(r"[^\p{L}\p{N}]+"),
                               replacement=exp.Literal.string(" "), modifiers=exp.Literal.string("g"))
    return exp.DPipe(this=exp.DPipe(this=exp.Literal.string(" "), expression=spaced),
                     expression=exp.Literal.string(" "))


def _within(column: exp.Expression, text: str) -> exp.Expression:
    """`column`'s cells hold `text`'s words as a run of whole words ("eugene" in "Autzen Stadium • Eugene, OR")."""
    return exp.Anonymous(this="contains", expressions=[_words_sql(column), exp.Literal.string(_words(text))])


def _same_cell(column: exp.Expression, text: str) -> exp.Expression:
    """`column`'s cell is `text` up to case, spaces and punctuation."""
    return exp.EQ(this=_words_sql(column), expression=exp.Literal.string(_words(text)))


@dataclass(frozen=True)
class _Filter:
    node: exp.Expression  # the predicate as the query writes it
    column: str
    text: str  # the compared text, without LIKE's wildcards


def _filters(tree: exp.Expression) -> list[_Filter]:
    """The query's text filters: a column compared with a string by =, LIKE or ILIKE."""
    out = []
    for node in tree.find_all(exp.EQ, exp.Like, exp.ILike):
        left, right = bare_operand(node.left), bare_operand(node.right)
        if isinstance(right, exp.Column) and isinstance(left, exp.Literal):
            left, right = right, left
        if isinstance(left, exp.Column) and isinstance(right, exp.Literal) and right.is_string:
            like = isinstance(node, (exp.Like, exp.ILike))
            text = right.this.strip("%") if like else right.this
            if _WORD.search(text) and not (like and re.search(r"[%_]", text)):  # an inner wildcard: a real pattern
                out.append(_Filter(node, left.name, text))
    return out


def _count(run: Run, table: TableInfo, condition: exp.Expression, relax: Callable[[str], str]) -> int:
    for column in condition.find_all(exp.Column):
        column.set("table", None)  # "c.city" names an alias of the query's FROM, not of this one
    rows = run(relax(exp.select(exp.Count(this=exp.Star())).from_(table.name).where(condition).sql(dialect="duckdb")),
               [table])
    return int(rows[0][0] or 0) if rows else 0


def _tallies(run: Run, table: TableInfo, conditions: Sequence[exp.Expression]) -> list[int]:
    """How many rows of `table` meet each condition, in one query."""
    if not conditions:
        return []
    sums = [exp.Sum(this=exp.Case(ifs=[exp.If(this=c, true=exp.Literal.number(1))], default=exp.Literal.number(0)))
            for c in conditions]
    rows = run(exp.select(*sums).from_(table.name).sql(dialect="duckdb"), [table])
    return [int(n or 0) for n in rows[0]] if rows else [0] * len(conditions)


def _counts(run: Run, table: TableInfo, columns: Sequence[str], text: str) -> dict[str, tuple[int, int]]:
    """Per text column: (rows whose cell is `text`, rows whose cell holds its words)."""
    cols = [exp.column(name, quoted=True) for name in columns]
    found = _tallies(run, table, [c for col in cols for c in (_same_cell(col, text), _within(col, text))])
    return {name: (found[2 * i], found[2 * i + 1]) for i, name in enumerate(columns)}


def _question_phrases(question: str, text: str, reach: int = 3) -> list[str]:
    """Runs of the question's words that hold `text`'s words with up to `reach` more on either side, longest first:
    the model wrote 'Gandhara' where the question says "antara gandhara", one of several Gandharas in the column."""
    asked, wanted = _WORD.findall(question.lower()), _WORD.findall(text.lower())
    n = len(wanted)
    out: list[str] = []
    for i in (i for i in range(len(asked) - n + 1) if n and asked[i:i + n] == wanted):
        out += [" ".join(asked[i - left:i + n + right]) for left in range(min(reach, i) + 1)
                for right in range(min(reach, len(asked) - i - n) + 1) if left or right]
    return sorted(set(out), key=lambda phrase: (-len(phrase), phrase))


def _whole_cell_phrase(run: Run, table: TableInfo, column: str, phrases: Sequence[str]) -> str | None:
    """The longest of `phrases` that is a whole cell of `column`, in one query."""
    col = exp.column(column, quoted=True)
    found = _tallies(run, table, [_same_cell(col, p) for p in phrases])
    return next((p for p, n in zip(phrases, found, strict=True) if n), None)


def _nearest(run: Run, table: TableInfo, column: str, text: str, k: int = 3) -> list[str]:
    col = exp.column(column, quoted=True)
    sql = (f"SELECT DISTINCT {col.sql(dialect='duckdb')}, jaro_winkler_similarity(lower(CAST("
           f"{col.sql(dialect='duckdb')} AS VARCHAR)), {exp.Literal.string(text.lower()).sql(dialect='duckdb')}) "
           f"AS s FROM {table.name} WHERE {col.sql(dialect='duckdb')} IS NOT NULL ORDER BY s DESC LIMIT {k}")
    return [str(r[0]) for r in run(sql, [table])]


def relocate(sql: str, tables: Sequence[TableInfo], run: Run,
             relax: Callable[[str], str] = lambda sql: sql, question: str = "") -> Relocation:
    """Move each text filter of `sql` that matches no row of its table to where its text is (see the module).

    `relax` gives a query as the store runs it (`relax_text_matches`: text compared without case or punctuation),
    so "matches no row" means what the query meant. Store errors propagate: the caller treats them as nothing
    found."""
    try:
        tree = sqlglot.parse_one(sql, dialect="duckdb")
    except sqlglot.errors.SqlglotError:
        return Relocation()
    found = Relocation()
    replace: dict[int, exp.Expression] = {}
    for f in _filters(tree):
        table = next((t for t in tables if any(c.name.lower() == f.column.lower() for c in t.columns)), None)
        if table is None:
            continue
        column = next(c for c in table.columns if c.name.lower() == f.column.lower())
        if column.type != "text" or _count(run, table, f.node.copy(), relax) > 0:
            continue
        phrase = _whole_cell_phrase(run, table, column.name, _question_phrases(question, f.text))
        if phrase is not None:
            replace[id(f.node)] = _same_cell(exp.column(column.name, quoted=True), phrase)
            found.moved.append(f"'{phrase}' in {column.name}, as the question says")
            continue
        counts = _counts(run, table, [c.name for c in table.columns[1:] if c.type == "text"], f.text)
        long_enough = len("".join(_WORD.findall(f.text))) >= _MIN_WITHIN
        same = [n for n, (whole, _) in counts.items() if whole and n != column.name]
        within = [n for n, (_, part) in counts.items() if part and n != column.name]
        quoted = f"'{f.text}'"
        if long_enough and counts.get(column.name, (0, 0))[1]:
            replace[id(f.node)] = _within(exp.column(column.name, quoted=True), f.text)
            found.moved.append(f"{quoted} within {column.name}")
        elif len(same) == 1:
            replace[id(f.node)] = _same_cell(exp.column(same[0], quoted=True), f.text)
            found.moved.append(f"{quoted} in {same[0]}, not {column.name}")
        elif long_enough and len(within) == 1:
            replace[id(f.node)] = _within(exp.column(within[0], quoted=True), f.text)
            found.moved.append(f"{quoted} within {within[0]}, not {column.name}")
        elif long_enough and not within and _words(f.text) in _words(table.title):
            replace[id(f.node)] = exp.true()
            found.moved.append(f"{quoted} names the table (\"{table.title}\"), no row")
        elif within:
            found.facts.append(f"{quoted} is not in {column.name}; it is within {', '.join(within[:3])}.")
        else:
            near = _nearest(run, table, column.name, f.text)
            if near:
                found.facts.append(f"{quoted} is in no row; the nearest values of {column.name} are "
                                   + ", ".join(f"'{v}'" for v in near) + ".")
    if replace:
        found.sql = tree.transform(lambda node: replace.get(id(node), node), copy=False).sql(dialect="duckdb")
    return found
