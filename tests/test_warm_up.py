"""Pipelines validate in their constructor and open nothing until `warm_up()` or first use (issue 21)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.chat import ChatPipeline
from erag.access import UNRESTRICTED
from ingest.pipeline import IngestPipeline
from retrieval.pipeline import Retriever
from retrieval.searcher import QueryError
from tests.conftest import make_settings


def _files(home: Path) -> list[Path]:
    return sorted(p for p in home.rglob("*")) if home.exists() else []


def test_constructing_the_pipelines_touches_no_disk(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = make_settings(home, llm_enabled=False)
    chat, ingest, retriever = ChatPipeline(settings), IngestPipeline(settings, progress=False), Retriever(settings)
    assert _files(home) == []  # no index, table store or conversation database yet
    chat.close(), ingest.close(), retriever.close()  # closing what never opened is fine


def test_first_use_opens_what_it_needs_once(tmp_path: Path, fast_embedder) -> None:
    home = tmp_path / "home"
    settings = make_settings(home, llm_enabled=False)
    source = tmp_path / "docs" / "note.md"
    source.parent.mkdir()
    source.write_text("# Badges\n\nLost badges are replaced by the security desk on the ground floor.\n")
    with IngestPipeline(settings, embedder=fast_embedder, progress=False) as ingest:
        assert ingest.run([source.parent]).counts()["added"] == 1
    chat = ChatPipeline(settings, retriever=Retriever(settings, embedder=fast_embedder))
    try:
        assert chat.warm_up() is chat and chat.warm_up() is chat  # idempotent, chainable
        assert chat.generator is None and "switched off" in chat.llm_note
        hits = chat.retriever.run("who replaces a lost badge?", groups=UNRESTRICTED, top_k=1).hits
        assert hits and hits[0].payload["file_name"] == "note.md"
    finally:
        chat.close()


def test_a_reranking_retriever_without_a_reranker_fails_at_construction(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", rerank=True, reranker=None)
    with pytest.raises(QueryError, match="ERAG_RERANKER"):
        Retriever(settings)
