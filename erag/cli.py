"""`erag`: ingest files, inspect and search the index from the command line.

The CLI, the app and the tests call the same pipeline classes; this module only parses arguments
and prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from erag.settings import Settings, get_settings
from erag.textsafe import printable

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Enterprise RAG: ingest, search, evaluate.")


@app.callback()
def _private_files() -> None:
    # Everything erag writes, and what it starts (the chat page through os.execv, worker processes), is owner-only.
    from erag.home import restrict_new_files

    restrict_new_files()


def _echo(message: object = "", **style) -> None:
    """Print like typer.secho, with every control character escaped: file names, document text and answers
    come from files anyone could have written, and an escape sequence must never reach the terminal raw."""
    typer.secho("\n".join(printable(line) for line in str(message).split("\n")), **style)


def _fail(message: str) -> None:
    _echo(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _parse_filters(items: list[str]):
    from index.filters import Filter, Match
    from index.spec import INTEGER_FIELDS

    must = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            _fail(f"filter '{item}' is not FIELD=VALUE (e.g. --filter department=HR)")
        values: list = [v.strip() for v in value.split(",") if v.strip()]
        if key in INTEGER_FIELDS:
            if not all(v.lstrip("-").isdigit() for v in values):
                _fail(f"filter '{key}' takes whole numbers, got '{value}'")
            values = [int(v) for v in values]
        must.append(Match(key, values))
    return Filter(must=must) if must else None


def _acting_user(as_user: str | None, groups: str | None):
    """Who a search or question runs as: a user of the users file (`--as`), else the local admin, optionally
    narrowed to `--groups` (a blank or empty list is an error, never 'no restriction')."""
    from app.identity import local_admin
    from erag.access import AccessError, split_groups
    from erag.users import UnknownUser, UserDirectory

    if as_user is None:
        try:
            return local_admin(split_groups(groups, where="--groups") if groups is not None else None)
        except AccessError as exc:
            _fail(str(exc))
    if groups is not None:
        _fail("give --as USER or --groups, not both")
    settings = get_settings()
    try:
        return UserDirectory.from_file(settings.users_path).get(as_user)
    except (OSError, UnknownUser, ValueError) as exc:
        _fail(str(exc))


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.")],
    prune: Annotated[bool, typer.Option(help="Remove documents whose files were deleted from a folder.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print failures and the summary.")] = False,
) -> None:
    """Ingest files and folders; unchanged files are skipped, changed ones replaced.

    Access groups, department and owner come from the `_meta.json` files above each file (see `erag meta`),
    whichever folder or file is given. Exits with status 1 when any file failed (the others are indexed).
    """
    from index.store import StoreError
    from ingest.pipeline import IngestPipeline

    def show(result) -> None:
        if not quiet or result.status == "failed":
            color = typer.colors.RED if result.status == "failed" else None
            _echo(result.line(), fg=color, err=result.status == "failed")

    try:
        with IngestPipeline(get_settings(), progress=sys.stderr.isatty()) as pipeline:
            report = pipeline.run(paths, prune=prune, on_result=show)
    except StoreError as exc:
        _fail(str(exc))
    _echo(report.summary())
    if report.failed:
        _echo(f"{len(report.failed)} of {len(report.results)} failed (listed above); the rest is indexed",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


@app.command()
def meta(
    path: Annotated[Path, typer.Argument(help="A folder (writes its _meta.json) or a file (its own sidecar).")],
    groups: Annotated[str, typer.Option(help="Comma-separated access groups, e.g. hr,management.")],
    department: Annotated[str | None, typer.Option(help="Department of the documents.")] = None,
    owner: Annotated[str | None, typer.Option(help="Owner of the documents.")] = None,
) -> None:
    """Set who may read a folder's files (or one file), then `erag ingest` it: groups belong to the files."""
    from erag.access import AccessError, split_groups
    from ingest.metadata import META_FILE, check_metadata, write_sidecar

    if not path.exists():
        _fail(f"{path} does not exist")
    try:
        data = check_metadata({"groups": list(split_groups(groups, where="--groups")),
                               **{k: v for k, v in (("department", department), ("owner", owner)) if v}})
    except AccessError as exc:
        _fail(str(exc))
    if path.is_dir():
        target = path / META_FILE
        target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    else:
        target = write_sidecar(path.resolve(), data)
    _echo(f"wrote {target}: {json.dumps(data)}; run `erag ingest {path}` to apply it")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="The question or keywords.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=100)] = 5,
    filters: Annotated[list[str] | None, typer.Option("--filter", "-f", help="FIELD=VALUE[,VALUE]")] = None,
    groups: Annotated[str | None, typer.Option(help="Search as a user of these comma-separated groups.")] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Search as this user of the users file.")] = None,
    mode: Annotated[str | None, typer.Option(help="float32 | binary | binary_rescore | binary_f8")] = None,
    retriever: Annotated[str, typer.Option(help="hybrid | dense | bm25")] = "hybrid",
    rerank: Annotated[bool | None, typer.Option(
        "--rerank/--no-rerank", help="Rerank with ERAG_RERANKER. Default: ERAG_RERANK.",
    )] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
) -> None:
    """Search the index and print the best chunks with source, position, scores and matched entities."""
    from index.store import StoreError
    from retrieval.pipeline import Retriever
    from retrieval.searcher import QueryError

    if mode and mode not in ("float32", "binary", "binary_rescore", "binary_f8"):
        _fail(f"unknown mode '{mode}' (float32, binary, binary_rescore, binary_f8)")
    flt = _parse_filters(filters or [])
    from app.identity import access_groups

    group_list = access_groups(_acting_user(as_user, groups))
    try:
        pipeline = Retriever(get_settings())
        try:
            result = pipeline.run(query, top_k=top_k, groups=group_list, filters=flt, mode=mode,  # type: ignore[arg-type]
                                  retriever=retriever, rerank=rerank)
        finally:
            pipeline.close()
    except (QueryError, StoreError) as exc:
        _fail(str(exc))
    hits = result.hits
    if as_json:
        rows = [{"id": h.id, "score": h.score, "scores": h.scores, "matched": h.matched, **h.payload} for h in hits]
        _echo(json.dumps(rows, default=str, indent=2))
        return
    for note in result.notes:
        _echo(f"note: {note}")
    if result.filters:
        _echo("filters: " + ", ".join(result.filters))
    if not hits:
        _echo("no results")
    for rank, hit in enumerate(hits, start=1):
        p = hit.payload
        where = hit.location()
        _echo(f"[{rank}] {p.get('file_name') or p.get('doc_id')}" + (f" ({where})" if where else ""), bold=True)
        scores = "  ".join(f"{k} {v:.4f}" for k, v in hit.scores.items())
        _echo(f"    {scores}" + (f"  matched: {', '.join(hit.matched)}" if hit.matched else ""))
        snippet = " ".join(hit.text.split())
        _echo(f"    {snippet[:300]}{'...' if len(snippet) > 300 else ''}")


