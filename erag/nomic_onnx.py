"""nomic-embed-text-v1.5 in int8 on ONNX Runtime: the packaged GGUF's weights read into a small PyTorch module,
exported and quantized once by the recipe of erag/int8_build.py.

Example:
    >>> encoder = load_nomic_int8("nomic-embed-text-v1.5", get_settings().model_cache)
    >>> queries = encoder.encode(["How many days of parental leave?"], prompt_name="query")
    >>> passages = encoder.encode(["Primary carers receive 26 weeks of leave."], prompt_name="document")
    >>> queries.shape, float(queries[0] @ passages[0]) > 0.5
    ((1, 768), True)

Why: on llama.cpp the f16 GGUF embeds 2-5x slower than mpnet's int8 copy (README, "Embedders"), which kept nomic
out of the default. transformers has no nomic-bert class (upstream runs it as remote code, which this project
never executes), so the architecture is written out here, as the GGUF describes it: BERT embeddings without
positions, 12 post-norm layers with rotary attention (NeoX halves, base 1000) and a SwiGLU feed-forward, no
biases. `NomicBert` agrees with llama.cpp's own run of the same file to a cosine of 0.99999 (checked at build
time on the calibration texts, `MIN_F32_AGREEMENT`, and in tests/test_nomic_onnx.py).
"""

from __future__ import annotations

import hashlib
import math
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

from erag.gguf_encoder import (
    NOMIC_MAX_SEQ_LENGTH,
    NOMIC_PROMPTS,
    matryoshka,
    nomic_tokenizer_path,
    prompt_prefix,
)
from erag.int8_build import CALIBRATION, RECIPE, Int8BuildError, build_int8_copy
from erag.model_files import ModelNotAvailable
from erag.models import packaged_nomic_dims
from erag.nomic_model import NOMIC_SHA256, nomic_gguf_path
from erag.onnx_encoder import OnnxSentenceEncoder

ARCHITECTURE = "nomic-bert-v2"  # change when NomicBert or its float32 MatMuls change: the cached copy is keyed by it
# Mean cosine of the exported float32 graph's pooled vectors to llama.cpp's, below which the export is refused
# (measured 0.99999); a wrong rotary layout or activation gives 0.3-0.9.
MIN_F32_AGREEMENT = 0.999


