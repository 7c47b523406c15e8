"""Build an int8 ONNX copy of a packaged transformer encoder, offline, once, cached with a checksum.

Example:
    >>> folder = build_int8_onnx(Path(resolve_model_path("all-mpnet-base-v2", cache)), cache, head="encoder")
    >>> (folder / "model.onnx").exists(), json.loads((folder / "manifest.json").read_text())["excluded"]
    (True, ['/encoder/layer.6/output/dense/MatMul', ...])

The float32 weights are exported with `torch.onnx.export` and quantized with ONNX Runtime's dynamic int8
quantization (per-channel int8 weights, activations quantized per tensor at run time). Why not
sentence-transformers' own ONNX backend: it needs optimum, whose releases pin transformers < 4.58, and
this project runs transformers 5.

Why some MatMuls stay float32: quantizing every MatMul of all-mpnet-base-v2 gives embeddings with a mean
cosine of only 0.87 to the float32 ones (measured on SciFact abstracts). The damage comes from the
feed-forward output projections of layers 6-10, whose inputs (after GELU) carry a few channels 30-60x
larger than the median channel: one per-tensor activation scale cannot represent both. Those inputs are
found by calibration (peak / median channel magnitude over a few sentences) and their MatMuls are left
in float32; inputs that come straight from a LayerNorm have large ratios too but measured harmless, so
they are quantized. Result for mpnet: mean cosine 0.993, about 2.5x the float32 throughput. Every build is
checked against the float32 export on the calibration texts before it is used (`MIN_AGREEMENT`).
`build_int8_copy` takes any exporter: erag/nomic_onnx.py builds nomic-embed-text-v1.5's copy from its GGUF and
keeps its attention input projections float32 as well (`keep_float32`; measured there).

The cache folder is keyed by the sha256 of the source model's files and of this recipe, so a changed
model (or recipe) builds a new copy; `manifest.json` holds the sha256 of the int8 file, checked on load.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

from erag.model_files import sha256_file

Head = Literal["encoder", "classifier"]
RECIPE = "dynamic-int8-v2"  # change when the export or quantization recipe changes: every cache rebuilds
OUTLIER_RATIO = 16.0  # peak/median channel magnitude above which a non-LayerNorm input stays float32
# Mean cosine of the int8 copy's pooled outputs to the float32 export's, over the calibration texts, below which
# the copy is refused (measured: 0.99 for mpnet and MiniLM with this recipe; 0.05 where it went wrong).
MIN_AGREEMENT = 0.97
_SOURCE_SUFFIXES = {".json", ".safetensors", ".bin", ".txt", ".model"}

# Calibration text: varied register and length (prose, policy, finance, a table row, science), so the
# measured activation ranges resemble what the product embeds. Shipped here: nothing is downloaded.
CALIBRATION = [
    "How many days of parental leave do I get?",
    "Primary carers receive 26 weeks of leave at full pay, and partners receive four weeks at full pay.",
    "To reset your VPN token, open the SafeKey portal, choose Reset token and follow the instructions sent "
    "to your registered phone. Tokens expire after ninety days of inactivity.",
    "| Segment | Q3 2026 revenue | Q3 2025 revenue | Change |\n| Consulting | 6,420 | 5,910 | +8.6% |\n"
    "| Platform | 4,180 | 3,350 | +24.8% |",
    "Revenue grew strongly in the third quarter, driven by the platform business, while operating expenses "
    "rose more slowly than planned because two senior hires in engineering were delayed to the next year.",
    "The mitochondrial membrane potential decreased significantly in cells treated with the inhibitor, "
    "suggesting that apoptosis was triggered through the intrinsic pathway rather than death receptors.",
    "Net sales for the quarter were $82,959 million compared to $97,278 million in the prior-year quarter, "
    "primarily due to lower sales of iPhone and Mac, partially offset by higher Services revenue.",
    "Employees may carry over up to five unused holiday days into the first quarter of the following year.",
    "Report phishing to the IT Service Desk and never approve a multi-factor prompt you did not start.",
    "Staff members can claim transport reimbursement for official travel to places not served by bus or MRT.",
    "Foreign exchange movements reduced reported revenue by 2 percent; in constant currency revenue grew 5 "
    "percent. The company expects the strong dollar to remain a headwind through the next fiscal year.",
    "Table: Employees (sheet Staff)\n| id | name | department | office | start date |\n| 1042 | Ada Lovelace "
    "| IT | Leeds | 2021-03-01 |\n| 1043 | Alan Turing | Finance | Berlin | 2019-11-15 |",
]


class Int8BuildError(RuntimeError):
    """The int8 copy cannot be built or is damaged; the message says what to do."""


def source_digest(source: Path) -> str:
    """Hash of the files that define the model (weights, config, tokenizer), by relative name and content."""
    digest = hashlib.sha256()
    files = sorted(
        p for p in source.rglob("*")
        if p.is_file() and p.suffix in _SOURCE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(source).parts)
    )
    if not files:
        raise Int8BuildError(f"{source} holds no model files to quantize")
    for path in files:
        digest.update(str(path.relative_to(source)).encode())
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def cached_copy(source: Path, cache: Path, head: Head) -> Path:
    """Folder where the int8 copy of `source` with this head and recipe lives (built or not)."""
    import onnxruntime

    key = hashlib.sha256(f"{source_digest(source)}|{head}|{RECIPE}|{onnxruntime.__version__}".encode()).hexdigest()
    return cache / "int8-onnx" / f"{source.name}-{head}-{key[:16]}"


def verify(folder: Path) -> dict:
    """The manifest of a complete, undamaged copy; raises Int8BuildError otherwise."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise Int8BuildError(f"{folder} is not a complete int8 model (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    actual = sha256_file(folder / "model.onnx")
    if actual != manifest.get("sha256"):
        expected = str(manifest.get("sha256", ""))[:12]
        raise Int8BuildError(f"{folder}/model.onnx is damaged: sha256 {actual[:12]} != {expected}")
    return manifest


def build_int8_onnx(
    source: Path, cache: Path, head: Head = "encoder", log: Callable[[str], None] | None = None
) -> Path:
    """The folder of the int8 ONNX copy of `source` (a transformers model folder), building it if needed.

    A damaged copy is rebuilt; concurrent processes wait for one builder through a file lock.
    """
    source = Path(source)
    return build_int8_copy(
        cached_copy(source, cache, head), lambda target: _export(source, target, head), source,
        {"source": str(source), "source_sha256": source_digest(source), "head": head}, log,
    )


def build_int8_copy(
    folder: Path, export: Callable[[Path], list[str]], tokenizer: Path, about: dict,
    log: Callable[[str], None] | None = None, keep_float32: Callable[[str], bool] | None = None,
) -> Path:
    """`folder`, holding the verified int8 copy of the float32 graph `export(path)` writes (it returns the graph's
    input names), built under a file lock if it is missing or damaged. `tokenizer` is the folder whose tokenizer
    feeds the calibration texts; `about` goes into the manifest (what the copy was built from); MatMuls whose
    weight's name `keep_float32` accepts stay float32 besides those the outlier rule finds."""
    from filelock import FileLock

    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        try:
            verify(folder)
            return folder
        except Int8BuildError:
            shutil.rmtree(folder, ignore_errors=True)
        say = log or (lambda _msg: None)
        started = time.perf_counter()
        name = folder.name
        say(f"building the int8 copy {name} (once; cached in {folder.parent})")
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".staging-") as tmp:
            staging = Path(tmp)
            fp32 = staging / "float32.onnx"
            inputs = export(fp32)
            excluded = _outlier_matmuls(fp32, tokenizer, inputs, keep_float32 or (lambda _name: False))
            _quantize(fp32, staging / "model.onnx", excluded)
            agreement = _agreement(fp32, staging / "model.onnx", tokenizer, inputs)
            if agreement < MIN_AGREEMENT:
                raise Int8BuildError(
                    f"the int8 copy {name} disagrees with the float32 model (mean cosine {agreement:.3f} "
                    f"< {MIN_AGREEMENT}) on this CPU; run with ERAG_EMBED_PRECISION=float32 and report it")
            for path in staging.iterdir():
                if path.name != "model.onnx":
                    path.unlink()
            manifest = {
                **about,
                "recipe": RECIPE,
                "inputs": inputs,
                "excluded": excluded,
                "agreement": round(agreement, 4),
                "sha256": sha256_file(staging / "model.onnx"),
                "build_seconds": round(time.perf_counter() - started, 1),
            }
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
            # Renamed into place only when complete: a killed build leaves no half-written copy in use.
            staging.rename(folder)
        say(f"int8 copy {name} built in {manifest['build_seconds']:.0f}s")
    return folder


