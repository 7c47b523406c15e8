"""Run an int8 ONNX copy of a sentence-transformers model: the `encode` and `predict` calls the product uses.

Example:
    >>> encoder = OnnxSentenceEncoder.load(Path(resolve_model_path("all-mpnet-base-v2", cache)), cache)
    >>> encoder.encode(["How many days of parental leave?"], normalize_embeddings=True).shape
    (1, 768)
    >>> scorer = OnnxCrossEncoder.load(Path("models/reranker"), cache, max_length=256)
    >>> scorer.predict([("vpn token", "To reset your VPN token ...")])

Hand-written rather than sentence-transformers' ONNX backend because that backend needs optimum, which
pins transformers < 4.58 (see erag/int8_build.py). What it re-implements is small: tokenise, run the
session on length-sorted batches, pool as the model's `1_Pooling/config.json` says.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from erag.int8_build import Head, build_int8_onnx, verify


def _session(folder: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])


class _OnnxModel:
    """Shared part: the verified int8 copy, its tokenizer and batched, length-sorted inference."""

    head: Head = "encoder"

    def __init__(self, source: Path, folder: Path, threads: int, max_length: int) -> None:
        from transformers import AutoTokenizer

        manifest = verify(folder)
        self.source = source
        self.folder = folder
        self.input_names: list[str] = manifest["inputs"]
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.max_seq_length = max_length
        self.session = _session(folder, threads)

    @classmethod
    def load(cls, source: Path, cache: Path, threads: int = 2, max_length: int | None = None, log=None):
        folder = build_int8_onnx(Path(source), cache, cls._export_head(Path(source)), log=log)
        return cls(Path(source), folder, threads, max_length or _configured_max_length(Path(source)))

    @classmethod
    def _export_head(cls, source: Path) -> Head:
        """Which part of the model goes into the ONNX copy."""
        return cls.head

    def _batches(self, encodings: list[list[int]], batch_size: int):
        """Indices of inputs grouped by length: padding to the longest of similar lengths wastes little."""
        order = np.argsort([-len(ids) for ids in encodings], kind="stable")
        for start in range(0, len(order), batch_size):
            yield order[start : start + batch_size]

    def _run(self, features: dict[str, list[list[int]]], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(features["input_ids"][i]) for i in rows)
        feed = {}
        for name in self.input_names:
            pad = self.tokenizer.pad_token_id if name == "input_ids" else 0
            batch = np.full((len(rows), width), pad or 0, dtype=np.int64)
            for r, i in enumerate(rows):
                ids = features[name][i]
                batch[r, : len(ids)] = ids
            feed[name] = batch
        return self.session.run(None, feed)[0], feed["attention_mask"]


class OnnxSentenceEncoder(_OnnxModel):
    """Sentence embeddings from the int8 copy, pooled like the source model (mean, CLS or max)."""

    head: Head = "encoder"

    def __init__(self, source: Path, folder: Path, threads: int, max_length: int) -> None:
        super().__init__(source, folder, threads, max_length)
        self.pooling = _pooling_mode(source)
        self.dim = int(json.loads((source / "config.json").read_text())["hidden_size"])

    def get_embedding_dimension(self) -> int:
        return self.dim

    def encode(
        self, sentences: Sequence[str], batch_size: int = 32, normalize_embeddings: bool = True, **_ignored
    ) -> np.ndarray:
        if not sentences:
            return np.zeros((0, self.dim), dtype=np.float32)
        features = self.tokenizer(
            list(sentences), truncation=True, max_length=self.max_seq_length, padding=False
        )
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        for rows in self._batches(features["input_ids"], batch_size):
            hidden, mask = self._run(features, rows)
            out[rows] = self._pool(hidden, mask)
        if normalize_embeddings:
            out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-12
        return out

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return _pool(hidden, mask, self.pooling)


class OnnxCrossEncoder(_OnnxModel):
    """Relevance scores of (query, passage) pairs from the int8 copy of a cross-encoder (sigmoid of the logit,
    as sentence-transformers' CrossEncoder returns for one-label models)."""

    head: Head = "classifier"

    def __init__(self, source: Path, folder: Path, threads: int, max_length: int) -> None:
        super().__init__(source, folder, threads, max_length)
        self.score_head = pooled_score_head(source)
        self.pooling = _pooling_mode(source)

    @classmethod
    def _export_head(cls, source: Path) -> Head:
        # A cross-encoder that scores a pooled vector (the project's own reranker) runs its encoder in ONNX
        # and the pooling and one-row linear layer here; a classification checkpoint runs whole.
        return "encoder" if _score_dense_folder(source) is not None else cls.head

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 16, **_ignored) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        queries, passages = [p[0] for p in pairs], [p[1] for p in pairs]
        features = self.tokenizer(
            queries, passages, truncation="only_second", max_length=self.max_seq_length, padding=False
        )
        logits = np.zeros(len(pairs), dtype=np.float32)
        for rows in self._batches(features["input_ids"], batch_size):
            out, mask = self._run(features, rows)
            if self.score_head is None:
                logits[rows] = out[:, 0]
            else:
                weight, bias = self.score_head
                logits[rows] = _pool(out, mask, self.pooling) @ weight + bias
        return 1.0 / (1.0 + np.exp(-logits))


def _configured_max_length(source: Path) -> int:
    config = source / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


def _pooling_mode(source: Path) -> str:
    """mean, cls or max, as the model's `1_Pooling/config.json` says (mean when it has none)."""
    pooling = source / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text()) if pooling.is_file() else {"pooling_mode": "mean"}
    mode = config.get("pooling_mode")
    if isinstance(mode, str):
        return mode if mode in ("cls", "max") else "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_max_tokens"):
        return "max"
    return "mean"


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "cls":
        return hidden[:, 0]
    weights = mask[..., None].astype(np.float32)
    if mode == "max":
        return np.where(weights > 0, hidden, -1e9).max(axis=1)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def _score_dense_folder(source: Path) -> Path | None:
    """The folder of the Dense module that turns a pooled vector into the score, when the sentence-transformers
    CrossEncoder in `source` is built that way (Transformer, Pooling, Dense -> "scores"); None otherwise.
    Reads configs only, so choosing the export head costs no weight loading."""
    modules = source / "modules.json"
    if not modules.is_file():
        return None
    for module in json.loads(modules.read_text()):
        if not module.get("type", "").endswith(".Dense"):
            continue
        folder = source / module["path"]
        config = json.loads((folder / "config.json").read_text())
        if config.get("module_output_name") == "scores" and int(config.get("out_features", 0)) == 1:
            return folder
    return None


def pooled_score_head(source: Path) -> tuple[np.ndarray, float] | None:
    """(weight, bias) of the pooled score head (see `_score_dense_folder`); None for other cross-encoders."""
    folder = _score_dense_folder(source)
    if folder is None:
        return None
    from safetensors.numpy import load_file

    tensors = load_file(str(folder / "model.safetensors"))
    weight = tensors["linear.weight"].astype(np.float32)[0]
    bias = tensors.get("linear.bias")
    return weight, float(bias.astype(np.float32)[0]) if bias is not None else 0.0
