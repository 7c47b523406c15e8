"""An ingestion worker process: takes job ids from the queue and turns each file into indexed chunks.

Example:
    >>> worker = IngestWorker(settings, board)       # loads the models once
    >>> worker.process(job_id)                       # claim, parse, tag, embed, then write or spool
    'spooled'
    >>> serve(settings)                              # `erag worker`: run jobs from the queue until stopped

Where the chunks go:
- Qdrant server (`ERAG_QDRANT_URL`): straight into the index with the pipeline's commit protocol, so
  any number of workers on any machines share the work.
- Embedded index: into the spool (`jobs.spool`); the process that holds the index applies them (the
  app's writer thread, or with no app running, whichever worker takes the writer lock).

While a job runs, a heartbeat thread renews its lease; if the process dies, the lease runs out and a
reaper (in every worker and in the app) puts the job back in the queue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any

from huey.exceptions import RetryTask

from erag.db import ChatDatabase
from erag.embedder import Embedder
from erag.home import private_dir
from erag.settings import Settings
from index.backends import open_store
from index.store import Store, StoreError
from index.tables import open_table_store
from ingest.metadata import write_sidecar
from ingest.pipeline import IngestPipeline
from jobs.board import BLOCKED, Claim, JobBoard
from jobs.queue import JobQueue
from jobs.spool import Spool, SpoolEntry, SpoolSink
from jobs.writer import IndexWriter, WriterLock

log = logging.getLogger(__name__)


class IndexWriteFailed(RuntimeError):
    """Writing a prepared file to the index failed (e.g. a server restarting): the job is retried."""


def one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]


class Heartbeat:
    """Renews a claim's lease every `interval` seconds on its own thread; `lost` is set if the job was reaped."""

    def __init__(self, board: JobBoard, claim: Claim, interval: float) -> None:
        self.board = board
        self.claim = claim
        self.interval = interval
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{claim.job_id}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.board.heartbeat(self.claim):
                    self.lost.set()
                    return
            except Exception:  # a database hiccup: the next beat tries again, well within the lease
                log.exception("heartbeat failed")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class IngestWorker:
    """Process one job at a time with one loaded pipeline (embedder, chunker and NER model stay in memory)."""

    def __init__(self, settings: Settings, board: JobBoard, store: Store | None = None,
                 embedder: Embedder | None = None, name: str | None = None) -> None:
        self.settings = settings
        self.board = board
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.sink: SpoolSink | None = None
        self.spool: Spool | None = None
        if store is None and settings.qdrant_url is None:
            self.sink, self.spool = SpoolSink(), Spool(settings.home / "spool")
        else:
            store = store or open_store(settings)
        self._claim: Claim | None = None
        self.pipeline = IngestPipeline(settings, store=store, embedder=embedder, progress=False,
                                       on_stage=self._on_stage, sink=self.sink)

    def _on_stage(self, stage: str) -> None:
        if self._claim is not None:
            self.board.stage(self._claim, stage)

    def handle(self, job_id: int, task: Any = None) -> str:
        """The huey task: `task.retries` is how many more times huey will deliver this job after an error."""
        return self.process(job_id, retries_left=task.retries if task is not None else 0)

    def process(self, job_id: int, retries_left: int = 0) -> str:
        """Run one job; returns its outcome (added, updated, spooled, failed, lost, skipped)."""
        claim = self.board.claim(job_id, self.name)
        if claim is None:
            return "skipped"  # delivered twice, or reaped and already taken by another worker
        if claim == BLOCKED:
            raise RetryTask(delay=1.0)  # an earlier job of the same document goes first
        assert isinstance(claim, Claim)
        self._claim = claim
        try:
            with Heartbeat(self.board, claim, max(self.board.lease_s / 4, 0.5)) as beat:
                outcome = self._run(claim, beat)
        except Exception as exc:
            reason = one_line(exc)
            log.exception("job %s failed", job_id)
            if retries_left > 0:
                self.board.retry_later(claim, reason)
                raise  # huey delivers it again after ERAG_JOB_RETRY_DELAY_S
            self.board.fail(claim, reason)
            return "failed"
        finally:
            self._claim = None
            if self.sink is not None:
                self.sink.take()  # nothing of a failed job may leak into the next one's spool entry
        if outcome == "spooled":
            self.write_spool()
        return outcome

    def _run(self, claim: Claim, beat: Heartbeat) -> str:
        path = self._place(claim)
        report = self.pipeline.run([path], prune=False)
        result = report.results[0]
        if beat.lost.is_set():
            return "lost"  # the job was reaped meanwhile: its next attempt owns the outcome
        if result.status == "failed":
            if result.stage == "indexing":
                raise IndexWriteFailed(result.reason)  # the index, not the file: worth another attempt
            self.board.fail(claim, result.reason)
            return "failed"
        if self.sink is None:
            self.board.finish(claim, result.status, result.chunks)
            return result.status
        assert self.spool is not None
        [version] = self.sink.take()  # one file, one document version
        entry = SpoolEntry(claim.job_id, claim.attempt, self.sink.dim, self.sink.embedder, version)
        written = self.spool.put(entry)
        if not self.board.spooled(claim, result.chunks):
            written.unlink(missing_ok=True)
            return "lost"
        return "spooled"

    @staticmethod
    def _place(claim: Claim) -> Path:
        """Move a staged upload to its place, with the groups, department and owner it was uploaded with in its
        own sidecar (so any later ingest of the file, from any command, keeps them). Jobs of one document run one
        at a time, so nothing races."""
        if claim.incoming is not None and claim.incoming.exists():
            private_dir(claim.path.parent)
            if claim.meta:
                write_sidecar(claim.path, claim.meta)
            os.replace(claim.incoming, claim.path)
            with contextlib.suppress(OSError):
                claim.incoming.parent.rmdir()  # the staging folder, now empty
        elif claim.meta:
            write_sidecar(claim.path, claim.meta)  # a file submitted with metadata keeps it for later ingests too
        return claim.path

    def write_spool(self) -> int:
        """Embedded index, no app running: become the writer for a moment and apply what is spooled."""
        return write_spool(self.settings, self.board)

    def close(self) -> None:
        self.pipeline.close()


