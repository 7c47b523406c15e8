"""Mining the reranker's training lists with the product's own retrieval over each source's own index.

Example:
    >>> miner = RerankerDataMiner(settings, cache_root=Path(".erag/reranker-train"))
    >>> lists = miner.run(["tatqa_dev", "docugami_sec10q", "h2o_hr_policy", "sample"])
    >>> lists[0].source, lists[0].split, len(lists[0].negatives)
    ('tatqa_dev', 'train', 5)

Every list is mined with the product's own retrieval (hybrid dense + BM25 over the product's chunks), so
the pairs look exactly like what the reranker sees at run time: positives are chunks that carry the
answer, negatives are chunks ranked high that do not. The BEIR sources are searched in the evaluation's
cached collections (`eval.indexes`, shared with `erag eval`) and the synthetic sources ask the packaged LLM
for questions (`eval.synthetic_queries`), which is why mining lives here and the lists themselves
(`retrieval.reranker_data`) and training (`retrieval.reranker_training`) beside the reranker.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path

from tqdm import tqdm

from erag.access import UNRESTRICTED
from erag.schema import Hit
from erag.settings import Settings
from retrieval.reranker_data import SOURCES, RankList, make_list, overlap, read_questions, split_of

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
REPO = Path(__file__).resolve().parents[1]
# Filing pages that get an LLM-written question. The 195 hand-written questions gave only 120 training lists,
# and held-out filing questions did not gain from them; generation costs about 5 s a passage on 2 cores.
SYNTHETIC_FILING_PASSAGES = 360
_NEAR_COPY = 0.6  # share of a passage's words (numbers twice) in another: a re-filed copy, not a negative
_MIN_SYNTHETIC_CHARS = 400  # cover pages, signatures and tables of contents make questions about nothing
DEPTH = 30


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
        from erag.embedder import Embedder
        from eval.datasets import EvalDataset
        from eval.indexes import DatasetIndexes
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
