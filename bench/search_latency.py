"""Search latency on 100k chunks: query embedding, first-pass retrieval, rerank of the top 30, total.

Run: `.venv/bin/python bench/search_latency.py [--chunks 100000] [--queries 100]`

The chunks are synthetic (random unit vectors, Zipf-distributed words for BM25): timing depends on the
index size and layout, not on the meaning of the text. The query embedder (ERAG_EMBEDDER's) and the
cross-encoder (packaged MiniLM weights with a fresh head, or the first N layers of them with
`--rerank-layers N`) are the real models.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from erag.embedder import Embedder
from erag.settings import Settings
from erag.sparse_encoder import SparseEncoder
from index import float8
from index.edge_store import EdgeStore
from index.store import IndexPoint
from retrieval.pipeline import Retriever
from retrieval.reranker import Reranker

DEPARTMENTS = ["HR", "IT", "Finance", "Legal", "Sales", "Engineering"]
WORDS_PER_CHUNK = 170  # whole-word tokens: about the 200-token chunks the product writes


def word_vocab(tokenizer) -> list[str]:
    """Whole words of the embedder's own vocabulary, so a synthetic chunk has a realistic token count."""
    words = [w for w in tokenizer.get_vocab() if w.isalpha() and w.isascii() and len(w) > 3]
    return sorted(words)[:20000]


def synthetic_points(n: int, dim: int, vocab: list[str], seed: int = 0, batch: int = 2000):
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    enc = SparseEncoder()
    for start in range(0, n, batch):
        size = min(batch, n - start)
        vecs = rng.normal(size=(size, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        words = rng.choice(len(vocab), size=(size, WORDS_PER_CHUNK), p=weights)  # one draw per batch: fast
        points = []
        for j in range(size):
            i = start + j
            text = " ".join(vocab[w] for w in words[j])
            payload = {
                "text": text, "doc_id": f"doc{i // 10}", "chunk_index": i % 10, "slot": 0, "live": 0,
                "department": DEPARTMENTS[i % len(DEPARTMENTS)], "groups": ["all"] if i % 5 else ["hr"],
                "f8": float8.encode(vecs[j]),
            }
            points.append(IndexPoint(f"{i:032x}", vecs[j], *enc.run(text), payload))
        yield points


def row(stage: str, values: list[float]) -> str:
    return f"| {stage} | {np.percentile(values, 50):.1f} | {np.percentile(values, 95):.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--precisions", default="float32,int8", help="embedder and reranker inference")
    parser.add_argument("--modes", default="binary_rescore,binary_f8,float32")
    parser.add_argument("--fusion-policies", default="bm25_gap,fixed",
                        help="bm25_gap (the default: two lists fused in process) and/or fixed (the engine fuses)")
    parser.add_argument("--reranker", default="all-MiniLM-L6-v2", help="CrossEncoder name or path")
    parser.add_argument("--rerank-tokens", type=int, default=256)
    parser.add_argument("--rerank-layers", type=int, default=None,
                        help="time a student that keeps the first N layers of --reranker (built in a temp folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), query_filters="off")
        embedder = Embedder.from_settings(settings)
        store = EdgeStore(settings)
        store.ensure_collection(embedder.dim, embedder.name)
        started = time.perf_counter()
        vocab = word_vocab(embedder.tokenizer)
        for points in synthetic_points(args.chunks, embedder.dim, vocab):
            store.upsert(points)
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        store.optimize()
        print(f"{args.chunks} chunks: upsert {loaded:.0f}s, optimize (HNSW + binary codes) "
              f"{time.perf_counter() - started:.0f}s, disk {store.stats().disk_bytes / 2**20:.0f} MB")

        rng = np.random.default_rng(1)
        queries = [" ".join(vocab[int(i) % len(vocab)] for i in rng.zipf(1.3, size=8)) for _ in range(args.queries)]
        reranker_name = args.reranker
        if args.rerank_layers:
            reranker_name = str(Path(home) / f"reranker-l{args.rerank_layers}")
            student(args.reranker, settings.model_cache, args.rerank_layers, reranker_name)
        for precision in args.precisions.split(","):
            embedder = Embedder.from_settings(settings.model_copy(update={"embed_precision": precision}))
            reranker = Reranker.from_name(
                reranker_name, settings.model_cache, top_n=30, max_tokens=args.rerank_tokens, precision=precision,
                fused_weight=0.0, fusion="rank",
            )
            retriever = Retriever(settings, store=store, embedder=embedder, reranker=reranker)
            retriever.run(queries[0], groups=["all"], rerank=True)  # warm-up
            print(f"\n{precision} inference; p50/p95 ms over {args.queries} queries, 2 CPU threads, "
                  f"rerank pairs cut to {args.rerank_tokens} tokens, cross-encoder {args.reranker}"
                  + (f" cut to {args.rerank_layers} layers" if args.rerank_layers else ""))
            print("| stage | p50 | p95 |\n|---|---|---|")
            for policy in args.fusion_policies.split(","):
                retriever.searcher.settings = settings.model_copy(update={"fusion_policy": policy})
                print(f"| fusion policy {policy} | | |")
                run_queries(retriever, embedder, reranker, queries, args.modes.split(","))
        store.close()


def student(name: str, cache: Path, layers: int, out: str) -> None:
    """Save the first `layers` layers of a cross-encoder: timing depends on the depth, not on the weights."""
    from sentence_transformers import CrossEncoder

    from erag.models import resolve_model_path
    from retrieval.reranker_training import keep_layers

    model = CrossEncoder(resolve_model_path(name, cache), num_labels=1, device="cpu")
    keep_layers(model, layers).save(out)


def run_queries(retriever: Retriever, embedder: Embedder, reranker: Reranker, queries: list[str],
                modes: list[str]) -> None:
    for mode in modes:
        embed_ms, first_ms, rerank_ms, total_ms, total_rr_ms = [], [], [], [], []
        for q in queries:
            t0 = time.perf_counter()
            vec = embedder.run_queries([q])[0]
            t1 = time.perf_counter()
            # The same call the product makes, minus the embedding measured above.
            retriever.searcher.embedder = _Fixed(vec, embedder)
            result = retriever.run(q, top_k=30, mode=mode, groups=["all"], rerank=False)
            t2 = time.perf_counter()
            reranker.run(q, result.hits)
            t3 = time.perf_counter()
            retriever.searcher.embedder = embedder
            embed_ms.append((t1 - t0) * 1000)
            first_ms.append((t2 - t1) * 1000)
            rerank_ms.append((t3 - t2) * 1000)
            total_ms.append((t2 - t0) * 1000)
            total_rr_ms.append((t3 - t0) * 1000)
        print(row("query embedding", embed_ms))
        print(row(f"first pass: {mode} + BM25, fused, access filter", first_ms))
        print(row("rerank top 30 (cross-encoder)", rerank_ms))
        print(row(f"total without rerank ({mode})", total_ms))
        print(row(f"total with rerank ({mode})", total_rr_ms))


class _Fixed:
    """Hands the searcher an embedding computed (and timed) outside it."""

    def __init__(self, vector: np.ndarray, real: Embedder) -> None:
        self.vector, self.name, self.dim = vector, real.name, real.dim

    def run(self, texts, show_progress: bool = False) -> np.ndarray:
        return np.stack([self.vector for _ in texts])


if __name__ == "__main__":
    main()
