"""The sample-company benchmark's scoring (eval/company_eval.py) on hand-made answers: no model, real scoring code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval import company_eval as ce

from .conftest import REPO

DIRECTORY = "Staff directory\nname,office,title\nDaniel Ferreira,Leeds,Head of IT\nAda Byrne,Berlin,Engineer"
SALARIES = "Salaries\nname,salary_gbp\nMargaret Okafor,210000"


def record(text: str, *, expect: str = "answer", answers: list[str] | None = None, match: str = "all",
           abstained: bool = False, cited: list[int] | None = None, file: str = "employees.csv",
           forbidden: list[str] | None = None, kind: str = "lookup", computation: dict[str, Any] | None = None,
           question: str = "Which office is Daniel Ferreira in?") -> dict[str, Any]:
    rec = {"id": f"q{abs(hash(text)) % 1000}", "question": question, "user": "erin", "kind": kind, "expect": expect,
           "answers": answers or [], "match": match, "file": file, "forbidden": forbidden or [], "text": text,
           "abstained": abstained, "rewritten": question, "cited": [1] if cited is None else cited,
           "sources": [{"number": 1, "file_name": "employees.csv", "text": DIRECTORY},
                       {"number": 2, "file_name": "it_handbook.html", "text": "Call IT on +44 113 496 0123."}],
           "computation": computation, "timings": {"first_token_s": 2.0}}
    rec["score"] = ce.score(rec)
    return rec


@pytest.mark.parametrize(("text", "answers", "match", "right"), [
    ("Consulting opex totals 15,400 [1].", ["15400"], "all", True),  # numbers as numbers
    ("Consulting opex totals 15,400.0 [1].", ["15400"], "all", True),
    ("Consulting opex totals 154,000 [1].", ["15400"], "all", False),
    ("ARR reached £17.2m [1].", ["17.2"], "all", True),  # a scale word after the figure
    ("The average is 90,333.33 [1].", ["90333"], "all", True),  # at the reference's precision
    ("The average is 90,334 [1].", ["90333"], "all", False),
    ("Core hours are 10:00 to 16:00 [1].", ["10:00", "16:00"], "all", True),
    ("Core hours start at 10:00 [1].", ["10:00", "16:00"], "all", False),  # all values needed
    ("Revenue peaks in Q4 2026 [1].", ["Q4 2026", "Q4"], "any", True),
    ("He is based in leeds [1].", ["Leeds"], "all", True),  # case-free
    ("He is based in Leedsford [1].", ["Leeds"], "all", False),  # whole words
    ("There are 13 [1].", ["3"], "all", False),
])
def test_correct_compares_values(text: str, answers: list[str], match: str, right: bool) -> None:
    assert record(text, answers=answers, match=match)["score"]["correct"] is right


def test_abstention_is_right_only_when_expected() -> None:
    assert not record("The documents I can see do not answer this.", answers=["Leeds"], abstained=True)["score"][
        "correct"]
    assert record("The documents I can see do not answer this.", expect="abstain", abstained=True)["score"]["correct"]
    assert not record("Dogs are welcome [1].", expect="abstain")["score"]["correct"]


def test_leaks_invented_numbers_precision_and_markers() -> None:
    leak = record("Margaret Okafor earns 210,000 [1].", expect="abstain", forbidden=["210000", "210,000"])
    assert leak["score"]["leaked"] == ["210,000"] and leak["score"]["invented"] == ["210,000"]
    invented = record("Margaret Okafor's salary is 490 GBP k [1].", expect="abstain")
    assert invented["score"]["invented"] == ["490 GBP k"] and not invented["score"]["leaked"]
    # A figure a cited source states, or the computed result, is not invented; an uncited source does not count.
    assert record("Call +44 113 496 0123 [2].", cited=[2])["score"]["invented"] == []
    assert record("Call +44 113 496 0123 [1].", cited=[1])["score"]["invented"] == ["44", "113", "496", "0123"]
    computed = {"sql": "SELECT count(*) FROM t", "columns": ["count_star()"], "rows": [["13"]]}
    assert record("13 [1].", computation=computed)["score"]["invented"] == []
    assert record("14 [1].", computation=computed)["score"]["invented"] == ["14"]
    # Citation precision: the share of cited sources from the question's file; none without a file or citation.
    assert record("Leeds [1] [2].", cited=[1, 2])["score"]["citation_precision"] == 0.5
    assert record("Leeds [1].", file="")["score"]["citation_precision"] is None
    assert record("Leeds.", cited=[])["score"]["citation_precision"] is None
    # Markers: out of range, grouped, stuck to a list number; clean ones are not counted.
    assert record("Leeds [1] [2].", cited=[1, 2])["score"]["malformed"] == []
    assert record("Leeds [3].")["score"]["malformed"] == ["[3]"]
    assert len(record("Steps: [2]\n1 [1]. Go to Leeds [1, 2].")["score"]["malformed"]) == 2


def test_summary_counts_rates_and_kinds() -> None:
    records = [
        record("He is in Leeds [1].", answers=["Leeds"]),
        record("The documents I can see do not answer this.", answers=["Leeds"], abstained=True, kind="followup"),
        record("The documents I can see do not answer this.", expect="abstain", abstained=True, kind="unanswerable",
               file=""),
        record("Margaret Okafor earns 210,000 [3].", expect="abstain", forbidden=["210,000"], kind="unanswerable"),
    ]
    records[0]["stable"], records[1]["stable"] = True, False
    s = ce.summarize(records)
    assert s["questions"] == 4
    assert s["correct"]["mean"] == 0.5 and s["correct_answerable"]["mean"] == 0.5
    assert s["false_abstention"]["mean"] == 0.5 and s["abstention_unanswerable"]["mean"] == 0.5
    assert s["leaks"] == 1
    assert s["invented_numbers"] == {"mean": 0.5, "ci95": s["invented_numbers"]["ci95"], "n": 2}
    low, high = s["invented_numbers"]["ci95"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0
    assert s["malformed_markers"] == 1 and s["answers_with_malformed_markers"] == 1  # [3] of 2 sources
    assert s["stability"]["mean"] == 0.5 and s["stability"]["n"] == 2
    assert s["by_kind"]["unanswerable"] == {"n": 2, "correct": 0.5, "abstained": 0.5, "leaks": 1, "invented": 1,
                                            "malformed": 1}
    assert s["first_token_s"]["p50"] == 2.0
    table = ce.summary_table(s)
    assert "| unanswerable | 2 | 0.50 | 0.50 | 1 | 1 | 1 |" in table


def test_the_shipped_question_set_is_well_formed_and_dispatched(tmp_path: Path) -> None:
    rows = ce.load_questions(ce.SET)
    assert len(rows) >= 40 and {r["user"] for r in rows} <= {"erin", "hana"}
    assert ce.is_company_set(ce.SET)
    assert not ce.is_company_set(REPO / "eval")  # no questions.jsonl
    beir = tmp_path / "beir"
    beir.mkdir()
    (beir / "corpus.jsonl").write_text("{}\n")
    (beir / "questions.jsonl").write_text(json.dumps({"_id": "q", "question": "?", "user": "erin",
                                                      "expect": "answer"}) + "\n")
    assert not ce.is_company_set(beir)  # a BEIR dataset with reference answers stays with eval/run.py
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "questions.jsonl").write_text(
        json.dumps({"_id": "b", "question": "and then?", "user": "erin", "expect": "answer", "follow_up_of": "a"})
        + "\n" + json.dumps({"_id": "a", "question": "first", "user": "erin", "expect": "answer"}) + "\n")
    with pytest.raises(ValueError, match="follows a"):
        ce.load_questions(broken)


def test_fingerprint_follows_the_files(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one")
    first = ce.data_fingerprint(tmp_path, "all-MiniLM-L6-v2")
    assert first == ce.data_fingerprint(tmp_path, "all-MiniLM-L6-v2")
    assert first != ce.data_fingerprint(tmp_path, "all-mpnet-base-v2")
    (tmp_path / "a.txt").write_text("two")
    assert first != ce.data_fingerprint(tmp_path, "all-MiniLM-L6-v2")
