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
# `slot` and `live` (index/versions.py: which version of a document readers see) are 0/1 integers, not bools:
# qdrant-edge 0.9 turns a Python bool in MatchValue into an integer, so a bool field never matches there.
INTEGER_FIELDS = ["page", "chunk_index", "years", "slot", "live"]
INDEXED_FIELDS = frozenset(KEYWORD_FIELDS + INTEGER_FIELDS)

# Fields that hits carry back; the float8 copy is fetched only when rescoring needs it.
HIT_PAYLOAD_EXCLUDE = [F8_FIELD]
