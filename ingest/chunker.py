"""Turn a loaded document into chunks: semantic prose pieces and row-group table pieces.

Example:
    >>> chunks = DocumentChunker(prose=SemanticChunker(...), tables=TableChunker(...)).run(document)
    >>> chunks[0].text.splitlines()[0]
    'Parental Leave Policy > Eligibility'
"""

from __future__ import annotations

from erag.schema import Chunk, LoadedDocument, TableBlock, TextBlock
from ingest.prose_chunker import SemanticChunker
from ingest.table_chunker import TableChunker

# Room left in the embedder's window for the title/heading line placed above every prose chunk.
_BREADCRUMB_TOKENS = 32
# Longest title/heading line above a chunk, and longest heading kept in a chunk's payload: a file can make
# a megabyte-long "heading", which every chunk of the document would repeat.
MAX_BREADCRUMB_CHARS = 300


def _shorten(text: str, limit: int = MAX_BREADCRUMB_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def breadcrumb(title: str, headings: list[str]) -> str:
    """'Title > Section > Subsection', without repeating a heading equal to the title (at most 300 characters)."""
    trail = [title] if title else []
    trail += [h for h in headings if h and h != title]
    return _shorten(" > ".join(trail))


class DocumentChunker:
    """Chunk every block of a document, keeping reading order and source positions."""

    def __init__(self, prose: SemanticChunker, tables: TableChunker) -> None:
        self.prose = prose
        self.tables = tables

    @property
    def max_chars(self) -> int:
        """No chunk text is longer than this (what NER and the embedder are given stays bounded)."""
        return max(self.prose.max_chars + MAX_BREADCRUMB_CHARS + 1, self.tables.max_chars)

    @property
    def prose_budget(self) -> int:
        return max(self.prose.max_tokens - _BREADCRUMB_TOKENS, self.prose.min_tokens + 1)

    def warm(self, documents: list[LoadedDocument]) -> None:
        """Prepare the semantic breakpoints of many documents in one embedding batch."""
        blocks = [b for d in documents for b in d.blocks if isinstance(b, TextBlock)]
        self.prose.warm(blocks, self.prose_budget)

    def run(self, document: LoadedDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        pending: list[TextBlock] = []

        def flush_prose() -> None:
            for piece in self.prose.run(pending, budget=self.prose_budget):
                crumb = breadcrumb(document.title, piece.headings)
                text = f"{crumb}\n{piece.body}" if crumb else piece.body
                headings = [_shorten(h) for h in piece.headings]
                chunks.append(Chunk(document.doc_id, len(chunks), text, page=piece.page, headings=headings))
            pending.clear()

        for block in document.blocks:
            if isinstance(block, TextBlock):
                pending.append(block)
                continue
            flush_prose()
            chunks.extend(self._table_chunks(document, block, len(chunks)))
        flush_prose()
        return chunks

    def _table_chunks(self, document: LoadedDocument, table: TableBlock, first_index: int) -> list[Chunk]:
        if table.frame.empty:
            return []
        if not table.title:
            table.title = breadcrumb(document.title, table.headings) or document.title
        return [
            Chunk(
                doc_id=document.doc_id,
                index=first_index + i,
                text=piece.text,
                kind="table",
                page=table.page,
                sheet=table.sheet,
                row_start=piece.row_start,
                row_end=piece.row_end,
                headings=[_shorten(h) for h in table.headings],
                table={"columns": piece.columns, "rows": piece.rows},
            )
            for i, piece in enumerate(self.tables.run(table))
        ]
