"""Ingestion end to end on real files, a real embedder and a real embedded Qdrant shard."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from erag.access import UNRESTRICTED
from erag.settings import Settings
from ingest.pipeline import IngestPipeline
from retrieval.searcher import HybridSearcher

from .conftest import DATA, FAST_MODEL, REPO


def ingest(settings: Settings, *paths: Path, **kwargs):
    with IngestPipeline(settings, progress=False) as pipeline:
        return pipeline.run(list(paths), **kwargs)


def chunks_by_doc(settings: Settings) -> dict[str, list[dict]]:
    with IngestPipeline(settings, progress=False) as pipeline:
        out: dict[str, list[dict]] = {}
        for hit in pipeline.store.scroll():
            out.setdefault(hit.payload["file_name"], []).append(hit.payload)
        return out


def search(settings: Settings, query: str, **kwargs):
    searcher = HybridSearcher(settings)
    try:
        return searcher.run(query, groups=kwargs.pop("groups", UNRESTRICTED), **kwargs)
    finally:
        searcher.store.close()


def test_every_type_is_ingested_with_its_metadata(settings: Settings, corpus: Path) -> None:
    (corpus / "_meta.json").write_text('{"department": "HR", "owner": "Tomasz", "groups": ["hr"]}')
    report = ingest(settings, corpus)
    assert report.counts() == {"added": 7}, [r.line() for r in report.results]
    docs = chunks_by_doc(settings)
    assert set(docs) == {"leave.md", "it.html", "notes.txt", "staff.csv", "handbook.docx", "budget.xlsx", "report.pdf"}
    for name, chunks in docs.items():
        indexes = sorted(c["chunk_index"] for c in chunks)
        assert indexes == list(range(len(chunks))), name
        for c in chunks:
            assert c["slot"] == c["live"] and c["n_chunks"] == len(chunks)
            assert c["department"] == "HR" and c["owner"] == "Tomasz" and c["groups"] == ["hr"]
            assert len(c["content_hash"]) == 16 and c["source"].endswith(name)
    pdf = docs["report.pdf"]
    assert {c["page"] for c in pdf} == {1, 2}
    table = next(c for c in pdf if c["kind"] == "table")
    assert table["table"]["columns"] == ["Segment", "Revenue"] and table["row_start"] == 1
    sheets = {c.get("sheet") for c in docs["budget.xlsx"]}
    assert sheets == {"Summary", "IT detail"}
    it = docs["it.html"]
    assert any("Daniel Ferreira" in c.get("people", []) for c in it)
    assert any("Leeds" in c.get("places", []) for c in it)
    staff = {c["kind"]: c for c in docs["staff.csv"]}
    assert staff["table"]["text"].splitlines()[1] == "| name | department | office |"
    # One summary per table: its columns with their types, and the values of short text columns.
    summary = staff["table_summary"]["text"]
    assert "Columns: name (text), department (text), office (text)" in summary and "Berlin, Leeds" in summary


def test_reingest_is_idempotent_and_changes_replace(settings: Settings, corpus: Path) -> None:
    ingest(settings, corpus)
    before = chunks_by_doc(settings)
    again = ingest(settings, corpus)
    assert again.counts() == {"unchanged": 7}
    assert again.timings["embed"] == 0.0
    assert chunks_by_doc(settings) == before

    (corpus / "notes.txt").write_text("SECURITY:\n\nBadges must be visible at all times in the Berlin office.")
    changed = ingest(settings, corpus)
    assert changed.counts() == {"unchanged": 6, "updated": 1}
    after = chunks_by_doc(settings)
    notes = after["notes.txt"]
    assert all("Badges" in c["text"] for c in notes)
    assert not any("phishing" in c["text"] for chunks in after.values() for c in chunks)
    assert sum(map(len, after.values())) == sum(map(len, before.values())) - len(before["notes.txt"]) + len(notes)
    hits = search(settings, "Badges visible Berlin office", top_k=1)
    assert hits[0].payload["file_name"] == "notes.txt"


def test_deleted_files_are_pruned_and_delete_by_name(settings: Settings, corpus: Path) -> None:
    ingest(settings, corpus)
    (corpus / "it.html").unlink()
    report = ingest(settings, corpus)
    assert [r.status for r in report.results if r.path.endswith("it.html")] == ["removed"]
    assert "it.html" not in chunks_by_doc(settings)
    with IngestPipeline(settings, progress=False) as pipeline:
        removed = pipeline.delete("staff.csv")
        assert removed == 2  # its one row chunk and its table summary
        assert pipeline.delete("no-such-file.txt") == 0
    assert set(chunks_by_doc(settings)) == {"leave.md", "notes.txt", "handbook.docx", "budget.xlsx", "report.pdf"}


def test_bad_files_fail_alone_and_nothing_indexed_is_lost(settings: Settings, corpus: Path) -> None:
    ingest(settings, corpus)
    before = chunks_by_doc(settings)
    bad = corpus / "bad"
    bad.mkdir()
    (bad / "empty.md").write_text("")
    (bad / "junk.txt").write_bytes(bytes(range(256)) * 50)
    (bad / "fake.docx").write_text("not a word file")
    (bad / "image.png").write_bytes(b"\x89PNG\r\n")
    (bad / "ok.txt").write_text("The canteen opens at eight.")
    report = ingest(settings, corpus)
    status = {Path(r.path).name: (r.status, r.reason) for r in report.results}
    assert status["empty.md"] == ("failed", "empty file")
    assert status["junk.txt"][0] == "failed" and "binary" in status["junk.txt"][1]
    assert status["fake.docx"][0] == "failed" and "does not match" in status["fake.docx"][1]
    assert status["image.png"][0] == "skipped"
    assert status["ok.txt"][0] == "added"
    after = chunks_by_doc(settings)
    assert {k: v for k, v in after.items() if k != "ok.txt"} == before


def test_folder_metadata_sidecar_applies_and_nearer_ones_override(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "policies"
    (root / "restricted").mkdir(parents=True)
    (root / "_meta.json").write_text('{"department": "HR", "groups": ["all"]}')
    (root / "restricted" / "_meta.json").write_text('{"groups": ["hr"]}')
    (root / "open.txt").write_text("Everyone may read this policy.")
    (root / "restricted" / "pay.txt").write_text("Salary bands are confidential.")
    ingest(settings, root)
    docs = chunks_by_doc(settings)
    assert docs["open.txt"][0]["groups"] == ["all"]
    assert docs["pay.txt"][0]["groups"] == ["hr"]
    assert docs["pay.txt"][0]["department"] == "HR"


def test_killed_ingest_leaves_index_consistent_and_rerun_completes(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(40):
        body = "\n\n".join(f"Policy {i} clause {j}: employees in office {i} follow rule {j}." for j in range(12))
        (root / f"policy_{i:02d}.txt").write_text(body)
    env = {**os.environ, "ERAG_HOME": str(tmp_path / "home"), "ERAG_EMBEDDER": FAST_MODEL, "PYTHONUNBUFFERED": "1"}
    erag = [sys.executable, "-m", "cli"]
    proc = subprocess.Popen([*erag, "ingest", str(root)], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    added = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        added += line.startswith("added")
        if added == 5:
            proc.send_signal(signal.SIGKILL)  # mid-way through writing the batch
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    settings = Settings(home=tmp_path / "home", embedder=FAST_MODEL)
    searcher = HybridSearcher(settings)
    seen = {h.payload["doc_id"] for h in searcher.run("employees follow rule", groups=UNRESTRICTED, top_k=100)}
    searcher.store.close()
    partial = chunks_by_doc(settings)
    # Every document search can see is complete: all its chunks, committed.
    for name, chunks in partial.items():
        committed = [c for c in chunks if c["slot"] == c["live"]]
        if committed:
            assert len(committed) == committed[0]["n_chunks"], name
    assert len(seen) >= 5

    rerun = subprocess.run([*erag, "ingest", str(root)], capture_output=True, text=True, env=env, cwd=REPO)
    assert rerun.returncode == 0, rerun.stderr
    final = chunks_by_doc(settings)
    assert len(final) == 40
    for name, chunks in final.items():
        assert sorted(c["chunk_index"] for c in chunks) == list(range(chunks[0]["n_chunks"])), name
        assert all(c["slot"] == c["live"] for c in chunks)
        assert len({c["version"] for c in chunks}) == 1


def test_search_finds_the_answer_in_the_sample_corpus(settings: Settings, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    report = ingest(settings, data)
    assert not report.failed, [r.line() for r in report.failed]
    cases = {
        "How many days of parental leave do I get?": "parental_leave_policy.md",
        "How do I reset my VPN token?": "it_handbook.html",
        "What was Q3 2026 revenue for the Consulting segment?": "q3_2026_quarterly_report.pdf",
    }
    for question, expected in cases.items():
        for mode in ("float32", "binary_rescore", "binary_f8"):
            hits = search(settings, question, top_k=3, mode=mode)
            assert expected in [h.payload["file_name"] for h in hits], (question, mode)
    hits = search(settings, "salary bands", top_k=10, groups=["all"])
    assert all("hr" not in h.payload["groups"] or "all" in h.payload["groups"] for h in hits)
    assert "salaries.csv" not in {h.payload["file_name"] for h in hits}


def test_empty_query_is_a_clear_error(settings: Settings, corpus: Path) -> None:
    from retrieval.searcher import QueryError

    ingest(settings, corpus / "notes.txt")
    with pytest.raises(QueryError, match="empty"):
        search(settings, "   ")


def test_a_beir_folder_is_ingested_one_document_per_corpus_line(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "mini_beir"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        '{"_id": "a1", "title": "Aspirin", "text": "Aspirin reduces the risk of heart attack."}\n'
        '{"_id": "b2", "title": "Vitamin D", "text": "Vitamin D deficiency is common in winter."}\n'
        '{"_id": "c3", "title": "", "text": ""}\n'
    )
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "aspirin heart"}\n')
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\ta1\t1\n")
    report = ingest(settings, root)
    assert report.counts() == {"added": 2}
    assert set(chunks_by_doc(settings)) == {"a1", "b2"}  # queries and qrels are not documents
    assert ingest(settings, root).counts() == {"unchanged": 2}
    assert search(settings, "aspirin heart attack", top_k=1)[0].doc_id == "a1"
