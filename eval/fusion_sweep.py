"""Query-aware RRF weights (issue 20): does a per-query dense:BM25 weight beat the fixed 1:1 fusion?

Run (the collect step embeds queries, so it waits its turn on the shared lock; the sweep reads only JSON):
    flock /tmp/erag-heavy.lock .venv/bin/python -m eval.fusion_sweep collect ../shared/datasets/tatqa_dev
    flock /tmp/erag-heavy.lock .venv/bin/python -m eval.fusion_sweep collect ../shared/datasets/scifact --split train
    .venv/bin/python -m eval.fusion_sweep sweep /tmp/fusion/{tatqa_dev,docugami_sec10q,scifact}.json \
        --check /tmp/fusion/wtq_dev.json --out docs/eval/fusion

`collect` searches every judged query once through the product's own path (`Retriever.run` on the dataset's
cached eval collection, the query embedded once and handed to each search) and stores the dense ranking
(binary codes rescored, as the product searches), the BM25 ranking and, for checking the simulation, the
engine's own fused rankings at a few weights. `sweep` fuses the stored lists under many weight policies as the
engine's weighted RRF does (`engine_order`: at 1:1 the product's `reciprocal_rank_fusion` exactly, at other
weights not; `--fusion product` uses that function instead), scores documents as `erag eval` does (best chunk
of the top 30 fused chunks, ranx nDCG@10), chooses each policy family's best on a seeded half of every set's
queries and reports it on the other half, with bootstrap intervals and paired randomization tests against 1:1.
Sets given with `--check` take no part in choosing and are reported whole (a corpus the policy never saw).
`embedders A.json B.json` fuses one set's rankings collected under two embedders (two dense lists and BM25), to
see whether a second model's dense list adds what the first and BM25 miss (docs/eval/fusion/two-embedders/).
`convex A.json B.json ... --choose-on N` scores the product's convex fusion (min-max scores summed) across dense
weights, with another weight where the BM25-gap rule fires, each half apart (docs/eval/fusion/convex/).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from erag.schema import Hit
from erag.settings import EMBEDDER_FUSION, Settings, get_settings
from eval.answer_eval import EVAL_GROUPS
from eval.datasets import EvalDataset
from eval.indexes import DatasetIndexes
from eval.metrics import bootstrap_ci, paired_test, per_query, rank_units
from eval.run import DEPTH, SEED, EvalRun, break_ties
from retrieval.searcher import bm25_leads, clean_query, convex_fusion, fusion_weights, reciprocal_rank_fusion

CACHE_DIR = Path("/tmp/fusion")
LIST_DEPTH = 100  # each retriever's ranking as stored: deeper than the product's 50 candidates, for features
ENGINE_WEIGHTS = ((1.0, 1.0), (0.5, 1.0), (0.25, 1.0), (1.0, 0.5))  # engine fusions kept to check the simulation
WARMUP = 3


# --- collect -----------------------------------------------------------------------------------------------
class _StoredVector:
    """An embedder that answers with the vector computed once for this query: each of the searches below would
    otherwise embed the same text again, and embedding is what costs time on a shared CPU."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.vectors: dict[str, np.ndarray] = {}

    def embed(self, text: str) -> np.ndarray:
        # The text the searcher embeds (whitespace collapsed), one query at a time as the product embeds it:
        # a batch pads, which can move the int8 vector a little.
        cleaned = clean_query(text)
        self.vectors = {cleaned: self.embedder.run_queries([cleaned])[0]}
        return self.vectors[cleaned]

    def run_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts])

    run = run_queries  # the searcher looks `run` up as the fallback even when `run_queries` exists


def _rows(hits: list[Hit], chunks: dict[str, str], places: dict[str, list[Any]] | None = None) -> list[list[Any]]:
    """[chunk id, score] rows in the product's order (ties by point id, as `erag eval` reads them); the chunk's
    document goes to the shared `chunks` table instead of being repeated in every row, and its (document, chunk
    index) to `places`: point ids hash the version, which hashes the embedder, so two embedders' collections name
    the same chunk differently and only its place in the document joins their rankings."""
    rows = []
    for hit in break_ties(hits):
        chunks[hit.id] = hit.doc_id
        if places is not None:
            places[hit.id] = [hit.doc_id, hit.payload.get("chunk_index")]
        rows.append([hit.id, round(float(hit.score), 7)])
    return rows


def collect(dataset_dir: Path, split: str | None, out: Path, settings: Settings | None = None,
            limit: int | None = None) -> Path:
    """Search every judged query of the set (the first `limit` for a smoke test) once per retriever and write
    the rankings to `out` (JSON)."""
    from erag.embedder import Embedder
    from retrieval.pipeline import Retriever
    from retrieval.searcher import QueryError

    settings = settings or get_settings()
    dataset = EvalDataset(dataset_dir, split, settings.max_file_mb)
    runner = EvalRun(settings, progress=False)
    queries = dataset.queries()
    embedder = Embedder.from_settings(settings)
    vectors = _StoredVector(embedder)
    indexes = DatasetIndexes(settings, dataset, runner.cache_root, embedder, progress=True)
    chunks: dict[str, str] = {}
    places: dict[str, list[Any]] = {}
    rows: dict[str, dict[str, Any]] = {}
    try:
        built = indexes.build("binary")
        base = built.settings.model_copy(update={"query_filters": "off", "rerank": False})
        product = Retriever(base, store=built.store, embedder=vectors)  # type: ignore[arg-type]
        # One retriever per engine weight, all on the same open shard (it admits one process, not one client).
        engines = {w: Retriever(base.model_copy(update={"rrf_weights": w}), store=built.store,
                                embedder=vectors)  # type: ignore[arg-type]
                   for w in ENGINE_WEIGHTS}
        ids = sorted(queries)[:limit]
        for qid in ids[:WARMUP]:  # the first searches load the model and fill caches: not what a query costs
            vectors.embed(queries[qid])
            product.run(queries[qid], top_k=DEPTH, groups=EVAL_GROUPS)
        for n, qid in enumerate(ids, 1):
            text = queries[qid]
            row: dict[str, Any] = {"text": text, "ms": {}, "engine": {}}
            try:
                t0 = time.perf_counter()
                vectors.embed(text)
                t1 = time.perf_counter()
                dense = product.run(text, top_k=LIST_DEPTH, groups=EVAL_GROUPS, retriever="dense").hits
                t2 = time.perf_counter()
                bm25 = product.run(text, top_k=LIST_DEPTH, groups=EVAL_GROUPS, retriever="bm25").hits
                t3 = time.perf_counter()
                # The product's own candidate list: 50 dense neighbours, whose rescoring pool (3x the limit)
                # differs from the 100-deep list's, so it is searched at that limit rather than cut from it.
                dense50 = product.run(text, top_k=settings.dense_candidates, groups=EVAL_GROUPS,
                                      retriever="dense").hits
                t4 = time.perf_counter()
                for weights, engine in engines.items():
                    hits = engine.run(text, top_k=DEPTH, groups=EVAL_GROUPS).hits
                    row["engine"][_weight_key(weights)] = _rows(hits, chunks)
                t5 = time.perf_counter()
            except QueryError:  # a query the product refuses: `erag eval` scores it as finding nothing
                row.update(dense=[], dense50=[], bm25=[], error=True)
                rows[qid] = row
                continue
            row.update(dense=_rows(dense, chunks, places), bm25=_rows(bm25, chunks, places),
                       dense50=_rows(dense50, chunks, places))
            row["ms"] = {"embed": (t1 - t0) * 1e3, "dense": (t2 - t1) * 1e3, "bm25": (t3 - t2) * 1e3,
                         "dense50": (t4 - t3) * 1e3, "hybrid": (t5 - t4) * 1e3 / len(engines)}
            rows[qid] = row
            if n % 200 == 0:
                print(f"{dataset.name}: {n}/{len(ids)} queries", flush=True)
    finally:
        indexes.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"dataset": dataset.name, "split": dataset.split, "root": str(dataset_dir),
               "settings": {"embedder": settings.embedder, "embed_precision": settings.embed_precision,
                            "search_mode": settings.search_mode, "oversampling": settings.oversampling,
                            "rrf_k": settings.rrf_k, "dense_candidates": settings.dense_candidates,
                            "sparse_candidates": settings.sparse_candidates, "depth": DEPTH},
               "chunks": chunks, "places": places, "queries": rows}
    out.write_text(json.dumps(payload))
    return out


