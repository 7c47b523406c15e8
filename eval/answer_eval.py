"""Answer quality: exact match and token F1 against reference answers, citation correctness, abstention.

Example:
    >>> answerer = ExtractiveAnswerer(Retriever(settings))
    >>> result = AnswerEval(dataset, seed=13).run(answerer, limit=200)
    >>> result.summary["token_f1"], result.summary["abstention_unanswerable"]

Any answerer with `answer(question, filters=None) -> Answer` (text, cited hits, abstained) can be scored:
the chat pipeline (app/chat.py) through `ChatAnswerer`, or `ExtractiveAnswerer`, a retrieval-only stand-in
that returns the best-matching sentence or table row. Questions whose answer is not in the corpus are
made from the dataset's own questions by hiding their gold documents from the search (a `must_not`
filter on their ids, the same as removing them from the index, without building another index):
an answerer should abstain on them.
"""

from __future__ import annotations

import collections
import re
import string
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from app.citations import CITATION
from erag.schema import Hit
from eval.answer_match import wtq_contains
from eval.datasets import EvalDataset, Question
from index.filters import Filter, Match

# Evaluation corpora are ingested with the default groups: questions are asked as an employee of `all`, like the
# chat's users, never unrestricted.
EVAL_GROUPS = ("all",)
SHORT_ANSWER_TOKENS = 10  # longer references (docugami's prose answers) cannot be found verbatim in a chunk
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower case, no punctuation, no articles, single spaces. Written out because
    the official version is a script, not a package, and `evaluate` would fetch it from the hub at run time."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def without_markers(answer: str) -> str:
    """The answer's words: its `[n]` citation markers point at sources and are no part of it. SQuAD's
    normalisation keeps their digits as tokens, so every cited answer failed exact match ("22 [1]" is not "22") and
    lost token F1 (up to 2026-12-01 the reports scored the markers; `token_f1_with_markers` keeps that figure)."""
    return " ".join(CITATION.sub(" ", answer).split())


def exact_match(prediction: str, references: list[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(r) for r in references))


def token_f1(prediction: str, references: list[str]) -> float:
    """Best SQuAD token F1 over the references (bag of normalised tokens)."""
    best = 0.0
    pred = normalize_answer(prediction).split()
    for reference in references:
        gold = normalize_answer(reference).split()
        common = sum((collections.Counter(pred) & collections.Counter(gold)).values())
        if not pred or not gold:
            best = max(best, float(pred == gold))
        elif common:
            precision, recall = common / len(pred), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_answer(text: str, references: list[str]) -> bool:
    padded = f" {normalize_answer(text)} "
    return any(normalize_answer(r) and f" {normalize_answer(r)} " in padded for r in references)


@dataclass
class Answer:
    text: str
    citations: list[Hit] = field(default_factory=list)
    abstained: bool = False
    notice: str = ""  # why the chat abstained or left something out: what a reader of the report needs to judge it


class Answerer(Protocol):
    name: str

    def answer(self, question: str, filters: Filter | None = None) -> Answer: ...


_UNIT_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


class ExtractiveAnswerer:
    """Answer with the retrieved sentence or table row that shares most words with the question; abstain when
    no unit holds at least `min_overlap` of the question's content words.

    Example:
        >>> ExtractiveAnswerer(retriever).answer("What were total sales in 2019?").text
        '| Total sales | $1,496.5 | $1,202.9 | $1,107.7 |'
    """

    name = "extractive (best sentence or row of the top hits)"

    def __init__(self, retriever: Any, top_k: int = 5, min_overlap: float = 0.6) -> None:
        if top_k < 1 or not 0 < min_overlap <= 1:
            raise ValueError(f"top_k must be >= 1 and min_overlap in (0, 1], got {top_k} and {min_overlap}")
        from spacy.lang.en.stop_words import STOP_WORDS

        self.retriever = retriever
        self.top_k = top_k
        self.min_overlap = min_overlap
        self.stopwords = frozenset(STOP_WORDS)

    def _words(self, text: str) -> set[str]:
        return {w for w in normalize_answer(text).split() if w not in self.stopwords}

    def answer(self, question: str, filters: Filter | None = None) -> Answer:
        hits = self.retriever.run(question, top_k=self.top_k, groups=EVAL_GROUPS, filters=filters).hits
        wanted = self._words(question)
        best: tuple[float, int, str, Hit] | None = None
        for rank, hit in enumerate(hits):
            lines = hit.text.split("\n")
            body = lines[1:] if len(lines) > 1 else lines  # the first line is the title/heading breadcrumb
            for unit in (u.strip() for u in _UNIT_SPLIT.split("\n".join(body))):
                if not unit or set(unit) <= set("|- "):
                    continue
                overlap = len(wanted & self._words(unit)) / max(len(wanted), 1)
                if best is None or (overlap, -rank) > (best[0], -best[1]):
                    best = (overlap, rank, unit, hit)
        if best is None or best[0] < self.min_overlap:
            return Answer("", [], abstained=True)
        return Answer(best[2], [best[3]])


