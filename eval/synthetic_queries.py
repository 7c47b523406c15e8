"""Questions that the packaged local LLM writes for passages (InPars / Promptagator style), cached on disk.

Example:
    >>> writer = SyntheticQueries(get_settings(), Path(".erag/reranker-train/synthetic_queries.jsonl"))
    >>> for chunk, question in writer.run(chunks):
    ...     print(question)
    How many weeks of full pay do partners receive?

Each question is cached under the sha256 of its passage, so a re-run (or a later training run) never
asks the model again for a passage it has seen; only new or changed passages cost generation time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm import tqdm

from erag.schema import Hit
from erag.settings import Settings

PROMPT = (
    "Here is a passage from a company document.\n\n{passage}\n\n"
    "Write one short question (at most 20 words) that an employee could ask and that this passage answers. "
    "Use your own words, not a copy of a sentence. Reply with the question only."
)
_MAX_PASSAGE_CHARS = 1200  # about 300 tokens: prefill dominates the cost (~80 tokens/s on 2 cores)


class SyntheticQueries:
    """Write (and cache) one question per passage with the local LLM."""

    def __init__(self, settings: Settings, cache_file: Path, generator=None) -> None:
        self.settings = settings
        self.cache_file = Path(cache_file)
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        self.cached: dict[str, str] = {}
        if self.cache_file.is_file():
            for line in self.cache_file.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.cached[row["sha256"]] = row["question"]
        self._generator = generator

    @property
    def generator(self):
        if self._generator is None:
            from app.llm import LlamaGenerator

            self._generator = LlamaGenerator.from_settings(self.settings)
        return self._generator

    def question(self, passage: str) -> str:
        key = hashlib.sha256(passage.encode("utf-8")).hexdigest()
        if key not in self.cached:
            text = passage[:_MAX_PASSAGE_CHARS]
            reply = self.generator.complete([{"role": "user", "content": PROMPT.format(passage=text)}], max_tokens=48)
            question = " ".join(reply.split("\n")[0].split()).strip(" \"'")
            self.cached[key] = question
            with self.cache_file.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"sha256": key, "question": question}, ensure_ascii=False) + "\n")
        return self.cached[key]

    def run(self, chunks: Iterable[Hit], progress: bool = False) -> Iterator[tuple[Hit, str]]:
        """(chunk, question) for each chunk whose question looks like one (ends with '?', 4+ words)."""
        for chunk in tqdm(list(chunks), desc="synthetic questions", unit="q", disable=not progress, leave=False):
            question = self.question(chunk.text)
            if question.endswith("?") and len(question.split()) >= 4:
                yield chunk, question

    def close(self) -> None:
        if self._generator is not None:
            self._generator.close()
