"""Every supported format parses into the right blocks; every bad input fails with a clear reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from erag.schema import TableBlock, TextBlock
from ingest.loaders import FileLoader, LoadError
from ingest.table_chunker import TableChunker

from .conftest import SHARED, write_pdf

loader = FileLoader(max_file_mb=1)


def texts(doc) -> list[str]:
    return [b.text for b in doc.blocks if isinstance(b, TextBlock)]


def tables(doc) -> list[TableBlock]:
    return [b for b in doc.blocks if isinstance(b, TableBlock)]


def test_markdown_keeps_headings_and_tables(corpus: Path) -> None:
    doc = loader.run(corpus / "leave.md")
    assert doc.title == "Parental Leave Policy"
    eligibility = next(b for b in doc.blocks if isinstance(b, TextBlock) and "first day" in b.text)
    assert eligibility.headings == ["Parental Leave Policy", "Eligibility"]
    (table,) = tables(doc)
    assert list(table.frame.columns) == ["Leave type", "Weeks", "Pay"]
    assert table.frame["Leave type"].tolist() == ["Maternity", "Partner"]


def test_html_drops_navigation_and_scripts_and_tracks_heading_levels(corpus: Path) -> None:
    doc = loader.run(corpus / "it.html")
    assert doc.title == "IT Handbook"
    joined = " ".join(texts(doc))
    assert "tracking" not in joined and "Home | About" not in joined
    returns = next(b for b in doc.blocks if isinstance(b, TextBlock) and "Return laptops" in b.text)
    assert returns.headings == ["IT Handbook", "Laptops", "Returns"]  # sibling h3 replaced "Requests"
    (table,) = tables(doc)
    assert table.frame.shape == (2, 2)


def test_html_line_wraps_read_as_a_browser_shows_them(tmp_path: Path) -> None:
    from .conftest import DATA

    doc = loader.run(DATA / "it" / "it_handbook.html")  # the sample handbook wraps "(internal extension\n4357)"
    stolen = next(b.text for b in doc.blocks if isinstance(b, TextBlock) and "Phone lost, stolen" in b.text)
    assert "+44 113 496 0123 (internal extension 4357)." in stolen and "\n" not in stolen
    page = tmp_path / "code.html"
    page.write_text("<html><body><p>Run:</p><pre>erag ingest data/\nerag serve</pre></body></html>")
    assert any("erag ingest data/\nerag serve" in t for t in texts(loader.run(page)))  # <pre> keeps its lines
    assert FileLoader.output_version(page) == 2 and FileLoader.output_version(tmp_path / "a.md") == 1


def test_docx_headings_and_word_tables(corpus: Path) -> None:
    doc = loader.run(corpus / "handbook.docx")
    hours = next(b for b in doc.blocks if isinstance(b, TextBlock) and "Core working hours" in b.text)
    assert hours.headings == ["Employee Handbook", "Working hours"]
    (table,) = tables(doc)
    assert list(table.frame.columns) == ["Years of service", "Days"]
    assert table.frame.values.tolist() == [["0-2", "25"], ["3+", "28"]]


def test_pdf_keeps_page_numbers_and_finds_tables(corpus: Path) -> None:
    doc = loader.run(corpus / "report.pdf")
    pages = {b.page for b in doc.blocks}
    assert pages == {1, 2}
    assert any("third quarter" in t for t in texts(doc))
    outlook = next(b for b in doc.blocks if isinstance(b, TextBlock) and "Toronto" in b.text)
    assert outlook.page == 2
    (table,) = tables(doc)
    assert list(table.frame.columns) == ["Segment", "Revenue"]
    assert table.frame["Segment"].tolist() == ["Consulting", "Platform"]
    # The table's cells are not repeated as prose.
    assert not any("Consulting" in t for t in texts(doc))


def test_xlsx_reads_every_sheet(corpus: Path) -> None:
    doc = loader.run(corpus / "budget.xlsx")
    assert [t.sheet for t in tables(doc)] == ["Summary", "IT detail"]
    assert tables(doc)[1].frame["Item"].tolist() == ["Laptops", "Licences"]


def test_text_paragraphs_and_heading_lines(corpus: Path) -> None:
    doc = loader.run(corpus / "notes.txt")
    assert texts(doc) == ["Lock your screen when you leave your desk.", "Report phishing to IT."]
    assert doc.blocks[0].headings == ["SECURITY"]


def test_csv_ragged_rows_are_padded_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("name,dept\nAda,IT,extra-note\nAlan\nGrace,Finance\n")
    (table,) = tables(loader.run(path))
    assert list(table.frame.columns) == ["name", "dept", "column_3"]
    assert table.frame.values.tolist() == [["Ada", "IT", "extra-note"], ["Alan", "", ""], ["Grace", "Finance", ""]]


def test_csv_in_latin1_and_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "cities.csv"
    path.write_bytes("Stadt;Größe\nMünchen;groß\nKöln;mittel\n".encode("latin-1"))
    (table,) = tables(loader.run(path))
    assert list(table.frame.columns) == ["Stadt", "Größe"]
    assert table.frame["Stadt"].tolist() == ["München", "Köln"]


def test_csv_quoted_line_breaks_and_doubled_quotes(tmp_path: Path) -> None:
    path = tmp_path / "lights.csv"
    path.write_text('Name,"Tower height\nin meters",Note\n'
                    'Los Morrillos,12,"Called ""the lighthouse"" by sailors, since 1882"\n'
                    'Punta Higuero,21,"Restored\nin 1992"\nCabo Rojo,13,Active\n')
    (table,) = tables(loader.run(path))
    assert list(table.frame.columns) == ["Name", "Tower height\nin meters", "Note"]
    assert table.frame.values.tolist() == [
        ["Los Morrillos", "12", 'Called "the lighthouse" by sailors, since 1882'],
        ["Punta Higuero", "21", "Restored\nin 1992"],
        ["Cabo Rojo", "13", "Active"],
    ]
    (piece,) = TableChunker(lambda texts: [len(t.split()) for t in texts]).run(table)
    # In chunk text a line break inside a cell is a space: words are never joined.
    assert piece.text.splitlines()[1] == "| Name | Tower height in meters | Note |"
    assert "| Punta Higuero | 21 | Restored in 1992 |" in piece.text


WTQ = SHARED / "wtq_dev"


@pytest.mark.skipif(not (WTQ / "tables.jsonl").is_file(),
                    reason="the WikiTableQuestions tables (../shared/datasets/wtq_dev) are not on this machine")
@pytest.mark.parametrize("table_id", ["203-609", "203-665"])  # quoted line breaks; 203-609 also has '""'
def test_wtq_tables_parse_to_their_published_cells(table_id: str) -> None:
    with (WTQ / "tables.jsonl").open(encoding="utf-8") as fh:
        gold = next(row for row in map(json.loads, fh) if row["table_id"] == table_id)
    (table,) = tables(loader.run(WTQ / "tables" / f"{table_id}.csv"))
    assert list(table.frame.columns) == gold["header"]
    assert table.frame.values.tolist() == gold["rows"]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("fake.pdf", b"this is plain text pretending to be a PDF\n", "does not match the '.pdf' extension"),
        ("junk.txt", bytes(range(256)) * 40, "looks like binary"),
        ("junk.docx", b"PK\x03\x04" + b"\x00" * 200, "does not match the '.docx' extension"),
        ("archive.xlsx", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "does not match the '.xlsx' extension"),
        ("program.exe", b"MZ\x90\x00", "unsupported file type '.exe'"),
        ("header_only.csv", b"a,b,c\n", "no data rows"),
    ],
)
def test_bad_input_is_refused_with_a_clear_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError, match=reason.replace("(", r"\(").replace(".", r"\.")):
        loader.run(path)


def test_encrypted_pdf_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pdf"
    write_pdf(plain, ["Salary review notes."])
    writer = PdfWriter()
    for page in PdfReader(str(plain)).pages:
        writer.add_page(page)
    writer.encrypt("secret")
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as fh:
        writer.write(fh)
    with pytest.raises(LoadError, match="encrypted PDF"):
        loader.run(locked)


def test_truncated_pdf_is_refused(tmp_path: Path) -> None:
    whole = tmp_path / "whole.pdf"
    write_pdf(whole, ["Some text."])
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(whole.read_bytes()[:300])
    with pytest.raises(LoadError):
        loader.run(broken)


def test_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    path.write_text("word " * 300_000)  # 1.4 MB, limit is 1 MB
    with pytest.raises(LoadError, match=r"over the 1 MB limit"):
        loader.run(path)
