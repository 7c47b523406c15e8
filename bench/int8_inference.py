"""float32 vs int8 embedder inference: chunks/s by length, agreement, and end-to-end ingestion.

Run: `.venv/bin/python bench/int8_inference.py [--models all-mpnet-base-v2,all-MiniLM-L6-v2] [--pages 300]`

Prints, for each model and precision:
- chunks/s when embedding 64 texts of exactly 64, 128 and 256 tokens (cut from SEC 10-Q pages);
- cosine between the float32 and int8 embeddings of those texts (mean and minimum);
- end-to-end ingestion chunks/s of the first `--pages` pages of ../shared/datasets/docugami_sec10q
  (semantic chunking with the breakpoint model, NER, embedding, indexing), each into a fresh index.
Retrieval quality of both precisions comes from the evaluation:
`erag eval ../shared/datasets/scifact --split train --config dense-float32` with ERAG_EMBED_PRECISION=float32
and =int8 (see README).
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from erag.embedder import Embedder
from erag.settings import Settings
from ingest.loaders.beir_corpus import read_corpus
from ingest.pipeline import IngestPipeline

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DOCUGAMI = SHARED / "docugami_sec10q"
LENGTHS = (64, 128, 256)
TEXTS_PER_LENGTH = 64


def texts_of_length(tokenizer, pages: list[str], tokens: int, count: int) -> list[str]:
    """`count` texts of `tokens` word-piece tokens each, cut from consecutive real pages."""
    ids = list(itertools.chain.from_iterable(tokenizer(pages, add_special_tokens=False)["input_ids"]))
    step = max((len(ids) - tokens) // count, 1)
    return [tokenizer.decode(ids[i * step : i * step + tokens]) for i in range(count)]


def throughput(embedder: Embedder, texts: list[str]) -> tuple[float, np.ndarray]:
    embedder.run(texts[:4])  # warm-up: first-call allocations are not the steady state
    started = time.perf_counter()
    vectors = embedder.run(texts)
    return len(texts) / (time.perf_counter() - started), vectors


def ingest_pages(settings: Settings, pages: int) -> tuple[float, dict[str, float], int]:
    documents = list(itertools.islice(read_corpus(DOCUGAMI / "corpus.jsonl"), pages))
    pipeline = IngestPipeline(settings, progress=False)
    pipeline.chunker  # noqa: B018 - models load outside the timed run
    pipeline.tagger  # noqa: B018
    started = time.perf_counter()
    report = pipeline.ingest_documents(documents)
    wall = time.perf_counter() - started
    pipeline.close()
    return report.chunks / wall, report.timings, report.chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="all-mpnet-base-v2,all-MiniLM-L6-v2")
    parser.add_argument("--pages", type=int, default=300, help="docugami pages ingested end to end (0: skip)")
    args = parser.parse_args()
    pages = [json.loads(line)["text"] for line in (DOCUGAMI / "corpus.jsonl").open(encoding="utf-8")][:200]

    print("| model | precision | chunks/s @64 | @128 | @256 | cosine to float32 (mean / min) | ingest chunks/s |")
    print("|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        vectors: dict[str, list[np.ndarray]] = {}
        rows = {}
        for precision in ("float32", "int8"):
            with tempfile.TemporaryDirectory() as home:
                settings = Settings(home=Path(home), embedder=model, embed_precision=precision)
                embedder = Embedder.from_settings(settings)
                speeds = []
                for tokens in LENGTHS:
                    texts = texts_of_length(embedder.tokenizer, pages, tokens, TEXTS_PER_LENGTH)
                    speed, vecs = throughput(embedder, texts)
                    speeds.append(speed)
                    vectors.setdefault(precision, []).append(vecs)
                ingest = "-"
                if args.pages:
                    rate, timings, chunks = ingest_pages(settings, args.pages)
                    stages = ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
                    ingest = f"{rate:.2f} ({chunks} chunks; {stages})"
                rows[precision] = (speeds, ingest)
        cosine = np.concatenate([np.sum(a * b, axis=1) for a, b in zip(vectors["float32"], vectors["int8"],
                                                                          strict=True)])
        for precision, (speeds, ingest) in rows.items():
            agree = "1 / 1" if precision == "float32" else f"{cosine.mean():.4f} / {cosine.min():.4f}"
            cells = " | ".join(f"{s:.1f}" for s in speeds)
            print(f"| {model} | {precision} | {cells} | {agree} | {ingest} |", flush=True)
        ratio = [i / f for f, i in zip(rows["float32"][0], rows["int8"][0], strict=True)]
        print(f"| {model} | int8 speed-up | " + " | ".join(f"{r:.2f}x" for r in ratio) + " | | |", flush=True)


if __name__ == "__main__":
    main()
