"""Query-aware RRF weights (issue 20): does a per-query dense:BM25 weight beat the fixed 1:1 fusion?

Run (the collect step embeds queries, so it waits its turn on the shared lock; the sweep reads only JSON):
    flock /tmp/erag-heavy.lock .venv/bin/python -m eval.fusion_sweep collect ../shared/datasets/tatqa_dev
    flock /tmp/erag-heavy.lock .venv/bin/python -m eval.fusion_sweep collect ../shared/datasets/scifact --split train
    .venv/bin/python -m eval.fusion_sweep sweep /tmp/fusion/*.json --out docs/eval/fusion

`collect` searches every judged query once through the product's own path (`Retriever.run` on the dataset's
cached eval collection, the query embedded once and handed to each search) and stores the dense ranking
(binary codes rescored, as the product searches), the BM25 ranking and, for checking the simulation, the
engine's own fused rankings at a few weights. `sweep` fuses the stored lists with the product's
`reciprocal_rank_fusion` under many weight policies, scores documents as `erag eval` does (best chunk of the
top 30 fused chunks, ranx nDCG@10), chooses each policy family's best on a seeded half of every set's queries
and reports it on the other half, with bootstrap intervals and paired randomization tests against 1:1.
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
from erag.settings import Settings, get_settings
from eval.answer_eval import EVAL_GROUPS
from eval.datasets import EvalDataset
from eval.indexes import DatasetIndexes
from eval.metrics import bootstrap_ci, paired_test, per_query, rank_units
from eval.run import DEPTH, SEED, EvalRun, break_ties
from retrieval.searcher import reciprocal_rank_fusion

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
        # One query at a time, as the product embeds it (a batch pads, which can move the int8 vector a little).
        self.vectors = {text: self.embedder.run_queries([text])[0]}
        return self.vectors[text]

    def run_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts])


def _rows(hits: list[Hit], chunks: dict[str, str]) -> list[list[Any]]:
    """[chunk id, score] rows in the product's order (ties by point id, as `erag eval` reads them); the chunk's
    document goes to the shared `chunks` table instead of being repeated in every row."""
    rows = []
    for hit in break_ties(hits):
        chunks[hit.id] = hit.doc_id
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
            row.update(dense=_rows(dense, chunks), bm25=_rows(bm25, chunks), dense50=_rows(dense50, chunks))
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
               "chunks": chunks, "queries": rows}
    out.write_text(json.dumps(payload))
    return out


def _weight_key(weights: tuple[float, float]) -> str:
    return f"{weights[0]:g}:{weights[1]:g}"



# --- simulate ----------------------------------------------------------------------------------------------
# Dense:BM25 weight ratios the sweep can choose from. RRF orders by sum(w / (k + rank)), so only the ratio of
# the two weights matters; log-spaced because 0.5 and 2 are equally far from 1:1. 0 is BM25 with dense only
# breaking ties (and adding its own candidates below BM25's), inf is dense with BM25 breaking ties.
RATIOS = [0.0, *[2.0 ** (e / 4) for e in range(-20, 13)], math.inf]
BASE = RATIOS.index(1.0)
SPLIT_SEED = SEED


def weights_of(ratio: float) -> tuple[float, float]:
    """The (dense, BM25) weights of a dense:BM25 ratio, both at most 1 as `ERAG_RRF_WEIGHTS` would hold them."""
    if math.isinf(ratio):
        return (1.0, 0.0)
    return (ratio, 1.0) if ratio <= 1 else (1.0, 1.0 / ratio)


@dataclass
class SetRuns:
    """One dataset's stored rankings, gold and the per-query nDCG@10 of every ratio in RATIOS."""

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
    ndcg: np.ndarray | None = None  # queries x RATIOS
    dev: np.ndarray | None = None  # True where the query is in the half policies are chosen on

    def fused(self, qid: str, weights: tuple[float, float]) -> list[str]:
        """Document ids of the top DEPTH fused chunks, as `erag eval` reads the product's hybrid ranking: the
        product's 50 + 50 candidates, RRF with its k and `reciprocal_rank_fusion`, ties by point id."""
        row = self.rows[qid]
        dense = [Hit(id=c, score=s, payload={"doc_id": self.chunks[c]})
                 for c, s in row["dense50"][: self.dense_candidates]]
        bm25 = [Hit(id=c, score=s, payload={"doc_id": self.chunks[c]})
                for c, s in row["bm25"][: self.sparse_candidates]]
        hits = reciprocal_rank_fusion([dense, bm25], self.rrf_k, weights)[:DEPTH]
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
        """nDCG@10 of one retriever alone (its top DEPTH chunks), for reference."""
        return self.score({q: [self.chunks[c] for c, _ in self.rows[q][name][:DEPTH]] for q in self.qids})


