"""A compact float8 (e4m3) copy of each dense vector, stored where every backend can fetch it.

Qdrant has no float8 vector type, so the copy travels as a base64 payload field: 4 bytes of scale
plus one byte per dimension (768-d: 1,028 bytes, a quarter of float32). Unit vectors have tiny
components (about 0.04 for 768-d) that e4m3 would flush to zero or round coarsely, so each vector is
scaled to e4m3's full range before casting and the scale is stored in front of the codes.

Example:
    >>> blob = encode(np.array([0.6, 0.8], dtype=np.float32))
    >>> np.allclose(decode(blob), [0.6, 0.8], atol=0.05)
    True
"""

from __future__ import annotations

import base64

import ml_dtypes
import numpy as np

F8 = ml_dtypes.float8_e4m3fn
_F8_MAX = float(ml_dtypes.finfo(F8).max)  # 448


def encode(vector: np.ndarray) -> str:
    vector = np.asarray(vector, dtype=np.float32)
    peak = float(np.max(np.abs(vector))) or 1.0
    scale = np.float32(_F8_MAX / peak)
    codes = (vector * scale).astype(F8)
    return base64.b64encode(scale.tobytes() + codes.tobytes()).decode("ascii")


def decode(blob: str) -> np.ndarray:
    raw = base64.b64decode(blob)
    scale = np.frombuffer(raw[:4], dtype=np.float32)[0]
    return np.frombuffer(raw[4:], dtype=F8).astype(np.float32) / scale


def decode_many(blobs: list[str]) -> np.ndarray:
    """Rows of float32 vectors, renormalised so a dot product with a unit query is a cosine."""
    matrix = np.stack([decode(b) for b in blobs]) if blobs else np.zeros((0, 0), dtype=np.float32)
    if matrix.size:
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-12
    return matrix
