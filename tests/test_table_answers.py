"""Table-native answers on real files: typed tables beside the index follow their documents (groups, versions,
deletion), the chat computes a count over the real table with the packaged LLM and shows how, and an employee
never computes over a table of another group, through the chat or the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from app.chat import ChatPipeline
from app.table_qa import (
    TableAnswerer,
    counted_nothing,
    error_with_hint,
    extract_sql,
    one_row_unordered,
    provenance_sql,
    show_value,
)
from erag.access import UNRESTRICTED
from erag.settings import Settings
from erag.users import User
from index.tables import QueryRefused, QueryResult, open_table_store
from ingest.pipeline import IngestPipeline

from .conftest import FAST_MODEL, REPO
from .test_chat import company_home, copy_home  # noqa: F401 - the session's sample-company index

EMPLOYEE = User("erin", "Erin", ("all",))
HR = User("hana", "Hana", ("all", "hr"))


def catalog(settings: Settings, groups=UNRESTRICTED):
    with open_table_store(settings) as store:
        return store.catalog(groups)


@contextmanager
def one_table(settings: Settings, folder: Path, file_name: str, text: str):
    """One table file ingested as an admin would add it; yields the open table store and the table's entry."""
    folder.mkdir()
    (folder / file_name).write_text(text)
    with IngestPipeline(settings, progress=False) as pipeline:
        assert not pipeline.run([folder]).failed
    with open_table_store(settings) as store:
        [info] = store.catalog(UNRESTRICTED)
        yield store, info


@contextmanager
def answered_by_rule(settings: Settings, folder: Path, file_name: str, text: str):
    """One table file ingested, and a TableAnswerer with no model over it (a rule needs none: a model call would
    fail); yields the store, the table's entry, the answerer and `computed(question)`, the rule's values."""
    from app.evidence import Source
    from erag.schema import Hit

    with one_table(settings, folder, file_name, text) as (store, info):
        source = Source(1, Hit("c1", 1.0, {"doc_id": info.doc_id, "kind": "table"}), "", [])
        qa = TableAnswerer(store, generator=None)

        def computed(question: str) -> str:
            computation = qa.compute(question, [(source, info)])
            assert computation.by_rule and computation.ok, (question, computation.error)
            assert computation.record()["source_rows"], "the row behind the value is shown"
            return computation.values()

        yield store, info, qa, source, computed


