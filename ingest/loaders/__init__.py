"""Loaders turn a file into a `LoadedDocument` (prose blocks and tables), one loader per format.

Example:
    >>> from ingest.loaders import FileLoader
    >>> doc = FileLoader(max_file_mb=50).run(Path("data/hr/parental_leave_policy.md"))
    >>> doc.blocks[0].headings
    ['Parental Leave Policy']
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from erag.schema import LoadedDocument
from ingest.loaders.docx_loader import load_docx
from ingest.loaders.errors import LoadError
from ingest.loaders.html_loader import load_html
from ingest.loaders.markdown_loader import load_markdown
from ingest.loaders.pdf_loader import load_pdf
from ingest.loaders.sniff import SUPPORTED_SUFFIXES, detect_type
from ingest.loaders.table_loader import load_csv, load_xlsx
from ingest.loaders.text_loader import load_text

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


class FileLoader:
    """Load any supported file, checking its size and that its content matches its extension."""

    def __init__(self, max_file_mb: float = 50.0) -> None:
        if max_file_mb <= 0:
            raise ValueError(f"max_file_mb must be positive, got {max_file_mb}")
        self.max_bytes = int(max_file_mb * 1024 * 1024)

    def run(self, path: Path, doc_id: str | None = None) -> LoadedDocument:
        """Parse `path`; raises LoadError with a one-line reason when the file cannot be used."""
        if not path.is_file():
            raise LoadError("not a file")
        size = path.stat().st_size
        if size > self.max_bytes:
            raise LoadError(
                f"file is {size / 1048576:.1f} MB, over the {self.max_bytes / 1048576:g} MB limit (ERAG_MAX_FILE_MB)"
            )
        kind = detect_type(path)
        doc_id = doc_id or str(path.resolve())
        document = _LOADERS[kind](path, doc_id)
        if not document.blocks:
            raise LoadError("no text found")
        document.source = str(path.resolve())
        document.metadata.setdefault("file_name", path.name)
        return document