def _module_from_gguf(path: Path):
    """The float32 PyTorch NomicBert holding the GGUF's weights (f16 on disk, widened once)."""
    import torch
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    arch = reader.fields["general.architecture"].contents()
    if arch != "nomic-bert":
        raise ModelNotAvailable(f"{path} holds a {arch} model, not nomic-bert")

    def field(name: str):
        return reader.fields[f"nomic-bert.{name}"].contents()

    weights = {t.name: torch.from_numpy(np.array(t.data, dtype=np.float32)) for t in reader.tensors}

    class Layer(torch.nn.Module):
        def __init__(self, i: int, heads: int, eps: float, width: int) -> None:
            super().__init__()

            def weight(name: str, transpose: bool = False) -> torch.nn.Parameter:
                # Stored as (in, out) so `x @ w` exports as a MatMul on an initializer, which the int8 quantizer
                # finds (a Transpose in between would hide it).
                value = weights[f"blk.{i}.{name}"]
                return torch.nn.Parameter(value.T.contiguous() if transpose else value, requires_grad=False)

            self.qkv, self.out = weight("attn_qkv.weight", True), weight("attn_output.weight", True)
            self.up, self.gate = weight("ffn_up.weight", True), weight("ffn_gate.weight", True)
            self.down = weight("ffn_down.weight", True)
            self.norm1 = (weight("attn_output_norm.weight"), weight("attn_output_norm.bias"))
            self.norm2 = (weight("layer_output_norm.weight"), weight("layer_output_norm.bias"))
            self._norm_params = torch.nn.ParameterList([*self.norm1, *self.norm2])
            # Python ints, not traced shapes: the ONNX export needs the layer norm's width as a constant.
            self.heads, self.eps, self.width = heads, eps, width

        def forward(self, x, bias, cos, sin):
            batch, length = x.shape[0], x.shape[1]
            width, head = self.width, self.width // self.heads
            q, k, v = (x @ self.qkv).view(batch, length, 3, self.heads, head).permute(2, 0, 3, 1, 4)

            def rotate(t):  # NeoX rotary: the two halves of each head turn together
                first, second = t[..., : head // 2], t[..., head // 2 :]
                return t * cos + torch.cat([-second, first], dim=-1) * sin

            q, k = rotate(q), rotate(k)
            attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head) + bias, dim=-1)
            mixed = (attention @ v).transpose(1, 2).reshape(batch, length, width) @ self.out
            x = torch.nn.functional.layer_norm(x + mixed, (width,), *self.norm1, self.eps)
            hidden = (x @ self.up) * torch.nn.functional.silu(x @ self.gate)
            return torch.nn.functional.layer_norm(x + hidden @ self.down, (width,), *self.norm2, self.eps)

    class NomicBert(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            heads, eps = int(field("attention.head_count")), float(field("attention.layer_norm_epsilon"))
            self.width = int(field("embedding_length"))
            self.tokens = torch.nn.Parameter(weights["token_embd.weight"], requires_grad=False)
            # Every text is one segment: type 0's vector is added to every token.
            self.segment = torch.nn.Parameter(weights["token_types.weight"][0].clone(), requires_grad=False)
            self.norm = torch.nn.ParameterList([weights["token_embd_norm.weight"], weights["token_embd_norm.bias"]])
            blocks = int(field("block_count"))
            self.layers = torch.nn.ModuleList(Layer(i, heads, eps, self.width) for i in range(blocks))
            head = self.width // heads
            base = float(field("rope.freq_base"))
            self.register_buffer("inverse", 1.0 / base ** (torch.arange(0, head, 2, dtype=torch.float32) / head))
            self.eps = eps

        def forward(self, input_ids, attention_mask):
            x = torch.nn.functional.layer_norm(self.tokens[input_ids] + self.segment, (self.width,),
                                               self.norm[0], self.norm[1], self.eps)
            positions = torch.arange(input_ids.shape[1], dtype=torch.float32).unsqueeze(1)
            angles = positions * self.inverse.unsqueeze(0)
            angles = torch.cat([angles, angles], dim=-1)
            cos, sin = angles.cos(), angles.sin()
            bias = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * -1e4
            for layer in self.layers:
                x = layer(x, bias, cos, sin)
            return x

    return NomicBert().eval()


def _export(gguf: Path, tokenizer_path: Path, target: Path) -> list[str]:
    """Export NomicBert's token vectors to ONNX after checking it against llama.cpp's run of the same file."""
    import torch
    from transformers import AutoTokenizer

    model = _module_from_gguf(gguf)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path))
    texts = [NOMIC_PROMPTS["document"] + text for text in CALIBRATION]
    enc = tokenizer(texts, padding=True, truncation=True, max_length=384, return_tensors="pt")
    with torch.no_grad():
        hidden = model(enc["input_ids"], enc["attention_mask"])
    mask = enc["attention_mask"][..., None].to(torch.float32)
    ours = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    agreement = _cosine(ours, _llama_cpp_vectors(gguf, texts)).mean()
    if agreement < MIN_F32_AGREEMENT:
        raise Int8BuildError(f"NomicBert disagrees with llama.cpp on {gguf.name} (mean cosine {agreement:.4f} < "
                             f"{MIN_F32_AGREEMENT}); the GGUF may not be nomic-embed-text-v1.5")
    names = ["input_ids", "attention_mask"]
    dynamic = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    with torch.no_grad():
        torch.onnx.export(model, (enc["input_ids"], enc["attention_mask"]), str(target), input_names=names,
                          output_names=["last_hidden_state"], dynamic_axes=dynamic, opset_version=17, dynamo=False)
    return names


