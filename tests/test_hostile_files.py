"""Hostile files cannot hurt the batch: each one fails with a clear one-line LoadError, or loads and chunks
within bounded time and size with its good content kept. Every file is built here, in the test."""

from __future__ import annotations

import base64
import random
import re
import time
import zipfile
from pathlib import Path

import pytest

from erag.embedder import Embedder
from erag.schema import TableBlock, TextBlock
from erag.textsafe import break_long_runs, printable, strip_controls
from ingest.chunker import DocumentChunker
from ingest.loaders import FileLoader, LoadError
from ingest.prose_chunker import SemanticChunker
from ingest.table_chunker import MAX_CELL_CHARS, TableChunker

from .conftest import make_settings, write_docx, write_xlsx

loader = FileLoader()
MB = 1024 * 1024


@pytest.fixture(scope="module")
def chunker(fast_embedder: Embedder) -> DocumentChunker:
    """The pipeline's chunker, with the fast model's WordPiece tokenizer (the default embedder's kind)."""
    prose = SemanticChunker(fast_embedder.tokenizer, fast_embedder.run, max_tokens=256, min_tokens=48)
    return DocumentChunker(prose, TableChunker(prose.count_tokens, max_tokens=256))


def chunk(chunker: DocumentChunker, path: Path) -> tuple[list, float]:
    started = time.perf_counter()
    document = loader.run(path)
    chunker.warm([document])
    chunks = chunker.run(document)
    chunker.prose.forget()
    return chunks, time.perf_counter() - started


def add_bomb(path: Path, member: str, megabytes: int) -> None:
    """Append a highly compressible member (zeros) to a real DOCX/XLSX, written in pieces to stay small in RAM."""
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive, archive.open(member, "w") as fh:
        for _ in range(megabytes):
            fh.write(bytes(MB))


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "\x1b" not in message and len(message) <= 300
    return message


# --- decompression bombs, on the command-line path too ------------------------------------------------


@pytest.mark.parametrize(("name", "write", "member"), [
    ("handbook.docx", write_docx, "word/media/image1.png"),
    ("budget.xlsx", write_xlsx, "xl/media/image1.png"),
])
def test_zip_bombs_are_refused_before_parsing(tmp_path: Path, name: str, write, member: str) -> None:
    path = tmp_path / name
    write(path)
    loader.run(path)  # the real document loads
    add_bomb(path, member, 30)  # 30 MB of zeros: about 30 KB packed
    started = time.perf_counter()
    with pytest.raises(LoadError) as exc:
        loader.run(path)
    assert re.search(r"unpacks [\d,]+ times its size, over the limit of 100 .*ERAG_ZIP_MAX_RATIO", one_line(exc))
    assert time.perf_counter() - started < 1.0  # read from the zip directory, nothing unpacked
    with pytest.raises(LoadError, match=r"unpacks to 3\d MB, over the 20 MB limit .*ERAG_ZIP_MAX_UNCOMPRESSED_MB"):
        FileLoader(zip_max_uncompressed_mb=20).run(path)


def test_zip_limits_come_from_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "handbook.docx"
    write_docx(path)
    settings = make_settings(tmp_path / "home", zip_max_members=3, max_text_mb=1)
    with pytest.raises(LoadError, match=r"holds \d+ parts, over the limit of 3 \(ERAG_ZIP_MAX_MEMBERS\)"):
        FileLoader.from_settings(settings).run(path)
    assert FileLoader.from_settings(settings).max_text_chars == MB


# --- text blow-up -----------------------------------------------------------------------------------------


def nested_lists(depth: int) -> str:
    item = "Item {}: " + "lorem ipsum dolor sit amet " * 6
    lists = "".join(f"<ul><li>{item.format(i)}" for i in range(depth)) + "</li></ul>" * depth
    return f"<html><body><h1>Lists</h1><p>Opening paragraph.</p>{lists}<p>Closing paragraph.</p></body></html>"


