"""Follow-ups made standalone by rules first (with the real spaCy NER), the LLM rewrite only when rules cannot tell
what a pronoun points to, and through the chat pipeline on the sample company."""

from __future__ import annotations

import pytest

from app.chat import ChatPipeline
from app.memory import QueryRewriter, subject_of
from erag.models import load_spacy
from erag.settings import Settings
from erag.users import User
from ingest.pipeline import IngestPipeline

from .conftest import DATA, make_settings

EMPLOYEE = User(username="erin", name="Erin", groups=("all",))


@pytest.fixture(scope="module")
def people():
    settings = Settings()
    nlp = load_spacy(settings.spacy_model, tuple(settings.departments))
    return lambda text: [e.text for e in nlp(text).ents if e.label_ == "PERSON"]


class LlmRewrites:
    """Stands in for the LLM's completion only to record whether the rewriter asked for one."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.calls = 0

    def __call__(self, messages: list[dict[str, str]]) -> str:
        self.calls += 1
        return self.reply


@pytest.mark.parametrize("question, previous, expected", [
    ("and for part-time staff?", ("How many days of parental leave do I get?", "26 weeks [1]."),
     "How many days of parental leave do I get for part-time staff?"),
    ("and is it paid?", ("How long is partner leave?", "Partners receive 4 weeks [1]."), "Is partner leave paid?"),
    ("Which office is he based in?", ("Who is the Head of IT?", "The Head of IT is Daniel Ferreira [1]."),
     "Which office is Daniel Ferreira based in?"),
    ("What is his salary?", ("Who is the Head of IT?", "The Head of IT is Daniel Ferreira [1]."),
     "What is Daniel Ferreira's salary?"),
    ("who approves it?", ("What is the VPN token reset procedure?", "Open the SafeKey portal [1]."),
     "Who approves the VPN token reset procedure?"),
])
def test_rules_resolve_lead_ins_and_pronouns_without_the_llm(people, question, previous, expected) -> None:
    llm = LlmRewrites("something else entirely")
    assert QueryRewriter(llm, people).run(question, [previous]) == expected
    assert llm.calls == 0


def test_the_llm_is_asked_only_when_rules_cannot_tell_the_referent(people) -> None:
    history = [("How do I reset my VPN token?", "Open the SafeKey portal and choose Reset token [1].")]
    llm = LlmRewrites("How long does resetting a VPN token take?")
    assert QueryRewriter(llm, people).run("how long does that take?", history) == llm.reply
    assert llm.calls == 1
    # No person in the previous answer for "she": the LLM, else the graft onto the previous question.
    history = [("What is the travel policy?", "Book through the travel portal [1].")]
    assert QueryRewriter(None, people).run("Who is she?", history) == "What is the travel policy Who is she?"
    # A standalone question is left alone, whatever the history.
    assert QueryRewriter(llm, people).run("What are the core working hours?", history) == \
        "What are the core working hours?"
    assert llm.calls == 1


def test_subject_is_the_question_without_its_frame() -> None:
    assert subject_of("How many days of parental leave do I get?") == "days of parental leave"
    assert subject_of("What was Q3 2026 revenue for the Consulting segment?") == \
        "Q3 2026 revenue for the Consulting segment"
    assert subject_of("What is it?") == ""  # nothing left to stand for "it": the LLM decides


def test_a_pronoun_follow_up_finds_its_source_in_the_chat(tmp_path) -> None:
    settings = make_settings(tmp_path / "home", llm_enabled=False)
    with IngestPipeline(settings, progress=False) as pipeline:
        pipeline.run([DATA])
    chat = ChatPipeline(settings)
    try:
        first = chat.answer("Who is the Head of IT?", EMPLOYEE)
        assert "Daniel Ferreira" in first.text
        follow = chat.answer("Which office is he based in?", EMPLOYEE, conversation_id=first.conversation_id)
        assert follow.rewritten_query == "Which office is Daniel Ferreira based in?"
        assert "Leeds" in follow.text
    finally:
        chat.close()
