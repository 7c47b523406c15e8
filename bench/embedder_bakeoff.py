"""Embedder bake-off: the packaged int8 embedders against nomic-embed-text-v1.5 (f16 GGUF on llama.cpp).

Run: `flock /tmp/erag-heavy.lock .venv/bin/python bench/embedder_bakeoff.py [--models a,b] [--packing] [--quality 300]`

Prints one row per model, each measured in a fresh child process (so one model's libraries and buffers do not
count against the next): chunks/s when embedding 64 texts of exactly 64, 128 and 256 tokens cut from SEC 10-Q
pages (the cut of bench/int8_inference.py, so the rows compare with its table; best of `--repeats` runs, as
documents through `Embedder.run`, batch 32), query embedding ms (p50/p95 over the first 50 docugami
questions, one at a time, with the query prompt where the model has one), load time, and the process's
resident memory: growth from a bare process to the model loaded and warmed up (its libraries included:
torch and ONNX Runtime for the int8 models, llama.cpp for nomic, whose weights are mmapped and count once
read), further growth while embedding those texts (working buffers that stay), and the peak.
`--packing` prints, for nomic only, chunks/s by how many tokens share one llama.cpp call.
`--quality N` prints dense-only MRR@10 and Recall@10 on smoke/scifact_mini (50 claims against their gold
abstracts plus the first distractors, N abstracts in all, each cut to its first 180 words): a sanity check
of ranking quality, not the evaluation (that is `erag eval` with ERAG_EMBEDDER set).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "datasets"
DOCUGAMI = SHARED / "docugami_sec10q"
SCIFACT_MINI = SHARED / "smoke" / "scifact_mini"
MODELS = ("all-MiniLM-L6-v2", "all-mpnet-base-v2", "nomic-embed-text-v1.5", "nomic-embed-text-v1.5-256")
LENGTHS = (64, 128, 256)
TEXTS_PER_LENGTH = 64
QUERIES = 50


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def texts_of_length(tokenizer, pages: list[str], tokens: int, count: int) -> list[str]:
    """`count` texts of `tokens` word-piece tokens each, cut from consecutive real pages."""
    ids = list(itertools.chain.from_iterable(tokenizer(pages, add_special_tokens=False)["input_ids"]))
    step = max((len(ids) - tokens) // count, 1)
    return [tokenizer.decode(ids[i * step : i * step + tokens]) for i in range(count)]


def load_embedder(name: str):
    """The product's Embedder for `name`; nomic through the GGUF encoder (until Embedder.from_settings knows it)."""
    from erag.embedder import Embedder
    from erag.gguf_encoder import load_nomic_encoder
    from erag.models import nomic_dims
    from erag.settings import Settings

    settings = Settings(home=Path("/tmp/erag-bakeoff-unused"), embedder=name)
    if nomic_dims(name):
        model = load_nomic_encoder(name, settings.model_cache, settings.torch_threads)
        return Embedder(model, name, settings.embed_batch_size, "f16")
    return Embedder.from_settings(settings, name)


def embed_queries(embedder, texts: list[str]) -> np.ndarray:
    """Queries as the product should embed them: with the model's query prompt when it has one."""
    run_queries = getattr(embedder, "run_queries", None)
    if run_queries is not None:
        return run_queries(texts)
    prompt = {"prompt_name": "query"} if "query" in (getattr(embedder.model, "prompts", None) or {}) else {}
    return embedder.model.encode(texts, batch_size=len(texts), normalize_embeddings=True, **prompt)