def load_set(path: Path) -> SetRuns:
    """A stored collection run with its dataset's gold (the corpus is read for the gold unit, not embedded)."""
    data = json.loads(Path(path).read_text())
    s = data["settings"]
    dataset = EvalDataset(Path(data["root"]), data["split"])
    qrels = dataset.qrels()
    qids = sorted(q for q in data["queries"] if q in qrels)
    runs = SetRuns(data["dataset"], data["split"], qids, data["queries"], data["chunks"],
                   {q: qrels[q] for q in qids}, dataset.gold_unit, s["rrf_k"], s["dense_candidates"],
                   s["sparse_candidates"])
    runs.ndcg = np.stack([runs.score({q: runs.fused(q, weights_of(r)) for q in qids}) for r in RATIOS], axis=1)
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
    """A rule giving each query an index into RATIOS, from the features of that query."""

    family: str
    name: str
    rule: str  # the rule in words, with its parameters
    choose: Callable[[np.ndarray], np.ndarray]  # features (queries x F) -> ratio index per query
    params: dict[str, Any]


def _threshold_mask(x: np.ndarray, direction: str, t: float) -> np.ndarray:
    return x > t if direction == ">" else x < t


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

    def column(self, name: str) -> int:
        return self.names.index(name)

    # Each family returns its best policy on the dev halves (and how many it tried, to say how hard it looked).
    def fixed(self) -> tuple[Policy, int]:
        best = max(range(len(RATIOS)), key=lambda i: self.objective(self.deltas(lambda x, i=i: np.full(len(x), i))))
        r = RATIOS[best]
        return Policy("fixed", f"fixed {_fmt_ratio(r)}", f"every query: dense:BM25 = {_fmt_ratio(r)}",
                      lambda x: np.full(len(x), best), {"ratio": r}), len(RATIOS)

    def threshold(self, lows: Sequence[int]) -> tuple[Policy, int]:
        """One feature against a threshold: queries past it get ratio RATIOS[low], the rest stay 1:1."""
        best, best_obj, tried = None, -math.inf, 0
        for f, name in enumerate(self.names):
            for t in self.quantiles[name]:
                for direction in (">", "<"):
                    for low in lows:
                        tried += 1
                        def choose(x, f=f, t=t, direction=direction, low=low):
                            return np.where(_threshold_mask(x[:, f], direction, t), low, BASE)
                        obj = self.objective(self.deltas(choose))
                        if obj > best_obj:
                            best_obj, best = obj, (name, f, float(t), direction, low, choose)
        assert best is not None
        name, _, t, direction, low, choose = best
        r = RATIOS[low]
        return Policy("threshold", f"{name} {direction} {t:.3g} -> {_fmt_ratio(r)}",
                      f"if {name} {direction} {t:.4g}: dense:BM25 = {_fmt_ratio(r)}, else 1:1", choose,
                      {"feature": name, "direction": direction, "threshold": t, "ratio": r}), tried

    def two_thresholds(self, lows: Sequence[int], top: int = 6) -> tuple[Policy, int]:
        """Two features, both past their thresholds (AND), among the `top` features of the one-feature search
        (deciles only): wider searches find rules that fit the dev half's noise."""
        singles = []
        for f, name in enumerate(self.names):
            score = max(self.objective(self.deltas(
                lambda x, f=f, t=t, d=d, low=low: np.where(_threshold_mask(x[:, f], d, t), low, BASE)))
                for t in self.quantiles[name] for d in (">", "<") for low in lows)
            singles.append((score, f))
        chosen = [f for _, f in sorted(singles, reverse=True)[:top]]
        best, best_obj, tried = None, -math.inf, 0
        for f1, f2 in itertools.combinations(chosen, 2):
            q1 = self.quantiles[self.names[f1]][1::2]
            q2 = self.quantiles[self.names[f2]][1::2]
            for t1, t2, d1, d2, low in itertools.product(q1, q2, (">", "<"), (">", "<"), lows):
                tried += 1
                def choose(x, f1=f1, f2=f2, t1=t1, t2=t2, d1=d1, d2=d2, low=low):
                    mask = _threshold_mask(x[:, f1], d1, t1) & _threshold_mask(x[:, f2], d2, t2)
                    return np.where(mask, low, BASE)
                obj = self.objective(self.deltas(choose))
                if obj > best_obj:
                    best_obj, best = obj, (f1, f2, float(t1), float(t2), d1, d2, low, choose)
        assert best is not None
        f1, f2, t1, t2, d1, d2, low, choose = best
        n1, n2, r = self.names[f1], self.names[f2], RATIOS[low]
        return Policy("two-thresholds", f"{n1} {d1} {t1:.3g} & {n2} {d2} {t2:.3g} -> {_fmt_ratio(r)}",
                      f"if {n1} {d1} {t1:.4g} and {n2} {d2} {t2:.4g}: dense:BM25 = {_fmt_ratio(r)}, else 1:1",
                      choose, {"features": [n1, n2], "directions": [d1, d2], "thresholds": [t1, t2],
                               "ratio": r}), tried

    def logistic(self, lows: Sequence[int], sizes: Sequence[int] = (2, 3)) -> tuple[Policy, int]:
        """A logistic score over 2-3 standardized features, fitted on the dev halves to predict whether a
        query does better at RATIOS[low] than at 1:1 (weighted by how much better, each set weighing the same);
        queries scoring above a cut chosen on the dev halves get RATIOS[low]."""
        from sklearn.linear_model import LogisticRegression

        xs = [x[r.dev] for x, r in zip(self.features, self.sets, strict=True)]
        pooled = np.concatenate(xs)
        mean, std = pooled.mean(axis=0), pooled.std(axis=0) + 1e-9
        best, best_obj, tried = None, -math.inf, 0
        for low in lows:
            gains = [r.ndcg[r.dev][:, low] - r.ndcg[r.dev][:, BASE] for r in self.sets]  # type: ignore[index]
            y = np.concatenate([g > 0 for g in gains])
            w = np.concatenate([np.abs(g) / max(np.abs(g).sum(), 1e-9) for g in gains])
            fit_rows = w > 0  # ties teach nothing about which weight to use
            if len(set(y[fit_rows])) < 2:
                continue
            for size in sizes:
                for cols in itertools.combinations(range(len(self.names)), size):
                    z = (pooled[:, cols] - mean[list(cols)]) / std[list(cols)]
                    model = LogisticRegression(C=1.0).fit(z[fit_rows], y[fit_rows], sample_weight=w[fit_rows])
                    coef, intercept = model.coef_[0].copy(), float(model.intercept_[0])
                    for cut in (0.3, 0.4, 0.5, 0.6, 0.7):
                        tried += 1
                        def choose(x, cols=cols, coef=coef, intercept=intercept, cut=cut, low=low):
                            zz = (x[:, cols] - mean[list(cols)]) / std[list(cols)]
                            p = 1 / (1 + np.exp(-(zz @ coef + intercept)))
                            return np.where(p > cut, low, BASE)
                        obj = self.objective(self.deltas(choose))
                        if obj > best_obj:
                            best_obj, best = obj, (cols, coef, intercept, cut, low, choose)
        assert best is not None
        cols, coef, intercept, cut, low, choose = best
        names = [self.names[c] for c in cols]
        # The same score on raw features: a + sum(b_i * x_i), with the standardization folded in.
        raw = coef / std[list(cols)]
        raw_intercept = intercept - float(np.sum(coef * mean[list(cols)] / std[list(cols)]))
        terms = " ".join(f"{b:+.4g}*{n}" for b, n in zip(raw, names, strict=True))
        r = RATIOS[low]
        return Policy("logistic", f"logistic({', '.join(names)}) > {cut:g} -> {_fmt_ratio(r)}",
                      f"p = sigmoid({raw_intercept:.4g} {terms}); if p > {cut:g}: dense:BM25 = {_fmt_ratio(r)}, "
                      "else 1:1", choose,
                      {"features": names, "coef_raw": raw.tolist(), "intercept_raw": raw_intercept,
                       "coef_standardized": coef.tolist(), "intercept_standardized": intercept,
                       "mean": mean[list(cols)].tolist(), "std": std[list(cols)].tolist(), "cut": cut,
                       "ratio": r}), tried


