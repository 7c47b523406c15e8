"""Find metadata in a query: departments, document names, people, organisations, places and years.

Example:
    >>> analyzer = QueryAnalyzer(nlp, known={"department": {"HR", "IT"}, "title": {"Employee Handbook"}})
    >>> analyzer.run("What does the Employee Handbook say about HR in 2026?").matches
    [Match(key='department', values=('HR',)), Match(key='title', values=('Employee Handbook',)), ...]

Only values that exist in the index count (a name the index has never seen would filter everything
away), and matching is case-insensitive on whole words, except for a department, which is named as it is
written ("IT", not the pronoun "it"; `_names_department`). An organisation matches every way the index writes
it (`org_key`: "Apple" finds "Apple Inc." and "APPLE INC").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from erag.schema import LABEL_FIELDS
from index.filters import Match

# Fields set by people at ingest time are reliable enough to restrict on; NER output is noisy
# (a chunk may name a person without being tagged), so entity fields only boost.
RESTRICTING_FIELDS = ("department", "title", "file_name")
_YEAR = re.compile(r"\b(19[5-9]\d|20\d\d)\b")
_WORD = re.compile(r"\w+")
_POSSESSIVE = {"'s", "\u2019s", "'", "\u2019"}
_MIN_TITLE_CHARS = 6  # short titles ("IT", "FAQ") match too many ordinary words
# A company is written many ways in one corpus ("Apple", "Apple Inc.", "APPLE INC"; "Amazon", "AMAZON.COM, INC."),
# and a 10-Q names itself in full once, on its cover, then says "the Company": matching the query's "Apple" only to
# chunks tagged exactly "Apple" found 13 chunks of 2,000 Apple pages. Legal forms and a web suffix are not the name.
_LEGAL_FORM = re.compile(
    r"(?:[\s,]+(?:inc|incorporated|corp|corporation|co|company|ltd|limited|llc|plc|gmbh|ag|sa|nv|bv|lp|llp)\.?)+$"
)


def _names_a_document(phrase: str, key: str) -> bool:
    """Whether a title or file name, found in a query, means the asker named that document.

    A file name with its extension ("employees.csv") always does. A title must be long enough and of more than one
    word: a one-word title is usually an ordinary word ("employees", "salaries" from employees.csv), and
    restricting "How many weeks of maternity leave do employees get?" to the staff list left the leave policy out.
    """
    if len(phrase) < _MIN_TITLE_CHARS:
        return False
    return (key == "file_name" and "." in phrase) or len(_WORD.findall(phrase)) > 1


@dataclass
class QueryAnalysis:
    text: str
    restrict: list[Match] = field(default_factory=list)
    boost: list[Match] = field(default_factory=list)

    @property
    def matches(self) -> list[Match]:
        return self.restrict + self.boost

    def describe(self) -> list[str]:
        return [f"{m.key}={'|'.join(map(str, m.values))}" for m in self.matches]


def org_key(name: str) -> str:
    """The name of an organisation without case, a leading "the", a possessive or its legal form."""
    key = " ".join(name.lower().replace("\u2019", "'").split())
    key = re.sub(r"^the\s+", "", key)
    key = re.sub(r"'s?$", "", key)
    key = _LEGAL_FORM.sub("", key).strip(" ,.")
    return re.sub(r"\.com$", "", key)


def _contains(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase.lower())}(?!\w)", text) is not None


def _names_department(query: str, name: str) -> bool:
    """Whether the query names the department: written as the department writes itself ("IT", "Legal"), or in
    lower case followed by "department" or "team" ("the finance team"). Matched without case, the pronoun in "Is
    it allowed to work from home?" restricted the search to the IT department's documents, and "is it legal"
    would have gone to Legal's; the ingest tags departments in chunks by their written form too."""
    if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", query):
        return True
    return re.search(rf"(?<!\w){re.escape(name.lower())}\s+(?:department|dept|team)\b", query.lower()) is not None


