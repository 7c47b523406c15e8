"""Plain text: paragraphs separated by blank lines; short lines in capitals or ending in ':' read as headings."""

from __future__ import annotations

import re
from pathlib import Path

from erag.schema import LoadedDocument, TextBlock
from ingest.loaders.sniff import read_text

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def _is_heading(paragraph: str) -> bool:
    line = paragraph.strip()
    if "\n" in line or len(line) > 80 or len(line) < 3:
        return False
    return (line.isupper() and any(c.isalpha() for c in line)) or (line.endswith(":") and len(line.split()) <= 8)


def text_to_blocks(text: str) -> list[TextBlock]:
    """Blocks of a plain text: one per paragraph, each carrying the latest heading-like line."""
    blocks: list[TextBlock] = []
    heading: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text.replace("\r\n", "\n")):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if _is_heading(paragraph):
            heading = [paragraph.rstrip(":").strip()]
            continue
        blocks.append(TextBlock(text=paragraph, headings=list(heading)))
    return blocks


def load_text(path: Path, doc_id: str) -> LoadedDocument:
    return LoadedDocument(doc_id=doc_id, title=path.stem, blocks=text_to_blocks(read_text(path)), doc_type="text")
