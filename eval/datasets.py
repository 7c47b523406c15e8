"""Evaluation datasets in BEIR layout, read as product documents together with their gold judgements.

Example:
    >>> ds = EvalDataset(Path("../shared/datasets/smoke/tatqa_mini"))
    >>> ds.split, len(ds.queries()), len(ds.table_paths())
    ('dev', 120, 20)

Layout: `corpus.jsonl` {_id, title, text, ...}, `queries.jsonl` {_id, text}, `qrels/<split>.tsv` with a
header `query-id <gold key> score`. The gold key is usually `corpus-id`. Any other column name (docugami's
`doc-name`) names a corpus field: a retrieved page then counts as the value of that field (the filing it
belongs to). Table sets add `tables/<table_id>.csv`: each table goes through the product's CSV loader as
a real table (document id = table id), and the other corpus lines are ingested as prose.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from erag.schema import LoadedDocument
from ingest.loaders import FileLoader, LoadError
from ingest.loaders.beir_corpus import read_corpus

SPLIT_PREFERENCE = ("test", "dev", "train")
CORPUS_ID = "corpus-id"


class DatasetError(ValueError):
    """The folder is not a usable evaluation dataset; the message says what is missing."""


@dataclass
class Question:
    """A question with reference answers (for answer quality), from `questions.jsonl`."""

    id: str
    text: str
    answers: list[str]
    answer_type: str = ""
    values: list[str] = field(default_factory=list)  # the answer's values one by one (a multi-span answer's spans)
    scale: str = ""  # TAT-QA's scale of a numeric answer ("thousand", "million", "billion", "percent")

    def references(self) -> list[str]:
        """The answers to score text against: each also with its scale word ("230 million"), since TAT-QA's own
        metric scores the scale a prediction states beside its number, and "$230 million" is the right answer to
        a question over a table in $ millions, where "230" alone is not."""
        if self.scale not in ("thousand", "million", "billion"):
            return list(self.answers)
        return [*self.answers, *(f"{a} {self.scale}" for a in self.answers)]


class EvalDataset:
    """A BEIR folder: documents for the product's ingestion, queries and gold of one split, reference answers."""

    def __init__(self, root: Path, split: str | None = None, max_file_mb: float = 50.0) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root} is not a folder")
        for required in ("corpus.jsonl", "queries.jsonl"):
            if not (self.root / required).is_file():
                raise DatasetError(f"{self.root} is not a BEIR dataset: {required} is missing")
        found = sorted(p.stem for p in (self.root / "qrels").glob("*.tsv"))
        available = [s for s in SPLIT_PREFERENCE if s in found] + [s for s in found if s not in SPLIT_PREFERENCE]
        if not available:
            raise DatasetError(f"{self.root}/qrels has no <split>.tsv file")
        if split is None:
            split = available[0]
        elif split not in available:
            raise DatasetError(f"no qrels/{split}.tsv in {self.root} (available: {', '.join(available)})")
        self.split = split
        self.name = self.root.name
        self.loader = FileLoader(max_file_mb)
        self.load_failures: list[str] = []

    # --- gold ----------------------------------------------------------------------------------------
    @cached_property
    def _qrels_rows(self) -> tuple[str, list[dict[str, str]]]:
        with (self.root / "qrels" / f"{self.split}.tsv").open(encoding="utf-8") as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            fields = reader.fieldnames or []
            if len(fields) < 3 or fields[0] != "query-id" or fields[-1] != "score":
                raise DatasetError(f"qrels/{self.split}.tsv header must be 'query-id <gold key> score', got {fields}")
            return fields[1], list(reader)

    @property
    def gold_field(self) -> str | None:
        """The corpus field the gold names (None: the gold names corpus ids)."""
        key = self._qrels_rows[0]
        return None if key == CORPUS_ID else key.replace("-", "_")

    def qrels(self) -> dict[str, dict[str, int]]:
        key, rows = self._qrels_rows
        judged: dict[str, dict[str, int]] = {}
        for row in rows:
            score = int(row["score"])
            if score > 0:
                judged.setdefault(str(row["query-id"]), {})[str(row[key])] = score
        return {qid: judged[qid] for qid in sorted(judged)}

    @cached_property
    def _corpus(self) -> list[dict[str, Any]]:
        with (self.root / "corpus.jsonl").open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    @cached_property
    def gold_units(self) -> dict[str, str]:
        """Document id -> the unit the gold names: itself, or its value of the gold field (page -> filing)."""
        field = self.gold_field
        if field is None:
            return {}
        missing = [row["_id"] for row in self._corpus if field not in row]
        if missing:
            raise DatasetError(f"qrels name '{field}' but corpus line {missing[0]} has no such field")
        return {str(row["_id"]): str(row[field]) for row in self._corpus}

    def gold_unit(self, doc_id: str) -> str:
        return self.gold_units.get(doc_id, doc_id)

    def doc_ids_of(self, units: set[str]) -> list[str]:
        """Document ids whose gold unit is in `units` (e.g. every page of a gold filing)."""
        if self.gold_field is None:
            return sorted(units)
        return sorted(doc for doc, unit in self.gold_units.items() if unit in units)

    def queries(self) -> dict[str, str]:
        """Judged queries of the split, sorted by id."""
        judged = self.qrels()
        out: dict[str, str] = {}
        with (self.root / "queries.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    if str(row["_id"]) in judged:
                        out[str(row["_id"])] = str(row["text"])
        if not out:
            raise DatasetError(f"no query of queries.jsonl has judgements in qrels/{self.split}.tsv")
        return {qid: out[qid] for qid in sorted(out)}

    # --- documents -----------------------------------------------------------------------------------
    def table_paths(self) -> list[Path]:
        folder = self.root / "tables"
        return sorted(folder.glob("*.csv")) if folder.is_dir() else []

    def documents(self) -> Iterator[LoadedDocument]:
        """What the product ingests: each table CSV as a real table, then every other corpus line as prose.

        A table's corpus line holds the same cells as text (not ingested twice) and its title: the page a
        WikiTableQuestions table comes from ("Leinster Intermediate Club Football Championship"), which its
        questions rarely repeat but need ("which team won previous to crettyard?"). The table takes that title;
        the file name is an id (tbl_<uuid>, 204-772), never a title a person gave it.
        """
        titles = {str(row["_id"]): str(row.get("title") or "").strip() for row in self._corpus}
        tables = set()
        for path in self.table_paths():
            tables.add(path.stem)
            try:
                document = self.loader.run(path, doc_id=path.stem)
            except LoadError as exc:
                self.load_failures.append(f"{path.name}: {exc}")
                continue
            title = titles.get(path.stem, "")
            document.title = title
            for block in document.blocks:
                block.title = title
            document.metadata["dataset"] = self.name
            yield document
        for document in read_corpus(self.root / "corpus.jsonl"):
            if document.doc_id not in tables:
                yield document

    def passages(self) -> list[tuple[str, str]]:
        """(document id, text) of every corpus line, title first: the plain text a peer stack indexes."""
        out = []
        for row in self._corpus:
            parts = ((row.get("title") or "").strip(), (row.get("text") or "").strip())
            text = "\n".join(part for part in parts if part)
            if text:
                out.append((str(row["_id"]), text))
        return out

    # --- reference answers ---------------------------------------------------------------------------
    def questions(self) -> dict[str, Question]:
        """Questions of the split with reference answers; empty when the dataset has none."""
        path = self.root / "questions.jsonl"
        if not path.is_file():
            return {}
        judged = self.qrels()
        out: dict[str, Question] = {}
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                qid = str(row.get("_id", ""))
                answer = row.get("answer")
                if qid not in judged or answer in (None, "", []):
                    continue
                answer_type = str(row.get("answer_type") or "")
                answers = [str(a) for a in answer] if isinstance(answer, list) else [str(answer)]
                values = list(answers)
                if answer_type == "multi-span":  # every span is needed: one reference holding all of them
                    answers = [" ".join(answers)]
                out[qid] = Question(qid, str(row.get("question") or row.get("text") or ""), answers, answer_type,
                                    values, str(row.get("scale") or ""))
        return {qid: out[qid] for qid in sorted(out)}