def write_spool(settings: Settings, board: JobBoard) -> int:
    """Apply spooled results if nobody else holds the writer role; returns the jobs applied (0 if busy)."""
    spool = Spool(settings.home / "spool")
    if not spool.paths():
        return 0
    lock = WriterLock(settings.home / "writer.lock")
    if not lock.acquire():
        return 0  # the app (or another worker) is the writer
    try:
        from index.edge_store import EdgeStore

        try:
            store = EdgeStore(settings)
        except StoreError:
            return 0  # an `erag` command holds the index: try again on the next round
        tables = open_table_store(settings)
        try:
            return IndexWriter(store, board, spool, tables).apply_pending()
        finally:
            tables.close()
            store.close()
    finally:
        lock.release()


class Housekeeping:
    """A worker's background duties: requeue jobs of dead workers, apply the spool, stop with the parent."""

    def __init__(self, settings: Settings, queue: JobQueue, parent_pid: int | None, interval: float) -> None:
        self.settings = settings
        self.queue = queue
        self.parent_pid = parent_pid
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="worker-housekeeping", daemon=True)

    def start(self) -> Housekeeping:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                log.warning("the app that started this worker is gone: stopping")
                os.kill(os.getpid(), signal.SIGINT)  # huey's graceful stop: the running job may finish
                return
            try:
                self.queue.reap()
                if self.settings.qdrant_url is None:
                    write_spool(self.settings, self.queue.board)
            except Exception:
                log.exception("housekeeping round failed")

    def stop(self) -> None:
        self._stop.set()


def serve(settings: Settings, parent_pid: int | None = None) -> None:
    """Run jobs from the queue until interrupted (SIGINT: finish the current job first; SIGTERM: stop now)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    board = JobBoard(ChatDatabase.from_settings(settings), settings.job_lease_s, settings.job_max_attempts)
    worker = IngestWorker(settings, board)
    queue = JobQueue(settings, board, handler=worker.handle)
    housekeeping = Housekeeping(settings, queue, parent_pid, interval=min(settings.job_lease_s / 4, 5.0)).start()
    # One job at a time per process (the pipeline is not shared between threads); run more processes to scale.
    consumer = queue.huey.create_consumer(workers=1, worker_type="thread", periodic=False, initial_delay=0.1,
                                          backoff=1.15, max_delay=1.0)
    log.info("worker %s ready (%s queue, %s index)", worker.name, "redis" if settings.queue_url else "sqlite",
             settings.qdrant_url or "embedded")
    try:
        consumer.run()
    finally:
        housekeeping.stop()
        worker.close()
