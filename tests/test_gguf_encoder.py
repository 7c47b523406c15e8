"""nomic-embed-text-v1.5 from its PyPI parts: extracted and verified, then embedding through llama.cpp.

The real model runs throughout (one extraction and one load per module); damaged copies and parts are made
from the real files.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from erag import nomic_model
from erag.embedder import Embedder
from erag.gguf_encoder import (
    NOMIC_MAX_SEQ_LENGTH,
    GgufSentenceEncoder,
    load_nomic_encoder,
    matryoshka,
    nomic_tokenizer_path,
)
from erag.model_files import ModelNotAvailable, sha256_file

REPO = Path(__file__).resolve().parents[1]
SCIFACT_MINI = REPO.parent / "shared" / "datasets" / "smoke" / "scifact_mini"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nomic-cache")


@pytest.fixture(scope="module")
def gguf(cache: Path) -> Path:
    return nomic_model.nomic_gguf_path(cache)


@pytest.fixture(scope="module")
def encoder(gguf: Path, cache: Path) -> GgufSentenceEncoder:
    return GgufSentenceEncoder(gguf, nomic_tokenizer_path(cache))


@pytest.fixture(scope="module")
def encoder_256(gguf: Path, cache: Path) -> GgufSentenceEncoder:
    return GgufSentenceEncoder(gguf, nomic_tokenizer_path(cache), dims=256)


def scifact_pairs(count: int) -> tuple[list[str], list[str]]:
    """The first `count` claims of scifact_mini with a gold abstract of their own (title and first 150 words;
    a claim whose abstract an earlier claim took is skipped, so every row has one right answer)."""
    corpus = {d["_id"]: d for d in map(json.loads, (SCIFACT_MINI / "corpus.jsonl").open())}
    claims = {q["_id"]: q["text"] for q in map(json.loads, (SCIFACT_MINI / "queries.jsonl").open())}
    queries, passages, asked, used = [], [], set(), set()
    with (SCIFACT_MINI / "qrels" / "train.tsv").open() as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["query-id"] in asked or row["corpus-id"] in used or len(queries) == count:
                continue
            asked.add(row["query-id"])
            used.add(row["corpus-id"])
            doc = corpus[row["corpus-id"]]
            queries.append(claims[row["query-id"]])
            passages.append(" ".join(f"{doc['title']}. {doc['text']}".split()[:150]))
    return queries, passages


def test_gguf_is_extracted_from_the_packages_and_verified(gguf: Path, cache: Path) -> None:
    assert gguf == cache / "nomic-embed-text-v1.5.f16.gguf"
    assert gguf.stat().st_size == nomic_model.NOMIC_SIZE
    assert sha256_file(gguf) == nomic_model.NOMIC_SHA256
    assert gguf.read_bytes()[:4] == b"GGUF"
    assert not list(cache.glob("*.partial"))
    # A second call trusts its marker: nothing is inflated or rewritten.
    mtime = gguf.stat().st_mtime_ns
    assert nomic_model.nomic_gguf_path(cache) == gguf
    assert gguf.stat().st_mtime_ns == mtime


def test_a_damaged_copy_is_rebuilt(gguf: Path, tmp_path: Path) -> None:
    copy = tmp_path / gguf.name
    shutil.copyfile(gguf, copy)
    marker = copy.with_name(copy.name + ".sha256")
    marker.write_text(nomic_model._marker_text(copy))
    assert nomic_model.nomic_gguf_path(tmp_path) == copy  # a copy with its marker is taken as it is
    stat = copy.stat()
    with copy.open("r+b") as fh:  # damage the weights in place
        fh.seek(100_000_000)
        fh.write(b"\xff" * 64)
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even when the time stamp is put back ...
    assert nomic_model.nomic_gguf_path(tmp_path, verify=True) == copy  # ... a verifying call rebuilds it
    assert sha256_file(copy) == nomic_model.NOMIC_SHA256
    with copy.open("r+b") as fh:  # an ordinary write changes the time stamp: the cheap check rebuilds too
        fh.seek(200_000_000)
        fh.write(b"\x00" * 64)
    assert nomic_model.nomic_gguf_path(tmp_path) == copy
    assert sha256_file(copy) == nomic_model.NOMIC_SHA256


def test_damaged_or_missing_parts_are_refused(tmp_path: Path) -> None:
    parts = nomic_model.packaged_parts()
    last = tmp_path / "gpt4all.zip.012"
    data = bytearray(parts[-1].read_bytes())
    data[400_000] ^= 0xFF  # inside the model's deflate stream, which ends in the last part
    last.write_bytes(bytes(data))
    with pytest.raises(ModelNotAvailable, match="damaged"):
        nomic_model.nomic_gguf_path(tmp_path / "a", parts=[*parts[:-1], last])
    assert {p.name for p in (tmp_path / "a").iterdir()} == {"nomic-embed-text-v1.5.f16.gguf.lock"}  # no partial

    with pytest.raises(ModelNotAvailable, match="do not hold"):  # the first part missing
        nomic_model.nomic_gguf_path(tmp_path / "b", parts=parts[1:])
    cut = tmp_path / "cut.012"
    cut.write_bytes(bytes(data[:-100]))  # the end of the archive lost
    with pytest.raises(ModelNotAvailable, match="does not end a zip archive"):
        nomic_model.nomic_gguf_path(tmp_path / "c", parts=[*parts[:-1], cut])


def test_llama_cpp_pools_by_the_mean_of_token_vectors(encoder: GgufSentenceEncoder, gguf: Path) -> None:
    import llama_cpp

    assert encoder.model.metadata["nomic-bert.pooling_type"] == str(llama_cpp.LLAMA_POOLING_TYPE_MEAN)
    tokens = llama_cpp.Llama(model_path=str(gguf), embedding=True, n_ctx=512, n_batch=512, n_ubatch=512,
                             pooling_type=llama_cpp.LLAMA_POOLING_TYPE_NONE, n_threads=2, verbose=False)
    text = "search_document: Primary carers receive 26 weeks of leave at full pay."
    per_token = np.asarray(tokens.embed(text, normalize=False), dtype=np.float32)
    tokens.close()
    pooled = encoder.encode([text], prompt="", normalize_embeddings=False)[0]
    assert per_token.shape == (encoder.count_tokens(text), 768)
    np.testing.assert_allclose(pooled, per_token.mean(axis=0), atol=1e-4)
    assert not np.allclose(pooled, per_token[0], atol=1e-2)  # not [CLS]


def test_the_packaged_minilm_tokenizer_counts_as_llama_cpp_does(encoder: GgufSentenceEncoder) -> None:
    vocab = (nomic_tokenizer_path(Path("/unused")) / "vocab.txt").read_text(encoding="utf-8").splitlines()
    # llama.cpp stores WordPiece as "▁word" for a word start and "ing" for "##ing"; special tokens as they are.
    as_gguf = [t[2:] if t.startswith("##") else t if t.startswith("[") and t.endswith("]") else "\u2581" + t
               for t in vocab]
    n = encoder.model.n_vocab()
    assert n == len(vocab) == 30522
    assert [encoder.model._model.token_get_text(i) for i in range(n)] == as_gguf
    texts = [(REPO / "data" / "hr" / "parental_leave_policy.md").read_text(encoding="utf-8"),
             (REPO / "data" / "it" / "security_faq.txt").read_text(encoding="utf-8"),
             "Café naïve résumé: “quoted” ½ 10-Q, 東京 データ, emoji 😀, tab\tand\u00a0space"]
    for text in texts:
        ids = encoder.tokenizer(text)["input_ids"]
        assert encoder.model.tokenize(text.encode(), add_bos=True, special=False) == ids


def test_embeddings_are_normalised_at_768_and_256(encoder: GgufSentenceEncoder,
                                                  encoder_256: GgufSentenceEncoder) -> None:
    texts = ["How many weeks of parental leave do I get?", "USB storage devices are blocked on all laptops."]
    full, small = encoder.encode(texts), encoder_256.encode(texts)
    assert (encoder.get_embedding_dimension(), encoder_256.get_embedding_dimension()) == (768, 256)
    assert full.shape == (2, 768) and small.shape == (2, 256) and full.dtype == small.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(small, axis=1), 1.0, atol=1e-5)
    # 256-d is nomic's Matryoshka recipe on the same pooled vector: layer norm, first 256 values, L2.
    raw = encoder.encode(texts, normalize_embeddings=False)
    recipe = matryoshka(raw, 256)
    np.testing.assert_allclose(small, recipe / np.linalg.norm(recipe, axis=1, keepdims=True), atol=1e-5)
    assert encoder.encode(texts[0]).shape == (768,)  # one string gives one vector, as sentence-transformers


def test_query_and_document_prompts_differ(encoder: GgufSentenceEncoder) -> None:
    text = "parental leave for part-time staff"
    query, document = encoder.encode([text], prompt_name="query"), encoder.encode([text], prompt_name="document")
    assert float(query[0] @ document[0]) < 0.99
    np.testing.assert_allclose(document, encoder.encode([text]), atol=1e-6)  # documents are the default
    np.testing.assert_allclose(query, encoder.encode([text], prompt="search_query: "), atol=1e-6)
    with pytest.raises(ValueError, match="prompt_name"):
        encoder.encode([text], prompt_name="clustering")


@pytest.mark.parametrize("width", [768, 256])
def test_a_query_is_closer_to_its_passage_than_to_the_others(width: int, encoder: GgufSentenceEncoder,
                                                             encoder_256: GgufSentenceEncoder) -> None:
    model = encoder if width == 768 else encoder_256
    queries, passages = scifact_pairs(8)
    scores = model.encode(queries, prompt_name="query") @ model.encode(passages, prompt_name="document").T
    assert list(scores.argmax(axis=1)) == list(range(len(queries))), np.round(scores, 3)


def test_packing_texts_into_one_call_changes_no_vector(encoder: GgufSentenceEncoder) -> None:
    texts = ["VPN token", "Reset your VPN token in the SafeKey portal.", "parental leave",
             "Primary carers receive 26 weeks of leave at full pay. " * 3, "USB sticks are blocked."]
    packed = encoder.encode(texts, batch_size=32)
    alone = np.stack([encoder.encode([t], batch_size=1)[0] for t in texts])
    np.testing.assert_allclose(packed, alone, atol=2e-3)
    with ThreadPoolExecutor(4) as pool:  # one llama.cpp context shared by threads: they take turns
        threaded = list(pool.map(lambda t: encoder.encode([t])[0], texts * 2))
    np.testing.assert_allclose(np.stack(threaded[: len(texts)]), alone, atol=2e-3)


def test_long_texts_are_cut_to_the_window_with_their_closing_token(encoder: GgufSentenceEncoder) -> None:
    page = (REPO / "data" / "hr" / "parental_leave_policy.md").read_text(encoding="utf-8")
    assert encoder.count_tokens(page) > encoder.window
    cut, count = encoder._fit(page)
    assert count <= encoder.window and page.startswith(cut)
    assert encoder.max_seq_length == NOMIC_MAX_SEQ_LENGTH == 512
    # llama.cpp splits a 300-character word that the Hugging Face tokenizer counts as one [UNK]: still cut.
    word = "x" * 300 + " "
    cut, count = encoder._fit(word * 200)
    assert count <= encoder.window
    assert encoder.encode([page, word * 200]).shape == (2, 768)


def test_the_product_embedder_wraps_it_and_names_resolve(encoder: GgufSentenceEncoder, cache: Path) -> None:
    embedder = Embedder(encoder, "nomic-embed-text-v1.5", 32, "f16")
    assert embedder.dim == 768 and embedder.max_tokens == 512
    assert embedder.tokenizer("parental leave", add_special_tokens=False)["input_ids"] == [18643, 2681]
    vectors = embedder.run(["parental leave", "VPN token"])
    assert vectors.shape == (2, 768)
    np.testing.assert_allclose(vectors, encoder.encode(["parental leave", "VPN token"]), atol=1e-6)
    small = load_nomic_encoder("nomic-ai/nomic-embed-text-v1.5-256", cache)
    assert small is load_nomic_encoder("nomic-embed-text-v1.5-256", cache)  # one context per width
    assert small.get_embedding_dimension() == 256
    with pytest.raises(ModelNotAvailable, match="not a packaged nomic model"):
        load_nomic_encoder("nomic-embed-text-v2", cache)
