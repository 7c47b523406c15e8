"""The files of packaged models: where an installed weights package is, checksums, joining split archives.

The lowest of the model modules (`erag.models`, `erag.int8_build`, `erag.onnx_encoder`, `erag.nomic_model`,
`erag.gguf_encoder` and the app's LLM all build on it, and it imports none of them).

Example:
    >>> join_parts(parts, cache / "model.zip.partial", EXPECTED_SHA256, "all-mpnet-base-v2")  # or ModelNotAvailable
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

# Nothing may be fetched from a hub at run time; set before transformers is imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # token-count calls on long texts warn needlessly
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# OpenMP threads that spin after each op steal the cores from Qdrant's search threads and from a worker
# ingesting beside the app: measured here, a short mpnet query took p50 254 ms / p95 1.28 s spinning
# against a busy neighbour and 100 / 150 ms passive. Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class ModelNotAvailable(RuntimeError):
    """A packaged model is not installed or its files are damaged."""


def site_dir(top_level: str) -> Path:
    """Folder of an installed top-level package that may not be importable (its name has dashes)."""
    import sysconfig

    for key in ("purelib", "platlib"):
        candidate = Path(sysconfig.get_paths()[key]) / top_level
        if candidate.is_dir():
            return candidate
    raise ModelNotAvailable(
        f"{top_level} is not installed: run `make install` (model packages are installed with --no-deps)"
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def join_parts(parts: Sequence[Path], target: Path, sha256: str, what: str) -> None:
    """Write `parts` one after the other into `target` and check the sha256 of the result; on a mismatch the
    joined file is removed and ModelNotAvailable says "`what` parts are damaged"."""
    with target.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 22)
    actual = sha256_file(target)
    if actual != sha256:
        target.unlink()
        raise ModelNotAvailable(f"{what} parts are damaged: sha256 {actual} != {sha256}")
