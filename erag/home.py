"""ERAG_HOME and what it holds (index, spool, chat database, uploads, queue) are readable by their owner only.

Example:
    >>> restrict_new_files()                 # once, at process start (CLI, app, workers)
    >>> private_dir(settings.home / "spool")  # every folder the code creates under ERAG_HOME
    >>> private_file(settings.home / "queue.db")

The home holds the company's documents, their chunks and vectors, conversations and the job queue, so on a
shared machine another local user must not read it, nor write the queue or the spool (which workers load).
Folders are made 0700; the umask makes every file created later 0600 whichever library creates it
(SQLite, Qdrant Edge, Streamlit's uploads); `private_file` covers SQLite files for processes that did not
call `restrict_new_files` (library use, tests).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077


def restrict_new_files() -> int:
    """Make files and folders this process (and its children) creates owner-only; returns the previous umask."""
    return os.umask(UMASK)


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current == mode:
        return
    try:
        os.chmod(path, mode)
    except PermissionError as exc:
        # Someone else's folder (e.g. an NFS mount with another owner): refusing to start would not make it
        # private either, so say what to fix and carry on.
        log.warning("cannot make %s owner-only (mode %o, owner uid %s): %s; run `chmod %o %s`",
                    path, current, path.stat().st_uid, exc, mode, path)


def private_dir(path: Path | str) -> Path:
    """Create `path` (and missing parents) owner-only, or tighten an existing folder to 0700; returns it."""
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):  # outermost first: a parent we create is as private as the home itself
        folder.mkdir(mode=DIR_MODE, exist_ok=True)  # exist_ok: another process may have made it meanwhile
        # mkdir's mode passes through the umask, which could have taken owner bits too.
        _tighten(folder, DIR_MODE)
    if path not in missing:
        if not path.is_dir():
            raise NotADirectoryError(f"{path} is not a folder")
        _tighten(path, DIR_MODE)
    return path


def private_file(path: Path | str) -> Path:
    """Create `path` empty and owner-only if missing, or tighten it to 0600; returns it.

    For SQLite databases: an empty file is a valid empty database, and SQLite gives its -wal and -shm
    files the database file's permissions, so all three stay private whatever the umask.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    _tighten(path, FILE_MODE)
    return path
