"""Calibrate the chat's abstention gate (app/abstention.py) on dev questions and report it on held-out ones.

Run (heavy: retrieval and the selector's MiniLM over every question, twice for the BEIR sets):
    flock /tmp/erag-heavy.lock .venv/bin/python -m eval.abstention_calibration \
        [--sets tatqa_dev,docugami_sec10q,sample_company] [--limit 400] [--llm] [--out docs/eval/abstention]

Examples, per question, with the product's retrieval and evidence selection (top 5 sources, 320-token budget):
- BEIR sets with reference answers: the question as asked is *answerable* when a gold document is among its
  sources (questions whose gold documents retrieval missed are counted apart: no gate can make them right), and
  the same question with its gold documents hidden (a must_not filter on their doc_id) is *unanswerable*.
- the sample company (eval/sets/sample_company, first questions only): `expect` says which, asked as its user.
Questions are split by a seeded hash of their id into a dev half and a held-out half. A logistic regression
(scikit-learn) over `app.abstention.support_features` is fitted on the dev half; the threshold is the highest
one that keeps false abstention on the dev half's answerable questions at or under `--max-false-abstention`
(the issue's 5%) on every set. The held-out half reports false abstention and abstention-when-hidden per set, with 95%
bootstrap intervals, beside the old rule (best cosine < ERAG_CHAT_MIN_RELEVANCE) on the same questions.
With --llm, the first --llm-limit questions of each BEIR set and every sample-company question are also read
by the packaged LLM with the chat's answer prompt, for one token: the probability it gives to opening with the
no-answer sentinel. The lowest threshold on it (with the gate) that keeps false abstention within the limit on
every set's dev half is reported beside the old rule (cosine, greedy sentinel) on the same questions.
Writes calibration.json (weights, bias, thresholds, per-set rates) and report.md into --out; copy the
weights into app/abstention.py and the probability into ERAG_CHAT_NO_ANSWER_P's default when they change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.abstention import FEATURES, AbstentionGate, source_features
from app.evidence import EvidenceSelector
from app.prompt import NO_ANSWER, answer_messages
from erag.access import UNRESTRICTED
from erag.embedder import Embedder
from erag.settings import Settings, get_settings
from eval.metrics import bootstrap_ci
from index.filters import Filter, Match

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
DEFAULT_OUT = REPO / "docs" / "eval" / "abstention"
DEFAULT_SETS = ("tatqa_dev", "docugami_sec10q", "sample_company")


def heldout(question_id: str) -> bool:
    """Half the questions, by a hash of their id: stable across runs and independent of sampling order."""
    return hashlib.sha256(question_id.encode()).digest()[0] % 2 == 1


class Example:
    """What the chat would decide on for one question: the gate's features and, with an LLM, its no-answer lean."""

    def __init__(self, settings: Settings, selector: EvidenceSelector, generator: Any = None) -> None:
        self.settings = settings
        self.selector = selector
        self.generator = generator

    def __call__(self, retriever: Any, question: str, groups: Any, filters: Filter | None,
                 probe: bool) -> dict[str, Any]:
        s = self.settings
        hits = retriever.run(question, top_k=s.chat_top_k, groups=groups, filters=filters).hits
        sources = self.selector.run(question, hits, s.chat_source_tokens)
        out: dict[str, Any] = {"features": source_features(question, sources),
                               "retrieved": [src.hit.doc_id for src in sources]}
        if probe and self.generator is not None and sources:
            # The chat's own answer prompt, one token: the probability of opening with the no-answer sentinel.
            stats: dict[str, Any] = {}
            for _ in self.generator.stream(answer_messages(question, sources), max_tokens=1, stats=stats,
                                           probe=NO_ANSWER):
                pass
            out["no_answer_p"] = stats.get("probe_p", 0.0)
        return out


def beir_examples(name: str, settings: Settings, example: Example, limit: int, llm_limit: int) -> list[dict[str, Any]]:
    from eval.answer_eval import AnswerEval
    from eval.datasets import EvalDataset
    from eval.indexes import DatasetIndexes
    from retrieval.pipeline import Retriever

    dataset = EvalDataset(SHARED / name)
    indexes = DatasetIndexes(settings, dataset, settings.home / "eval-cache", Embedder.from_settings(settings))
    rows: list[dict[str, Any]] = []
    try:
        built = indexes.build(settings.dense_quantization)
        retriever = Retriever(built.settings, store=built.store, embedder=indexes.embedder)
        qrels = dataset.qrels()
        for i, q in enumerate(AnswerEval(dataset).sample(limit)):
            gold = set(qrels.get(q.id, {}))
            if not gold:
                continue
            gold_docs = dataset.doc_ids_of(gold)
            probe = i < llm_limit
            asked = example(retriever, q.text, UNRESTRICTED, None, probe)
            found = bool(set(asked.pop("retrieved")) & set(gold_docs))
            rows.append({"set": name, "id": q.id, "answerable": True, "gold_found": found, **asked})
            hidden = example(retriever, q.text, UNRESTRICTED, Filter(must_not=[Match("doc_id", gold_docs)]), probe)
            hidden.pop("retrieved")
            rows.append({"set": name, "id": q.id, "answerable": False, "gold_found": False, **hidden})
    finally:
        indexes.close()
    return rows


