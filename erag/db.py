"""Conversations, their turns and the feedback on answers, in one SQL database (SQLAlchemy).

Example:
    >>> db = ChatDatabase.from_settings(get_settings())     # SQLite file under ERAG_HOME by default
    >>> with db.session() as session:
    ...     session.add(Conversation(id="c1", username="erin", title="Parental leave"))

Any SQLAlchemy URL works (`ERAG_CHAT_DB_URL=postgresql+psycopg://...`), so several app processes can
share one database when the app is scaled out. The ingestion jobs (`jobs.board`) keep their table in the
same database, on the same declarative `Base`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from erag.home import private_dir, private_file
from erag.settings import Settings


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(200), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    turns: Mapped[list[Turn]] = relationship(back_populates="conversation", order_by="Turn.id")


class Turn(Base):
    """One question and its answer, with the sources the answer cited (chunk ids, file, location)."""

    __tablename__ = "turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    username: Mapped[str] = mapped_column(String(200), index=True)
    question: Mapped[str] = mapped_column(Text)
    rewritten: Mapped[str] = mapped_column(Text, default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    mode: Mapped[str] = mapped_column(String(20), default="llm")  # llm | extractive | abstained
    abstained: Mapped[bool] = mapped_column(Boolean, default=False)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    cited: Mapped[list[int]] = mapped_column(JSON, default=list)
    timings: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    conversation: Mapped[Conversation] = relationship(back_populates="turns")
    feedback: Mapped[list[Feedback]] = relationship(back_populates="turn")


class Feedback(Base):
    """A thumbs up (+1) or down (-1) on one answer, with an optional comment; one row per user and turn."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id"), index=True)
    username: Mapped[str] = mapped_column(String(200), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    turn: Mapped[Turn] = relationship(back_populates="feedback")


def database_url(settings: Settings) -> str:
    return settings.chat_db_url or f"sqlite:///{(settings.home / 'chat.db').resolve()}"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite (`sqlite://`, `:memory:`)."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+", 1)[0] != "sqlite":
        return None
    name = rest.split("?", 1)[0]
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


class ChatDatabase:
    """An engine and a session factory; tables are created on first use."""

    def __init__(self, url: str) -> None:
        if not url or "://" not in url:
            raise ValueError(f"'{url}' is not a database URL (e.g. sqlite:///chat.db or postgresql+psycopg://...)")
        self.url = url
        file = sqlite_file(url)
        if file is not None:
            # Conversations and jobs are private: the folder and the file (with its -wal, -shm) are owner-only.
            private_dir(file.parent)
            private_file(file)
        self.engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
        if url.startswith("sqlite"):
            # WAL lets readers (the page re-rendering history) proceed while a turn is being written.
            @event.listens_for(self.engine, "connect")
            def _wal(dbapi_connection, _record) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> ChatDatabase:
        return cls(database_url(settings))

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()