def _weight_key(weights: tuple[float, float]) -> str:
    return f"{weights[0]:g}:{weights[1]:g}"



# --- simulate ----------------------------------------------------------------------------------------------
def _family() -> list[tuple[float, float]]:
    """The (dense, BM25) weight pairs a per-query policy chooses from: one weight at 1, the other stepped by
    2^(1/4) down to 2^-5, plus each retriever alone. Log-spaced because halving either side is the same size of
    move; the larger weight stays 1 because the engine's weighted RRF is not scale-free (see `engine_order`)."""
    steps = [2.0 ** (-e / 4) for e in range(20, 0, -1)]  # 2^-5 ... 2^-0.25
    return [(0.0, 1.0), *[(s, 1.0) for s in steps], (1.0, 1.0), *[(1.0, s) for s in reversed(steps[8:])], (1.0, 0.0)]


FAMILY = _family()
# Fixed pairs beyond the family: both weights above or below 1 act as a different k (see `engine_order`).
GRID = [(d, b) for d in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0) for b in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0) if d or b]
WEIGHTS = FAMILY + [w for w in GRID if w not in FAMILY]
BASE = WEIGHTS.index((1.0, 1.0))
SPLIT_SEED = SEED


def engine_order(dense: Sequence[str], bm25: Sequence[str], weights: tuple[float, float], k: int) -> list[str]:
    """Chunk ids as the engine's weighted RRF orders them, ties by point id as `erag eval` reads them.

    Qdrant scores position p (0-based) of a list with weight w as 1 / ((p + 1) / w + k - 1), in float32, and
    gives 0 to every point of a list weighted 0 (lib/segment/src/common/reciprocal_rank_fusion.rs). A weight
    stretches the ranks rather than scaling the contribution: at w = 1 this is the product's
    `reciprocal_rank_fusion` exactly, at any other weight it is not (that function gives w / (k + p)), and
    (2, 2) is not (1, 1) but 1:1 with k = 2k - 1. HybridQuery(rrf_weights=...) is fused by the engine in every
    search mode but binary_f8, so this is what a per-query weight would do in the product."""
    ids = sorted(set(dense) | set(bm25))
    where = {c: i for i, c in enumerate(ids)}
    score = np.zeros(len(ids), dtype=np.float32)
    for ranking, w in ((dense, weights[0]), (bm25, weights[1])):
        if w <= 0 or not ranking:
            continue
        pos = np.arange(len(ranking), dtype=np.float32)
        part = np.float32(1.0) / ((pos + np.float32(1.0)) / np.float32(w) + np.float32(k) - np.float32(1.0))
        score[[where[c] for c in ranking]] += part.astype(np.float32)
    order = np.lexsort((np.arange(len(ids)), -score))  # score first, then point id (ids are sorted)
    return [ids[i] for i in order]


@dataclass
class SetRuns:
    """One dataset's stored rankings, gold and the per-query nDCG@10 of every weight pair in WEIGHTS."""

    name: str
    split: str
    qids: list[str]
    rows: dict[str, dict[str, Any]]
    chunks: dict[str, str]
    qrels: dict[str, dict[str, int]]
    unit: Callable[[str], str]
    rrf_k: int
    dense_candidates: int
    sparse_candidates: int
    ndcg: np.ndarray | None = None  # queries x WEIGHTS
    dev: np.ndarray | None = None  # True where the query is in the half policies are chosen on
    embedder: str = "all-mpnet-base-v2"
    places: dict[str, list[Any]] | None = None  # chunk id -> [document, chunk index], when `collect` stored them

    def candidates(self, qid: str) -> tuple[list[str], list[str]]:
        """The product's candidates: 50 dense neighbours (searched at that limit) and BM25's first 50."""
        row = self.rows[qid]
        return ([c for c, _ in row["dense50"][: self.dense_candidates]],
                [c for c, _ in row["bm25"][: self.sparse_candidates]])

    def fused(self, qid: str, weights: tuple[float, float]) -> list[str]:
        """Document ids of the top DEPTH chunks the engine's fusion would return, ties by point id."""
        dense, bm25 = self.candidates(qid)
        return [self.chunks[c] for c in engine_order(dense, bm25, weights, self.rrf_k)[:DEPTH]]

    def fused_product(self, qid: str, weights: tuple[float, float]) -> list[str]:
        """The same through the product's in-process `reciprocal_rank_fusion` (the binary_f8 path), to check the
        simulation at 1:1 against the function the brief names, and to measure how it departs at other weights."""
        dense, bm25 = self.candidates(qid)
        hits = reciprocal_rank_fusion([[Hit(id=c, score=0.0, payload={"doc_id": self.chunks[c]}) for c in ranking]
                                       for ranking in (dense, bm25)], self.rrf_k, weights)[:DEPTH]
        return [h.doc_id for h in break_ties(hits)]

    def score(self, ranked_docs: dict[str, list[str]]) -> np.ndarray:
        """nDCG@10 per query (in `qids` order) of document rankings, documents scored by their best chunk."""
        ranked = {qid: rank_units(docs, self.unit)[:10] for qid, docs in ranked_docs.items()}
        scores = per_query(self.qrels, ranked)["ndcg@10"]
        return np.array([scores[q] for q in self.qids])

    def engine(self, key: str) -> np.ndarray:
        """nDCG@10 of the engine's own fused rankings stored at `key` weights (the product's exact output)."""
        return self.score({q: [self.chunks[c] for c, _ in self.rows[q]["engine"].get(key, [])] for q in self.qids})

    def single(self, name: str) -> np.ndarray:
        """nDCG@10 of one stored ranking alone (its top DEPTH chunks), for reference."""
        return self.score({q: [self.chunks[c] for c, _ in self.rows[q][name][:DEPTH]] for q in self.qids})


