"""The table-query sandbox: one checked SELECT, run in a fresh in-memory DuckDB holding copies of the permitted tables.

Example:
    >>> import pyarrow as pa
    >>> staff = pa.table({"name": ["Ada", "Ben", "Cy"], "office": ["Leeds", "Berlin", "Leeds"]})
    >>> checked = check_query("SELECT office, count(*) FROM staff GROUP BY office ORDER BY office", ["staff", "budget"])
    >>> checked.tables
    ('staff',)
    >>> result = SqlSandbox(max_rows=200, timeout_s=5).run(checked, {"staff": staff})
    >>> result.columns, result.rows
    (['office', 'count_star()'], [('Berlin', 1), ('Leeds', 2)])

Two independent walls, so that neither alone has to be perfect:

1. `check_query` parses the SQL with sqlglot (DuckDB dialect) and accepts exactly one SELECT (CTEs, subqueries,
   UNION/INTERSECT/EXCEPT, joins, aggregates, window functions) built only from an allow-list of syntax nodes and
   of ordinary scalar, aggregate and window functions; every table it names must be one of the permitted tables
   (or a CTE visible at that point). Statements of any other kind (ATTACH, COPY, PRAGMA, SET, INSTALL, LOAD,
   CREATE...), table functions (read_csv, glob, query, range...), schema-qualified names and functions that read
   files, the network or the system (getenv, current_setting, duckdb_*...) are refused with the reason. What runs
   is sqlglot's rendering of the accepted tree without comments, so a comment or string trick that DuckDB would
   tokenize differently from sqlglot cannot smuggle a second statement past the check.
2. `SqlSandbox.run` executes it in a new in-memory DuckDB connection that holds only the tables the query reads
   (copied in from the store, whichever backend it is), with external access off (no files, no network, no
   extensions), Python replacement scans off, its configuration locked, a memory limit, a thread count, a row
   limit (rows are streamed and the rest never computed) and a time limit (a timer interrupts the connection).
   A table the user may not read is simply not there: naming it is "no such table".
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

MAX_SQL_CHARS = 20_000

# Ordinary functions a question over a table needs, by their DuckDB names. An allow-list: anything not named here
# (every file, network, system and catalog function, every table function) is refused.
_AGGREGATE = """count sum avg mean min max median mode stddev stddev_samp stddev_pop variance var_samp var_pop
string_agg group_concat listagg count_if countif bool_and bool_or any_value first last arg_max arg_min argmax argmin
max_by min_by quantile quantile_cont quantile_disc percentile_cont percentile_disc approx_count_distinct corr
covar_pop covar_samp product fsum"""
_WINDOW = "row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value"
_NUMERIC = """abs round round_even floor ceil ceiling trunc sign sqrt cbrt power pow exp ln log log10 log2 mod greatest
least pi degrees radians even gcd lcm isnan isinf isfinite coalesce nullif ifnull if iff nvl typeof"""
_TEXT = """lower upper lcase ucase length len char_length character_length strlen trim ltrim rtrim substring substr
replace concat concat_ws left right lpad rpad strpos position instr contains starts_with ends_with prefix suffix
regexp_matches regexp_replace regexp_extract regexp_full_match split_part reverse repeat format printf ascii chr
translate strip_accents levenshtein jaro_winkler_similarity damerau_levenshtein hamming"""
_DATE = """year month day quarter week weekofyear dayofweek dayofmonth dayofyear isodow yearweek dayname monthname
date_part datepart date_trunc datetrunc date_diff datediff date_sub datesub date_add make_date strftime strptime
try_strptime current_date today now current_timestamp last_day age to_days to_months to_years"""
ALLOWED_FUNCTIONS = frozenset(" ".join((_AGGREGATE, _WINDOW, _NUMERIC, _TEXT, _DATE)).split())

# Syntax a SELECT over tables is made of; any other node (INTO, PIVOT, UNNEST, placeholders, struct access,
# table samples, locks...) is refused rather than reasoned about.
_NODES: frozenset[type[exp.Expression]] = frozenset({
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.From, exp.Join, exp.Where, exp.Group,
    exp.Having, exp.Order, exp.Ordered, exp.Limit, exp.Offset, exp.Fetch, exp.Qualify, exp.Column, exp.Identifier,
    exp.Table, exp.TableAlias, exp.Alias, exp.Star, exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.Tuple,
    exp.With, exp.CTE, exp.Values, exp.Window, exp.WindowSpec, exp.Distinct, exp.Filter, exp.WithinGroup,
    exp.IgnoreNulls, exp.RespectNulls, exp.Interval, exp.Var, exp.DataType, exp.DataTypeParam, exp.Cast,
    exp.TryCast, exp.Case, exp.If, exp.Extract, exp.Coalesce, exp.In, exp.Between, exp.Is, exp.Not, exp.Neg,
    exp.And, exp.Or, exp.Exists, exp.Any, exp.All, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod,
    exp.Pow, exp.DPipe, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.Like, exp.ILike, exp.SimilarTo, exp.Escape, exp.Lateral,
})
_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery)


class QueryError(ValueError):
    """A table query cannot be answered; the message is meant for the person or model that wrote the SQL."""


class QueryRefused(QueryError):
    """The query is not a single SELECT over the permitted tables, or uses something the sandbox does not allow."""


class QueryFailed(QueryError):
    """DuckDB could not run the query (unknown column, wrong type, out of memory...)."""


class QueryTimeout(QueryFailed):
    """The query ran past its time limit and was interrupted."""


@dataclass(frozen=True)
class CheckedQuery:
    """A query that passed `check_query`: the SQL that will run and the permitted tables it reads."""

    sql: str
    tables: tuple[str, ...]


@dataclass
class SandboxResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool  # the query had more rows than max_rows; only the first max_rows were computed
    load_s: float
    run_s: float


def check_query(sql: str, tables: Iterable[str]) -> CheckedQuery:
    """Accept exactly one SELECT that reads only `tables` (by name, any case), or raise QueryRefused saying why."""
    permitted = {t.lower() for t in tables}
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRefused("the query is empty")
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRefused(f"the query is {len(sql):,} characters long; at most {MAX_SQL_CHARS:,} are accepted")
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise QueryRefused(f"cannot parse the query: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise QueryRefused("the query is nested too deeply") from None
    if len(statements) != 1:
        raise QueryRefused(f"exactly one SELECT statement is allowed, got {len(statements)} statements")
    root = statements[0]
    if not isinstance(root, _ROOTS):
        raise QueryRefused(f"only SELECT queries are allowed, not {_statement_kind(root)}")
    used: set[str] = set()
    for node in root.walk():
        if isinstance(node, exp.Table):
            name = _check_table(node, permitted)
            if name:
                used.add(name)
        elif isinstance(node, exp.With) and node.args.get("recursive"):
            raise QueryRefused("WITH RECURSIVE is not allowed")
        elif type(node) in _NODES:
            continue
        elif isinstance(node, exp.Func):
            _check_function(node)
        else:
            raise QueryRefused(f"{node.key.upper()} is not allowed in a table query")
    rendered = root.sql(dialect="duckdb", comments=False)
    # The rendering is what runs: it must still be one statement (guards against a rendering quirk).
    again = [s for s in sqlglot.parse(rendered, read="duckdb") if s is not None]
    if len(again) != 1 or not isinstance(again[0], _ROOTS):
        raise QueryRefused("the query cannot be rendered safely")
    return CheckedQuery(rendered, tuple(sorted(used)))


def _statement_kind(root: exp.Expression) -> str:
    if isinstance(root, exp.Command):  # statements sqlglot does not model (LOAD, CALL, EXPORT...)
        return str(root.this).upper()
    return root.key.upper()


def _check_table(node: exp.Table, permitted: set[str]) -> str | None:
    """The permitted table a FROM/JOIN item names, None for a CTE; raises for anything else."""
    if not isinstance(node.this, exp.Identifier):
        what = node.this.sql_name() if isinstance(node.this, exp.Func) and not isinstance(
            node.this, exp.Anonymous) else getattr(node.this, "name", node.this.key)
        raise QueryRefused(f"table functions are not allowed ({str(what).lower()}): read from the listed tables")
    if node.args.get("db") or node.args.get("catalog"):
        raise QueryRefused(f"no such table: {node.sql(dialect='duckdb')} (name tables without a schema or database)")
    name = node.name.lower()
    if name in _visible_ctes(node):
        return None
    if name not in permitted:
        listed = ", ".join(sorted(permitted)) or "none"
        raise QueryRefused(f"no such table: {node.name} (tables you can query: {listed})")
    return name


def _visible_ctes(node: exp.Expression) -> set[str]:
    """CTE names in scope at `node`: all CTEs of every enclosing WITH whose body holds it, and inside a CTE only
    the CTEs defined before it. A CTE's own body does not see its name (recursion is refused), so a CTE named
    like a table cannot make a reference inside its own body look like a CTE."""
    names: set[str] = set()
    child, parent = node, node.parent
    while parent is not None:
        if isinstance(parent, exp.With):
            ctes = list(parent.expressions)
            position = next((i for i, cte in enumerate(ctes) if cte is child), len(ctes))
            names.update(cte.alias_or_name.lower() for cte in ctes[:position])
        else:  # the WITH clause of a query (its arg is "with_" in sqlglot 30, "with" before)
            for with_ in parent.args.values():
                if isinstance(with_, exp.With) and child is not with_:
                    names.update(cte.alias_or_name.lower() for cte in with_.expressions)
        child, parent = parent, parent.parent
    return names


def _check_function(node: exp.Func) -> None:
    if isinstance(node, exp.Anonymous):
        if node.name.lower() in ALLOWED_FUNCTIONS:
            return
        shown = node.name.lower()
    else:
        if type(node) in _allowed_function_classes():
            return
        shown = node.sql_name().lower()
    raise QueryRefused(f"function {shown}() is not allowed in a table query (only ordinary scalar, aggregate and "
                       "window functions)")


@lru_cache(maxsize=1)
def _allowed_function_classes() -> frozenset[type[exp.Expression]]:
    """The sqlglot classes the allowed DuckDB function names parse into (count -> exp.Count, strftime ->
    exp.TimeToStr...): derived from the names, so the allow-list is written once, in DuckDB's terms."""
    classes: set[type[exp.Expression]] = set()
    for name in ALLOWED_FUNCTIONS:
        for template in ("SELECT {}", "SELECT {}()", "SELECT {}(a)", "SELECT {}(a, b)", "SELECT {}(a, b, c)"):
            try:
                tree = sqlglot.parse_one(template.format(name), read="duckdb")
            except sqlglot.errors.SqlglotError:
                continue
            select = tree.expressions[0] if isinstance(tree, exp.Select) and tree.expressions else None
            if isinstance(select, exp.Func) and not isinstance(select, exp.Anonymous):
                classes.add(type(select))
    return frozenset(classes)


