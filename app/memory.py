"""Conversation memory: turns stored per user and conversation, and follow-ups made standalone.

Example:
    >>> memory = ConversationMemory(ChatDatabase.from_settings(settings))
    >>> cid = memory.start("erin", "How many days of parental leave do I get?")
    >>> QueryRewriter().run("and for part-time staff?", memory.history("erin", cid, max_tokens=400))
    'How many days of parental leave do I get for part-time staff?'

A follow-up ("and for part-time staff?") retrieves nothing useful on its own. The rewriter makes it a
standalone query from the recent turns, rules first: a lead-in ("and for", "what about") is grafted onto the
previous standalone question, "it"/"that" is replaced by that question's subject ("How long is partner leave?"
+ "and is it paid?" -> "Is partner leave paid?"), "he"/"she" by the person the previous answer named. Rules take
~10 ms; the LLM rewrite (one short completion, 1.3-1.8 s on 2 cores, which the sources wait for) runs only when
the rules cannot resolve the reference, and the graft stands in when there is no LLM.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from app.evidence import approx_tokens, content_words
from app.prompt import rewrite_messages
from erag.db import ChatDatabase, Conversation, Turn, utcnow

_LEAD = re.compile(
    r"^\s*(and|but|also|so|then|ok(ay)?|what about|how about|and what about|and how about|what if|and if|"
    r"same for|and for|and in|and the)\b[\s,]*",
    re.IGNORECASE,
)
_QUESTION_WORD = re.compile(r"^\s*(who|what|when|where|which|why|how|is|are|can|do|does|may|should)\b", re.I)
_REFERS_BACK = re.compile(r"\b(it|its|they|them|their|that|this|those|these|there|he|she|his|her|same)\b", re.I)
_PERSON = re.compile(r"\b(he|she|him|her|his)\b", re.I)
# Pronouns that stand for the previous question's subject. "that"/"this" are often determiners ("that policy"),
# and "its"/"their" would need the noun re-inflected: those go to the LLM or, without one, to the graft.
_THING = re.compile(r"\b(it|they|them)\b", re.I)
# Words that frame a question rather than name its subject, stripped from both ends of the previous question
# to leave the subject ("How many days of parental leave do I get?" -> "days of parental leave").
_FRAME_HEAD = frozenset({
    "how", "what", "which", "who", "whom", "whose", "when", "where", "why", "is", "are", "was", "were", "do",
    "does", "did", "can", "could", "should", "may", "might", "will", "would", "long", "many", "much", "often",
    "there"})
_FRAME_TAIL = frozenset({"do", "does", "did", "i", "we", "you", "get", "have", "has", "need", "take", "be", "is",
                         "are", "was", "were", "there", "can", "should"})


class ConversationNotFound(LookupError):
    """The conversation does not exist or belongs to someone else."""


@dataclass
class PastTurn:
    """A stored turn as the page and the rewriter read it."""

    id: int
    question: str
    rewritten: str
    answer: str
    mode: str
    abstained: bool
    sources: list[dict[str, Any]]
    cited: list[int]
    rating: int | None = None
    comment: str = ""


class ConversationMemory:
    """Conversations and turns of each user, read and written through the chat database."""

    def __init__(self, db: ChatDatabase) -> None:
        self.db = db

    def start(self, username: str, first_question: str = "") -> str:
        conversation_id = str(uuid.uuid4())
        with self.db.session() as session:
            title = " ".join(first_question.split())[:80]
            session.add(Conversation(id=conversation_id, username=username, title=title))
        return conversation_id

    def owns(self, username: str, conversation_id: str) -> bool:
        with self.db.session() as session:
            conversation = session.get(Conversation, conversation_id)
            return conversation is not None and conversation.username == username

    def conversations(self, username: str, limit: int = 20) -> list[tuple[str, str]]:
        """(id, title) of the user's latest conversations, newest first."""
        with self.db.session() as session:
            rows = session.execute(
                select(Conversation.id, Conversation.title)
                # A run stopped before its first answer (a rerun mid-answer) leaves a conversation with no turns.
                .where(Conversation.username == username, Conversation.turns.any())
                .order_by(Conversation.updated_at.desc())
                .limit(limit)
            ).all()
        return [(r.id, r.title or "(untitled)") for r in rows]

    def turns(self, username: str, conversation_id: str) -> list[PastTurn]:
        """Every turn of one of the user's conversations, oldest first, with the user's own rating."""
        with self.db.session() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None or conversation.username != username:
                raise ConversationNotFound(f"no conversation {conversation_id} for {username}")
            out = []
            for t in conversation.turns:
                mine = next((f for f in t.feedback if f.username == username), None)
                out.append(PastTurn(t.id, t.question, t.rewritten, t.answer, t.mode, t.abstained, list(t.sources),
                                    list(t.cited), mine.rating if mine else None, mine.comment if mine else ""))
        return out

    def history(self, username: str, conversation_id: str, max_tokens: int,
                count_tokens: Callable[[str], int] = approx_tokens) -> list[tuple[str, str]]:
        """The latest (standalone question, answer) pairs that fit `max_tokens`, oldest first."""
        picked: list[tuple[str, str]] = []
        used = 0
        for turn in reversed(self.turns(username, conversation_id)):
            answer = "" if turn.abstained else turn.answer
            cost = count_tokens(turn.rewritten or turn.question) + count_tokens(answer)
            if picked and used + cost > max_tokens:
                break
            if not picked and cost > max_tokens:  # the last turn alone is too long: keep its question
                answer = ""
            picked.append((turn.rewritten or turn.question, answer))
            used += cost
        return picked[::-1]

    def add_turn(self, username: str, conversation_id: str, question: str, rewritten: str, answer: str,
                 mode: str, abstained: bool, sources: list[dict[str, Any]], cited: list[int],
                 timings: dict[str, float]) -> int:
        with self.db.session() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None or conversation.username != username:
                raise ConversationNotFound(f"no conversation {conversation_id} for {username}")
            turn = Turn(conversation_id=conversation_id, username=username, question=question, rewritten=rewritten,
                        answer=answer, mode=mode, abstained=abstained, sources=sources, cited=cited,
                        timings={k: round(v, 4) for k, v in timings.items()})
            session.add(turn)
            conversation.updated_at = utcnow()
            if not conversation.title:
                conversation.title = " ".join(question.split())[:80]
            session.flush()
            return int(turn.id)


