"""Document versions in the index: which chunks a reader sees, and how a new version replaces the old one.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from erag.schema import point_id
    >>> from erag.settings import Settings
    >>> from index.backends import open_store
    >>> from index.store import DenseQuery, HybridQuery, IndexPoint
    >>> store = open_store(Settings(home=Path(tempfile.mkdtemp())))
    >>> store.ensure_collection(dim=4)
    >>> def chunks(version, texts):  # one point per chunk, as ingestion writes them
    ...     return [IndexPoint(point_id("hr/leave.md", version, i), np.ones(4, np.float32), [i], [1.0],
    ...                        {"doc_id": "hr/leave.md", "version": version, "text": t}) for i, t in enumerate(texts)]
    >>> version_state(store, "hr/leave.md", "v1")          # 'added' | 'updated' | 'unchanged' | 'repaired'
    'added'
    >>> write_version(store, "hr/leave.md", "v1", chunks("v1", ["Partners get 2 weeks.", "Paid in full."]))
    >>> version_state(store, "hr/leave.md", "v1"), version_state(store, "hr/leave.md", "v2")
    ('unchanged', 'updated')
    >>> write_version(store, "hr/leave.md", "v2", chunks("v2", ["Partners get 6 weeks."]))  # replaces v1 at once
    >>> query = HybridQuery(dense=DenseQuery(np.ones(4, np.float32), limit=5), filter=visible())
    >>> [hit.payload["text"] for hit in store.query(query)]  # readers (visible() & their groups) see v2 only
    ['Partners get 6 weeks.']
    >>> store.close()

Why slots: a reader must never see two versions of a document, nor none. Marking the new chunks visible
and then deleting the old ones (two updates) leaves a window, which a kill can stretch until the next
ingest, in which both are searchable. Here every chunk carries `slot` (0 or 1, fixed when written; a new
version takes the slot its predecessor does not use) and `live` (the document's current slot, the same on
every chunk of the document). A chunk is visible when `slot == live`. The switch is one `set_payload` of
`live` over all chunks of the document: in that single update the old version's chunks stop matching and
the new version's start to. Old chunks are deleted afterwards, at leisure; killed before that, they stay
invisible and the next ingest removes them ("repaired").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from index.filters import Filter, Match, doc_filter
from index.store import IndexPoint, Store

SLOT, LIVE = "slot", "live"
VersionState = Literal["added", "updated", "unchanged", "repaired"]
Step = Literal["written", "switched"]


def visible() -> Filter:
    """The reader's filter: chunks of the current version of their document (`slot == live`)."""
    return Filter(must=[Filter(should=[Filter(must=[Match(SLOT, s), Match(LIVE, s)]) for s in (0, 1)])])


def hidden() -> Filter:
    """Chunks no reader sees: a replaced version, or a version whose switch never happened."""
    return Filter(must_not=[visible()])


def version_state(store: Store, doc_id: str, version: str) -> VersionState:
    """What ingesting this version does: 'added' (new document), 'updated' (another version is current),
    'unchanged' (this version is current and alone) or 'repaired' (this version is current and a killed run left
    older chunks behind: they are removed here). Used by ingestion and by the index writer that applies
    worker results (jobs/writer.py)."""
    versions = store.facet("version", doc_filter(doc_id))
    if not versions:
        return "added"
    if version in versions and store.count(doc_filter(doc_id, version=version) & visible()) == versions[version]:
        if len(versions) == 1:
            return "unchanged"
        store.delete(Filter(must=[Match("doc_id", doc_id)], must_not=[Match("version", version)]))
        return "repaired"
    return "updated"


def live_slot(store: Store, doc_id: str) -> int | None:
    """The slot of the document's current version, or None when no version of it is visible."""
    for hit in store.scroll(doc_filter(doc_id) & visible(), fields=[SLOT], batch=1):
        return int(hit.payload[SLOT])
    return None


def write_version(
    store: Store,
    doc_id: str,
    version: str,
    points: Sequence[IndexPoint],
    batch: int = 64,
    on_step: Callable[[Step], None] | None = None,
) -> None:
    """Write `points` (every chunk of one version of `doc_id`) and make them replace any other version at once.

    Safe to run again after a kill at any point: point ids derive from (document, version, chunk), so a re-run
    overwrites its own leftovers, and leftovers of other unfinished versions are removed first. `on_step` is told
    'written' (new chunks stored, still hidden) and 'switched' (new version visible, old one hidden, not yet
    deleted): the tests' fault-injection hook for a kill inside the protocol.
    """
    if not points:
        raise ValueError(f"version {version} of {doc_id} has no chunks to write")
    for point in points:
        if point.payload.get("doc_id") != doc_id or point.payload.get("version") != version:
            raise ValueError(f"a chunk of {point.payload.get('doc_id')} / {point.payload.get('version')} was given "
                             f"as version {version} of {doc_id}")
    current = live_slot(store, doc_id)
    slot = 0 if current is None else 1 - current
    # Hidden chunks of other versions are leftovers of killed runs (or of the version this one replaces, when a
    # kill came after the switch): a reader never sees them, and they would collide with the new slot.
    store.delete(doc_filter(doc_id) & hidden() & Filter(must_not=[Match("version", version)]))
    # Until the switch the new chunks point `live` at the current slot (or at the other one, for a document
    # that has no visible version yet), so they stay hidden.
    pending_live = current if current is not None else 1 - slot
    stamped = [IndexPoint(p.id, p.dense, p.sparse_indices, p.sparse_values,
                          {**p.payload, SLOT: slot, LIVE: pending_live}) for p in points]
    for start in range(0, len(stamped), batch):
        store.upsert(stamped[start : start + batch])
    if on_step:
        on_step("written")
    store.set_payload({LIVE: slot}, doc_filter(doc_id))  # the switch: one update over every version's chunks
    if on_step:
        on_step("switched")
    store.delete(Filter(must=[Match("doc_id", doc_id)], must_not=[Match("version", version)]))