def load_set(path: Path, fusion: str = "engine", weights: Sequence[tuple[float, float]] | None = None) -> SetRuns:
    """A stored collection run with its dataset's gold (the corpus is read for the gold unit, not embedded), and
    the nDCG of every pair of `weights` (default WEIGHTS).
    `fusion`: score the weight pairs as the engine fuses them (the product's default path) or as the product's
    in-process `reciprocal_rank_fusion` does (binary_f8; the textbook weighted RRF, w / (k + rank))."""
    data = json.loads(Path(path).read_text())
    s = data["settings"]
    dataset = EvalDataset(Path(data["root"]), data["split"])
    qrels = dataset.qrels()
    qids = sorted(q for q in data["queries"] if q in qrels)
    runs = SetRuns(data["dataset"], data["split"], qids, data["queries"], data["chunks"],
                   {q: qrels[q] for q in qids}, dataset.gold_unit, s["rrf_k"], s["dense_candidates"],
                   s["sparse_candidates"], embedder=s.get("embedder", "all-mpnet-base-v2"),
                   places=data.get("places"))
    fuse = runs.fused if fusion == "engine" else runs.fused_product
    scored = [runs.score({q: fuse(q, w) for q in qids}) for w in (WEIGHTS if weights is None else weights)]
    runs.ndcg = np.stack(scored, axis=1) if scored else None  # no weights: the rankings and halves only
    # Half of the queries by a seeded hash of their id: the same split on every run and machine, independent
    # of the order queries are stored in, and never correlated with what the query asks.
    runs.dev = np.array([int(hashlib.sha256(f"{SPLIT_SEED}:{runs.name}:{q}".encode()).hexdigest(), 16) % 2 == 0
                         for q in qids])
    return runs


# --- features ------------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"[A-Za-z0-9$%][\w.,%$&'-]*")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
# Vocabulary of questions about figures in tables, fixed before looking at any result: the words that ask
# for a number computed or read from a table rather than for a passage.
TABLE_WORDS = frozenset({
    "total", "change", "percentage", "percent", "average", "ratio", "difference", "amount", "value", "increase",
    "decrease", "net", "sum", "proportion", "growth", "rate", "million", "thousand", "billion", "%",
})


def text_features(text: str) -> dict[str, float]:
    """Features of the query text alone: free at query time."""
    tokens = _TOKEN.findall(text)
    n = max(len(tokens), 1)
    words = [t.lower().strip(".,'") for t in tokens]
    return {
        "digit_share": sum(any(c.isdigit() for c in t) for t in tokens) / n,
        "has_year": float(bool(_YEAR.search(text))),
        # Codes: all-caps names (tickers, "GAAP") and letter-digit mixes ("Q3", "10-Q", "FY2022").
        "code_share": sum((t.isupper() and len(t) > 1) or (any(c.isdigit() for c in t) and any(c.isalpha()
                          for c in t)) for t in tokens) / n,
        "n_tokens": float(len(tokens)),
        "table_words": float(sum(w in TABLE_WORDS for w in words) + text.count("%")),
    }


def list_features(row: dict[str, Any]) -> dict[str, float]:
    """Features of the two retrievers' own rankings: they need the dense and the BM25 list separately (two
    searches and the fusion in process, as `binary_f8` already does) instead of the engine's fused query."""
    dense, bm25 = row["dense50"], row["bm25"]
    d = [s for _, s in dense] + [0.0] * 11
    b = [s for _, s in bm25] + [0.0] * 11
    dense_ids, bm25_ids = [c for c, _ in dense], [c for c, _ in bm25]
    top = b[0] or 1.0
    return {
        "overlap10": len(set(dense_ids[:10]) & set(bm25_ids[:10])) / 10,
        "bm25_gap": (b[0] - b[1]) / top if bm25 else 0.0,  # how far BM25's first hit stands out, scale-free
        "bm25_gap10": (b[0] - b[9]) / top if bm25 else 0.0,
        "dense_gap": d[0] - d[1] if dense else 0.0,  # cosines: comparable across queries and corpora
        "dense_gap10": d[0] - d[9] if dense else 0.0,
        "dense_top": d[0],
        # Where one retriever's first hit sits in the other's list (log2 of 1 + rank; 51 when absent).
        "bm25_top_in_dense": math.log2(1 + (dense_ids.index(bm25_ids[0]) if bm25_ids and bm25_ids[0] in dense_ids
                                            else 51)),
        "dense_top_in_bm25": math.log2(1 + (bm25_ids.index(dense_ids[0]) if dense_ids and dense_ids[0] in bm25_ids
                                            else 51)),
    }


def features(runs: SetRuns) -> tuple[list[str], np.ndarray]:
    """Feature names and a queries x features matrix of one set."""
    rows = [text_features(runs.rows[q]["text"]) | list_features(runs.rows[q]) for q in runs.qids]
    names = list(rows[0])
    return names, np.array([[r[n] for n in names] for r in rows], dtype=float)


# --- policies ------------------------------------------------------------------------------------------------
@dataclass
class Policy:
    """A rule giving each query an index into WEIGHTS, from the features of that query."""

    family: str
    name: str
    rule: str  # the rule in words, with its parameters
    choose: Callable[[np.ndarray], np.ndarray]  # features (queries x F) -> weight-pair index per query
    params: dict[str, Any]


def _past(x: np.ndarray, direction: str, t: float) -> np.ndarray:
    return x > t if direction == ">" else x < t


def fmt(w: tuple[float, float]) -> str:
    return f"{w[0]:.3g}:{w[1]:.3g}"


