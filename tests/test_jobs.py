"""Ingestion jobs with real workers, real files, a real index and a real queue (SQLite file, Redis).

- The job board: one document's jobs run in submission order; dead workers' jobs are requeued, then failed.
- A worker process killed mid-file (SIGKILL while it embeds a new version): search still shows the old
  version whole, nothing of the new one; a second worker's reaper retries the job, which completes.
- Redis queue + the server code path (qdrant-client local mode): a write error is retried by huey.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from erag.db import ChatDatabase
from erag.settings import Settings
from index.edge_store import EdgeStore
from index.filters import doc_filter
from index.server_store import ServerStore
from index.versions import visible
from jobs.board import BLOCKED, FAILED, INDEXED, QUEUED, Claim, JobBoard
from jobs.queue import JobQueue
from jobs.service import IngestionService, settings_env
from jobs.worker import IngestWorker
from jobs.writer import WriterLock
from retrieval.pipeline import Retriever

from .conftest import REPO, make_settings


def wait_for(condition, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_board_orders_jobs_per_document_and_reaps_dead_workers(tmp_path: Path) -> None:
    board = JobBoard(ChatDatabase(f"sqlite:///{tmp_path / 'jobs.db'}"), lease_s=1.5, max_attempts=2)
    first = board.create(tmp_path / "a.md", {"groups": ["hr"]}, "ada")
    second = board.create(tmp_path / "a.md", {"groups": ["all"]}, "ada")
    other = board.create(tmp_path / "b.md", {}, "ada")
    assert board.claim(second, "w1") == BLOCKED  # the older upload of the same document goes first
    claim = board.claim(first, "w1")
    assert isinstance(claim, Claim) and claim.attempt == 1 and claim.meta == {"groups": ["hr"]}
    assert board.claim(first, "w2") is None  # delivered twice: only one worker gets it
    assert board.claim(second, "w2") == BLOCKED  # still busy
    assert isinstance(board.claim(other, "w2"), Claim)  # other documents are not held up
    assert board.stage(claim, "embedding") and board.finish(claim, "added", 7)
    assert isinstance(board.claim(second, "w2"), Claim)

    time.sleep(1.6)  # `other` and `second` stop sending heartbeats: their workers "died"
    assert sorted(board.reap()) == sorted([second, other])
    job = board.get(other)
    assert job.status == QUEUED and "stopped while processing" in job.reason and job.attempts == 1
    assert board.reap() == []  # several reapers: each job is requeued once
    again = board.claim(other, "w3")
    assert isinstance(again, Claim) and again.attempt == 2
    assert not board.heartbeat(Claim(other, 1, Path(), "", {}))  # the first attempt lost the job for good
    time.sleep(1.6)
    assert board.reap() == []  # `other` had its last attempt: failed, not requeued
    job = board.get(other)
    assert job.status == FAILED and "2 times" in job.reason
    assert board.get(second).status == QUEUED  # waits for a worker to pick it up again
    assert board.get(first).status == INDEXED and board.get(first).chunks == 7


def _start_worker(settings: Settings, log: Path) -> subprocess.Popen:
    env = {**os.environ, **settings_env(settings), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "cli", "worker"], cwd=REPO, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _handbook(version: str, sections: int) -> bytes:
    parts = [f"# Travel handbook\n\nThis is the {version} edition of the travel handbook.\n"]
    for i in range(sections):
        parts.append(f"\n## Section {i}: trip {i}\n\nFor trip {i} of the {version} edition, staff book rail travel "
                     f"through the portal, keep receipts for {i + 3} days, and claim meals up to {20 + i} pounds. "
                     f"Trips longer than {i + 2} days need a manager's approval before booking.\n")
    return "".join(parts).encode()


def test_killed_worker_leaves_the_index_consistent_and_the_retry_completes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", job_lease_s=3.0, job_retry_delay_s=0.0, app_workers=0)
    lock = WriterLock(settings.home / "writer.lock")
    assert lock.acquire()
    store = EdgeStore(settings)  # this test plays the app: it holds the index and applies what workers prepare
    service = IngestionService(settings, store, writer_lock=lock)
    board = service.board
    searcher = Retriever(settings, store=store)
    meta = {"groups": ["all"], "department": "Operations"}
    workers: list[subprocess.Popen] = []
    try:
        [v1] = service.submit_uploads([("travel.md", _handbook("spring", 3))], meta, "ada")
        assert v1.accepted, v1.message
        workers.append(_start_worker(settings, tmp_path / "worker1.log"))
        wait_for(lambda: board.recent()[0].status == INDEXED, 120, "the first version to be indexed")
        doc = board.recent()[0].doc_id
        v1_chunks = store.count(doc_filter(doc) & visible())
        assert v1_chunks == board.recent()[0].chunks > 0

        [v2] = service.submit_uploads([("travel.md", _handbook("autumn", 150))], meta, "ada")
        assert v2.accepted and v2.target == v1.target  # a re-upload: same document, new version
        wait_for(lambda: board.recent()[0].status in ("tagging", "embedding"), 120, "the worker to be mid-file")
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        killed = board.recent()[0]
        assert killed.status in ("tagging", "embedding") and killed.attempts == 1

        # The index holds the old version whole and nothing of the new one.
        assert store.count(doc_filter(doc)) == store.count(doc_filter(doc) & visible()) == v1_chunks
        hits = searcher.run("spring edition travel handbook", groups=["all"]).hits
        assert hits and all("autumn" not in h.text for h in hits if h.doc_id == doc)
        assert "spring" in hits[0].text

        # A second worker's reaper finds the expired lease, requeues the job, and the retry completes.
        workers.append(_start_worker(settings, tmp_path / "worker2.log"))
        job = wait_for(lambda: (j := board.get(killed.id)).status in (INDEXED, FAILED) and j, 180, "the retry")
        assert job.status == INDEXED and job.attempts == 2, job.reason
        assert store.count(doc_filter(doc)) == store.count(doc_filter(doc) & visible()) == job.chunks > v1_chunks
        assert set(store.facet("version", doc_filter(doc))) == {next(iter(store.facet("version", doc_filter(doc))))}
        hits = searcher.run("autumn edition trip 120 meals", groups=["all"]).hits
        assert hits[0].doc_id == doc and "autumn" in hits[0].text
        assert not [h for h in searcher.run("spring edition", groups=["all"], top_k=50).hits if "spring" in h.text]
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in workers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        service.close()
        store.close()
        lock.release()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path: Path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)")
    port = _free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        wait_for(lambda: _pings(client), 10, "redis-server to start")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


class FlakyServerStore(ServerStore):
    """A server whose first write fails, as a real server does while it restarts (fault injection)."""

    failures = 1

    def upsert(self, points) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("qdrant is restarting")
        super().upsert(points)


def test_redis_queue_and_server_index_retry_a_failed_write(tmp_path: Path, redis_url: str, corpus: Path) -> None:
    settings = make_settings(tmp_path / "home", job_retry_delay_s=0.2).model_copy(
        update={"queue_url": redis_url, "qdrant_url": ":memory:"})
    store = FlakyServerStore(settings)
    board = JobBoard(ChatDatabase.from_settings(settings), settings.job_lease_s, settings.job_max_attempts)
    worker = IngestWorker(settings, board, store=store)
    consumer_side = JobQueue(settings, board, handler=worker.handle)
    app_side = JobQueue(settings, board)  # another process's view of the same Redis queue
    consumer = consumer_side.huey.create_consumer(workers=1, worker_type="thread", periodic=False,
                                                  initial_delay=0.05, max_delay=0.2)
    consumer.start()
    try:
        restricted = app_side.submit(corpus / "staff.csv", {"groups": ["hr"], "department": "HR"}, "ada")
        public = app_side.submit(corpus / "it.html", {"groups": ["all"], "department": "IT"}, "ada")
        wait_for(lambda: board.pending() == 0, 120, "both jobs")
    finally:
        consumer.stop(graceful=True)
    jobs = {job.id: job for job in board.recent()}
    assert {jobs[restricted].status, jobs[public].status} == {INDEXED}
    assert jobs[restricted].attempts == 2  # the first write failed; huey delivered the job again
    assert jobs[public].attempts == 1
    retriever = Retriever(settings, store=store)
    employee = {h.payload["file_name"] for h in retriever.run("Ada Lovelace office", groups=["all"], top_k=10).hits}
    hr = {h.payload["file_name"] for h in retriever.run("Ada Lovelace office", groups=["all", "hr"], top_k=10).hits}
    assert "staff.csv" not in employee and "staff.csv" in hr
    assert store.count(visible()) == store.count() == jobs[restricted].chunks + jobs[public].chunks


def test_the_writer_waits_for_an_entry_whose_job_is_not_yet_marked_spooled(tmp_path: Path, corpus: Path,
                                                                             fast_embedder) -> None:
    """A worker writes its spool entry, then marks the job spooled: a writer looking in between must keep the
    entry (dropping it left jobs `spooled` forever in the load check), and drop it only for a stale attempt."""
    from ingest.pipeline import IngestPipeline
    from jobs.spool import Spool, SpoolEntry, SpoolSink
    from jobs.writer import IndexWriter

    settings = make_settings(tmp_path / "home")
    board = JobBoard(ChatDatabase.from_settings(settings), lease_s=30, max_attempts=3)
    sink = SpoolSink()
    pipeline = IngestPipeline(settings, embedder=fast_embedder, progress=False, sink=sink)
    spool = Spool(settings.home / "spool")
    job_id = board.create(corpus / "leave.md", {"groups": ["all"]}, "ada")
    claim = board.claim(job_id, "w1")
    [result] = pipeline.run([corpus / "leave.md"], prune=False).results
    [version] = sink.take()
    doc_id = version.doc_id
    entry = spool.put(SpoolEntry(job_id, claim.attempt, sink.dim, sink.embedder, version))
    store = EdgeStore(settings)
    try:
        writer = IndexWriter(store, board, spool)
        assert writer.apply_pending() == 0 and entry.exists()  # not marked yet: kept
        assert board.spooled(claim, result.chunks)
        assert writer.apply_pending() == 1 and not entry.exists()
        job = board.get(job_id)
        assert (job.status, job.outcome, job.chunks) == (INDEXED, "added", result.chunks)
        assert store.count(doc_filter(doc_id) & visible()) == result.chunks
        # An entry of an attempt that was reaped and retried is dropped, not applied.
        stale = spool.put(SpoolEntry(job_id, claim.attempt - 1 or 99, sink.dim, sink.embedder, version))
        assert writer.apply_pending() == 0 and not stale.exists()
    finally:
        store.close()
