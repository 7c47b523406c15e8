"""Load check: chat queries while a 200-file upload ingests, and ingestion throughput with 1, 2 and 4 workers.

Run (heavy: take the lock): `flock /tmp/erag-heavy.lock .venv/bin/python bench/load_check.py`
Options: --files 200 --users 20 --workers 1,2,4 --concurrent-workers 2 --embedder NAME --home /tmp/erag-load

This process plays the app exactly as `app/services.py` sets it up, minus Streamlit: it holds the embedded
index and the writer lock, serves chat through `ChatPipeline` (retrieval + extractive answers: the LLM is
off, so the figures measure search and the index under ingestion, not generation), and submits the upload
through `IngestionService.submit_uploads` (the same safety checks and staging as the admin page). Worker
processes are started by the service's supervisor, as beside the real app.

1. Baseline: `--users` threads ask questions from the sample company with no ingestion running.
2. Under load: the same users keep asking while `--files` generated documents are uploaded and ingested by
   `--concurrent-workers` workers; reports errors, p50/p95/max latency and how long the ingestion took.
3. Throughput: the upload alone with 1, 2 and 4 workers (fresh index each time): files/s and chunks/s,
   from submission to the last file indexed, and from the first file started (without worker start-up).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import threading
import time
from pathlib import Path

from app.chat import ChatPipeline
from erag.settings import Settings
from erag.users import User
from index.edge_store import EdgeStore
from ingest.pipeline import IngestPipeline
from jobs.service import IngestionService
from jobs.writer import WriterLock

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "How many days of parental leave do I get?", "How do I reset my VPN token?",
    "What are the core working hours?", "What was Q3 2026 revenue for the Consulting segment?",
    "Who works in the Berlin office?", "Can I use USB sticks on my laptop?",
    "What is the holiday entitlement after three years?", "How do I report a phishing e-mail?",
    "What is the FY2026 marketing budget?", "How do I claim travel expenses?",
]
EMPLOYEE = User("erin", "Erin", ("all",))
TOPICS = ["travel", "expenses", "security", "onboarding", "procurement", "facilities", "training", "benefits",
          "equipment", "remote work", "data retention", "incident response"]
OFFICES = ["Leeds", "Berlin", "Toronto"]


def make_files(count: int, seed: int = 7) -> list[tuple[str, bytes]]:
    """Small department notes (2-4 chunks each), varied so that none is a duplicate of another."""
    rng = random.Random(seed)
    files = []
    for i in range(count):
        topic, office = rng.choice(TOPICS), rng.choice(OFFICES)
        lines = [f"# {topic.title()} note {i:03d} ({office})", ""]
        for section in range(rng.randint(2, 4)):
            lines += [f"## Rule {section + 1}", ""]
            for _ in range(rng.randint(3, 6)):
                days, amount = rng.randint(2, 30), rng.randint(20, 900)
                lines.append(f"Staff in {office} handling {topic} case {i}-{section} must file the form within "
                             f"{days} days; approvals above {amount} pounds go to the {topic} lead.")
            lines.append("")
        files.append((f"{topic.replace(' ', '_')}_note_{i:03d}.md", "\n".join(lines).encode()))
    return files


def base_index(settings: Settings) -> None:
    if (settings.index_path / "erag_meta.json").exists():
        return
    print(f"building the sample-company index in {settings.home} ...", flush=True)
    with IngestPipeline(settings, progress=False) as pipeline:
        pipeline.run([REPO / "data"])


def copy_home(base: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(base, target, ignore=shutil.ignore_patterns("chat.db*", "queue.db*", "spool", "uploads", "logs"))


class Users:
    """`n` simulated employees asking questions back to back until stopped."""

    def __init__(self, chat: ChatPipeline, n: int, per_user: int | None = None) -> None:
        self.chat, self.n, self.per_user = chat, n, per_user
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def _user(self, k: int) -> None:
        asked = 0
        while not self.stop.is_set() and (self.per_user is None or asked < self.per_user):
            question = QUESTIONS[(k + asked) % len(QUESTIONS)]
            started = time.perf_counter()
            try:
                answer = self.chat.answer(question, EMPLOYEE)
                if not answer.sources:
                    raise RuntimeError(f"no sources for {question!r}")
                with self._lock:
                    self.latencies.append(time.perf_counter() - started)
            except Exception as exc:
                with self._lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            asked += 1

    def run(self) -> threading.Thread:
        threads = [threading.Thread(target=self._user, args=(k,), daemon=True) for k in range(self.n)]
        for t in threads:
            t.start()

        def join() -> None:
            for t in threads:
                t.join()

        waiter = threading.Thread(target=join, daemon=True)
        waiter.start()
        return waiter

    def summary(self) -> dict[str, float]:
        lat = sorted(self.latencies)
        if not lat:
            return {"queries": 0, "errors": len(self.errors)}
        return {"queries": len(lat), "errors": len(self.errors), "p50_s": statistics.median(lat),
                "p95_s": lat[min(len(lat) - 1, int(0.95 * len(lat)))], "max_s": lat[-1]}


def wait_done(service: IngestionService, timeout: float) -> dict[str, float]:
    """Wait until every job is finished; the times of the first start and the last finish."""
    started = time.perf_counter()
    first_start = None
    while time.perf_counter() - started < timeout:
        jobs = service.board.recent(10_000)
        if first_start is None and any(j.status != "queued" for j in jobs):
            first_start = time.perf_counter() - started
        if jobs and not service.board.pending():
            break
        time.sleep(0.2)
    else:
        raise TimeoutError(f"ingestion did not finish in {timeout:.0f}s")
    jobs = service.board.recent(10_000)
    failed = [f"{j.file_name}: {j.reason}" for j in jobs if j.status != "indexed"]
    return {"seconds": time.perf_counter() - started, "first_start_s": first_start or 0.0,
            "files": len(jobs), "chunks": sum(j.chunks for j in jobs), "failed": len(failed),
            "failures": failed[:5]}


def open_app(settings: Settings, workers: int, chat: bool) -> tuple[WriterLock, ChatPipeline | None, EdgeStore | None,
                                                                     IngestionService]:
    settings = settings.model_copy(update={"app_workers": workers})
    lock = WriterLock(settings.home / "writer.lock")
    assert lock.acquire(timeout=30), "another process holds the writer lock"
    pipeline = ChatPipeline(settings) if chat else None
    store = None if chat else EdgeStore(settings)
    service = IngestionService(settings, pipeline.retriever.store if pipeline else store, writer_lock=lock)
    return lock, pipeline, store, service


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--workers", default="1,2,4", help="Worker counts for the throughput runs.")
    parser.add_argument("--concurrent-workers", type=int, default=2)
    parser.add_argument("--embedder", default=None, help="Default: the product's (ERAG_EMBEDDER).")
    parser.add_argument("--home", type=Path, default=Path("/tmp/erag-load"))
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    overrides = {"llm_enabled": False, "job_lease_s": 60.0}
    if args.embedder:
        overrides["embedder"] = args.embedder
    base = Settings(home=args.home / "base", **overrides)
    base_index(base)
    files = make_files(args.files)
    results: dict[str, object] = {"embedder": base.embedder, "files": args.files, "users": args.users,
                                  "answers": "retrieval + extractive (LLM off)"}

    # 1 + 2: chat while uploading.
    home = args.home / "concurrent"
    copy_home(base.home, home)
    settings = base.model_copy(update={"home": home})
    lock, chat, _, service = open_app(settings, args.concurrent_workers, chat=True)
    try:
        chat.answer(QUESTIONS[0], EMPLOYEE)  # load the models once, as the app's first question does
        idle = Users(chat, args.users, per_user=3)
        idle.run().join()
        results["baseline"] = idle.summary()
        print(f"baseline, {args.users} users, no ingestion: {json.dumps(results['baseline'])}", flush=True)
        busy = Users(chat, args.users)
        waiter = busy.run()
        submitted = time.perf_counter()
        outcomes = service.submit_uploads(files, {"groups": ["all"], "department": "Operations"}, "load-check")
        refused = [o.message for o in outcomes if not o.accepted]
        submit_s = time.perf_counter() - submitted
        done = wait_done(service, args.timeout)
        busy.stop.set()
        waiter.join()
        results["under_load"] = {**busy.summary(), "ingest": done, "submit_s": submit_s, "refused": refused,
                                 "workers": args.concurrent_workers}
        print(f"under load ({args.concurrent_workers} workers ingesting {args.files} files): "
              f"{json.dumps(results['under_load'], default=str)}", flush=True)
        for error in busy.errors[:5]:
            print(f"  error: {error}")
    finally:
        service.close()
        chat.close()
        lock.release()

    # 3: throughput by worker count.
    results["throughput"] = {}
    for n in [int(x) for x in args.workers.split(",") if x.strip()]:
        home = args.home / f"workers-{n}"
        copy_home(base.home, home)
        lock, _, store, service = open_app(base.model_copy(update={"home": home}), n, chat=False)
        try:
            service.submit_uploads(files, {"groups": ["all"], "department": "Operations"}, "load-check")
            done = wait_done(service, args.timeout)
        finally:
            service.close()
            store.close()
            lock.release()
        working = done["seconds"] - done["first_start_s"]
        row = {**done, "files_per_s": done["files"] / done["seconds"], "chunks_per_s": done["chunks"] / done["seconds"],
               "chunks_per_s_after_start": done["chunks"] / max(working, 1e-9)}
        results["throughput"][n] = row
        print(f"{n} worker(s): {done['files']} files, {done['chunks']} chunks in {done['seconds']:.1f} s "
              f"({row['files_per_s']:.2f} files/s, {row['chunks_per_s']:.1f} chunks/s; "
              f"{row['chunks_per_s_after_start']:.1f} chunks/s after the first file started), "
              f"{done['failed']} failed", flush=True)

    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "load_check.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwrote {out / 'load_check.json'}")


if __name__ == "__main__":
    main()
