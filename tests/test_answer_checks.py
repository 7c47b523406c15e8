"""Figures no source states and untidy citation markers (app/answer_checks.py); the chat drops the first, cleans
the second. The unit cases include issue 22's own bad answers; one test asks the real packaged LLM, as an
employee, for figures only HR may see."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.answer_checks import (
    answer_numbers,
    clean_citations,
    held_citations,
    malformed_markers,
    unsupported_numbers,
    without_unsupported,
)
from app.prompt import cited_numbers
from erag.settings import Settings
from erag.users import User

from .conftest import DATA, REPO, make_settings

EMPLOYEE = User(username="erin", name="Erin", groups=("all",))
DIRECTORY = "name,department,office,title\nMargaret Okafor,Leadership,Leeds,Managing Director\n" \
            "Tomasz Kowalczyk,HR,Leeds,Head of People\nAmara Nwosu,HR,Berlin,HR Partner"


# --- unsupported_numbers ---------------------------------------------------------------------------------------
def test_issue_22_invented_salaries_are_flagged() -> None:
    assert unsupported_numbers("Margaret Okafor's salary is 490 GBP k [2].", [DIRECTORY]) == ["490 GBP k"]
    assert unsupported_numbers("The total salary of the HR department is $100,000 [1].", [DIRECTORY]) == [
        "$100,000"]


@pytest.mark.parametrize(("answer", "source"), [
    ("Consulting opex is 15,400 [1].", "Consulting | 15400"),  # thousands separator
    ("Consulting opex is 15400.0 [1].", "Consulting opex: 15,400"),  # decimals
    ("Margaret Okafor's salary is 490 GBP k [2].", "Margaret Okafor,490"),  # unit and scale words
    ("Her salary is £490k [1].", "salary_gbp: 490,000"),  # scale word: k x 1,000
    ("Cash was £14.8 million [1].", "Cash (GBP thousands): 14,812"),  # scaled and rounded
    ("The average is 90,333 [1].", "avg: 90333.3333"),  # rounded to the answer's precision
    ("The variance was -350 [1].", "Variance | (350)"),  # sign
    ("Growth was 12.5% [1].", "growth 12.5 %"),  # percent
    ("Core hours are 10:00 to 16:00 [2].", "Core working hours are 10:00 to 16:00."),
    ("Call +44 113 496 0123 [1].", "SafeKey hotline +44 113 496 0123"),
    ("Work 2 days a week from the office [1].", "Employees work from the office two days a week."),
    ("Headcount on 2026-09-30 was 56 [1].", "Headcount at 30 September 2026: 56"),  # month names
])
def test_figures_the_sources_state_are_supported(answer: str, source: str) -> None:
    assert unsupported_numbers(answer, [source]) == []


def test_what_is_not_a_figure_and_what_else_backs_one() -> None:
    # Citation markers, list numbers and identifiers (Q3, B2, T14) are not figures.
    assert [f.text for f in answer_numbers("1. Q3 revenue [2] and band B2 on a T14 [1, 3].\n2. Done.")] == []
    # Years get no exemption ...
    assert unsupported_numbers("The policy dates from 2019 [1].", ["Parental leave policy"]) == ["2019"]
    # ... but what the asker wrote may be repeated, and a computed table value backs the figure.
    assert unsupported_numbers("With 6 years of service you get 28 days [1].", ["5+ years: 28 days"],
                               question="How many days with 6 years of service?") == []
    assert unsupported_numbers("The total is 3,337,500 [1].", ["salaries.csv"], ["3337500"]) == []
    assert unsupported_numbers("The total is 3,337,501 [1].", ["salaries.csv"], ["3337500"]) == ["3,337,501"]
    # A scale word does not make any number match: 490 is not 49,000.
    assert unsupported_numbers("Her salary is 490k [1].", ["salary: 49,000"]) == ["490k"]


def test_sentences_with_invented_figures_are_dropped_whole() -> None:
    checked = without_unsupported(
        "Tomasz Kowalczyk heads HR [1]. His salary is £95,000 [1].\n1. Amara Nwosu earns 70,000 [1].\n"
        "2. She works in Berlin [1].", [DIRECTORY])
    assert checked.text == "Tomasz Kowalczyk heads HR [1].\n1. She works in Berlin [1]."  # numbered again, no gap
    assert checked.removed == ["His salary is £95,000 [1].", "1. Amara Nwosu earns 70,000 [1]."]
    assert checked.has_content
    nothing = without_unsupported("The total salary of the HR department is $100,000 [1].", [DIRECTORY])
    assert nothing.text == "" and not nothing.has_content


def test_sentences_that_stop_where_the_statement_should_be_are_dropped() -> None:
    # Seen on the sample company: the model cited instead of stating, and the employee read a sentence with no value.
    cut = without_unsupported("The combined staff cost budget of the IT department is [1] [2] [3].", [DIRECTORY])
    assert cut.text == "" and not cut.has_content
    mixed = without_unsupported("The correct answer is [1]. Tomasz Kowalczyk heads HR [1].", [DIRECTORY])
    assert mixed.text == "Tomasz Kowalczyk heads HR [1]." and mixed.removed == ["The correct answer is [1]."]
    for whole in ("Follow these steps [1]:\n1. Call the service desk [1].", "The grade of the role is A [1]."):
        assert without_unsupported(whole, [DIRECTORY]).removed == [], whole


def test_a_figure_given_for_pay_must_come_from_a_line_that_names_pay() -> None:
    # The sample company's employee asked "What is the average salary in the Legal department?" and read the
    # budget's staff costs back as a salary; the HR user's real salary table names pay in its header.
    budget = ("Table: budget 2026 - By Department\n| Department | Office | Staff costs (GBP k) |\n| --- | --- | --- |\n"
              "| Legal | Leeds | 290 |\n| Legal | Berlin | 110 |")
    salaries = ("Table: salaries\n| name | department | salary_gbp |\n| --- | --- | --- |\n"
                "| Eleanor Voss | Legal | 98000 |")
    question = "What is the average salary in the Legal department?"
    wrong = without_unsupported("The average salary in the Legal department is 290 GBP k [1].", [budget],
                                question=question)
    assert wrong.removed and not wrong.has_content
    right = without_unsupported("Eleanor Voss's salary is 98,000 GBP [1].", [salaries], question=question)
    assert right.removed == []
    # A prose line that names pay backs its figure; a question that does not ask for pay is not judged by this.
    assert without_unsupported("The annual bonus is 8% [1].", ["Bonuses are paid in March: 8% of base pay."],
                               question="How big is the annual bonus?").removed == []
    assert without_unsupported("Legal's staff costs are 290 GBP k [1].", [budget],
                               question="What are Legal's staff costs in Leeds?").removed == []


# --- clean_citations ---------------------------------------------------------------------------------------------
def test_a_real_figure_said_of_a_person_the_source_does_not_name_is_dropped() -> None:
    from erag.models import load_spacy
    from erag.settings import Settings

    settings = Settings()
    nlp = load_spacy(settings.spacy_model, tuple(settings.departments))

    def people(text: str) -> list[str]:
        return [e.text for e in nlp(text).ents if e.label_ == "PERSON"]

    # Issue 22's employee saw "Margaret Okafor's salary is 800 GBP k [1]" citing a budget row that holds 800.
    budget_row = "Department: Executive Office | Office: Leeds | Budget owner: Samuel Osei | Staff costs (GBP k): 800"
    wrong = without_unsupported("Margaret Okafor's salary is 800 GBP k [1].", [budget_row], people=people)
    assert wrong.removed and not wrong.has_content
    kept = "Samuel Osei owns a staff cost budget of 800 GBP k [1]. Margaret Okafor leads the company [1]."
    assert without_unsupported(kept, [budget_row], people=people).removed == []  # named, or no figure stated
    assert without_unsupported("Ms Okafor's salary is 800 GBP k [1].", [f"{budget_row} (approved by M. Okafor)"],
                               people=people).removed == []  # the surname is enough


def test_issue_22_stray_markers_are_cleaned() -> None:
    raw = "To reset your token, follow these steps: [2]\n1 [1]. Go to the SafeKey portal.\n2. Choose Reset [1]."
    clean = clean_citations(raw, valid=[1, 2])
    assert clean == ("To reset your token, follow these steps [2]:\n1. Go to the SafeKey portal [1].\n"
                     "2. Choose Reset [1].")
    assert malformed_markers(raw, [1, 2]) and malformed_markers(clean, [1, 2]) == []


@pytest.mark.parametrize(("raw", "clean"), [
    ("Partners get 6 weeks [2], paid in full [2][3].", "Partners get 6 weeks, paid in full [2] [3]."),
    ("Six weeks [1, 2].", "Six weeks [1] [2]."),
    ("Six weeks [1;2][2].", "Six weeks [1] [2]."),  # duplicates within a sentence
    ("Six weeks [7]. Paid [3] [9].", "Six weeks. Paid [3]."),  # out of range
    ("Six weeks [Source 2]. Paid 【3】.", "Six weeks [2]. Paid [3]."),  # other shapes
    ("Six weeks[2].", "Six weeks [2]."),
    ("Six weeks. [2] Paid in full. [3]", "Six weeks [2]. Paid in full [3]."),  # after the full stop
    ("Six weeks.\n[2]\n\nPaid in full [3].", "Six weeks [2].\n\nPaid in full [3]."),  # alone on a line
    ("Steps:\n- [1] Open the portal.\n- (Optional) Call IT [3].", "Steps:\n- Open the portal [1].\n"
     "- (Optional) Call IT [3]."),
    ("Yes, it is allowed to work from home [2], [3].", "Yes, it is allowed to work from home [2] [3]."),
    ("Core hours are 10:00 to 16:00 [2].", "Core hours are 10:00 to 16:00 [2]."),  # clean stays as it is
])
def test_markers_take_one_clean_form(raw: str, clean: str) -> None:
    assert clean_citations(raw, valid=[1, 2, 3]) == clean
    assert malformed_markers(clean, [1, 2, 3]) == []
    assert set(cited_numbers(raw, [1, 2, 3])) <= set(cited_numbers(clean, [1, 2, 3]))  # no valid citation lost


def test_markers_stay_only_on_sources_that_hold_the_sentence() -> None:
    sources = {
        1: "New phone: open the SafeKey app on the old phone, choose Transfer token and scan the QR code.",
        2: "Lost phone: call the Service Desk on extension 4400; they revoke the token and send a reset link.",
        3: "Passwords must be at least 14 characters long.",
    }
    answer = ("If your phone is lost, call the Service Desk on extension 4400 [1] [2] [3]. "
              "On a new phone, choose Transfer token and scan the QR code [2].\nHere are the steps: [3]")
    held = held_citations(answer, sources)
    assert held == ("If your phone is lost, call the Service Desk on extension 4400 [2]. "
                    "On a new phone, choose Transfer token and scan the QR code [1].\nHere are the steps [3]:")
    assert cited_numbers(held, sources) == [2, 1, 3]
    # A sentence no source holds keeps what it cited: the figure check, not this one, decides whether it stays.
    assert held_citations("Parking is free on Fridays [1].", sources) == "Parking is free on Fridays [1]."


def test_a_figure_moves_its_marker_to_the_source_that_states_it() -> None:
    # Words from the handbook's text table (data/hr/employee_handbook.docx), the figure from its leave table.
    sources = {
        2: "Years of service | Annual leave days (full-time)\n0 to 4 years | 25\n5 to 9 years | 28",
        4: "Annual leave: full-time employees earn more days with years of service; part-time staff pro rata.",
    }
    assert held_citations("A full-time employee with 6 years of service gets 28 days [4].", sources) == (
        "A full-time employee with 6 years of service gets 28 days [2].")
    # A figure no source states keeps the marker its words earn: the figure check then drops the sentence.
    assert held_citations("A full-time employee gets 31 days [4].", sources) == "A full-time employee gets 31 days [4]."
    # A cited source that states the figure keeps its marker.
    assert held_citations("Service of 5 to 9 years earns 28 days [2].", sources) == (
        "Service of 5 to 9 years earns 28 days [2].")


def test_malformed_markers_are_found() -> None:
    assert malformed_markers("Six weeks [1, 2].", [1, 2]) == ["[1, 2]"]
    assert malformed_markers("Six weeks [4].", [1, 2]) == ["[4]"]
    assert malformed_markers("In [2026] it was [1] [1].", [1]) == ["[2026]", "cited twice: [1]"]
    assert malformed_markers("Steps:\n1 [1]. Go", [1]) == ["stuck to a list number: 1 [1]. Go"]
    # Issue 22's answers: a marker repeated after the full stop, a marker after it.
    assert malformed_markers("ARR reached £17.2m [2]. [2]", [1, 2]) == ["after the full stop: [2]", "cited twice: [2]"]
    assert malformed_markers("There are 2 in band B2. [2]", [2]) == ["after the full stop: [2]"]
    assert malformed_markers("Six weeks [2]. Paid [2].", [2]) == []
    assert malformed_markers("22 [1]", [1]) == [] and malformed_markers("22 [1].", [1]) == []  # a figure, cited


# The answer benchmarks' stored answers (erag eval --answers, eval/company_eval.py, eval/table_eval.py): what the
# reports in docs/eval say the chat answered, re-read with the same check the benchmark counts.
BENCHMARK_ANSWERS = ("docugami_sec10q-answers/results.json", "tatqa_dev-answers/results.json",
                     "sample_company-answers/answers.json", "tables/wtq_dev-table-2026-11-30-late.json")


def _stored_answers(path: Path) -> list[tuple[str, int]]:
    """(answer text, number of sources it could cite) of one stored report."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, list):  # the sample company: each answer with its own sources
        return [(row["text"], len(row.get("sources") or [])) for row in data if not row.get("abstained")]
    answers = data["answers"]
    rows = answers["per_question"] if "per_question" in answers else [r for mode in answers.values() for r in mode]
    top_k = Settings().chat_top_k  # the chat's sources per question, the table result numbered as its table
    return [(row["answer"], top_k) for row in rows if row.get("answer") and not row.get("abstained")]


