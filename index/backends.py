"""Which store backend the settings ask for: the one module that knows both (they build on `index.store`).

Example:
    >>> with open_store(get_settings()) as store:     # Edge under ./.erag, or a server when ERAG_QDRANT_URL is set
    ...     store.stats().points
"""

from __future__ import annotations

from erag.settings import Settings
from index.store import Store


def open_store(settings: Settings) -> Store:
    """The embedded Qdrant Edge shard by default; qdrant-client when `qdrant_url` is set."""
    if settings.qdrant_url:
        from index.server_store import ServerStore

        return ServerStore(settings)
    from index.edge_store import EdgeStore

    return EdgeStore(settings)
