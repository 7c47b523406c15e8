"""The docstring examples that stand on their own run here, so they cannot drift from the code they show.

Examples that need an ingested index, a loaded model or a running app (the pipelines, stores and pages) are
shown with the objects they need, but are not run: tests/ exercises those paths on real files and models.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

RUNNABLE = [
    "app.abstention", "app.answer_checks", "app.citations", "app.injection", "app.prompt", "erag.access",
    "erag.sparse_encoder", "erag.table_types", "erag.textsafe", "erag.users", "eval.answer_match", "eval.configs",
    "eval.datasets", "eval.footprint", "eval.metrics", "index.edge_store", "index.filters", "index.float8",
    "index.tables", "index.tables.sandbox", "index.versions", "ingest.loaders.zip_guard", "ingest.metadata",
    "ingest.table_chunker", "jobs.spool", "app.row_order", "app.sql_intent", "retrieval.recency", "app.period_change",
    "app.period_peak", "app.two_rows",
]


@pytest.mark.parametrize("name", RUNNABLE)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples left: drop it from RUNNABLE"
    assert result.failed == 0
