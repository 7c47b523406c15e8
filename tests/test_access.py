"""Nothing leaks: users of each group, asking for restricted documents by name, never see a restricted chunk.

The sample company's `hr_restricted/salaries.csv` is readable by the `hr` group only. For an employee, an
IT engineer and a finance analyst, every query of a set that names that file or its contents directly
is searched in every retriever and dense mode, on the embedded index and on qdrant-client's local mode
(the server code path), then answered by the chat pipeline (extractive answers): no hit, source, citation,
answer text, page filter option or conversation carries restricted content. An HR user asking the same
questions does get the salaries, so the suite would notice if the restricted file were simply missing.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from app.chat import ChatInputError, ChatPipeline
from app.feedback import FeedbackRanker
from erag.schema import Hit
from erag.users import User
from index.filters import Filter, Match
from index.server_store import ServerStore
from ingest.pipeline import IngestPipeline
from retrieval.pipeline import Retriever

from .conftest import DATA, make_settings
from .test_chat import company_home, copy_home  # noqa: F401 - the session's sample-company index

RESTRICTED_FILE = "salaries.csv"
USERS = {
    "employee": User("erin", "Erin", ("all",)),
    "it": User("ivan", "Ivan", ("all", "it")),
    "finance": User("fiona", "Fiona", ("all", "finance")),
}
HR = User("hana", "Hana", ("all", "hr"))
QUERIES = [
    "salaries.csv",
    "data/hr_restricted/salaries.csv",
    "hr_restricted salaries",
    "What is Margaret Okafor's salary?",
    "salary_gbp bonus_pct band for every employee",
    "Show me the salary table with bonus percentages",
    "How much does Priya Raman earn in GBP?",
    "Which employees are in salary band B6?",
]
MODES = [("hybrid", "binary_rescore"), ("hybrid", "binary_f8"), ("hybrid", "float32"), ("dense", "binary_rescore"),
         ("bm25", "binary_rescore")]


def restricted_markers(public_texts: list[str]) -> set[str]:
    """Strings only the restricted file holds: its column names and every salary figure no public chunk has."""
    with (DATA / "hr_restricted" / RESTRICTED_FILE).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    public = "\n".join(public_texts)
    figures = {r["salary_gbp"] for r in rows} | {f"{int(r['salary_gbp']):,}" for r in rows}
    return {"salary_gbp", "bonus_pct"} | {f for f in figures if f not in public}


MARKERS: set[str] = set()


def leaked(texts: list[str], asked: str = "") -> list[str]:
    """Markers found in `texts`, except those the user typed themselves in `asked`."""
    assert MARKERS, "the chat fixture fills MARKERS from the index"
    return sorted({m for m in MARKERS for t in texts if m in t and m not in asked})


def assert_clean(hits: list[Hit], user: User, where: str) -> None:
    for hit in hits:
        groups = set(hit.payload.get("groups") or [])
        assert groups & set(user.groups), f"{where}: {hit.payload.get('file_name')} has groups {groups}"
        assert hit.payload.get("file_name") != RESTRICTED_FILE, where
    assert not leaked([h.text for h in hits]), where


@pytest.fixture(scope="module")
def chat(company_home: Path, tmp_path_factory) -> ChatPipeline:  # noqa: F811
    settings = copy_home(company_home, tmp_path_factory.mktemp("access") / "home", llm_enabled=False)
    pipeline = ChatPipeline(settings)
    public = [h.text for h in pipeline.retriever.store.scroll(Filter(must=[Match("groups", "all")]), fields=["text"])]
    MARKERS.update(restricted_markers(public))
    yield pipeline
    pipeline.close()


@pytest.fixture(scope="module")
def server_retriever(tmp_path_factory) -> Retriever:
    """The server code path: the same data in qdrant-client's local mode, searched through ServerStore."""
    settings = make_settings(tmp_path_factory.mktemp("access-server") / "home").model_copy(
        update={"qdrant_url": ":memory:"})
    store = ServerStore(settings)
    report = IngestPipeline(settings, store=store, progress=False).run([DATA])
    assert not report.failed and store.backend == "local"
    retriever = Retriever(settings, store=store)
    yield retriever
    retriever.close()


@pytest.mark.parametrize("role", sorted(USERS))
def test_search_never_returns_restricted_chunks(chat: ChatPipeline, server_retriever: Retriever, role: str) -> None:
    user = USERS[role]
    for backend, retriever in (("embedded", chat.retriever), ("server", server_retriever)):
        for query in QUERIES:
            for kind, mode in MODES:
                result = retriever.run(query, top_k=20, groups=list(user.groups), retriever=kind, mode=mode)
                assert_clean(result.hits, user, f"{backend} {kind}/{mode} {query!r}")
                # Query understanding only knows the user's documents: no filter or note names the file.
                said = " ".join(result.filters + result.notes)
                assert "salaries" not in said, f"{backend} {query!r}: {said}"


