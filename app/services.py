"""The app process's long-lived parts, one per process and settings: the writer lock and the ingestion service.

Example:
    >>> service = ingestion_service(settings.model_dump_json())    # starts the index writer thread once
    >>> close_all()                                                  # tests and shutdown: stop and release all

On the embedded index the app is the single writer: it takes the writer lock before the chat opens the
index (waiting up to 30 s for a worker that is applying its results with no app around), and keeps it.
The ingestion service writes through the index handle the chat pipeline holds; if that pipeline is
replaced (its cache cleared), the service is restarted on the new handle.
"""

from __future__ import annotations

import threading

from app.chat_page import chat_service, close_services
from erag.settings import Settings
from jobs.service import IngestionService
from jobs.writer import WriterLock

_guard = threading.Lock()
_locks: dict[str, WriterLock] = {}
_services: dict[str, IngestionService] = {}


def writer_lock(settings_json: str) -> WriterLock | None:
    settings = Settings.model_validate_json(settings_json)
    if settings.qdrant_url:
        return None  # a Qdrant server takes writes from every worker itself
    with _guard:
        path = str((settings.home / "writer.lock").resolve())
        if path not in _locks:
            lock = WriterLock(settings.home / "writer.lock")
            if not lock.acquire(timeout=30.0):
                raise RuntimeError(f"another process holds {lock.path}: is a second app running on this index?")
            _locks[path] = lock
        return _locks[path]


def ingestion_service(settings_json: str) -> IngestionService:
    settings = Settings.model_validate_json(settings_json)
    lock = writer_lock(settings_json)
    store = chat_service(settings_json).retriever.store
    with _guard:
        service = _services.get(settings_json)
        if service is not None and service.store is not store:
            service.close()
            service = None
        if service is None:
            service = _services[settings_json] = IngestionService(settings, store, writer_lock=lock)
        return service


def close_all() -> None:
    """Stop the writer threads and workers, release the index and the locks (tests, shutdown)."""
    with _guard:
        for service in _services.values():
            service.close()
        _services.clear()
        close_services()
        for lock in _locks.values():
            lock.release()
        _locks.clear()
