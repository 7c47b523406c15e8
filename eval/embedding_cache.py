"""Embeddings computed once per model and dataset: an Embedder wrapper with the same `run(texts)`.

Example:
    >>> cache = EmbeddingCache(Embedder.from_settings(settings), Path(".erag/eval/scifact/embeddings.sqlite"))
    >>> vectors = cache.run(["a chunk", "another chunk"])     # embedded once, read from disk afterwards
    >>> IngestPipeline(settings, embedder=cache)               # every collection of the dataset reuses them

Vectors are keyed by the model name and precision and the SHA-256 of the text, in one SQLite file
(standard library, safe against a killed run: a batch is committed whole or not at all). The name
does not say everything about how vectors were computed (a new inference backend may keep it), so a
probe sentence is embedded on open and compared with the one stored beside the vectors: when they
differ the cache is emptied and `reset` says so, and the caller rebuilds what it indexed with them.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PROBE = "Evaluation probe: how many days of parental leave do employees receive?"
_PROBE_MIN_COSINE = 0.9999  # the same backend reproduces its vector to ~1e-7; another one moves it by ~1e-3
_BATCH = 500  # SQLite binds at most a few thousand parameters per statement


def model_key(embedder: Any) -> str:
    precision = getattr(embedder, "precision", None)
    return f"{embedder.name}@{precision}" if precision else str(embedder.name)


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Wrap an embedder: `run(texts)` embeds only texts it has not seen, and keeps every vector on disk."""

    def __init__(self, embedder: Any, path: Path) -> None:
        if not hasattr(embedder, "run") or not hasattr(embedder, "name"):
            raise TypeError(f"EmbeddingCache wraps an embedder with .run(texts) and .name, got {type(embedder)}")
        self.embedder = embedder
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, key TEXT, vector BLOB, PRIMARY KEY (model, key))"
        )
        self.db.execute("CREATE TABLE IF NOT EXISTS probes (model TEXT PRIMARY KEY, vector BLOB)")
        self.hits = 0
        self.misses = 0
        self.reset = self._check_probe()

    # The pipeline reads the embedder's name, dim, tokenizer and max_tokens; pass them all through.
    def __getattr__(self, attr: str) -> Any:
        if attr == "embedder":
            raise AttributeError(attr)
        return getattr(self.embedder, attr)

    @property
    def name(self) -> str:
        return str(self.embedder.name)

    @property
    def key(self) -> str:
        """What the vectors are keyed by: the model name, and its precision when the embedder has one
        (int8 and float32 vectors of one model differ, and either may be wanted again)."""
        return model_key(self.embedder)

    @property
    def dim(self) -> int:
        return int(self.embedder.dim)

    def _check_probe(self) -> bool:
        probe = np.asarray(self.embedder.run([PROBE])[0], dtype=np.float32)
        row = self.db.execute("SELECT vector FROM probes WHERE model = ?", (self.key,)).fetchone()
        stale = False
        if row is not None:
            stored = np.frombuffer(row[0], dtype=np.float32)
            stale = stored.shape != probe.shape or float(stored @ probe) < _PROBE_MIN_COSINE
        with self.db:
            if stale:
                self.db.execute("DELETE FROM vectors WHERE model = ?", (self.key,))
            self.db.execute("INSERT OR REPLACE INTO probes VALUES (?, ?)", (self.key, probe.tobytes()))
        return stale

    def __bool__(self) -> bool:  # callers write `embedder or default`: an empty cache is still an embedder
        return True

    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM vectors WHERE model = ?", (self.key,)).fetchone()[0])

    def run(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _BATCH):
            part = unique[start : start + _BATCH]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({marks})", (self.key, *part)
            )
            found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        missing = [k for k in unique if k not in found]
        if missing:
            first_text = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
            batch = [first_text[k] for k in missing]
            raw = self.embedder.run(batch, show_progress=True) if show_progress else self.embedder.run(batch)
            vectors = np.asarray(raw, dtype=np.float32)
            with self.db:
                self.db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                    [(self.key, k, v.tobytes()) for k, v in zip(missing, vectors, strict=True)],
                )
            found.update(zip(missing, vectors, strict=True))
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def close(self) -> None:
        self.db.close()
