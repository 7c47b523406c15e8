"""PDF: text per page (page numbers kept) and the tables pdfplumber finds, kept as tables."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pdfplumber
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from erag.schema import Block, LoadedDocument, TableBlock
from ingest.loaders.errors import LoadError
from ingest.loaders.text_loader import text_to_blocks

logging.getLogger("pdfminer").setLevel(logging.ERROR)


def _check_readable(path: Path) -> str:
    """Fail fast with a clear reason on encrypted or broken files; return the PDF's title."""
    try:
        reader = PdfReader(str(path))
        # Many "encrypted" PDFs only restrict printing and open with an empty password.
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("encrypted PDF (password required)")
        if len(reader.pages) == 0:
            raise LoadError("PDF has no pages")
        meta = reader.metadata
        return str(meta.title).strip() if meta and meta.title else ""
    except PdfReadError as exc:
        raise LoadError(f"damaged PDF: {exc}") from exc


def _frame(rows: list[list[str | None]]) -> pd.DataFrame | None:
    rows = [[(cell or "").replace("\n", " ").strip() for cell in row] for row in rows]
    rows = [row for row in rows if any(row)]
    if len(rows) < 2 or max(len(r) for r in rows) < 2:
        return None
    header = [name or f"column_{i + 1}" for i, name in enumerate(rows[0])]
    return pd.DataFrame(rows[1:], columns=header)


def load_pdf(path: Path, doc_id: str) -> LoadedDocument:
    title = _check_readable(path)
    blocks: list[Block] = []
    try:
        with pdfplumber.open(str(path)) as pdf:
            for number, page in enumerate(pdf.pages, start=1):
                tables = page.find_tables()
                boxes = [t.bbox for t in tables]

                def outside_tables(obj: dict, boxes: list = boxes) -> bool:
                    x, y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
                    return not any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)

                prose_page = page.filter(outside_tables) if boxes else page
                text = prose_page.extract_text() or ""
                for block in text_to_blocks(text):
                    block.page = number
                    blocks.append(block)
                for table in tables:
                    frame = _frame(table.extract())
                    if frame is not None:
                        label = f"{title or path.stem}, page {number}"
                        blocks.append(TableBlock(frame=frame, title=label, page=number))
    except LoadError:
        raise
    except Exception as exc:  # pdfminer raises many private error types on malformed files
        raise LoadError(f"cannot parse PDF: {exc}") from exc
    if not blocks:
        raise LoadError("no extractable text in PDF (scanned images need OCR, which is not supported)")
    return LoadedDocument(doc_id=doc_id, title=title or path.stem, blocks=blocks, doc_type="pdf")
