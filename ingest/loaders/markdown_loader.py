"""Markdown, rendered to HTML by markdown-it (CommonMark + tables) and read by the HTML loader."""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt

from erag.schema import LoadedDocument
from ingest.loaders.html_loader import html_to_blocks
from ingest.loaders.sniff import read_text

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def load_markdown(path: Path, doc_id: str) -> LoadedDocument:
    title, blocks = html_to_blocks(f"<html><body>{_MARKDOWN.render(read_text(path))}</body></html>")
    return LoadedDocument(doc_id=doc_id, title=title or path.stem, blocks=blocks, doc_type="markdown")
