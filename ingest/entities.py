"""Named entities of each chunk, as filterable metadata (people, orgs, places, dates, money, departments).

Example:
    >>> EntityTagger(nlp).run(["Margaret Okafor approved the HR budget in Leeds on 3 March 2026."])[0]["people"]
    ['Margaret Okafor']
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from erag.schema import LABEL_FIELDS

_YEAR = re.compile(r"\b(19[5-9]\d|20\d\d)\b")
_MAX_VALUES = 32  # per field and chunk: a long table column adds noise, not filter power


class EntityTagger:
    """Run spaCy NER over chunk texts in batches and group the entities by field."""

    def __init__(self, nlp, batch_size: int = 64) -> None:
        if "ner" not in nlp.pipe_names:
            raise ValueError(f"spaCy pipeline has no 'ner' component (has {nlp.pipe_names})")
        self.nlp = nlp
        self.batch_size = batch_size

    def run(self, texts: Sequence[str]) -> list[dict[str, list[str]]]:
        results = []
        for doc in self.nlp.pipe(texts, batch_size=self.batch_size):
            fields: dict[str, list[str]] = {}
            for ent in doc.ents:
                name = LABEL_FIELDS.get(ent.label_)
                value = " ".join(ent.text.split())
                if ent.label_ == "DEPARTMENT" and ent.ent_id_:
                    value = ent.ent_id_  # canonical department name from the ruler
                if name and value:
                    bucket = fields.setdefault(name, [])
                    if value not in bucket and len(bucket) < _MAX_VALUES:
                        bucket.append(value)
            years = sorted({int(y) for d in fields.get("dates", []) for y in _YEAR.findall(d)})
            if years:
                fields["years"] = years
            results.append(fields)
        return results
