"""CSV and XLSX: every sheet becomes a table; ragged CSV rows are padded, never dropped."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd

from erag.schema import LoadedDocument, TableBlock
from ingest.loaders.errors import LoadError
from ingest.loaders.sniff import read_text

# Default bound on the cells of one table's grid, empty ones included; each cell becomes at least "| " of chunk
# text, so FileLoader passes its text limit (ERAG_MAX_TEXT_MB, in characters).
MAX_CELLS = 20 * 1024 * 1024


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.dropna(how="all").dropna(axis=1, how="all")
    frame.columns = [
        f"column_{i + 1}" if (str(c).startswith("Unnamed:") or str(c).strip() == "") else str(c).strip()
        for i, c in enumerate(frame.columns)
    ]
    return frame.reset_index(drop=True)


def read_csv_frame(text: str, suffix: str = ".csv", max_cells: int = MAX_CELLS) -> pd.DataFrame:
    """Parse CSV text with a sniffed delimiter. Pandas drops or rejects ragged rows, and nothing may be
    lost, so rows are read with the csv module and padded to the widest row (extra columns get names).

    The whole text goes to one reader, so a quoted cell may hold line breaks (they stay in the cell). Rows
    padded to the widest row may not make more than `max_cells` cells (one very long row would otherwise
    multiply every other row).
    """
    dialect = _dialect(text[:20000], suffix)
    # The sniffer reports doublequote=False whenever its sample shows no doubled quote; a '""' further
    # down would then end the cell early. Doubling is the CSV standard unless an escape character is used.
    doublequote = not getattr(dialect, "escapechar", None)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), dialect, doublequote=doublequote)
        rows = [row for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:  # e.g. an unclosed quote that runs past the field size limit
        raise LoadError(f"cannot parse CSV: {exc}") from exc
    if not rows:
        raise LoadError("CSV has no rows")
    width = max(len(row) for row in rows)
    if len(rows) * width > max_cells:
        raise LoadError(f"CSV rows padded to the widest row ({width:,} columns) make {len(rows) * width:,} cells, "
                        f"over the limit of {max_cells:,} (ERAG_MAX_TEXT_MB)")
    header = rows[0] + [f"column_{i + 1}" for i in range(len(rows[0]), width)]
    body = [row + [""] * (width - len(row)) for row in rows[1:]]
    if not body:
        raise LoadError("CSV has a header but no data rows")
    return _clean(pd.DataFrame(body, columns=header))


def _dialect(sample: str, suffix: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel_tab if suffix == ".tsv" else csv.excel


def load_csv(path: Path, doc_id: str, max_cells: int = MAX_CELLS) -> LoadedDocument:
    frame = read_csv_frame(read_text(path), path.suffix.lower(), max_cells)
    block = TableBlock(frame=frame, title=path.stem.replace("_", " "))
    return LoadedDocument(doc_id=doc_id, title=block.title, blocks=[block], doc_type="csv")


def check_sheet_sizes(path: Path, max_cells: int) -> str | None:
    """Why a workbook must be refused because a sheet's grid is too large, or None when it is fine.

    A 5 KB workbook with one cell at XFD1048576 makes pandas pad 17 billion cells (memory runs out); the
    real extent is measured from the sheet's rows (a streaming scan; the declared dimension can lie).
    """
    try:
        workbook = openpyxl.load_workbook(path, read_only=True)
    except Exception:  # an unreadable workbook is reported by the loader itself
        return None
    try:
        for sheet in workbook.worksheets:
            sheet.reset_dimensions()
            sheet.calculate_dimension(force=True)
            rows, columns = sheet.max_row or 0, sheet.max_column or 0
            if rows * columns > max_cells:
                return (f"sheet '{sheet.title}' spans {rows:,} rows x {columns:,} columns, over the limit of "
                        f"{max_cells:,} cells (ERAG_MAX_TEXT_MB)")
    finally:
        workbook.close()
    return None


def load_xlsx(path: Path, doc_id: str, max_cells: int = MAX_CELLS) -> LoadedDocument:
    problem = check_sheet_sizes(path, max_cells)
    if problem:
        raise LoadError(problem)
    try:
        sheets = pd.read_excel(path, sheet_name=None, engine="openpyxl", dtype=object)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise LoadError(f"cannot read workbook: {exc}") from exc
    title = path.stem.replace("_", " ")
    blocks = []
    for name, frame in sheets.items():
        frame = _clean(frame)
        if len(frame):
            blocks.append(TableBlock(frame=frame, title=f"{title} - {name}", sheet=str(name)))
    if not blocks:
        raise LoadError("workbook has no non-empty sheets")
    return LoadedDocument(doc_id=doc_id, title=title, blocks=blocks, doc_type="xlsx")
