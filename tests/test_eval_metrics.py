"""Evaluation arithmetic against hand-computed values: retrieval metrics, best chunk per document, confidence
intervals, the paired randomization test, answer scores, dataset reading and configuration names."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from erag.schema import Hit, TableBlock, TextBlock
from erag.settings import Settings
from eval.answer_eval import contains_answer, exact_match, normalize_answer, token_f1, without_markers
from eval.configs import CONFIGS, ConfigError, resolve_configs
from eval.datasets import DatasetError, EvalDataset
from eval.footprint import IndexShape, ram_bytes, rescore_bytes
from eval.metrics import bootstrap_ci, paired_test, per_query, rank_units, summarize
from eval.run import break_ties

QRELS = {"q1": {"d1": 1, "d2": 1}, "q2": {"d3": 1}, "q3": {"d4": 1}, "q4": {"d5": 1}}
RANKED = {
    "q1": ["d1", "x1", "d2", "x2", "x3"],  # hits at ranks 1 and 3
    "q2": ["x1", "x2", "d3"],  # hit at rank 3
    "q3": ["x1", "x2", "x3", "x4", "x5", "x6", "d4"],  # hit at rank 7: outside @5, inside @10
    # q4 found nothing: it still counts, with zeros
}


def test_metrics_match_hand_computed_values() -> None:
    scores = per_query(QRELS, RANKED)
    ndcg_q1 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    expected = {
        "precision@5": {"q1": 2 / 5, "q2": 1 / 5, "q3": 0.0, "q4": 0.0},
        "recall@5": {"q1": 1.0, "q2": 1.0, "q3": 0.0, "q4": 0.0},
        "mrr@10": {"q1": 1.0, "q2": 1 / 3, "q3": 1 / 7, "q4": 0.0},
        "ndcg@10": {"q1": ndcg_q1, "q2": 1 / math.log2(4), "q3": 1 / math.log2(8), "q4": 0.0},
    }
    for metric, per in expected.items():
        assert scores[metric] == pytest.approx(per, abs=1e-9), metric
    summary = summarize(scores, seed=1)
    assert summary["precision@5"]["mean"] == pytest.approx(0.15)
    assert summary["mrr@10"]["mean"] == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)
    low, high = summary["ndcg@10"]["ci95"]
    assert low <= summary["ndcg@10"]["mean"] <= high


def test_documents_are_ranked_by_their_best_chunk_and_pages_by_their_filing() -> None:
    chunks = ["d3#2", "d1#0", "d3#0", "d2#1", "d1#4"]
    assert rank_units(chunks, lambda c: c.split("#")[0]) == ["d3", "d1", "d2"]
    pages = {"AAPL_p1": "2023 Q1 AAPL", "AAPL_p7": "2023 Q1 AAPL", "MSFT_p2": "2023 Q1 MSFT"}
    units = rank_units(["AAPL_p7", "MSFT_p2", "AAPL_p1"], pages.__getitem__)
    assert units == ["2023 Q1 AAPL", "2023 Q1 MSFT"]
    scores = per_query({"q": {"2023 Q1 MSFT": 1}}, {"q": units})
    assert scores["mrr@10"]["q"] == 0.5 and scores["precision@5"]["q"] == pytest.approx(0.2)


def test_bootstrap_interval_matches_the_normal_approximation_and_is_seeded() -> None:
    coin = [0.0] * 100 + [1.0] * 100  # mean 0.5, standard error sqrt(0.25 / 200) = 0.0354
    low, high = bootstrap_ci(coin, seed=7)
    assert low == pytest.approx(0.5 - 1.96 * 0.0354, abs=0.012)
    assert high == pytest.approx(0.5 + 1.96 * 0.0354, abs=0.012)
    assert bootstrap_ci(coin, seed=7) == (low, high)
    wide = bootstrap_ci(coin[95:105], seed=7)
    assert wide[1] - wide[0] > 3 * (high - low)  # ten queries know far less than two hundred
    assert bootstrap_ci([0.7] * 20, seed=7) == (0.7, 0.7)


def test_paired_test_equals_the_exact_sign_flip_enumeration() -> None:
    a = np.array([0.9, 0.5, 0.7, 0.3, 1.0, 0.2, 0.6, 0.8, 0.4, 0.55])
    b = np.array([0.5, 0.5, 0.4, 0.35, 0.6, 0.1, 0.6, 0.3, 0.45, 0.2])
    diff, p = paired_test(a, b, seed=3)
    d = a - b
    flips = [abs(np.mean(np.array(signs) * d)) >= abs(d.mean()) - 1e-12
             for signs in itertools.product([1, -1], repeat=len(d))]
    assert diff == pytest.approx(d.mean())
    assert p == pytest.approx(np.mean(flips))
    assert paired_test(a, a, seed=3) == (0.0, 1.0)
    rng = np.random.default_rng(0)
    better = rng.uniform(0.5, 1.0, 60)
    assert paired_test(better, better - rng.uniform(0.05, 0.2, 60), seed=3)[1] < 0.001
    with pytest.raises(ValueError, match="equally long"):
        paired_test([1.0], [1.0, 0.0], seed=3)


def test_answer_scores_follow_squad_normalisation() -> None:
    assert normalize_answer("The  Cat's hat!") == "cats hat"
    assert exact_match("the 26 Weeks.", ["26 weeks"]) == 1.0
    assert exact_match("26 weeks at full pay", ["26 weeks"]) == 0.0
    # tokens 26 weeks at full pay: precision 2/5, recall 2/2
    assert token_f1("26 weeks at full pay", ["four weeks", "26 weeks"]) == pytest.approx(2 * 0.4 / 1.4)
    assert token_f1("nothing alike", ["26 weeks"]) == 0.0
    assert contains_answer("| Total sales | $1,496.5 | $1,202.9 |", ["$1,496.5"])
    assert not contains_answer("sales of 11,496.5", ["1,496.5"])
    # A chat answer's citation markers are no words of it: "22 [1]." is the answer "22", "[2, 3]" no token "2 3".
    assert without_markers("22 [1].") == "22 ." and exact_match(without_markers("22 [1]."), ["22"]) == 1.0
    assert exact_match("22 [1].", ["22"]) == 0.0  # as scored before: the marker's digit counted as a word
    assert token_f1(without_markers("It was $572 million [2, 3]."), ["$572"]) == pytest.approx(2 * 0.25 / 1.25)
    assert without_markers("Row [a] and [12] stay [3]") == "Row [a] and stay"


def test_a_tatqa_answer_is_scored_with_its_scale_stated(tmp_path: Path) -> None:
    # As TAT-QA's own metric scores the scale beside the number: "$230 million" is right for a table in $ millions
    # (its questions.jsonl gives the answer and the scale apart); a wrong scale is not.
    root = _write_dataset(tmp_path / "set")
    rows = [{"_id": "q1", "question": "What was the change in sales?", "answer": 230, "answer_type": "arithmetic",
             "scale": "million"},
            {"_id": "q2", "question": "What grew?", "answer": ["Asia"], "answer_type": "span", "scale": ""}]
    (root / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    million, plain = EvalDataset(root).questions().values()
    assert (million.answers, million.scale) == (["230"], "million")
    assert token_f1(without_markers("$230 million [1]."), million.references()) == 1.0
    assert token_f1(without_markers("$230 million [1]."), million.answers) < 1.0  # the number alone
    assert token_f1(without_markers("$230 billion [1]."), million.references()) < 1.0
    assert exact_match("230", million.references()) == 1.0 and plain.references() == ["Asia"]


def _write_dataset(root: Path, qrels_header: str = "query-id\tcorpus-id\tscore") -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "tables").mkdir()
    rows = [
        {"_id": "tbl_a", "title": "", "text": "Region | 2019\nEurope | 410", "doc_name": "report A"},
        {"_id": "par_1", "title": "", "text": "Sales grew in Europe.", "doc_name": "report A"},
        {"_id": "par_2", "title": "Outlook", "text": "Asia will grow.", "doc_name": "report B"},
    ]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "tables" / "tbl_a.csv").write_text("Region,2019\nEurope,410\nAsia,220\n")
    (root / "queries.jsonl").write_text('{"_id": "q2", "text": "Asia"}\n{"_id": "q1", "text": "Europe 2019"}\n'
                                        '{"_id": "q9", "text": "not judged"}\n')
    gold = "report A" if "doc-name" in qrels_header else "tbl_a"
    (root / "qrels" / "dev.tsv").write_text(f"{qrels_header}\nq1\t{gold}\t1\nq2\tpar_2\t1\n")
    (root / "qrels" / "train.tsv").write_text(f"{qrels_header}\nq1\t{gold}\t1\n")
    return root


def test_dataset_reads_tables_as_tables_and_prefers_test_then_dev(tmp_path: Path) -> None:
    ds = EvalDataset(_write_dataset(tmp_path / "set"))
    assert ds.split == "dev" and list(ds.queries()) == ["q1", "q2"]
    docs = list(ds.documents())
    assert [d.doc_id for d in docs] == ["tbl_a", "par_1", "par_2"]  # the table's corpus line is not duplicated
    table = docs[0].blocks[0]
    assert isinstance(table, TableBlock) and list(table.frame.columns) == ["Region", "2019"] and len(table.frame) == 2
    assert isinstance(docs[1].blocks[0], TextBlock)
    assert dict(ds.passages())["par_2"] == "Outlook\nAsia will grow."
    assert EvalDataset(tmp_path / "set", "train").split == "train"
    with pytest.raises(DatasetError, match=r"no qrels/test.tsv .*available: dev, train"):
        EvalDataset(tmp_path / "set", "test")
    with pytest.raises(DatasetError, match=r"corpus\.jsonl is missing"):
        EvalDataset(tmp_path)


def test_gold_named_by_a_corpus_field_maps_pages_to_their_document(tmp_path: Path) -> None:
    ds = EvalDataset(_write_dataset(tmp_path / "set", "query-id\tdoc-name\tscore"))
    assert ds.gold_field == "doc_name"
    assert ds.gold_unit("par_1") == "report A" and ds.gold_unit("tbl_a") == "report A"
    assert ds.doc_ids_of({"report A"}) == ["par_1", "tbl_a"]


def test_configuration_names_resolve_with_clear_errors() -> None:
    plain = Settings(reranker=None)
    assert [c.name for c in resolve_configs(None, plain)] == ["hybrid"]
    assert [c.name for c in resolve_configs(["hybrid,bm25", "peer-baseline"], plain)] == ["bm25", "hybrid",
                                                                                          "peer-baseline"]
    every = [c.name for c in resolve_configs(["all"], plain)]
    assert "hybrid-rerank" not in every and {"dense-int8", "dense-binary-f8", "peer-baseline"} <= set(every)
    assert "hybrid-rerank" in [c.name for c in resolve_configs(["all"], Settings(reranker="some/cross-encoder"))]
    with pytest.raises(ConfigError, match="unknown configuration 'int4'"):
        resolve_configs(["int4"], plain)
    with pytest.raises(ConfigError, match="ERAG_RERANKER"):
        resolve_configs(["hybrid-rerank"], plain)


def test_bytes_per_chunk_from_the_layout() -> None:
    shape = IndexShape(dim=768, hnsw_m=16, sparse_terms=60.0)
    links = 2 * 16 * 4
    assert ram_bytes(CONFIGS["dense-float32"], shape) == 3072 + links
    assert ram_bytes(CONFIGS["dense-int8"], shape) == 768 + 4 + links
    assert ram_bytes(CONFIGS["dense-binary-f8"], shape) == 96 + links
    assert ram_bytes(CONFIGS["bm25"], shape) == 480
    assert ram_bytes(CONFIGS["hybrid"], shape) == 96 + links + 480
    assert (rescore_bytes(CONFIGS["dense-binary-f8"], 768), rescore_bytes(CONFIGS["hybrid"], 768)) == (772, 3072)


def test_ties_are_ordered_by_id_and_the_rerank_order_is_kept() -> None:
    fused = [Hit("c", 0.5, {}), Hit("b", 0.3, {}), Hit("a", 0.3, {}), Hit("d", 0.2, {})]
    assert [h.id for h in break_ties(fused)] == ["c", "a", "b", "d"]
    reranked = [Hit("x", 0.1, {}, {"rerank": 4.0}), Hit("z", 0.3, {}, {"rerank": 2.0}),
                Hit("y", 0.2, {}, {"rerank": 2.0}), Hit("w", 0.9, {}, {"rerank": -1.0}), Hit("v", 0.05, {})]
    assert [h.id for h in break_ties(reranked)] == ["x", "y", "z", "w", "v"]