class Sweep:
    """Every set's features and nDCG table, and the dev-half objective policies are chosen by."""

    def __init__(self, sets: list[SetRuns], guard: float = 0.005) -> None:
        self.sets = sets
        self.guard = guard
        self.names: list[str] = []
        self.features: list[np.ndarray] = []
        for runs in sets:
            self.names, x = features(runs)
            self.features.append(x)
        pooled = np.concatenate([x[r.dev] for x, r in zip(self.features, sets, strict=True)])
        # Thresholds at the pooled dev queries' 5th, 10th, ... 95th percentiles: a rule must reroute at least a
        # twentieth of them to count, and no threshold is fitted to one set's values.
        self.quantiles = {n: np.unique(np.quantile(pooled[:, i], np.linspace(0.05, 0.95, 19)))
                          for i, n in enumerate(self.names)}

    def deltas(self, choose: Callable[[np.ndarray], np.ndarray], half: str = "dev") -> list[float]:
        """Mean nDCG@10 change against 1:1 on one half of every set."""
        out = []
        for runs, x in zip(self.sets, self.features, strict=True):
            assert runs.ndcg is not None and runs.dev is not None
            keep = runs.dev if half == "dev" else ~runs.dev
            idx = choose(x[keep])
            table = runs.ndcg[keep]
            out.append(float(np.mean(table[np.arange(len(idx)), idx] - table[:, BASE])))
        return out

    def objective(self, deltas: list[float]) -> float:
        """Mean of the sets' changes (each set counts once, however many queries it has); a rule that costs
        any set more than `guard` on its dev half is out: the product must not buy tables with prose."""
        return float(np.mean(deltas)) if min(deltas) >= -self.guard else -math.inf

    # Each family returns its best policy on the dev halves and how many candidates it tried.
    def fixed(self) -> tuple[Policy, int]:
        best = max(range(len(WEIGHTS)), key=lambda i: self.objective(self.deltas(lambda x, i=i: np.full(len(x), i))))
        w = WEIGHTS[best]
        return Policy("fixed", f"fixed {fmt(w)}", f"every query: dense:BM25 weights {fmt(w)}",
                      lambda x: np.full(len(x), best), {"weights": w}), len(WEIGHTS)

    def _single(self, f: int, t: float, direction: str, target: int) -> Callable[[np.ndarray], np.ndarray]:
        return lambda x: np.where(_past(x[:, f], direction, t), target, BASE)

    def threshold(self, targets: Sequence[int]) -> tuple[Policy, int]:
        """One feature against a threshold: queries past it get WEIGHTS[target], the rest stay 1:1."""
        tried = [(f, float(t), d, target) for f, name in enumerate(self.names) for t in self.quantiles[name]
                 for d in (">", "<") for target in targets]
        scored = [(self.objective(self.deltas(self._single(*c))), i) for i, c in enumerate(tried)]
        f, t, d, target = tried[max(scored)[1]]
        name, w = self.names[f], WEIGHTS[target]
        return Policy("threshold", f"{name} {d} {t:.3g} -> {fmt(w)}",
                      f"if {name} {d} {t:.4g}: dense:BM25 weights {fmt(w)}, else 1:1", self._single(f, t, d, target),
                      {"feature": name, "direction": d, "threshold": t, "weights": w}), len(tried)

    def two_thresholds(self, targets: Sequence[int], top: int = 6) -> tuple[Policy, int]:
        """Two features, both past their thresholds (AND), among the `top` features of the one-feature search
        (every other percentile step): wider searches only find rules that fit the dev half's noise."""
        best_single = {}
        for f, name in enumerate(self.names):
            best_single[f] = max(self.objective(self.deltas(self._single(f, float(t), d, target)))
                                 for t in self.quantiles[name] for d in (">", "<") for target in targets)
        chosen = sorted(best_single, key=lambda f: -best_single[f])[:top]
        tried = []
        for f1, f2 in itertools.combinations(chosen, 2):
            q1, q2 = self.quantiles[self.names[f1]][1::2], self.quantiles[self.names[f2]][1::2]
            tried += [(f1, f2, float(t1), float(t2), d1, d2, target)
                      for t1, t2, d1, d2, target in itertools.product(q1, q2, (">", "<"), (">", "<"), targets)]

        def rule(f1: int, f2: int, t1: float, t2: float, d1: str, d2: str,
                 target: int) -> Callable[[np.ndarray], np.ndarray]:
            return lambda x: np.where(_past(x[:, f1], d1, t1) & _past(x[:, f2], d2, t2), target, BASE)

        scored = [(self.objective(self.deltas(rule(*c))), i) for i, c in enumerate(tried)]
        f1, f2, t1, t2, d1, d2, target = tried[max(scored)[1]]
        n1, n2, w = self.names[f1], self.names[f2], WEIGHTS[target]
        return Policy("two-thresholds", f"{n1} {d1} {t1:.3g} & {n2} {d2} {t2:.3g} -> {fmt(w)}",
                      f"if {n1} {d1} {t1:.4g} and {n2} {d2} {t2:.4g}: dense:BM25 weights {fmt(w)}, else 1:1",
                      rule(f1, f2, t1, t2, d1, d2, target),
                      {"features": [n1, n2], "directions": [d1, d2], "thresholds": [t1, t2], "weights": w}), len(tried)

    def logistic(self, targets: Sequence[int], sizes: Sequence[int] = (2, 3)) -> tuple[Policy, int]:
        """A logistic score over 2-3 standardized features, fitted on the dev halves to predict whether a
        query does better at WEIGHTS[target] than at 1:1 (weighted by how much better, each set weighing the
        same); queries scoring above a cut chosen on the dev halves get WEIGHTS[target]."""
        from sklearn.linear_model import LogisticRegression

        pooled = np.concatenate([x[r.dev] for x, r in zip(self.features, self.sets, strict=True)])
        mean, std = pooled.mean(axis=0), pooled.std(axis=0) + 1e-9
        candidates = []
        for target in targets:
            gains = [r.ndcg[r.dev][:, target] - r.ndcg[r.dev][:, BASE] for r in self.sets]  # type: ignore[index]
            y = np.concatenate([g > 0 for g in gains])
            w = np.concatenate([np.abs(g) / max(np.abs(g).sum(), 1e-9) for g in gains])
            fit = w > 0  # ties teach nothing about which weight to use
            if len(set(y[fit])) < 2:
                continue
            for size in sizes:
                for cols in itertools.combinations(range(len(self.names)), size):
                    c = list(cols)
                    model = LogisticRegression(C=1.0).fit((pooled[fit][:, c] - mean[c]) / std[c], y[fit],
                                                          sample_weight=w[fit])
                    for cut in (0.3, 0.4, 0.5, 0.6, 0.7):
                        candidates.append((c, model.coef_[0].copy(), float(model.intercept_[0]), cut, target))

        def rule(c: list[int], coef: np.ndarray, intercept: float, cut: float,
                 target: int) -> Callable[[np.ndarray], np.ndarray]:
            def choose(x: np.ndarray) -> np.ndarray:
                p = 1 / (1 + np.exp(-(((x[:, c] - mean[c]) / std[c]) @ coef + intercept)))
                return np.where(p > cut, target, BASE)
            return choose

        scored = [(self.objective(self.deltas(rule(*cand))), i) for i, cand in enumerate(candidates)]
        c, coef, intercept, cut, target = candidates[max(scored)[1]]
        names = [self.names[i] for i in c]
        # The same score on raw feature values: a + sum(b_i * x_i), the standardization folded in.
        raw = coef / std[c]
        raw_intercept = intercept - float(np.sum(coef * mean[c] / std[c]))
        terms = " ".join(f"{b:+.4g}*{n}" for b, n in zip(raw, names, strict=True))
        w = WEIGHTS[target]
        return Policy("logistic", f"logistic({', '.join(names)}) > {cut:g} -> {fmt(w)}",
                      f"p = sigmoid({raw_intercept:.4g} {terms}); if p > {cut:g}: dense:BM25 weights {fmt(w)}, "
                      "else 1:1", rule(c, coef, intercept, cut, target),
                      {"features": names, "coef_raw": raw.tolist(), "intercept_raw": raw_intercept,
                       "coef_standardized": coef.tolist(), "intercept_standardized": intercept,
                       "mean": mean[c].tolist(), "std": std[c].tolist(), "cut": cut, "weights": w}), len(candidates)


