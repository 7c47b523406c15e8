"""Access control cannot be bypassed: every way a restricted document once reached employees, tried again.

Each test reproduces one of the leaks found by trying the product as a new user and a careless admin would
(issue: "Access control that cannot be bypassed"): ingesting a restricted subfolder or file directly, a link from
a public folder, a misspelled or empty `_meta.json`, searching through the Python API, the LangChain adapter,
the chat pipeline or the CLI without groups or with blank or string groups, an admin whose users-file entry has
blank groups, and a kill between showing a new version and deleting the old one. Real files, a real embedder,
the real embedded index.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from app.chat import ChatInputError, ChatPipeline
from erag.access import UNRESTRICTED, AccessError
from erag.settings import Settings
from erag.users import User, UserDirectory
from index.filters import doc_filter
from index.versions import visible, write_version
from ingest.pipeline import IngestPipeline
from jobs.spool import SpoolSink
from retrieval.langchain_retriever import EragRetriever
from retrieval.pipeline import Retriever
from retrieval.searcher import QueryError

from .conftest import DATA, make_settings

EMPLOYEE = ["all"]
SALARY_QUERY = "What is Margaret Okafor's salary band and bonus?"


@pytest.fixture
def company(tmp_path: Path) -> Path:
    """A private copy of the sample company (its `_meta.json` files make hr_restricted/ readable by `hr` only)."""
    root = tmp_path / "company"
    shutil.copytree(DATA, root)
    return root


def groups_of(settings: Settings, file_name: str) -> set[tuple[str, ...]]:
    with IngestPipeline(settings, progress=False) as pipeline:
        return {tuple(h.payload["groups"]) for h in pipeline.store.scroll(fields=["groups", "file_name"])
                if h.payload["file_name"] == file_name}


def employee_sees(settings: Settings, file_name: str) -> bool:
    retriever = Retriever(settings)
    try:
        hits = retriever.run(SALARY_QUERY, top_k=20, groups=EMPLOYEE).hits
        return file_name in {h.payload["file_name"] for h in hits}
    finally:
        retriever.close()


def ingest(settings: Settings, *paths: Path):
    with IngestPipeline(settings, progress=False) as pipeline:
        return pipeline.run(list(paths))


@pytest.mark.parametrize("start", ["subfolder", "single file"])
def test_groups_come_from_the_files_place_wherever_the_ingest_starts(company: Path, settings: Settings,
                                                                      start: str) -> None:
    restricted = company / "hr_restricted"
    target = restricted if start == "subfolder" else restricted / "salaries.csv"
    report = ingest(settings, target)
    assert report.counts() == {"added": 1}, [r.line() for r in report.results]
    assert groups_of(settings, "salaries.csv") == {("hr",)}
    assert not employee_sees(settings, "salaries.csv")
    # Started from the top afterwards: the same version, so nothing changes (and nothing becomes public).
    again = ingest(settings, company)
    assert {r.status for r in again.results if r.path.endswith("salaries.csv")} == {"unchanged"}


def test_a_link_in_a_public_folder_keeps_the_targets_groups(company: Path, settings: Settings) -> None:
    link = company / "it" / "pay_scales.csv"
    link.symlink_to(company / "hr_restricted" / "salaries.csv")
    (company / "it" / "linked_dir").symlink_to(company / "hr_restricted", target_is_directory=True)
    report = ingest(settings, company / "it")
    names = {Path(r.path).name: r for r in report.results}
    assert names["pay_scales.csv"].status == "added"
    assert not any("linked_dir" in r.path for r in report.results)  # links to folders are not followed
    with IngestPipeline(settings, progress=False) as pipeline:
        [doc] = {h.payload["doc_id"] for h in pipeline.store.scroll(fields=["doc_id", "groups"])
                 if h.payload["groups"] == ["hr"]}
    assert doc == str((company / "hr_restricted" / "salaries.csv").resolve())  # the target is the document
    assert not employee_sees(settings, "salaries.csv")


@pytest.mark.parametrize("sidecar", ['{"group": ["hr"]}', '{"groups": []}', '{"groups": [""]}', '{"groups": "hr"}',
                                     "{not json"])
def test_a_bad_meta_file_is_an_error_for_its_folder_not_a_silent_all(company: Path, settings: Settings,
                                                                      sidecar: str) -> None:
    (company / "hr_restricted" / "_meta.json").write_text(sidecar)
    (company / "hr_restricted" / "bonus_rules.txt").write_text("Bonuses are paid in March to every band B5+.")
    report = ingest(settings, company)
    failed = [r for r in report.results if r.status == "failed"]
    assert len(failed) == 1 and failed[0].path.endswith("hr_restricted/_meta.json"), [r.line() for r in failed]
    assert "nothing below" in failed[0].reason and "\n" not in failed[0].line()
    assert not groups_of(settings, "salaries.csv") and not groups_of(settings, "bonus_rules.txt")
    assert groups_of(settings, "employees.csv") == {("all",)}  # the rest of the batch is indexed


def test_search_entry_points_refuse_missing_empty_blank_and_string_groups(company: Path, settings: Settings) -> None:
    ingest(settings, company / "hr_restricted", company / "hr")
    retriever = Retriever(settings)
    try:
        with pytest.raises(TypeError, match="groups"):
            retriever.run(SALARY_QUERY)  # type: ignore[call-arg]
        for bad in (None, [], [""], [" "], "all", "hr"):
            with pytest.raises(QueryError):
                retriever.run(SALARY_QUERY, groups=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="groups"):
            EragRetriever(retriever=retriever)  # the LangChain adapter has no default either
        for bad in ([], [""], "all"):
            with pytest.raises(QueryError):
                EragRetriever(retriever=retriever, groups=bad).invoke(SALARY_QUERY)
        lc = EragRetriever(retriever=retriever, groups=EMPLOYEE, top_k=10)
        assert "salaries.csv" not in {d.metadata["file_name"] for d in lc.invoke(SALARY_QUERY)}
        # The one unrestricted mode has a name, and only the local admin CLI hands it out.
        unrestricted = retriever.run(SALARY_QUERY, top_k=10, groups=UNRESTRICTED).hits
        assert "salaries.csv" in {h.payload["file_name"] for h in unrestricted}

        chat = ChatPipeline(settings.model_copy(update={"llm_enabled": False}), retriever=retriever)
        for groups in ((), ("",), "all"):
            with pytest.raises(ChatInputError, match="cannot search"):
                chat.answer(SALARY_QUERY, User("x", "X", groups=groups))  # type: ignore[arg-type]
        answer = chat.answer(SALARY_QUERY, User("erin", "Erin", groups=("all",)))
        assert "salaries.csv" not in {s.file_name for s in answer.sources}
    finally:
        retriever.close()


def test_users_file_entries_without_valid_groups_cannot_be_used(tmp_path: Path) -> None:
    users = {"credentials": {"usernames": {
        "boss": {"name": "Boss", "password": "$2b$12$" + "x" * 53, "roles": ["admin"], "groups": [""]},
        "nogroups": {"name": "No Groups", "password": "$2b$12$" + "x" * 53},
        "erin": {"name": "Erin", "password": "$2b$12$" + "x" * 53, "groups": ["all"]},
    }}}
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump(users))
    directory = UserDirectory.from_file(path)
    assert directory.get("erin").scope() == ("all",)
    for name in ("boss", "nogroups"):
        with pytest.raises(AccessError, match="can neither sign in nor be acted as"):
            directory.get(name)
    with pytest.raises(AccessError):
        User("boss", "Boss", groups=(), admin=True).scope()  # an admin without groups is not unrestricted


def test_cli_refuses_blank_groups_and_a_bad_users_entry(company: Path, tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from cli import app
    from erag.settings import get_settings

    from .conftest import FAST_MODEL

    users = tmp_path / "users.yaml"
    users.write_text(yaml.safe_dump({"credentials": {"usernames": {
        "boss": {"name": "Boss", "password": "$2b$12$" + "x" * 53, "roles": ["admin"], "groups": [""]}}}}))
    for key, value in {"ERAG_HOME": str(tmp_path / "home"), "ERAG_EMBEDDER": FAST_MODEL,
                       "ERAG_USERS_FILE": str(users), "ERAG_LLM_ENABLED": "false"}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(app, ["ingest", str(company / "hr_restricted")]).exit_code == 0
        for args in (["--groups", ""], ["--groups", " , "], ["--groups", "all,,hr"], ["--as", "boss"]):
            for command in ("search", "ask"):
                result = runner.invoke(app, [command, SALARY_QUERY, *args])
                assert result.exit_code == 2, (command, args, result.output)
                assert "salaries" not in result.output.replace(SALARY_QUERY, "")
        meta = runner.invoke(app, ["meta", str(company / "it"), "--groups", " "])
        assert meta.exit_code == 2 and "no access group" in meta.output
    finally:
        get_settings.cache_clear()


def test_a_kill_between_showing_the_new_version_and_deleting_the_old_shows_only_one(tmp_path: Path,
                                                                                     fast_embedder) -> None:
    settings = make_settings(tmp_path / "home")
    doc = tmp_path / "docs" / "travel.md"
    doc.parent.mkdir()
    doc.write_text("# Travel policy\n\nSpring edition: economy class for trips under six hours.\n")
    ingest(settings, doc.parent)
    doc.write_text("# Travel policy\n\nAutumn edition: premium economy allowed for trips over five hours.\n")
    sink = SpoolSink()  # prepares the new version without writing it, so the test can write it step by step
    IngestPipeline(settings, embedder=fast_embedder, progress=False, sink=sink).run([doc])
    [new] = sink.take()

    class Killed(Exception):
        pass

    def kill_at(step: str):
        def hook(reached: str) -> None:
            if reached == step:
                raise Killed(step)
        return hook

    def editions() -> set[str]:
        retriever = Retriever(settings, embedder=fast_embedder)
        try:
            hits = retriever.run("travel policy edition", top_k=10, groups=EMPLOYEE).hits
        finally:
            retriever.close()
        return {word for h in hits for word in ("Spring", "Autumn") if word in h.text}

    with IngestPipeline(settings, embedder=fast_embedder, progress=False) as pipeline, pytest.raises(Killed):
        write_version(pipeline.store, new.doc_id, new.version, new.points, on_step=kill_at("written"))
    assert editions() == {"Spring"}  # written but not switched: readers still see only the old version
    with IngestPipeline(settings, embedder=fast_embedder, progress=False) as pipeline:
        with pytest.raises(Killed):
            write_version(pipeline.store, new.doc_id, new.version, new.points, on_step=kill_at("switched"))
        assert pipeline.store.count(doc_filter(new.doc_id)) > pipeline.store.count(doc_filter(new.doc_id) & visible())
    assert editions() == {"Autumn"}  # both versions stored, one visible: the switch was a single update
    report = ingest(settings, doc.parent)
    assert report.counts() == {"repaired": 1}
    with IngestPipeline(settings, embedder=fast_embedder, progress=False) as pipeline:
        assert pipeline.store.count(doc_filter(new.doc_id)) == pipeline.store.count(visible()) == len(new.points)


def test_uploaded_files_keep_their_groups_in_their_own_sidecar(tmp_path: Path, settings: Settings) -> None:
    from ingest.metadata import file_sidecar, write_sidecar

    upload = tmp_path / "uploads" / "hr" / "offer_letter.txt"
    upload.parent.mkdir(parents=True)
    upload.write_text("Offer letter: starting salary 61,000 GBP for Jordan Blake, band B4.")
    write_sidecar(upload, {"groups": ["hr"], "department": "HR"})
    assert json.loads(file_sidecar(upload).read_text())["groups"] == ["hr"]
    # However the file is ingested later (the folder, the file, from the command line), it stays HR-only.
    for target in (upload, upload.parent, tmp_path / "uploads"):
        ingest(settings, target)
        assert groups_of(settings, "offer_letter.txt") == {("hr",)}
    with pytest.raises(AccessError):
        write_sidecar(upload, {"groups": []})
