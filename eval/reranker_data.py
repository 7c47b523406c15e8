"""Training lists for the project's cross-encoder: (query, one positive chunk, hard negative chunks).

Example:
    >>> miner = RerankerDataMiner(settings, cache_root=Path(".erag/reranker-train"))
    >>> lists = miner.run(["tatqa_dev", "docugami_sec10q", "h2o_hr_policy", "sample"])
    >>> lists[0].source, lists[0].split, len(lists[0].negatives)
    ('tatqa_dev', 'train', 5)

Every list is mined with the product's own retrieval (hybrid dense + BM25 over the product's chunks), so
the pairs look exactly like what the reranker sees at run time: positives are chunks that carry the
answer, negatives are chunks ranked high that do not. Each source is split by a stable hash of a group
key (a TAT-QA report context, a question, a passage), so held-out queries never share a context with
training queries. Licences: TAT-QA (CC BY 4.0), Docugami SEC 10-Q (MIT), H2O HR policy (MPL-2.0), the
project's own sample data; SciFact (CC BY-NC) is never mined for training, only used to validate.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from erag.access import UNRESTRICTED
from erag.schema import Hit
from erag.settings import Settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
REPO = Path(__file__).resolve().parents[1]
SOURCES = {
    "tatqa_dev": ("TAT-QA dev (NExTplusplus/TAT-QA)", "CC BY 4.0"),
    "docugami_sec10q": ("Docugami KG-RAG SEC 10-Q", "MIT"),
    "h2o_hr_policy": ("H2O HR-policy PDFs and LLM-written questions (h2oai/h2o-evals)", "MPL-2.0"),
    "sample": ("the project's own data/ corpus, questions written by the packaged local LLM", "Apache-2.0"),
    "docugami_synthetic": ("Docugami KG-RAG SEC 10-Q pages, questions written by the packaged local LLM", "MIT"),
}
# Filing pages that get an LLM-written question. The 195 hand-written questions gave only 120 training lists,
# and held-out filing questions did not gain from them; generation costs about 5 s a passage on 2 cores.
SYNTHETIC_FILING_PASSAGES = 360
_NEAR_COPY = 0.6  # share of a passage's words (numbers twice) in another: a re-filed copy, not a negative
_MIN_SYNTHETIC_CHARS = 400  # cover pages, signatures and tables of contents make questions about nothing
HOLDOUT = 0.3
NEGATIVES = 5
DEPTH = 30
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


class RerankerDataMiner:
    """Mine rank lists from each source with the product's retrieval over that source's own index."""

    def __init__(self, settings: Settings, cache_root: Path, shared: Path = SHARED, progress: bool = True,
                 limit: int | None = None) -> None:
        self.settings = settings
        self.cache_root = Path(cache_root)
        self.shared = Path(shared)
        self.progress = progress
        self.limit = limit  # questions per source, for quick runs and tests

    def run(self, sources: list[str]) -> list[RankList]:
        unknown = sorted(set(sources) - set(SOURCES))
        if unknown:
            raise ValueError(f"unknown training source(s) {', '.join(unknown)} (known: {', '.join(SOURCES)})")
        out: list[RankList] = []
        for source in sources:
            out += getattr(self, f"_mine_{source}")()
        return out

    # --- sources ---------------------------------------------------------------------------------------
    def _mine_tatqa_dev(self) -> list[RankList]:
        root = self.shared / "tatqa_dev"
        context = {}
        with (root / "corpus.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                context[row["_id"]] = row.get("context_id", row["_id"])
        questions = read_questions(root)

        def lists(retriever) -> Iterable[RankList]:
            for q in self._take(questions, "tatqa_dev"):
                gold = set(q["gold_doc_ids"])
                answer = " ".join(map(str, q["answer"])) if isinstance(q["answer"], list) else str(q["answer"])

                def judge(hit: Hit, gold=gold, answer=answer, ctx=q["context_id"], kind=q["answer_type"]
                          ) -> bool | None:
                    if hit.doc_id in gold:
                        # A gold table is split into row groups: only the rows holding the answer are positive.
                        if hit.payload.get("kind") == "table" and kind != "arithmetic":
                            return True if overlap(answer, hit.text) >= 0.5 else None
                        return True
                    # A TAT-QA question is written for one report ("What was the reason for the increase in
                    # revenue?") and fits many others as well: chunks of other reports are not known to be wrong,
                    # and as negatives they made the loss flat (three models that learned nothing). Only the
                    # same report's other chunks are sure negatives.
                    return False if context.get(hit.doc_id) == ctx else None

                hits = retriever.run(q["question"], top_k=DEPTH, groups=UNRESTRICTED).hits
                split = split_of(q["context_id"])
                item = make_list(q["_id"], "tatqa_dev", split, q["question"], hits, judge)
                if item:
                    yield item
                first = next((h for h in hits if judge(h) is True), None)
                if first is None:
                    continue
                # Many answers need the table and a paragraph: a second list whose positive is of the other
                # kind, so paragraphs are positives as often as the gold says they are.
                kind = first.payload.get("kind")

                def other(hit: Hit, judge=judge, kind=kind) -> bool | None:
                    verdict = judge(hit)
                    return None if verdict is True and hit.payload.get("kind") == kind else verdict

                item = make_list(f"{q['_id']}#2", "tatqa_dev", split, q["question"], hits, other)
                if item:
                    yield item

        return self._with_dataset_index(root, lists)

    def _mine_docugami_sec10q(self) -> list[RankList]:
        root = self.shared / "docugami_sec10q"
        questions = read_questions(root)

        def lists(retriever) -> Iterable[RankList]:
            for q in self._take(questions, "docugami_sec10q"):
                gold = set(q["gold_docs"])
                hits = retriever.run(q["question"], top_k=DEPTH, groups=UNRESTRICTED).hits
                in_gold = [h for h in hits if _doc_name(h.doc_id) in gold]
                # Gold is per filing: the positive is the gold page chunk that shares most with the answer.
                best = max(in_gold, key=lambda h: overlap(q["answer"], h.text), default=None)
                if best is None or overlap(q["answer"], best.text) < 0.2:
                    continue

                def judge(hit: Hit, best=best, gold=gold) -> bool | None:
                    if hit.id == best.id:
                        return True
                    return None if _doc_name(hit.doc_id) in gold else False

                item = make_list(q["_id"], "docugami_sec10q", split_of(q["_id"]), q["question"], hits, judge)
                if item:
                    yield item

        return self._with_dataset_index(root, lists)

    def _mine_h2o_hr_policy(self) -> list[RankList]:
        root = self.shared / "h2o_hr_policy"
        questions = read_questions(root)

        def lists(retriever) -> Iterable[RankList]:
            for q in self._take(questions, "h2o_hr_policy"):
                hits = retriever.run(q["question"], top_k=DEPTH, groups=UNRESTRICTED).hits
                scored = {h.id: overlap(q["answer"], h.text) for h in hits}
                best = max(hits, key=lambda h: scored[h.id], default=None)
                # The questions were written from pages by an LLM: the page that holds most of the answer
                # is the positive; pages holding little of it are negatives; the middle ground is left out.
                if best is None or scored[best.id] < 0.5:
                    continue

                def judge(hit: Hit, best=best, scored=scored) -> bool | None:
                    if hit.id == best.id:
                        return True
                    return False if scored[hit.id] < 0.25 else None

                item = make_list(q["_id"], "h2o_hr_policy", split_of(q["_id"]), q["question"], hits, judge)
                if item:
                    yield item

        return self._with_corpus_index("h2o_hr_policy", root / "corpus.jsonl", lists)

    def _mine_sample(self) -> list[RankList]:
        def lists(retriever) -> Iterable[RankList]:
            chunks = sorted(retriever.store.scroll(None, fields=["text", "doc_id", "kind"]), key=lambda h: h.id)
            return self._synthetic_lists(retriever, self._take(chunks, "sample"), "sample", lambda h: h.doc_id,
                                         lambda h: h.id)

        return self._with_folder_index("sample", REPO / "data", lists)

    def _mine_docugami_synthetic(self) -> list[RankList]:
        def lists(retriever) -> Iterable[RankList]:
            chunks = [h for h in retriever.store.scroll(None, fields=["text", "doc_id", "kind"])
                      if len(h.text) >= _MIN_SYNTHETIC_CHARS]
            # A seeded spread over all 20 filings (hash order), not the first pages of the first filings.
            chunks.sort(key=lambda h: hashlib.sha1(h.id.encode("utf-8")).hexdigest())
            picked = self._take(chunks[:SYNTHETIC_FILING_PASSAGES], "docugami_synthetic")
            # Other pages of the same filing may answer a page's question too; other filings are negatives,
            # and telling filings apart (which quarter, which company) is what the filing questions need.
            # The split hashes a salted key: the picks are the lowest hashes of the bare id, all of which
            # `split_of` would hold out.
            return self._synthetic_lists(retriever, picked, "docugami_synthetic", lambda h: _doc_name(h.doc_id),
                                         lambda h: f"docugami_synthetic:{h.id}")

        return self._with_dataset_index(self.shared / "docugami_sec10q", lists)

    def _synthetic_lists(self, retriever, chunks: list[Hit], source: str, group: Callable[[Hit], str],
                         split_key: Callable[[Hit], str]) -> Iterable[RankList]:
        """Lists for questions the local LLM writes about `chunks`; hits in the chunk's `group` are unsure."""
        from eval.synthetic_queries import SyntheticQueries

        writer = SyntheticQueries(self.settings, self.cache_root / "synthetic_queries.jsonl")
        try:
            for chunk, query in writer.run(chunks, progress=self.progress):
                hits = retriever.run(query, top_k=DEPTH, groups=UNRESTRICTED).hits
                # Kept only when retrieval finds the source again (Promptagator's round-trip filter):
                # a question that does not lead back to its passage is probably not about it.
                if chunk.id not in [h.id for h in hits[:5]]:
                    continue

                def judge(hit: Hit, chunk=chunk) -> bool | None:
                    if hit.id == chunk.id:
                        return True
                    # Filings repeat whole pages quarter after quarter (risk factors, liquidity): a near copy
                    # of the source answers its question just as well, so it is no negative.
                    same = group(hit) == group(chunk) or overlap(chunk.text, hit.text) >= _NEAR_COPY
                    return None if same else False

                item = make_list(chunk.id, source, split_of(split_key(chunk)), query, hits, judge)
                if item:
                    yield item
        finally:
            writer.close()

    # --- indexes ---------------------------------------------------------------------------------------
    def _take(self, items: list, name: str) -> list:
        items = items[: self.limit] if self.limit else items
        return list(tqdm(items, desc=f"mine {name}", unit="q", disable=not self.progress, leave=False))

    def _with_dataset_index(self, root: Path, lists) -> list[RankList]:
        """Search the evaluation's own cached collection of a BEIR dataset (shared with `erag eval`)."""
        from eval.datasets import EvalDataset
        from eval.indexes import DatasetIndexes
        from ingest.embedder import Embedder
        from retrieval.pipeline import Retriever

        embedder = Embedder.from_settings(self.settings)
        indexes = DatasetIndexes(self.settings, EvalDataset(root), self.settings.home / "eval-cache", embedder,
                                 progress=self.progress)
        try:
            built = indexes.build("binary")
            retriever = Retriever(built.settings.model_copy(update={"query_filters": "off", "reranker": None}),
                                  store=built.store, embedder=embedder)
            return list(lists(retriever))
        finally:
            indexes.close()

    def _with_corpus_index(self, name: str, corpus: Path, lists) -> list[RankList]:
        from ingest.loaders.beir_corpus import read_corpus

        return self._with_index(name, lambda pipeline: pipeline.ingest_documents(read_corpus(corpus)), lists)

    def _with_folder_index(self, name: str, folder: Path, lists) -> list[RankList]:
        return self._with_index(name, lambda pipeline: pipeline.run([folder], prune=True), lists)

    def _with_index(self, name: str, ingest, lists) -> list[RankList]:
        from ingest.pipeline import IngestPipeline
        from retrieval.pipeline import Retriever

        settings = self.settings.model_copy(update={
            "home": self.cache_root / "indexes", "collection": name, "query_filters": "off", "reranker": None,
        })
        with IngestPipeline(settings, progress=self.progress) as pipeline:
            ingest(pipeline)
            retriever = Retriever(settings, store=pipeline.store, embedder=pipeline.embedder)
            return list(lists(retriever))


def _doc_name(doc_id: str) -> str:
    """Docugami page ids are `<year>_<quarter>_<ticker>_p<page>`; gold names the filing `<year> <quarter> <ticker>`."""
    return doc_id.rsplit("_p", 1)[0].replace("_", " ")


def heldout_query_ids(dataset_root: Path) -> set[str]:
    """Ids of the questions of a dataset that reranker training held out (empty for a source never trained on)."""
    root = Path(dataset_root)
    if root.name not in SOURCES or not (root / "questions.jsonl").is_file():
        return set()
    return {str(row["_id"]) for row in read_questions(root)
            if split_of(str(row.get("context_id") or row["_id"])) == "val"}
