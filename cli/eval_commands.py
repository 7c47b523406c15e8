"""`erag eval`, `train-reranker` and `feedback export`: measuring, training the reranker, feedback as eval data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.output import echo, fail
from erag.settings import get_settings


def evaluate(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder in BEIR layout with corpus.jsonl and qrels/.")],
    split: Annotated[str | None, typer.Option(help="qrels split (default: test, else dev, else train).")] = None,
    config: Annotated[list[str] | None, typer.Option(
        "--config", "-c", help="Configuration, repeatable or comma-separated; 'all' = every one (default: hybrid).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (default: eval/reports/DATASET-SPLIT).")] = None,
    answers: Annotated[bool, typer.Option("--answers", help="Also score answers against reference answers.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate a seeded sample of this many queries.")] = None,
    answers_limit: Annotated[int, typer.Option(min=1, help="Questions sampled for --answers.")] = 200,
    answerer: Annotated[str, typer.Option(help="auto (the chat pipeline when present) | chat | extractive")] = "auto",
    cache_dir: Annotated[Path | None, typer.Option(help="Index and embedding cache (default: HOME/eval-cache)")] = None,
    depth: Annotated[int, typer.Option(min=10, max=200, help="Chunks retrieved per query.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of sampling, bootstrap and permutation tests.")] = 13,
    heldout: Annotated[bool, typer.Option(
        "--heldout", help="Only the questions that reranker training held out (its validation part).")] = False,
) -> None:
    """Score retrieval configurations on a dataset and write a report folder (table, JSON, plots)."""
    from eval.answer_eval import AnswerSetupError
    from eval.configs import ConfigError, resolve_configs
    from eval.datasets import DatasetError, EvalDataset
    from eval.report import answers_table, markdown_table, write_report
    from eval.run import EvalRun
    from index.store import StoreError

    if answerer not in ("auto", "chat", "extractive"):
        fail(f"unknown answerer '{answerer}' (auto, chat, extractive)")
    from eval import company_eval

    if answers and company_eval.is_company_set(dataset):  # questions asked as users about data/, not BEIR
        summary = company_eval.run(dataset, out or company_eval.DEFAULT_OUT, progress=sys.stderr.isatty())
        echo(company_eval.summary_table(summary))
        echo(f"\nreport: {out or company_eval.DEFAULT_OUT}/summary.md, answers.json")
        return
    settings = get_settings()
    try:
        data = EvalDataset(dataset, split, settings.max_file_mb)
        configs = resolve_configs(config, settings)
        only = None
        if heldout:
            from retrieval.reranker_data import heldout_query_ids

            only = heldout_query_ids(dataset)
            if not only:
                fail(f"{data.name} is not a reranker training source: it has no held-out questions")
        runner = EvalRun(settings, cache_dir, depth=depth, seed=seed, progress=sys.stderr.isatty())
        result = runner.run(data, configs, query_limit=limit, answers=answers, answers_limit=answers_limit,
                            answerer=answerer, only=only)  # type: ignore[arg-type]
    except (DatasetError, ConfigError, StoreError, AnswerSetupError) as exc:
        fail(str(exc))
    folder = write_report(result, out or Path("eval/reports") / f"{data.name}-{data.split}")
    echo(f"\n{result.dataset} ({result.split}, {result.queries} queries, {result.embedder})\n")
    echo(markdown_table(result))
    if result.answers is not None:
        echo(f"\nanswers ({result.answers.answerer}):\n{answers_table(result)}")
    elif answers and not data.questions():
        echo(f"\nnote: {data.name} has no reference answers (questions.jsonl): answers were not scored")
    for note in result.notes:
        echo(f"note: {note}")
    echo(f"\nreport: {folder}/report.md, results.json, *.png")


def train_reranker(
    sources: Annotated[str, typer.Option(help="Comma-separated: tatqa_dev, docugami_sec10q, h2o_hr_policy, sample, "
                                         "docugami_synthetic (LLM-written questions for filing pages, ~30 min).")]
    = "tatqa_dev,docugami_sec10q,h2o_hr_policy,sample,docugami_synthetic",
    out: Annotated[Path, typer.Option(help="Folder the trained model is written to.")] = Path("models/reranker"),
    epochs: Annotated[float, typer.Option(min=0.01)] = 2.0,
    max_length: Annotated[int, typer.Option(min=32, max=512, help="Query + passage tokens per pair.")] = 256,
    limit: Annotated[int | None, typer.Option(min=1, help="Questions per source (quick runs).")] = None,
    layers: Annotated[int | None, typer.Option(min=1, max=6, help="Keep the first N transformer layers (faster "
                                               "reranking; default all six).")] = None,
    learning_rate: Annotated[float, typer.Option(min=1e-7, max=1e-2)] = 3e-5,
    shared: Annotated[Path, typer.Option(help="Folder of the evaluation datasets.")] = Path("../shared/datasets"),
) -> None:
    """Mine (query, positive, hard negatives) lists with the product's retrieval and train the cross-encoder."""
    from eval.reranker_mining import RerankerDataMiner
    from retrieval.reranker_data import write_lists
    from retrieval.reranker_training import RerankerTrainer

    settings = get_settings()
    cache = settings.home / "reranker-train"
    try:
        lists = RerankerDataMiner(settings, cache, shared=shared, limit=limit).run(
            [s.strip() for s in sources.split(",") if s.strip()]
        )
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    write_lists(lists, cache / "lists.jsonl")
    training = sum(i.split == "train" for i in lists)
    echo(f"mined {len(lists)} lists ({training} for training) -> {cache}/lists.jsonl")
    try:
        report = RerankerTrainer(settings, max_length=max_length, epochs=epochs, layers=layers,
                                 learning_rate=learning_rate).run(lists, out)
    except ValueError as exc:
        fail(str(exc))
    echo(f"trained in {report['training']['seconds'] / 60:.1f} min -> {out}")
    for src, v in report["validation"].items():
        first = f", first-pass order {v['first_pass']['mrr']:.3f}" if v.get("first_pass") else ""
        echo(f"  {src}: MRR {v['untrained']['mrr']:.3f} -> {v['trained']['mrr']:.3f}{first} "
                   f"({v['trained']['lists']} held-out lists)")


def feedback_export(
    out: Annotated[Path, typer.Argument(help="Folder to write (BEIR layout: queries, corpus, qrels).")],
) -> None:
    """Turn thumbs up/down into evaluation data: rated questions, cited documents as positives or negatives."""
    from app.feedback import FeedbackStore
    from erag.db import ChatDatabase

    try:
        summary = FeedbackStore(ChatDatabase.from_settings(get_settings())).export(out)
    except (OSError, ValueError) as exc:
        fail(str(exc))
    echo(f"wrote {out}: {summary.feedback} ratings, {summary.queries} queries, "
               f"{summary.positives} positive and {summary.negatives} negative judgements")