class ChatAnswerer:
    """The chat pipeline (app/chat.py: `ChatPipeline.answer`, not streamed) as an Answerer, asking as an employee
    of the `all` group (every evaluation document is in it)."""

    def __init__(self, pipeline: Any) -> None:
        from erag.users import User

        self.pipeline = pipeline
        self.user = User(username="eval", name="Evaluation", groups=EVAL_GROUPS)
        mode = "LLM" if getattr(pipeline, "generator", None) is not None else "extractive, no LLM"
        self.name = f"chat pipeline ({mode})"

    def answer(self, question: str, filters: Filter | None = None) -> Answer:
        reply = self.pipeline.answer(question, self.user, filters=filters)
        return Answer(reply.text, list(reply.citations), bool(reply.abstained), reply.notice)


class AnswerSetupError(RuntimeError):
    """The chosen answerer cannot run here; the message says what to use instead."""


def chat_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("app.chat") is not None


@dataclass
class AnswerResult:
    answerer: str
    summary: dict[str, float | int]
    per_question: list[dict[str, Any]]


class AnswerEval:
    """Score an answerer on a dataset's questions with reference answers, and on the same questions with
    their gold documents hidden (where it should abstain)."""

    def __init__(self, dataset: EvalDataset, seed: int = 13) -> None:
        self.dataset = dataset
        self.seed = seed

    def sample(self, limit: int | None) -> list[Question]:
        questions = list(self.dataset.questions().values())
        if limit is not None and len(questions) > limit:
            picked = np.random.default_rng(self.seed).choice(len(questions), size=limit, replace=False)
            questions = [questions[i] for i in sorted(picked)]
        return questions

    def run(self, answerer: Answerer, limit: int | None = 200, progress: bool = True) -> AnswerResult:
        from tqdm import tqdm

        questions = self.sample(limit)
        if not questions:
            raise ValueError(f"{self.dataset.name} has no reference answers (questions.jsonl) for its queries")
        qrels = self.dataset.qrels()
        rows: list[dict[str, Any]] = []
        for q in tqdm(questions, desc="answers", unit="q", disable=not progress, leave=False):
            gold = set(qrels.get(q.id, {}))
            started = time.perf_counter()
            reply = answerer.answer(q.text)
            seconds = time.perf_counter() - started
            hidden = Filter(must_not=[Match("doc_id", self.dataset.doc_ids_of(gold))]) if gold else None
            without_gold = answerer.answer(q.text, filters=hidden)
            short = max(len(normalize_answer(r).split()) for r in q.answers) <= SHORT_ANSWER_TOKENS
            row: dict[str, Any] = {
                "id": q.id,
                "question": q.text,
                "references": q.answers,
                "answer": reply.text,
                "abstained": reply.abstained,
                "abstained_without_gold": without_gold.abstained,
                "notice": reply.notice,
                "answer_without_gold": without_gold.text,
                "notice_without_gold": without_gold.notice,
                "exact_match": exact_match(without_markers(reply.text), q.references()) if not reply.abstained else 0.0,
                "token_f1": token_f1(without_markers(reply.text), q.references()) if not reply.abstained else 0.0,
                "token_f1_with_markers": token_f1(reply.text, q.references()) if not reply.abstained else 0.0,
                "seconds": seconds,
                "cited": [c.doc_id for c in reply.citations],
            }
            if self.dataset.name.startswith("wtq"):  # WikiTableQuestions' own normalisation, every value needed
                row["wtq_correct"] = not reply.abstained and wtq_contains(reply.text, q.values or q.answers)
            if short:  # a chat model answers in a sentence: EM fails it, containing the short answer does not
                row["answer_contains_reference"] = not reply.abstained and contains_answer(reply.text, q.answers)
            if not reply.abstained and reply.citations:
                row["citation_in_gold"] = any(self.dataset.gold_unit(c.doc_id) in gold for c in reply.citations)
                # Computed answers (TAT-QA arithmetic) are never written in a source: only extractable ones count.
                if short and q.answer_type != "arithmetic":
                    row["citation_contains_answer"] = any(contains_answer(c.text, q.answers) for c in reply.citations)
            rows.append(row)

        def mean(key: str, subset: list[dict[str, Any]]) -> float:
            values = [float(r[key]) for r in subset if key in r]
            return float(np.mean(values)) if values else float("nan")

        answered = [r for r in rows if not r["abstained"]]
        summary: dict[str, float | int] = {
            "questions": len(rows),
            "exact_match": mean("exact_match", rows),
            "token_f1": mean("token_f1", rows),
            "token_f1_answered": mean("token_f1", answered),
            "token_f1_with_markers": mean("token_f1_with_markers", rows),
            "answer_contains_reference": mean("answer_contains_reference", rows),
            "wtq_accuracy": mean("wtq_correct", rows),
            "answer_contains_reference_n": sum("answer_contains_reference" in r for r in rows),
            "citation_contains_answer": mean("citation_contains_answer", answered),
            "citation_contains_answer_n": sum("citation_contains_answer" in r for r in answered),
            "citation_in_gold": mean("citation_in_gold", answered),
            "abstention_answerable": mean("abstained", rows),
            "abstention_unanswerable": mean("abstained_without_gold", rows),
            "seconds_p50": float(np.percentile([r["seconds"] for r in rows], 50)),
        }
        return AnswerResult(answerer.name, summary, rows)
