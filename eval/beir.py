"""Read datasets in BEIR layout (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) as product documents.

Example:
    >>> ds = BeirDataset(Path("../shared/datasets/smoke/scifact_mini"))
    >>> ds.split, len(ds.queries())
    ('train', 50)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from erag.schema import LoadedDocument
from ingest.loaders.beir_corpus import read_corpus

SPLIT_PREFERENCE = ("test", "dev", "train")


class BeirDataset:
    """A BEIR folder: its corpus as documents, its queries, and the relevance judgements of one split."""

    def __init__(self, root: Path, split: str | None = None) -> None:
        self.root = Path(root)
        if not (self.root / "corpus.jsonl").is_file():
            raise FileNotFoundError(f"{self.root} is not a BEIR dataset: corpus.jsonl is missing")
        available = [s for s in SPLIT_PREFERENCE if (self.root / "qrels" / f"{s}.tsv").is_file()]
        available += sorted(p.stem for p in (self.root / "qrels").glob("*.tsv") if p.stem not in available)
        if split is None:
            if not available:
                raise FileNotFoundError(f"{self.root}/qrels has no <split>.tsv file")
            split = available[0]
        elif split not in available:
            raise FileNotFoundError(f"no qrels/{split}.tsv in {self.root} (available: {', '.join(available)})")
        self.split = split
        self.name = self.root.name

    def documents(self) -> Iterator[LoadedDocument]:
        return read_corpus(self.root / "corpus.jsonl")

    def qrels(self) -> dict[str, dict[str, int]]:
        judged: dict[str, dict[str, int]] = {}
        with (self.root / "qrels" / f"{self.split}.tsv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                score = int(row["score"])
                if score > 0:
                    judged.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = score
        return judged

    def queries(self) -> dict[str, str]:
        judged = self.qrels()
        out: dict[str, str] = {}
        with (self.root / "queries.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                if str(row["_id"]) in judged:
                    out[str(row["_id"])] = row["text"]
        return out