class QueryAnalyzer:
    """Match a query against the field values the index holds."""

    def __init__(self, nlp, known: dict[str, set]) -> None:
        self.nlp = nlp
        self.known = {key: {str(v) for v in values if str(v).strip()} for key, values in known.items()}
        self._lower = {key: {v.lower(): v for v in values} for key, values in self.known.items()}
        self._orgs: dict[str, set[str]] = {}
        for value in self.known.get("orgs", ()):
            if key := org_key(value):
                self._orgs.setdefault(key, set()).add(value)
        # Phrases that name a value, bucketed by their first word: a query is checked only against the
        # phrases whose first word it contains. Checking every title of a large corpus with a regex per
        # query cost 0.7 s on SciFact's 5,183 titles; the buckets keep it to a handful.
        self._phrases: dict[str, dict[str, list[tuple[str, str]]]] = {}
        # One-word titles and file stems ("employees" of employees.csv): found in a query they only boost, since
        # the word is more often an ordinary word than the asker naming the document.
        self._weak: dict[str, dict[str, list[tuple[str, str]]]] = {}
        for key in RESTRICTING_FIELDS:
            buckets: dict[str, list[tuple[str, str]]] = {}
            weak: dict[str, list[tuple[str, str]]] = {}
            for low, value in self._lower.get(key, {}).items():
                stem = low.rsplit(".", 1)[0].replace("_", " ")
                candidates = [(low, key)] + ([(stem, "title")] if key == "file_name" else [])
                for phrase, kind in candidates:
                    if key == "department" or _names_a_document(phrase, kind):
                        target = buckets
                    elif len(phrase) >= _MIN_TITLE_CHARS and kind == "title":
                        target = weak
                    else:
                        continue
                    first = _WORD.search(phrase)
                    target.setdefault(first.group() if first else "", []).append((phrase, value))
            self._phrases[key] = buckets
            self._weak[key] = weak

    def run(self, query: str) -> QueryAnalysis:
        analysis = QueryAnalysis(text=query)
        lowered = query.lower()
        words = {"", *_WORD.findall(lowered)}
        for key in RESTRICTING_FIELDS:
            buckets = self._phrases.get(key, {})
            hits = {
                value for word in words for phrase, value in buckets.get(word, ())
                if (_names_department(query, value) if key == "department" else _contains(lowered, phrase))
            }
            if hits:
                analysis.restrict.append(Match(key, sorted(hits)))
            weak = {
                value for word in words for phrase, value in self._weak[key].get(word, ()) if _contains(lowered, phrase)
            } - hits
            if weak:
                analysis.boost.append(Match(key, sorted(weak)))
        entity_values: dict[str, set[str]] = {}
        if self.nlp is not None:
            doc = self.nlp(query)
            for ent in doc.ents:
                name = LABEL_FIELDS.get(ent.label_)
                if not name or name == "departments":
                    continue
                if name == "orgs":
                    # Only an owner ("Apple's gross margin", "Helios's leave policy") says whose documents answer:
                    # spaCy also tags gene and protein names in a claim as organisations ("GATA3", "RA"), which
                    # BM25 already weighs as rare words, and boosting them cost scifact 0.018 nDCG@10.
                    after = doc[ent.end].text if ent.end < len(doc) else ""
                    if ent[-1].text in _POSSESSIVE or after in _POSSESSIVE:
                        entity_values.setdefault(name, set()).update(self._orgs.get(org_key(ent.text), ()))
                    continue
                value = self._lower.get(name, {}).get(" ".join(ent.text.split()).lower())
                if value:
                    entity_values.setdefault(name, set()).add(value)
        years = {int(y) for y in _YEAR.findall(query)} & {int(y) for y in self.known.get("years", set())}
        for name, values in sorted(entity_values.items()):
            if not values:
                continue
            analysis.boost.append(Match(name, sorted(values)))
        if years:
            analysis.boost.append(Match("years", sorted(years)))
        return analysis