def test_nested_lists_are_read_once_each(tmp_path: Path, chunker: DocumentChunker) -> None:
    path = tmp_path / "nested.html"
    path.write_text(nested_lists(300))  # 57 KB: this became 7.8 MB of text and took 4 minutes to chunk
    assert 55_000 < path.stat().st_size < 60_000
    chunks, seconds = chunk(chunker, path)
    document = loader.run(path)
    text = " ".join(b.text for b in document.blocks if isinstance(b, TextBlock))
    assert len(text) < path.stat().st_size  # linear, not quadratic
    assert all(text.count(f"Item {i}: ") == 1 for i in range(300))  # every item once, as its own block
    assert text.startswith("Opening paragraph.") and text.endswith("Closing paragraph.")
    assert seconds < 10 and len(chunks) < 150


def test_text_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.html"
    path.write_text(nested_lists(300))
    with pytest.raises(LoadError) as exc:
        FileLoader(max_text_mb=0.02).run(path)
    assert re.fullmatch(r"file expands to 0\.\d MB of text or more, over the limit of 0\.02 MB \(ERAG_MAX_TEXT_MB\)",
                        one_line(exc))


# --- one giant token ----------------------------------------------------------------------------------------


def test_a_3_mb_single_token_file_chunks_in_bounded_time_and_size(tmp_path: Path, chunker: DocumentChunker) -> None:
    path = tmp_path / "one_token.txt"
    url = "https://intranet.example.com/policies/" + "travel/" * 40 + "expenses.pdf"  # 327 characters
    path.write_text(f"See {url} first.\n\n" + "A" * 3_000_000)
    chunks, seconds = chunk(chunker, path)
    assert seconds < 15  # 1.7 s measured; the whole text was one 3 MB chunk, which spaCy's NER refused
    assert max(len(c.text) for c in chunks) <= chunker.max_chars < 1_000_000  # spaCy's nlp.max_length
    assert sum(c.text.count("A") for c in chunks) == 3_000_000  # nothing lost
    assert url in chunks[0].text  # URLs are kept whole


def test_a_base64_blob_is_split_quickly_and_kept(tmp_path: Path, chunker: DocumentChunker) -> None:
    blob = base64.b64encode(random.Random(7).randbytes(750_000)).decode()  # 1 MB, no whitespace
    path = tmp_path / "blob.txt"
    path.write_text(blob)
    chunks, seconds = chunk(chunker, path)
    assert seconds < 15  # 3 MB took 302 s (splitting fell back to single characters); 10 s now
    assert max(len(c.text) for c in chunks) <= chunker.max_chars
    assert max(chunker.prose.count_tokens([c.text for c in chunks])) <= 256
    assert "".join("".join(c.text.split("\n", 1)[1].split()) for c in chunks) == blob


def test_break_long_runs_keeps_words_and_urls() -> None:
    assert break_long_runs("plain words stay as they are") == "plain words stay as they are"
    url = "https://example.com/" + "a/" * 500
    assert break_long_runs(f"see {url} now") == f"see {url} now"
    assert [len(w) for w in break_long_runs("x" * 450).split()] == [200, 200, 50]


# --- wide tables ------------------------------------------------------------------------------------------------


def test_a_10000_column_csv_is_cut_into_column_groups(tmp_path: Path, chunker: DocumentChunker) -> None:
    width = 10_000
    lines = [",".join(["id", *(f"q{j}" for j in range(1, width))])]
    lines += [",".join([f"resp{i}", *(f"a{i}x{j}" for j in range(1, width))]) for i in range(3)]
    path = tmp_path / "survey.csv"
    path.write_text("\n".join(lines) + "\n")
    chunks, seconds = chunk(chunker, path)
    assert seconds < 20  # 3 chunks of 258 KB (151,314 tokens) before
    tokens = chunker.prose.count_tokens([c.text for c in chunks])
    assert max(tokens) <= 256 and max(len(c.text) for c in chunks) <= chunker.max_chars
    seen = set()
    for piece in chunks:
        caption, header = piece.text.splitlines()[:2]
        span = re.fullmatch(r"Table: survey \(columns ([\d,]+)-([\d,]+) of 10,000\)", caption)
        assert span, caption
        first, last = (int(number.replace(",", "")) for number in span.groups())
        columns, rows = piece.table["columns"], piece.table["rows"]
        assert columns == ["id", *(f"q{j - 1}" for j in range(first, last + 1))]
        assert header == "| " + " | ".join(columns) + " |"
        assert all(len(row) == len(columns) and row[0] == f"resp{n}"
                   for n, row in enumerate(rows, start=piece.row_start - 1))
        seen.update(cell for row in rows for cell in row[1:])
    assert seen == {f"a{i}x{j}" for i in range(3) for j in range(1, width)}  # every cell, kept


