"""No code from data: what another local user or a network peer can write never runs as code, and ERAG_HOME is
private so they cannot read or write it in the first place.

- The job queue (a real SqliteHuey file, a real Redis): messages are JSON; a job crosses from the app's queue to a
  worker's as its id and is retried after its delay through huey's schedule. A pickle written straight into the
  queue or the schedule (one that creates a file when unpickled) is refused with a logged reason, runs nothing and
  is dropped; forged JSON (another task, other arguments, callbacks) is refused the same way.
- ERAG_HOME: folders are made 0700 (existing ones tightened), SQLite files 0600, and after `restrict_new_files()`
  every new file is owner-only (checked in a subprocess, so the umask does not leak into other tests).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pickle
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from huey.consumer import Scheduler, Worker
from huey.serializer import Serializer

from erag.db import ChatDatabase
from erag.settings import Settings
from jobs.board import JobBoard
from jobs.queue import REGISTERED_TASK, JobMessageSerializer, JobQueue

from .conftest import REPO, make_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class CreatesMarker:
    """Unpickling this calls os.mkdir(marker): the stand-in for any code an attacker wants a worker to run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)  # huey keeps naive UTC times


def _consumer(queue: JobQueue) -> tuple[Worker, Scheduler]:
    """huey's own consumer loops (one worker, one scheduler), stepped by hand instead of on threads."""
    stop = threading.Event()
    return Worker(queue.huey, stop, default_delay=0.01, max_delay=0.01, backoff=1.0), Scheduler(queue.huey, stop, 1,
                                                                                                periodic=False)


