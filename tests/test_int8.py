"""int8 inference: built offline from the packaged weights, reused from cache, rebuilt when the model changes,
close to float32, and an index built with one precision searched with the other gives the same answers."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from erag.access import UNRESTRICTED
from erag.embedder import Embedder
from erag.int8_build import MIN_AGREEMENT, Int8BuildError, build_int8_onnx, source_digest, verify
from erag.models import resolve_model_path
from erag.onnx_encoder import OnnxSentenceEncoder
from erag.settings import Settings
from ingest.pipeline import IngestPipeline
from retrieval.pipeline import Retriever

from .conftest import DATA, FAST_MODEL, make_settings

TEXTS = [
    "How many days of parental leave do I get?",
    "To reset your VPN token, open the SafeKey portal and choose Reset token.",
    "| Segment | Revenue |\n| Consulting | 6420 |\n| Platform | 4180 |",
    "Revenue grew strongly in the third quarter; we expect further growth in Toronto. " * 6,
]


@pytest.fixture(scope="module")
def minilm_source(tmp_path_factory) -> Path:
    """A private copy of the packaged MiniLM folder, so a test may change its weights."""
    packaged = Path(resolve_model_path(FAST_MODEL, make_settings(Path("/tmp/unused")).model_cache))
    copy = tmp_path_factory.mktemp("model") / "minilm"
    shutil.copytree(packaged, copy)
    return copy


def test_built_offline_from_packaged_weights_and_reused(minilm_source: Path, tmp_path: Path) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    cache = tmp_path / "cache"
    folder = build_int8_onnx(minilm_source, cache)
    manifest = verify(folder)
    assert manifest["source_sha256"] == source_digest(minilm_source)
    assert manifest["excluded"], "calibration found no outlier MatMul to keep in float32"
    assert manifest["agreement"] >= MIN_AGREEMENT  # checked against the float32 export before use
    import onnx

    ops = [n.op_type for n in onnx.load(str(folder / "model.onnx")).graph.node]
    assert ops.count("MatMulInteger") >= 30  # 6 layers x 6 projections, less the few kept in float32
    stamp = (folder / "model.onnx").stat().st_mtime_ns
    assert build_int8_onnx(minilm_source, cache) == folder  # reused, not rebuilt
    assert (folder / "model.onnx").stat().st_mtime_ns == stamp

    # A damaged copy fails its checksum and is rebuilt.
    with (folder / "model.onnx").open("r+b") as fh:
        fh.seek(4096)
        fh.write(b"\x00" * 64)
    with pytest.raises(Int8BuildError, match="damaged"):
        verify(folder)
    assert build_int8_onnx(minilm_source, cache) == folder
    verify(folder)


def test_rebuilt_when_the_source_model_changes(minilm_source: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    cache = tmp_path / "cache"
    changed = tmp_path / "changed"
    shutil.copytree(minilm_source, changed)
    first = build_int8_onnx(changed, cache)
    weights = load_file(str(changed / "model.safetensors"))
    name = next(k for k in sorted(weights) if k.endswith("output.dense.weight"))
    weights[name] = (weights[name] * 1.01).astype(weights[name].dtype)
    save_file(weights, str(changed / "model.safetensors"))
    second = build_int8_onnx(changed, cache)
    assert second != first and verify(second)["source_sha256"] == source_digest(changed)


def test_int8_embeddings_stay_close_to_float32(minilm_source: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, embed_precision="float32")
    reference = Embedder.from_settings(settings).run(TEXTS)
    int8 = OnnxSentenceEncoder.load(minilm_source, tmp_path / "cache").encode(TEXTS, normalize_embeddings=True)
    cosine = np.sum(reference * int8, axis=1)
    assert cosine.min() > 0.98 and cosine.mean() > 0.99, cosine
    assert not np.allclose(reference, int8)  # really another inference path


def test_mpnets_int8_copy_is_checked_against_float32(tmp_path: Path) -> None:
    # all-mpnet-base-v2 (the product's default until 2026-12-03): with full 8-bit weights its int8 copy came out with
    # a cosine of 0.05 to float32 on CPUs without VNNI (ONNX Runtime's uint8 x int8 products saturate there), which
    # MiniLM's did not show. Every build now records its agreement with the float32 export and refuses to be used
    # below the floor.
    settings = Settings(home=tmp_path, qdrant_url=None, embedder="all-mpnet-base-v2", embed_precision="float32")
    source = Path(resolve_model_path(settings.embedder, settings.model_cache))
    folder = build_int8_onnx(source, settings.model_cache)
    assert verify(folder)["agreement"] >= MIN_AGREEMENT
    reference = Embedder.from_settings(settings).run(TEXTS)
    int8 = OnnxSentenceEncoder.load(source, settings.model_cache).encode(TEXTS, normalize_embeddings=True)
    cosine = np.sum(reference * int8, axis=1)
    assert cosine.min() > 0.97 and cosine.mean() > 0.98, cosine


def test_index_built_with_one_precision_searches_alike_with_the_other(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    questions = [
        "How many days of parental leave do I get?",
        "How do I reset my VPN token?",
        "What was Q3 2026 revenue for the Consulting segment?",
        "What are the core working hours?",
        "Who works in the Berlin office?",
    ]
    for built, queried in (("int8", "float32"), ("float32", "int8")):
        settings = make_settings(tmp_path / f"home-{built}", embed_precision=built)
        with IngestPipeline(settings, progress=False) as pipeline:
            assert not pipeline.run([data]).failed
        rankings = {}
        for precision in (built, queried):
            retriever = Retriever(settings.model_copy(update={"embed_precision": precision}))
            try:
                rankings[precision] = [
                    [h.id for h in retriever.run(q, groups=UNRESTRICTED, top_k=5, retriever="dense").hits]
                    for q in questions
                ]
            finally:
                retriever.close()
        for same, mixed in zip(rankings[built], rankings[queried], strict=True):
            assert same[0] == mixed[0]
            assert len(set(same) & set(mixed)) >= 4
        meta = json.loads((settings.index_path / "erag_meta.json").read_text())
        assert meta["embedder"] == FAST_MODEL
