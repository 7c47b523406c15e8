"""Corpora in BEIR layout (a folder with corpus.jsonl and qrels/): one document per JSON line.

Example:
    >>> is_beir_dataset(Path("../shared/datasets/smoke/scifact_mini"))
    True
    >>> next(read_corpus(Path("../shared/datasets/smoke/scifact_mini/corpus.jsonl"))).doc_id
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from erag.schema import LoadedDocument, TextBlock
from ingest.loaders.errors import LoadError


def is_beir_dataset(folder: Path) -> bool:
    return (folder / "corpus.jsonl").is_file() and (folder / "qrels").is_dir()


def read_corpus(path: Path) -> Iterator[LoadedDocument]:
    """Documents of a corpus.jsonl ({_id, title, text}); lines without text are skipped."""
    name = path.parent.name
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                doc_id = str(row["_id"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise LoadError(f"{path}:{number}: not a BEIR corpus line ({exc})") from exc
            text = (row.get("text") or "").strip()
            title = (row.get("title") or "").strip()
            if not text and not title:
                continue
            yield LoadedDocument(
                doc_id=doc_id,
                title=title,
                blocks=[TextBlock(text=text or title)],
                source=str(path.resolve()),
                doc_type="beir",
                metadata={"file_name": doc_id, "dataset": name},
            )
