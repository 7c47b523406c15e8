"""Where a file's metadata (access groups, department, owner) comes from: the file's place, never the command.

Example:
    >>> resolver = MetadataResolver(default_groups=["all"], roots=[Path("data")])
    >>> resolver.run(Path("data/hr_restricted/salaries.csv"))  # from data/hr_restricted/_meta.json
    {'department': 'HR', 'owner': 'Tomasz Kowalczyk', 'groups': ['hr']}

Rules (README, "Access control"):
- A file is taken as what it is: a symbolic link is resolved, and the target's path is the document id and the
  target's folders give its metadata. So a link in a public folder to a restricted file keeps the target's groups.
- Metadata comes from the `_meta.json` files above the file, read all the way up (to the document root that holds
  the file, `ERAG_DOC_ROOTS`, or else to the top of the file system), wherever the ingest started: ingesting
  `data/hr/` or one file inside it gives the same groups as ingesting `data/`. A nearer file overrides a key.
- A file's own sidecar `.<name>.meta.json` (written by the upload page beside each uploaded file) is nearest of all.
- Every sidecar is checked: a JSON object with only `department`, `owner` and `groups`, and `groups` a non-empty
  list of valid group names. A misspelled key or an empty list is an error for everything below it (nothing there
  is ingested), never a silent fallback to the default groups.
- With no sidecar at all, the configured default groups apply (`ERAG_DEFAULT_GROUPS`, `all` unless changed).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from erag.access import AccessError, require_groups
from ingest.loaders import LoadError

META_FILE = "_meta.json"
KEYS = ("department", "owner", "groups")


class MetadataError(LoadError):
    """A `_meta.json` (or a file's own sidecar) is unusable; `sidecar` names it, so the batch reports it once."""

    def __init__(self, sidecar: Path, problem: str) -> None:
        super().__init__(f"{problem}; nothing below {sidecar.parent} is ingested until it is fixed")
        self.sidecar = sidecar


def file_sidecar(path: Path) -> Path:
    """The sidecar that holds one file's own metadata (hidden, so folder walks never ingest it)."""
    return path.parent / f".{path.name}.meta.json"


def check_metadata(data: Any, where: str = "metadata") -> dict[str, Any]:
    """Validated metadata: only known keys, text values, and a non-empty list of valid groups."""
    if not isinstance(data, dict):
        raise AccessError(f"{where} must be a JSON object like {{\"groups\": [\"hr\"], \"department\": \"HR\"}}")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise AccessError(f"{where} has unknown key{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(repr(k) for k in unknown)} (allowed: {', '.join(KEYS)})")
    out: dict[str, Any] = {}
    for key in ("department", "owner"):
        if key in data:
            if not isinstance(data[key], str) or not data[key].strip():
                raise AccessError(f"{where}: '{key}' must be a non-empty text")
            out[key] = data[key].strip()
    if "groups" in data:
        out["groups"] = list(require_groups(data["groups"], where=f"{where}: 'groups'"))  # type: ignore[arg-type]
    return out


def read_sidecar(sidecar: Path) -> dict[str, Any]:
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetadataError(sidecar, f"{sidecar} is not valid JSON ({exc})") from exc
    try:
        return check_metadata(data, str(sidecar))
    except AccessError as exc:
        raise MetadataError(sidecar, str(exc)) from exc


def write_sidecar(path: Path, metadata: dict[str, Any]) -> Path:
    """Give one file its own metadata (validated), written atomically beside it; returns the sidecar."""
    clean = check_metadata(metadata, f"metadata of {path.name}")
    sidecar = file_sidecar(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".meta-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(clean, fh, indent=2)
    os.replace(tmp, sidecar)
    return sidecar


class MetadataResolver:
    """Metadata of files by the rules above; sidecars are read once per resolver (one ingest run)."""

    def __init__(self, default_groups: Sequence[str], roots: Sequence[Path] = ()) -> None:
        self.default_groups = list(require_groups(list(default_groups), where="ERAG_DEFAULT_GROUPS"))  # type: ignore[arg-type]
        self.roots = [Path(r).resolve() for r in roots]
        self._cache: dict[Path, dict[str, Any] | None] = {}

    def _sidecar(self, sidecar: Path) -> dict[str, Any] | None:
        if sidecar not in self._cache:
            self._cache[sidecar] = read_sidecar(sidecar) if sidecar.is_file() else None
        meta = self._cache[sidecar]
        return dict(meta) if meta is not None else None

    def _folders(self, folder: Path) -> list[Path]:
        """The file's folder and those above it, nearest first, up to the document root that holds it."""
        chain = [folder, *folder.parents]
        for root in self.roots:
            if folder == root or root in folder.parents:
                return chain[: chain.index(root) + 1]
        return chain

    def run(self, path: Path) -> dict[str, Any]:
        """The metadata of the file at `path` (resolved first); raises MetadataError for a bad sidecar."""
        real = Path(path).resolve()
        sidecars = [file_sidecar(real)] + [folder / META_FILE for folder in self._folders(real.parent)]
        merged: dict[str, Any] = {}
        for sidecar in reversed(sidecars):  # farthest first, so nearer ones override
            meta = self._sidecar(sidecar)
            if meta:
                merged.update(meta)
        merged.setdefault("groups", list(self.default_groups))
        return merged