def measure(name: str, repeats: int) -> dict:
    pages = [json.loads(line)["text"] for line in (DOCUGAMI / "corpus.jsonl").open(encoding="utf-8")][:200]
    queries = [json.loads(line)["text"] for line in (DOCUGAMI / "queries.jsonl").open(encoding="utf-8")][:QUERIES]
    before = rss_mb()
    started = time.perf_counter()
    embedder = load_embedder(name)
    embedder.run(["warm-up"])
    load_s = time.perf_counter() - started
    loaded = rss_mb()
    speeds = []
    for tokens in LENGTHS:
        texts = texts_of_length(embedder.tokenizer, pages, tokens, TEXTS_PER_LENGTH)
        embedder.run(texts[:4])  # first-call allocations are not the steady state
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            vectors = embedder.run(texts)
            best = min(best, time.perf_counter() - t0)
        assert vectors.shape == (len(texts), embedder.dim)
        speeds.append(len(texts) / best)
    for query in queries[:3]:
        embed_queries(embedder, [query])
    latencies = []
    for query in queries:
        t0 = time.perf_counter()
        embed_queries(embedder, [query])
        latencies.append((time.perf_counter() - t0) * 1000)
    return {
        "model": name, "dim": embedder.dim, "precision": embedder.precision, "speeds": speeds,
        "p50": float(np.percentile(latencies, 50)), "p95": float(np.percentile(latencies, 95)),
        "load_s": load_s, "load_mb": loaded - before, "work_mb": rss_mb() - loaded,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def packing(repeats: int) -> list[dict]:
    """nomic chunks/s by tokens per llama.cpp call (pack 1 = one text per call; context = the call's size)."""
    from erag.gguf_encoder import GgufSentenceEncoder, nomic_tokenizer_path
    from erag.nomic_model import nomic_gguf_path
    from erag.settings import Settings

    cache = Settings(home=Path("/tmp/erag-bakeoff-unused")).model_cache
    pages = [json.loads(line)["text"] for line in (DOCUGAMI / "corpus.jsonl").open(encoding="utf-8")][:200]
    rows = []
    for pack, context in ((1, None), (256, None), (768, None), (2048, 2048)):
        encoder = GgufSentenceEncoder(nomic_gguf_path(cache), nomic_tokenizer_path(cache), pack_tokens=pack,
                                      context_tokens=context)
        speeds = []
        for tokens in (8, 32, 64, 128, 256):
            texts = texts_of_length(encoder.tokenizer, pages, tokens, TEXTS_PER_LENGTH)
            encoder.encode(texts[:4], batch_size=64)
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                encoder.encode(texts, batch_size=64)
                best = min(best, time.perf_counter() - t0)
            speeds.append(len(texts) / best)
        rows.append({"pack": pack, "context": encoder.context_tokens, "speeds": speeds})
        encoder.close()
    return rows


def quality(name: str, docs: int) -> list[dict]:
    """Dense-only MRR@10 / Recall@10 on scifact_mini; nomic's raw vectors give every width (and the
    768-d vector with the layer norm of the Matryoshka recipe) from one embedding pass."""
    from erag.gguf_encoder import matryoshka
    from erag.models import nomic_dims

    qrels: dict[str, set[str]] = {}
    with (SCIFACT_MINI / "qrels" / "train.tsv").open() as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            qrels.setdefault(row["query-id"], set()).add(row["corpus-id"])
    queries = [q for q in map(json.loads, (SCIFACT_MINI / "queries.jsonl").open()) if q["_id"] in qrels]
    corpus = list(map(json.loads, (SCIFACT_MINI / "corpus.jsonl").open()))
    gold = set().union(*qrels.values())
    chosen = [d for d in corpus if d["_id"] in gold]
    chosen += [d for d in corpus if d["_id"] not in gold][: max(docs - len(chosen), 0)]
    texts = [" ".join(f"{d.get('title', '')}. {d['text']}".split()[:180]) for d in chosen]
    ids = [d["_id"] for d in chosen]
    embedder = load_embedder(name)
    if nomic_dims(name):
        encoder = embedder.model
        raw_d = encoder.encode(texts, prompt_name="document", normalize_embeddings=False)
        raw_q = encoder.encode([q["text"] for q in queries], prompt_name="query", normalize_embeddings=False)
        # Whether the recipe's layer norm belongs at full width too: the encoder leaves it out there.
        layer_normed = tuple((v - v.mean(1, keepdims=True)) / v.std(1, keepdims=True) for v in (raw_d, raw_q))
        variants = {f"{name} (768)": (raw_d, raw_q), f"{name} (768, layer norm)": layer_normed}
        for dims in (512, 256, 128):
            variants[f"{name} ({dims})"] = (matryoshka(raw_d, dims), matryoshka(raw_q, dims))
    else:
        variants = {name: (embedder.run(texts), embed_queries(embedder, [q["text"] for q in queries]))}
    rows = []
    for label, (d, q) in variants.items():
        d = d / np.linalg.norm(d, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        top = np.argsort(-(q @ d.T), axis=1)[:, :10]
        rr, recall = [], []
        for query, row in zip(queries, top, strict=True):
            ranked = [ids[i] for i in row]
            relevant = qrels[query["_id"]]
            rr.append(next((1 / (r + 1) for r, doc in enumerate(ranked) if doc in relevant), 0.0))
            recall.append(len(relevant & set(ranked)) / len(relevant))
        rows.append({"model": label, "mrr": float(np.mean(rr)), "recall": float(np.mean(recall)), "docs": len(ids)})
    return rows


def child(args: list[str]) -> list[dict] | dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per length; the best counts")
    parser.add_argument("--packing", action="store_true", help="also: nomic chunks/s by tokens per llama.cpp call")
    parser.add_argument("--quality", type=int, default=0, metavar="N", help="also: scifact_mini sanity check")
    parser.add_argument("--child", choices=("measure", "packing", "quality"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "measure":
        print(json.dumps(measure(args.model, args.repeats)))
        return
    if args.child == "packing":
        print(json.dumps(packing(args.repeats)))
        return
    if args.child == "quality":
        print(json.dumps(quality(args.model, args.quality)))
        return

    print("| model | dim | inference | chunks/s @64 | @128 | @256 | query ms p50 | p95 | load s | RAM MB: load "
          "| + embedding | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        r = child(["--child", "measure", "--model", name, "--repeats", str(args.repeats)])
        speeds = " | ".join(f"{s:.1f}" for s in r["speeds"])
        print(f"| {r['model']} | {r['dim']} | {r['precision']} | {speeds} | {r['p50']:.0f} | {r['p95']:.0f} | "
              f"{r['load_s']:.1f} | {r['load_mb']:.0f} | {r['work_mb']:.0f} | {r['peak_rss_mb']:.0f} |", flush=True)
    if args.packing:
        print("\n| nomic: tokens per llama.cpp call | context | chunks/s @8 | @32 | @64 | @128 | @256 |")
        print("|---|---|---|---|---|---|---|")
        for r in child(["--child", "packing", "--repeats", "1"]):  # 5 lengths x 4 layouts: one timed run each
            pack = "one text" if r["pack"] == 1 else f"up to {r['pack']}"
            print(f"| {pack} | {r['context']} | " + " | ".join(f"{s:.1f}" for s in r["speeds"]) + " |", flush=True)
    if args.quality:
        print("\n| model (scifact_mini, dense only) | MRR@10 | Recall@10 | abstracts |")
        print("|---|---|---|---|")
        names = [n for n in args.models.split(",") if n != "nomic-embed-text-v1.5-256"]  # one pass gives both
        for name in names:
            for r in child(["--child", "quality", "--model", name, "--quality", str(args.quality)]):
                print(f"| {r['model']} | {r['mrr']:.3f} | {r['recall']:.3f} | {r['docs']} |", flush=True)


if __name__ == "__main__":
    main()