# --- report --------------------------------------------------------------------------------------------------
# nDCG@10 of `erag eval --config hybrid` / `bm25` on the current caches (docs/eval/embedders/*-mpnet for
# tatqa_dev and docugami, re-ingested on 2026-11-29; docs/eval/scifact-train for scifact).
# nomic-embed-text-v1.5: `--config hybrid-fixed` (1:1) in docs/eval/embedders/{tatqa_dev-nomic-gap,scifact-nomic}.
PUBLISHED = {
    "tatqa_dev": {"hybrid": 0.535, "bm25": 0.589},
    "docugami_sec10q": {"hybrid": 0.764, "bm25": 0.515},
    "scifact": {"hybrid": 0.7095, "bm25": 0.6949},
}
PUBLISHED_BY_EMBEDDER = {
    "nomic-embed-text-v1.5": {
        "tatqa_dev": {"hybrid": 0.609, "bm25": 0.589},
        "scifact": {"hybrid": 0.736, "bm25": 0.695},
    },
}
GENERATED = "<!-- generated by eval/fusion_sweep.py below this line -->"


def _half_stats(values: np.ndarray, base: np.ndarray, changed: np.ndarray | None) -> dict[str, Any]:
    low, high = bootstrap_ci(values.tolist(), SEED)
    dlow, dhigh = bootstrap_ci((values - base).tolist(), SEED)
    diff, p = paired_test(values.tolist(), base.tolist(), SEED)
    out = {"n": len(values), "ndcg@10": float(values.mean()), "ci95": [low, high], "delta": diff,
           "delta_ci95": [dlow, dhigh], "p_value": p, "wins": int(np.sum(values > base)),
           "losses": int(np.sum(values < base))}
    if changed is not None:
        out["share_reweighted"] = float(np.mean(changed))
    return out


def evaluate(sweep: Sweep, choose: Callable[[np.ndarray], np.ndarray] | None = None,
             fixed_scores: Callable[[SetRuns], np.ndarray] | None = None) -> dict[str, dict[str, Any]]:
    """Dev- and test-half numbers of a policy (or of given per-query scores) on every set, against 1:1."""
    out: dict[str, dict[str, Any]] = {}
    for runs, x in zip(sweep.sets, sweep.features, strict=True):
        assert runs.ndcg is not None and runs.dev is not None
        if choose is not None:
            idx = choose(x)
            values, changed = runs.ndcg[np.arange(len(idx)), idx], idx != BASE
        else:
            assert fixed_scores is not None
            values, changed = fixed_scores(runs), None
        base = runs.ndcg[:, BASE]
        out[runs.name] = {half: _half_stats(values[keep], base[keep], None if changed is None else changed[keep])
                          for half, keep in (("dev", runs.dev), ("test", ~runs.dev))}
    return out


def reproduction(runs: SetRuns) -> dict[str, Any]:
    """The simulations against the engine's own fused rankings and the published runs, whole set."""
    assert runs.ndcg is not None
    published = PUBLISHED_BY_EMBEDDER.get(runs.embedder, PUBLISHED)
    out: dict[str, Any] = {"queries": len(runs.qids), "published": published.get(runs.name, {})}
    for weights in ENGINE_WEIGHTS:
        key = _weight_key(weights)
        engine = runs.engine(key)
        sim = runs.ndcg[:, WEIGHTS.index(weights)]
        product = runs.score({q: runs.fused_product(q, weights) for q in runs.qids})
        out[key] = {"engine": float(engine.mean()), "simulated": float(sim.mean()),
                    "product_function": float(product.mean()),
                    "queries_scored_differently": int(np.sum(np.abs(engine - sim) > 1e-9))}
    out["bm25_alone"] = float(runs.single("bm25").mean())
    out["dense_alone"] = float(runs.single("dense50").mean())
    ms = [r["ms"] for r in runs.rows.values() if r.get("ms")]
    out["ms_per_query_median"] = {k: float(np.median([m[k] for m in ms])) for k in ms[0]} if ms else {}
    out["ms_per_query_mean"] = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]} if ms else {}
    return out


def breakdown(sweep: Sweep, policy: Policy) -> dict[str, dict[str, Any]]:
    """Why a policy works: on each set's test half, the queries it reweights and those it leaves at 1:1, with
    what each retriever alone and 1:1 score on them."""
    out: dict[str, dict[str, Any]] = {}
    for runs, x in zip(sweep.sets, sweep.features, strict=True):
        assert runs.ndcg is not None and runs.dev is not None
        test = ~runs.dev
        moved = policy.choose(x[test]) != BASE
        scores = {"1:1": runs.ndcg[test][:, BASE], "bm25_alone": runs.single("bm25")[test],
                  "dense_alone": runs.single("dense50")[test],
                  "policy": runs.ndcg[test][np.arange(int(test.sum())), policy.choose(x[test])]}
        out[runs.name] = {
            group: {"queries": int(mask.sum()), **{k: float(v[mask].mean()) if mask.any() else None
                                                   for k, v in scores.items()}}
            for group, mask in (("reweighted", moved), ("kept", ~moved))}
    return out


def whole_set(runs: SetRuns, x: np.ndarray, choose: Callable[[np.ndarray], np.ndarray] | None,
              fixed_scores: Callable[[SetRuns], np.ndarray] | None) -> dict[str, Any]:
    """A policy on every query of a set that took no part in choosing it, against 1:1."""
    assert runs.ndcg is not None
    if choose is not None:
        idx = choose(x)
        return _half_stats(runs.ndcg[np.arange(len(idx)), idx], runs.ndcg[:, BASE], idx != BASE)
    assert fixed_scores is not None
    return _half_stats(fixed_scores(runs), runs.ndcg[:, BASE], None)


def k_table(paths: list[Path], ks: Sequence[int], settings: Settings) -> dict[str, dict[int, dict[str, float]]]:
    """nDCG@10 on each half of every set, per RRF k, of 1:1 and of the product's BM25-gap rule as `fusion_weights`
    applies it under `settings` (its threshold, led weights and dense-sure cosine), fused by the product's
    function: the k is then chosen on the dev halves like any policy."""
    out: dict[str, dict[int, dict[str, float]]] = {}
    for path in paths:
        runs = load_set(path, "product", weights=[])
        qids, dev = runs.qids, runs.dev
        assert dev is not None
        rule = {}
        for q in qids:
            dense, bm25 = runs.rows[q]["dense50"], runs.rows[q]["bm25"]
            rule[q] = fusion_weights(settings, [score for _, score in bm25], dense[0][1] if dense else None)
        choices = {"1:1": dict.fromkeys(qids, (1.0, 1.0)), "rule": rule}
        out[runs.name] = {}
        for k in ks:
            runs.rrf_k = k
            row = {}
            for name, weights in choices.items():
                values = runs.score({q: runs.fused_product(q, weights[q]) for q in qids})
                row |= {f"{name} dev": float(values[dev].mean()), f"{name} test": float(values[~dev].mean()),
                        f"{name} all": float(values.mean())}
            out[runs.name][k] = row
    return out