def looks_like_follow_up(question: str) -> bool:
    """Short, leading with 'and'/'what about', or pointing back with a pronoun: it needs the conversation."""
    words = content_words(question)
    if _LEAD.match(question) or (len(words) <= 1 and not _QUESTION_WORD.match(question)):
        return True
    return bool(_REFERS_BACK.search(question)) and len(words) <= 4


class QueryRewriter:
    """Turn a follow-up into a standalone query from the recent turns: rules, else the LLM's `complete`."""

    def __init__(self, complete: Callable[[list[dict[str, str]]], str] | None = None,
                 people: Callable[[str], list[str]] | None = None) -> None:
        self.complete = complete
        self.people = people  # names of people in a text, in order (spaCy NER): what "he"/"she" point to

    def run(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        question = " ".join(question.split())
        if not history or not looks_like_follow_up(question):
            return question
        resolved = self.resolve(question, history[-1])
        if resolved is not None:
            return resolved
        if self.complete is not None:
            rewritten = " ".join(self.complete(rewrite_messages(question, history)).split()).strip('"')
            # A rewrite that lost most of the follow-up's own words is worse than the rules.
            own = content_words(question)
            if rewritten and len(own & content_words(rewritten)) * 2 >= len(own):
                return rewritten[:1000]
        return self.by_rules(question, history[-1][0])

    def resolve(self, question: str, previous: tuple[str, str]) -> str | None:
        """The follow-up made standalone by rules, or None when they cannot tell what a pronoun points to."""
        asked, answered = previous
        person = _PERSON.search(question)
        if person:
            # The person the previous question asked about, else the first the answer names (the answer leads
            # with it; later names are often other people in the same cited rows).
            names = [] if self.people is None else self.people(asked) or (self.people(answered) if answered else [])
            return _substitute(question, person, names[0]) if names else None
        thing = _THING.search(question)
        if thing:
            topic = subject_of(asked)
            return _substitute(question, thing, topic) if topic else None
        if _REFERS_BACK.search(question) and not _LEAD.match(question):
            return None  # "how long does that take?": which noun "that" stands for needs the conversation read
        return self.by_rules(question, asked)

    @staticmethod
    def by_rules(question: str, previous: str) -> str:
        rest = _LEAD.sub("", question).strip().rstrip("?.! ")
        base = previous.strip().rstrip("?.! ")
        return f"{base} {rest}?" if rest else f"{base}?"


def subject_of(question: str) -> str:
    """What a question asks about, without its frame: "How long is partner leave?" -> "partner leave"."""
    words = question.strip().rstrip("?.! ").split()
    while words and words[0].lower().strip(",") in _FRAME_HEAD:
        words.pop(0)
    while words and words[-1].lower().strip(",") in _FRAME_TAIL:
        words.pop()
    return " ".join(words) if content_words(" ".join(words)) else ""


def _substitute(question: str, pronoun: re.Match[str], referent: str) -> str:
    if pronoun.group(1).lower() == "his":
        referent += "'s"
    text = question[: pronoun.start()] + referent + question[pronoun.end():]
    text = _LEAD.sub("", text).strip()
    return text[:1].upper() + text[1:] if text else text