@pytest.mark.parametrize("role", sorted(USERS))
def test_answers_sources_and_page_filters_never_show_restricted_content(chat: ChatPipeline, role: str) -> None:
    user = USERS[role]
    assert RESTRICTED_FILE not in chat.facets(user)["file_name"]  # the page's document filter
    for query in QUERIES:
        try:
            answer = chat.answer(query, user)
        except ChatInputError:
            continue
        assert_clean([s.hit for s in answer.sources], user, query)
        assert not leaked([answer.text, answer.rewritten_query], asked=query), query
        for turn in chat.memory.turns(user.username, answer.conversation_id):  # what a reload shows
            assert not leaked([turn.answer, *(s.get("text", "") for s in turn.sources)], asked=query), query
            assert RESTRICTED_FILE not in {s.get("file_name") for s in turn.sources}


def test_the_hr_group_does_read_the_restricted_file(chat: ChatPipeline, server_retriever: Retriever) -> None:
    for retriever in (chat.retriever, server_retriever):
        hits = retriever.run("What is Margaret Okafor's salary?", groups=list(HR.groups)).hits
        assert RESTRICTED_FILE in {h.payload["file_name"] for h in hits}
    answer = chat.answer("What is Margaret Okafor's salary?", HR)
    assert RESTRICTED_FILE in {h.payload["file_name"] for h in answer.citations} and leaked([answer.text])


def test_follow_ups_and_feedback_from_an_hr_conversation_do_not_reach_others(chat: ChatPipeline) -> None:
    hr = chat.answer("Which employees are in salary band B6?", HR)
    chat.feedback.record(hr.turn_id, HR.username, 1)  # HR rates the salary answer up
    employee = USERS["employee"]
    with pytest.raises(ChatInputError, match="does not exist"):  # memory is per user
        chat.answer("and their bonus?", employee, conversation_id=hr.conversation_id)
    assert hr.conversation_id not in [cid for cid, _ in chat.memory.conversations(employee.username)]
    # The feedback boost only reorders what the user's filter already let through.
    ranker = FeedbackRanker(chat.feedback, chat.selector.encode, weight=1.0, min_similarity=0.5)
    boosted = ChatPipeline(chat.settings.model_copy(update={"chat_feedback_boost": 1.0}), retriever=chat.retriever,
                           memory=chat.memory, feedback_ranker=ranker)
    assert ranker.votes("Which employees are in salary band B6?")  # the HR vote exists...
    answer = boosted.answer("Which employees are in salary band B6?", employee)
    assert_clean([s.hit for s in answer.sources], employee, "feedback-boosted")  # ...and reaches no one else
    assert not leaked([answer.text])


def test_a_web_admin_searches_only_their_groups(chat: ChatPipeline) -> None:
    from app.identity import access_groups

    admin = User("ada", "Ada", ("all", "finance"), admin=True)
    assert access_groups(admin) == ("all", "finance")
    hits = chat.retriever.run("salaries.csv", groups=access_groups(admin), top_k=20).hits
    assert_clean(hits, admin, "web admin")


def test_markers_are_real(chat: ChatPipeline) -> None:
    """The leak markers occur in the restricted file and in no public chunk (else the checks prove nothing)."""
    restricted = (DATA / "hr_restricted" / RESTRICTED_FILE).read_text()
    assert len(MARKERS) > 10 and all(m in restricted or m.replace(",", "") in restricted for m in MARKERS)
    public = chat.retriever.store.scroll(Filter(must=[Match("groups", "all")]), fields=["text"])
    assert not leaked([h.text for h in public])


def test_cli_search_and_ask_run_as_a_user_of_the_users_file(company_home: Path, tmp_path: Path,  # noqa: F811
                                                             monkeypatch) -> None:
    import json

    from typer.testing import CliRunner

    from cli import app
    from erag.settings import get_settings

    from .conftest import DEMO_USERS, FAST_MODEL

    copy_home(company_home, tmp_path / "home")
    for key, value in {"ERAG_HOME": str(tmp_path / "home"), "ERAG_EMBEDDER": FAST_MODEL,
                       "ERAG_USERS_FILE": str(DEMO_USERS), "ERAG_LLM_ENABLED": "false"}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        def files(*args: str) -> set[str]:
            result = runner.invoke(app, ["search", "What is Margaret Okafor's salary?", "--json", "-k", "10", *args])
            assert result.exit_code == 0, result.output
            return {row["file_name"] for row in json.loads(result.output)}

        assert RESTRICTED_FILE not in files("--as", "erin")
        assert RESTRICTED_FILE in files("--as", "hana")
        assert RESTRICTED_FILE in files()  # the local admin is unrestricted
        asked = runner.invoke(app, ["ask", "What is Margaret Okafor's salary?", "--as", "erin", "--json"])
        assert asked.exit_code == 0, asked.output
        assert RESTRICTED_FILE not in {c["file_name"] for c in json.loads(asked.output)["citations"]}
        unknown = runner.invoke(app, ["search", "salary", "--as", "mallory"])
        assert unknown.exit_code == 2 and "no user 'mallory'" in unknown.output
        assert "known: ada, erin, hana" in unknown.output
        both = runner.invoke(app, ["search", "salary", "--as", "erin", "--groups", "hr"])
        assert both.exit_code == 2 and "not both" in both.output
    finally:
        get_settings.cache_clear()
