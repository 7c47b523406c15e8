"""Conversation memory: turns stored per user and conversation, and follow-ups made standalone.

Example:
    >>> memory = ConversationMemory(ChatDatabase.from_settings(settings))
    >>> cid = memory.start("erin", "How many days of parental leave do I get?")
    >>> QueryRewriter().run("and for part-time staff?", memory.history("erin", cid, max_tokens=400))
    'How many days of parental leave do I get for part-time staff?'

A follow-up ("and for part-time staff?") retrieves nothing useful on its own. The rewriter turns it
into a standalone query from the recent turns: with the LLM when one is loaded (one short completion
that shares the answer prompt's cached system message: ~1-2 s), else by rules that graft the
follow-up onto the previous standalone question, which is what hybrid search needs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from app.db import ChatDatabase, Conversation, Turn, utcnow
from app.evidence import approx_tokens, content_words
from app.prompt import rewrite_messages

_LEAD = re.compile(
    r"^\s*(and|but|also|so|then|ok(ay)?|what about|how about|and what about|and how about|what if|and if|"
    r"same for|and for|and in|and the)\b[\s,]*",
    re.IGNORECASE,
)
_QUESTION_WORD = re.compile(r"^\s*(who|what|when|where|which|why|how|is|are|can|do|does|may|should)\b", re.I)
_REFERS_BACK = re.compile(r"\b(it|its|they|them|their|that|this|those|these|there|he|she|his|her|same)\b", re.I)


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
    """Turn a follow-up into a standalone query from the recent turns (the LLM's `complete`, or rules)."""

    def __init__(self, complete: Callable[[list[dict[str, str]]], str] | None = None) -> None:
        self.complete = complete

    def run(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        question = " ".join(question.split())
        if not history or not looks_like_follow_up(question):
            return question
        if self.complete is not None:
            rewritten = " ".join(self.complete(rewrite_messages(question, history)).split()).strip('"')
            # A rewrite that lost most of the follow-up's own words is worse than the rules.
            own = content_words(question)
            if rewritten and len(own & content_words(rewritten)) * 2 >= len(own):
                return rewritten[:1000]
        return self.by_rules(question, history[-1][0])

    @staticmethod
    def by_rules(question: str, previous: str) -> str:
        rest = _LEAD.sub("", question).strip().rstrip("?.! ")
        base = previous.strip().rstrip("?.! ")
        return f"{base} {rest}?" if rest else f"{base}?"

