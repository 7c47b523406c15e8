"""Ingestion throughput (chunks/s, split into parse, NER, embed, index) and index bytes per chunk.

Run: `.venv/bin/python bench/ingest_throughput.py [PATH ...] [--embedders nomic-embed-text-v1.5,all-mpnet-base-v2]`
Default corpus: the sample company in data/ plus the HR-policy PDFs in ../shared/datasets/h2o_hr_policy.
Each embedder ingests into a fresh index in a temporary folder; nothing is left behind.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from erag.embedder import Embedder
from erag.settings import Settings
from index.backends import open_store
from ingest.pipeline import IngestPipeline

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = [REPO / "data", REPO.parent / "shared" / "datasets" / "h2o_hr_policy"]


def layout_bytes(dim: int, m: int) -> dict[str, dict[str, float]]:
    """Bytes per chunk of the dense part by layout (HNSW level-0 links: 2*m ids of 4 bytes)."""
    graph = 2 * m * 4
    return {
        "float32 in RAM": {"ram": 4 * dim + graph, "disk": 4 * dim + graph},
        "binary codes in RAM + originals on disk + float8 payload": {
            "ram": dim / 8 + graph,
            "disk": 4 * dim + dim / 8 + graph + 4 * ((dim + 4 + 2) // 3),
        },
    }


def bench(embedder_name: str, paths: list[Path]) -> None:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), embedder=embedder_name)
        started = time.perf_counter()
        embedder = Embedder.from_settings(settings)
        load_s = time.perf_counter() - started
        pipeline = IngestPipeline(settings, embedder=embedder, progress=False)
        pipeline.chunker  # noqa: B018 - load the breakpoint model outside the timed run
        pipeline.tagger  # noqa: B018
        started = time.perf_counter()
        report = pipeline.run(paths, prune=False)
        wall = time.perf_counter() - started
        pipeline.close()
        with open_store(settings) as store:
            stats = store.stats()
        n = report.chunks
        t = report.timings
        files = len(report.results)
        print(f"\n## {embedder_name} ({embedder.dim}-d), {files} files, {n} chunks, model load {load_s:.1f}s")
        print(f"end to end: {wall:.1f}s = {n / wall:.2f} chunks/s")
        print("| stage | seconds | chunks/s |\n|---|---|---|")
        for stage in ("parse", "ner", "embed", "index"):
            print(f"| {stage} | {t[stage]:.1f} | {n / t[stage] if t[stage] else float('inf'):.1f} |")
        per_chunk = stats.disk_bytes / n / 1024
        print(f"index on disk (measured, all parts incl. text payload and WAL): {per_chunk:.1f} KB/chunk")
        print("| dense layout | RAM B/chunk | disk B/chunk |\n|---|---|---|")
        for name, b in layout_bytes(embedder.dim, settings.hnsw_m).items():
            print(f"| {name} | {b['ram']:.0f} | {b['disk']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[p for p in DEFAULT_PATHS if p.exists()])
    parser.add_argument("--embedders", default="nomic-embed-text-v1.5,all-mpnet-base-v2,all-MiniLM-L6-v2")
    args = parser.parse_args()
    for name in args.embedders.split(","):
        bench(name, args.paths)


if __name__ == "__main__":
    main()
