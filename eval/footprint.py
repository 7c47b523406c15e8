"""Index bytes per chunk of each configuration: RAM computed from the layout, disk measured.

Example:
    >>> from eval.configs import CONFIGS
    >>> ram_bytes(CONFIGS["hybrid"], IndexShape(dim=768, hnsw_m=16, sparse_terms=60.0))  # 96 + 128 + 480
    704

RAM is what a configuration's search keeps resident per chunk, from the collection layout (the engine
reports no per-part memory): the dense codes it scores with, plus the layer-0 HNSW links of the dense
graph (2*m neighbour ids of 4 bytes; upper layers add about 1/m of that and are left out), plus for BM25
the postings of the chunk (4-byte point id + 4-byte weight per distinct term). Originals (float32 mode
aside) and the float8 copy are read from disk for the few oversampled candidates only, so they count on
disk, not in RAM. Disk is measured: the blocks the collection's folder occupies (segments, payload with
text, WAL) divided by its chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from eval.configs import EvalConfig

POSTING_BYTES = 8  # u32 point id + f32 weight
LINK_BYTES = 4  # u32 neighbour id
INT8_CORRECTION_BYTES = 4  # Qdrant keeps one f32 offset per int8-quantized vector


@dataclass(frozen=True)
class IndexShape:
    dim: int
    hnsw_m: int
    sparse_terms: float  # mean distinct BM25 terms per chunk


def dense_code_bytes(config: EvalConfig, dim: int) -> int | None:
    """Bytes of the dense representation a configuration scores with in RAM (None: no dense part)."""
    if config.retriever in ("bm25", "peer"):
        return None
    if config.collection == "int8":
        return dim + INT8_CORRECTION_BYTES
    if config.mode == "float32":
        return 4 * dim
    return math.ceil(dim / 8)


def rescore_bytes(config: EvalConfig, dim: int) -> int:
    """Bytes per vector read from disk to rescore the oversampled candidates (originals or the float8 copy)."""
    if config.retriever in ("bm25", "peer") or config.collection == "int8" or config.mode in ("float32", "binary"):
        return 0
    if config.mode == "binary_f8":
        return dim + 4  # one byte per dimension + a float32 scale
    return 4 * dim  # binary_rescore and the default mode: the float32 originals


def ram_bytes(config: EvalConfig, shape: IndexShape) -> int:
    total = 0.0
    code = dense_code_bytes(config, shape.dim)
    if code is not None:
        total += code + 2 * shape.hnsw_m * LINK_BYTES
    if config.retriever in ("bm25", "hybrid"):
        total += POSTING_BYTES * shape.sparse_terms
    return round(total)


RAM_NOTE = (
    "RAM per chunk is computed from the layout: dense codes used for scoring (float32 4*d, int8 d+4, 1-bit d/8) "
    "+ layer-0 HNSW links (2*m ids of 4 B) + BM25 postings (8 B per distinct term); rescoring reads originals "
    "or the float8 copy from disk. Disk per chunk is measured (collection folder / chunks). The peer baseline's "
    "RAM is FAISS's float32 vectors plus the Python objects of its BM25 index and docstore (tracemalloc); its "
    "disk is FAISS.save_local plus the pickled BM25 retriever."
)