def two_embedders(path_a: Path, path_b: Path, settings: Settings) -> dict[str, dict[str, float]]:
    """nDCG@10 (all queries and each half) of fusing two embedders' dense lists with BM25, from one set's rankings
    as `collect` stored them under each embedder (the second's settings give its fusion rule). Chunks are joined by
    their place in the document: the point ids of two collections differ (the version hashes the embedder)."""
    a, b = load_set(path_a, "product", weights=[]), load_set(path_b, "product", weights=[])
    if a.qids != b.qids or a.name != b.name:
        raise ValueError(f"{path_a} and {path_b} are not the same set's queries")
    place: dict[str, str] = {}
    for path, runs in ((path_a, a), (path_b, b)):
        if not runs.places:
            raise ValueError(f"{path} has no chunk places: collect it again")
        place |= {c: f"{doc}\x00{index}" for c, (doc, index) in runs.places.items()}
    docs = {place[c]: d for runs in (a, b) for c, d in runs.chunks.items()}
    # Each embedder's fusion defaults as the settings validator gives them (model_copy runs no validator).
    rule_a, rule_b = (settings.model_copy(update={"embedder": e, "bm25_gap_dense_below": None,
                                                  **EMBEDDER_FUSION.get(e.lower(), {})})
                      for e in (a.embedder, b.embedder))

    def hits(rows: list[list[Any]]) -> list[Hit]:
        return [Hit(id=place[c], score=score, payload={"doc_id": docs[place[c]]}) for c, score in rows[:50]]

    def fuse(lists: list[list[Hit]], weights: tuple[float, ...]) -> list[str]:
        return [h.doc_id for h in break_ties(reciprocal_rank_fusion(lists, a.rrf_k, weights)[:DEPTH])]

    def gap(rule: Settings, dense: list[Hit], bm25: list[Hit]) -> tuple[float, float]:
        return fusion_weights(rule, [h.score for h in bm25], dense[0].score if dense else None)

    def three(da: list[Hit], db: list[Hit], bm25: list[Hit]) -> list[str]:
        w_dense, w_bm25 = gap(rule_b, db, bm25)
        return fuse([da, db, bm25], (w_dense, w_dense, w_bm25))

    policies: dict[str, Callable[[list[Hit], list[Hit], list[Hit]], list[str]]] = {
        f"{a.embedder}, its rule": lambda da, db, bm: fuse([da, bm], gap(rule_a, da, bm)),
        f"{b.embedder}, its rule": lambda da, db, bm: fuse([db, bm], gap(rule_b, db, bm)),
        "both dense 1:1, no BM25": lambda da, db, bm: fuse([da, db], (1.0, 1.0)),
        "three lists 1:1:1": lambda da, db, bm: fuse([da, db, bm], (1.0, 1.0, 1.0)),
        f"three lists, {b.embedder}'s rule": three,
    }
    out: dict[str, dict[str, float]] = {}
    dev = a.dev
    assert dev is not None
    for name, policy in policies.items():
        ranked = {}
        for q in a.qids:
            ra, rb = a.rows[q], b.rows[q]
            ranked[q] = [] if ra.get("error") or rb.get("error") else \
                policy(hits(ra["dense50"]), hits(rb["dense50"]), hits(ra["bm25"]))
        values = a.score(ranked)
        out[name] = {"all": float(values.mean()), "dev": float(values[dev].mean()), "test": float(values[~dev].mean())}
    return out


def _halves(runs: SetRuns, lists: dict[str, tuple[list[Hit], list[Hit]] | None],
            fuse: Callable[[str, list[Hit], list[Hit]], list[Hit]]) -> dict[str, float]:
    """nDCG@10 on the dev half, the test half and every query of one fusion of each query's stored lists."""
    ranked_docs = {q: [] if pair is None else [h.doc_id for h in break_ties(fuse(q, *pair)[:DEPTH])]
                   for q, pair in lists.items()}
    values, dev = runs.score(ranked_docs), runs.dev
    assert dev is not None
    return {"dev": float(values[dev].mean()), "test": float(values[~dev].mean()), "all": float(values.mean())}