class SqlSandbox:
    """Run a `CheckedQuery` over copies of its tables in a fresh, locked-down in-memory DuckDB.

    Example:
        >>> import pyarrow as pa
        >>> staff = pa.table({"name": ["Ada", "Ben", "Cy"], "office": ["Leeds", "Berlin", "Leeds"]})
        >>> sandbox = SqlSandbox(max_rows=200, timeout_s=5.0, memory_mb=512, threads=1)
        >>> sandbox.run(check_query("SELECT count(*) FROM staff", ["staff"]), {"staff": staff}).rows
        [(3,)]
    """

    def __init__(self, max_rows: int = 200, timeout_s: float = 5.0, memory_mb: int = 512, threads: int = 1) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be above 0, got {timeout_s}")
        if memory_mb < 16:
            raise ValueError(f"memory_mb must be at least 16 (DuckDB needs some memory), got {memory_mb}")
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.max_rows = max_rows
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.threads = threads

    def run(self, query: CheckedQuery, tables: Mapping[str, pa.Table]) -> SandboxResult:
        missing = [t for t in query.tables if t not in tables]
        if missing:
            raise QueryRefused(f"no such table: {', '.join(missing)}")
        started = time.perf_counter()
        con = self._connect(tables)
        loaded = time.perf_counter()
        timer = threading.Timer(self.timeout_s, _interrupt, args=(con,))
        timer.daemon = True
        timer.start()
        try:
            cursor = con.execute(query.sql)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchmany(self.max_rows + 1)  # streamed: rows past the limit are never computed
        except duckdb.InterruptException:
            raise QueryTimeout(f"the query ran longer than {self.timeout_s:g} s and was stopped; aggregate or "
                               "filter instead of joining large tables row by row") from None
        except duckdb.OutOfMemoryException:
            raise QueryFailed(f"the query needed more than {self.memory_mb} MB and was stopped") from None
        except duckdb.Error as exc:
            raise QueryFailed(_duckdb_message(exc)) from None
        finally:
            timer.cancel()
            con.close()
        return SandboxResult(columns, [tuple(r) for r in rows[: self.max_rows]], len(rows) > self.max_rows,
                             loaded - started, time.perf_counter() - loaded)

    def _connect(self, tables: Mapping[str, pa.Table]) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(":memory:", config={
            "threads": self.threads,
            "memory_limit": f"{self.memory_mb}MB",
            "enable_external_access": False,  # no files, no network, no ATTACH, no extension install or load
            "python_enable_replacements": False,  # FROM some_python_variable finds nothing
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
            "allow_community_extensions": False,
        })
        try:
            for i, (name, data) in enumerate(tables.items()):
                source = f"erag_source_{i}"
                con.register(source, data)
                con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM {source}')
                con.unregister(source)
            con.execute("SET lock_configuration = true")  # the query cannot SET any of the above back
        except BaseException:
            con.close()
            raise
        return con


def _interrupt(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # the query finished and the connection closed as the timer fired
        con.interrupt()


def _duckdb_message(exc: duckdb.Error) -> str:
    """DuckDB's message without the caret drawing, which repeats the SQL and means nothing in a chat."""
    text = str(exc).split("\n\nLINE ", 1)[0].strip()
    return text.split("\nLINE ", 1)[0].strip()
