"""Thumbs up/down on answers: stored, exported as evaluation data, and (optionally) fed back into ranking.

Example:
    >>> store = FeedbackStore(ChatDatabase.from_settings(settings))
    >>> store.record(turn_id=12, username="erin", rating=1, comment="exactly right")
    >>> store.export(Path("feedback-eval"))    # queries.jsonl, corpus.jsonl, qrels/test.tsv, negatives.tsv
    ExportSummary(queries=1, positives=2, negatives=0, feedback=1)

The export is a BEIR folder: each rated question is a query, the documents cited by an answer rated up
are relevant (score 1), and those cited by an answer rated down are listed in `negatives.tsv` (score 0,
outside qrels/ so it is not taken for a split; a reranker trainer can use them as hard negatives).
`feedback.jsonl` keeps every record in full (question, answer, comment, cited chunk ids, user, time).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sqlalchemy import select

from erag.db import ChatDatabase, Feedback, Turn, utcnow
from erag.schema import Hit


@dataclass
class ExportSummary:
    queries: int
    positives: int
    negatives: int
    feedback: int


class FeedbackStore:
    """Record one rating per user and answer (a second click changes it) and export them all."""

    def __init__(self, db: ChatDatabase) -> None:
        self.db = db

    def record(self, turn_id: int, username: str, rating: int, comment: str = "") -> None:
        if rating not in (-1, 1):
            raise ValueError(f"rating must be 1 (thumbs up) or -1 (thumbs down), got {rating}")
        with self.db.session() as session:
            turn = session.get(Turn, turn_id)
            if turn is None or turn.username != username:
                raise LookupError(f"no answer {turn_id} for {username}")
            row = session.execute(
                select(Feedback).where(Feedback.turn_id == turn_id, Feedback.username == username)
            ).scalar_one_or_none()
            if row is None:
                session.add(Feedback(turn_id=turn_id, username=username, rating=rating, comment=comment.strip()))
            else:
                row.rating, row.updated_at = rating, utcnow()
                if comment.strip():
                    row.comment = comment.strip()

    def comment(self, turn_id: int, username: str, comment: str) -> None:
        """Add a comment to an existing rating."""
        with self.db.session() as session:
            row = session.execute(
                select(Feedback).where(Feedback.turn_id == turn_id, Feedback.username == username)
            ).scalar_one_or_none()
            if row is None:
                raise LookupError("rate the answer (thumbs up or down) before commenting")
            row.comment, row.updated_at = comment.strip(), utcnow()

    def rated(self) -> list[tuple[Feedback, Turn]]:
        with self.db.session() as session:
            rows = session.execute(select(Feedback, Turn).join(Turn, Feedback.turn_id == Turn.id)
                                   .order_by(Feedback.id)).all()
            return [(f, t) for f, t in rows]

    def export(self, out: Path) -> ExportSummary:
        """Write the feedback as a BEIR-layout evaluation set under `out` (created; files replaced)."""
        out = Path(out)
        (out / "qrels").mkdir(parents=True, exist_ok=True)
        queries: dict[str, str] = {}
        positives: set[tuple[str, str]] = set()
        negatives: set[tuple[str, str]] = set()
        corpus: dict[str, dict[str, str]] = {}
        records = []
        for fb, turn in self.rated():
            query_id = f"turn-{turn.id}"
            queries[query_id] = turn.rewritten or turn.question
            by_number = {s.get("number"): s for s in turn.sources}
            cited = [by_number[n] for n in turn.cited if n in by_number]
            for source in cited:
                doc_id = str(source.get("doc_id") or source.get("id"))
                (positives if fb.rating > 0 else negatives).add((query_id, doc_id))
                entry = corpus.setdefault(doc_id, {"_id": doc_id, "title": str(source.get("title", "")), "text": ""})
                if source.get("text") and source["text"] not in entry["text"]:
                    entry["text"] = (entry["text"] + "\n\n" + source["text"]).strip()
            records.append({
                "query_id": query_id, "question": turn.question, "standalone": turn.rewritten, "answer": turn.answer,
                "mode": turn.mode, "abstained": turn.abstained, "rating": fb.rating, "comment": fb.comment,
                "username": fb.username, "rated_at": fb.updated_at.isoformat(), "asked_at": turn.created_at.isoformat(),
                "cited_chunks": [s.get("id") for s in cited], "cited_documents": [s.get("doc_id") for s in cited],
            })
        with (out / "queries.jsonl").open("w", encoding="utf-8") as fh:
            for qid, text in sorted(queries.items()):
                fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
        with (out / "corpus.jsonl").open("w", encoding="utf-8") as fh:
            for doc in sorted(corpus.values(), key=lambda d: d["_id"]):
                fh.write(json.dumps(doc) + "\n")
        for path, pairs, score in ((out / "qrels" / "test.tsv", positives, 1),
                                   (out / "negatives.tsv", negatives - positives, 0)):
            with path.open("w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh, delimiter="\t")
                writer.writerow(["query-id", "corpus-id", "score"])
                writer.writerows((q, d, score) for q, d in sorted(pairs))
        with (out / "feedback.jsonl").open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record) + "\n")
        return ExportSummary(len(queries), len(positives), len(negatives - positives), len(records))


class FeedbackRanker:
    """Lift chunks cited in answers rated up for similar past questions, and lower those rated down.

    Similar = cosine of the standalone questions (fast MiniLM) at least `min_similarity`. The score
    change is `weight * similarity * (ups - downs)`; with RRF scores near 1/60 a weight of 0.01
    moves a chunk a few ranks, not past everything.
    """

    def __init__(self, store: FeedbackStore, encode: Callable[[list[str]], np.ndarray], weight: float,
                 min_similarity: float = 0.6) -> None:
        if weight < 0 or not 0 < min_similarity <= 1:
            raise ValueError(f"need weight >= 0 and 0 < min_similarity <= 1, got {weight} and {min_similarity}")
        self.store = store
        self.encode = encode
        self.weight = weight
        self.min_similarity = min_similarity
        self._vectors: dict[str, np.ndarray] = {}

    def votes(self, question: str) -> dict[str, float]:
        """Chunk id -> similarity-weighted (ups - downs) over rated turns similar to `question`."""
        rated = self.store.rated()
        if not rated:
            return {}
        texts = sorted({t.rewritten or t.question for _, t in rated} - set(self._vectors))
        if texts:
            self._vectors.update(zip(texts, self.encode(texts), strict=True))
        q = self.encode([question])[0]
        votes: dict[str, float] = {}
        for fb, turn in rated:
            similarity = float(self._vectors[turn.rewritten or turn.question] @ q)
            if similarity < self.min_similarity:
                continue
            by_number = {s.get("number"): s for s in turn.sources}
            for n in turn.cited:
                if n in by_number:
                    chunk = str(by_number[n].get("id"))
                    votes[chunk] = votes.get(chunk, 0.0) + similarity * fb.rating
        return votes

    def run(self, question: str, hits: Sequence[Hit]) -> list[Hit]:
        votes = self.votes(question)
        out = []
        for hit in hits:
            if votes.get(hit.id):
                delta = self.weight * votes[hit.id]
                hit = replace(hit, score=hit.score + delta, scores={**hit.scores, "feedback": delta})
            out.append(hit)
        return sorted(out, key=lambda h: h.score, reverse=True)
