"""Retrieval quality on a BEIR dataset: P@5, R@5, MRR@10 and nDCG@10 for each retriever, with ranx.

Example:
    >>> result = RetrievalEval(settings).run(BeirDataset(path), retrievers=["bm25", "dense", "hybrid"])
    >>> result.table()

The corpus goes through the product's own ingestion (chunking, embedding, quantized index) into a
collection of its own, cached across runs. Documents split into several chunks are scored by their
best chunk.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ranx import Qrels, Run, evaluate
from tqdm import tqdm

from erag.settings import Settings
from eval.beir import BeirDataset
from ingest.embedder import Embedder
from ingest.pipeline import IngestPipeline
from retrieval.searcher import HybridSearcher

METRICS = ["precision@5", "recall@5", "mrr@10", "ndcg@10"]
LABELS = {"precision@5": "p@5", "recall@5": "r@5", "mrr@10": "mrr@10", "ndcg@10": "ndcg@10"}


@dataclass
class EvalResult:
    dataset: str
    split: str
    queries: int
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    def table(self) -> str:
        head = "| config | " + " | ".join(LABELS.values()) + " | p50 ms | p95 ms |"
        lines = [head, "|" + "---|" * (len(LABELS) + 3)]
        for name, scores in self.scores.items():
            lat = self.latency_ms[name]
            cells = " | ".join(f"{scores[m]:.3f}" for m in METRICS)
            lines.append(f"| {name} | {cells} | {lat['p50']:.0f} | {lat['p95']:.0f} |")
        return "\n".join(lines)


class RetrievalEval:
    """Ingest a BEIR corpus into its own cached collection and score retrieval configurations."""

    def __init__(self, settings: Settings, depth: int = 50) -> None:
        self.settings = settings
        self.depth = depth

    def collection_settings(self, dataset: BeirDataset) -> Settings:
        slug = re.sub(r"[^a-z0-9]+", "-", f"eval-{dataset.name}-{self.settings.embedder}".lower()).strip("-")
        return self.settings.model_copy(update={"collection": slug})

    def run(
        self, dataset: BeirDataset, retrievers: list[str], modes: list[str] | None = None, own_index: bool = True
    ) -> EvalResult:
        """Score each retriever (and dense mode). With `own_index=False` the configured index is searched
        as it is, e.g. after `erag ingest DATASET_DIR`."""
        settings = self.collection_settings(dataset) if own_index else self.settings
        embedder = Embedder.from_settings(settings)
        with IngestPipeline(settings, embedder=embedder, progress=True) as pipeline:
            if own_index:
                report = pipeline.ingest_documents(dataset.documents())
                t = report.timings
                print(f"index {settings.collection}: {report.counts()} (embed {t['embed']:.0f}s)")
            searcher = HybridSearcher(settings, store=pipeline.store, embedder=embedder)
            queries = dataset.queries()
            qrels = Qrels(dataset.qrels())
            result = EvalResult(dataset.name, dataset.split, len(queries))
            configs = [(r, m) for r in retrievers for m in (modes or [None])]
            for retriever, mode in configs:
                name = retriever if mode is None or retriever == "bm25" else f"{retriever}/{mode}"
                if name in result.scores:
                    continue
                run, latencies = {}, []
                for qid, text in tqdm(queries.items(), desc=name, unit="q", leave=False):
                    started = time.perf_counter()
                    hits = searcher.run(text, top_k=self.depth, retriever=retriever, mode=mode)
                    latencies.append((time.perf_counter() - started) * 1000)
                    ranked: dict[str, float] = {}
                    for rank, hit in enumerate(hits):  # best chunk per document
                        ranked.setdefault(hit.doc_id, float(self.depth - rank))
                    run[qid] = ranked or {"__none__": 0.0}
                scores = evaluate(qrels, Run(run), METRICS, make_comparable=True)
                result.scores[name] = {m: float(scores[m]) for m in METRICS}
                result.latency_ms[name] = {
                    "p50": float(np.percentile(latencies, 50)),
                    "p95": float(np.percentile(latencies, 95)),
                }
        return result


def main() -> None:
    import argparse

    from erag.settings import get_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split")
    parser.add_argument("--retrievers", default="bm25,dense,hybrid")
    parser.add_argument("--modes", default="", help="comma-separated dense modes, e.g. float32,binary_rescore")
    parser.add_argument(
        "--use-index", action="store_true", help="search the configured index (after `erag ingest DATASET`)"
    )
    args = parser.parse_args()
    result = RetrievalEval(get_settings()).run(
        BeirDataset(args.dataset, args.split),
        args.retrievers.split(","),
        [m for m in args.modes.split(",") if m] or None,
        own_index=not args.use_index,
    )
    print(f"\n{result.dataset} ({result.split}, {result.queries} queries)\n{result.table()}")


if __name__ == "__main__":
    main()
