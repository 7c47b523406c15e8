"""`erag ingest`, `meta`, `stats` and `delete`: what goes into the index, what is in it, taking it out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.output import echo, fail
from erag.settings import Settings, get_settings


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
            echo(result.line(), fg=color, err=result.status == "failed")

    try:
        with IngestPipeline(get_settings(), progress=sys.stderr.isatty()) as pipeline:
            report = pipeline.run(paths, prune=prune, on_result=show)
    except StoreError as exc:
        fail(str(exc))
    echo(report.summary())
    if report.failed:
        echo(f"{len(report.failed)} of {len(report.results)} failed (listed above); the rest is indexed",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


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
        fail(f"{path} does not exist")
    try:
        data = check_metadata({"groups": list(split_groups(groups, where="--groups")),
                               **{k: v for k, v in (("department", department), ("owner", owner)) if v}})
    except AccessError as exc:
        fail(str(exc))
    if path.is_dir():
        target = path / META_FILE
        target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    else:
        target = write_sidecar(path.resolve(), data)
    echo(f"wrote {target}: {json.dumps(data)}; run `erag ingest {path}` to apply it")


def stats() -> None:
    """What is in the index: documents, chunks, size on disk."""
    from index.backends import open_store
    from index.filters import Filter, Match
    from index.store import StoreError
    from index.versions import visible

    settings: Settings = get_settings()
    try:
        with open_store(settings) as store:
            info = store.stats()
            first_chunks = Filter(must=[Match("chunk_index", 0)]) & visible()
            docs = store.facet_all("doc_id", visible())
            by_type = store.facet("doc_type", first_chunks)
            by_dept = store.facet("department", first_chunks)
    except StoreError as exc:
        fail(str(exc))
    where = settings.qdrant_url or str(settings.index_path)
    echo(f"index:      {where} ({store.backend})")
    echo(f"documents:  {len(docs)}")
    echo(f"chunks:     {sum(docs.values())} ({info.points} points, {info.segments} segments)")
    if info.disk_bytes:
        per = info.disk_bytes / max(info.points, 1)
        echo(f"disk:       {info.disk_bytes / 1048576:.1f} MB ({per / 1024:.1f} KB per chunk)")
    if info.extra.get("embedder"):
        echo(f"embedder:   {info.extra['embedder']} ({info.extra.get('dim')}-d), binary codes + float8 copy")
    echo("types:      " + (", ".join(f"{k} {v}" for k, v in sorted(by_type.items())) or "-"))
    echo("department: " + (", ".join(f"{k} {v}" for k, v in sorted(by_dept.items())) or "-"))


def delete(doc: Annotated[str, typer.Argument(help="Document id, file path or unique file name.")]) -> None:
    """Remove a document and all its chunks from the index."""
    from index.store import StoreError
    from ingest.pipeline import IngestPipeline

    try:
        with IngestPipeline(get_settings(), progress=False) as pipeline:
            removed = pipeline.delete(doc)
    except (StoreError, ValueError) as exc:
        fail(str(exc))
    if not removed:
        fail(f"no document matches '{doc}' (see `erag stats`)")
    echo(f"removed {removed} chunks of {doc}")