def _show_computation(computation: dict) -> None:
    """`erag ask`'s account of a table answer: the SQL that ran and the rows it returned."""
    tables = ", ".join(t.get("file_name") or t.get("name", "") for t in computation.get("tables", []))
    _echo(f"computed over {tables} with:", dim=True)
    _echo(f"    {computation.get('sql', '')}")
    columns, rows = computation.get("columns") or [], computation.get("rows") or []
    if columns:
        _echo("    | " + " | ".join(columns) + " |")
        for row in rows[:10]:
            _echo("    | " + " | ".join(str(v) for v in row) + " |")
        if len(rows) > 10 or computation.get("truncated"):
            _echo(f"    ({len(rows)} rows{' or more' if computation.get('truncated') else ''})", dim=True)


@app.command()
def tables(
    as_user: Annotated[str | None, typer.Option("--as", help="List the tables this user of the users file can see.")]
    = None,
    groups: Annotated[str | None, typer.Option(help="List the tables these comma-separated groups can see.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tables as JSON.")] = False,
) -> None:
    """Tables the chat can compute over (every CSV, sheet and document table): document, title, rows, columns."""
    from app.identity import access_groups
    from index.tables import TableStoreError, open_table_store

    scope = access_groups(_acting_user(as_user, groups))
    try:
        with open_table_store(get_settings()) as store:
            infos = store.catalog(scope)
    except TableStoreError as exc:
        _fail(str(exc))
    if as_json:
        _echo(json.dumps([{"name": t.name, "file_name": t.file_name, "title": t.title, "sheet": t.sheet,
                           "page": t.page, "rows": t.row_count, "doc_id": t.doc_id, "groups": list(t.groups),
                           "columns": [{"name": c.name, "label": c.label, "type": c.type, "unit": c.unit}
                                       for c in t.columns[1:]]} for t in infos], indent=2))
        return
    if not infos:
        _echo("no tables visible (ingest CSV, XLSX or documents with tables first)")
    for t in infos:
        where = ", ".join(p for p in (f"sheet {t.sheet}" if t.sheet else "", f"p. {t.page}" if t.page else "") if p)
        _echo(f"{t.name}  ({t.file_name}{', ' + where if where else ''}; {t.row_count:,} rows; groups "
              f"{', '.join(t.groups)})", bold=True)
        if t.title:
            _echo(f"    {t.title}")
        _echo("    " + ", ".join(f"{c.name} {c.type}" + (f" [{c.unit}]" if c.unit else "") for c in t.columns[1:]))


