"""Ingestion jobs and their visible status: one row per file in the app's SQL database.

Example:
    >>> board = JobBoard(ChatDatabase.from_settings(settings), lease_s=60, max_attempts=3)
    >>> job_id = board.create(Path("/srv/uploads/hr/leave.pdf"), {"groups": ["hr"]}, submitted_by="ada")
    >>> claim = board.claim(job_id, worker="host:123")      # a Claim, BLOCKED, or None
    >>> board.stage(claim, "embedding")
    >>> board.finish(claim, "added", chunks=12)

Statuses: queued -> parsing -> tagging -> embedding -> indexing -> indexed, or failed with the reason.
On the embedded index a worker's result waits as `spooled` until the index writer applies it.

The queue (huey) delivers a job id at most once, and a worker killed mid-file never reports back. So a
working job holds a lease that its worker's heartbeat renews; `reap()` returns jobs whose lease ran out
to the queue (or fails them after `max_attempts`). Every write after the claim names its attempt, so a
worker that lost its job (it stalled past the lease and was reaped) cannot overwrite the newer attempt.
Jobs of one document run one at a time, in submission order (`claim` refuses while an earlier job of the
same document is queued or working), so a newer upload is never overtaken by an older one.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, and_, or_, select, text, update
from sqlalchemy.orm import Mapped, aliased, mapped_column

from erag.db import Base, ChatDatabase, utcnow

QUEUED = "queued"
WORKING = ("parsing", "tagging", "embedding", "indexing")
SPOOLED = "spooled"
INDEXED = "indexed"
FAILED = "failed"
ACTIVE = (*WORKING, SPOOLED)
# How far along a file is, for progress bars.
PROGRESS = {QUEUED: 0.0, "parsing": 0.2, "tagging": 0.4, "embedding": 0.6, "indexing": 0.8, SPOOLED: 0.9,
            INDEXED: 1.0, FAILED: 1.0}


class IngestJob(Base):
    """One file to ingest (or re-ingest), its metadata, where it stands and who works on it."""

    __tablename__ = "ingest_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_name: Mapped[str] = mapped_column(String(300))
    path: Mapped[str] = mapped_column(Text)  # the file ingested (doc id = its resolved path)
    doc_id: Mapped[str] = mapped_column(String(1024), index=True)
    incoming: Mapped[str | None] = mapped_column(Text, nullable=True)  # staged upload, moved to `path` at claim
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # groups, department, owner
    submitted_by: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), index=True, default=QUEUED)
    outcome: Mapped[str] = mapped_column(String(20), default="")  # added | updated | unchanged | repaired
    reason: Mapped[str] = mapped_column(Text, default="")
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str] = mapped_column(String(200), default="")
    lease_until: Mapped[float] = mapped_column(Float, default=0.0)  # epoch seconds: portable comparisons
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one attempt of a job."""

    job_id: int
    attempt: int
    path: Path
    doc_id: str
    meta: dict[str, Any]
    incoming: Path | None = None


@dataclass(frozen=True)
class JobView:
    """A job as pages and the CLI show it."""

    id: int
    file_name: str
    status: str
    outcome: str
    reason: str
    chunks: int
    attempts: int
    submitted_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    meta: dict[str, Any]
    doc_id: str

    @property
    def progress(self) -> float:
        return PROGRESS.get(self.status, 0.0)


BLOCKED = "blocked"  # claim() result: an earlier job of the same document goes first


