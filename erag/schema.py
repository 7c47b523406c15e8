"""Plain data passed between the pipeline stages: loaded documents, chunks, and search hits."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# spaCy labels grouped into the payload fields that retrieval filters on.
LABEL_FIELDS = {
    "PERSON": "people",
    "ORG": "orgs",
    "GPE": "places",
    "LOC": "places",
    "FAC": "places",
    "DATE": "dates",
    "MONEY": "money",
    "DEPARTMENT": "departments",
    "PRODUCT": "products",
    "LAW": "laws",
    "EVENT": "events",
}
ENTITY_FIELDS = [*sorted(set(LABEL_FIELDS.values())), "years"]

_POINT_NAMESPACE = uuid.UUID("5f1c1c56-0a55-4a57-9d7e-1f2b4c8e9a10")


@dataclass
class TextBlock:
    """A run of prose with the headings above it and the page it sits on."""

    text: str
    headings: list[str] = field(default_factory=list)
    page: int | None = None


@dataclass
class TableBlock:
    """A table as parsed: header row in `frame.columns`, one data row per frame row."""

    frame: pd.DataFrame
    title: str = ""
    page: int | None = None
    sheet: str | None = None
    headings: list[str] = field(default_factory=list)


Block = TextBlock | TableBlock


@dataclass
class LoadedDocument:
    """One source document after parsing, before chunking."""

    doc_id: str
    title: str
    blocks: list[Block]
    source: str = ""
    doc_type: str = "text"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Chunk:
    """A retrievable unit: the text that is embedded, plus where it came from."""

    doc_id: str
    index: int
    text: str
    kind: str = "text"  # "text" or "table"
    page: int | None = None
    sheet: str | None = None
    row_start: int | None = None
    row_end: int | None = None
    headings: list[str] = field(default_factory=list)
    table: dict[str, Any] | None = None  # {"columns": [...], "rows": [[...], ...]} for rendering
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


def point_id(doc_id: str, version: str, index: int) -> str:
    """Deterministic point id: re-running an interrupted ingest overwrites instead of duplicating."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{doc_id}\x00{version}\x00{index}"))


@dataclass
class Hit:
    """A search result with the scores that produced its rank."""

    id: str
    score: float
    payload: dict[str, Any]
    scores: dict[str, float] = field(default_factory=dict)
    matched: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return str(self.payload.get("text", ""))

    @property
    def doc_id(self) -> str:
        return str(self.payload.get("doc_id", ""))

    def location(self) -> str:
        """Human-readable position inside the source: page, sheet and rows."""
        p = self.payload
        parts = []
        if p.get("page") is not None:
            parts.append(f"p. {p['page']}")
        if p.get("sheet"):
            parts.append(f"sheet {p['sheet']}")
        if p.get("row_start") is not None:
            parts.append(f"rows {p['row_start']}-{p['row_end']}")
        return ", ".join(parts)
