"""CSV and XLSX: every sheet becomes a table; ragged CSV rows are padded, never dropped."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pandas as pd

from erag.schema import LoadedDocument, TableBlock
from ingest.loaders.errors import LoadError
from ingest.loaders.sniff import read_text


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.dropna(how="all").dropna(axis=1, how="all")
    frame.columns = [
        f"column_{i + 1}" if (str(c).startswith("Unnamed:") or str(c).strip() == "") else str(c).strip()
        for i, c in enumerate(frame.columns)
    ]
    return frame.reset_index(drop=True)


def read_csv_frame(text: str, suffix: str = ".csv") -> pd.DataFrame:
    """Parse CSV text with a sniffed delimiter. Pandas drops or rejects ragged rows, and nothing may be
    lost, so rows are read with the csv module and padded to the widest row (extra columns get names)."""
    sample = text[:20000]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if suffix == ".tsv" else csv.excel
    rows = [row for row in csv.reader(text.splitlines(), dialect) if any(cell.strip() for cell in row)]
    if not rows:
        raise LoadError("CSV has no rows")
    width = max(len(row) for row in rows)
    header = rows[0] + [f"column_{i + 1}" for i in range(len(rows[0]), width)]
    body = [row + [""] * (width - len(row)) for row in rows[1:]]
    if not body:
        raise LoadError("CSV has a header but no data rows")
    return _clean(pd.DataFrame(body, columns=header))


def load_csv(path: Path, doc_id: str) -> LoadedDocument:
    frame = read_csv_frame(read_text(path), path.suffix.lower())
    block = TableBlock(frame=frame, title=path.stem.replace("_", " "))
    return LoadedDocument(doc_id=doc_id, title=block.title, blocks=[block], doc_type="csv")


def load_xlsx(path: Path, doc_id: str) -> LoadedDocument:
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
