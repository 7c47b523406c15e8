"""The job queue: huey hands job ids to worker processes, with retries; statuses live on the JobBoard.

Example:
    >>> queue = JobQueue(settings, board)                         # app side: only enqueues
    >>> queue.submit(Path("uploads/hr/leave.pdf"), {"groups": ["hr"]}, submitted_by="ada")
    >>> JobQueue(settings, board, handler=worker.handle)          # worker side: runs the jobs

Embedded default: a SQLite file under ERAG_HOME (workers on this machine). `ERAG_QUEUE_URL=redis://...`
puts the queue on Redis, so workers on any machine share it. huey was chosen for being small, well kept
and having both backends behind one API; the queue only carries job ids, so what a job is and where it
stands stays in the SQL database that the app already uses.

Messages are JSON, never pickle (huey's default): whoever can write the queue (the SQLite file, Redis) could
otherwise make a worker run any code. `JobMessageSerializer` reads only the one message this queue sends
(our task, one integer job id) and refuses anything else with a ValueError that huey logs.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from huey.registry import Message
from huey.serializer import Serializer

from erag.home import private_dir, private_file
from erag.settings import Settings
from jobs.board import JobBoard

TASK_NAME = "erag.ingest_file"
# huey names a task "<module of its function>.<name>"; the function is defined in this module (JobQueue).
REGISTERED_TASK = f"{__name__}.{TASK_NAME}"


class QueueError(RuntimeError):
    """The queue cannot be reached or is misconfigured; the message says what to do."""


_FORMAT = 1
_FIELDS = {"v", "id", "name", "eta", "retries", "retry_delay", "retry_backoff", "priority", "timeout", "args"}
_TASK_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_MAX_MESSAGE = 4096  # a job message is ~250 bytes; anything far bigger is not ours


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a job message can hold")


def _number(value: Any, field: str, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    # bool is an int subclass: true/false is not a delay.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"'{field}' must be a non-negative number, got {value!r}")
    return value


class JobMessageSerializer(Serializer):
    """huey messages as JSON, holding exactly what JobQueue sends: our task and one integer job id.

    Reading never unpickles. Anything else (another task name, other arguments, keyword arguments,
    callbacks, chords, expiry, unknown fields, a pickle) raises ValueError with the reason: huey's consumer
    logs it and drops the message, so a forged message can at most make a worker look up a job id.
    Results, locks and revocations are not used by this queue, so they are refused too (they would go
    through this serializer).
    """

    def __init__(self, task_name: str = REGISTERED_TASK) -> None:
        super().__init__()
        self.task_name = task_name

    def _serialize(self, data: Any) -> bytes:
        if not isinstance(data, Message):
            raise ValueError(f"the job queue only carries job messages, not {type(data).__name__}")
        for field in ("on_complete", "on_error", "chord_config", "expires", "expires_resolved"):
            if getattr(data, field) is not None:
                raise ValueError(f"job messages carry no '{field}' (got {getattr(data, field)!r})")
        if data.kwargs:
            raise ValueError(f"job messages carry no keyword arguments (got {sorted(data.kwargs)})")
        if data.eta is not None and not isinstance(data.eta, dt.datetime):
            raise ValueError(f"'eta' must be a datetime, got {data.eta!r}")
        record = {"v": _FORMAT, "id": data.id, "name": data.name,
                  "eta": data.eta.isoformat() if data.eta is not None else None,
                  "retries": data.retries, "retry_delay": data.retry_delay, "retry_backoff": data.retry_backoff,
                  "priority": data.priority, "timeout": data.timeout, "args": list(data.args or ())}
        self._check(record)  # the app must not send what a worker would refuse
        return json.dumps(record, separators=(",", ":"), allow_nan=False).encode()

    def _deserialize(self, data: bytes | bytearray | memoryview | str) -> Message:
        raw = data.encode() if isinstance(data, str) else bytes(data)
        if len(raw) > _MAX_MESSAGE:
            raise ValueError(f"queue message refused: {len(raw)} bytes, a job message is under {_MAX_MESSAGE}")
        try:
            record = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ValueError(f"queue message refused: not a JSON job message ({raw[:16]!r}...; a pickle from an "
                             f"older version or someone else's write): {exc}") from None
        try:
            return self._check(record)
        except ValueError as exc:
            raise ValueError(f"queue message refused: {exc}") from None

    def _check(self, record: Any) -> Message:
        if not isinstance(record, dict):
            raise ValueError(f"a job message is a JSON object, got {type(record).__name__}")
        if set(record) != _FIELDS:
            extra, missing = sorted(set(record) - _FIELDS), sorted(_FIELDS - set(record))
            raise ValueError(f"unexpected fields {extra}, missing fields {missing}")
        if record["v"] != _FORMAT:
            raise ValueError(f"message format {record['v']!r}, this version reads {_FORMAT}")
        if record["name"] != self.task_name:
            raise ValueError(f"task {record['name']!r} is not {self.task_name!r}, the only task of this queue")
        args = record["args"]
        if not (isinstance(args, list) and len(args) == 1 and type(args[0]) is int and 0 < args[0] < 2**63):
            raise ValueError(f"arguments must be exactly one integer job id, got {args!r}")
        if not (isinstance(record["id"], str) and _TASK_ID.fullmatch(record["id"])):
            raise ValueError(f"task id {record['id']!r} is not a huey task id")
        retries = record["retries"]
        if type(retries) is not int or retries < 0:
            raise ValueError(f"'retries' must be a non-negative integer, got {retries!r}")
        eta = record["eta"]
        if eta is not None:
            if not isinstance(eta, str):
                raise ValueError(f"'eta' must be an ISO time, got {eta!r}")
            eta = dt.datetime.fromisoformat(eta)  # its ValueError names the bad value
        return Message(id=record["id"], name=record["name"], eta=eta, retries=retries,
                       retry_delay=_number(record["retry_delay"], "retry_delay"),
                       priority=_number(record["priority"], "priority", optional=True), args=(args[0],),
                       kwargs={}, timeout=_number(record["timeout"], "timeout", optional=True),
                       retry_backoff=_number(record["retry_backoff"], "retry_backoff", optional=True))


def make_huey(settings: Settings) -> Huey:
    url = settings.queue_url
    if not url:
        # The queue file says which documents are being ingested; its folder (the home) is owner-only.
        queue_file = private_file(private_dir(settings.home) / "queue.db")
        return SqliteHuey("erag", filename=str(queue_file), results=False, serializer=JobMessageSerializer())
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("erag", url=url, results=False, serializer=JobMessageSerializer())
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
