"""nDCG@10 of hybrid search reranked with several weights of the first-pass rank, from one scoring pass.

Run: `.venv/bin/python -m eval.rerank_sweep ../shared/datasets/docugami_sec10q --reranker models/reranker
[--weights 0,0.5,1,2] [--fusions rank,score] [--heldout] [--save scores.json] [--top-n 20]`

`erag eval --config hybrid-rerank` measures one `ERAG_RERANK_FUSED_WEIGHT` per run and scores every pair
again; choosing the weight needs the same cross-encoder scores ranked several ways, so this scores each
query's top candidates once and ranks them with every weight (`Reranker.run` on the stored scores).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from erag.schema import Hit
from erag.settings import get_settings
from eval.answer_eval import EVAL_GROUPS
from eval.configs import CONFIGS
from eval.datasets import EvalDataset
from eval.indexes import DatasetIndexes
from eval.run import EvalRun, break_ties
from retrieval.pipeline import Retriever
from retrieval.reranker import Reranker


class _Stored:
    """Hands `Reranker.run` the scores computed once for this query's candidates."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def predict(self, pairs, **_ignored) -> np.ndarray:
        return self.scores[: len(pairs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--reranker", help="CrossEncoder name or path (not needed with --load)")
    parser.add_argument("--weights", default="0,0.5,1,2,4")
    parser.add_argument("--fusions", default="rank,score", help="ERAG_RERANK_FUSION values to compare")
    parser.add_argument("--split", default=None)
    parser.add_argument("--heldout", action="store_true", help="only the questions reranker training held out")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--top-n", type=int, default=None,
                        help="rerank only each query's first N candidates (default: all that were scored)")
    parser.add_argument("--save", type=Path, default=None,
                        help="write each query's candidates, first-pass scores and cross-encoder scores (JSON)")
    parser.add_argument("--load", type=Path, default=None,
                        help="rank the candidates and scores a --save run wrote instead of searching and scoring")
    args = parser.parse_args()

    settings = get_settings()
    dataset = EvalDataset(args.dataset, args.split, settings.max_file_mb)
    runner = EvalRun(settings, progress=False)
    only = None
    if args.heldout:
        from retrieval.reranker_data import heldout_query_ids

        only = heldout_query_ids(args.dataset)
    queries = runner.sample_queries(dataset, args.limit, only)
    qrels = {qid: gold for qid, gold in dataset.qrels().items() if qid in queries}
    if args.load:
        first, scored = _load(args.load, queries)
    elif args.reranker:
        first, scored = _search_and_score(args, settings, dataset, runner, queries)
    else:
        parser.error("give --reranker (to score) or --load (scores a --save run wrote)")
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps({qid: {"ids": [h.id for h in hits], "doc_ids": [h.doc_id for h in hits],
                                               "first": [h.score for h in hits], "rerank": scored[qid].tolist()}
                                         for qid, hits in first.items()}))
    _, _, base = runner._score(dataset, CONFIGS["hybrid"], {q: [h.doc_id for h in break_ties(first[q])]
                                                           for q in first}, qrels)
    print(f"\n{dataset.name} ({len(queries)} queries): hybrid nDCG@10 {base['ndcg@10']['mean']:.3f}")
    print("| fusion | first-pass weight | nDCG@10 | 95% CI | Δ vs hybrid |\n|---|---|---|---|---|")
    # Every query's scored head, also where a query found fewer candidates than the others; a smaller
    # --top-n reads what a shorter ERAG_RERANK_TOP_N would rank without scoring the pairs again.
    top_n = args.top_n or max((len(s) for s in scored.values()), default=settings.rerank_top_n)
    fusions = args.fusions.split(",")
    for fusion in fusions:
        for weight in [float(w) for w in args.weights.split(",")]:
            if weight == 0 and fusion != fusions[0]:
                continue  # weight 0 is the cross-encoder alone, whatever the fusion
            ranked = {}
            for qid, hits in first.items():
                stored = Reranker(_Stored(scored[qid]), top_n, settings.rerank_batch_size, weight, settings.rrf_k,
                                  fusion)
                ranked[qid] = [h.doc_id for h in break_ties(stored.run(queries[qid], hits))]
            _, _, summary = runner._score(dataset, CONFIGS["hybrid-rerank"], ranked, qrels)
            mean, (low, high) = summary["ndcg@10"]["mean"], summary["ndcg@10"]["ci95"]
            print(f"| {fusion if weight else '-'} | {weight:g} | {mean:.3f} | {low:.3f}-{high:.3f} | "
                  f"{mean - base['ndcg@10']['mean']:+.3f} |")


def _search_and_score(args, settings, dataset, runner, queries):
    """Each query's first-pass candidates and the cross-encoder's scores of its top ones (the costly part)."""
    from erag.embedder import Embedder

    reranker = Reranker.from_name(args.reranker, settings.model_cache, settings.rerank_top_n,
                                  settings.rerank_batch_size, settings.torch_threads, settings.rerank_max_tokens,
                                  settings.rerank_precision, k=settings.rrf_k)
    embedder = Embedder.from_settings(settings)
    indexes = DatasetIndexes(settings, dataset, runner.cache_root, embedder, progress=True)
    first: dict[str, list[Hit]] = {}
    scored: dict[str, np.ndarray] = {}
    try:
        built = indexes.build("binary")
        retriever = Retriever(built.settings.model_copy(update={"query_filters": "off", "reranker": None}),
                              store=built.store, embedder=embedder)
        for qid in tqdm(sorted(queries), desc="score", unit="q"):
            hits = retriever.run(queries[qid], top_k=runner.depth, groups=EVAL_GROUPS).hits
            first[qid] = hits
            head = hits[: reranker.top_n]
            scored[qid] = np.asarray(reranker.model.predict([(queries[qid], h.text) for h in head],
                                                            batch_size=reranker.batch_size), dtype=np.float32)
    finally:
        indexes.close()
    return first, scored


def _load(path: Path, queries: dict[str, str]) -> tuple[dict[str, list[Hit]], dict[str, np.ndarray]]:
    """Candidates and scores of a --save run, for the queries asked (files without chunk ids number them)."""
    saved = json.loads(Path(path).read_text())
    first, scored = {}, {}
    for qid in sorted(set(saved) & set(queries)):
        row = saved[qid]
        ids = row.get("ids") or [f"{doc}#{i}" for i, doc in enumerate(row["doc_ids"])]
        first[qid] = [Hit(id=i, score=s, payload={"doc_id": d}) for i, d, s in zip(ids, row["doc_ids"], row["first"],
                                                                                  strict=True)]
        scored[qid] = np.asarray(row["rerank"], dtype=np.float32)
    return first, scored


if __name__ == "__main__":
    main()
