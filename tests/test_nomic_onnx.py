"""nomic-embed-text-v1.5's int8 ONNX copy, built from the packaged GGUF, against llama.cpp's run of the same file.

Real models throughout: the copy is built (or reused) in the product's model cache, and llama.cpp embeds the
same texts as the reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from erag.embedder import Embedder
from erag.gguf_encoder import GgufSentenceEncoder, load_nomic_encoder
from erag.model_files import ModelNotAvailable
from erag.nomic_onnx import OnnxNomicEncoder, _module_from_gguf, load_nomic_int8
from erag.settings import Settings
from tests.test_gguf_encoder import scifact_pairs


@pytest.fixture(scope="module")
def cache() -> Path:
    return Settings().model_cache


@pytest.fixture(scope="module")
def int8(cache: Path) -> OnnxNomicEncoder:
    return load_nomic_int8("nomic-embed-text-v1.5", cache)


@pytest.fixture(scope="module")
def reference(cache: Path) -> GgufSentenceEncoder:
    return load_nomic_encoder("nomic-embed-text-v1.5", cache)


def test_the_copy_keeps_attention_projections_float32_and_agrees_with_llama_cpp(
        int8: OnnxNomicEncoder, reference: GgufSentenceEncoder) -> None:
    manifest = json.loads((int8.folder / "manifest.json").read_text())
    assert {f"/layers.{i}/MatMul" for i in range(12)} <= set(manifest["excluded"])
    assert manifest["agreement"] >= 0.99 and manifest["inputs"] == ["input_ids", "attention_mask"]
    queries, passages = scifact_pairs(24)
    for kind, texts in (("query", queries), ("document", passages)):
        cosines = (int8.encode(texts, prompt_name=kind) * reference.encode(texts, prompt_name=kind)).sum(1)
        assert cosines.min() > 0.98 and cosines.mean() > 0.99, (kind, cosines.min(), cosines.mean())


def test_it_ranks_the_passages_as_llama_cpp_does(int8: OnnxNomicEncoder, reference: GgufSentenceEncoder) -> None:
    queries, passages = scifact_pairs(24)
    ours = int8.encode(queries, prompt_name="query") @ int8.encode(passages, prompt_name="document").T
    theirs = reference.encode(queries, prompt_name="query") @ reference.encode(passages, prompt_name="document").T
    agree = (ours.argmax(1) == theirs.argmax(1)).mean()
    assert agree >= 0.95, agree
    assert (ours.argmax(1) == np.arange(len(queries))).mean() >= 0.6  # and the first hit is mostly the gold one


def test_the_256_cut_and_the_prompts(cache: Path, int8: OnnxNomicEncoder, reference: GgufSentenceEncoder) -> None:
    small = load_nomic_int8("nomic-ai/nomic-embed-text-v1.5-256", cache)
    assert small is load_nomic_int8("nomic-embed-text-v1.5-256", cache)
    texts = ["How many days of parental leave?", "Primary carers receive 26 weeks of leave at full pay."]
    vectors = small.encode(texts, prompt_name="document")
    assert vectors.shape == (2, 256)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    reference_small = load_nomic_encoder("nomic-embed-text-v1.5-256", cache).encode(texts, prompt_name="document")
    assert ((vectors * reference_small).sum(1) > 0.98).all()
    query, document = int8.encode(texts[:1], prompt_name="query"), int8.encode(texts[:1], prompt_name="document")
    assert float(query[0] @ document[0]) < 0.99  # the prompt is read
    with pytest.raises(ValueError, match="prompt_name"):
        int8.encode(texts, prompt_name="passage")
    with pytest.raises(ModelNotAvailable, match="not a packaged nomic model"):
        load_nomic_int8("nomic-embed-text-v2", cache)


def test_a_long_text_is_cut_to_the_window_with_its_closing_token(int8: OnnxNomicEncoder,
                                                                 reference: GgufSentenceEncoder) -> None:
    page = " ".join(f"clause {i} of the travel policy covers hotel rates in Leeds." for i in range(300))
    ids = int8.tokenizer(int8.prompts["document"] + page, truncation=True, max_length=int8.window)["input_ids"]
    assert len(ids) == int8.window and ids[-1] == int8.tokenizer.sep_token_id
    assert float(int8.encode([page])[0] @ reference.encode([page])[0]) > 0.98  # llama.cpp's encoder cuts it too


def test_the_product_embedder_runs_int8_and_the_gguf_at_float32(tmp_path: Path) -> None:
    fast = Embedder.from_settings(Settings(home=tmp_path, embedder="nomic-embed-text-v1.5"))
    assert isinstance(fast.model, OnnxNomicEncoder) and fast.precision == "int8" and fast.dim == 768
    exact = Embedder.from_settings(Settings(home=tmp_path, embedder="nomic-embed-text-v1.5",
                                            embed_precision="float32"))
    assert isinstance(exact.model, GgufSentenceEncoder) and exact.precision == "f16"
    question = "Who approves travel to Leeds?"
    assert float(fast.run_queries([question])[0] @ exact.run_queries([question])[0]) > 0.98
    assert float(fast.run_queries([question])[0] @ fast.run([question])[0]) < 0.99  # query and chunk prompts


def test_a_gguf_of_another_architecture_is_refused(tmp_path: Path) -> None:
    from gguf import GGUFWriter

    path = tmp_path / "tiny.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelNotAvailable, match="holds a llama model, not nomic-bert"):
        _module_from_gguf(path)
