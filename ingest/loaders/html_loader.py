"""HTML (and Markdown rendered to HTML): headings, paragraphs and lists as prose; <table> as tables.

Every piece of text is read once, by the innermost block that holds it: a list item gives its own text,
and a list nested in it gives its items as blocks of their own. (Reading each item with all nested lists
below it made text grow with the square of the nesting depth: a 57 KB page became 9 MB of text.)
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pandas as pd
from bs4 import BeautifulSoup, CData, NavigableString, Tag

from erag.schema import Block, LoadedDocument, TableBlock, TextBlock
from ingest.loaders.headings import HeadingTrail
from ingest.loaders.sniff import read_text

_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_PROSE = {"p", "li", "pre", "blockquote", "dd", "dt", "figcaption", "caption"}
_BLOCKS = set(_HEADINGS) | _PROSE | {"table"}
_IN_ITEM = {"p", "dd", "dt"}  # read as part of the list item around them
_SKIP = {"script", "style", "noscript", "nav", "footer", "header", "form", "svg", "template"}
_TEXT_TYPES = (NavigableString, CData)  # what get_text reads: not comments, doctypes or processing instructions
# Cells one table may expand to through colspan/rowspan: `<td colspan=1000 rowspan=65534>` alone made
# pandas build 65 million cells (14 s, gigabytes). A larger table is kept as prose.
MAX_TABLE_CELLS = 2_000_000
_MAX_COLSPAN = 1000  # the HTML standard's own limit


def _span(value: object, limit: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        return 1
    return min(number, limit) if number > 0 else limit  # rowspan=0 spans to the end of the table


def _clamp_spans(table: Tag) -> int:
    """Clamp every rowspan to the rows below its cell, as browsers do, and colspan to 1,000; return the cells
    of the grid the table expands to (an upper bound)."""
    rows = table.find_all("tr")
    width = 0
    for index, row in enumerate(rows):
        row_width = 0
        for cell in row.find_all(["td", "th"], recursive=False):
            cell["rowspan"] = str(_span(cell.get("rowspan", 1), len(rows) - index))
            colspan = _span(cell.get("colspan", 1), _MAX_COLSPAN)
            cell["colspan"] = str(colspan)
            row_width += colspan
        width = max(width, row_width)
    return len(rows) * width


def _table_frame(table: Tag) -> pd.DataFrame | None:
    if _clamp_spans(table) > MAX_TABLE_CELLS:
        return None
    try:
        # lxml explicitly: pandas' fallback flavor needs html5lib, which is not installed.
        frames = pd.read_html(StringIO(str(table)), flavor="lxml")
    except Exception:  # pandas raises many error types on odd tables; the caller keeps their text instead
        return None
    if not frames:
        return None
    frame = frames[0]
    if isinstance(frame.columns, pd.MultiIndex):
        frame.columns = [" / ".join(dict.fromkeys(str(c) for c in col)) for col in frame.columns]
    return frame.dropna(how="all")


def _blocks_and_texts(body: Tag) -> tuple[list[Tag], dict[int, list[str]]]:
    """The block elements of `body` in reading order, and the text strings each one owns.

    One pass over the tree, without recursion (pages nest thousands of levels deep): an element inherits
    its parent's owner and whether it sits in a table or a list item; a string belongs to its parent's owner.
    """
    blocks: list[Tag] = []
    texts: dict[int, list[str]] = {}
    state: dict[int, tuple[Tag | None, bool, bool]] = {id(body): (None, False, False)}  # owner, in table, in li
    for node in body.descendants:
        parent_state = state[id(node.parent)]
        if isinstance(node, Tag):
            owner, in_table, in_item = parent_state
            if node.name in _BLOCKS and not in_table and not (node.name in _IN_ITEM and in_item):
                owner = node
                blocks.append(node)
                texts[id(node)] = []
            state[id(node)] = (owner, in_table or node.name == "table", in_item or node.name == "li")
        elif type(node) in _TEXT_TYPES and parent_state[0] is not None:
            # HTML wraps lines anywhere ("... (internal extension\n4357)."); a browser shows one space, and so do we:
            # a line break kept here becomes a sentence break the chat would tear a phone number from its text.
            piece = node.strip() if parent_state[0].name == "pre" else " ".join(node.split())
            if piece:
                texts[id(parent_state[0])].append(piece)
    return blocks, texts


def html_to_blocks(html: str) -> tuple[str, list[Block]]:
    """The page title and its blocks in reading order."""
    soup = BeautifulSoup(html, "lxml")
    for tag in soup.find_all(_SKIP):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    elements, texts = _blocks_and_texts(soup.body or soup)
    blocks: list[Block] = []
    trail = HeadingTrail()
    for element in elements:
        name, text = element.name, " ".join(texts[id(element)])
        if name in _HEADINGS:
            trail.push(_HEADINGS[name], text)
            if not title and _HEADINGS[name] == 1:
                title = text
            continue
        headings = trail.path
        if name == "table":
            blocks.extend(_table_blocks(element, text, headings))
        elif text:
            blocks.append(TextBlock(text=("- " if name == "li" else "") + text, headings=list(headings)))
    return title, blocks


def _table_blocks(table: Tag, text: str, headings: list[str]) -> list[Block]:
    """The table as a table; when pandas cannot read it (empty, malformed, no data rows), its text as prose."""
    frame = _table_frame(table)
    if frame is not None and len(frame):
        caption = table.find("caption")
        label = caption.get_text(" ", strip=True) if caption else (headings[-1] if headings else "")
        return [TableBlock(frame=frame, title=label, headings=list(headings))]
    return [TextBlock(text=text, headings=list(headings))] if text else []


def load_html(path: Path, doc_id: str) -> LoadedDocument:
    title, blocks = html_to_blocks(read_text(path))
    return LoadedDocument(doc_id=doc_id, title=title or path.stem, blocks=blocks, doc_type="html")
