"""HTML (and Markdown rendered to HTML): headings, paragraphs and lists as prose; <table> as tables."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pandas as pd
from bs4 import BeautifulSoup, Tag

from erag.schema import Block, LoadedDocument, TableBlock, TextBlock
from ingest.loaders.headings import HeadingTrail
from ingest.loaders.sniff import read_text

_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_PROSE = {"p", "li", "pre", "blockquote", "dd", "dt", "figcaption", "caption"}
_SKIP = {"script", "style", "noscript", "nav", "footer", "header", "form", "svg", "template"}


def _table_frame(table: Tag) -> pd.DataFrame | None:
    try:
        frames = pd.read_html(StringIO(str(table)))
    except ValueError:  # no rows
        return None
    if not frames:
        return None
    frame = frames[0]
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = [" / ".join(dict.fromkeys(str(c) for c in col)) for col in frame.columns]
    return frame.dropna(how="all")


def html_to_blocks(html: str) -> tuple[str, list[Block]]:
    """The page title and its blocks in reading order."""
    soup = BeautifulSoup(html, "lxml")
    for tag in soup.find_all(_SKIP):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    body = soup.body or soup
    blocks: list[Block] = []
    trail = HeadingTrail()
    for element in body.find_all(list(_HEADINGS) + list(_PROSE) + ["table"]):
        if element.find_parent("table") is not None:
            continue  # cells are read with their table
        name = element.name
        if name in _HEADINGS:
            level = _HEADINGS[name]
            trail.push(level, element.get_text(" ", strip=True))
            if not title and level == 1:
                title = trail.path[-1]
            continue
        headings = trail.path
        if name == "table":
            frame = _table_frame(element)
            if frame is not None and len(frame):
                caption = element.find("caption")
                label = caption.get_text(" ", strip=True) if caption else (headings[-1] if headings else "")
                blocks.append(TableBlock(frame=frame, title=label, headings=list(headings)))
            continue
        if name in ("p", "dd", "dt") and element.find_parent("li") is not None:
            continue  # read with its list item
        text = element.get_text(" ", strip=True)
        if text:
            prefix = "- " if name == "li" else ""
            blocks.append(TextBlock(text=prefix + text, headings=list(headings)))
    return title, blocks


def load_html(path: Path, doc_id: str) -> LoadedDocument:
    title, blocks = html_to_blocks(read_text(path))
    return LoadedDocument(doc_id=doc_id, title=title or path.stem, blocks=blocks, doc_type="html")
