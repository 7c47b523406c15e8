"""Word documents: paragraphs with their Heading styles, and Word tables as tables, in body order."""

from __future__ import annotations

import zipfile
from pathlib import Path

import docx
import pandas as pd
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from erag.schema import Block, LoadedDocument, TableBlock, TextBlock
from ingest.loaders.errors import LoadError
from ingest.loaders.headings import HeadingTrail

# Cells one Word table may expand to: python-docx repeats a cell once per grid column it spans, so a 37 KB
# file with gridSpan="50000000" hung the loader. A larger table is kept as prose.
MAX_TABLE_CELLS = 2_000_000


def _heading_level(paragraph: Paragraph) -> int | None:
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    if style == "Title":
        return 1
    if style.startswith("Heading"):
        digits = style.removeprefix("Heading").strip()
        return int(digits) if digits.isdigit() else 1
    return None


def _clamp_spans(table: Table) -> int:
    """Clamp each cell's column span to the table's grid; return the cells of the grid (an upper bound)."""
    width = len(table._tbl.tblGrid.gridCol_lst)
    cells = table._tbl.findall(f"./{qn('w:tr')}/{qn('w:tc')}")
    if not width:  # no grid declared: the widest row of the cells really present
        width = max((sum(1 for _ in row.iterchildren(qn("w:tc"))) for row in table._tbl.tr_lst), default=0)
    for tc in cells:
        if tc.grid_span > max(width, 1):
            tc.grid_span = max(width, 1)
    return len(table._tbl.tr_lst) * width


def _table_text(table: Table) -> str:
    """The text of the cells really present (no span repeated), for a table kept as prose."""
    return " ".join(" ".join(t.text for t in tc.iter(qn("w:t"))) for tc in table._tbl.iter(qn("w:tc"))).strip()


def _table_frame(table: Table) -> pd.DataFrame | None:
    if _clamp_spans(table) > MAX_TABLE_CELLS:
        return None
    rows = [[cell.text.strip() for cell in row.cells] for row in table.rows]
    rows = [row for row in rows if any(row)]
    if len(rows) < 2:
        return None
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    header = [name or f"column_{i + 1}" for i, name in enumerate(rows[0])]
    return pd.DataFrame(rows[1:], columns=header)


def load_docx(path: Path, doc_id: str) -> LoadedDocument:
    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError(f"cannot read Word document: {exc}") from exc
    blocks: list[Block] = []
    trail = HeadingTrail()
    first_heading = ""
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            frame = _table_frame(item)
            headings = trail.path
            if frame is not None:
                blocks.append(TableBlock(frame=frame, title=headings[-1] if headings else "", headings=headings))
            elif text := _table_text(item):  # one row, or too large to expand: its text stays, as prose
                blocks.append(TextBlock(text=text, headings=headings))
            continue
        text = item.text.strip()
        if not text:
            continue
        level = _heading_level(item)
        if level is not None:
            trail.push(level, text)
            first_heading = first_heading or text
            continue
        blocks.append(TextBlock(text=text, headings=trail.path))
    title = (document.core_properties.title or "").strip() or first_heading or path.stem
    return LoadedDocument(doc_id=doc_id, title=title, blocks=blocks, doc_type="docx")