@app.command()
def stats() -> None:
    """What is in the index: documents, chunks, size on disk."""
    from index.filters import Filter, Match
    from index.store import StoreError, open_store
    from index.versions import visible

    settings: Settings = get_settings()
    try:
        with open_store(settings) as store:
            info = store.stats()
            first_chunks = Filter(must=[Match("chunk_index", 0)]) & visible()
            docs = store.facet("doc_id", visible(), limit=100_000)
            by_type = store.facet("doc_type", first_chunks)
            by_dept = store.facet("department", first_chunks)
    except StoreError as exc:
        _fail(str(exc))
    where = settings.qdrant_url or str(settings.index_path)
    _echo(f"index:      {where} ({store.backend})")
    _echo(f"documents:  {len(docs)}")
    _echo(f"chunks:     {sum(docs.values())} ({info.points} points, {info.segments} segments)")
    if info.disk_bytes:
        per = info.disk_bytes / max(info.points, 1)
        _echo(f"disk:       {info.disk_bytes / 1048576:.1f} MB ({per / 1024:.1f} KB per chunk)")
    if info.extra.get("embedder"):
        _echo(f"embedder:   {info.extra['embedder']} ({info.extra.get('dim')}-d), binary codes + float8 copy")
    _echo("types:      " + (", ".join(f"{k} {v}" for k, v in sorted(by_type.items())) or "-"))
    _echo("department: " + (", ".join(f"{k} {v}" for k, v in sorted(by_dept.items())) or "-"))


@app.command()
def delete(doc: Annotated[str, typer.Argument(help="Document id, file path or unique file name.")]) -> None:
    """Remove a document and all its chunks from the index."""
    from index.store import StoreError
    from ingest.pipeline import IngestPipeline

    try:
        with IngestPipeline(get_settings(), progress=False) as pipeline:
            removed = pipeline.delete(doc)
    except (StoreError, ValueError) as exc:
        _fail(str(exc))
    if not removed:
        _fail(f"no document matches '{doc}' (see `erag stats`)")
    _echo(f"removed {removed} chunks of {doc}")


@app.command("eval")
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
        _fail(f"unknown answerer '{answerer}' (auto, chat, extractive)")
    from eval import company_eval

    if answers and company_eval.is_company_set(dataset):  # questions asked as users about data/, not BEIR
        summary = company_eval.run(dataset, out or company_eval.DEFAULT_OUT, progress=sys.stderr.isatty())
        _echo(company_eval.summary_table(summary))
        _echo(f"\nreport: {out or company_eval.DEFAULT_OUT}/summary.md, answers.json")
        return
    settings = get_settings()
    try:
        data = EvalDataset(dataset, split, settings.max_file_mb)
        configs = resolve_configs(config, settings)
        only = None
        if heldout:
            from eval.reranker_data import heldout_query_ids

            only = heldout_query_ids(dataset)
            if not only:
                _fail(f"{data.name} is not a reranker training source: it has no held-out questions")
        runner = EvalRun(settings, cache_dir, depth=depth, seed=seed, progress=sys.stderr.isatty())
        result = runner.run(data, configs, query_limit=limit, answers=answers, answers_limit=answers_limit,
                            answerer=answerer, only=only)  # type: ignore[arg-type]
    except (DatasetError, ConfigError, StoreError, AnswerSetupError) as exc:
        _fail(str(exc))
    folder = write_report(result, out or Path("eval/reports") / f"{data.name}-{data.split}")
    _echo(f"\n{result.dataset} ({result.split}, {result.queries} queries, {result.embedder})\n")
    _echo(markdown_table(result))
    if result.answers is not None:
        _echo(f"\nanswers ({result.answers.answerer}):\n{answers_table(result)}")
    elif answers and not data.questions():
        _echo(f"\nnote: {data.name} has no reference answers (questions.jsonl): answers were not scored")
    for note in result.notes:
        _echo(f"note: {note}")
    _echo(f"\nreport: {folder}/report.md, results.json, *.png")


