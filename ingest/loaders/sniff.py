"""Decide a file's real type from its bytes, not only its extension, and decode text safely."""

from __future__ import annotations

import codecs
import zipfile
from pathlib import Path

from charset_normalizer import from_bytes

from ingest.loaders.errors import LoadError

TEXT_TYPES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
              ".html": "html", ".htm": "html", ".csv": "csv", ".tsv": "csv"}
BINARY_TYPES = {".pdf": "pdf", ".docx": "docx", ".xlsx": "xlsx", ".xlsm": "xlsx"}
SUPPORTED_SUFFIXES = frozenset(TEXT_TYPES) | frozenset(BINARY_TYPES)
# Charsets where a newline byte can sit inside a character: a file in one cannot mix with UTF-8 line by line.
_NOT_LINE_BASED = ["utf_16", "utf_16_le", "utf_16_be", "utf_32", "utf_32_le", "utf_32_be"]


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


def type_of_suffix(suffix: str) -> str | None:
    """The document type a file name's suffix claims ("html" for ".HTM"), or None for an unsupported suffix."""
    suffix = suffix.lower()
    return BINARY_TYPES.get(suffix) or TEXT_TYPES.get(suffix)


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
    expected = type_of_suffix(suffix)
    assert expected is not None  # checked against SUPPORTED_SUFFIXES above
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
    """The file decoded as text, keeping every line as its author wrote it.

    A UTF-8 file (with or without BOM) is decoded as UTF-8. A file that mixes UTF-8 lines with lines in a
    legacy charset (a cp1252 export appended to a UTF-8 one) is decoded line by line: UTF-8 where the line
    is valid UTF-8, else the charset detected on the other lines, so neither part becomes mojibake. A file
    with no non-ASCII UTF-8 line is decoded whole in its detected charset. Raises LoadError naming the
    lines when their charset cannot be detected.
    """
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise LoadError("binary content in a text file")
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines = data.splitlines(keepends=True)
    utf8 = [_utf8(line) for line in lines]
    if not any(text is not None and not text.isascii() for text in utf8):
        return data.decode(_charset(data, "the file"))
    bad = [i for i, text in enumerate(utf8) if text is None]
    charset = _charset(b"".join(lines[i] for i in bad), _line_numbers(bad))
    return "".join(text if text is not None else lines[i].decode(charset, errors="replace")
                   for i, text in enumerate(utf8))


def _utf8(line: bytes) -> str | None:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _charset(data: bytes, where: str) -> str:
    """The detected charset of `data`. Detection often ties windows-1252 with other code pages on Western text
    (all decode 'é' alike) and then picks by name (cp1250, which reads 'è' as 'č'); cp1252, by far the
    most used legacy charset, wins such ties."""
    matches = from_bytes(data, cp_exclusion=_NOT_LINE_BASED)
    best = matches.best()
    if best is None:
        raise LoadError(f"cannot detect the text encoding of {where}")
    tied = {m.encoding for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)}
    return "cp1252" if "cp1252" in tied else best.encoding


def _line_numbers(indexes: list[int]) -> str:
    shown = ", ".join(str(i + 1) for i in indexes[:5])
    more = f" and {len(indexes) - 5:,} more" if len(indexes) > 5 else ""
    return f"line{'s' if len(indexes) > 1 else ''} {shown}{more} (not UTF-8)"
