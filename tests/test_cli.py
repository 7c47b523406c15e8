"""The `erag` commands as a user runs them: ingest, stats, search (with filters), delete, and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import FAST_MODEL, REPO


def runner(home: Path):
    env = {**os.environ, "ERAG_HOME": str(home), "ERAG_EMBEDDER": FAST_MODEL}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
        )

    return run


@pytest.fixture
def erag(tmp_path: Path):
    return runner(tmp_path / "home")


@pytest.fixture(scope="module")
def erag_with_notes(tmp_path_factory: pytest.TempPathFactory):
    """One ingested note shared by the bad-input cases: none of them changes the index, and each ingest costs a
    process that loads the embedder and spaCy (~7 s)."""
    root = tmp_path_factory.mktemp("cli")
    (root / "notes.txt").write_text("SECURITY:\n\nLock your screen when you leave your desk.")
    run = runner(root / "home")
    done = run("ingest", str(root / "notes.txt"))
    assert done.returncode == 0, done.stderr
    return run


def test_ingest_stats_search_delete(erag, corpus: Path) -> None:
    meta = erag("meta", str(corpus), "--department", "IT", "--groups", "all,it")
    assert meta.returncode == 0 and (corpus / "_meta.json").is_file(), meta.stderr
    done = erag("ingest", str(corpus))
    assert done.returncode == 0, done.stderr
    assert "added" in done.stdout and "done: 7 added" in done.stdout

    stats = erag("stats")
    assert "documents:  7" in stats.stdout and "department: IT 7" in stats.stdout

    found = erag("search", "reset the VPN token", "-k", "2", "--filter", "department=IT")
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    assert lines[0] == "filters: department=IT"
    assert lines[1].startswith("[1] it.html") and "fused" in lines[2]

    table = erag("search", "Consulting revenue", "-k", "3", "--filter", "doc_type=pdf")
    # the table's rows and its summary card both come from page 2, ahead of the page-1 prose
    lines = [line for line in table.stdout.splitlines() if line.startswith("[")]
    assert lines[0].startswith("[1] report.pdf (p. 2") and any("(p. 2, rows 1-2)" in line for line in lines)

    assert erag("search", "VPN", "--filter", "department=HR").stdout.splitlines()[-1] == "no results"

    gone = erag("delete", "it.html")
    assert gone.returncode == 0 and "removed" in gone.stdout
    assert "it.html" not in erag("search", "reset the VPN token", "-k", "7").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "   "], "the query is empty"),
        (["search", "leave", "--filter", "colour=blue"], "unknown filter field 'colour'"),
        (["search", "leave", "--filter", "department"], "is not FIELD=VALUE"),
        (["search", "leave", "--mode", "int4"], "unknown mode 'int4'"),
        (["delete", "nothing.pdf"], "no document matches"),
    ],
)
def test_bad_input_gets_a_one_line_error(erag_with_notes, args: list[str], message: str) -> None:
    result = erag_with_notes(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_search_before_any_ingest_says_what_to_do(erag) -> None:
    result = erag("search", "anything")
    assert result.returncode == 2 and "run `erag ingest PATH` first" in result.stderr