class JobBoard:
    """Create, claim, advance and reap ingestion jobs; every method is one short transaction."""

    def __init__(self, db: ChatDatabase, lease_s: float = 60.0, max_attempts: int = 3) -> None:
        if lease_s <= 1 or max_attempts < 1:
            raise ValueError(f"need lease_s > 1 and max_attempts >= 1, got {lease_s} and {max_attempts}")
        self.db = db
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        Base.metadata.create_all(db.engine, tables=[IngestJob.__table__])

    # --- submitting ------------------------------------------------------------------------------
    def create(self, path: Path, meta: dict[str, Any], submitted_by: str = "", incoming: Path | None = None) -> int:
        path = Path(path).resolve()
        with self.db.session() as session:
            job = IngestJob(file_name=path.name, path=str(path), doc_id=str(path), meta=dict(meta),
                            submitted_by=submitted_by, incoming=str(incoming) if incoming else None)
            session.add(job)
            session.flush()
            return job.id

    # --- a worker's side -------------------------------------------------------------------------
    def claim(self, job_id: int, worker: str) -> Claim | str | None:
        """Start the next attempt of a queued job: a Claim, BLOCKED (retry soon), or None (not queued any more)."""
        other = aliased(IngestJob)
        earlier_or_busy = (
            select(other.id)
            .where(other.doc_id == IngestJob.doc_id, other.id != IngestJob.id,
                   or_(other.status.in_(ACTIVE), and_(other.status == QUEUED, other.id < IngestJob.id)))
            .exists()
        )
        with self.db.session() as session:
            if session.get_bind().dialect.name == "postgresql":
                # SQLite runs one writer at a time; Postgres checks NOT EXISTS against each transaction's own
                # snapshot, so two workers could start two jobs of one document at once: serialise per document.
                doc_id = session.execute(select(IngestJob.doc_id).where(IngestJob.id == job_id)).scalar()
                session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:doc))"), {"doc": doc_id or ""})
            done = session.execute(
                update(IngestJob)
                .where(IngestJob.id == job_id, IngestJob.status == QUEUED, ~earlier_or_busy)
                .values(status="parsing", attempts=IngestJob.attempts + 1, worker=worker, reason="",
                        lease_until=time.time() + self.lease_s, updated_at=utcnow())
            ).rowcount
            job = session.get(IngestJob, job_id)
            if job is None:
                return None
            if not done:
                return BLOCKED if job.status == QUEUED else None
            return Claim(job.id, job.attempts, Path(job.path), job.doc_id, dict(job.meta or {}),
                         Path(job.incoming) if job.incoming else None)

    def _advance(self, claim: Claim, statuses: tuple[str, ...], **values: Any) -> bool:
        with self.db.session() as session:
            return bool(session.execute(
                update(IngestJob)
                .where(IngestJob.id == claim.job_id, IngestJob.attempts == claim.attempt,
                       IngestJob.status.in_(statuses))
                .values(updated_at=utcnow(), **values)
            ).rowcount)

    def heartbeat(self, claim: Claim) -> bool:
        """Renew the lease; False when the job is no longer this attempt's (it was reaped)."""
        return self._advance(claim, WORKING, lease_until=time.time() + self.lease_s)

    def stage(self, claim: Claim, status: str) -> bool:
        if status not in WORKING:
            raise ValueError(f"unknown working status '{status}' (one of {', '.join(WORKING)})")
        return self._advance(claim, WORKING, status=status, lease_until=time.time() + self.lease_s)

    def finish(self, claim: Claim, outcome: str, chunks: int) -> bool:
        return self._advance(claim, WORKING, status=INDEXED, outcome=outcome, chunks=chunks, finished_at=utcnow())

    def spooled(self, claim: Claim, chunks: int) -> bool:
        """The result waits for the index writer; no lease any more (the spool entry is durable)."""
        return self._advance(claim, WORKING, status=SPOOLED, chunks=chunks, lease_until=0.0)

    def fail(self, claim: Claim, reason: str) -> bool:
        return self._advance(claim, (*WORKING, SPOOLED), status=FAILED, reason=reason, finished_at=utcnow())

    def retry_later(self, claim: Claim, reason: str) -> bool:
        """Back to the queue after an error the queue will retry (the reason stays visible meanwhile)."""
        return self._advance(claim, WORKING, status=QUEUED, reason=f"retrying after: {reason}", worker="")

    # --- the index writer's side -----------------------------------------------------------------
    def spool_state(self, job_id: int, attempt: int) -> str:
        """What the writer does with this attempt's spool entry: 'apply' it, 'wait' (its worker has written
        the entry but not yet marked the job spooled), or 'drop' it (the job was retried or failed meanwhile)."""
        with self.db.session() as session:
            job = session.get(IngestJob, job_id)
            if job is None or job.attempts != attempt:
                return "drop"
            if job.status == SPOOLED:
                return "apply"
            return "wait" if job.status in WORKING else "drop"

    def written(self, job_id: int, attempt: int, outcome: str, chunks: int) -> bool:
        claim = Claim(job_id, attempt, Path(), "", {})
        return self._advance(claim, (SPOOLED,), status=INDEXED, outcome=outcome, chunks=chunks, finished_at=utcnow())

    def write_failed(self, job_id: int, attempt: int, reason: str) -> bool:
        return self.fail(Claim(job_id, attempt, Path(), "", {}), reason)

    # --- housekeeping ----------------------------------------------------------------------------
    def reap(self) -> list[int]:
        """Return jobs whose worker stopped sending heartbeats to the queue; the ids to enqueue again.

        Conditional updates make it safe for several reapers (the app and every worker run one).
        """
        now = time.time()
        with self.db.session() as session:
            expired = session.execute(
                select(IngestJob.id, IngestJob.attempts, IngestJob.worker)
                .where(IngestJob.status.in_(WORKING), IngestJob.lease_until < now)
            ).all()
        requeued = []
        for job_id, attempts, worker in expired:
            gone = f"the worker ({worker}) stopped while processing this file"
            if attempts >= self.max_attempts:
                values: dict[str, Any] = {"status": FAILED, "finished_at": utcnow(),
                                          "reason": f"{gone}, {attempts} times; not retried"}
            else:
                values = {"status": QUEUED, "worker": "", "reason": f"{gone}; retrying"}
            with self.db.session() as session:
                done = session.execute(
                    update(IngestJob)
                    .where(IngestJob.id == job_id, IngestJob.attempts == attempts,
                           IngestJob.status.in_(WORKING), IngestJob.lease_until < now)
                    .values(updated_at=utcnow(), **values)
                ).rowcount
            if done and values["status"] == QUEUED:
                requeued.append(job_id)
        return requeued

    def mark_unqueued(self, job_id: int, reason: str) -> None:
        """The queue refused the job (e.g. Redis is down): fail it visibly instead of leaving it queued."""
        with self.db.session() as session:
            session.execute(update(IngestJob).where(IngestJob.id == job_id, IngestJob.status == QUEUED)
                            .values(status=FAILED, reason=reason, finished_at=utcnow(), updated_at=utcnow()))

    # --- reading ---------------------------------------------------------------------------------
    def get(self, job_id: int) -> JobView | None:
        with self.db.session() as session:
            job = session.get(IngestJob, job_id)
            return _view(job) if job is not None else None

    def recent(self, limit: int = 200) -> list[JobView]:
        """The latest jobs, newest first."""
        with self.db.session() as session:
            rows = session.execute(select(IngestJob).order_by(IngestJob.id.desc()).limit(limit)).scalars().all()
            return [_view(job) for job in rows]

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with self.db.session() as session:
            rows = session.execute(select(IngestJob.status, func.count()).group_by(IngestJob.status)).all()
            return {status: int(n) for status, n in rows}

    def summary(self, job_ids: list[int]) -> dict[str, int]:
        """How many of these jobs stand at each status (the admin page's line about the last upload)."""
        from sqlalchemy import func

        if not job_ids:
            return {}
        with self.db.session() as session:
            rows = session.execute(select(IngestJob.status, func.count()).where(IngestJob.id.in_(job_ids))
                                   .group_by(IngestJob.status)).all()
            return {status: int(n) for status, n in rows}

    def pending(self) -> int:
        """Jobs not finished yet (queued, working or spooled)."""
        counts = self.counts()
        return sum(n for status, n in counts.items() if status == QUEUED or status in ACTIVE)


def _view(job: IngestJob) -> JobView:
    return JobView(job.id, job.file_name, job.status, job.outcome, job.reason, job.chunks, job.attempts,
                   job.submitted_by, job.created_at, job.updated_at, dict(job.meta or {}), job.doc_id)
