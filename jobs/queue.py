"""The job queue: huey hands job ids to worker processes, with retries; statuses live on the JobBoard.

Example:
    >>> queue = JobQueue(settings, board)                         # app side: only enqueues
    >>> queue.submit(Path("uploads/hr/leave.pdf"), {"groups": ["hr"]}, submitted_by="ada")
    >>> JobQueue(settings, board, handler=worker.handle)          # worker side: runs the jobs

Embedded default: a SQLite file under ERAG_HOME (workers on this machine). `ERAG_QUEUE_URL=redis://...`
puts the queue on Redis, so workers on any machine share it. huey was chosen for being small, well kept
and having both backends behind one API; the queue only carries job ids, so what a job is and where it
stands stays in the SQL database that the app already uses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey

from erag.settings import Settings
from jobs.board import JobBoard

TASK_NAME = "erag.ingest_file"


class QueueError(RuntimeError):
    """The queue cannot be reached or is misconfigured; the message says what to do."""


def make_huey(settings: Settings) -> Huey:
    url = settings.queue_url
    if not url:
        settings.home.mkdir(parents=True, exist_ok=True)
        return SqliteHuey("erag", filename=str(settings.home / "queue.db"), results=False)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("erag", url=url, results=False)
    raise QueueError(f"ERAG_QUEUE_URL '{url}' is not a Redis URL (redis://host:6379/0); leave it empty for SQLite")


def _not_here(job_id: int, task: Any = None) -> None:
    raise QueueError("this process only submits jobs; run `erag worker` to process them")


class JobQueue:
    """Submit files as jobs and deliver their ids to whoever runs `handler` (the worker)."""

    def __init__(self, settings: Settings, board: JobBoard, handler: Callable[..., Any] | None = None,
                 huey: Huey | None = None) -> None:
        self.settings = settings
        self.board = board
        self.huey = huey or make_huey(settings)
        # The board keeps the attempts; huey's own retries cover errors a worker raised (not a dead worker).
        run = handler or _not_here

        def ingest_file(job_id: int, task: Any = None) -> Any:
            return run(job_id, task=task)

        # Defined here so the task's registered name (module + name) is the same in every process.
        self.task = self.huey.task(retries=max(settings.job_max_attempts - 1, 0),
                                   retry_delay=settings.job_retry_delay_s, context=True,
                                   name=TASK_NAME)(ingest_file)

    def submit(self, path: Path, meta: dict[str, Any], submitted_by: str = "", incoming: Path | None = None) -> int:
        """Record the job, then enqueue it; a queue that cannot be reached fails the job visibly."""
        job_id = self.board.create(path, meta, submitted_by, incoming)
        self.enqueue(job_id)
        return job_id

    def enqueue(self, job_id: int) -> None:
        """Deliver the job with huey retries for the attempts it has left (a reaped job has used some)."""
        job = self.board.get(job_id)
        used = job.attempts if job is not None else 0
        try:
            task = self.task.s(job_id)
            task.retries = max(self.settings.job_max_attempts - used - 1, 0)
            self.huey.enqueue(task)
        except Exception as exc:
            reason = f"the job queue cannot be reached ({type(exc).__name__}: {exc})"
            self.board.mark_unqueued(job_id, reason)
            raise QueueError(reason) from exc

    def reap(self) -> list[int]:
        """Requeue the jobs of dead workers (see JobBoard.reap); returns their ids."""
        requeued = self.board.reap()
        for job_id in requeued:
            self.enqueue(job_id)
        return requeued

    def waiting(self) -> int:
        """Messages in the queue (jobs not yet picked up by a worker)."""
        return int(self.huey.pending_count())
