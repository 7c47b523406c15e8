"""Chat latency on the sample company: time to sources, time to first token, tokens/s, for 26 questions.

Run (heavy: wrap it in the lock on the shared machine):
    flock /tmp/erag-heavy.lock .venv/bin/python bench/chat_latency.py [--embedder NAME] [--no-llm]

Ingests data/ into a fresh temporary index with the configured (default) embedder, loads the packaged LLM,
answers one warm-up question (llama.cpp evaluates the fixed system prompt once per process; its time is
printed apart), then the 26 questions below (6 of them computed over a table) as one employee, the follow-ups
inside their conversation.
Targets: sources in under 1 s, first token in under 8 s (table answers too).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from app.chat import ChatPipeline
from app.identity import current_user
from erag.settings import Settings
from ingest.pipeline import IngestPipeline

REPO = Path(__file__).resolve().parents[1]
# (question, continues the previous conversation)
QUESTIONS = [
    ("How many days of parental leave do I get?", False),
    ("and for part-time staff?", True),
    ("What are the core working hours?", False),
    ("How many days do I need to be in the office each week?", False),
    ("How do I reset my VPN token?", False),
    ("What is the minimum password length?", False),
    ("What was Q3 2026 revenue for the Consulting segment?", False),
    ("What was total revenue in the quarter?", False),
    ("How much annual leave do I get after 5 years of service?", False),
    ("When are expense claims due?", False),
    ("Who should I report a phishing e-mail to?", False),
    ("Can I use public AI tools with client data?", False),
    ("What are the Service Desk opening hours?", False),
    ("What is the FY2026 budget for the Engineering department?", False),
    ("Who works in the Berlin office?", False),
    ("How long is partner leave?", False),
    ("and is it paid?", True),
    ("How many sick days are paid in full?", False),
    ("What is the capital of France?", False),
    ("Can I plug a USB stick into my laptop?", False),
    # computed over the real table (app/table_qa.py): the SQL is written before the first token shows
    ("How many employees in the staff directory work in the Berlin office?", False),
    ("Which office has the most employees in the staff directory?", False),
    ("How many employees in the staff directory started in 2024 or later?", False),
    ("What is the total budgeted headcount for Berlin in December 2026 across all departments?", False),
    ("What is the total budgeted opex of the Consulting department across all offices, in GBP thousands?", False),
    ("How many people in the staff directory are based in Toronto?", False),
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedder", default=None, help="default: the configured embedder")
    parser.add_argument("--cold-tables", action="store_true",
                        help="do not wait for the background evaluation of the tables' SQL starts")
    parser.add_argument("--no-llm", action="store_true", help="extractive answers (sources and retrieval only)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        overrides = {"home": Path(home), "llm_enabled": not args.no_llm}
        if args.embedder:
            overrides["embedder"] = args.embedder
        settings = Settings(**overrides)
        started = time.perf_counter()
        with IngestPipeline(settings, progress=False) as pipeline:
            report = pipeline.run([REPO / "data"])
        print(f"ingested data/ with {settings.embedder} ({settings.embed_precision}): {report.chunks} chunks "
              f"in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        chat = ChatPipeline(settings)
        print(f"pipeline loaded in {time.perf_counter() - started:.1f} s; LLM: "
              f"{chat.generator.name if chat.generator else 'none (' + chat.llm_note + ')'}")
        user = current_user(settings)
        warm = chat.answer("What is the policy on working from home?", user)
        print(f"warm-up (system prompt evaluated once): sources {warm.timings['sources_s']:.2f} s, "
              f"first token {warm.timings.get('first_token_s', float('nan')):.2f} s")
        # A server that has been up a minute: the tables' SQL starts are evaluated in the background from start-up
        # (ERAG_CHAT_KEEP_TABLE_STARTS); --cold-tables measures the first minute instead.
        started = time.perf_counter()
        if not args.cold_tables:
            chat.wait_for_table_starts()
        print(f"tables' SQL starts kept in the background: {time.perf_counter() - started:.1f} s more after the "
              f"warm-up ({'not waited for' if args.cold_tables else 'waited for'})\n")

        rows = []
        conversation = None
        header = (f"{'#':>2}  {'mode':<10} {'sources s':>9} {'1st tok s':>9} {'tok/s':>6} {'tokens':>6} "
                  f"{'total s':>8}  question")
        print(header)
        print("-" * len(header))
        for i, (question, follow_up) in enumerate(QUESTIONS, start=1):
            answer = chat.answer(question, user, conversation_id=conversation if follow_up else None)
            conversation = answer.conversation_id
            t = dict(answer.timings)
            if follow_up:
                t["follow_up_rewrite_s"] = t["rewrite_s"]
            t["mode"] = answer.mode
            if answer.mode == "table":
                t["table_first_token_s"] = t.get("first_token_s", t["total_s"])
            rows.append(t)
            first = t.get("first_token_s")
            print(f"{i:>2}  {answer.mode:<10} {t['sources_s']:>9.2f} {first if first else float('nan'):>9.2f} "
                  f"{t.get('tokens_per_s', float('nan')):>6.1f} {int(t.get('tokens', 0)):>6} {t['total_s']:>8.2f}  "
                  f"{question}" + (f"  -> {answer.rewritten_query}" if answer.rewritten_query != question else ""))
        chat.close()

    def summary(key: str) -> str:
        values = [r[key] for r in rows if key in r]
        if not values:
            return "-"
        return (f"p50 {statistics.median(values):.2f}  p95 {percentile(values, 0.95):.2f}  "
                f"max {max(values):.2f}  (n={len(values)})")

    print()
    print(f"time to sources (s):     {summary('sources_s')}")
    print(f"time to first token (s): {summary('first_token_s')}")
    print(f"generation (tokens/s):   {summary('tokens_per_s')}")
    print(f"total per answer (s):    {summary('total_s')}")
    print(f"follow-up rewrite (s):   {summary('follow_up_rewrite_s')}")
    print(f"table answers, 1st tok:  {summary('table_first_token_s')}")


if __name__ == "__main__":
    main()