def convex_table(paths: list[Path], alphas: Sequence[float], led_alphas: Sequence[float | None],
                 settings: Settings) -> dict[str, dict[str, dict[str, float]]]:
    """nDCG@10 (dev half, test half, all) per set of the product's convex fusion (`convex_fusion` over the stored
    50-deep dense and BM25 lists) for every dense weight and every dense weight where `bm25_leads` fires (None:
    the same weight), beside the product's RRF rule; the settings give the BM25-gap rule (the embedder's)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for path in paths:
        runs = load_set(path, "product", weights=[])
        dev = runs.dev
        assert dev is not None
        lists: dict[str, tuple[list[Hit], list[Hit]] | None] = {}
        for q in runs.qids:
            row = runs.rows[q]
            hits = [[Hit(id=c, score=score, payload={"doc_id": runs.chunks[c]}) for c, score in row[name][:50]]
                    for name in ("dense50", "bm25")]
            lists[q] = None if row.get("error") else (hits[0], hits[1])
        led = {q: bool(pair) and bm25_leads(settings, [h.score for h in pair[1]],
                                            pair[0][0].score if pair[0] else None)
               for q, pair in lists.items()}
        table = {"rrf rule": _halves(runs, lists, lambda q, d, b: reciprocal_rank_fusion(
            [d, b], settings.rrf_k, fusion_weights(settings, [h.score for h in b], d[0].score if d else None)))}
        for alpha in alphas:
            for led_alpha in led_alphas:
                weight = {q: led_alpha if led_alpha is not None and led[q] else alpha for q in runs.qids}
                table[f"{alpha:g}/{'-' if led_alpha is None else f'{led_alpha:g}'}"] = _halves(
                    runs, lists, lambda q, d, b, weight=weight: convex_fusion([d, b], (weight[q], 1.0 - weight[q])))
        table["led"] = {"dev": float(np.mean([led[q] for q in np.array(runs.qids)[dev]])),
                        "test": float(np.mean([led[q] for q in np.array(runs.qids)[~dev]])),
                        "all": float(np.mean(list(led.values())))}
        out[runs.name] = table
    return out


def run_sweep(paths: list[Path], out_dir: Path, checks: Sequence[Path] = (), fusion: str = "engine") -> dict[str, Any]:
    """Load the stored runs, choose each family's policy on the dev halves, report all of them on both halves,
    and on every query of the `checks` sets, which take no part in choosing."""
    started = time.perf_counter()
    sets = [load_set(p, fusion) for p in paths]
    sweep = Sweep(sets)
    targets = [i for i in range(len(FAMILY)) if i != BASE][::2]  # every other step of the family, both sides
    families = [sweep.fixed(), sweep.threshold(targets), sweep.two_thresholds(targets[::2]),
                sweep.logistic(targets[::3])]
    results: dict[str, Any] = {
        "datasets": {r.name: {"split": r.split, "queries": len(r.qids), "dev": int(np.sum(r.dev)),
                              "test": int(np.sum(~r.dev))} for r in sets},  # type: ignore[operator]
        "reproduction": {r.name: reproduction(r) for r in sets},
        "features": sweep.names,
        "feature_means": {r.name: dict(zip(sweep.names, x.mean(axis=0).round(4).tolist(), strict=True))
                          for r, x in zip(sets, sweep.features, strict=True)},
        "weights": WEIGHTS,
        "fixed_grid_whole_set": {r.name: {fmt(w): float(r.ndcg[:, i].mean())  # type: ignore[index]
                                          for i, w in enumerate(WEIGHTS)} for r in sets},
        "fusion": fusion,
        "guard": sweep.guard,
        "split_seed": SPLIT_SEED,
        "policies": {},
    }
    Scores = Callable[[SetRuns], np.ndarray]
    Choose = Callable[[np.ndarray], np.ndarray]
    rows: list[tuple[str, str, str, Choose | None, Scores | None, dict[str, Any]]] = []
    for name, fn in (("BM25 alone", lambda r: r.single("bm25")), ("dense alone", lambda r: r.single("dense50"))):
        rows.append(("reference", name, name, None, fn, {}))
    rows.append(("reference", "oracle (best pair per query)", "upper bound: each query's best pair, not a policy",
                 None, lambda r: r.ndcg[:, : len(FAMILY)].max(axis=1), {}))  # type: ignore[index]
    for w in ((1.0, 1.0), (0.5, 1.0), (0.25, 1.0), (0.0, 1.0)):
        i = WEIGHTS.index(w)
        rows.append(("fixed", f"fixed {fmt(w)}", f"every query {fmt(w)}", lambda x, i=i: np.full(len(x), i), None,
                     {"weights": w}))
    best_policy, best_obj = None, -math.inf
    for policy, tried in families:
        obj = sweep.objective(sweep.deltas(policy.choose, "dev"))
        params = policy.params | {"candidates_tried": tried, "dev_objective": obj}
        rows.append((policy.family, policy.name + " (chosen on dev)", policy.rule, policy.choose, None, params))
        if obj > best_obj:
            best_obj, best_policy = obj, policy
    checked = [(r, features(r)[1]) for r in (load_set(p, fusion) for p in checks)]
    for family, name, rule, choose, fixed_scores, params in rows:
        results["policies"][name] = {"family": family, "rule": rule, "params": params,
                                     "results": evaluate(sweep, choose, fixed_scores),
                                     "check": {r.name: whole_set(r, x, choose, fixed_scores) for r, x in checked}}
    results["check_sets"] = {r.name: {"split": r.split, "queries": len(r.qids), **reproduction(r)} for r, _ in checked}
    assert best_policy is not None
    results["best"] = {"name": best_policy.name + " (chosen on dev)", "rule": best_policy.rule,
                       "params": best_policy.params, "dev_objective": best_obj}
    best = results["policies"][results["best"]["name"]]["results"]
    tatqa = best.get("tatqa_dev", {}).get("test")
    others = [best[n]["test"] for n in best if n != "tatqa_dev"]
    results["verdict"] = {
        "wins_tatqa_test": bool(tatqa and tatqa["delta"] > 0 and tatqa["p_value"] < 0.05),
        "no_significant_loss_elsewhere": all(not (o["delta"] < 0 and o["p_value"] < 0.05) for o in others),
    }
    results["best_breakdown"] = breakdown(sweep, best_policy)
    results["seconds"] = round(time.perf_counter() - started, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=float))
    report = out_dir / "report.md"
    # The hand-written analysis above the marker survives a re-run; the tables below it are regenerated.
    head = report.read_text().split(GENERATED)[0] if report.exists() and GENERATED in report.read_text() else ""
    report.write_text(head + GENERATED + "\n\n" + render(results))
    return results


def _cell(h: dict[str, Any]) -> str:
    return f"{h['ndcg@10']:.3f} ({h['ci95'][0]:.3f}-{h['ci95'][1]:.3f})"


def _delta(h: dict[str, Any]) -> str:
    star = " *" if h["p_value"] < 0.05 else ""
    return f"{h['delta']:+.3f} ({h['p_value']:.3f}){star}"


def render(results: dict[str, Any]) -> str:
    """The tables of a sweep in markdown."""
    names = list(results["datasets"])
    split = ", ".join(f"{n} {d['dev']}/{d['test']}" for n, d in results["datasets"].items())
    policy_lines = ["| policy | " + " | ".join(f"{n} dev | {n} test | {n} Δ test (p)" for n in names) + " |",
                    "|---" * (1 + 3 * len(names)) + "|"]
    for pname, pol in results["policies"].items():
        cells = []
        for n in names:
            h = pol["results"][n]
            cells += [_cell(h["dev"]), _cell(h["test"]), _delta(h["test"])]
        policy_lines.append(f"| {pname} | " + " | ".join(cells) + " |")
    rules = ["| policy | rule | share of test queries reweighted |", "|---|---|---|"]
    for pname, pol in results["policies"].items():
        if pol["family"] == "reference":
            continue
        shares = ", ".join(f"{n} {pol['results'][n]['test'].get('share_reweighted', 0):.0%}" for n in names)
        rules.append(f"| {pname} | {pol['rule']} | {shares} |")
    repro = ["| set | queries | published hybrid | engine 1:1 | simulated 1:1 (queries differing) | engine 0.5:1 | "
             "simulated 0.5:1 | product function 0.5:1 | engine 1:0.5 | simulated 1:0.5 | BM25 alone (published) | "
             "dense alone | ms embed / dense / BM25 / hybrid (median) |", "|---" * 13 + "|"]
    for n, r in {**results["reproduction"], **results.get("check_sets", {})}.items():
        ms = r["ms_per_query_median"]
        pub = r["published"]
        repro.append(
            f"| {n} | {r['queries']} | {pub.get('hybrid', float('nan')):.3f} | {r['1:1']['engine']:.3f} | "
            f"{r['1:1']['simulated']:.3f} ({r['1:1']['queries_scored_differently']}) | "
            f"{r['0.5:1']['engine']:.3f} | {r['0.5:1']['simulated']:.3f} | {r['0.5:1']['product_function']:.3f} | "
            f"{r['1:0.5']['engine']:.3f} | {r['1:0.5']['simulated']:.3f} | "
            f"{r['bm25_alone']:.3f} ({pub.get('bm25', float('nan')):.3f}) | {r['dense_alone']:.3f} | "
            f"{ms.get('embed', 0):.1f} / {ms.get('dense', 0):.1f} / {ms.get('bm25', 0):.1f} / "
            f"{ms.get('hybrid', 0):.1f} |")
    grid_pairs = [(d, b) for d in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0) for b in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0) if d or b]
    grid = ["| dense:BM25 | " + " | ".join(names) + " |", "|---" * (1 + len(names)) + "|"]
    for w in grid_pairs:
        grid.append(f"| {fmt(w)} | " + " | ".join(f"{results['fixed_grid_whole_set'][n][fmt(w)]:.3f}"
                                                   for n in names) + " |")
    check_names = list(results.get("check_sets", {}))
    check = ["| policy | " + " | ".join(f"{n} (all {results['check_sets'][n]['queries']}) | {n} Δ (p) | reweighted"
                                        for n in check_names) + " |", "|---" * (1 + 3 * len(check_names)) + "|"]
    for pname, pol in results["policies"].items():
        cells = []
        for n in check_names:
            h = pol["check"][n]
            cells += [_cell(h), _delta(h), f"{h['share_reweighted']:.0%}" if "share_reweighted" in h else "-"]
        check.append(f"| {pname} | " + " | ".join(cells) + " |")
    best = results["best"]
    why = ["| set | test queries | count | 1:1 | best policy | BM25 alone | dense alone |", "|---" * 7 + "|"]
    for n, groups in results.get("best_breakdown", {}).items():
        for group, g in groups.items():
            if g["queries"]:
                why.append(f"| {n} | {group} | {g['queries']} | {g['1:1']:.3f} | {g['policy']:.3f} | "
                           f"{g['bm25_alone']:.3f} | {g['dense_alone']:.3f} |")
    return "\n".join([
        "### Reproduction (whole sets)", "", *repro, "",
        f"### Policies: nDCG@10 (95% bootstrap CI) on each half (dev/test queries: {split}); "
        "Δ test = change against 1:1 on the test half (paired randomization p, * below 0.05)", "",
        *policy_lines, "", *rules, "",
        f"Best on the dev halves: **{best['name']}**: {best['rule']}", "",
        f"Verdict: {json.dumps(results['verdict'])}", "",
        "What the best policy reweights (test halves, nDCG@10):", "", *why, "",
        *(["### Out-of-sample check: sets that took no part in choosing (every query)", "", *check, ""]
          if check_names else []),
        f"### Fixed weight pairs, whole sets ({results['fusion']} fusion simulated)", "", *grid, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    col = sub.add_parser("collect", help="search every query once and store the rankings (embeds: use the lock)")
    col.add_argument("dataset", type=Path)
    col.add_argument("--split", default=None)
    col.add_argument("--out", type=Path, default=None, help=f"default {CACHE_DIR}/<dataset>.json")
    col.add_argument("--limit", type=int, default=None, help="only the first N queries (smoke test)")
    swp = sub.add_parser("sweep", help="simulate fusion policies on stored rankings and write the report")
    swp.add_argument("runs", type=Path, nargs="+", help="JSON files `collect` wrote")
    swp.add_argument("--out", type=Path, default=Path("docs/eval/fusion"))
    swp.add_argument("--check", type=Path, nargs="*", default=[],
                     help="stored runs of sets to report the chosen policies on without choosing on them")
    swp.add_argument("--fusion", choices=("engine", "product"), default="engine",
                     help="weighted RRF as the engine computes it (default) or as retrieval.searcher's function does")
    kk = sub.add_parser("k", help="the product's BM25-gap rule and 1:1 across RRF k values, on each half")
    kk.add_argument("runs", type=Path, nargs="+", help="JSON files `collect` wrote")
    kk.add_argument("--ks", type=int, nargs="+", default=[1, 3, 5, 7, 10, 14, 20, 40, 60, 100])
    kk.add_argument("--dense-below", type=float, default=None,
                    help="the rule's dense-sure cosine (ERAG_BM25_GAP_DENSE_BELOW); its other settings as configured")
    two = sub.add_parser("embedders", help="fuse two embedders' dense lists with BM25, from one set's two collections")
    two.add_argument("first", type=Path, help="`collect` JSON under the first embedder")
    two.add_argument("second", type=Path, help="`collect` JSON of the same set under the second embedder")
    cvx = sub.add_parser("convex", help="the convex fusion across dense weights, with and without the BM25-gap rule")
    cvx.add_argument("runs", type=Path, nargs="+", help="JSON files `collect` wrote (the first ones choose)")
    cvx.add_argument("--choose-on", type=int, default=None, help="how many of the runs choose (default: all)")
    cvx.add_argument("--alphas", type=float, nargs="+", default=[0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7])
    cvx.add_argument("--led-alphas", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3])
    args = parser.parse_args()
    if args.command == "convex":
        cv = convex_table(args.runs, args.alphas, [None, *args.led_alphas], get_settings())
        names = list(cv)
        choosers = names[: args.choose_on or len(names)]
        print("| dense weight / where BM25 leads | " + " | ".join(f"{n} dev / test / all" for n in names)
              + " | mean of dev halves (" + ", ".join(choosers) + ") |")
        print("|---" * (2 + len(names)) + "|")
        for key in cv[names[0]]:
            cells = [" / ".join(f"{cv[n][key][h]:.3f}" for h in ("dev", "test", "all")) for n in names]
            print(f"| {key} | " + " | ".join(cells) + f" | {np.mean([cv[n][key]['dev'] for n in choosers]):.4f} |")
    elif args.command == "embedders":
        rows = two_embedders(args.first, args.second, get_settings())
        print("| fusion | nDCG@10 | dev half | test half |\n|---|---|---|---|")
        for name, row in rows.items():
            print(f"| {name} | {row['all']:.4f} | {row['dev']:.4f} | {row['test']:.4f} |")
    elif args.command == "k":
        table = k_table(args.runs, args.ks,
                        get_settings().model_copy(update={"bm25_gap_dense_below": args.dense_below}))
        names, columns = list(table), ("1:1 dev", "1:1 test", "rule dev", "rule test", "rule all")
        print("| k | " + " | ".join(f"{n} {c}" for n in names for c in columns) + " | rule, mean of dev halves |")
        print("|---" * (2 + len(columns) * len(names)) + "|")
        for k in args.ks:
            cells = [f"{table[n][k][c]:.4f}" for n in names for c in columns]
            print(f"| {k} | " + " | ".join(cells) + f" | {np.mean([table[n][k]['rule dev'] for n in names]):.4f} |")
    elif args.command == "sweep":
        results = run_sweep(args.runs, args.out, args.check, args.fusion)
        print(render(results))
    elif args.command == "collect":
        out = args.out or CACHE_DIR / f"{args.dataset.name}.json"
        started = time.perf_counter()
        collect(args.dataset, args.split, out, limit=args.limit)
        print(f"wrote {out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