def _fmt_ratio(r: float) -> str:
    if math.isinf(r):
        return "1:0"
    if r == 0:
        return "0:1"
    return f"{r:.3g}:1" if r <= 1 else f"1:{1 / r:.3g}"



# --- report --------------------------------------------------------------------------------------------------
PUBLISHED = {  # nDCG@10 of `erag eval --config hybrid` / `bm25` in docs/eval (README "Results")
    "tatqa_dev": {"hybrid": 0.5306, "bm25": 0.5860},
    "docugami_sec10q": {"hybrid": 0.7658, "bm25": 0.5297},
    "scifact": {"hybrid": 0.7095, "bm25": 0.6949},
}


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
    """Dev- and test-half numbers of a policy (or of a fixed per-query score list) on every set."""
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
    """The simulated 1:1 fusion against the engine's own fused ranking and the published run, whole set."""
    assert runs.ndcg is not None
    out: dict[str, Any] = {"queries": len(runs.qids), "published": PUBLISHED.get(runs.name, {})}
    for weights in ENGINE_WEIGHTS:
        key = _weight_key(weights)
        ratio = weights[0] / weights[1]
        sim = runs.ndcg[:, RATIOS.index(ratio)] if ratio in RATIOS else None
        engine = runs.engine(key)
        same = sum(
            [runs.chunks[c] for c, _ in runs.rows[q]["engine"].get(key, [])][:DEPTH] == runs.fused(q, weights)
            for q in runs.qids)
        out[key] = {"simulated": None if sim is None else float(sim.mean()), "engine": float(engine.mean()),
                    "same_top30_docs": same / len(runs.qids)}
    out["bm25_alone"] = float(runs.single("bm25").mean())
    out["dense_alone"] = float(runs.single("dense").mean())
    out["dense50_alone"] = float(runs.single("dense50").mean())
    ms = [r["ms"] for r in runs.rows.values() if r.get("ms")]
    out["ms_per_query"] = {k: float(np.median([m[k] for m in ms])) for k in ms[0]} if ms else {}
    out["ms_per_query_mean"] = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]} if ms else {}
    return out