def _llama_cpp_vectors(gguf: Path, texts: list[str]) -> np.ndarray:
    """Mean-pooled vectors of llama.cpp's own run of the GGUF, the reference the export must match."""
    import llama_cpp

    model = llama_cpp.Llama(model_path=str(gguf), embedding=True, n_ctx=512, n_batch=512, n_ubatch=512,
                            n_threads=2, verbose=False)
    try:
        return np.asarray(model.embed(texts, normalize=False), dtype=np.float64)
    finally:
        model.close()


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def build_nomic_int8(cache: Path, log=None) -> Path:
    """The folder of nomic-embed-text-v1.5's int8 ONNX copy, built once from the packaged GGUF."""
    import onnxruntime

    gguf = nomic_gguf_path(cache)
    tokenizer = nomic_tokenizer_path(cache)
    key = hashlib.sha256(f"{NOMIC_SHA256}|{ARCHITECTURE}|{RECIPE}|{onnxruntime.__version__}".encode()).hexdigest()
    folder = Path(cache) / "int8-onnx" / f"nomic-embed-text-v1.5-encoder-{key[:16]}"
    about = {"source": str(gguf), "source_sha256": NOMIC_SHA256, "head": "encoder", "architecture": ARCHITECTURE}
    # The attention input projections (q, k, v in one MatMul per layer) stay float32: quantized, the copy's pooled
    # vectors had a mean cosine of 0.979 to float32 on the calibration texts, kept 0.9945, for 18% less speed on
    # 256-token texts (34 -> 28 texts/s on 2 cores). Their inputs come from a LayerNorm (post-norm layers), which
    # the general outlier rule leaves quantized because mpnet's measured harmless; one layer at a time gained
    # 0.000-0.006 each, so it is all of them.
    return build_int8_copy(folder, lambda target: _export(gguf, tokenizer, target), tokenizer, about, log,
                           keep_float32=lambda weight: weight.endswith(".qkv"))


class OnnxNomicEncoder(OnnxSentenceEncoder):
    """nomic-embed-text-v1.5 from its int8 copy, with the surface of erag/gguf_encoder.py's llama.cpp encoder:
    `search_query: ` / `search_document: ` prompts, mean pooling, Matryoshka width."""

    def __init__(self, tokenizer: Path, folder: Path, threads: int, dims: int = 768) -> None:
        self.prompts = dict(NOMIC_PROMPTS)
        self.default_prompt_name = "document"
        super().__init__(tokenizer, folder, threads, NOMIC_MAX_SEQ_LENGTH)
        self.pooling = "mean"
        self.full_dim = 768
        if not 32 <= dims <= self.full_dim:
            raise ValueError(f"dims must be between 32 and {self.full_dim}, got {dims}")
        self.dim = dims
        longest_prompt = max(len(self.tokenizer.tokenize(p)) for p in self.prompts.values())
        # A full chunk, its prompt, [CLS] and [SEP]: the tokenizer cuts longer texts and keeps the [SEP].
        self.window = self.max_seq_length + longest_prompt + 2

    def encode(self, sentences, batch_size: int = 32, normalize_embeddings: bool = True,
               prompt_name: str | None = None, prompt: str | None = None, **_ignored) -> np.ndarray:
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prefix = prompt_prefix(self.prompts, prompt_name or self.default_prompt_name, prompt)
        features = self.tokenizer([prefix + t for t in texts], truncation=True, max_length=self.window,
                                  padding=False, return_token_type_ids=False)
        pooled = np.zeros((len(texts), self.full_dim), dtype=np.float32)
        for rows in self._batches(features["input_ids"], batch_size):
            hidden, mask = self._run(features, rows)
            pooled[rows] = self._pool(hidden, mask)
        out = matryoshka(pooled, self.dim)
        if normalize_embeddings:
            out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-12
        return out[0] if single else out


def load_nomic_int8(name: str, cache: Path, threads: int = 2) -> OnnxNomicEncoder:
    """The int8 nomic encoder at the width its name asks for, built on first use and loaded once per process."""
    return _load(packaged_nomic_dims(name), Path(cache), threads)


@lru_cache(maxsize=2)
def _load(dims: int, cache: Path, threads: int) -> OnnxNomicEncoder:
    folder = build_nomic_int8(cache, log=lambda msg: print(msg, file=sys.stderr))
    return OnnxNomicEncoder(nomic_tokenizer_path(cache), folder, threads, dims)