def test_no_stored_benchmark_answer_has_a_malformed_marker() -> None:
    problems, read = [], 0
    for name in BENCHMARK_ANSWERS:
        for text, sources in _stored_answers(REPO / "docs" / "eval" / name):
            read += 1
            if found := malformed_markers(text, range(1, sources + 1)):
                problems.append((name, text[:80], found))
    assert read > 100 and problems == []


# --- the chat ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def company(tmp_path_factory) -> Path:
    """data/ ingested once with the fast embedder."""
    from ingest.pipeline import IngestPipeline

    root = tmp_path_factory.mktemp("answer-checks")
    shutil.copytree(DATA, root / "data")
    with IngestPipeline(make_settings(root / "home"), progress=False) as pipeline:
        assert not pipeline.run([root / "data"]).failed
    return root / "home"


@pytest.mark.slow
def test_employee_asking_for_hr_salaries_gets_no_unsourced_figure(company: Path) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python comes with `make install`")
    from app.chat import ChatPipeline

    chat = ChatPipeline(make_settings(company))
    try:
        assert chat.generator is not None, chat.llm_note
        question = "What is the total salary of the HR department?"
        answer = chat.answer(question, EMPLOYEE)
        valid = [s.number for s in answer.sources]
        assert "salaries.csv" not in {s.file_name for s in answer.sources}  # access control holds first
        if not answer.abstained:
            cited = [f"{s.hit.text}\n{s.excerpt}\n{s.location}" for s in answer.cited_sources()]
            assert unsupported_numbers(answer.text, cited, question=question) == [], answer.text
        for figure in ("210,000", "210000", "3,337,500", "3337500"):
            assert figure not in answer.text
        assert malformed_markers(answer.text, valid) == [], answer.text
    finally:
        chat.close()