def company_examples(settings: Settings, example: Example, probe: bool) -> list[dict[str, Any]]:
    from erag.users import UserDirectory
    from eval.company_eval import USERS, company_home, load_questions
    from retrieval.pipeline import Retriever

    home = company_home(settings)
    directory = UserDirectory.from_file(USERS)
    retriever = Retriever(home)
    rows = []
    try:
        for row in load_questions():
            if row.get("follow_up_of"):
                continue  # its standalone form depends on the conversation's rewrite
            asked = example(retriever, row["question"], directory.get(row["user"]).groups, None, probe)
            asked.pop("retrieved")
            rows.append({"set": "sample_company", "id": row["_id"], "answerable": row["expect"] == "answer",
                         "gold_found": row["expect"] == "answer", **asked})
    finally:
        retriever.store.close()
    return rows


def choose_threshold(probabilities: np.ndarray, answerable: np.ndarray, max_false_abstention: float) -> float:
    """The highest threshold whose false abstention on the answerable examples stays within the limit."""
    support = np.sort(probabilities[answerable])
    allowed = int(np.floor(max_false_abstention * len(support)))  # answerable examples we may refuse
    return float(support[allowed]) if len(support) else 0.5


def choose_no_answer_p(rows: Sequence[dict[str, Any]], gate: AbstentionGate, max_false_abstention: float,
                       min_relevance: float) -> float:
    """The lowest no-answer probability threshold whose false abstention (with the gate) stays within the limit
    on every set's dev half; 0.5 (the greedy sentinel) when none below it does."""
    for candidate in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5):
        worst = 0.0
        for name in {r["set"] for r in rows}:
            answerable = [r for r in rows if r["set"] == name and r["answerable"] and r["gold_found"]]
            refused = [r["features"][0] < min_relevance or gate.decide(r["features"]) is not None
                       or r["no_answer_p"] >= candidate for r in answerable]
            worst = max(worst, float(np.mean(refused)) if refused else 0.0)
        if worst <= max_false_abstention:
            return candidate
    return 0.5


def rates(rows: Sequence[dict[str, Any]], abstains: Sequence[bool], seed: int = 13) -> dict[str, Any]:
    """False abstention (answerable, gold found) and abstention (unanswerable), with 95% intervals."""
    out: dict[str, Any] = {}
    for key, pick, want in (("false_abstention", lambda r: r["answerable"] and r["gold_found"], True),
                            ("abstention_when_unanswerable", lambda r: not r["answerable"], True)):
        values = [float(a == want) for r, a in zip(rows, abstains, strict=True) if pick(r)]
        if values:
            low, high = bootstrap_ci(np.array(values), seed=seed)
            out[key] = {"value": round(float(np.mean(values)), 3), "ci": [round(low, 3), round(high, 3)],
                        "n": len(values)}
    return out


