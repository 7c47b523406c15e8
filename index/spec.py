"""The collection layout shared by every backend: vector names, payload fields and their indexes."""

from __future__ import annotations

from erag.schema import ENTITY_FIELDS

DENSE = "dense"
SPARSE = "bm25"
F8_FIELD = "f8"

KEYWORD_FIELDS = [
    "doc_id", "version", "source", "file_name", "title", "doc_type", "kind", "sheet",
    "department", "owner", "groups",
    *[f for f in ENTITY_FIELDS if f != "years"],
]
# `committed` is 0/1, not a bool: qdrant-edge 0.9 turns a Python bool in MatchValue into an integer,
# so a bool field never matches there. Integers behave the same on every backend.
INTEGER_FIELDS = ["page", "chunk_index", "years", "committed"]
INDEXED_FIELDS = frozenset(KEYWORD_FIELDS + INTEGER_FIELDS)

# Fields that hits carry back; the float8 copy is fetched only when rescoring needs it.
HIT_PAYLOAD_EXCLUDE = [F8_FIELD]