def test_an_overlong_cell_is_cut_with_an_ellipsis(tmp_path: Path, chunker: DocumentChunker) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("name,note\nAda," + "word " * 2000 + "\n")
    (piece,) = chunk(chunker, path)[0]
    note = piece.table["rows"][0][1]
    assert len(note) == MAX_CELL_CHARS and note.endswith("…") and note.startswith("word word")


# --- tables whose grid explodes: spans, sparse sheets, ragged rows -------------------------------------------


def test_html_spans_cannot_explode_a_table(tmp_path: Path) -> None:
    path = tmp_path / "spans.html"
    path.write_text("<p>Keep me.</p><table><tr><th>a</th><th>b</th></tr>"
                    '<tr><td colspan="100000" rowspan="65534">x</td></tr></table>'  # 65 million cells in pandas
                    '<table><tr><th>team</th><th>score</th></tr><tr><td rowspan="2">Reds</td><td>3</td></tr>'
                    "<tr><td>5</td></tr></table>")
    started = time.perf_counter()
    document = loader.run(path)
    assert time.perf_counter() - started < 2  # 14 s and gigabytes before
    assert document.blocks[0].text == "Keep me."
    assert document.blocks[1].frame.shape == (1, 1000)  # rowspan clamped to the table, colspan to 1,000
    assert document.blocks[2].frame.values.tolist() == [["Reds", 3], ["Reds", 5]]  # real spans still work


def test_word_spans_cannot_explode_a_table(tmp_path: Path) -> None:
    import docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    document = docx.Document()
    document.add_paragraph("Keep me.")
    table = document.add_table(rows=2, cols=2)
    for cell, text in zip(table._cells, ["Team", "Score", "Reds", "3"], strict=True):
        cell.text = text
    span = OxmlElement("w:gridSpan")
    span.set(qn("w:val"), "50000000")  # python-docx repeated the cell 50 million times: the loader hung
    table.cell(1, 0)._tc.get_or_add_tcPr().append(span)
    document.add_table(rows=1, cols=2).cell(0, 1).text = "one-row table text"
    path = tmp_path / "spans.docx"
    document.save(str(path))
    started = time.perf_counter()
    blocks = loader.run(path).blocks
    assert time.perf_counter() - started < 2
    assert blocks[0].text == "Keep me." and blocks[1].frame.shape[0] == 1
    assert blocks[2].text == "one-row table text"  # a table pandas cannot frame keeps its text


def test_a_sparse_sheet_bomb_is_refused(tmp_path: Path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["name", "value"])
    sheet.append(["Ada", 1])
    sheet.cell(row=1_048_576, column=16_384, value="far away")  # pandas pads 17 billion cells: out of memory
    path = tmp_path / "sparse.xlsx"
    workbook.save(path)
    assert path.stat().st_size < 10_000
    with pytest.raises(LoadError) as exc:
        loader.run(path)
    assert one_line(exc) == ("sheet 'Sheet' spans 1,048,576 rows x 16,384 columns, over the limit of 20,971,520 "
                             "cells (ERAG_MAX_TEXT_MB)")