def run_sweep(paths: list[Path], out_dir: Path) -> dict[str, Any]:
    """Load the stored runs, choose each family's policy on the dev halves, report all of them on both halves."""
    started = time.perf_counter()
    sets = [load_set(p) for p in paths]
    sweep = Sweep(sets)
    lows = [i for i, r in enumerate(RATIOS) if r < 1][::2]  # every other step below 1:1 (0, 2^-5 ... 2^-0.5)
    families = [sweep.fixed(), sweep.threshold(lows), sweep.two_thresholds(lows), sweep.logistic(lows[::2])]
    results: dict[str, Any] = {
        "datasets": {r.name: {"split": r.split, "queries": len(r.qids), "dev": int(r.dev.sum()),  # type: ignore[union-attr]
                              "test": int((~r.dev).sum())} for r in sets},  # type: ignore[operator]
        "reproduction": {r.name: reproduction(r) for r in sets},
        "features": sweep.names,
        "feature_means": {r.name: dict(zip(sweep.names, x.mean(axis=0).round(4).tolist(), strict=True))
                          for r, x in zip(sets, sweep.features, strict=True)},
        "ratios": [*RATIOS[:-1], "inf"],
        "guard": sweep.guard,
        "policies": {},
    }
    rows: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = []
    for name, fn in (("BM25 alone", lambda r: r.single("bm25")), ("dense alone", lambda r: r.single("dense50"))):
        rows.append(("reference", name, name, evaluate(sweep, fixed_scores=fn), {}))
    rows.append(("reference", "oracle (best ratio per query)", "upper bound: each query's best ratio, not a policy",
                 evaluate(sweep, fixed_scores=lambda r: r.ndcg.max(axis=1)), {}))  # type: ignore[union-attr]
    for r in (1.0, 0.5, 0.25, 0.0):
        i = RATIOS.index(r)
        rows.append(("fixed", f"fixed {_fmt_ratio(r)}", f"every query {_fmt_ratio(r)}",
                     evaluate(sweep, lambda x, i=i: np.full(len(x), i)), {"ratio": r}))
    best_policy, best_obj = None, -math.inf
    for policy, tried in families:
        dev = sweep.deltas(policy.choose, "dev")
        obj = sweep.objective(dev)
        params = policy.params | {"candidates_tried": tried, "dev_objective": obj}
        rows.append((policy.family, policy.name + " (chosen on dev)", policy.rule, evaluate(sweep, policy.choose),
                     params))
        if obj > best_obj:
            best_obj, best_policy = obj, policy
    for family, name, rule, numbers, params in rows:
        results["policies"][name] = {"family": family, "rule": rule, "params": params, "results": numbers}
    assert best_policy is not None
    results["best"] = {"name": best_policy.name + " (chosen on dev)", "rule": best_policy.rule,
                       "params": best_policy.params, "dev_objective": best_obj}
    best = results["policies"][results["best"]["name"]]["results"]
    tatqa, others = best.get("tatqa_dev", {}).get("test"), [best[n]["test"] for n in best if n != "tatqa_dev"]
    results["verdict"] = {
        "wins_tatqa_test": bool(tatqa and tatqa["delta"] > 0 and tatqa["p_value"] < 0.05),
        "no_significant_loss_elsewhere": all(not (o["delta"] < 0 and o["p_value"] < 0.05) for o in others),
    }
    results["seconds"] = round(time.perf_counter() - started, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=float))
    (out_dir / "report.md").write_text(render(results))
    return results


