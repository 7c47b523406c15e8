"""Loaders turn a file into a `LoadedDocument` (prose blocks and tables), one loader per format.

Example:
    >>> from ingest.loaders import FileLoader
    >>> doc = FileLoader.from_settings(get_settings()).run(Path("data/hr/parental_leave_policy.md"))
    >>> doc.blocks[0].headings
    ['Parental Leave Policy']

Hostile files cannot hurt a batch: every file that cannot be used fails with a one-line, terminal-safe
LoadError; DOCX/XLSX are checked as decompression bombs before they are parsed, the text one file may expand
to is bounded, and control characters and terminal escape sequences are removed from all loaded text.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from erag.schema import LoadedDocument, TableBlock, TextBlock
from erag.textsafe import printable, strip_controls
from ingest.loaders.docx_loader import load_docx
from ingest.loaders.errors import LoadError
from ingest.loaders.html_loader import load_html
from ingest.loaders.markdown_loader import load_markdown
from ingest.loaders.pdf_loader import load_pdf
from ingest.loaders.sniff import SUPPORTED_SUFFIXES, detect_type, type_of_suffix
from ingest.loaders.table_loader import load_csv, load_xlsx
from ingest.loaders.text_loader import load_text
from ingest.loaders.zip_guard import ZIP_TYPES, check_zip

if TYPE_CHECKING:
    from erag.settings import Settings

__all__ = ["SUPPORTED_SUFFIXES", "FileLoader", "LoadError"]

_LOADERS: dict[str, Callable[[Path, str], LoadedDocument]] = {
    "pdf": load_pdf,
    "docx": load_docx,
    "html": load_html,
    "markdown": load_markdown,
    "text": load_text,
    "csv": load_csv,
    "xlsx": load_xlsx,
}
# Raised when a loader's output for the same bytes changes, so an upgrade re-ingests those files (and only
# those): html 2 reads wrapped lines as a browser shows them.
LOADER_VERSIONS = {"html": 2}
_MB = 1024 * 1024
_COUNT_SLICE = 65_536  # table cells counted between two checks of the text limit
_MAX_MESSAGE = 300  # characters of a LoadError message: parser errors may quote whole lines of the file


class FileLoader:
    """Load any supported file, checking its size, its content against its extension, zip containers
    against decompression bombs, and the size of the text it expands to."""

    def __init__(
        self,
        max_file_mb: float = 50.0,
        max_text_mb: float = 20.0,
        zip_max_uncompressed_mb: float = 200.0,
        zip_max_ratio: float = 100.0,
        zip_max_members: int = 10_000,
    ) -> None:
        for name, value in (("max_file_mb", max_file_mb), ("max_text_mb", max_text_mb),
                            ("zip_max_uncompressed_mb", zip_max_uncompressed_mb), ("zip_max_ratio", zip_max_ratio),
                            ("zip_max_members", zip_max_members)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.max_bytes = int(max_file_mb * _MB)
        self.max_text_mb = max_text_mb
        self.max_text_chars = int(max_text_mb * _MB)
        self.zip_max_unpacked = int(zip_max_uncompressed_mb * _MB)
        self.zip_max_ratio = zip_max_ratio
        self.zip_max_members = zip_max_members

    @classmethod
    def from_settings(cls, settings: Settings) -> FileLoader:
        return cls(
            max_file_mb=settings.max_file_mb,
            max_text_mb=settings.max_text_mb,
            zip_max_uncompressed_mb=settings.zip_max_uncompressed_mb,
            zip_max_ratio=settings.zip_max_ratio,
            zip_max_members=settings.zip_max_members,
        )

    def run(self, path: Path, doc_id: str | None = None) -> LoadedDocument:
        """Parse `path`; raises LoadError with a one-line reason when the file cannot be used."""
        try:
            return self._load(path, doc_id)
        except LoadError as exc:
            raise LoadError(_one_line(str(exc))) from exc
        except Exception as exc:  # a parser's own error on a malformed file: this file fails, never the batch
            raise LoadError(_one_line(f"cannot parse this file ({type(exc).__name__}: {exc})")) from exc

    @staticmethod
    def output_version(path: Path) -> int:
        """The version of what this file's loader makes of it (part of the document version)."""
        return LOADER_VERSIONS.get(type_of_suffix(path.suffix) or "", 1)

    def _load(self, path: Path, doc_id: str | None) -> LoadedDocument:
        if not path.is_file():
            raise LoadError("not a file")
        size = path.stat().st_size
        if size > self.max_bytes:
            raise LoadError(
                f"file is {size / _MB:.1f} MB, over the {self.max_bytes / _MB:g} MB limit (ERAG_MAX_FILE_MB)"
            )
        kind = detect_type(path)
        if kind in ZIP_TYPES:
            problem = check_zip(path, self.zip_max_unpacked, self.zip_max_ratio, self.zip_max_members)
            if problem:
                raise LoadError(problem)
        document = self._parse(kind, path, doc_id or str(path.resolve()))
        self._check_text_size(document)
        _strip_controls(document)
        if not document.blocks:
            raise LoadError("no text found")
        document.source = str(path.resolve())
        document.metadata.setdefault("file_name", path.name)
        return document

    def _parse(self, kind: str, path: Path, doc_id: str) -> LoadedDocument:
        # A table's grid is padded (ragged CSV rows, sparse sheets): each cell becomes at least "| " of chunk
        # text, so its cells are bounded by the text limit before anything is padded.
        if kind == "csv":
            return load_csv(path, doc_id, max_cells=self.max_text_chars)
        if kind == "xlsx":
            return load_xlsx(path, doc_id, max_cells=self.max_text_chars)
        return _LOADERS[kind](path, doc_id)

    def _check_text_size(self, document: LoadedDocument) -> None:
        chars = _text_chars(document, stop_after=self.max_text_chars)
        if chars > self.max_text_chars:
            raise LoadError(
                f"file expands to {chars / _MB:,.1f} MB of text or more, over the limit of "
                f"{self.max_text_mb:g} MB (ERAG_MAX_TEXT_MB)"
            )


