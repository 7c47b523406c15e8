"""An FAQ's own answer, quoted, when the model refuses a question the FAQ asks in nearly the same words.

Example:
    >>> from app.evidence import Source, Unit
    >>> from erag.schema import Hit
    >>> units = [Unit("Q: Can I use a USB memory stick?", 0, cosine=0.87),
    ...          Unit("A: No. USB storage devices are blocked.", 1), Unit("Q: Is my laptop encrypted?", 2)]
    >>> faq = Source(1, Hit("faq-0", 0.9, {"file_name": "security_faq.txt"}), "", units)
    >>> faq_answer([faq])
    ('No. USB storage devices are blocked [1].', 1)

Why: asked "Can I use a USB memory stick on my laptop?" over a security FAQ whose entry reads "Q: Can I use a USB
memory stick? A: No. USB storage devices are blocked on all company laptops.", the packaged 1.5B model writes its
no-answer sentinel (greedy decoding, with the answer in the prompt): a yes/no question answered "No" is read as
"no answer". Two prompt wordings that told it otherwise either still refused or answered "Are dogs allowed in
the office?" with an invented "No". A document that is itself a list of questions and answers settles it: when
one of its questions is nearly the user's (MiniLM cosine at least `min_cosine`: 0.87 for this pair, 0.72 for
"Can I plug a USB stick into my laptop?", 0.66 for "Can I use a USB keyboard?"), its answer is quoted. Only when
the model refuses: what the model writes from the same sources is otherwise kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.evidence import Source

_QUESTION = re.compile(r"^\s*(?:Q|Question)\s*[:.]\s*", re.IGNORECASE)
_ANSWER = re.compile(r"^\s*(?:A|Answer)\s*[:.]\s*", re.IGNORECASE)


def faq_answer(sources: Sequence[Source], min_cosine: float = 0.8, max_sentences: int = 2) -> tuple[str, int] | None:
    """(The quoted answer with its citation, the source number) of the FAQ entry whose question is closest to the
    asked one, if that is at least `min_cosine` and an answer follows it; else None. Units must be scored."""
    best: tuple[float, Source, int] | None = None
    for source in sources:
        units = source.units
        for i, unit in enumerate(units[:-1]):
            if _QUESTION.match(unit.text) and _ANSWER.match(units[i + 1].text) and unit.cosine >= min_cosine and (
                    best is None or unit.cosine > best[0]):
                best = (unit.cosine, source, i)
    if best is None:
        return None
    _, source, i = best
    said: list[str] = []
    for unit in source.units[i + 1:]:
        if _QUESTION.match(unit.text) or len(said) >= max_sentences:
            break
        said.append(_ANSWER.sub("", unit.text) if not said else unit.text)
    text = " ".join(said).rstrip()
    end = text[-1] if text and text[-1] in ".!?" else "."
    return f"{text.rstrip('.!?')} [{source.number}]{end}", source.number
