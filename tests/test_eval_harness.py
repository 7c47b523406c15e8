"""`erag eval` end to end on a tiny BEIR dataset with a table: real ingestion into cached collections, the
product's retrieval, the LangChain/FAISS peer baseline, answers, and the report folder it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from erag.settings import get_settings
from eval.configs import resolve_configs
from eval.datasets import EvalDataset
from eval.report import write_report
from eval.run import EvalRun

from .conftest import FAST_MODEL, REPO, make_settings

DOCS = {
    "p1": ("Parental leave", "Primary carers receive 26 weeks of parental leave at full pay. Partners get 4 weeks."),
    "p2": ("VPN access", "To reset your VPN token open the SafeKey portal and choose Reset token."),
    "p3": ("Laptop returns", "Return laptops to Daniel Ferreira in the Leeds office before your last day."),
    "p4": ("Expenses", "Travel expenses are reimbursed within 30 days when receipts are attached."),
    "p5": ("Security", "Lock your screen when you leave your desk and report phishing emails to IT."),
    "p6": ("Holidays", "Holiday entitlement is 25 days, rising to 28 days after three years of service."),
}
QUESTIONS = {
    "q1": ("How many weeks of parental leave do primary carers get?", "p1", "26 weeks"),
    "q2": ("How do I reset my VPN token?", "p2", "SafeKey portal"),
    "q3": ("Where do I return my laptop?", "p3", "Daniel Ferreira"),
    "q4": ("What were the sales in Europe in 2019?", "tbl_sales", "410"),
    "q5": ("How many holiday days after three years of service?", "p6", "28 days"),
}
CONFIGS = ["bm25", "dense-int8", "dense-binary-f8", "hybrid", "peer-baseline"]


def write_tiny_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "tables").mkdir()
    lines = [{"_id": i, "title": t, "text": x} for i, (t, x) in DOCS.items()]
    table_text = "Region | 2019 | 2018\nEurope | 410 | 380\nAsia | 220 | 150"  # as TAT-QA renders tables
    lines.append({"_id": "tbl_sales", "title": "", "text": table_text})
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (root / "tables" / "tbl_sales.csv").write_text("Region,2019,2018\nEurope,410,380\nAsia,220,150\n")
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _, _) in
                                                QUESTIONS.items()))
    (root / "questions.jsonl").write_text("".join(
        json.dumps({"_id": q, "question": t, "answer": [a], "answer_type": "span"}) + "\n"
        for q, (t, _, a) in QUESTIONS.items()))
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{g}\t1\n" for q, (_, g, _) in QUESTIONS.items()))
    return root


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("eval")
    dataset = EvalDataset(write_tiny_beir(tmp / "tiny"))
    settings = make_settings(tmp / "home")
    result = EvalRun(settings, cache_root=tmp / "cache", warmup=1, progress=False).run(
        dataset, resolve_configs(CONFIGS, settings), answers=True, answerer="extractive"
    )
    folder = write_report(result, tmp / "report")
    return tmp, result, folder


def test_report_folder_has_table_json_plots_and_runs(evaluated) -> None:
    _, result, folder = evaluated
    data = json.loads((folder / "results.json").read_text())
    assert (data["dataset"], data["split"], data["queries"]) == ("tiny", "test", 5)
    assert list(data["configs"]) == CONFIGS
    for name, cfg in data["configs"].items():
        for metric in ("p@5", "r@5", "mrr@10", "ndcg@10"):
            per = cfg["per_query"][metric]
            assert sorted(per) == sorted(QUESTIONS)
            assert cfg[metric] == pytest.approx(sum(per.values()) / 5, abs=1e-3), (name, metric)
            low, high = cfg["ci95"][metric]
            assert low - 1e-9 <= cfg[metric] <= high + 1e-9
        assert 0 < cfg["latency_ms"]["p50"] <= cfg["latency_ms"]["p95"]
        assert cfg["bytes_per_chunk"]["ram"] > 0 and cfg["bytes_per_chunk"]["disk"] > 0
        assert set(cfg["significance"]) == ({"hybrid", "peer-baseline"} - {name})
    assert data["configs"]["dense-int8"]["bytes_per_chunk"]["ram"] > data["configs"]["dense-binary-f8"][
        "bytes_per_chunk"]["ram"]
    assert data["run"]["settings"]["embedder"] == FAST_MODEL and data["run"]["seed"] == 13
    # The precision the embedder ran in, as recorded by the run (nomic's GGUF runs f16 whatever the setting says).
    assert data["embed_precision"] == result.run_info["embed_precision"] == "int8"
    report = (folder / "report.md").read_text()
    assert f"embedder {FAST_MODEL} (int8)" in report
    assert "| config | P@5 | R@5 | MRR@10 | nDCG@10 |" in report
    assert all(f"| {name} |" in report for name in CONFIGS)
    for plot in ("quality_vs_bytes.png", "quality.png", "latency.png"):
        assert (folder / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((folder / "runs" / "hybrid.json").read_text())["q4"] == result.configs["hybrid"].ranked["q4"]


def test_product_configurations_find_the_gold_and_the_table_by_its_id(evaluated) -> None:
    _, result, _ = evaluated
    for name in ("bm25", "hybrid", "dense-int8"):
        assert result.configs[name].summary["recall@5"]["mean"] >= 0.8, name
    assert result.configs["hybrid"].ranked["q4"][0] == "tbl_sales"  # a CSV table ingested as a table, under its id
    assert result.indexes["binary"]["documents"] == 7 and result.indexes["int8"]["documents"] == 7
    peer = result.configs["peer-baseline"]
    assert peer.chunks == 7 and peer.bytes_per_vector == 4 * 384  # FAISS flat float32 over MiniLM vectors
    assert peer.summary["recall@5"]["mean"] >= 0.8


def test_answers_are_scored_and_hiding_the_gold_makes_the_answerer_abstain(evaluated) -> None:
    _, result, _ = evaluated
    answers = result.answers
    assert answers is not None and answers.summary["questions"] == 5
    assert answers.summary["abstention_unanswerable"] > answers.summary["abstention_answerable"]
    answered = [r for r in answers.per_question if not r["abstained"]]
    assert answered and all(r["cited"] for r in answered)
    assert answers.summary["citation_in_gold"] == pytest.approx(1.0)
    assert answers.summary["answer_contains_reference_n"] == 5  # every reference here is a short span
    extracted = [r for r in answered if r["answer_contains_reference"]]
    assert extracted and all(r["citation_contains_answer"] for r in extracted)


def test_cli_rerun_reuses_the_cached_index_and_embeddings(evaluated, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp, _, _ = evaluated
    monkeypatch.setenv("ERAG_HOME", str(tmp / "home"))
    monkeypatch.setenv("ERAG_EMBEDDER", FAST_MODEL)
    get_settings.cache_clear()
    try:
        out = tmp / "cli-report"
        args = ["eval", str(tmp / "tiny"), "-c", "hybrid,bm25", "--out", str(out), "--cache-dir", str(tmp / "cache")]
        done = CliRunner().invoke(cli.app, args)
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    assert "| hybrid |" in done.output and f"report: {out}" in done.output
    data = json.loads((out / "results.json").read_text())
    assert list(data["configs"]) == ["bm25", "hybrid"]
    assert data["indexes"]["binary"]["ingest"] == {"unchanged": 7}
    assert data["run"]["embedding_cache"] == {"texts": 8, "embedded_now": 0}  # 7 chunks + the table's summary


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "/nonexistent/set"], "is not a folder"),
        (["eval", "{tiny}", "--config", "int4"], "unknown configuration 'int4'"),
        (["eval", "{tiny}", "--split", "dev"], "no qrels/dev.tsv"),
    ],
)
def test_eval_bad_input_gets_a_one_line_error(tmp_path: Path, args: list[str], message: str) -> None:
    tiny = write_tiny_beir(tmp_path / "tiny")
    env = {**os.environ, "ERAG_HOME": str(tmp_path / "home"), "ERAG_EMBEDDER": FAST_MODEL}
    done = subprocess.run([sys.executable, "-m", "cli", *[a.format(tiny=tiny) for a in args]],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_int8_collection_searches_its_int8_codes(tmp_path: Path) -> None:
    import uuid

    import numpy as np

    from index.edge_store import EdgeStore
    from index.store import DenseQuery, HybridQuery, IndexPoint, StoreError

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    settings = make_settings(tmp_path / "home", dense_quantization="int8")
    with EdgeStore(settings) as store:
        store.ensure_collection(64, FAST_MODEL)
        store.upsert([IndexPoint(str(uuid.UUID(int=i + 1)), v, [1], [1.0], {"i": i}) for i, v in enumerate(vectors)])
        store.optimize()
        query = vectors[7] + 0.05 * rng.normal(size=64).astype(np.float32)
        exact = store.query(HybridQuery(dense=DenseQuery(query, limit=5, mode="float32"), limit=5))
        codes = store.query(HybridQuery(dense=DenseQuery(query, limit=5, mode="binary"), limit=5))  # codes only
    assert exact[0].payload["i"] == codes[0].payload["i"] == 7
    # int8 scores approximate the cosine: close, but not the float32 value (which would mean no codes were used)
    assert 0 < abs(exact[0].score - codes[0].score) < 0.02
    with pytest.raises(StoreError, match="keeps int8 codes, not binary"):
        EdgeStore(make_settings(tmp_path / "home")).ensure_collection(64, FAST_MODEL)