def _text_chars(document: LoadedDocument, stop_after: int) -> int:
    """Characters of all text in `document`, counted until past `stop_after` (a huge table is not walked whole)."""
    total = len(document.title)
    for block in document.blocks:
        total += sum(len(h) for h in block.headings)
        if isinstance(block, TextBlock):
            total += len(block.text)
            continue
        total += len(block.title) + sum(len(str(c)) for c in block.frame.columns)
        cells = block.frame.to_numpy(dtype=object).ravel()
        for start in range(0, len(cells), _COUNT_SLICE):
            total += sum(map(len, map(str, cells[start:start + _COUNT_SLICE])))
            if total > stop_after:
                return total
    return total


def _strip_controls(document: LoadedDocument) -> None:
    """Remove control characters and terminal escapes from every text of `document`, in place."""
    document.title = strip_controls(document.title)
    kept = []
    for block in document.blocks:
        block.headings = [strip_controls(h) for h in block.headings]
        if isinstance(block, TextBlock):
            block.text = strip_controls(block.text)
            if not block.text.strip():
                continue
        else:
            _strip_table(block)
        kept.append(block)
    document.blocks = kept


def _strip_table(table: TableBlock) -> None:
    table.title = strip_controls(table.title)
    if table.sheet:
        table.sheet = strip_controls(table.sheet)
    table.frame.columns = [_clean_cell(c) for c in table.frame.columns]
    values = table.frame.to_numpy(dtype=object)
    if not _has_controls(values.ravel()):  # the common case, checked in one pass: no per-column work
        return
    for j in range(values.shape[1]):
        if _has_controls(values[:, j]):
            table.frame.isetitem(j, [_clean_cell(v) for v in values[:, j]])


def _has_controls(cells: Any) -> bool:
    text = "\n".join(v for v in cells if isinstance(v, str))
    return strip_controls(text) != text


def _clean_cell(value: Any) -> Any:
    return strip_controls(value) if isinstance(value, str) else value


def _one_line(message: str) -> str:
    message = printable(message)
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."
