"""Does feedback-adjusted ranking help? A small simulation on the sample company.

Run: `.venv/bin/python bench/feedback_ranking.py [--weights 0,0.005,0.01,0.02]`

For each of 12 facts there are two phrasings. The first phrasing is asked (extractive answers) and an
oracle employee rates the answer up when a cited chunk states the fact, down otherwise. Then the second
phrasing is asked with `chat_feedback_boost` set to each weight, and the rank of the first chunk stating
the fact is scored (MRR@10, hit@1). Unrelated control questions check that ratings do not disturb
questions they are not similar to. Fast embedder; the index is a temporary copy of data/.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from app.chat import ChatPipeline
from app.feedback import FeedbackRanker
from app.identity import current_user
from erag.settings import Settings
from ingest.pipeline import IngestPipeline

REPO = Path(__file__).resolve().parents[1]
# (asked first and rated, asked later, text of the chunk that answers)
PAIRS = [
    ("How many days of parental leave do I get?", "What is my maternity leave entitlement in working days?",
     "260 working days"),
    ("How long is partner leave?", "How much paternity leave can a partner take?", "30 working days, all at full pay"),
    ("What are the core working hours?", "When must I be available for meetings each day?", "10:00 to 16:00"),
    ("What is the minimum password length?", "How long must my password be?", "at least 14 characters"),
    ("Can I use a USB stick?", "Are USB storage devices allowed on laptops?", "USB storage devices are blocked"),
    ("How many sick days are paid in full?", "How long does Helios pay full salary when I am ill?",
     "20 working days of sickness"),
    ("How often must I work from the office?", "How many office days per week are expected?",
     "at least 2 days per week"),
    ("When are expense claims due?", "How soon must I submit an expense claim?", "within 30 days of the expense"),
    ("Can I work from another country?", "How many days per year can I work from abroad?",
     "another country for up to 20 working days"),
    ("What was Q3 2026 revenue for the Consulting segment?", "How much did Consulting earn in the third quarter?",
     "6.42"),
    ("How do I carry over unused holiday?", "Until when can I use carried-over leave days?", "31 March"),
    ("How much notice do I need to change my maternity leave start date?",
     "Can I move the start of my parental leave, and with how much notice?", "28 days' notice"),
]
CONTROLS = ["How do I reset my VPN token?", "Who works in the Berlin office?", "What is the FY2026 budget for IT?"]


def rank_of(chat: ChatPipeline, question: str, needle: str, user) -> int | None:
    answer = chat.answer(question, user)
    for rank, source in enumerate(answer.sources, start=1):
        if needle in source.hit.text:
            return rank
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="0,0.005,0.01,0.02")
    parser.add_argument("--similarities", default="0.6,0.5,0.8", help="min question similarity for a vote")
    args = parser.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    similarities = [float(x) for x in args.similarities.split(",")]

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), embedder="all-MiniLM-L6-v2", llm_enabled=False, chat_top_k=10)
        with IngestPipeline(settings, progress=False) as pipeline:
            pipeline.run([REPO / "data"])
        chat = ChatPipeline(settings)
        user = current_user(settings)
        baseline_controls = [[s.hit.id for s in chat.answer(q, user).sources] for q in CONTROLS]
        ups = downs = 0
        for first, _, needle in PAIRS:
            answer = chat.answer(first, user)
            good = any(needle in h.text for h in answer.citations)
            chat.feedback.record(answer.turn_id, user.username, 1 if good else -1)
            ups, downs = ups + good, downs + (not good)
        print(f"ratings from the first phrasings: {ups} up, {downs} down\n")
        print(f"{'weight':>7}  {'min sim':>7}  {'MRR@10':>7}  {'hit@1':>6}  {'found':>5}  controls unchanged")
        for weight, similarity in [(w, m) for w in weights for m in (similarities if w else similarities[:1])]:
            ranker = FeedbackRanker(chat.feedback, chat.selector.encode, weight, similarity)
            weighted = ChatPipeline(settings.model_copy(update={"chat_feedback_boost": weight}),
                                    retriever=chat.retriever, memory=chat.memory, selector=chat.selector,
                                    feedback_ranker=ranker)
            ranks = [rank_of(weighted, second, needle, user) for _, second, needle in PAIRS]
            mrr = sum(1 / r for r in ranks if r) / len(ranks)
            hit1 = sum(r == 1 for r in ranks) / len(ranks)
            same = sum([s.hit.id for s in weighted.answer(q, user).sources] == base
                       for q, base in zip(CONTROLS, baseline_controls, strict=True))
            found = sum(r is not None for r in ranks)
            print(f"{weight:>7.3f}  {similarity:>7.2f}  {mrr:>7.3f}  {hit1:>6.2f}  {found:>5}"
                  f"  {same}/{len(CONTROLS)}   ranks {ranks}")
        chat.close()


if __name__ == "__main__":
    main()
