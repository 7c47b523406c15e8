"""Chunks keep table headers on every row group and cut prose where the topic changes, within the token bound."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from erag.embedder import Embedder
from erag.schema import LoadedDocument, TableBlock, TextBlock
from ingest.chunker import DocumentChunker
from ingest.prose_chunker import SemanticChunker
from ingest.table_chunker import TableChunker

CATS = (
    "Cats are small domesticated carnivorous mammals. They groom their fur with rough tongues. "
    "Kittens learn to hunt by watching their mothers. A cat sleeps for up to sixteen hours a day. "
    "Many cats enjoy chasing toy mice and climbing scratching posts. "
)
TAX = (
    "Corporate income tax is levied on company profits. The filing deadline is twelve months after "
    "the end of the accounting period. Late payment incurs interest and penalties from the tax authority. "
    "Deductible expenses reduce the taxable profit of the company. "
)


@pytest.fixture(scope="module")
def prose(fast_embedder: Embedder) -> SemanticChunker:
    return SemanticChunker(fast_embedder.tokenizer, fast_embedder.run, max_tokens=120, min_tokens=20)


def test_semantic_chunker_cuts_at_the_topic_change(prose: SemanticChunker) -> None:
    pieces = prose.run([TextBlock(text=CATS * 2 + TAX * 2, headings=["Mixed"])])
    assert len(pieces) >= 2
    assert all(p.tokens <= 120 for p in pieces)
    assert all(prose.count_tokens([p.body])[0] <= 125 for p in pieces)
    # No piece mixes the two topics: the cut falls exactly at the change.
    for piece in pieces:
        assert not ("cat" in piece.body.lower() and "tax" in piece.body.lower()), piece.body
    assert all(p.headings == ["Mixed"] for p in pieces)


def test_small_paragraphs_of_one_section_are_merged(prose: SemanticChunker) -> None:
    blocks = [TextBlock(text=f"Rule {i}: badges must be worn.", headings=["Security"]) for i in range(4)]
    (piece,) = prose.run(blocks)
    assert piece.body.count("badges must be worn") == 4


def test_an_overlong_sentence_is_split_within_the_bound(prose: SemanticChunker) -> None:
    sentence = " ".join(f"word{i}" for i in range(600)) + "."
    pieces = prose.run([TextBlock(text=sentence)])
    assert len(pieces) > 1
    assert all(prose.count_tokens([p.body])[0] <= 120 for p in pieces)
    assert " ".join(p.body for p in pieces).split() == sentence.split()  # nothing lost


def test_table_chunks_repeat_title_and_header_and_never_split_rows(fast_embedder: Embedder) -> None:
    frame = pd.DataFrame(
        {"employee": [f"Person {i}" for i in range(60)], "department": ["HR", "IT"] * 30, "office": ["Leeds"] * 60}
    )
    counter = SemanticChunker(fast_embedder.tokenizer, None).count_tokens
    pieces = TableChunker(counter, max_tokens=80).run(TableBlock(frame=frame, title="Staff list", sheet="2026"))
    assert len(pieces) > 3
    covered = []
    for piece in pieces:
        lines = piece.text.splitlines()
        assert lines[0] == "Table: Staff list (sheet 2026)"
        assert lines[1] == "| employee | department | office |"
        assert counter([piece.text])[0] <= 80
        assert len(lines) - 3 == piece.row_end - piece.row_start + 1 == len(piece.rows)
        covered += list(range(piece.row_start, piece.row_end + 1))
    assert covered == list(range(1, 61))  # every row exactly once, in order


def test_small_table_stays_whole_with_clean_cells(fast_embedder: Embedder) -> None:
    frame = pd.DataFrame({"item": ["Laptop", None], "cost": [1200.0, 99.5], "note": ["a|b", "x"]})
    counter = SemanticChunker(fast_embedder.tokenizer, None).count_tokens
    (piece,) = TableChunker(counter, max_tokens=256).run(TableBlock(frame=frame, title="Costs"))
    assert piece.rows == [["Laptop", "1200", "a/b"], ["", "99.5", "x"]]
    assert (piece.row_start, piece.row_end) == (1, 2)


def test_rows_too_wide_for_a_chunk_are_cut_into_column_groups_that_repeat_the_key() -> None:
    frame = pd.DataFrame({f"q{j}": [f"r{i}c{j}" for i in range(4)] for j in range(40)})
    frame.insert(0, "id", [f"row{i}" for i in range(4)])
    words = lambda texts: [len(t.split()) for t in texts]  # noqa: E731 - a token = a word, to see the arithmetic
    pieces = TableChunker(words, max_tokens=64).run(TableBlock(frame=frame, title="Survey"))
    assert len(pieces) > 3 and all(n <= 64 for n in words([p.text for p in pieces]))
    cells = []
    for piece in pieces:
        lines = piece.text.splitlines()
        assert re.fullmatch(r"Table: Survey \((columns \d+-\d+|column \d+) of 41\)", lines[0])
        assert piece.columns[0] == "id" and lines[1] == "| " + " | ".join(piece.columns) + " |"
        assert [row[0] for row in piece.rows] == [f"row{i - 1}" for i in range(piece.row_start, piece.row_end + 1)]
        cells += [cell for row in piece.rows for cell in row[1:]]
    assert sorted(cells) == sorted(f"r{i}c{j}" for i in range(4) for j in range(40))  # every cell exactly once


def test_a_table_that_fits_keeps_every_column_in_every_piece(fast_embedder: Embedder) -> None:
    frame = pd.DataFrame({"name": [f"Person {i}" for i in range(40)], "note": ["x " * 30] * 40, "grade": ["B"] * 40})
    counter = SemanticChunker(fast_embedder.tokenizer, None).count_tokens
    pieces = TableChunker(counter, max_tokens=128).run(TableBlock(frame=frame, title="Grades"))
    assert len(pieces) > 1 and all(p.columns == ["name", "note", "grade"] for p in pieces)
    assert all(p.text.splitlines()[0] == "Table: Grades" for p in pieces)


def test_document_chunker_prefixes_headings_and_keeps_order(fast_embedder: Embedder) -> None:
    prose = SemanticChunker(fast_embedder.tokenizer, fast_embedder.run, max_tokens=200, min_tokens=20)
    chunker = DocumentChunker(prose, TableChunker(prose.count_tokens, 200))
    doc = LoadedDocument(
        doc_id="d1",
        title="Handbook",
        blocks=[
            TextBlock("Core hours are ten to four.", headings=["Handbook", "Hours"], page=1),
            TableBlock(frame=pd.DataFrame({"years": ["0-2"], "days": ["25"]}), title="Holidays", page=1),
            TextBlock("Expenses are paid monthly.", headings=["Handbook", "Expenses"], page=2),
        ],
    )
    chunks = chunker.run(doc)
    assert [c.kind for c in chunks] == ["text", "table", "text"]
    assert [c.index for c in chunks] == [0, 1, 2]
    assert chunks[0].text.startswith("Handbook > Hours\n")
    assert chunks[2].page == 2 and chunks[2].text.startswith("Handbook > Expenses\n")
    assert chunks[1].table == {"columns": ["years", "days"], "rows": [["0-2", "25"]]}
