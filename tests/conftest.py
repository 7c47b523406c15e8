"""Shared fixtures: real files of every supported type, settings on a temporary index, real models.

Bulk tests embed with the packaged all-MiniLM-L6-v2 (7x faster than the default mpnet on 2 cores);
one test runs the default embedder end to end.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from erag.embedder import Embedder
from erag.settings import Settings

FAST_MODEL = "all-MiniLM-L6-v2"
REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
SHARED = REPO.parent / "shared" / "datasets"


def make_settings(home: Path, **overrides) -> Settings:
    return Settings(home=home, embedder=FAST_MODEL, qdrant_url=None, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


@pytest.fixture
def quarterly_reports(tmp_path: Path) -> Settings:
    """An index of three quarterly reports that differ only in their figure and the period their file name gives
    (2025 Q3, 2025 Q4, 2026 Q1): what a question's period or "the latest" must tell apart."""
    from ingest.pipeline import IngestPipeline

    folder = tmp_path / "finance"
    folder.mkdir()
    for period, margin in (("2025_q3", "41.2"), ("2025_q4", "42.0"), ("2026_q1", "43.5")):
        (folder / f"quarterly_report_{period}.md").write_text(
            f"# Quarterly report\n\nGross margin for the quarter was {margin}% of revenue, driven by services and "
            "a lower cost of hardware components.\n")
    settings = make_settings(tmp_path / "home")
    with IngestPipeline(settings, progress=False) as pipeline:
        assert not pipeline.run([folder]).failed
    return settings


@pytest.fixture(scope="session")
def fast_embedder() -> Embedder:
    return Embedder.from_settings(make_settings(Path("/tmp/unused")))


LEAVE_MD = """# Parental Leave Policy

## Eligibility
Every employee is eligible for parental leave from the first day of employment. Part-time staff
receive leave pro rata to their contracted hours.

## Duration
Primary carers receive 26 weeks of leave at full pay. Partners receive 4 weeks at full pay.

| Leave type | Weeks | Pay |
|---|---|---|
| Maternity | 26 | Full |
| Partner | 4 | Full |
"""

IT_HTML = """<html><head><title>IT Handbook</title></head><body>
<nav>Home | About</nav>
<h1>IT Handbook</h1>
<h2>VPN</h2><p>To reset your VPN token, open the SafeKey portal and choose Reset token.</p>
<h2>Laptops</h2><h3>Requests</h3><p>Request a laptop through the helpdesk portal.</p>
<h3>Returns</h3><p>Return laptops to Daniel Ferreira in the Leeds office.</p>
<table><tr><th>Model</th><th>RAM</th></tr><tr><td>ThinkPad T14</td><td>32 GB</td></tr>
<tr><td>MacBook Air</td><td>16 GB</td></tr></table>
<script>var tracking = 1;</script>
</body></html>"""


def write_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Employee Handbook", level=1)
    document.add_heading("Working hours", level=2)
    document.add_paragraph("Core working hours are 10:00 to 16:00, Monday to Friday.")
    document.add_heading("Holidays", level=2)
    document.add_paragraph("Holiday entitlement grows with years of service.")
    table = document.add_table(rows=3, cols=2)
    for row, values in zip(table.rows, [("Years of service", "Days"), ("0-2", "25"), ("3+", "28")], strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.save(str(path))


def write_pdf(path: Path, pages: list[str], table: list[list[str]] | None = None) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table, TableStyle

    styles = getSampleStyleSheet()
    story = []
    for i, text in enumerate(pages):
        if i:
            story.append(PageBreak())
        story.append(Paragraph(text, styles["BodyText"]))
    if table:
        grid = Table(table)
        grid.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, "black")]))
        story.append(grid)
    SimpleDocTemplate(str(path), pagesize=A4, title="Quarterly Report").build(story)


def write_xlsx(path: Path) -> None:
    import pandas as pd

    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        pd.DataFrame({"Department": ["HR", "IT"], "Budget": [120000, 340000]}).to_excel(
            writer, sheet_name="Summary", index=False
        )
        pd.DataFrame({"Item": ["Laptops", "Licences"], "Cost": [50000, 20000]}).to_excel(
            writer, sheet_name="IT detail", index=False
        )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A folder with one real file of every supported type."""
    root = tmp_path / "docs"
    root.mkdir()
    (root / "leave.md").write_text(LEAVE_MD)
    (root / "it.html").write_text(IT_HTML)
    (root / "notes.txt").write_text("SECURITY:\n\nLock your screen when you leave your desk.\n\nReport phishing to IT.")
    (root / "staff.csv").write_text("name,department,office\nAda Lovelace,IT,Leeds\nAlan Turing,Finance,Berlin\n")
    write_docx(root / "handbook.docx")
    write_xlsx(root / "budget.xlsx")
    write_pdf(
        root / "report.pdf",
        ["Revenue grew strongly in the third quarter.", "Outlook: we expect further growth in Toronto."],
        table=[["Segment", "Revenue"], ["Consulting", "6420"], ["Platform", "4180"]],
    )
    return root


# Sign-in (app/auth.py): the documented demo users of config/users.demo.yaml.
DEMO_USERS = REPO / "config" / "users.demo.yaml"
DEMO_PASSWORDS = {"erin": "erin-demo-pass", "hana": "hana-demo-pass", "ada": "ada-demo-pass"}


def sign_in(at, username: str, password: str | None = None):
    """Fill in and submit the sign-in form of a page that was just run (an AppTest); returns it re-run."""
    at.text_input[0].input(username)
    at.text_input[1].input(password if password is not None else DEMO_PASSWORDS[username])
    return at.button[0].click().run()