def _redis_url(tmp_path: Path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0", proc


@pytest.fixture(params=["sqlite", "redis"])
def queue_settings(request, tmp_path: Path):
    settings = make_settings(tmp_path / "home", job_max_attempts=3, job_retry_delay_s=30.0)
    if request.param == "sqlite":
        yield settings
        return
    url, proc = _redis_url(tmp_path)
    try:
        yield settings.model_copy(update={"queue_url": url})
    finally:
        proc.terminate()
        proc.wait(10)


def _board(settings: Settings) -> JobBoard:
    return JobBoard(ChatDatabase.from_settings(settings), settings.job_lease_s, settings.job_max_attempts)


def _raw_queue(queue: JobQueue) -> list[bytes]:
    """The stored bytes of the waiting messages, read past huey."""
    storage = queue.huey.storage
    if hasattr(storage, "filename"):
        with sqlite3.connect(storage.filename) as conn:
            return [bytes(row[0]) for row in conn.execute("select data from task")]
    return storage.conn.lrange(storage.queue_key, 0, -1)


def _raw_schedule(queue: JobQueue) -> list[bytes]:
    storage = queue.huey.storage
    if hasattr(storage, "filename"):
        with sqlite3.connect(storage.filename) as conn:
            return [bytes(row[0]) for row in conn.execute("select data from schedule")]
    return storage.conn.zrange(storage.schedule_key, 0, -1)


def _write_raw(queue: JobQueue, payload: bytes, scheduled: bool) -> None:
    """Write bytes straight into the queue or the schedule, as anyone with access to the file or Redis can."""
    storage = queue.huey.storage
    if hasattr(storage, "filename"):  # SqliteStorage: tables `task` (queue, data, priority), `schedule` (.., timestamp)
        with sqlite3.connect(storage.filename) as conn:
            if scheduled:
                conn.execute("insert into schedule (queue, data, timestamp) values (?, ?, ?)",
                             (storage.name, payload, 0.0))
            else:
                conn.execute("insert into task (queue, data, priority) values (?, ?, ?)", (storage.name, payload, 0))
    elif scheduled:  # RedisStorage: a list for the queue, a sorted set (by time) for the schedule
        storage.conn.zadd(storage.schedule_key, {payload: 0})
    else:
        storage.conn.lpush(storage.queue_key, payload)


def test_a_job_crosses_the_queue_as_json_and_is_retried_after_its_delay(queue_settings: Settings) -> None:
    settings = queue_settings
    board = _board(settings)
    app_side = JobQueue(settings, board)  # only enqueues, like the app
    job_id = app_side.submit(Path("/srv/uploads/hr/leave.md"), {"groups": ["hr"]}, "ada")

    [raw] = _raw_queue(app_side)
    message = json.loads(raw)  # what lies in the queue is plain JSON, readable by anyone auditing it
    assert message["name"] == REGISTERED_TASK and message["args"] == [job_id] and message["eta"] is None
    assert not raw.startswith(b"\x80")  # no pickle header

    runs: list[tuple[int, int]] = []

    def handle(job_id: int, task=None) -> str:
        runs.append((job_id, task.retries))
        if len(runs) == 1:
            raise RuntimeError("the index is restarting")  # huey retries after ERAG_JOB_RETRY_DELAY_S
        return "added"

    worker_side = JobQueue(settings, board, handler=handle)  # its own Huey: another process's view of the queue
    assert isinstance(worker_side.huey.serializer, JobMessageSerializer)
    worker, scheduler = _consumer(worker_side)
    worker.loop()
    assert runs == [(job_id, 2)]  # 3 attempts: this one and 2 retries
    [scheduled] = _raw_schedule(worker_side)  # the retry waits in huey's schedule, as JSON with an ISO eta
    eta = dt.datetime.fromisoformat(json.loads(scheduled)["eta"])
    assert dt.timedelta(seconds=25) < eta - _utcnow() <= dt.timedelta(seconds=30)

    scheduler.loop(now=_utcnow())
    assert worker_side.huey.pending_count() == 0  # not due yet
    later = _utcnow() + dt.timedelta(seconds=31)
    _consumer(worker_side)[1].loop(now=later)
    assert worker_side.huey.pending_count() == 1 and worker_side.huey.scheduled_count() == 0
    worker.loop(now=later)
    assert runs == [(job_id, 2), (job_id, 1)]
    assert worker_side.huey.pending_count() == worker_side.huey.scheduled_count() == 0

    # The sending side refuses what a worker would refuse, instead of queueing it.
    with pytest.raises(ValueError, match="no keyword arguments"):
        app_side.huey.enqueue(app_side.task.s(job_id, extra="x"))
    with pytest.raises(ValueError, match="exactly one integer job id"):
        app_side.huey.enqueue(app_side.task.s("leave.md"))
    board.db.close()


def test_a_running_consumer_retries_a_failed_job_after_its_delay(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", job_max_attempts=2, job_retry_delay_s=0.2)
    board = _board(settings)
    runs: list[tuple[int, int]] = []
    done = threading.Event()

    def handle(job_id: int, task=None) -> str:
        runs.append((job_id, task.retries))
        if len(runs) == 1:
            raise RuntimeError("the index is restarting")
        done.set()
        return "added"

    consumer = JobQueue(settings, board, handler=handle).huey.create_consumer(
        workers=1, worker_type="thread", periodic=False, initial_delay=0.05, max_delay=0.2)
    consumer.start()  # huey's threads: a worker and the scheduler that re-enqueues the retry when due
    try:
        job_id = JobQueue(settings, board).submit(Path("/srv/uploads/it/vpn.md"), {"groups": ["all"]}, "ada")
        assert done.wait(30), runs
    finally:
        consumer.stop(graceful=True)
    assert runs == [(job_id, 1), (job_id, 0)]
    board.db.close()


def test_a_pickle_written_into_the_queue_runs_nothing(queue_settings: Settings, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    # The payload is real: huey's default serializer runs it (here into a control folder).
    control = tmp_path / "control-marker"
    Serializer().deserialize(pickle.dumps(CreatesMarker(control)))
    assert control.is_dir()

    settings = queue_settings
    board = _board(settings)
    runs: list[int] = []
    queue = JobQueue(settings, board, handler=lambda job_id, task=None: runs.append(job_id))
    worker, scheduler = _consumer(queue)
    marker = tmp_path / "marker"
    payload = pickle.dumps(CreatesMarker(marker))

    with pytest.raises(ValueError, match="queue message refused: not a JSON job message"):
        queue.huey.deserialize_task(payload)

    caplog.set_level(logging.INFO, logger="huey")
    _write_raw(queue, payload, scheduled=False)
    worker.loop()  # exactly what a consumer thread does each turn
    refused = [r for r in caplog.records if r.name == "huey.consumer.Worker" and r.exc_info]
    assert refused and refused[0].getMessage() == "Error reading from queue"
    assert isinstance(refused[0].exc_info[1], ValueError)
    assert "not a JSON job message" in str(refused[0].exc_info[1]) and "pickle" in str(refused[0].exc_info[1])
    assert _raw_queue(queue) == []  # dropped, not delivered again and again

    caplog.clear()
    _write_raw(queue, payload, scheduled=True)
    scheduler.loop(now=_utcnow())
    refused = [r for r in caplog.records if r.name == "huey" and r.exc_info]
    assert refused and refused[0].getMessage() == "Unable to deserialize task."
    assert "not a JSON job message" in str(refused[0].exc_info[1])
    assert _raw_schedule(queue) == [] and queue.huey.pending_count() == 0

    assert not marker.exists() and runs == []

    # The queue still works after refusing them.
    job_id = JobQueue(settings, board).submit(Path("/srv/uploads/hr/leave.md"), {"groups": ["hr"]}, "ada")
    worker.loop()
    assert runs == [job_id] and not marker.exists()
    board.db.close()


def _message(**changes) -> dict:
    message = {"v": 1, "id": "0f8fad5b-d9cb-469f-a165-70867728950e", "name": REGISTERED_TASK, "eta": None,
               "retries": 2, "retry_delay": 5.0, "retry_backoff": 0, "priority": None, "timeout": None, "args": [7]}
    return {**message, **changes}


@pytest.mark.parametrize(("data", "reason"), [
    (_message(name="builtins.exec"), "is not 'jobs.queue.erag.ingest_file', the only task"),
    (_message(args=["__import__('os').system('id')"]), "exactly one integer job id"),
    (_message(args=[7, 8]), "exactly one integer job id"),
    (_message(args=[True]), "exactly one integer job id"),
    (_message(args=[7.0]), "exactly one integer job id"),
    (_message(args=[-1]), "exactly one integer job id"),
    (_message(kwargs={"path": "/etc/passwd"}), "unexpected fields ['kwargs']"),
    (_message(on_complete=_message()), "unexpected fields ['on_complete']"),
    (_message(chord_config=[1, 2, 0, _message()]), "unexpected fields ['chord_config']"),
    ({k: v for k, v in _message().items() if k != "retries"}, "missing fields ['retries']"),
    (_message(v=2), "message format 2"),
    (_message(eta="tomorrow"), "Invalid isoformat string"),
    (_message(retries="3"), "'retries' must be a non-negative integer"),
    (_message(retry_delay=-1), "'retry_delay' must be a non-negative number"),
    (_message(id="../../x"), "is not a huey task id"),
    ([REGISTERED_TASK, [7]], "a job message is a JSON object"),
    (json.dumps(_message()).replace("5.0", "NaN"), "NaN is not a number"),
    ("x" * 5000, "5000 bytes"),
])
def test_forged_json_messages_are_refused_with_the_reason(data, reason: str) -> None:
    raw = (data if isinstance(data, str) else json.dumps(data)).encode()
    with pytest.raises(ValueError, match="queue message refused") as refused:
        JobMessageSerializer().deserialize(raw)
    assert reason in str(refused.value)
    ok = JobMessageSerializer().deserialize(json.dumps(_message()).encode())  # the unforged one reads
    assert ok.name == REGISTERED_TASK and ok.args == (7,) and ok.kwargs == {} and ok.on_complete is None


def test_results_and_revocations_do_not_go_through_pickle_either(settings: Settings) -> None:
    queue = JobQueue(settings, _board(settings))
    with pytest.raises(ValueError, match="only carries job messages"):
        queue.huey.put("result", {"anything": 1})
    queue.huey.storage.put_data("r:forged", pickle.dumps(CreatesMarker(settings.home / "marker")))
    with pytest.raises(ValueError, match="not a JSON job message"):
        queue.huey.get("r:forged")
    assert not (settings.home / "marker").exists()


# --- a private ERAG_HOME ------------------------------------------------------------------------------------
_UMASK_PROBE = """
import json, os, sqlite3, stat, sys
from pathlib import Path
from erag.home import private_dir, restrict_new_files

root = Path(sys.argv[1])
os.umask(0o022)  # the usual default: group and others may read what is created
previous = restrict_new_files()
home = private_dir(root / "fresh" / "home")
(home / "notes.txt").write_text("salary review")
conn = sqlite3.connect(home / "chat.db")
conn.execute("pragma journal_mode=wal")
conn.execute("create table t (a)")
conn.execute("insert into t values (1)")
conn.commit()
os.mkdir(home / "spool")
(home / "spool" / "1.spool").write_bytes(b"x")
paths = [root / "fresh", home, *sorted(home.rglob("*"))]
modes = {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in paths}
conn.close()
print(json.dumps({"previous": previous, "now": os.umask(0o077), "modes": modes}))
"""


def test_files_created_after_restrict_new_files_are_owner_only(tmp_path: Path) -> None:
    before = os.umask(0o022)
    os.umask(before)
    out = subprocess.run([sys.executable, "-c", _UMASK_PROBE, str(tmp_path)], cwd=REPO, capture_output=True,
                         text=True, check=True)
    probe = json.loads(out.stdout)
    assert probe["previous"] == 0o022 and probe["now"] == 0o077
    modes = probe["modes"]
    assert modes["fresh"] == modes["fresh/home"] == modes["fresh/home/spool"] == 0o700
    assert {"fresh/home/notes.txt", "fresh/home/chat.db", "fresh/home/chat.db-wal",
            "fresh/home/spool/1.spool"} <= set(modes)
    assert all(m & 0o077 == 0 for m in modes.values()), {p: oct(m) for p, m in modes.items()}
    assert os.umask(before) == before  # this process's umask is untouched


def test_the_queue_and_the_chat_database_keep_the_home_private(tmp_path: Path) -> None:
    # An existing home from an older version: folder and files readable by everyone.
    old = make_settings(tmp_path / "old-home")
    old.home.mkdir(mode=0o755)
    os.chmod(old.home, 0o755)
    (old.home / "queue.db").touch(mode=0o644)
    os.chmod(old.home / "queue.db", 0o644)
    outer = tmp_path / "srv"
    outer.mkdir()
    os.chmod(outer, 0o755)
    fresh = make_settings(outer / "new" / "nested" / "home")
    for settings in (old, fresh):
        db = ChatDatabase.from_settings(settings)
        queue = JobQueue(settings, JobBoard(db))
        queue.submit(Path("/srv/uploads/hr/leave.md"), {"groups": ["hr"]}, "ada")  # writes both databases
        assert mode(settings.home) == 0o700
        files = [f for f in settings.home.iterdir() if f.name.startswith(("chat.db", "queue.db"))]
        assert {"chat.db", "queue.db", "chat.db-wal", "queue.db-wal"} <= {f.name for f in files}
        assert {f.name: oct(mode(f)) for f in files} == {f.name: oct(0o600) for f in files}
        db.close()
    assert mode(outer / "new") == mode(outer / "new" / "nested") == 0o700  # parents it made are private
    assert mode(outer) == 0o755  # a folder above the home that it did not make is left as it was


def test_a_dropped_or_tampered_spool_entry_runs_nothing_and_fails_its_job(tmp_path: Path, corpus: Path,
                                                                           fast_embedder) -> None:
    """The spool (what workers prepare for the process that holds the embedded index) is read as data: a pickle
    dropped in as an entry is never unpickled, and an entry whose content was changed (groups widened, another
    document's chunks, damaged vectors) is refused: each fails its job with the reason and writes nothing."""
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import save_file

    from index.edge_store import EdgeStore
    from index.versions import visible
    from ingest.pipeline import IngestPipeline
    from jobs.board import FAILED, INDEXED
    from jobs.spool import Spool, SpoolEntry, SpoolSink
    from jobs.writer import IndexWriter

    settings = make_settings(tmp_path / "home")
    board = JobBoard(ChatDatabase.from_settings(settings), lease_s=30, max_attempts=3)
    spool = Spool(settings.home / "spool")
    names = ["pickle", "widened", "other_doc", "bad_vectors", "good"]
    files = tmp_path / "files"
    files.mkdir()
    for name in names:  # one document per case: jobs of one document would wait for each other
        (files / f"{name}.csv").write_text((corpus / "staff.csv").read_text())
    sink = SpoolSink()
    IngestPipeline(settings, embedder=fast_embedder, progress=False, sink=sink).run([files])
    versions = {Path(v.doc_id).stem: v for v in sink.take()}
    marker = tmp_path / "pwned"

    def job(name: str) -> tuple[int, int]:
        job_id = board.create(files / f"{name}.csv", {"groups": ["all"]}, "ada")
        claim = board.claim(job_id, "w1")
        assert board.spooled(claim, len(versions[name].points))
        return job_id, claim.attempt

    def entry(name: str, job: tuple[int, int], source: str | None = None) -> SpoolEntry:
        return SpoolEntry(*job, sink.dim, sink.embedder, versions[source or name])

    jobs = {name: job(name) for name in names}
    (spool.folder / "{:012d}-{:03d}.spool".format(*jobs["pickle"])).write_bytes(pickle.dumps(CreatesMarker(marker)))
    widened = entry("widened", jobs["widened"])
    for point in widened.version.points:
        point.payload["groups"] = ["everyone"]  # chunks that claim another group than the job recorded
    spool.put(widened)
    spool.put(entry("other_doc", jobs["other_doc"], source="good"))  # another document's chunks
    damaged = spool.put(entry("bad_vectors", jobs["bad_vectors"]))
    with safe_open(str(damaged), framework="np") as fh:
        header = fh.metadata()
    save_file({"dense": np.zeros((1, 3), dtype=np.float32), "sparse_indices": np.zeros(0, dtype=np.int64),
               "sparse_values": np.zeros(0, dtype=np.float32)}, str(damaged), metadata=header)
    spool.put(entry("good", jobs["good"]))

    store = EdgeStore(settings)
    try:
        assert IndexWriter(store, board, spool).apply_pending() == 1
        assert not marker.exists()
        reasons = {name: board.get(jobs[name][0]).reason for name in names}
        for name in ("pickle", "widened", "other_doc", "bad_vectors"):
            assert board.get(jobs[name][0]).status == FAILED and "refused" in reasons[name], (name, reasons[name])
        assert "access groups" in reasons["widened"] and "ingests" in reasons["other_doc"]
        assert "dense vectors" in reasons["bad_vectors"]
        assert board.get(jobs["good"][0]).status == INDEXED
        written = {(h.payload["doc_id"], tuple(h.payload["groups"])) for h in store.scroll(visible())}
        assert written == {(versions["good"].doc_id, ("all",))}
    finally:
        store.close()
    assert not spool.paths()  # refused entries are removed, not retried forever
