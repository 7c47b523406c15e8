"""The admin page and sign-in, driven like a browser with Streamlit's AppTest, with a real worker process.

An admin signs in, uploads files with groups, department and owner; the app starts a worker beside
itself, which parses and embeds them; the app's index writer applies the result; the page shows each
file's progress and the indexed documents; then an employee and an HR user ask about them in the chat
and only the HR user gets the restricted one. Non-admins never reach the admin page; every bad upload
gets its own message; first start asks for the setup code and creates the administrator.
"""

from __future__ import annotations

import io
import os
import stat
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from jobs.uploads import UploadGuard, safe_name

from .conftest import DEMO_USERS, FAST_MODEL, REPO, make_settings, sign_in

PAGE = str(REPO / "app" / "streamlit_app.py")
HR_MEMO = b"""# Relocation allowance 2027

The relocation allowance for staff moving between the Leeds and Toronto offices is 7,450 pounds,
paid in two parts. Only HR may share the relocation allowance figures.
"""
PUBLIC_MEMO = b"""# Bicycle scheme

Employees can lease a bicycle through the Cyclewise scheme; the monthly cost is taken from gross pay
for twelve months, and the bicycle is kept at the end of the lease.
"""


@pytest.fixture(scope="module", autouse=True)
def release_everything():
    yield
    from app.services import close_all

    close_all()


def open_app(env: dict[str, str], monkeypatch, user: str | None = None, password: str | None = None) -> AppTest:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    return sign_in(at, user, password) if user else at


def base_env(home: Path, **extra: str) -> dict[str, str]:
    return {"ERAG_HOME": str(home), "ERAG_EMBEDDER": FAST_MODEL, "ERAG_LLM_ENABLED": "false",
            "ERAG_USERS_FILE": str(DEMO_USERS), **extra}


def assistant_texts(at: AppTest) -> list[str]:
    return [m.markdown[0].value for m in at.chat_message if m.name == "assistant"]


def test_admin_uploads_a_worker_ingests_and_only_its_groups_can_find_it(tmp_path: Path, monkeypatch) -> None:
    env = base_env(tmp_path / "home", ERAG_APP_WORKERS="1")  # an empty index: a fresh install
    at = open_app(env, monkeypatch, "ada")
    assert not at.exception
    at.switch_page("admin_page.py").run()
    assert [s.value for s in at.subheader][:3] == ["Upload documents", "Ingestion progress", "Indexed documents"]

    at.file_uploader[0].set_value([("relocation.md", HR_MEMO, "text/markdown")])
    at.multiselect[0].set_value(["hr"])
    at.selectbox[0].set_value("HR")
    at.text_input[0].set_value("Tomasz Kowalczyk")
    at.button(key="FormSubmitter:upload-Upload and ingest").click().run()
    at.file_uploader[0].set_value([("bicycles.md", PUBLIC_MEMO, "text/markdown")])
    at.button(key="FormSubmitter:upload-Upload and ingest").click().run()
    assert not at.exception and not at.error
    assert [s.value for s in at.success] == ["Queued 1 file(s) for ingestion: bicycles.md"]

    from app.services import ingestion_service
    from erag.settings import Settings

    service = ingestion_service(Settings().model_dump_json())
    assert service.supervisor.alive() == 1  # the app started a worker process beside itself
    seen = set()
    deadline = time.monotonic() + 180
    while service.board.pending() and time.monotonic() < deadline:
        seen.update(j.status for j in service.board.recent())
        time.sleep(0.05)
    jobs = {j.file_name: j for j in service.board.recent()}
    assert {j.status for j in jobs.values()} == {"indexed"}, [(j.file_name, j.status, j.reason) for j in jobs.values()]
    assert seen & {"parsing", "tagging", "embedding", "spooled"}, seen  # progress was visible on the way
    assert jobs["relocation.md"].meta == {"groups": ["hr"], "department": "HR", "owner": "Tomasz Kowalczyk"}
    assert (tmp_path / "home" / "uploads" / "hr" / "relocation.md").read_bytes() == HR_MEMO

    at.run()
    progress = at.dataframe[0].value
    assert set(progress["file"]) == {"relocation.md", "bicycles.md"} and set(progress["status"]) == {"indexed"}
    docs = at.dataframe[1].value
    assert dict(zip(docs["file"], docs["groups"], strict=True)) == {"relocation.md": "hr", "bicycles.md": "all"}
    assert all(docs["chunks"] > 0)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Documents"] == "2" and metrics["Chunks"] == str(sum(docs["chunks"]))

    question = "What is the relocation allowance between Leeds and Toronto?"
    employee = open_app(env, monkeypatch, "erin")
    employee.chat_input[0].set_value(question).run()
    assert "7,450" not in " ".join(assistant_texts(employee))
    assert not [e for e in employee.expander if "relocation.md" in e.label]
    employee.chat_input[0].set_value("How does the bicycle lease scheme work?").run()
    assert [e for e in employee.expander if "bicycles.md" in e.label]

    hr = open_app(env, monkeypatch, "hana")
    hr.chat_input[0].set_value(question).run()
    assert "7,450" in assistant_texts(hr)[0]
    assert [e for e in hr.expander if "relocation.md" in e.label]

    # Re-ingest from the page: the file is unchanged, so the writer finds the version committed.
    at.multiselect(key="chosen-docs").set_value([jobs["relocation.md"].doc_id]).run()
    at.button[[b.label for b in at.button].index("Re-ingest")].click().run()
    assert any("Queued 1 document" in s.value for s in at.success)
    deadline = time.monotonic() + 60
    while service.board.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.board.recent()[0].outcome == "unchanged"
    # Delete: the document leaves the index and the upload area.
    at.multiselect(key="chosen-docs").set_value([jobs["relocation.md"].doc_id]).run()
    at.checkbox(key="confirm-delete").check().run()
    at.button[[b.label for b in at.button].index("Delete")].click().run()
    assert any("Deleted 1 document(s)" in s.value for s in at.success)
    assert set(at.dataframe[1].value["file"]) == {"bicycles.md"}
    assert not (tmp_path / "home" / "uploads" / "hr" / "relocation.md").exists()