# --- chat ------------------------------------------------------------------------------------
@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in plain words.")],
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Answer extractively (best source sentences).")] = False,
    groups: Annotated[str | None, typer.Option(help="Ask as a user of these comma-separated groups.")] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Ask as this user of the users file.")] = None,
    filters: Annotated[list[str] | None, typer.Option("--filter", "-f", help="FIELD=VALUE[,VALUE]")] = None,
    conversation: Annotated[str | None, typer.Option(help="Continue this conversation (id printed by ask).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer, citations and timings as JSON.")] = False,
) -> None:
    """Answer a question from the indexed documents with citations (the chat page's pipeline), as the local admin
    or, with --as, as a user of the users file."""
    from app.chat import ChatInputError, ChatPipeline
    from index.store import StoreError

    settings = get_settings()
    if no_llm:
        settings = settings.model_copy(update={"llm_enabled": False})
    flt = _parse_filters(filters or [])
    user = _acting_user(as_user, groups)
    final = None
    try:
        chat = ChatPipeline(settings)
        try:
            for event in chat.run(question, user, conversation, flt):
                if event.type == "rewritten" and event.text != " ".join(question.split()) and not as_json:
                    _echo(f"(searching for: {event.text})", dim=True, err=True)
                elif event.type == "token" and not as_json:
                    _echo(event.text, nl=False)
                elif event.type == "answer":
                    final = event.answer
        finally:
            chat.close()
    except (ChatInputError, StoreError) as exc:
        _fail(str(exc))
    assert final is not None
    if as_json:
        _echo(json.dumps({
            "answer": final.text, "abstained": final.abstained, "mode": final.mode, "notice": final.notice,
            "rewritten_query": final.rewritten_query, "conversation_id": final.conversation_id,
            "citations": [{"number": s.number, "id": s.hit.id, "file_name": s.file_name, "location": s.location}
                          for s in final.cited_sources()],
            "computation": final.computation,
            "timings": final.timings,
        }, indent=2, default=str))
        return
    if final.mode == "abstained":
        _echo(final.text, nl=False)
    _echo("")
    if final.notice and final.mode != "extractive":
        _echo(f"note: {final.notice}", dim=True)
    if final.computation:
        _show_computation(final.computation)
    for source in final.cited_sources():
        _echo(source.label(), bold=True)
        snippet = " ".join((source.excerpt or source.hit.text).split())
        _echo(f"    {snippet[:240]}{'...' if len(snippet) > 240 else ''}")
    _echo(f"conversation: {final.conversation_id} (continue with --conversation)", dim=True, err=True)


