"""Training lists for the project's cross-encoder: (query, one positive chunk, hard negative chunks).

Example:
    >>> item = make_list("q1", "sample", split_of("q1"), "How many days of leave?", hits, judge)
    >>> write_lists([item], Path(".erag/reranker-train/lists.jsonl"))
    >>> read_lists(Path(".erag/reranker-train/lists.jsonl"))[0].negatives[:1]

The lists are mined by `eval.reranker_mining.RerankerDataMiner` with the product's own retrieval and trained
on by `retrieval.reranker_training.RerankerTrainer`. Each source is split by a stable hash of a group key
(a TAT-QA report context, a question, a passage), so held-out queries never share a context with training
queries (`split_of`, `heldout_query_ids`). Licences: TAT-QA (CC BY 4.0), Docugami SEC 10-Q (MIT), H2O HR
policy (MPL-2.0), the project's own sample data; SciFact (CC BY-NC) is never mined for training, only used to
validate.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from erag.schema import Hit

SOURCES = {
    "tatqa_dev": ("TAT-QA dev (NExTplusplus/TAT-QA)", "CC BY 4.0"),
    "docugami_sec10q": ("Docugami KG-RAG SEC 10-Q", "MIT"),
    "h2o_hr_policy": ("H2O HR-policy PDFs and LLM-written questions (h2oai/h2o-evals)", "MPL-2.0"),
    "sample": ("the project's own data/ corpus, questions written by the packaged local LLM", "Apache-2.0"),
    "docugami_synthetic": ("Docugami KG-RAG SEC 10-Q pages, questions written by the packaged local LLM", "MIT"),
}
HOLDOUT = 0.3
NEGATIVES = 5
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_STOP = frozenset(
    ["the", "a", "an", "of", "to", "in", "and", "or", "for", "on", "is", "are", "was", "were", "be", "by", "with",
     "as", "at", "that", "this", "it", "its", "from"]
)


@dataclass
class RankList:
    """One training or validation example: a query, the chunk that answers it and chunks that do not."""

    qid: str
    source: str
    split: str
    query: str
    positive: str
    negatives: list[str] = field(default_factory=list)
    # First-pass ranks of the positive and of each negative: validation ranks the same list in retrieval
    # order too, so a reranker is judged against what it would replace, not against chance.
    ranks: list[int] = field(default_factory=list)


def split_of(key: str, holdout: float = HOLDOUT) -> str:
    """'val' for a stable `holdout` share of group keys, 'train' for the rest."""
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if bucket < holdout else "train"


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def overlap(answer: str, passage: str) -> float:
    """Share of the answer's content words (numbers count twice: they pin a table row) found in the passage."""
    wanted = words(answer)
    if not wanted:
        return 0.0
    have = set(words(passage))
    numbers = {n.replace(",", "") for n in _NUMBER.findall(answer)}
    have_numbers = {n.replace(",", "") for n in _NUMBER.findall(passage)}
    score = sum(w in have for w in wanted) + 2 * len(numbers & have_numbers)
    return score / (len(wanted) + 2 * len(numbers))


def make_list(qid: str, source: str, split: str, query: str, hits: list[Hit],
              judge: Callable[[Hit], bool | None]) -> RankList | None:
    """The best-ranked positive and the best-ranked negatives among `hits`; `judge` says True (answers),
    False (does not) or None (unsure: left out). None when no positive or no negative was retrieved."""
    verdicts = [(rank, h, judge(h)) for rank, h in enumerate(hits)]
    positive = next(((rank, h) for rank, h, verdict in verdicts if verdict is True), None)
    if positive is None:
        return None
    kind = positive[1].payload.get("kind")
    # Negatives of the positive's own kind first: most TAT-QA positives are tables, so lists whose negatives
    # were mostly paragraphs taught the second model "table beats paragraph" instead of relevance (alone it
    # ranked every table above the gold paragraph: nDCG@10 0.26 against hybrid's 0.52).
    wrong = sorted(((rank, h) for rank, h, verdict in verdicts if verdict is False),
                   key=lambda item: (item[1].payload.get("kind") != kind, item[0]))[:NEGATIVES]
    if not wrong:
        return None
    return RankList(qid, source, split, query, positive[1].text, [h.text for _, h in wrong],
                    [positive[0]] + [rank for rank, _ in wrong])


def read_questions(root: Path) -> list[dict]:
    """The rows of a dataset's `questions.jsonl`, every field kept (mining needs gold ids and contexts)."""
    with (Path(root) / "questions.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_lists(lists: Iterable[RankList], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for item in lists:
            fh.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_lists(path: Path) -> list[RankList]:
    with path.open(encoding="utf-8") as fh:
        return [RankList(**json.loads(line)) for line in fh if line.strip()]


def heldout_query_ids(dataset_root: Path) -> set[str]:
    """Ids of the questions of a dataset that reranker training held out (empty for a source never trained on)."""
    root = Path(dataset_root)
    if root.name not in SOURCES or not (root / "questions.jsonl").is_file():
        return set()
    return {str(row["_id"]) for row in read_questions(root)
            if split_of(str(row.get("context_id") or row["_id"])) == "val"}
