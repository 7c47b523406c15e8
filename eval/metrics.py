"""Retrieval metrics per query (ranx), 95% bootstrap confidence intervals and a paired randomization test (scipy).

Example:
    >>> run = {"q1": rank_units(["d3#0", "d3#1", "d1#0"], unit=lambda chunk: chunk.split("#")[0])}
    >>> run
    {'q1': ['d3', 'd1']}
    >>> scores = per_query({"q1": {"d1": 1}, "q2": {"d2": 1}}, run)   # q2 found nothing: it scores 0
    >>> scores["precision@5"], scores["mrr@10"]
    ({'q1': 0.2, 'q2': 0.0}, {'q1': 0.5, 'q2': 0.0})
    >>> bootstrap_ci(list(scores["ndcg@10"].values()), seed=13)
    (0.0, 0.6309...)
    >>> paired_test([0.5, 1.0, 0.0], [0.25, 1.0, 0.0], seed=13)   # (mean difference, p-value)
    (0.0833..., 1.0)

Documents split into several chunks are scored by their best chunk: a ranking of chunks becomes a
ranking of documents in the order their first chunk appears (`rank_units`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from ranx import Qrels, Run, evaluate
from scipy import stats

METRICS = ("precision@5", "recall@5", "mrr@10", "ndcg@10")
LABELS = {"precision@5": "p@5", "recall@5": "r@5", "mrr@10": "mrr@10", "ndcg@10": "ndcg@10"}
HEADERS = {"precision@5": "P@5", "recall@5": "R@5", "mrr@10": "MRR@10", "ndcg@10": "nDCG@10"}
BOOTSTRAP_RESAMPLES = 2000
PERMUTATIONS = 10_000
_NO_RESULT = "\x00no result"  # a query that found nothing still counts, with 0 for every metric


def rank_units(ids: Iterable[str], unit: Callable[[str], str] = str) -> list[str]:
    """Ranked gold units from ranked retrieved ids: each unit at the rank of its best (first) member."""
    return list(dict.fromkeys(unit(i) for i in ids))


def per_query(qrels: dict[str, dict[str, int]], ranked: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """metric -> query id -> score, for every judged query (queries missing from `ranked` score 0)."""
    run = {}
    for qid in sorted(qrels):
        units = ranked.get(qid) or [_NO_RESULT]
        run[qid] = {u: float(len(units) - i) for i, u in enumerate(units)}
    ranx_run = Run(run)
    evaluate(Qrels(qrels), ranx_run, list(METRICS), return_mean=False)
    return {m: {qid: float(v) for qid, v in sorted(ranx_run.scores[m].items())} for m in METRICS}


def bootstrap_ci(scores: Sequence[float], seed: int, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over queries (queries resampled with replacement)."""
    values = np.asarray(scores, dtype=float)
    if values.size == 0:
        return (float("nan"), float("nan"))
    if np.ptp(values) == 0:  # every query scored the same: the mean cannot move
        return (float(values[0]), float(values[0]))
    result = stats.bootstrap(
        (values,), np.mean, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=confidence, method="percentile",
        vectorized=True, rng=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def paired_test(a: Sequence[float], b: Sequence[float], seed: int) -> tuple[float, float]:
    """Mean of a - b and the two-sided p-value of Fisher's paired randomization test (per-query scores swapped
    between the two systems at random). With few queries every swap pattern is enumerated (exact test)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"paired test needs two equally long, non-empty score lists, got {x.size} and {y.size}")
    diff = float(np.mean(x - y))
    if np.all(x == y):
        return diff, 1.0
    result = stats.permutation_test(
        (x, y), _mean_difference, permutation_type="samples", vectorized=True, n_resamples=PERMUTATIONS,
        alternative="two-sided", rng=np.random.default_rng(seed),
    )
    return diff, float(result.pvalue)


def summarize(scores: dict[str, dict[str, float]], seed: int) -> dict[str, dict[str, float | list[float]]]:
    """Mean and 95% CI of each metric: {"ndcg@10": {"mean": x, "ci95": [lo, hi]}, ...}."""
    out: dict[str, dict[str, float | list[float]]] = {}
    for metric in METRICS:
        values = list(scores[metric].values())
        low, high = bootstrap_ci(values, seed)
        out[metric] = {"mean": float(np.mean(values)) if values else float("nan"), "ci95": [low, high]}
    return out
