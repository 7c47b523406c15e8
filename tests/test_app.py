"""The chat page driven like a browser with Streamlit's AppTest: ask, read the answer and its sources, rate
it, follow up, reload, filter, and get clear messages for bad input. Answers are extractive (no LLM) here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.extractive import LABEL

from .conftest import DEMO_USERS, FAST_MODEL, REPO, sign_in
from .test_chat import company_home, copy_home  # noqa: F401 - the session's sample-company index

PAGE = str(REPO / "app" / "streamlit_app.py")


@pytest.fixture(scope="module")
def page_env(company_home: Path, tmp_path_factory) -> dict[str, str]:  # noqa: F811
    home = tmp_path_factory.mktemp("page") / "home"
    copy_home(company_home, home)
    return {"ERAG_HOME": str(home), "ERAG_EMBEDDER": FAST_MODEL, "ERAG_LLM_ENABLED": "false",
            "ERAG_USERS_FILE": str(DEMO_USERS)}  # signs in as erin, "Erin Example", group all


@pytest.fixture
def page(page_env: dict[str, str], monkeypatch):
    for key, value in page_env.items():
        monkeypatch.setenv(key, value)

    def open_page(conversation: str | None = None) -> AppTest:
        at = AppTest.from_file(PAGE, default_timeout=120)
        if conversation:
            at.query_params["c"] = conversation
        return sign_in(at.run(), "erin")

    yield open_page


@pytest.fixture(scope="module", autouse=True)
def release_index():
    yield
    from app.services import close_all

    close_all()


def assistant_texts(at: AppTest) -> list[str]:
    return [m.markdown[0].value for m in at.chat_message if m.name == "assistant"]


def test_ask_read_sources_rate_and_follow_up_across_a_reload(page) -> None:
    at = page()
    assert not at.exception
    assert "Signed in as Erin Example (all)" in [c.value for c in at.sidebar.caption]
    assert any("Extractive answers only" in w.value for w in at.sidebar.warning)

    at.chat_input[0].set_value("How many days of parental leave do I get?").run()
    assert not at.exception
    [answer] = assistant_texts(at)
    assert answer.startswith(LABEL) and "260 working days" in answer
    cards = [e.label for e in at.expander]
    assert cards and all("parental_leave_policy.md" in label for label in cards)
    cited = sorted({int(label[1 : label.index("]")]) for label in cards})
    assert all(f"[{n}]" in answer for n in cited)
    assert "Parental Leave Policy" in at.expander[0].markdown[0].value  # the exact passage opens in the card
    conversation = at.query_params["c"]
    conversation = conversation[0] if isinstance(conversation, list) else conversation

    at.feedback[0].set_value(1).run()
    at.text_input(key=at.text_input[0].key).set_value("clear and correct").run()
    [send] = [b for b in at.button if (b.key or "").startswith("send-")]
    send.click().run()
    assert "Thanks for the feedback" in [t.value for t in at.toast]

    at.chat_input[0].set_value("and for part-time staff?").run()
    assert not at.exception
    first, follow = assistant_texts(at)
    assert "part-time employee is entitled to 52 weeks" in follow
    assert any(c.value.startswith("Searched for: How many days of parental leave") for c in at.caption)

    # A reload (new session, same URL) shows the conversation and the rating given.
    again = page(conversation)
    assert assistant_texts(again) == [first, follow]
    assert again.feedback[0].value == 1 and again.feedback[1].value is None
    assert again.text_input[0].value == "clear and correct"

    from app.chat_page import chat_service
    from erag.settings import Settings

    chat = chat_service(Settings().model_dump_json())
    [(fb, turn)] = chat.feedback.rated()
    assert (fb.rating, fb.comment, fb.username, turn.question) == (
        1, "clear and correct", "erin", "How many days of parental leave do I get?")


def test_table_sources_render_as_tables_and_filters_apply(page) -> None:
    at = page()
    at.sidebar.selectbox(key="department").select("Finance").run()
    at.chat_input[0].set_value("What was Q3 2026 revenue for the Consulting segment?").run()
    assert not at.exception
    labels = [e.label for e in at.expander]
    assert labels and all(".pdf" in label or ".xlsx" in label for label in labels)
    assert any("Consulting" in assistant for assistant in assistant_texts(at))

    at = page()
    at.sidebar.selectbox(key="document").select("employees.csv").run()
    at.chat_input[0].set_value("Who works in the Berlin office?").run()
    assert {e.label.split("] ")[1].split(" ·")[0] for e in at.expander} == {"employees.csv"}
    # the table's summary card (its columns and ranges) may come first; its row cards render as tables
    frames = [e.dataframe[0].value for e in at.expander if e.dataframe]
    assert frames, "table rows render as a table"
    assert any("office" in frame.columns and "Berlin" in set(frame["office"]) for frame in frames)


def test_new_conversation_and_unanswerable_questions(page) -> None:
    at = page()
    at.chat_input[0].set_value("What is the capital of France?").run()
    assert assistant_texts(at) == ["The documents I can see do not answer this."]
    assert not at.expander and not at.exception
    at.sidebar.button[0].click().run()  # New conversation
    assert "c" not in at.query_params and not assistant_texts(at)


@pytest.mark.parametrize(("question", "message"), [("   ", "question is empty"), ("why " * 800, "too long")])
def test_bad_input_gets_a_message_and_the_page_keeps_working(page, question: str, message: str) -> None:
    at = page()
    at.chat_input[0].set_value(question).run()
    assert not at.exception
    assert any(message in w.value for w in at.warning)
    at.chat_input[0].set_value("How do I reset my VPN token?").run()
    assert assistant_texts(at) and not at.exception
