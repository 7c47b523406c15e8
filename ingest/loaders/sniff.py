"""Decide a file's real type from its bytes, not only its extension, and decode text safely."""

from __future__ import annotations

import zipfile
from pathlib import Path

from charset_normalizer import from_bytes

from ingest.loaders.errors import LoadError

TEXT_TYPES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
              ".html": "html", ".htm": "html", ".csv": "csv", ".tsv": "csv"}
BINARY_TYPES = {".pdf": "pdf", ".docx": "docx", ".xlsx": "xlsx", ".xlsm": "xlsx"}
SUPPORTED_SUFFIXES = frozenset(TEXT_TYPES) | frozenset(BINARY_TYPES)


def _zip_kind(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return None
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    return "zip"


def detect_type(path: Path) -> str:
    """The document type of `path`, checked against its content; raises LoadError on a mismatch."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        known = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise LoadError(f"unsupported file type '{suffix or '(none)'}' (supported: {known})")
    with path.open("rb") as fh:
        head = fh.read(8192)
    if not head:
        raise LoadError("empty file")
    expected = BINARY_TYPES.get(suffix) or TEXT_TYPES[suffix]
    if head.startswith(b"%PDF"):
        actual = "pdf"
    elif head.startswith(b"PK\x03\x04"):
        actual = _zip_kind(path) or "zip"
    elif expected in BINARY_TYPES.values():
        actual = "text" if looks_like_text(head) else "binary"
    else:
        actual = expected if looks_like_text(head) else "binary"
    if actual != expected:
        raise LoadError(f"content does not match the '{suffix}' extension (it looks like {actual} data)")
    return expected


def looks_like_text(sample: bytes) -> bool:
    """True when bytes decode as text: no NUL bytes and a confident charset guess."""
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sample's end is still text.
        if exc.start >= len(sample) - 3:
            return True
    best = from_bytes(sample).best()
    if best is None:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in str(best))
    return printable / max(len(str(best)), 1) > 0.95


def read_text(path: Path) -> str:
    """The file decoded as text: UTF-8 (with or without BOM) first, else the detected charset."""
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise LoadError("binary content in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None:
        raise LoadError("cannot detect the text encoding")
    return str(best)
