"""The project's own reranker: ships in the repository, loads offline, separates relevant from irrelevant
passages it never saw, and the training command runs end to end on a tiny dataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retrieval.reranker import Reranker

from .conftest import FAST_MODEL, REPO

SHIPPED = REPO / "models" / "reranker"

# Written for this test, not taken from any training source: (question, relevant passage, irrelevant passage).
UNSEEN = [
    ("How long is the notice period when an employee resigns?",
     "Employees who resign must give four weeks' written notice; managers must give eight weeks.",
     "The canteen on the second floor serves breakfast from 7:30 and lunch from 11:45 every weekday."),
    ("What did the company pay in dividends this year?",
     "The board declared dividends of $1.20 per share, a total payout of $96 million for the fiscal year.",
     "Our data centre in Frankfurt moved to renewable electricity in March, cutting emissions by a third."),
    ("Can I bring my own laptop to work?",
     "Personal laptops may not connect to the corporate network; request a managed device from IT instead.",
     "Quarterly revenue in the Nordic region rose 12 percent, led by subscriptions from public-sector clients."),
    ("Which vaccine reduced hospital admissions in older adults?",
     "In adults over 65, the adjuvanted influenza vaccine reduced hospital admissions by 18 percent.",
     "The parking garage will close for resurfacing during the first two weeks of August."),
]


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_shipped_reranker_loads_offline_and_separates_unseen_pairs(precision: str, tmp_path: Path) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    card = (SHIPPED / "README.md").read_text()
    provenance = json.loads((SHIPPED / "training_data.json").read_text())
    assert "Validation" in card and provenance["sources"]
    assert sum(f.stat().st_size for f in SHIPPED.rglob("*") if f.is_file()) < 50 * 2**20
    reranker = Reranker.from_name("erag-reranker", tmp_path / "cache", precision=precision)  # found by name
    pairs = [(q, p) for q, good, bad in UNSEEN for p in (good, bad)]
    scores = np.asarray(reranker.model.predict(pairs, batch_size=8)).reshape(-1, 2)
    assert (scores[:, 0] > scores[:, 1]).all(), scores
    assert float(np.mean(scores[:, 0] - scores[:, 1])) > 0.2


def test_training_command_runs_end_to_end_on_a_tiny_dataset(tmp_path: Path) -> None:
    out = tmp_path / "reranker"
    env = {**os.environ, "ERAG_HOME": str(tmp_path / "home"), "ERAG_EMBEDDER": FAST_MODEL}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "train-reranker", "--sources", "sample", "--limit", "5",
         "--epochs", "1", "--max-length", "128", "--layers", "2", "--out", str(out)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "mined" in done.stdout and "trained in" in done.stdout
    report = json.loads((out / "training_report.json").read_text())
    assert report["training"]["pairs"] > 0 and report["base"] == "all-MiniLM-L6-v2"
    # A smaller student: only the first two of MiniLM's six layers are kept, saved and loaded again.
    assert report["layers"] == 2 and json.loads((out / "config.json").read_text())["num_hidden_layers"] == 2
    weights = out / "model.safetensors"
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as fh:
        names = list(fh.keys())
        assert {str(fh.get_slice(k).get_dtype()) for k in names} <= {"F16", "I64"}
    # A re-run asks the LLM for nothing new: its questions come from the cache.
    cached = (tmp_path / "home" / "reranker-train" / "synthetic_queries.jsonl").read_text().splitlines()
    assert len(cached) == 5
    reranker = Reranker.from_name(str(out), tmp_path / "cache", max_tokens=128, precision="float32")
    assert reranker.model.predict([("a question", "a passage")]).shape == (1,)
    assert len(reranker.model.model.base_model.encoder.layer) == 2


def test_validation_counts_ties_against_the_positive_and_ranks_lists_in_first_pass_order() -> None:
    from retrieval.reranker_data import RankList
    from retrieval.reranker_training import _rank_metrics, first_pass

    # A model that scores every pair alike must not look like it ranks the positive first.
    assert _rank_metrics([np.array([0.5, 0.5, 0.5])])["mrr"] == pytest.approx(1 / 3)
    lists = [
        RankList("a", "tatqa_dev", "val", "q", "pos", ["n1", "n2"], ranks=[0, 3, 4]),  # retrieval put it first
        RankList("b", "tatqa_dev", "val", "q", "pos", ["n1", "n2"], ranks=[5, 1, 2]),  # and here third
        RankList("c", "tatqa_dev", "train", "q", "pos", ["n1"], ranks=[9, 0]),  # training lists are not judged
    ]
    assert first_pass(lists)["tatqa_dev"] == {"mrr": pytest.approx((1 + 1 / 3) / 2), "acc@1": 0.5, "lists": 2}