@app.command()
def serve(
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8501,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "localhost",
) -> None:
    """Start the chat page in the browser (Streamlit)."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("app.streamlit_app")
    if spec is None or spec.origin is None:
        _fail("the chat page (app/streamlit_app.py) is not installed: run `make install`")
    args = [sys.executable, "-m", "streamlit", "run", str(spec.origin), "--server.port", str(port),
            "--server.address", host, "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "viewer",
            # The browser refuses files over the upload limit before sending them (the page checks again).
            "--server.maxUploadSize", str(max(1, round(get_settings().max_file_mb)))]
    _echo(f"chat page on http://{host}:{port}")
    os.execv(sys.executable, args)


# --- ingestion workers (jobs/) ---------------------------------------------------------------
@app.command()
def worker(
    parent_pid: Annotated[int | None, typer.Option(help="Stop when this process (the app) exits.")] = None,
) -> None:
    """Run ingestion jobs from the queue (files uploaded on the admin page) until stopped with Ctrl-C."""
    from index.store import StoreError
    from jobs.queue import QueueError
    from jobs.worker import serve

    try:
        serve(get_settings(), parent_pid=parent_pid)
    except (QueueError, StoreError) as exc:
        _fail(str(exc))


@app.command()
def jobs(limit: Annotated[int, typer.Option(min=1, max=10_000, help="Latest jobs shown.")] = 30) -> None:
    """Ingestion jobs, newest first: file, status (queued, parsing, ..., indexed, failed) and the reason."""
    from app.db import ChatDatabase
    from jobs.board import JobBoard

    settings = get_settings()
    board = JobBoard(ChatDatabase.from_settings(settings), settings.job_lease_s, settings.job_max_attempts)
    rows = board.recent(limit)
    if not rows:
        _echo("no jobs yet (upload files on the admin page)")
    for job in rows:
        detail = job.reason or (f"{job.chunks} chunks, {job.outcome}" if job.status == "indexed" else "")
        _echo(f"{job.id:>6}  {job.status:9}  {job.file_name}" + (f": {detail}" if detail else ""))
    counts = ", ".join(f"{n} {status}" for status, n in sorted(board.counts().items()))
    _echo(f"total: {counts or 'none'}")


@app.command("train-reranker")
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
    from eval.reranker_data import RerankerDataMiner, write_lists
    from eval.train_reranker import RerankerTrainer

    settings = get_settings()
    cache = settings.home / "reranker-train"
    try:
        lists = RerankerDataMiner(settings, cache, shared=shared, limit=limit).run(
            [s.strip() for s in sources.split(",") if s.strip()]
        )
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    write_lists(lists, cache / "lists.jsonl")
    training = sum(i.split == "train" for i in lists)
    _echo(f"mined {len(lists)} lists ({training} for training) -> {cache}/lists.jsonl")
    try:
        report = RerankerTrainer(settings, max_length=max_length, epochs=epochs, layers=layers,
                                 learning_rate=learning_rate).run(lists, out)
    except ValueError as exc:
        _fail(str(exc))
    _echo(f"trained in {report['training']['seconds'] / 60:.1f} min -> {out}")
    for src, v in report["validation"].items():
        first = f", first-pass order {v['first_pass']['mrr']:.3f}" if v.get("first_pass") else ""
        _echo(f"  {src}: MRR {v['untrained']['mrr']:.3f} -> {v['trained']['mrr']:.3f}{first} "
                   f"({v['trained']['lists']} held-out lists)")


feedback_app = typer.Typer(no_args_is_help=True, help="Ratings given to chat answers.")
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    out: Annotated[Path, typer.Argument(help="Folder to write (BEIR layout: queries, corpus, qrels).")],
) -> None:
    """Turn thumbs up/down into evaluation data: rated questions, cited documents as positives or negatives."""
    from app.db import ChatDatabase
    from app.feedback import FeedbackStore

    try:
        summary = FeedbackStore(ChatDatabase.from_settings(get_settings())).export(out)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    _echo(f"wrote {out}: {summary.feedback} ratings, {summary.queries} queries, "
               f"{summary.positives} positive and {summary.negatives} negative judgements")


user_app = typer.Typer(no_args_is_help=True, help="Users of the web app (the users file, ERAG_USERS_FILE).")
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Sign-in name (lower case).")],
    name: Annotated[str, typer.Option(help="Full name shown on the pages.")] = "",
    groups: Annotated[str, typer.Option(help="Comma-separated access groups.")] = "all",
    admin: Annotated[bool, typer.Option("--admin", help="May open the admin page.")] = False,
    email: Annotated[str, typer.Option(help="E-mail address.")] = "",
) -> None:
    """Add a user (or set a user's password, name and groups again); the password is asked for, then hashed."""
    from app.accounts import AccountError, add_user, check_username, create_users_file

    path = get_settings().users_path
    try:
        check_username(username)
    except AccountError as exc:
        _fail(str(exc))
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    group_list = [g.strip() for g in groups.split(",") if g.strip()]
    try:
        if path.exists():
            add_user(path, username, name, password, group_list, admin, email)
        elif admin:
            create_users_file(path, username, name, password, group_list, email)
        else:
            _fail(f"{path} does not exist yet: add an administrator first (--admin)")
    except AccountError as exc:
        _fail(str(exc))
    _echo(f"{'admin' if admin else 'user'} {username} ({', '.join(group_list)}) saved in {path}")


if __name__ == "__main__":
    app()