def test_tables_follow_their_document_types_groups_versions_and_deletion(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "hr"
    folder.mkdir()
    (folder / "_meta.json").write_text('{"groups": ["hr"], "department": "HR"}')
    staff = folder / "pay.csv"
    staff.write_text('name,office,salary,bonus\nAda,Leeds,"£61,000",5%\nAlan,Berlin,"£58,500",(2%)\n')
    with IngestPipeline(settings, progress=False) as pipeline:
        pipeline.run([folder])
    [table] = catalog(settings)
    assert table.groups == ("hr",) and table.row_count == 2 and table.file_name == "pay.csv"
    types = {c.name: (c.type, c.unit) for c in table.columns}
    assert types["salary"][0] in ("integer", "number") and types["bonus"][1] == "%"
    assert catalog(settings, ("all",)) == []  # an employee's catalog does not hold it
    with open_table_store(settings) as store:
        with pytest.raises(QueryRefused):  # naming it from an employee's catalog is refused before it runs
            store.query("SELECT sum(salary) FROM pay", store.catalog(("all",)))
        assert store.query("SELECT sum(salary), min(bonus) FROM pay", [table]).rows == [(119500, -2)]

    staff.write_text(staff.read_text() + 'Grace,Toronto,"£70,250",8%\n')
    with IngestPipeline(settings, progress=False) as pipeline:
        assert pipeline.run([folder]).counts() == {"updated": 1}
    [replaced] = catalog(settings)
    assert replaced.row_count == 3 and replaced.version != table.version and replaced.key != table.key
    with IngestPipeline(settings, progress=False) as pipeline:
        assert pipeline.delete("pay.csv") > 0
    assert catalog(settings) == []


def test_sql_helpers_read_the_models_reply_and_trace_rows() -> None:
    assert extract_sql("```sql\nSELECT count(*) FROM staff WHERE office ILIKE 'Leeds' [1];\n```") == (
        "SELECT count(*) FROM staff WHERE office ILIKE 'Leeds'")
    assert extract_sql("Sorry, the tables do not say.") == ""
    assert extract_sql("SELECT year FROM albums WHERE title = 'J\\'Adore'") == (
        "SELECT year FROM albums WHERE title = 'J''Adore'")  # a C-style escaped quote, as SQL writes it
    assert extract_sql("SELECT ep FROM shows WHERE rating = 14.0% AND name ILIKE '%x%' AND row_id % 2 = 0") == (
        "SELECT ep FROM shows WHERE rating = 14.0 AND name ILIKE '%x%' AND row_id % 2 = 0")  # a percentage
    assert provenance_sql("SELECT count(*) FROM staff WHERE office = 'Leeds'") == (
        "SELECT row_id FROM staff WHERE office = 'Leeds' LIMIT 50")
    assert provenance_sql("SELECT name FROM staff ORDER BY salary DESC LIMIT 1") == (
        "SELECT row_id FROM staff ORDER BY salary DESC LIMIT 1")
    assert provenance_sql("SELECT a.x FROM a JOIN b ON a.id = b.id") is None
    # an aggregate over the whole table is one row: its ORDER BY goes (DuckDB refuses one by a plain column)
    assert one_row_unordered("SELECT COUNT(DISTINCT season) FROM t WHERE tier = 4 ORDER BY season DESC LIMIT 1") == (
        "SELECT COUNT(DISTINCT season) FROM t WHERE tier = 4 LIMIT 1")
    for kept in ("SELECT season FROM t ORDER BY season", "SELECT tier, COUNT(*) FROM t GROUP BY tier ORDER BY 2",
                 "SELECT COUNT(*) FROM t", "SELECT season, COUNT(*) OVER () FROM t ORDER BY season"):
        assert one_row_unordered(kept) is None, kept
    assert [show_value(v) for v in (15400, 90333.3333, None, "x")] == ["15,400", "90,333.33", "", "x"]
    assert show_value(2002, plain=True) == "2002"
    # the fixes a small model misses are named with the engine's message; other errors pass through as they are
    assert "TRY_CAST" in error_with_hint("Binder Error: Cannot mix values of type VARCHAR and INTEGER_LITERAL in "
                                         "BETWEEN clause")
    assert "regexp_extract" in error_with_hint("Conversion Error: Could not convert string '14,505 ft 4421 m' to "
                                               "FLOAT when casting from source column elevation")
    assert "ISO" in error_with_hint('Conversion Error: invalid date field format: "January 26, 1982"')
    # a count over a filter that matched nothing is not stated as "0": the text answer takes the question
    zero = QueryResult(["n"], [(0,)], False, "", [])
    assert counted_nothing("SELECT count(*) FROM staff WHERE office ILIKE 'Paris'", zero)
    assert not counted_nothing("SELECT count(*) FROM staff", zero)
    assert not counted_nothing("SELECT count(*) FROM staff WHERE office ILIKE 'Leeds'",
                               QueryResult(["n"], [(13,)], False, "", []))
    plain = "Parser Error: syntax error at or near FROM"
    assert error_with_hint(plain.replace(" FROM", "  FROM")) == plain


@pytest.fixture(scope="module")
def llm_chat(company_home: Path, tmp_path_factory) -> ChatPipeline:  # noqa: F811
    pytest.importorskip("llama_cpp", reason="llama-cpp-python comes with `make install`")
    settings = copy_home(company_home, tmp_path_factory.mktemp("tables") / "home")
    chat = ChatPipeline(settings)
    assert chat.generator is not None and chat.table_answerer is not None, chat.llm_note
    yield chat
    chat.close()


def test_a_count_is_computed_over_the_real_table_and_shows_how(llm_chat: ChatPipeline) -> None:
    answer = llm_chat.answer("How many employees in the staff directory work in the Berlin office?", EMPLOYEE)
    assert answer.mode == "table" and "13" in answer.text, (answer.text, answer.notice)
    computed = answer.computation
    assert computed and "count" in computed["sql"].lower() and computed["rows"] == [["13"]]
    assert [t["file_name"] for t in computed["tables"]] == ["employees.csv"]
    assert len(computed["source_rows"]) == 13 and {r["office"] for r in computed["source_rows"]} == {"Berlin"}
    assert answer.citations[0].payload["file_name"] == "employees.csv" and f"[{answer.cited[0]}]" in answer.text
    [turn] = llm_chat.memory.turns(EMPLOYEE.username, answer.conversation_id)  # a reload shows the computation
    assert [s["computation"]["sql"] for s in turn.sources if "computation" in s] == [computed["sql"]]


def test_a_tables_schema_is_evaluated_once_and_gives_the_same_query(llm_chat: ChatPipeline) -> None:
    from app.prompt import SYSTEM_PROMPT, sql_messages, sql_prompt_starts
    from app.table_qa import _examples

    # The schema and task open every SQL prompt over a table: their evaluated state is kept and restored, and the
    # query written after a restore is the one written without it.
    generator, qa = llm_chat.generator, llm_chat.table_answerer
    catalog = llm_chat.tables.catalog(("all",))
    # From start-up, each table every employee may read had its block evaluated and kept in the background.
    assert llm_chat.wait_for_table_starts(timeout=600)
    assert generator.prefixes_kept >= len(catalog) > 3
    assert qa.keep_starts(("all",), limit=3) == 0  # a catalog larger than the limit is not read ahead
    staff = next(t for t in catalog if t.file_name == "employees.csv")
    schema, tables = qa.schema([staff])
    examples = _examples(tables[0])
    block, start = sql_prompt_starts(schema, examples)
    messages = sql_messages("How many employees work in the Berlin office?", schema, examples=examples)
    generator.forget_prefixes()
    first = generator.complete(messages, 60, [";"], shared=[block, start])
    assert "berlin" in first.lower() and generator.prefixes_kept == 2
    generator.complete([{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "Say hi"}], 4)
    assert generator.complete(messages, 60, [";"], shared=[block, start]) == first and generator.prefixes_kept == 2
    other = sql_messages("Which office has the most employees?", schema, examples=examples)
    generator.complete(other, 60, [";"], shared=[block, start])
    assert generator.prefixes_kept == 2  # the same starts, kept once
    with pytest.raises(ValueError, match="start of the last message"):
        generator.complete(messages, 60, [";"], shared="Tables: none")
    # A question waiting for the model goes before the background evaluation: a lock does not queue its waiters.
    replies: list[str] = []

    def ask() -> None:
        replies.append(generator.complete(messages, 60, [";"], shared=[block, start]))

    with generator._lock:
        asker = threading.Thread(target=ask)
        asker.start()
        while not generator._waiting:
            time.sleep(0.01)
        assert generator.keep(SYSTEM_PROMPT, [block], wait_s=0.1) is False
    asker.join(120)
    assert replies == [first]

    # Two tables: the first table's block is kept on its own too, and the query is the same whether the prompt was
    # built on that kept block, on the whole kept start, or on nothing kept.
    small = min((t for t in catalog if t.file_name != "employees.csv"), key=lambda t: t.row_count)
    pair, pair_tables = qa.schema([staff, small])
    assert len(pair_tables) == 2
    starts = sql_prompt_starts(pair, _examples(pair_tables[0]))
    assert starts[0] == block and starts[1].startswith(block)  # the staff directory's block opens both prompts
    asked = sql_messages("How many people are based in Toronto?", pair, examples=_examples(pair_tables[0]))
    generator.forget_prefixes()
    cold = generator.complete(asked, 60, [";"], shared=starts)
    assert generator.prefixes_kept == 2
    assert generator.complete(asked, 60, [";"], shared=starts) == cold
    generator.forget_prefixes()
    generator.complete(messages, 60, [";"], shared=[block, start])  # the staff directory asked about alone
    assert generator.prefixes_kept == 2
    assert generator.complete(asked, 60, [";"], shared=starts) == cold and generator.prefixes_kept == 3


def test_the_table_a_question_names_is_queried_before_better_ranked_ones(llm_chat: ChatPipeline) -> None:
    tables = {(t.file_name, t.sheet): t for t in llm_chat.tables.catalog(("all",))}
    budget, staff = tables[("budget_2026.xlsx", "By Department")], tables[("employees.csv", None)]
    report = next(t for (name, _), t in tables.items() if name == "q3_2026_quarterly_report.pdf")
    ranked = [(None, budget), (None, report), (None, staff)]  # as retrieval ranked the chunks: budget rows first
    qa = TableAnswerer(llm_chat.tables, generator=None)
    chosen = qa.by_words("How many employees in the staff directory are based in Toronto?", ranked)  # type: ignore
    assert chosen[0][1] is staff
    chosen = qa.by_words("How many people in the staff directory are based in Toronto?", ranked)  # type: ignore
    assert chosen[0][1] is staff  # "people" and "staff" name the employees table, not the budget's staff costs
    chosen = qa.by_words("In which quarter of 2026 is budgeted total revenue highest?", ranked[::-1])  # type: ignore
    assert chosen[0][1] is budget
    # A question that names no plan asks what happened: the report before the budget workbook ranked above it.
    summary = tables[("budget_2026.xlsx", "Summary")]
    chosen = qa.by_words("What was total revenue in Q3 2026 in GBP thousands?", [(None, summary), (None, report)])  # type: ignore
    assert chosen[0][1] is report
    chosen = qa.by_words("What was budgeted total revenue in Q3 2026?", [(None, report), (None, summary)])  # type: ignore
    assert chosen[0][1] is summary
    chosen = qa.by_words("What was the operating profit variance against budget in Q3 2026?",  # type: ignore
                          [(None, summary), (None, report)])
    assert chosen[0][1] is report  # the budget as the yardstick: the question asks what happened
    # Nothing in the question names a table: the plan goes last; "Toronto", a cell of the budget and the directory,
    # weighs little against the report's better rank among three, and outweighs it where the directory alone
    # holds it.
    assert qa.by_words("Who is in Toronto?", ranked) == [ranked[1], ranked[2], ranked[0]]  # type: ignore[arg-type]
    assert qa.by_words("Who is in Toronto?", ranked[1:]) == ranked[:0:-1]  # type: ignore[arg-type]
    # A person the question names: the table where they have their own row (the directory), not the budget where
    # they own one row per office.
    chosen = qa._by_own_row("Which office is Daniel Ferreira based in?", [(None, budget), (None, staff)])  # type: ignore
    assert chosen[0][1] is staff
    assert qa._by_own_row("Which office has most staff?", [(None, budget), (None, staff)])[0][1] is budget  # type: ignore


def test_an_employee_never_computes_over_a_restricted_table(llm_chat: ChatPipeline) -> None:
    assert "salaries.csv" not in {t.file_name for t in llm_chat.tables.catalog(("all",))}
    for question in ("What is the average salary in the Legal department?", "Who has the highest salary?"):
        answer = llm_chat.answer(question, EMPLOYEE)
        used = {t["file_name"] for t in (answer.computation or {}).get("tables", [])}
        assert "salaries.csv" not in used and "salaries.csv" not in {s.file_name for s in answer.sources}
        assert "210,000" not in answer.text and "210000" not in answer.text
    hr = llm_chat.answer("Who has the highest salary?", HR)
    assert hr.mode == "table" and "Margaret Okafor" in hr.text, hr.text
    assert {t["file_name"] for t in hr.computation["tables"]} == {"salaries.csv"}
    # The tables of a document whose prose ranked are candidates too: a restricted document's tables stay out even
    # when a source (however it got there) names that document.
    from app.evidence import Source
    from erag.schema import Hit

    restricted = next(t for t in llm_chat.tables.catalog(("all", "hr")) if t.file_name == "salaries.csv")
    table_hit = Hit("b-0", 1.0, {"doc_id": "nowhere", "kind": "table"})
    prose_hit = Hit("s-0", 0.9, {"doc_id": restricted.doc_id, "kind": "text", "version": restricted.version})
    sources = [Source(1, table_hit, "", []), Source(2, prose_hit, "", [])]
    assert llm_chat.table_answerer.candidates(sources, ("all",)) == []
    assert [t.file_name for _, t in llm_chat.table_answerer.candidates(sources, ("all", "hr"))] == ["salaries.csv"]


def test_cli_lists_a_users_tables_and_ask_prints_the_sql(company_home: Path, tmp_path: Path) -> None:  # noqa: F811
    from .conftest import DEMO_USERS

    copy_home(company_home, tmp_path / "home")
    env = {**os.environ, "ERAG_HOME": str(tmp_path / "home"), "ERAG_EMBEDDER": FAST_MODEL,
           "ERAG_USERS_FILE": str(DEMO_USERS)}

    def erag(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env,
                              cwd=REPO, timeout=600)

    listed = {as_user: {t["file_name"] for t in json.loads(erag("tables", "--as", as_user, "--json").stdout)}
              for as_user in ("erin", "hana")}
    assert "employees.csv" in listed["erin"] and "budget_2026.xlsx" in listed["erin"]
    assert "salaries.csv" not in listed["erin"] and "salaries.csv" in listed["hana"]
    plain = erag("tables", "--as", "erin")
    assert plain.returncode == 0 and "employees" in plain.stdout and "office text" in plain.stdout
    asked = erag("ask", "How many employees in the staff directory work in Toronto?", "--as", "erin")
    assert asked.returncode == 0, asked.stderr
    assert "9" in asked.stdout and "computed over employees.csv with:" in asked.stdout
    assert "SELECT" in asked.stdout.upper() and "| 9 |" in asked.stdout


def test_a_question_no_source_is_close_to_is_not_answered_from_a_table(llm_chat: ChatPipeline) -> None:
    # the staff list is the nearest source, and "what is" reads as a lookup: abstention must come first
    answer = llm_chat.answer("What is the capital of France?", EMPLOYEE)
    assert answer.abstained and answer.mode == "abstained" and answer.computation is None, answer.text


def test_a_change_between_two_years_is_computed_by_rule_over_the_real_row(settings: Settings, tmp_path: Path) -> None:
    # An annual-report table as such reports write it: a caption row, the years as a second header row, currency
    # signs, thousands separators and a negative in parentheses.
    debt = (",Year ended 31 December,\n,2019,2018\nTotal debt,\"$ 4,200\",\"$ 5,300\"\nNet debt,\"3,050\",\"2,436\"\n"
            "Cash and cash equivalents,\"1,150\",\"2,864\"\nLease liabilities,(120),35\n")
    with answered_by_rule(settings, tmp_path / "finance", "debt.csv", debt) as (_, info, qa, source, computed):
        assert computed("What was the change in total debt between 2018 and 2019?") == "-$1,100"
        assert computed("What was the change in total debt from 2019 to 2018?") == "$1,100"  # the order asked
        assert computed("What was the percentage change in net debt from 2018 to 2019?") == "25.21%"
        assert computed("What is the average cash and cash equivalents in 2019 and 2018?") == "$2,007"
        assert computed("What was the change in lease liabilities between 2018 and 2019?") == "-$155"
        # A change or an average keeps the unit of the year columns it reads, as the two-row rule's "$225" does.
        # Not clearly of the shape: no rule (the model would write the query).
        for question in ("What was the change in revenue between 2018 and 2019?",  # no row named
                         "What was the change in total debt between 2017 and 2019?",  # no 2017 column
                         "What was the change in debt between 2018 and 2019?"):  # total or net debt?
            assert qa.by_rule(question, [(source, info)]) is None, question


def test_a_us_statement_with_captioned_years_dashes_and_a_heading_row_is_computed_by_rule(
        settings: Settings, tmp_path: Path) -> None:
    from app.period_change import year_column

    # As a 10-K exports it: the years under a caption in the label column, "$(1,011)" negatives, "—" for nil, and
    # a section heading that repeats the name of the row below it.
    statement = ("($ in millions),,,\nFor the year ended December 31:,2019,2018,Change\nAdjusted EBITDA:,,,\n"
                 "Net income,$512,$430,$82\nRestructuring,\"$(1,011)\",—,\"$(1,011)\"\n"
                 "Adjusted EBITDA,\"$2,210\",\"$1,980\",$230\nAverage headcount,100,90,10\n")
    with answered_by_rule(settings, tmp_path / "finance", "ebitda.csv", statement) as (_, info, qa, source, computed):
        assert [c.name for c in info.columns[1:]][1:3] == ["y2019", "y2018"]
        assert computed("What was the change in Adjusted EBITDA between 2018 and 2019?") == "$230 million"
        assert computed("What was the change in restructuring from 2018 to 2019?") == "-$1,011 million"  # "—" is nil
        assert computed("What is the average net income in 2018 and 2019?") == "$471 million"
        # added up over the years, in the unit the caption gives the figures ("($ in millions)")
        assert computed("What is the total net income in both 2018 and 2019?") == "$942 million"
        assert qa.by_rule("What was net income in 2019 and 2018 respectively?", [(source, info)]) is None
        # An average that names no year is over every year of the table, unless the row is itself an average.
        assert computed("What is the average Adjusted EBITDA?") == "$2,095 million"
        assert qa.by_rule("What is the average headcount?", [(source, info)]) is None
        # A change from nil has no percentage: no rule (and no division by zero).
        assert qa.by_rule("What was the percentage change in restructuring from 2018 to 2019?",
                           [(source, info)]) is None
    # A column comparing two years is a column of neither.
    columns = [("y2019", "2019"), ("c2019_vs_2018", "2019 vs 2018"), ("y2018", "2018")]
    assert (year_column(columns, "2018"), year_column(columns, "2019")) == ("y2018", "y2019")


def test_two_rows_of_one_year_and_the_years_past_a_threshold_are_computed_by_rule(
        settings: Settings, tmp_path: Path) -> None:
    # A 10-K note as exported: the years under a day-dated caption, a dash for nil and the sum line unlabelled.
    accrued = (",Years Ended December 31,,\n,2019,2018,2017\n"
               "Vacation and compensation,\"$1,659\",\"$1,433\",\"$1,210\"\n"
               "Payroll taxes,155,113,98\nDeferred revenue,—,68,70\nWarranty reserve,529,520,515\n"
               "Commissions,378,307,290\n,\"$2,721\",\"$2,441\",\"$2,183\"\n"
               "Accrued as a percentage of revenue,4.1%,3.9%,3.5%\n")
    with answered_by_rule(settings, tmp_path / "finance", "accrued.csv", accrued) as (_, info, qa, source, computed):
        # The unlabelled line adds up the rows above it (a dash counted as nil), so it is "the total".
        assert computed("In 2019, what is the percentage of warranty reserve among the total accrued "
                        "liabilities?") == "19.44%"
        assert computed("What is the ratio of commissions to payroll taxes in 2018?") == "2.72"
        assert computed("What is the difference between warranty reserve and commissions in 2017?") == "$225"
        # "In which year" over columns headed "Years Ended December 31, 2018": every year competes.
        assert computed("In which year was warranty reserve largest?") == "2019"
        assert computed("In which year was payroll tax lowest?") == "2017"
        # A threshold is every year past it, not the best one.
        assert computed("In which years were commissions less than 350?") == "2017, 2018"
        assert computed("Which years did payroll taxes exceed 100?") == "2019, 2018"
        # The rate row under the money rows keeps the columns numeric (it has no value itself): asked about, it is
        # not computed, and its name is not read as the next best row's.
        assert computed("What was the change in commissions from 2018 to 2019?") == "$71"
        # The unlabelled sum line is "the total" for the year rules too, and three years named one by one are the
        # span they fill.
        assert computed("What was the change in total accrued liabilities from 2018 to 2019?") == "$280"
        assert computed("What is the average total accrued liabilities for 2017,2018 and 2019?") == "$2,448.33"
        assert qa.by_rule("What was the change in accrued as a percentage of revenue from 2018 to 2019?",
                           [(source, info)]) is None
        # Not clear enough: two years named, a percentage difference, two rows added before dividing.
        for unclear in ("What is the ratio of commissions to payroll taxes in 2018 and 2019?",
                        "What is the percentage difference between warranty reserve and commissions in 2019?",
                        "What is the percentage of payroll taxes and commissions in the total in 2019?"):
            assert qa.by_rule(unclear, [(source, info)]) is None, unclear
    # Above a row labelled "Total", an unlabelled sum line is a subtotal: "the total" is the labelled row.
    charges = ",2019,2018\nAcquisition costs,27,14\nAmortization,3,8\n,30,22\nRestructuring,255,126\nTotal,302,148\n"
    with answered_by_rule(settings.model_copy(update={"home": tmp_path / "charges-home"}), tmp_path / "charges",
                          "charges.csv", charges) as (_, info, qa, source, computed):
        assert computed("What was the change in total charges from 2018 to 2019?") == "154"


def test_rows_placed_by_position_and_text_written_otherwise_are_found(settings: Settings, tmp_path: Path) -> None:
    from app.row_order import row_order_sql
    from app.table_qa import relax_text_matches

    towers = ('name,floors,completed\nU.S. Bank Plaza,19,"January 26, 1982"\n"""Our Way""",7,"May 27, 1982"\n'
              'Lumber Exchange,12,"June 1, 1990"\n"Foshay Tower\n(a landmark)",32,"August 30, 1929"\n')
    with one_table(settings, tmp_path / "lists", "towers.csv", towers) as (store, info):

        def rows(sql: str, question: str = "") -> list[tuple]:
            return store.query(relax_text_matches(row_order_sql(question, sql) or sql, [info]), [info]).rows

        # Text as the question writes it: punctuation, quotes and case do not matter; a pattern keeps its meaning.
        assert rows("SELECT floors FROM towers WHERE LOWER(TRIM(name)) = LOWER(TRIM('US Bank Plaza'))") == [(19,)]
        assert rows("SELECT floors FROM towers WHERE name ILIKE 'our way'") == [(7,)]
        assert rows("SELECT count(*) FROM towers WHERE name ILIKE 'U%'") == [(1,)]
        assert rows("SELECT floors FROM towers WHERE name = 'Foshay Tower'") == [(32,)]  # a cell's first line
        # Dates written as the table writes them, in a list too.
        assert sorted(rows("SELECT floors FROM towers WHERE completed IN ('January 26, 1982', 'May 27, 1982')")) == [
            (7,), (19,)]
        # "After X" / "above X": one row down or up from the row the model's condition finds.
        assert rows("SELECT name FROM towers WHERE name ILIKE 'our way'",
                    "Which building comes after \"Our Way\" on the list?") == [("Lumber Exchange",)]
        assert rows("SELECT name FROM towers WHERE LOWER(TRIM(name)) = LOWER(TRIM('Lumber Exchange'))",
                    "What name is above Lumber Exchange?") == [('"Our Way"',)]
        assert rows("SELECT floors FROM towers ORDER BY floors ASC LIMIT 1", "Which tower is last on the list?") == [
            (32,)]
        assert rows("SELECT name FROM towers ORDER BY name DESC", "What is the last building listed on the table?") == [
            ('Foshay Tower\n(a landmark)',)]  # the model ordered the names, not the rows
        assert rows("SELECT name FROM towers ORDER BY name", "Which building is listed first?") == [
            ("U.S. Bank Plaza",)]
        # The model copied a ranking example and found no row: the cell the question names after "after" is the anchor.
        from app.row_order import neighbour_of_named

        names = {"name": [str(r.texts["name"]) for r in store.rows(info, limit=info.row_count)]}
        copied = "SELECT name FROM towers WHERE name NOT ILIKE 'total%' ORDER BY floors DESC LIMIT 1"
        moved = neighbour_of_named("Which building comes just after Lumber Exchange?", copied, names)
        assert moved is not None and rows(moved) == [("Foshay Tower\n(a landmark)",)]
        assert neighbour_of_named("Which building is taller than Lumber Exchange?", copied, names) is None
        assert neighbour_of_named("After Lumber Exchange was sold, how many floors did it have?",  # not a row
                                  "SELECT count(*) FROM towers", names) is None
    # Left alone: a value comparison, a filter on a number, a query that already uses row_id, no word of position.
    for question, sql in (
            ("Which towers were completed after 1985?", "SELECT name FROM towers WHERE completed > '1985-01-01'"),
            ("How many floors after Foshay?", "SELECT sum(floors) FROM towers WHERE name = 'Foshay Tower'"),
            ("After the refit, how many floors did Foshay Tower have?",  # "after" far from the row named
             "SELECT floors FROM towers WHERE name = 'Foshay Tower'"),
            ("What comes after Foshay?", "SELECT name FROM towers WHERE row_id = (SELECT row_id FROM towers "
                                         "WHERE name = 'Foshay Tower') + 1"),
            ("Which tower has the most floors?", "SELECT name FROM towers ORDER BY floors DESC LIMIT 1"),
            ("Who was the top scorer in the table?", "SELECT name FROM towers ORDER BY floors DESC LIMIT 1")):
        assert row_order_sql(question, sql) is None, question


def test_a_text_filter_that_matches_no_row_moves_to_where_the_table_holds_the_text(
        settings: Settings, tmp_path: Path) -> None:
    from app.table_qa import relax_text_matches
    from app.value_links import relocate

    games = ("Date,Opponent,Site,Result\nSeptember 26,Stanford,\"Autzen Stadium • Eugene, OR\",W 31-7\n"
             "October 3,Arizona,\"Arizona Stadium • Tucson, AZ\",L 10-14\n"
             "October 24,Washington State,\"Autzen Stadium • Eugene, OR\",W 20-13\n"
             "October 31,Oregon State,\"Reser Stadium • Corvallis, OR\",W 14-3\n")
    with one_table(settings, tmp_path / "sports", "oregon_ducks_1998_season.csv", games) as (store, info):
        assert "oregon ducks" in info.title.lower(), info.title

        def run(sql: str, read=(info,)) -> list[tuple]:
            return store.query(sql, list(read)).rows

        def moved(sql: str) -> list[tuple] | None:
            found = relocate(sql, [info], run, relax=lambda q: relax_text_matches(q, [info]))
            return run(relax_text_matches(found.sql, [info])) if found.sql else None

        # The city inside the site's cells: matched as words within them, not as the whole cell (also under an alias).
        assert moved(f"SELECT COUNT(*) FROM {info.name} WHERE site = 'eugene'") == [(2,)]
        assert moved(f"SELECT COUNT(*) FROM {info.name} AS g WHERE g.site = 'eugene'") == [(2,)]
        # A team filtered on the wrong column: the one column holding it as a whole cell.
        assert moved(f"SELECT site FROM {info.name} WHERE result = 'Arizona'") == [("Arizona Stadium • Tucson, AZ",)]
        # The table's subject, in its title and no cell: every row is about it, the filter goes.
        assert moved(f"SELECT COUNT(*) FROM {info.name} WHERE opponent = 'oregon ducks'") == [(4,)]
        # A filter that matches on its own stays; a text found nowhere is not moved but its nearest values are told.
        assert relocate(f"SELECT COUNT(*) FROM {info.name} WHERE opponent = 'Stanford' AND site = 'Corvallis'",
                        [info], run, relax=lambda q: relax_text_matches(q, [info])).moved == [
            "'Corvallis' within site"]
        lost = relocate(f"SELECT result FROM {info.name} WHERE opponent = 'Washingtn'", [info], run)
        assert lost.sql is None and "'Washington State'" in lost.facts[0], lost.facts
        # Two opponents hold "State": the question's own words around it name the one cell.
        found = relocate(f"SELECT result FROM {info.name} WHERE opponent = 'State'", [info], run,
                         question="What was the result against Washington State?")
        assert found.sql is not None and run(found.sql) == [("W 20-13",)], found.moved
        # Too short to look for inside cells ("OR" is in three sites): left to the model.
        assert relocate(f"SELECT COUNT(*) FROM {info.name} WHERE result = 'or'", [info], run).sql is None


def test_a_which_question_answered_with_a_figure_names_its_row(settings: Settings, tmp_path: Path) -> None:
    from app.sql_intent import label_for_which

    shows = ("Show,Network,Year,Rating\nNight Desk,BBC,2019,8.1\nHarbour Lights,ITV,2020,9.4\n"
             "Quiet Fields,BBC,2021,7.7\n")
    with one_table(settings, tmp_path / "tv", "ratings.csv", shows) as (store, info):
        show, year, rating = info.columns[1].name, info.columns[3].name, info.columns[4].name

        def rows(question: str, sql: str) -> list[tuple]:
            fixed = label_for_which(question, sql, [info])
            assert fixed is not None, (question, sql)
            return store.query(fixed, [info]).rows

        # The model selected the rating the question ranks by; the row's name comes first, the figure beside it.
        assert rows("Which show had the highest rating?", f"SELECT MAX({rating}) FROM {info.name}") == [
            ("Harbour Lights", Decimal("9.4"))]
        lowest = rows("Which show had the lowest rating?", f"SELECT MIN({rating}) FROM {info.name}")
        assert lowest[0][0] == "Quiet Fields"
        assert rows("Which year had the best rating?",
                    f"SELECT {rating} FROM {info.name} ORDER BY {rating} DESC LIMIT 1") == [(2020, Decimal("9.4"))]
        assert rows("Which network aired the show rated 8.1?",
                    f"SELECT {rating} FROM {info.name} WHERE {rating} = 8.1")[0][0] == "BBC"
        # Left alone: a name already selected, a year asked and read, a count, a question that asks for a figure.
        ranked = f"FROM {info.name} ORDER BY {rating} DESC LIMIT 1"
        for question, sql in (
                ("Which show had the highest rating?", f"SELECT {show} {ranked}"),
                ("Which year had the best rating?", f"SELECT {year} {ranked}"),
                ("Which network has how many shows?", f"SELECT COUNT(*) FROM {info.name}"),
                ("What was the highest rating?", f"SELECT MAX({rating}) FROM {info.name}"),
                ("Which show had the highest rating?", f"SELECT AVG({rating}) FROM {info.name}"),
                ("Which season had the highest rating?", f"SELECT {year} {ranked}")):  # a period: the year answers
            assert label_for_which(question, sql, [info]) is None, (question, sql)


def test_the_query_reads_the_actual_figures_and_the_year_asked(settings: Settings, tmp_path: Path) -> None:
    from app.sql_intent import actual_not_planned, is_total_row_answer, years_not_read

    report = ('Line item,Q3 2026 budget,Q3 2026 actual\nConsulting revenue,"7,100","7,240"\n'
              'Total revenue,"11,300","11,560"\n')
    with one_table(settings, tmp_path / "finance", "q3_report.csv", report) as (store, info):
        budget = next(c.name for c in info.columns if "budget" in c.name)
        label = info.columns[1].name
        sql = f"SELECT {budget} FROM {info.name} WHERE {label} ILIKE 'Total revenue'"
        fixed = actual_not_planned("What was total revenue in Q3 2026?", sql, [info])
        assert fixed is not None and store.query(fixed, [info]).rows == [(11560,)]
        assert actual_not_planned("What was budgeted total revenue in Q3 2026?", sql, [info]) is None
        cells = [" ".join(map(str, r.texts.values())) for r in store.rows(info, limit=info.row_count)]
        assert years_not_read("What was total revenue in Q3 2024?", fixed, [info], cells) == ["2024"]
        assert years_not_read("What was total revenue in Q3 2026?", fixed, [info], cells) == []
        # A period column ("q3_2026_actual") holds every line item: the row the query filters on names the measure.
        from app.evidence import Source
        from app.table_qa import Computation, relax_text_matches
        from erag.schema import Hit

        actual = next(c.name for c in info.columns if "actual" in c.name)
        written = f"SELECT {actual} FROM {info.name} WHERE {label} = 'Total revenue'"
        relaxed = store.query(relax_text_matches(written, [info]), [info])
        source = Source(1, Hit("c1", 1.0, {"doc_id": info.doc_id, "kind": "table"}), "", [])

        def reads(question: str) -> bool:
            return Computation(question, relaxed.sql, relaxed, [info], source, written=written).reads_what_was_asked()

        assert relaxed.rows == [(11560,)] and reads("What was total revenue in the quarter?")
        assert not reads("What was total headcount in the quarter?")  # "total" alone names no measure
        assert not reads("What was the consulting headcount in the quarter?")
    assert is_total_row_answer("Which segment earned most?", [("Total revenue",)])
    assert not is_total_row_answer("Which line is the total?", [("Total revenue",)])
    assert not is_total_row_answer("Which segment earned most?", [("Consulting revenue",)])


def test_a_ranking_that_tops_out_on_a_total_row_is_run_again_without_it(settings: Settings, tmp_path: Path) -> None:
    from app.sql_intent import without_rows

    costs = "Department,Q3 2026 (GBP k)\nConsulting,3850\nLegal,180\nTotal operating expenses,4030\n"
    with one_table(settings, tmp_path / "finance", "q3_costs.csv", costs) as (store, info):
        label, period = info.columns[1].name, info.columns[2].name
        top = f"SELECT {label} FROM {info.name} WHERE {period} = (SELECT MAX({period}) FROM {info.name})"
        assert store.query(top, [info]).rows == [("Total operating expenses",)]
        narrowed = without_rows(top, {info.name: [3]})
        assert narrowed is not None and store.query(narrowed, [info]).rows == [("Consulting",)]
        assert without_rows(top, {"other_table": [3]}) is None  # reads none of the tables given
        assert without_rows("SELECT FROM WHERE", {info.name: [3]}) is None


def test_a_ranking_over_a_report_leaves_its_total_row_out(llm_chat: ChatPipeline) -> None:
    # The model ranks the report's "Total operating expenses" row first and writes the same query when told so;
    # the chat runs that query again without the table's total rows.
    answer = llm_chat.answer("Which department had the highest operating expenses in Q3 2026?", EMPLOYEE)
    assert answer.mode == "table" and "Consulting" in answer.text, (answer.text, answer.notice)
    assert "NOT row_id IN" in answer.computation["sql"]
    assert "total rows left out" in answer.computation["rewrites"]  # the source card says a rule changed the query


def test_pay_is_read_from_a_column_that_names_pay(settings: Settings, tmp_path: Path) -> None:
    # An employee asked for the HR department's salary bill (in a restricted table they cannot see); the report's
    # table of each department's quarterly costs was filtered on 'HR' and its operating expenses were the answer.
    from app.evidence import Source
    from app.table_qa import Computation
    from erag.schema import Hit

    costs = "Department,Q3 2026 (GBP k),Headcount\nHR,260,9\nIT,410,12\n"
    with one_table(settings, tmp_path / "finance", "q3_costs.csv", costs) as (store, info):
        period, label = info.columns[2].name, info.columns[1].name
        sql = f"SELECT {period} FROM {info.name} WHERE {label} = 'HR'"
        result = store.query(sql, [info])
        source = Source(1, Hit("c1", 1.0, {"doc_id": info.doc_id, "kind": "table"}), "", [])

        def reads(question: str) -> bool:
            return Computation(question, sql, result, [info], source, written=sql).reads_what_was_asked()

        assert result.rows == [(260,)]
        assert not reads("What is the total salary bill of the HR department?")
        assert reads("What did the HR department cost in Q3 2026?")  # a column named by its period only: as before


def test_the_period_a_row_peaks_in_and_the_row_the_question_names(settings: Settings, tmp_path: Path) -> None:
    from app.sql_intent import label_named

    # A budget summary lays its quarters out as columns, beside the full year.
    summary = ("Line item (GBP thousands),Q1 2026,Q2 2026,Q3 2026,Q4 2026,FY 2026\n"
               "Total revenue,\"10,600\",\"11,100\",\"11,300\",\"12,000\",\"45,000\"\n"
               "Operating expenses - Staff costs,\"6,120\",\"6,270\",\"6,430\",\"6,640\",\"25,460\"\n"
               "Operating profit,\"2,550\",\"2,850\",\"2,840\",\"3,260\",\"11,500\"\n")
    folder = tmp_path / "finance"
    with answered_by_rule(settings, folder, "budget_summary.csv", summary) as (store, info, qa, source, computed):
        assert computed("In which quarter of 2026 is budgeted total revenue highest?") == "Q4 2026"
        assert computed("Which quarter had the lowest operating profit?") == "Q1 2026"  # not the FY column
        assert computed("In which quarter was operating profit higher, Q2 or Q3?") == "Q2 2026"
        assert qa.by_rule("Which quarter had the highest costs?", [(source, info)]) is None  # no row named
        # The model filtered on a row the question does not name; the row it names word for word is read.
        label = info.columns[1].name
        wrong = f"SELECT fy_2026 FROM {info.name} WHERE {label} = 'Operating expenses - Staff costs'"
        fixed = label_named("What is the budgeted operating profit for FY 2026?", wrong, qa._labels([info]))
        assert fixed is not None and store.query(fixed, [info]).rows == [(11500,)]
        # Left alone: the model's row is in the question's words, or no row is named word for word.
        assert label_named("What were operating expenses - staff costs in FY 2026?", wrong, qa._labels([info])) is None
        assert label_named("What was the FY 2026 profit?", wrong, qa._labels([info])) is None
        # A negated pattern leaves rows out ("NOT ILIKE 'total%'"); naming a row there would make it a lookup.
        leave_out = f"SELECT {label} FROM {info.name} WHERE {label} NOT ILIKE 'total%' ORDER BY fy_2026 DESC LIMIT 1"
        assert label_named("What is the budgeted operating profit for FY 2026?", leave_out, qa._labels([info])) is None


def test_a_reports_table_is_read_when_its_prose_ranked_first(llm_chat: ChatPipeline) -> None:
    # The report's highlights paragraph ranks first and its results table not at all; the budget workbook's
    # rows are the only table retrieved. The question names no plan, so the report's table is computed over.
    answer = llm_chat.answer("What was total revenue in Q3 2026 in GBP thousands?", EMPLOYEE)
    assert answer.mode == "table" and "11,560" in answer.text, (answer.text, answer.computation)
    assert {t["file_name"] for t in answer.computation["tables"]} == {"q3_2026_quarterly_report.pdf"}
    assert answer.citations[0].payload["file_name"] == "q3_2026_quarterly_report.pdf"


def test_a_lookup_naming_a_row_and_a_column_is_read_from_the_table(llm_chat: ChatPipeline) -> None:
    from app.table_qa import names_a_cell_and_a_column

    # The report's prose ranks first and speaks of the company's headcount (180); Engineering's is a cell of the
    # table whose summary was retrieved. The question names its row (Engineering) and its column (headcount).
    question = "What was the Engineering headcount on 30 September 2026?"
    sources = llm_chat.selector.prepare(llm_chat.retriever.run(question, top_k=5, groups=["all"]).hits)
    assert any(names_a_cell_and_a_column(question, s) for s in sources[:3])
    assert not any(names_a_cell_and_a_column("What was the company headcount on 30 September 2026?", s)
                   for s in sources)  # no row named
    assert not any(names_a_cell_and_a_column("What did Engineering spend on travel?", s)
                   for s in sources)  # no column named
    answer = llm_chat.answer(question, EMPLOYEE)
    assert answer.mode == "table" and "56" in answer.text, (answer.text, answer.computation)
    assert {t["file_name"] for t in answer.computation["tables"]} == {"q3_2026_quarterly_report.pdf"}


def test_the_table_holding_the_values_a_question_quotes_comes_first(settings: Settings, tmp_path: Path) -> None:
    from app.evidence import Source
    from app.table_qa import cell_phrases
    from erag.schema import Hit

    assert {"larry johnson", "charlie ward", "points"} <= cell_phrases("who scored more points, larry johnson or "
                                                                       "charlie ward?")
    assert not {"or", "1994", "in"} & cell_phrases("who scored more points in 1994 or later?")  # a year fills any table
    folder = tmp_path / "tables"
    folder.mkdir()
    # Retrieval ranked the hockey table first (its chunk says "points"); the names are cells of the other one.
    (folder / "hockey_1994.csv").write_text("Team,Games,Points\nTampa Bay Lightning,48,42\nNew York Rangers,48,"
                                            "52\nBoston Bruins,48,57\n")
    (folder / "knicks_1996.csv").write_text("Player,Games,Points\nLarry Johnson,76,1234\nCharlie Ward,79,"
                                            "410\nPatrick Ewing,76,1700\n")
    # What a question computes ("change") does not say which table: the one holding "total debt" is the one.
    (folder / "expense_changes.csv").write_text(
        "Item,2018,2017\nPayroll,\"$4,089\",\"$22,908\"\nFacilities,\"(4,537)\",\"5,777\"\n"
        "Total change in general and administrative expenses,\"$2,682\",\"$34,874\"\n")
    (folder / "five_year_summary.csv").write_text(
        "Item,2018,2017\nTotal assets,\"$545,118\",\"$628,027\"\nTotal debt,\"$24,600\",\"$25,700\"\n")
    (folder / "balance_sheet.csv").write_text(
        "Item,2019,2018\nTotal assets,\"$669,094\",\"$545,118\"\nTotal debt,\"$23,500\",\"$24,600\"\n")
    with IngestPipeline(settings, progress=False) as pipeline:
        assert not pipeline.run([folder]).failed
    with open_table_store(settings) as store:
        infos = {i.file_name: i for i in store.catalog(UNRESTRICTED)}
        qa = TableAnswerer(store, generator=None)

        def sources(*ranked: str) -> list[Source]:
            """A table source per file, ranked by retrieval in that order."""
            return [Source(n, Hit(f"c{n}", 1.0, {"doc_id": infos[name].doc_id, "kind": "table",
                                                 "version": infos[name].version}), "", [])
                    for n, name in enumerate(ranked, 1)]

        def first(question: str, *ranked: str) -> str:
            """The file `by_words` puts first among `ranked`."""
            return qa.by_words(question, list(zip(sources(*ranked), [infos[n] for n in ranked], strict=True)))[0][
                1].file_name

        assert first("who scored more points, larry johnson or charlie ward?", "hockey_1994.csv",
                     "knicks_1996.csv") == "knicks_1996.csv"
        # "team" heads only the hockey table, which retrieval ranked first: it stays first.
        assert first("which team scored the most points?", "hockey_1994.csv", "knicks_1996.csv") == "hockey_1994.csv"
        assert first("What was the change in total debt between 2017 and 2018?", "expense_changes.csv",
                     "five_year_summary.csv") == "five_year_summary.csv"
        # Ranked third, past the two tables the model would see, the one table with both years and the row asked
        # is still the one computed over: a rule reads every candidate (no model here: a model call would fail).
        computed = qa.run("What was the change in total debt between 2017 and 2018?",
                          sources("expense_changes.csv", "balance_sheet.csv", "five_year_summary.csv"), UNRESTRICTED)
        assert computed is not None and computed.by_rule and computed.values() == "-$1,100", computed.error
        assert computed.tables[0].file_name == "five_year_summary.csv"


def test_a_header_line_read_as_a_row_is_no_answer(settings: Settings, tmp_path: Path) -> None:
    # A TAT-QA table repeats its header lines above a second block of years; stored as rows, one of them answered
    # "What was the revenue in the fiscal 2019 third quarter?" with "Total", the header of the total column.
    from app.evidence import Source
    from app.table_qa import Computation
    from erag.schema import Hit

    report = ("Segment,First Quarter,Total\nConsulting,5,9\nPlatform,6,11\n"
              ",Fiscal 2018,\nSegment,First Quarter,Total\nConsulting,4,8\n")
    with one_table(settings, tmp_path / "finance", "revenue.csv", report) as (store, info):
        segment, total = info.columns[1].name, info.columns[3].name
        source = Source(1, Hit("c1", 1.0, {"doc_id": info.doc_id, "kind": "table"}), "", [])

        def computed(sql: str) -> Computation:
            return Computation("What was the revenue?", sql, store.query(sql, [info]), [info], source)

        header = computed(f"SELECT {total} FROM {info.name} WHERE {segment} = 'Segment'")
        assert header.result.rows == [("Total",)] and not header.ok
        assert computed(f"SELECT {total} FROM {info.name} WHERE {segment} = 'Platform'").ok
