"""The sample-company answer benchmark: the chat, as erin or hana, on questions about the shipped `data/` folder.

Example:
    python -m eval.company_eval                      # ~45 questions, 5-10 minutes on 2 cores
    python -m eval.company_eval --stability          # also ask every question again in a fresh conversation
    python -m eval.company_eval --no-number-guard    # the product without app/answer_checks.py's figure check
    erag eval eval/sets/sample_company --answers     # the same, from the command line

The questions (`eval/sets/sample_company/questions.jsonl`, schema in that folder's README.md) are asked through
`app.chat.ChatPipeline` as their `user` (the demo users of config/users.demo.yaml), a follow-up in the same
conversation as the question it follows. The index of `data/` is built once in a home under the eval cache,
named by a fingerprint of data/'s files and the embedder, with the product's default settings.

Scores, per kind and overall (rates with 95% bootstrap intervals, eval/metrics.py):
- correct: expect=answer: not abstained and every reference value (or any, with "match": "any") in the answer,
  numbers compared as numbers at the reference's precision (15400 == "15,400"; 90333 == "90,333.33");
  expect=abstain: abstained.
- false abstention (expect=answer) and abstention (expect=abstain).
- leaks: answers holding any `forbidden` string (case-free).
- invented numbers: answered questions stating a figure that no cited source, computed table result or the
  question holds (`app.answer_checks.unsupported_numbers`).
- citation precision: of the sources an answer cites, the share from the question's `file` (questions with one).
- malformed markers: bracket-like markers that are not a clean `[n]` of an existing source, or stray ones
  (`app.answer_checks.malformed_markers`).
- stability (--stability): the same answer text when asked again in a fresh conversation.
- first token p50/p95 (seconds from the question to the first answer text, `timings["first_token_s"]`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.answer_checks import answer_numbers, malformed_markers, unsupported_numbers
from eval.answer_match import numbers_in, parse_number, wtq_contains
from eval.metrics import bootstrap_ci

REPO = Path(__file__).resolve().parents[1]
SET = REPO / "eval" / "sets" / "sample_company"
DATA = REPO / "data"
USERS = REPO / "config" / "users.demo.yaml"
DEFAULT_OUT = REPO / "eval" / "reports" / "sample_company-answers"
SEED = 13


# --- the question set ---------------------------------------------------------------------------------------
def is_company_set(folder: Path) -> bool:
    """A folder of questions asked as users about data/ (this benchmark's schema), not a BEIR dataset."""
    path = Path(folder) / "questions.jsonl"
    if not path.is_file() or (Path(folder) / "corpus.jsonl").exists():
        return False
    with path.open(encoding="utf-8") as fh:
        first = next((line for line in fh if line.strip()), "")
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(row, dict) and {"question", "user", "expect"} <= row.keys()


def load_questions(folder: Path = SET) -> list[dict[str, Any]]:
    """The questions in file order; every follow-up comes after the question it follows."""
    with (Path(folder) / "questions.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    seen: set[str] = set()
    for row in rows:
        parent = row.get("follow_up_of")
        if parent and parent not in seen:
            raise ValueError(f"{row['_id']} follows {parent}, which is not asked before it")
        seen.add(row["_id"])
    return rows


# --- scoring (pure functions over one answer record) --------------------------------------------------------
def _reference_number(value: object) -> tuple[float, int] | None:
    number = parse_number(str(value))
    if number is None:
        return None
    text = str(value).replace(",", "")
    return number, len(text.split(".")[1]) if "." in text else 0


def value_in(answer: str, value: object) -> bool:
    """A reference value occurs in the answer: a number among the numbers it states, rounded to the reference's
    precision (the questions name their unit, so "£15.4 million" does not answer "in GBP thousands" with 15400);
    a string as whole words, case-free (eval/answer_match.py `wtq_contains`)."""
    reference = _reference_number(value)
    if reference is None:
        return wtq_contains(answer, [value])
    number, decimals = reference
    # Face values as written, a scale word after them included ("£17.2m" states 17.2, which numbers_in skips).
    stated = [abs(n) for n in numbers_in(answer)] + [f.value for f in answer_numbers(answer)]
    return any(round(n, decimals) == round(abs(number), decimals) for n in stated)


def is_correct(record: dict[str, Any]) -> bool:
    """Right for its `expect`: the reference values in a given answer, or an abstention."""
    if record["expect"] == "abstain":
        return bool(record["abstained"])
    if record["abstained"] or not record["answers"]:
        return False
    found = [value_in(record["text"], v) for v in record["answers"]]
    return any(found) if record.get("match") == "any" else all(found)


def leaked(record: dict[str, Any]) -> list[str]:
    """The forbidden strings the answer holds (figures only a file the asker may not read states)."""
    text = record["text"].lower()
    return [f for f in record.get("forbidden") or [] if f.lower() in text]


def _computed_texts(computation: dict[str, Any] | None) -> list[str]:
    if not computation:
        return []
    rows = computation.get("rows") or []
    return [computation.get("sql", ""), " ".join(computation.get("columns") or []),
            *("; ".join(str(v) for v in row) for row in rows)]


def invented(record: dict[str, Any]) -> list[str]:
    """Figures of an answered question that no cited source, computed result or the question holds."""
    if record["abstained"]:
        return []
    cited = [s["text"] for s in record["sources"] if s["number"] in record["cited"]]
    return unsupported_numbers(record["text"], cited, _computed_texts(record.get("computation")),
                               question=f"{record['question']}\n{record.get('rewritten', '')}")


def citation_precision(record: dict[str, Any]) -> float | None:
    """Share of the cited sources that come from the question's file; None without a file or a citation."""
    if not record.get("file") or record["abstained"] or not record["cited"]:
        return None
    files = {s["number"]: s["file_name"] for s in record["sources"]}
    return float(np.mean([files.get(n) == record["file"] for n in record["cited"]]))


def malformed(record: dict[str, Any]) -> list[str]:
    return malformed_markers(record["text"], [s["number"] for s in record["sources"]])


def score(record: dict[str, Any]) -> dict[str, Any]:
    """Every per-question score of one answer record (see the module docstring)."""
    return {"correct": is_correct(record), "leaked": leaked(record), "invented": invented(record),
            "citation_precision": citation_precision(record), "malformed": malformed(record)}


def _rate(values: Sequence[float], seed: int) -> dict[str, Any]:
    if not values:
        return {"mean": None, "ci95": [None, None], "n": 0}
    low, high = bootstrap_ci(list(values), seed)
    return {"mean": round(float(np.mean(values)), 4), "ci95": [round(low, 4), round(high, 4)], "n": len(values)}


def summarize(records: Sequence[dict[str, Any]], seed: int = SEED) -> dict[str, Any]:
    """The benchmark's numbers over scored records (each a record with its `score`)."""
    answerable = [r for r in records if r["expect"] == "answer"]
    unanswerable = [r for r in records if r["expect"] == "abstain"]
    answered = [r for r in records if not r["abstained"]]
    precisions = [r["score"]["citation_precision"] for r in records if r["score"]["citation_precision"] is not None]
    first = [r["timings"]["first_token_s"] for r in records if "first_token_s" in r["timings"]]
    out: dict[str, Any] = {
        "questions": len(records),
        "correct": _rate([float(r["score"]["correct"]) for r in records], seed),
        "correct_answerable": _rate([float(r["score"]["correct"]) for r in answerable], seed),
        "false_abstention": _rate([float(r["abstained"]) for r in answerable], seed),
        "abstention_unanswerable": _rate([float(r["abstained"]) for r in unanswerable], seed),
        "leaks": sum(bool(r["score"]["leaked"]) for r in records),
        "invented_numbers": _rate([float(bool(r["score"]["invented"])) for r in answered], seed),
        "citation_precision": _rate(precisions, seed),
        "malformed_markers": sum(len(r["score"]["malformed"]) for r in records),
        "answers_with_malformed_markers": sum(bool(r["score"]["malformed"]) for r in records),
        "first_token_s": {"p50": round(float(np.percentile(first, 50)), 2) if first else None,
                          "p95": round(float(np.percentile(first, 95)), 2) if first else None, "n": len(first)},
    }
    stable = [float(r["stable"]) for r in records if r.get("stable") is not None]
    if stable:
        out["stability"] = _rate(stable, seed)
    kinds: dict[str, Any] = {}
    for kind in dict.fromkeys(r["kind"] for r in records):
        group = [r for r in records if r["kind"] == kind]
        kinds[kind] = {
            "n": len(group),
            "correct": round(float(np.mean([r["score"]["correct"] for r in group])), 4),
            "abstained": round(float(np.mean([r["abstained"] for r in group])), 4),
            "leaks": sum(bool(r["score"]["leaked"]) for r in group),
            "invented": sum(bool(r["score"]["invented"]) for r in group),
            "malformed": sum(len(r["score"]["malformed"]) for r in group),
        }
    out["by_kind"] = kinds
    return out


def _fmt(rate: dict[str, Any]) -> str:
    if rate.get("mean") is None:
        return "n/a"
    low, high = rate["ci95"]
    return f"{rate['mean']:.3f} [{low:.3f}, {high:.3f}] (n={rate['n']})"


def summary_table(summary: dict[str, Any]) -> str:
    """The headline numbers, then one row per kind, as Markdown."""
    ft = summary["first_token_s"]
    rows = [
        ("questions", str(summary["questions"])),
        ("correct (all)", _fmt(summary["correct"])),
        ("correct (expect answer)", _fmt(summary["correct_answerable"])),
        ("false abstention (expect answer)", _fmt(summary["false_abstention"])),
        ("abstention (expect abstain)", _fmt(summary["abstention_unanswerable"])),
        ("answers leaking a forbidden figure", str(summary["leaks"])),
        ("answers with invented numbers (of answered)", _fmt(summary["invented_numbers"])),
        ("citation precision (cited source from the question's file)", _fmt(summary["citation_precision"])),
        ("malformed markers (answers with any)",
         f"{summary['malformed_markers']} ({summary['answers_with_malformed_markers']})"),
        ("first token p50 / p95 (s)", f"{ft['p50']} / {ft['p95']} (n={ft['n']})"),
    ]
    if "stability" in summary:
        rows.append(("stability (same text asked again)", _fmt(summary["stability"])))
    lines = ["| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), "",
             "| kind | n | correct | abstained | leaks | invented | malformed |", "|---|---|---|---|---|---|---|"]
    for kind, k in summary["by_kind"].items():
        lines.append(f"| {kind} | {k['n']} | {k['correct']:.2f} | {k['abstained']:.2f} | {k['leaks']} | "
                     f"{k['invented']} | {k['malformed']} |")
    return "\n".join(lines)


# --- running ------------------------------------------------------------------------------------------------
def data_fingerprint(data: Path, embedder: str) -> str:
    """Names the cached index: every file's path and bytes under data/, and the embedder."""
    digest = hashlib.sha256(embedder.encode())
    for path in sorted(p for p in Path(data).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(data)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def company_home(settings: Any, data: Path = DATA, cache_root: Path | None = None) -> Any:
    """Settings on an index of `data` under the eval cache, ingested if needed (unchanged files are skipped, so
    a settings change that reshapes chunks re-ingests only what it changes).

    The files are ingested from a copy inside the home: documents are known by their path, so ingesting the
    same files from another checkout into the same home would index every document twice."""
    import shutil

    from ingest.pipeline import IngestPipeline

    root = Path(cache_root) if cache_root else settings.home / "eval-cache"
    home = root / f"sample_company-{data_fingerprint(data, settings.embedder)}"
    snapshot = home / "data"
    if not snapshot.is_dir():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copytree(data, home / "data.partial", dirs_exist_ok=True)
        (home / "data.partial").rename(snapshot)  # whole or absent, should a run be killed while copying
    home_settings = settings.model_copy(update={"home": home, "qdrant_url": None, "tables_url": None})
    with IngestPipeline(home_settings, progress=False) as pipeline:
        report = pipeline.run([snapshot])
    if report.failed:
        raise RuntimeError("ingesting data/ failed: " + "; ".join(str(r) for r in report.failed))
    return home_settings


def record_of(row: dict[str, Any], answer: Any, seconds: float) -> dict[str, Any]:
    """What the report keeps of one answer: the question's fields, the answer, its sources and how it was made."""
    return {
        "id": row["_id"], "question": row["question"], "user": row["user"], "kind": row["kind"],
        "expect": row["expect"], "answers": row.get("answers") or [], "match": row.get("match", "all"),
        "file": row.get("file") or "", "forbidden": row.get("forbidden") or [],
        "follow_up_of": row.get("follow_up_of"),
        "text": answer.text, "abstained": bool(answer.abstained), "mode": answer.mode, "notice": answer.notice,
        "rewritten": answer.rewritten_query, "cited": list(answer.cited),
        "sources": [{"number": s.number, "file_name": s.file_name, "location": s.location,
                     "text": f"{s.hit.text}\n{s.excerpt}\n{s.location}"} for s in answer.sources],
        "computation": answer.computation, "conversation_id": answer.conversation_id,
        "timings": {k: round(v, 3) for k, v in answer.timings.items()}, "seconds": round(seconds, 2),
    }


def ask_all(chat: Any, rows: list[dict[str, Any]], users: dict[str, Any], progress: bool = True
            ) -> list[dict[str, Any]]:
    """Every question as its user, each in a new conversation unless it follows up another."""
    conversations: dict[str, str] = {}
    records = []
    for i, row in enumerate(rows, 1):
        parent = row.get("follow_up_of")
        started = time.perf_counter()
        answer = chat.answer(row["question"], users[row["user"]],
                             conversation_id=conversations.get(parent) if parent else None)
        conversations[row["_id"]] = answer.conversation_id
        records.append(record_of(row, answer, time.perf_counter() - started))
        if progress:
            print(f"[{i}/{len(rows)}] {row['_id']}: {'abstained' if answer.abstained else answer.mode} "
                  f"({time.perf_counter() - started:.1f}s)", file=sys.stderr)
    return records


def run(questions: Path = SET, out: Path = DEFAULT_OUT, stability: bool = False, number_guard: bool = True,
        data: Path = DATA, settings: Any = None, progress: bool = True) -> dict[str, Any]:
    """Ask every question, score the answers, write `out`/answers.json, summary.json and summary.md."""
    from app.chat import ChatPipeline
    from erag.settings import get_settings
    from erag.users import UserDirectory

    started = time.perf_counter()
    rows = load_questions(questions)
    directory = UserDirectory.from_file(USERS)
    users = {name: directory.get(name) for name in {r["user"] for r in rows}}
    settings = company_home(settings or get_settings(), data)
    with tempfile.TemporaryDirectory(prefix="company-eval-") as scratch:
        # Conversations of this run only: a fresh chat database, so no earlier run's turns or ratings weigh in.
        run_settings = settings.model_copy(update={"chat_number_guard": number_guard,
                                                   "chat_db_url": f"sqlite:///{scratch}/chat.db"})
        chat = ChatPipeline(run_settings)
        try:
            records = ask_all(chat, rows, users, progress)
            if stability:
                again = ask_all(chat, rows, users, progress)
                for first, second in zip(records, again, strict=True):
                    first["stable"] = first["text"] == second["text"]
                    first["second_text"] = second["text"]
        finally:
            chat.close()
    for record in records:
        record["score"] = score(record)
    summary = summarize(records)
    summary["settings"] = {"embedder": settings.embedder, "llm_model": settings.llm_model,
                           "llm_temperature": settings.llm_temperature, "chat_number_guard": number_guard,
                           "home": str(settings.home)}
    summary["seconds"] = round(time.perf_counter() - started, 1)
    write_report(out, records, summary)
    return summary


def rescore(out: Path) -> dict[str, Any]:
    """Score a report folder's stored answers again (after a change to the scoring, no model needed)."""
    records = json.loads((Path(out) / "answers.json").read_text())
    old = json.loads((Path(out) / "summary.json").read_text())
    for record in records:
        record["score"] = score(record)
    summary = summarize(records)
    summary.update({k: old[k] for k in ("settings", "seconds", "label") if k in old})
    write_report(out, records, summary)
    return summary


def write_report(out: Path, records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "answers.json").write_text(json.dumps(records, indent=1, default=str))
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    s = summary.get("settings", {})
    problems = [line for line in map(_problem_line, records) if line]
    md = [f"# Sample-company answers ({summary['questions']} questions)", "",
          *([summary["label"], ""] if summary.get("label") else []),
          f"Embedder {s.get('embedder')}, model {s.get('llm_model')}, temperature {s.get('llm_temperature')}, "
          f"figure check {'on' if s.get('chat_number_guard') else 'off'}; {summary.get('seconds')} s. "
          "Rates with 95% bootstrap intervals.", "", summary_table(summary), "", "## Answers to look at", "",
          *(problems or ["(none)"])]
    (out / "summary.md").write_text("\n".join(md) + "\n")


def _problem_line(record: dict[str, Any]) -> str:
    """One line for an answer that is wrong, leaks, invents a figure or has a malformed marker; "" otherwise."""
    sc = record["score"]
    issues = [("wrong", not sc["correct"]), (f"leaks {sc['leaked']}", sc["leaked"]),
              (f"invented {sc['invented']}", sc["invented"]), (f"malformed {sc['malformed']}", sc["malformed"])]
    found = [label for label, bad in issues if bad]
    return f"- `{record['id']}` ({record['user']}): {_one_line(record['text'])} — {', '.join(found)}" if found else ""


def _one_line(text: str, limit: int = 160) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat[:limit] + ("..." if len(flat) > limit else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=SET, help="folder with questions.jsonl")
    parser.add_argument("--out", type=Path, default=None, help=f"report folder (default {DEFAULT_OUT})")
    parser.add_argument("--stability", action="store_true", help="ask every question twice, compare the texts")
    parser.add_argument("--no-number-guard", action="store_true", help="switch app/answer_checks.py's figure check off")
    parser.add_argument("--rescore", action="store_true", help="only score the answers stored in --out again")
    args = parser.parse_args(argv)
    out = args.out or DEFAULT_OUT
    if args.rescore:
        summary = rescore(out)
    else:
        summary = run(args.questions, out, args.stability, not args.no_number_guard, progress=True)
    print(summary_table(summary))
    print(f"report: {out}/summary.md, answers.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
