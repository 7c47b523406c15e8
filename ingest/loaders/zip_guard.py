"""Decompression-bomb check of DOCX/XLSX files (zip containers), read from the zip directory alone.

Example:
    >>> limits = dict(max_unpacked=200 * 2**20, max_ratio=100, max_members=10_000)
    >>> check_zip(Path("data/finance/budget_2026.xlsx"), **limits) is None
    True
    >>> import tempfile, zipfile
    >>> bomb = Path(tempfile.mkdtemp()) / "bomb.docx"
    >>> with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
    ...     archive.writestr("word/document.xml", b"0" * 2**20)
    >>> check_zip(bomb, **limits)
    'unpacks ... times its size, over the limit of 100 (a decompression bomb? ERAG_ZIP_MAX_RATIO)'

Python's zipfile never inflates a member beyond the size its directory declares, so checking the declared
sizes bounds what the loaders will read, without unpacking anything here.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

ZIP_TYPES = frozenset({"docx", "xlsx"})
_MB = 1024 * 1024


def check_zip(path: Path, max_unpacked: int, max_ratio: float, max_members: int) -> str | None:
    """Why a DOCX/XLSX must be refused as a possible decompression bomb, or None when it is fine."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        return f"damaged document container ({exc})"
    if len(members) > max_members:
        return f"holds {len(members):,} parts, over the limit of {max_members:,} (ERAG_ZIP_MAX_MEMBERS)"
    unpacked = sum(m.file_size for m in members)
    if unpacked > max_unpacked:
        return (f"unpacks to {unpacked / _MB:,.0f} MB, over the {max_unpacked / _MB:,.0f} MB limit "
                "(a decompression bomb? ERAG_ZIP_MAX_UNCOMPRESSED_MB)")
    packed = max(path.stat().st_size, 1)
    if unpacked / packed > max_ratio:
        return (f"unpacks {unpacked / packed:,.0f} times its size, over the limit of {max_ratio:g} "
                "(a decompression bomb? ERAG_ZIP_MAX_RATIO)")
    if any(m.flag_bits & 0x1 for m in members):
        return "has encrypted parts"
    return None