def _zip(member: str, size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(member, b" " * size)
    return buffer.getvalue()


BAD_UPLOADS = [
    ("archive.zip", _zip("notes.txt", 100), "archives (.zip) are not accepted"),
    ("report.pdf", b"just some text pretending to be a PDF", "content does not match the '.pdf' extension"),
    ("bomb.docx", _zip("word/document.xml", 3 * 1024 * 1024), "unpacks to 3 MB, over the 1 MB limit"),
    ("dense.xlsx", _zip("xl/workbook.xml", 600 * 1024), "times its size, over the limit of 100"),
    ("empty.txt", b"", "empty file"),
    ("huge.txt", b"word " * 40_000, "over the 0.1 MB limit per file"),
    ("setup.exe", b"MZ\x90\x00", "unsupported file type '.exe'"),
    ("notes.md", b"# Notes\n\nFirst copy.", None),
    ("notes.md", b"# Notes\n\nSecond copy.", "another file in this upload has the same name"),
    ("../../../outside/evil.md", b"# Evil\n\nTries to escape the upload area.", None),
    ("...", b"dots", "is not usable"),
    ("late.md", b"# Late\n\nOne file too many.", "over the limit of 11 files in one upload"),
]


def test_each_bad_upload_gets_its_message_and_nothing_lands_outside(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    env = base_env(home, ERAG_APP_WORKERS="0", ERAG_MAX_FILE_MB="0.1", ERAG_UPLOAD_MAX_FILES="11",
                   ERAG_ZIP_MAX_UNCOMPRESSED_MB="1", ERAG_ZIP_MAX_RATIO="100")
    at = open_app(env, monkeypatch, "ada")
    at.switch_page("admin_page.py").run()
    at.file_uploader[0].set_value([(name, data, "application/octet-stream") for name, data, _ in BAD_UPLOADS])
    at.button(key="FormSubmitter:upload-Upload and ingest").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    for name, _, message in BAD_UPLOADS:
        if message is not None:
            assert any(message in e for e in errors), (name, message, errors)
    assert len(errors) == sum(m is not None for _, _, m in BAD_UPLOADS)
    assert [s.value for s in at.success] == ["Queued 2 file(s) for ingestion: notes.md, evil.md"]
    assert not (tmp_path / "outside").exists() and not (home.parent / "outside").exists()
    staged = sorted(p.name for p in (home / "uploads").rglob("*") if p.is_file())
    assert staged == ["evil.md", "notes.md"]  # refused files left nothing behind
    assert {r[1] for r in at.dataframe[0].value[["file", "status"]].itertuples()} == {"notes.md", "evil.md"}


@pytest.mark.parametrize(("raw", "expected"), [
    ("../../etc/passwd.md", "passwd.md"), ("..\\..\\windows\\win.ini.txt", "win.ini.txt"), ("/abs/path/a.md", "a.md"),
    ("re:port?.md", "re_port_.md"), (".hidden.md", "hidden.md"), ("ｆｕｌｌｗｉｄｔｈ.md", "fullwidth.md"),
    ("nul\x00byte.md", "nul_byte.md"),
])
def test_file_names_are_sanitised_into_the_upload_area(tmp_path: Path, raw: str, expected: str) -> None:
    assert safe_name(raw) == expected
    settings = make_settings(tmp_path / "home")
    [outcome] = UploadGuard(settings).run([(raw, b"# Title\n\nSome text.")])
    assert outcome.accepted and outcome.target.name == expected
    assert outcome.staged.is_relative_to(settings.upload_path.resolve())


def test_non_admins_cannot_reach_the_admin_page(tmp_path: Path, monkeypatch) -> None:
    env = base_env(tmp_path / "home", ERAG_APP_WORKERS="0")
    wrong = open_app(env, monkeypatch, "erin", "not-her-password")
    assert "Wrong user name or password." in [e.value for e in wrong.error]
    assert wrong.text_input[0].label == "User name"  # still on the sign-in form

    employee = open_app(env, monkeypatch, "hana")
    assert not employee.exception
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        employee.switch_page("admin_page.py")
    # Reached some other way (the page run directly with a non-admin signed in), it refuses too.
    from erag.users import User

    direct = AppTest.from_file(str(REPO / "app" / "admin_page.py"), default_timeout=60)
    direct.session_state["erag_user"] = User("hana", "Hana", ("all", "hr"))
    direct.run()
    assert [e.value for e in direct.error] == ["This page is for administrators."] and not direct.file_uploader
    # Outside a Streamlit run (benchmarks, scripts) the demo employee asks: never an admin.
    from app.identity import current_user

    outside = current_user(make_settings(tmp_path / "bare"))
    assert not outside.admin and outside.groups == ("all",)
    # Nobody signed in at all: no page content, only the sign-in form.
    anonymous = open_app(env, monkeypatch)
    assert not anonymous.chat_input and [b.label for b in anonymous.button] == ["Sign in"]


def test_first_start_asks_for_the_setup_code_and_creates_the_admin(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    env = {**base_env(home, ERAG_APP_WORKERS="0"), "ERAG_USERS_FILE": ""}
    at = open_app(env, monkeypatch)
    assert at.title[0].value == "Set up the first administrator"
    code = (home / "setup-code.txt").read_text().strip()

    def submit(entered: str, password: str, confirm: str) -> None:
        for widget, value in zip(at.text_input, [entered, "root", "Rita Root", "all, it", password, confirm],
                                 strict=True):
            widget.input(value)
        at.button[0].click().run()

    submit("wrong-code", "a-long-passphrase", "a-long-passphrase")
    assert "The setup code is wrong." in [e.value for e in at.error] and not (home / "users.yaml").exists()
    submit(code, "short", "short")
    assert any("at least 10 characters" in e.value for e in at.error)
    submit(code, "a-long-passphrase", "a-long-passphrase")
    assert not at.exception
    users = home / "users.yaml"
    config = yaml.safe_load(users.read_text())
    entry = config["credentials"]["usernames"]["root"]
    assert entry["roles"] == ["admin"] and entry["groups"] == ["all", "it"]
    assert entry["password"].startswith("$2b$") and "a-long-passphrase" not in users.read_text()
    assert stat.S_IMODE(os.stat(users).st_mode) == 0o600 and len(config["cookie"]["key"]) >= 40
    assert not (home / "setup-code.txt").exists()  # used once

    signed_in = open_app(env, monkeypatch, "root", "a-long-passphrase")
    signed_in.switch_page("admin_page.py").run()
    assert signed_in.title[0].value == "Documents and ingestion"


def test_erag_user_add_writes_hashed_users_that_can_sign_in(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from cli import app
    from erag.settings import get_settings
    from erag.users import UserDirectory

    home = tmp_path / "home"
    monkeypatch.setenv("ERAG_HOME", str(home))
    monkeypatch.setenv("ERAG_USERS_FILE", "")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        refused = runner.invoke(app, ["user", "add", "ivan"], input="a-long-passphrase\na-long-passphrase\n")
        assert refused.exit_code == 2 and "add an administrator first" in refused.output
        boss = runner.invoke(app, ["user", "add", "boss", "--admin", "--groups", "all,hr"],
                             input="boss-passphrase\nboss-passphrase\n")
        assert boss.exit_code == 0, boss.output
        ivan = runner.invoke(app, ["user", "add", "ivan", "--name", "Ivan IT", "--groups", "all,it"],
                             input="ivan-passphrase\nivan-passphrase\n")
        assert ivan.exit_code == 0, ivan.output
        bad = runner.invoke(app, ["user", "add", "Bad Name"])
        assert bad.exit_code == 2 and "user names are" in bad.output
    finally:
        get_settings.cache_clear()
    users = UserDirectory.from_file(home / "users.yaml").users
    assert users["boss"].admin and users["boss"].groups == ("all", "hr")
    assert not users["ivan"].admin and users["ivan"].groups == ("all", "it") and users["ivan"].name == "Ivan IT"
    at = open_app(base_env(home, ERAG_USERS_FILE="", ERAG_APP_WORKERS="0"), monkeypatch, "ivan", "ivan-passphrase")
    assert "Signed in as Ivan IT (all, it)" in [c.value for c in at.sidebar.caption]
