"""`erag search`, `tables` and `ask`: searching the index, the tables and asking questions, as a user or the admin."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer

from cli.output import echo, fail
from erag.settings import get_settings


def _parse_filters(items: list[str]):
    from index.filters import Filter, Match
    from index.spec import INTEGER_FIELDS

    must = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            fail(f"filter '{item}' is not FIELD=VALUE (e.g. --filter department=HR)")
        values: list = [v.strip() for v in value.split(",") if v.strip()]
        if key in INTEGER_FIELDS:
            if not all(v.lstrip("-").isdigit() for v in values):
                fail(f"filter '{key}' takes whole numbers, got '{value}'")
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
            fail(str(exc))
    if groups is not None:
        fail("give --as USER or --groups, not both")
    settings = get_settings()
    try:
        return UserDirectory.from_file(settings.users_path).get(as_user)
    except (OSError, UnknownUser, ValueError) as exc:
        fail(str(exc))


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
        fail(f"unknown mode '{mode}' (float32, binary, binary_rescore, binary_f8)")
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
        fail(str(exc))
    hits = result.hits
    if as_json:
        rows = [{"id": h.id, "score": h.score, "scores": h.scores, "matched": h.matched, **h.payload} for h in hits]
        echo(json.dumps(rows, default=str, indent=2))
        return
    for note in result.notes:
        echo(f"note: {note}")
    if result.filters:
        echo("filters: " + ", ".join(result.filters))
    if not hits:
        echo("no results")
    for rank, hit in enumerate(hits, start=1):
        p = hit.payload
        where = hit.location()
        echo(f"[{rank}] {p.get('file_name') or p.get('doc_id')}" + (f" ({where})" if where else ""), bold=True)
        scores = "  ".join(f"{k} {v:.4f}" for k, v in hit.scores.items())
        echo(f"    {scores}" + (f"  matched: {', '.join(hit.matched)}" if hit.matched else ""))
        snippet = " ".join(hit.text.split())
        echo(f"    {snippet[:300]}{'...' if len(snippet) > 300 else ''}")


def _show_computation(computation: dict) -> None:
    """`erag ask`'s account of a table answer: the SQL that ran and the rows it returned."""
    from app.table_qa import RULE_CHANGE

    tables = ", ".join(t.get("file_name") or t.get("name", "") for t in computation.get("tables", []))
    rule = computation.get("rule") or RULE_CHANGE
    by = f" (SQL by rule: {rule})" if computation.get("written_by") == "rule" else ""
    echo(f"computed over {tables}{by} with:", dim=True)
    echo(f"    {computation.get('sql', '')}")
    columns, rows = computation.get("columns") or [], computation.get("rows") or []
    if columns:
        echo("    | " + " | ".join(columns) + " |")
        for row in rows[:10]:
            echo("    | " + " | ".join(str(v) for v in row) + " |")
        if len(rows) > 10 or computation.get("truncated"):
            echo(f"    ({len(rows)} rows{' or more' if computation.get('truncated') else ''})", dim=True)


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
        fail(str(exc))
    if as_json:
        echo(json.dumps([{"name": t.name, "file_name": t.file_name, "title": t.title, "sheet": t.sheet,
                           "page": t.page, "rows": t.row_count, "doc_id": t.doc_id, "groups": list(t.groups),
                           "columns": [{"name": c.name, "label": c.label, "type": c.type, "unit": c.unit}
                                       for c in t.columns[1:]]} for t in infos], indent=2))
        return
    if not infos:
        echo("no tables visible (ingest CSV, XLSX or documents with tables first)")
    for t in infos:
        where = ", ".join(p for p in (f"sheet {t.sheet}" if t.sheet else "", f"p. {t.page}" if t.page else "") if p)
        echo(f"{t.name}  ({t.file_name}{', ' + where if where else ''}; {t.row_count:,} rows; groups "
              f"{', '.join(t.groups)})", bold=True)
        if t.title:
            echo(f"    {t.title}")
        echo("    " + ", ".join(f"{c.name} {c.type}" + (f" [{c.unit}]" if c.unit else "") for c in t.columns[1:]))


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

    # One question per process: evaluating every table's SQL start ahead would only hold the model from it.
    settings = get_settings().model_copy(update={"chat_keep_table_starts": False})
    if no_llm:
        settings = settings.model_copy(update={"llm_enabled": False})
    flt = _parse_filters(filters or [])
    user = _acting_user(as_user, groups)
    final = None
    streamed: list[str] = []
    try:
        chat = ChatPipeline(settings)
        try:
            for event in chat.run(question, user, conversation, flt):
                if event.type == "rewritten" and event.text != " ".join(question.split()) and not as_json:
                    echo(f"(searching for: {event.text})", dim=True, err=True)
                elif event.type == "token" and not as_json:
                    streamed.append(event.text)
                    echo(event.text, nl=False)
                elif event.type == "answer":
                    final = event.answer
        finally:
            chat.close()
    except (ChatInputError, StoreError) as exc:
        fail(str(exc))
    assert final is not None
    if as_json:
        echo(json.dumps({
            "answer": final.text, "abstained": final.abstained, "mode": final.mode, "notice": final.notice,
            "rewritten_query": final.rewritten_query, "conversation_id": final.conversation_id,
            "citations": [{"number": s.number, "id": s.hit.id, "file_name": s.file_name, "location": s.location}
                          for s in final.cited_sources()],
            "computation": final.computation,
            "timings": final.timings,
        }, indent=2, default=str))
        return
    shown = "".join(streamed).strip()

    def words(text: str) -> str:  # markers moved or tidied by the checks do not count as a change
        return re.sub(r"\[\d+\]|\W", "", text)

    if words(final.text) != words(shown):
        # The checks after the stream (figures no source holds, injected instructions) changed the answer: the
        # terminal cannot take back what it printed, so the checked answer follows, marked as such.
        if shown:
            echo("")
            echo("checked answer (replaces the text above):", dim=True)
        echo(final.text, nl=False)
    echo("")
    if final.notice and final.mode != "extractive":
        echo(f"note: {final.notice}", dim=True)
    if final.computation:
        _show_computation(final.computation)
    for source in final.cited_sources():
        echo(source.label(), bold=True)
        snippet = " ".join((source.excerpt or source.hit.text).split())
        echo(f"    {snippet[:240]}{'...' if len(snippet) > 240 else ''}")
    echo(f"conversation: {final.conversation_id} (continue with --conversation)", dim=True, err=True)
