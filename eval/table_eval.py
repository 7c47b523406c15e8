"""Table questions scored as their datasets score them: the SQL path alone, and the chat end to end, side by side.

Example:
    python -m eval.table_eval ../shared/datasets/wtq_dev --limit 200                  # every mode
    python -m eval.table_eval ../shared/datasets/wtq_dev --modes gold --limit 50      # the SQL path with the gold table
    python -m eval.table_eval ../shared/datasets/tatqa_dev --modes text,table --limit 100

Modes, on the same seeded sample of questions:
- `gold`: the table path alone (`app.table_qa.TableAnswerer.compute`) given the question's gold table, as if
  retrieval were perfect; the result's values are scored with WikiTableQuestions' official denotation check
  (`eval.answer_match.wtq_denotation`: numbers as numbers, dates as dates, lists order-insensitive).
- `text`: the chat pipeline end to end with table answers switched off: retrieval, evidence, the LLM's answer.
- `table`: the chat pipeline end to end with table answers on (the product default).
- `choice`: no model: whether the first table the table path would query (`TableAnswerer.ordered`, over the
  chat's sources) is the gold table, and whether the gold table is among its candidates at all.
- `rules`: no model: the fixed rules alone (`TableAnswerer.by_rule`: one row compared or added up between years,
  the period a row peaks in or passes a threshold, two rows of one year) given the gold table; `fired` says
  whether a rule answered, `correct` whether it was right (a question no rule answers counts as wrong). Fast
  enough for every question of a set. In `gold` mode `fired` says whether a rule, not the model, wrote the query.
End-to-end answers are sentences, so they are scored by whether every gold value occurs in them
(`wtq_contains`); TAT-QA answers also get SQuAD exact match and token F1 and TAT-QA's scale-aware number match,
reported per answer type (arithmetic separately). The report folder holds every answer, SQL and error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.evidence import Source
from erag.schema import Hit
from erag.settings import Settings, get_settings
from erag.users import User
from eval.answer_eval import EVAL_GROUPS, exact_match, token_f1, without_markers
from eval.answer_match import tatqa_numbers_match, wtq_contains, wtq_denotation
from eval.datasets import EvalDataset, Question
from eval.embedding_cache import model_key
from eval.indexes import DatasetIndexes, slug
from eval.metrics import bootstrap_ci

MODES = ("gold", "text", "table", "choice", "rules")


def gold_table(dataset: EvalDataset, question_id: str) -> str | None:
    """The id of the question's gold table (a document id of the dataset's table files), if it has one."""
    tables = {p.stem for p in dataset.table_paths()}
    gold = [doc for doc in dataset.qrels().get(question_id, {}) if doc in tables]
    return gold[0] if gold else None


def sample(dataset: EvalDataset, limit: int | None, seed: int) -> list[Question]:
    questions = list(dataset.questions().values())
    if limit is not None and len(questions) > limit:
        picked = np.random.default_rng(seed).choice(len(questions), size=limit, replace=False)
        questions = [questions[i] for i in sorted(picked)]
    return questions


def _question_rows(dataset: EvalDataset) -> dict[str, dict[str, Any]]:
    path = dataset.root / "questions.jsonl"
    with path.open(encoding="utf-8") as fh:
        return {str(row["_id"]): row for row in map(json.loads, fh) if row.get("_id")}


class TableEval:
    """Run the chosen modes over a seeded sample and summarise them (accuracy with 95% intervals, latency)."""

    def __init__(self, settings: Settings, dataset: EvalDataset, cache_root: Path | None = None, seed: int = 13,
                 progress: bool = True) -> None:
        self.settings = settings
        self.dataset = dataset
        self.cache_root = cache_root or settings.home / "eval-cache"
        self.seed = seed
        self.progress = progress

    def run(self, modes: list[str], limit: int | None) -> dict[str, Any]:
        from app.chat import ChatPipeline
        from erag.embedder import Embedder
        from retrieval.pipeline import Retriever

        unknown = sorted(set(modes) - set(MODES))
        if unknown:
            raise ValueError(f"unknown mode(s) {unknown} (choose from {', '.join(MODES)})")
        questions = sample(self.dataset, limit, self.seed)
        rows = _question_rows(self.dataset)
        embedder = Embedder.from_settings(self.settings)
        indexes = DatasetIndexes(self.settings, self.dataset, self.cache_root, embedder, progress=self.progress)
        built = indexes.build("binary")
        results: dict[str, list[dict[str, Any]]] = {}
        try:
            retriever = Retriever(built.settings, store=built.store, embedder=indexes.embedder)
            chat = ChatPipeline(built.settings, retriever=retriever)
            try:
                for mode in modes:
                    results[mode] = [self._one(mode, chat, q, rows.get(q.id, {})) for q in self._bar(questions, mode)]
            finally:
                chat.close()
        finally:
            indexes.close()
        return {"dataset": self.dataset.name, "split": self.dataset.split, "questions": len(questions),
                "seed": self.seed, "embedder": model_key(embedder),
                "summary": {mode: self._summary(rows_) for mode, rows_ in results.items()}, "answers": results}

    def _bar(self, questions: list[Question], mode: str):
        from tqdm import tqdm

        return tqdm(questions, desc=mode, unit="q", disable=not self.progress, leave=False)

    def _one(self, mode: str, chat: Any, question: Question, row: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        out: dict[str, Any] = {"id": question.id, "question": question.text, "gold": question.answers,
                               "answer_type": question.answer_type, "scale": row.get("scale", "")}
        if mode in ("gold", "rules"):
            out.update(self._gold(chat, question, row, rules_only=mode == "rules"))
        elif mode == "choice":
            out.update(self._choice(chat, question))
        else:
            chat.table_answerer = chat.table_answerer if mode == "table" else None
            answer = self._answer(chat, question, mode)
            out.update(answer=answer.text, mode=answer.mode, abstained=answer.abstained,
                       sql=(answer.computation or {}).get("sql", ""),
                       rewrites=(answer.computation or {}).get("rewrites", []),
                       first_token_s=answer.timings.get("first_token_s"),
                       correct=wtq_contains(answer.text, self._values(question, row)) and not answer.abstained)
            if self.dataset.name.startswith("tatqa"):
                short = without_markers(answer.text) if not answer.abstained else ""
                out.update(exact_match=exact_match(short, question.references()),
                           token_f1=token_f1(short, question.references()),
                           number_match=tatqa_numbers_match(short, question.answers, row.get("scale", "")))
        out["seconds"] = time.perf_counter() - started
        return out

    def _answer(self, chat: Any, question: Question, mode: str):
        from app.table_qa import TableAnswerer

        if mode == "table" and chat.table_answerer is None and chat.tables is not None:
            chat.table_answerer = TableAnswerer(chat.tables, chat.generator)
        return chat.answer(question.text, User("eval", "Evaluation", groups=EVAL_GROUPS))

    @staticmethod
    def _values(question: Question, row: dict[str, Any]) -> list[str]:
        """The gold values one by one (a multi-span answer needs all of them)."""
        answer = row.get("answer", question.answers)
        return [str(a) for a in answer] if isinstance(answer, list) else [str(answer)]

    def _choice(self, chat: Any, question: Question) -> dict[str, Any]:
        from app.table_qa import TableAnswerer

        table_id = gold_table(self.dataset, question.id)
        if table_id is None or chat.tables is None:
            return {"correct": False, "error": "no gold table or table store"}
        hits = chat.retriever.run(question.text, top_k=chat.settings.chat_top_k, groups=EVAL_GROUPS).hits
        answerer = TableAnswerer(chat.tables, generator=None)
        candidates = answerer.candidates(chat.selector.prepare(hits), EVAL_GROUPS)
        ordered = answerer.ordered(question.text, candidates)
        return {"first_table": ordered[0][1].doc_id if ordered else None,
                "correct": bool(ordered) and ordered[0][1].doc_id == table_id,
                "gold_among": any(info.doc_id == table_id for _, info in candidates)}

    def _gold(self, chat: Any, question: Question, row: dict[str, Any], rules_only: bool = False) -> dict[str, Any]:
        table_id = gold_table(self.dataset, question.id)
        if table_id is None or chat.tables is None or (chat.generator is None and not rules_only):
            return {"correct": False, "error": "no gold table, table store or model"}
        from app.table_qa import TableAnswerer

        answerer = TableAnswerer(chat.tables, None if rules_only else chat.generator)
        infos = chat.tables.catalog(EVAL_GROUPS, doc_ids=[table_id])
        if not infos:
            return {"correct": False, "error": f"gold table {table_id} is not in the table store"}
        hit = Hit(id=table_id, score=1.0, payload={"doc_id": table_id, "version": infos[0].version, "kind": "table",
                                                   "file_name": infos[0].file_name})
        source = Source(1, hit, "", [])
        pairs = [(source, info) for info in infos[:1]]
        computation = answerer.by_rule(question.text, pairs) if rules_only else answerer.compute(question.text, pairs)
        if computation is None:
            return {"fired": False, "correct": False}
        predicted: list[str] = []
        if computation.result is not None:
            # As the chat states them: a percentage column's values carry their "%" (15.5% is not 15.5).
            percent = "%" if computation.ok and computation.result_unit() == "%" else ""
            predicted = [f"{v}{percent}" for r in computation.result.rows for v in r[:1] if v is not None]
        values = self._values(question, row)
        if self.dataset.name.startswith("tatqa"):  # TAT-QA's arithmetic answers are rounded: its own number match
            right = bool(predicted) and tatqa_numbers_match(" ".join(predicted), values, row.get("scale", ""))
        else:
            right = bool(predicted) and wtq_denotation(values, predicted)
        return {"sql": computation.sql, "rewrites": computation.rewrites, "error": computation.error,
                "attempts": computation.attempts,
                "predicted": predicted[:20], "correct": right, "fired": computation.by_rule,
                "first_token_s": computation.timings.get("sql_s")}

    def _summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        def stat(key: str, subset: list[dict[str, Any]]) -> dict[str, Any]:
            values = [float(r[key]) for r in subset if r.get(key) is not None]
            if not values:
                return {"mean": None, "n": 0}
            low, high = bootstrap_ci(values, self.seed)
            return {"mean": float(np.mean(values)), "ci95": [low, high], "n": len(values)}

        summary: dict[str, Any] = {"accuracy": stat("correct", rows)}
        for key in ("exact_match", "token_f1", "number_match", "abstained", "gold_among", "fired"):
            if any(key in r for r in rows):
                summary[key] = stat(key, rows)
        by_type: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_type.setdefault(r.get("answer_type") or "-", []).append(r)
        if len(by_type) > 1:
            summary["by_type"] = {t: {k: stat(k, sub)["mean"] for k in ("correct", "token_f1", "number_match", "fired")
                                      if any(k in r for r in sub)} | {"n": len(sub)} for t, sub in by_type.items()}
        latency = [r["first_token_s"] for r in rows if r.get("first_token_s") is not None]
        if latency:
            summary["first_token_s"] = {"p50": float(np.percentile(latency, 50)),
                                        "p95": float(np.percentile(latency, 95))}
        summary["errors"] = sum(1 for r in rows if r.get("error"))
        return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--modes", default=",".join(m for m in MODES if m != "rules"),
                        help="comma-separated: gold, text, table, choice, rules")
    parser.add_argument("--limit", type=int, default=200, help="questions sampled (seeded)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=None, help="report folder (default eval/reports/<dataset>-tables)")
    args = parser.parse_args(argv)
    settings = get_settings()
    dataset = EvalDataset(args.dataset)
    report = TableEval(settings, dataset, seed=args.seed, progress=sys.stderr.isatty()).run(
        [m.strip() for m in args.modes.split(",") if m.strip()], args.limit)
    out = args.out or Path("eval/reports") / f"{slug(dataset.name)}-tables"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps({"dataset": report["dataset"], "questions": report["questions"], "summary": report["summary"]},
                     indent=1, default=str))
    print(f"report: {out}/results.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