def _cell(h: dict[str, Any]) -> str:
    return f"{h['ndcg@10']:.3f} ({h['ci95'][0]:.3f}-{h['ci95'][1]:.3f})"


def _delta(h: dict[str, Any]) -> str:
    star = " *" if h["p_value"] < 0.05 else ""
    return f"{h['delta']:+.3f} ({h['p_value']:.3f}){star}"


def render(results: dict[str, Any]) -> str:
    """The markdown tables of the sweep (the prose around them is written by hand in report.md's head)."""
    names = list(results["datasets"])
    lines = ["| policy | " + " | ".join(f"{n} dev | {n} test | {n} Δ test (p)" for n in names) + " |",
             "|---" * (1 + 3 * len(names)) + "|"]
    for pname, pol in results["policies"].items():
        cells = []
        for n in names:
            h = pol["results"][n]
            cells += [_cell(h["dev"]), _cell(h["test"]), _delta(h["test"])]
        lines.append(f"| {pname} | " + " | ".join(cells) + " |")
    repro = ["| set | queries | published hybrid | engine 1:1 | simulated 1:1 | same top-30 | engine 0.5:1 | "
             "simulated 0.5:1 | BM25 alone (published) | dense alone | ms embed / dense / BM25 / hybrid |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, r in results["reproduction"].items():
        ms = r["ms_per_query"]
        repro.append(
            f"| {n} | {r['queries']} | {r['published'].get('hybrid', float('nan')):.3f} | {r['1:1']['engine']:.3f} | "
            f"{r['1:1']['simulated']:.3f} | {r['1:1']['same_top30_docs']:.1%} | {r['0.5:1']['engine']:.3f} | "
            f"{r['0.5:1']['simulated']:.3f} | {r['bm25_alone']:.3f} ({r['published'].get('bm25', float('nan')):.3f}) "
            f"| {r['dense50_alone']:.3f} | {ms.get('embed', 0):.1f} / {ms.get('dense', 0):.1f} / "
            f"{ms.get('bm25', 0):.1f} / {ms.get('hybrid', 0):.1f} |")
    best = results["best"]
    return "\n".join([
        "## Reproduction (whole sets)", "", *repro, "",
        "## Policies (nDCG@10 with 95% bootstrap CI; Δ against 1:1 on the test half, paired randomization p)", "",
        *lines, "", f"Best on the dev halves: **{best['name']}**: {best['rule']}", "",
        f"Verdict: {json.dumps(results['verdict'])}", ""])


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
    args = parser.parse_args()
    if args.command == "sweep":
        results = run_sweep(args.runs, args.out)
        print(render(results))
    elif args.command == "collect":
        out = args.out or CACHE_DIR / f"{args.dataset.name}.json"
        started = time.perf_counter()
        collect(args.dataset, args.split, out, limit=args.limit)
        print(f"wrote {out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