def calibrate(rows: list[dict[str, Any]], max_false_abstention: float, min_relevance: float) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    usable = [r for r in rows if not r["answerable"] or r["gold_found"]]
    dev = [r for r in usable if not heldout(r["id"])]
    x = np.array([r["features"] for r in dev])
    y = np.array([r["answerable"] for r in dev])
    # Every (set, answerable) group weighs the same: tatqa_dev brings ten times the sample company's questions,
    # and both errors (answering without support, refusing with it) matter on every set.
    groups: dict[tuple[str, bool], int] = {}
    for r in dev:
        groups[(r["set"], r["answerable"])] = groups.get((r["set"], r["answerable"]), 0) + 1
    weight = np.array([1.0 / groups[(r["set"], r["answerable"])] for r in dev])
    model = LogisticRegression(C=1.0).fit(x, y, sample_weight=weight * len(dev) / weight.sum())
    gate = AbstentionGate(tuple(round(float(w), 3) for w in model.coef_[0]), round(float(model.intercept_[0]), 3))
    # The threshold keeps false abstention within the limit on every set's dev half, not only on the pooled one.
    thresholds = []
    for name in sorted({r["set"] for r in dev}):
        these = [r for r in dev if r["set"] == name]
        # The cosine floor refuses what it refuses whatever the gate says: those count against the limit first,
        # so the gate may add only what the floor leaves of it. A floored answerable question gets support 0.
        probabilities = np.array([0.0 if r["features"][0] < min_relevance else gate.support(r["features"])
                                  for r in these])
        thresholds.append(choose_threshold(probabilities, np.array([r["answerable"] for r in these]),
                                           max_false_abstention))
    gate = AbstentionGate(gate.weights, gate.bias, round(min(thresholds), 3))

    report: dict[str, Any] = {"weights": list(gate.weights), "bias": gate.bias, "threshold": gate.threshold,
                              "features": list(FEATURES), "max_false_abstention": max_false_abstention, "sets": {}}
    probed = [r for r in dev if "no_answer_p" in r]
    no_answer_p = choose_no_answer_p(probed, gate, max_false_abstention, min_relevance) if probed else None
    report["no_answer_p"] = no_answer_p
    for part, keep in (("dev", False), ("heldout", True)):
        part_rows = [r for r in rows if heldout(r["id"]) == keep]
        for name in sorted({r["set"] for r in part_rows}):
            these = [r for r in part_rows if r["set"] == name]
            cosine = [r["features"][0] < min_relevance for r in these]
            gated = [floored or gate.decide(r["features"]) is not None
                     for r, floored in zip(these, cosine, strict=True)]
            missed = sum(1 for r in these if r["answerable"] and not r["gold_found"])
            result = {f"cosine<{min_relevance} or gate (the product)": rates(these, gated),
                      f"cosine<{min_relevance} alone": rates(these, cosine),
                      "answerable_gold_not_retrieved": missed}
            probed_here = [r for r in these if "no_answer_p" in r]
            if probed_here and no_answer_p is not None:
                # Decisions of the whole chat on the questions the LLM read: before (cosine, greedy sentinel) and
                # after (the gate, then the LLM's no-answer probability at the chosen threshold).
                result["before: cosine + sentinel (LLM-read)"] = rates(probed_here, [
                    r["features"][0] < min_relevance or r["no_answer_p"] >= 0.5 for r in probed_here])
                result[f"after: cosine, gate, no-answer p>={no_answer_p} (LLM-read)"] = rates(probed_here, [
                    r["features"][0] < min_relevance or gate.decide(r["features"]) is not None
                    or r["no_answer_p"] >= no_answer_p for r in probed_here])
            report["sets"].setdefault(name, {})[part] = result
    return report


def markdown(report: dict[str, Any]) -> str:
    def cell(r: dict[str, Any], key: str) -> str:
        v = r.get(key)
        return f"{v['value']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}] (n={v['n']})" if v else "-"

    terms = " + ".join(f"{w} x {name}" for w, name in zip(report["weights"], report["features"], strict=True))
    lines = [
        "# Abstention gate calibration", "",
        f"support = sigmoid({terms} {report['bias']:+}); answer when support >= {report['threshold']} (the highest "
        f"threshold with false abstention <= {report['max_false_abstention']:.0%} on every set's dev half)."
        + (f" Then abstain when the LLM's probability of opening with the no-answer sentinel is >= "
           f"{report['no_answer_p']} (chosen the same way on the questions it read)." if report.get("no_answer_p")
           else ""), "",
        "| set | half | rule | false abstention (answerable) | abstention (gold hidden / unanswerable) |",
        "|---|---|---|---|---|",
    ]
    for name, parts in report["sets"].items():
        for part, result in parts.items():
            for rule, values in result.items():
                if isinstance(values, dict):
                    lines.append(f"| {name} | {part} | {rule} | {cell(values, 'false_abstention')} | "
                                 f"{cell(values, 'abstention_when_unanswerable')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS))
    parser.add_argument("--limit", type=int, default=400, help="questions sampled per BEIR set")
    parser.add_argument("--max-false-abstention", type=float, default=0.05)
    parser.add_argument("--llm", action="store_true", help="also read the LLM's no-answer probability (1 token each)")
    parser.add_argument("--llm-limit", type=int, default=40, help="questions per BEIR set the LLM reads")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--rescore", action="store_true", help="fit and report again from --out/examples.json")
    args = parser.parse_args(argv)

    if args.rescore:
        rows = json.loads((args.out / "examples.json").read_text())
        report = calibrate(rows, args.max_false_abstention, get_settings().chat_min_relevance)
        (args.out / "calibration.json").write_text(json.dumps(report, indent=1) + "\n")
        (args.out / "report.md").write_text(markdown(report))
        print(markdown(report))
        return 0

    settings = get_settings()
    generator = None
    if args.llm:
        from app.llm import LlamaGenerator

        generator = LlamaGenerator.from_settings(settings)
    example = Example(settings, EvidenceSelector.from_settings(settings), generator)
    rows: list[dict[str, Any]] = []
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        found = company_examples(settings, example, args.llm) if name == "sample_company" else \
            beir_examples(name, settings, example, args.limit, args.llm_limit if args.llm else 0)
        print(f"{name}: {len(found)} examples", file=sys.stderr)
        rows.extend(found)
    report = calibrate(rows, args.max_false_abstention, settings.chat_min_relevance)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calibration.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "examples.json").write_text(json.dumps(
        [{k: r[k] for k in ("set", "id", "answerable", "gold_found", "features", "no_answer_p") if k in r}
         for r in rows], indent=0) + "\n")
    (args.out / "report.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
