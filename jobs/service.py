"""The app's side of ingestion: submit uploads and re-ingests, keep workers running, write the embedded index.

Example:
    >>> service = IngestionService(settings, store=chat.retriever.store)     # the index the chat has open
    >>> outcomes = service.submit_uploads([("leave.pdf", data)], {"groups": ["hr"], "department": "HR"}, "ada")
    >>> service.board.recent()[0].status
    'queued'

Uploading never blocks chat: the page only stages files and records jobs; parsing and embedding run in
worker processes (`app_workers` of them started beside the app on demand, or `erag worker` anywhere).
On the embedded index this process is the single writer: it holds the writer lock for its lifetime and
a thread applies the workers' spooled results to the index the chat already has open.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from erag.db import ChatDatabase
from erag.home import private_dir
from erag.settings import Settings
from index.store import Store
from index.tables import open_table_store
from jobs.board import JobBoard
from jobs.queue import JobQueue, QueueError
from jobs.spool import Spool
from jobs.uploads import UploadGuard, UploadOutcome
from jobs.writer import IndexWriter, WriterLock, WriterThread

log = logging.getLogger(__name__)


class WorkerSupervisor:
    """Start `count` worker processes (`erag worker --parent-pid`) when there is work; restart dead ones.

    The workers stop by themselves when this process goes away (they watch their parent), so a killed
    app leaves no stray workers holding models in memory.
    """

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self.procs: list[subprocess.Popen] = []
        self._lock = threading.Lock()

    def ensure(self) -> int:
        """Make sure `count` workers run; returns how many were started now."""
        with self._lock:
            self.procs = [p for p in self.procs if p.poll() is None]
            started = 0
            logs = self.settings.home / "logs"
            private_dir(logs)
            # Workers beside the app share its cores: split the inference threads between them.
            threads = max(1, self.settings.torch_threads // max(self.count, 1))
            env = {**os.environ, **settings_env(self.settings), "ERAG_TORCH_THREADS": str(threads)}
            cmd = [sys.executable, "-m", "cli", "worker", "--parent-pid", str(os.getpid())]
            while len(self.procs) < self.count:
                out = (logs / f"worker-{len(self.procs) + 1}.log").open("ab")
                self.procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                   env=env))
                out.close()
                started += 1
            return started

    def alive(self) -> int:
        return sum(p.poll() is None for p in self.procs)

    def stop(self, timeout: float = 20.0) -> None:
        with self._lock:
            for proc in self.procs:
                if proc.poll() is None:
                    proc.send_signal(2)  # SIGINT: huey finishes the running job, then exits
            for proc in self.procs:
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self.procs.clear()


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings this process runs with, as ERAG_ variables, so a worker started by it agrees with it."""
    data = settings.model_dump(mode="json", exclude_none=True)
    out = {}
    for key, value in data.items():
        out[f"ERAG_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return out


class IngestionService:
    """Jobs for the admin page: submit, re-ingest, watch; on the embedded index, also the index writer."""

    def __init__(self, settings: Settings, store: Store, db: ChatDatabase | None = None,
                 writer_lock: WriterLock | None = None) -> None:
        self.settings = settings
        self.store = store
        self.board = JobBoard(db or ChatDatabase.from_settings(settings), settings.job_lease_s,
                              settings.job_max_attempts)
        self.queue = JobQueue(settings, self.board)
        self.guard = UploadGuard(settings)
        self.supervisor = WorkerSupervisor(settings, settings.app_workers)
        self.embedded = settings.qdrant_url is None
        self.writer_lock = writer_lock
        writer = None
        if self.embedded:
            if writer_lock is None or not writer_lock.held:
                raise RuntimeError("the embedded index needs this process to hold the writer lock")
            writer = IndexWriter(store, self.board, Spool(settings.home / "spool"), open_table_store(settings))
        self.thread = WriterThread(writer, self._reap).start()
        if self.board.pending():
            self.supervisor.ensure()

    def _reap(self) -> None:
        if self.queue.reap():
            self.supervisor.ensure()

    def submit_uploads(self, files: Sequence[tuple[str, bytes]], meta: dict[str, Any],
                       submitted_by: str) -> list[UploadOutcome]:
        """Check and stage the files, queue a job for each accepted one, and make sure workers run."""
        outcomes = self.guard.run(files, meta.get("department"))
        for outcome in outcomes:
            if outcome.accepted and outcome.target is not None:
                try:
                    outcome.job_id = self.queue.submit(outcome.target, meta, submitted_by, incoming=outcome.staged)
                except QueueError as exc:
                    outcome.accepted, outcome.message = False, str(exc)
        if any(o.accepted for o in outcomes):
            self.supervisor.ensure()
        return outcomes

    def submit_paths(self, targets: Sequence[tuple[Path, dict[str, Any]]], submitted_by: str) -> list[int]:
        """Queue files already on disk, each with its metadata (re-ingest from the admin page)."""
        ids = [self.queue.submit(Path(path), meta, submitted_by) for path, meta in targets]
        if ids:
            self.supervisor.ensure()
        return ids

    def close(self) -> None:
        self.thread.stop()
        self.supervisor.stop()
        self.board.db.close()