def test_one_very_long_csv_row_cannot_multiply_the_others(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("name,value\n" + "Ada,1\n" * 100_000 + "x," * 500_000 + "x\n")  # 1.6 MB: 5 x 10^10 cells
    with pytest.raises(LoadError) as exc:
        loader.run(path)
    assert re.fullmatch(r"CSV rows padded to the widest row \(500,001 columns\) make [\d,]+ cells, over the limit "
                        r"of 20,971,520 \(ERAG_MAX_TEXT_MB\)", one_line(exc))


# --- tables pandas cannot read ------------------------------------------------------------------------------


def test_an_empty_or_unreadable_table_keeps_the_prose(tmp_path: Path) -> None:
    path = tmp_path / "policy.html"
    path.write_text("<html><body><h1>Policy</h1><p>Keep this prose.</p><table></table>"
                    "<table><tr><th>Only a header</th></tr></table><p>And this.</p></body></html>")
    document = loader.run(path)
    assert [b.text for b in document.blocks] == ["Keep this prose.", "Only a header", "And this."]


# --- encodings ------------------------------------------------------------------------------------------------------


def test_mixed_utf8_and_cp1252_lines_keep_every_character(tmp_path: Path) -> None:
    path = tmp_path / "staff.csv"
    path.write_bytes("name,city\nZoë Müller,Zürich\n".encode() + "Renée Dubois,Genève\n".encode("cp1252")
                     + "Søren Ærø,København\n".encode())
    (table,) = [b for b in loader.run(path).blocks if isinstance(b, TableBlock)]
    assert table.frame.values.tolist() == [["Zoë Müller", "Zürich"], ["Renée Dubois", "Genève"],
                                           ["Søren Ærø", "København"]]


def test_lines_in_an_undetectable_encoding_are_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    good = "".join(f"row {i},value {i}\n" for i in range(1, 1000)).encode()  # UTF-8, past the 8 KB type check
    path.write_bytes(b"name,value\n" + good + bytes(range(0x80, 0x100)) * 3 + b"\n" + "café,1\n".encode())
    with pytest.raises(LoadError) as exc:
        loader.run(path)
    assert one_line(exc) == "cannot detect the text encoding of line 1001 (not UTF-8)"


# --- control characters ----------------------------------------------------------------------------------------------


def test_strip_controls_removes_escapes_and_controls_but_keeps_words() -> None:
    assert strip_controls("Total:\x1b[1;31m 12\x1b[0m EUR\x07") == "Total: 12 EUR"
    assert strip_controls("title\x1b]0;pwned\x07 kept\x1b(B ok") == "title kept ok"
    assert strip_controls("tab\tand\nnewline\r\nstay\rput\x0cpage") == "tab\tand\nnewline\nstay\nput\npage"
    assert strip_controls("NUL\x00BS\x08DEL\x7fC1\x9b") == "NULBSDELC1"
    assert strip_controls("Genève naïve 東京 🙂") == "Genève naïve 東京 🙂"


def test_printable_escapes_every_control_and_bidi_override() -> None:
    assert printable("a\x1b[31mb.txt") == "a\\x1b[31mb.txt"
    assert printable("two\nlines\tand\x9b") == "two\\nlines\\tand\\x9b"
    assert printable("invoice\u202eexe.pdf") == "invoice\\u202eexe.pdf"
    assert printable("Genève 東京.txt") == "Genève 東京.txt"


def test_control_characters_never_reach_the_index_or_the_terminal(tmp_path: Path) -> None:
    path = tmp_path / "a\x1b[31mb.txt"
    path.write_text("REPORT\x1b[2J:\n\nRevenue \x1b[1mgrew\x1b[0m\x07 by 4%.\x08\n")
    document = loader.run(path)
    assert document.title == "ab"
    assert [(b.text, b.headings) for b in document.blocks] == [("Revenue grew by 4%.", ["REPORT"])]
    assert printable(path.name) == "a\\x1b[31mb.txt"
    odd = tmp_path / "notes.t\x1b[31m\nx"
    odd.write_text("text")
    with pytest.raises(LoadError) as exc:
        loader.run(odd)
    assert one_line(exc).startswith("unsupported file type '.t\\x1b[31m\\nx'")


def test_a_parser_crash_is_one_load_error_line(tmp_path: Path) -> None:
    path = tmp_path / "budget.xlsx"
    write_xlsx(path)
    damaged = tmp_path / "damaged.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, b"<workbook><sheets><sheet" if item.filename == "xl/workbook.xml" else data)
    with pytest.raises(LoadError) as exc:
        loader.run(damaged)
    assert one_line(exc)


def test_every_chunk_is_bounded_for_a_mix_of_hostile_blocks(tmp_path: Path, chunker: DocumentChunker) -> None:
    path = tmp_path / "mix.html"
    path.write_text("<h1>" + "H" * 5000 + "</h1><p>" + "word " * 3000 + "</p><p>" + "B" * 50_000 + "</p>"
                    + "<table><tr><th>k</th><th>v</th></tr><tr><td>1</td><td>" + "C" * 9000 + "</td></tr></table>")
    chunks, _ = chunk(chunker, path)
    assert max(len(c.text) for c in chunks) <= chunker.max_chars
    assert all(len(h) <= 300 for c in chunks for h in c.headings)


# --- a whole batch through the command line ------------------------------------------------------------------------


def test_a_hostile_batch_next_to_a_good_file_through_erag_ingest(tmp_path: Path) -> None:
    """`erag ingest` on a folder of hostile files beside a good one, in its own process: each bad file is one
    escaped line, the good files are indexed and searchable, the process stays under 2 GB and finishes in
    bounded time, and the exit status says that something failed."""
    import json
    import os
    import subprocess
    import sys

    from .conftest import FAST_MODEL, REPO

    batch = tmp_path / "batch"
    batch.mkdir()
    for name, write, member in (("bomb.docx", write_docx, "word/media/image1.png"),
                                ("bomb.xlsx", write_xlsx, "xl/media/image1.png")):
        write(batch / name)
        add_bomb(batch / name, member, 30)
    (batch / "nested.html").write_text(nested_lists(300))
    # Smaller than the single-file cases above (1 MB, 10,000 columns): every chunk of the batch is embedded, and
    # those cases already bound chunking at full size; here it is the mix in one process that is under test.
    (batch / "token.txt").write_text("A" * 200_000)
    (batch / "wide.csv").write_text(",".join(f"c{i}" for i in range(2_000)) + "\n"
                                    + "\n".join(",".join(str(r * i) for i in range(2_000)) for r in range(3)) + "\n")
    (batch / "empty_table.html").write_text("<html><body><h1>Visitors</h1><table></table>"
                                            "<p>Visitors sign in at the Leeds reception desk.</p></body></html>")
    (batch / "mixed.csv").write_bytes("name,city\nZoë,Zürich\n".encode() + "Renée,Genève\n".encode("cp1252"))
    (batch / "evil\x1b[31mname.txt").write_text("Harmless text.\x1b]0;owned\x07 Red \x1b[31mtext.")
    (batch / "fake.docx").write_text("not a word document")
    (batch / "canteen.md").write_text("# Canteen\n\nThe staff canteen serves breakfast from 07:30 to 09:30.\n")
    env = {**os.environ, "ERAG_HOME": str(tmp_path / "home"), "ERAG_EMBEDDER": FAST_MODEL, "HF_HUB_OFFLINE": "1"}
    erag = [sys.executable, "-m", "cli"]
    # A fresh parent whose only child is the ingest: RUSAGE_CHILDREN of this test process would also count every
    # process earlier tests started.
    measure = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "code = subprocess.call(sys.argv[1:]); "
               "print(f'{time.perf_counter() - t:.1f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}', "
               "file=sys.stderr); sys.exit(code)")
    run = subprocess.run([sys.executable, "-c", measure, *erag, "ingest", str(batch)], capture_output=True,
                         text=True, env=env, cwd=REPO, timeout=600)
    seconds, peak_kib = run.stderr.splitlines()[-1].split()
    seconds, peak_mb = float(seconds), int(peak_kib) / 1024
    print(f"hostile batch: {seconds:.1f} s, peak RSS {peak_mb:.0f} MB")  # the closing note's figures (pytest -s)
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines() + run.stderr.splitlines()
    failed = [line for line in lines if line.startswith("failed")]
    assert {re.split(r"[ :]+", line)[1].rsplit("/", 1)[-1] for line in failed} == {
        "bomb.docx", "bomb.xlsx", "fake.docx"}, lines
    assert not any("\x1b" in line for line in lines)  # the escape in a file name is shown escaped
    assert any("evil\\x1b[31mname.txt" in line for line in lines)
    assert re.search(r"done: 7 added, 3 failed", run.stdout) and "3 of 10 failed" in run.stderr
    assert "Traceback" not in run.stderr
    assert seconds < 300 and peak_mb < 2048, (seconds, peak_mb)
    found = subprocess.run([*erag, "search", "When does the canteen serve breakfast?", "--json", "-k", "3"],
                           capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert json.loads(found.stdout)[0]["file_name"] == "canteen.md"
    reception = subprocess.run([*erag, "search", "Where do visitors sign in?", "--json", "-k", "3"],
                               capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert json.loads(reception.stdout)[0]["file_name"] == "empty_table.html"