def _export(source: Path, target: Path, head: Head) -> list[str]:
    """Export the float32 model; returns the input names the graph takes."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    if head == "encoder":
        model = AutoModel.from_pretrained(source, dtype=torch.float32)
        output = "last_hidden_state"
    else:
        # One relevance score per pair, as CrossEncoder(num_labels=1) reads it. A checkpoint without a trained
        # head gets a seeded random one, so the cached copy is reproducible.
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=1, ignore_mismatched_sizes=True, dtype=torch.float32
        )
        output = "logits"
    model.eval()
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    sample = tokenizer(["a short text", "and a somewhat longer second text"], padding=True, return_tensors="pt")
    dynamic = {name: {0: "batch", 1: "sequence"} for name in names}
    dynamic[output] = {0: "batch", 1: "sequence"} if head == "encoder" else {0: "batch"}

    class _Outputs(torch.nn.Module):
        # Only the tensor the runtime reads: the export then has exactly one output.
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return getattr(self.inner(**dict(zip(names, args, strict=True))), output)

    with torch.no_grad():
        torch.onnx.export(
            _Outputs(model), tuple(sample[n] for n in names), str(target), input_names=names,
            output_names=[output], dynamic_axes=dynamic, opset_version=17, dynamo=False,
        )
    return names


def _outlier_matmuls(fp32: Path, source: Path, inputs: list[str], keep: Callable[[str], bool]) -> list[str]:
    """Weight MatMuls whose input, not produced by a LayerNorm, has outlier channels (see module doc), and those
    whose weight `keep` names."""
    import onnx
    from transformers import AutoTokenizer

    model = onnx.load(str(fp32))
    weights = {i.name for i in model.graph.initializer}
    producers = {out: node.op_type for node in model.graph.node for out in node.output}
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    probes = sorted({n.input[0] for n in matmuls})
    for name in probes:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    probe_path = fp32.with_name("probe.onnx")
    onnx.save(model, str(probe_path), save_as_external_data=True, location="probe.data")
    del model
    session = _cpu_session(probe_path)
    tokenizer = AutoTokenizer.from_pretrained(source)
    texts = [*CALIBRATION, " ".join(CALIBRATION[1:7]), " ".join(CALIBRATION[6:])]
    peak: dict[str, np.ndarray] = {}
    for start in range(0, len(texts), 8):
        enc = tokenizer(texts[start : start + 8], padding=True, truncation=True, max_length=384, return_tensors="np")
        feed = {n: enc[n].astype(np.int64) for n in inputs}
        mask = enc["attention_mask"].reshape(-1).astype(bool)
        for name, value in zip(probes, session.run(probes, feed), strict=True):
            rows = np.abs(value.reshape(-1, value.shape[-1])[mask]) if value.ndim == 3 else np.abs(value)
            peak[name] = np.maximum(peak.get(name, 0.0), rows.max(axis=0))
    del session
    excluded = []
    for node in matmuls:
        channel = peak[node.input[0]]
        ratio = float(channel.max() / (np.median(channel) + 1e-6))
        if (ratio > OUTLIER_RATIO and producers.get(node.input[0]) != "LayerNormalization") or keep(node.input[1]):
            excluded.append(node.name)
    return excluded


def _cpu_session(path: Path):
    """An ONNX Runtime session on the CPU with the machine's two threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _quantize(fp32: Path, target: Path, excluded: list[str]) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer logs a pre-processing hint on every call; it does not apply to dynamic quantization.
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))
    # reduce_range: 7-bit weights. On x86 CPUs without VNNI (AVX2 only, as the 2-core machines here) ONNX Runtime
    # multiplies uint8 activations by int8 weights with an instruction whose int16 sums saturate; with full 8-bit
    # weights all-mpnet-base-v2's int8 copy came out with a cosine of 0.05 to float32 there (0.99 on a VNNI CPU).
    # 7-bit weights cannot saturate: 0.99 on the same CPU (ONNX Runtime's own advice for such CPUs).
    quantize_dynamic(
        str(fp32), str(target), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
        op_types_to_quantize=["MatMul"], nodes_to_exclude=excluded,
    )


def _agreement(fp32: Path, int8: Path, source: Path, inputs: list[str]) -> float:
    """Mean cosine between the int8 copy's and the float32 export's outputs on the calibration texts (token
    outputs mean-pooled over the mask; a classifier's logits compared across the texts as one vector)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    enc = tokenizer(CALIBRATION, padding=True, truncation=True, max_length=384, return_tensors="np")
    feed = {n: enc[n].astype(np.int64) for n in inputs}
    outputs = []
    for path in (fp32, int8):
        outputs.append(_cpu_session(path).run(None, feed)[0].astype(np.float64))
    reference, quantized = outputs
    if reference.ndim == 3:
        mask = enc["attention_mask"][..., None].astype(np.float64)
        reference, quantized = ((x * mask).sum(1) / mask.sum(1) for x in (reference, quantized))
    else:
        reference, quantized = reference.reshape(1, -1), quantized.reshape(1, -1)
        reference, quantized = reference - reference.mean(), quantized - quantized.mean()
    cosine = (reference * quantized).sum(1) / (np.linalg.norm(reference, axis=1) * np.linalg.norm(quantized, axis=1)
                                                + 1e-12)
    return float(cosine.mean())
