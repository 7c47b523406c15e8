"""The embedded index's single writer: applies spooled job results with the pipeline's commit protocol.

Example:
    >>> writer = IndexWriter(store, board, Spool(settings.home / "spool"))
    >>> writer.apply_pending()          # -> number of jobs applied; each job becomes `indexed`
    2

Who writes: the process holding the `writer.lock` file lock. The app takes it at start and keeps it (its
writer thread shares the index the chat already has open; Qdrant Edge serves queries while it updates).
With no app running, a worker takes it for as long as it has entries to apply, then lets go, so an app
that starts later waits a few seconds at most (`WriterLock.acquire(timeout)`).

Crash safety: an entry is deleted only after its job is marked indexed. Killed in between, the entry is
applied again on the next start; the version is then found current and nothing is written twice.

Trust: an entry is data read from disk. It is validated when read (`jobs.spool.SpoolEntry.from_file`) and
checked against its job here (same document, same access groups as the job recorded); an entry that fails
either check fails its job with the reason and is never written.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from pathlib import Path

from erag.home import private_dir
from index.store import Store
from index.tables import TableStore
from ingest.pipeline import IndexSink
from jobs.board import JobBoard
from jobs.spool import Spool, SpoolEntry, SpoolError

log = logging.getLogger(__name__)


class WriterLock:
    """An exclusive lock file that says which process may hold the embedded index for writing."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float = 0.0) -> bool:
        """Take the lock, waiting up to `timeout` seconds (0: try once)."""
        if self._fd is not None:
            return True
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.2)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class IndexWriter:
    """Apply spool entries to `store` in job order; stale entries (their job moved on) are dropped."""

    def __init__(self, store: Store, board: JobBoard, spool: Spool, tables: TableStore | None = None) -> None:
        self.store = store
        self.board = board
        self.spool = spool
        # The same writes as a direct ingest: tables first, then the version switch (ingest.pipeline.IndexSink).
        self.sink = IndexSink(store, tables)
        self.unoptimized = 0  # jobs applied since the last optimize

    def apply(self, entry: SpoolEntry) -> str:
        """Write one job's chunks unless that version is already current; returns the outcome."""
        self.store.ensure_collection(entry.dim, entry.embedder)
        version = entry.version
        state = self.sink.state(version.doc_id, version.version)
        if state in ("unchanged", "repaired"):
            return state
        self.sink.write(version)
        return state

    def check(self, entry: SpoolEntry) -> None:
        """The entry is what its job asked for: the job's document, and the access groups the job recorded."""
        job = self.board.get(entry.job_id)
        if job is None:
            raise SpoolError(f"job {entry.job_id} does not exist")
        if entry.doc_id != job.doc_id:
            raise SpoolError(f"the entry holds {entry.doc_id}, but job {entry.job_id} ingests {job.doc_id}")
        asked = job.meta.get("groups")
        if asked is not None and sorted(entry.groups) != sorted(asked):
            raise SpoolError(f"the entry's access groups {entry.groups} differ from the job's {sorted(asked)}")

    def apply_pending(self, optimize: bool = True) -> int:
        """Apply every waiting entry; with `optimize`, build indexes right after (else see `optimize_if_idle`)."""
        applied = 0
        for path in self.spool.paths():
            job_id, attempt = self.spool.job_of(path)
            state = self.board.spool_state(job_id, attempt)
            if state == "wait":
                continue  # written a moment ago; its worker marks the job spooled next (or dies and is reaped)
            if state == "drop":
                path.unlink(missing_ok=True)  # the job was retried or failed meanwhile
                continue
            try:
                entry = self.spool.read(path)
                self.check(entry)
            except Exception as exc:  # a damaged or tampered entry fails its job instead of blocking every later one
                log.warning("spool entry %s refused: %s", path.name, exc)
                self.board.write_failed(job_id, attempt, f"the prepared chunks were refused ({exc})")
                path.unlink(missing_ok=True)
                continue
            outcome = self.apply(entry)  # a store error propagates: the entry stays for the next round
            self.board.written(job_id, attempt, outcome, entry.chunks)
            path.unlink(missing_ok=True)
            applied += 1
        self.unoptimized += applied
        if optimize:
            self.optimize_if_idle()
        return applied

    def optimize_if_idle(self) -> None:
        """Build indexes once a burst of uploads is written, not after every file: new chunks are searchable
        before (unindexed segments are scanned), and optimizing per file would repeat the work 200 times."""
        if self.unoptimized:
            self.store.optimize()
            self.unoptimized = 0


class WriterThread:
    """The app's writer: applies spool entries every `interval` seconds and requeues jobs of dead workers."""

    def __init__(self, writer: IndexWriter | None, reap, interval: float = 0.5, reap_every: float = 5.0) -> None:
        self.writer = writer
        self.reap = reap
        self.interval = interval
        self.reap_every = reap_every
        self.errors = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="erag-index-writer", daemon=True)

    def start(self) -> WriterThread:
        self._thread.start()
        return self

    def _loop(self) -> None:
        last_reap = 0.0
        while not self._stop.is_set():
            try:
                if self.writer is not None and not self.writer.apply_pending(optimize=False):
                    self.writer.optimize_if_idle()  # a round with nothing new: the burst is over
                if time.monotonic() - last_reap >= self.reap_every:
                    last_reap = time.monotonic()
                    self.reap()
            except Exception as exc:  # keep serving: the page shows the last error, the next round retries
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("index writer round failed")
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
