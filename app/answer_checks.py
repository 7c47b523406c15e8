"""Checks on a drafted answer before an employee reads it: figures no source states, and untidy citation markers.

Example:
    >>> unsupported_numbers("Margaret Okafor's salary is 490 GBP k [2].", ["Margaret Okafor, Director, Leeds"])
    ['490 GBP k']
    >>> unsupported_numbers("Opex is £15.4 million [1].", ["Consulting opex (GBP thousands): 15,400"])
    []
    >>> clean_citations("follow these steps: [2]\\n1 [1]. Go to the portal.", valid=[1, 2])
    'follow these steps [2]:\\n1. Go to the portal [1].'
    >>> held_citations("Core hours are 10:00 to 16:00 [1] [2].", {1: "Dress code: smart", 2: "Core hours 10:00-16:00"})
    'Core hours are 10:00 to 16:00 [2].'
    >>> without_unsupported("Revenue was 11,560 [1]. Margin was 42% [1].", ["Total revenue 11,560"])
    Checked(text='Revenue was 11,560 [1].', removed=['Margin was 42% [1].'], has_content=True)
    >>> staff_costs = "| Department | Staff costs (GBP k) |\\n| --- | --- |\\n| Legal | 2900 |"
    >>> without_unsupported("The average salary in Legal is 2,900 [1].", [staff_costs],
    ...                     question="What is the average salary in Legal?").removed
    ['The average salary in Legal is 2,900 [1].']

Why: a 1.5B model asked for figures it cannot see (an employee asking for HR salaries) writes plausible ones and
cites a source for them; a cited number that no source states is worse than no answer. And it writes markers in
many shapes ("[1][2]", "[1, 2]", "1 [1]. Go to", a marker alone on a line) that the page shows as stray numbers.

What counts as a figure (`answer_numbers`): digits with optional thousands separators and decimals, a sign,
currency symbols or codes, a percent sign and a scale word ("490 GBP k", "£15.4 million", "12.5%"). Not figures:
citation markers ([2]), the number of a list item at the start of a line ("1. Go to"), and digits glued to letters
(identifiers such as Q3, FY2026, B2, T14). Years get no exemption: a year no source states is as invented as a
salary. Numbers the asker wrote in the question are exempt (the answer may repeat "6 years of service").

How figures compare (`_supports`): as numbers, not strings (15,400 == 15400 == 15400.0), by absolute value (a
variance of -350 is the "(350)" of a table), at the precision the answer writes them (90,333 for 90,333.33;
17.2 for 17.24), and across a factor of 1,000 when either side carries a scale word (£15.4 million for a table's
15,400 in GBP thousands; 490 GBP k for 490,000). Source text is read leniently (digits inside identifiers, number
words up to twenty, month names as month numbers), because a figure wrongly dropped costs a true answer while a
figure wrongly kept only costs what the check would have caught.

Cases (`one_case_per_list`): a source that lists alternative cases ("New phone, old phone still working: ...",
"Phone lost, stolen or reset: ...") gives a sentence of the answer the case of the source sentence holding most of
its words; sentences of another case than the one the question names go, and a list mixing cases is regrouped.

Markers: the clean form is the one the prompt shows the model (app/prompt.py, "10:00 to 16:00 [2]."): each source
its own `[n]`, separated by one space, at the end of the sentence it supports, before its final punctuation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from app.evidence import Source, content_words, word_stems

# --- citation markers ----------------------------------------------------------------------------------------
_SEP = r"\s*(?:[,;&]|and|-|–)\s*"
_LABEL = r"(?:(?:sources?|src|docs?|documents?|refs?)\s*[:#]?\s*)?"
# Anything a small model writes to mean "source n": [1], [1, 2], [1;2], [1-3], [^1], [Source 2], 【1】, (source 2).
_MARKER = re.compile(
    rf"[\[【]\s*\^?\s*{_LABEL}(\d{{1,3}}(?:{_SEP}{_LABEL}\d{{1,3}})*)\s*[\]】]"
    rf"|\(\s*(?:sources?|src)\s*[:#]?\s*(\d{{1,3}}(?:{_SEP}\d{{1,3}})*)\s*\)",
    re.IGNORECASE,
)
_CLEAN_MARKER = re.compile(r"\[(\d{1,3})\]")
_M = f"(?:{_MARKER.pattern})"  # one marker, for embedding (its inner groups are unnamed)
# A list item's number or bullet at the start of a line, possibly with markers stuck to it: "1 [1]. ", "2. [3] ".
_LIST_PREFIX = re.compile(
    rf"^(?P<indent>\s*)(?:(?P<number>\d{{1,3}})(?P<stuck>(?:\s*{_M})*)\s*(?P<dot>[.)])|(?P<bullet>[-*•]))"
    rf"(?P<after>(?:\s*{_M})*)\s+(?=\S)",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)")
_TRAILING = re.compile(r"^(.*?)([.!?:;,…]*)$", re.DOTALL)


def _numbers_of(group: str) -> list[int]:
    """The source numbers a marker's inside names: '1, 2' -> [1, 2]; '1-3' -> [1, 2, 3]; 'Source 2' -> [2]."""
    out: list[int] = []
    for part in re.split(r"\s*(?:[,;&]|and)\s*", group, flags=re.IGNORECASE):
        digits = re.findall(r"\d{1,3}", part)
        if len(digits) == 2 and re.search(r"[-–]", part):
            low, high = int(digits[0]), int(digits[1])
            out += list(range(low, high + 1)) if 0 < high - low <= 20 else [low, high]
        else:
            out += [int(d) for d in digits]
    return out


def _markers_in(text: str) -> list[int]:
    return [n for m in _MARKER.finditer(text) for n in _numbers_of(m.group(1) or m.group(2))]


def _without_markers(text: str) -> str:
    """The text with its markers taken out and the spaces they leave tidied ("hours [1] ." -> "hours.")."""
    text = _MARKER.sub("", text)
    text = re.sub(r"[ \t]+([.!?:;,])", r"\1", text)
    # The comma between two markers ("home [2], [3].") is left stranded before the full stop.
    text = re.sub(r"[,;]+(?=[.!?]*\s*$)", "", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


@dataclass
class _Sentence:
    text: str  # without markers
    markers: list[int]
    prefix: str = ""  # a list item's number or bullet, only on the line's first sentence
    tail: str = ""  # the whitespace that separated it from the next sentence on its line


def _parse(text: str) -> list[list[_Sentence]]:
    """Lines of sentences, each with the markers that belong to it.

    Markers stuck to a list number belong to the item's first sentence; markers before any word of a sentence, or
    on a line of their own, belong to the sentence before them (the model writes them after the full stop).
    """
    lines: list[list[_Sentence]] = []
    previous: _Sentence | None = None
    for line in text.split("\n"):
        sentences: list[_Sentence] = []
        prefix, body, carried = "", line, []
        match = _LIST_PREFIX.match(line)
        if match:
            indent, number, stuck, dot, bullet, after = (
                match.group(k) for k in ("indent", "number", "stuck", "dot", "bullet", "after"))
            prefix = f"{indent}{number}{dot} " if number else f"{indent}{bullet} "
            carried = _markers_in(f"{stuck or ''}{after or ''}")
            body = line[match.end():]
        pieces = _SENTENCE.split(body)
        gaps = [*_SENTENCE.findall(body), ""]
        for i, piece in enumerate(pieces):
            words = re.search(r"\w", _MARKER.sub("", piece))
            lead = re.match(rf"^(?:\s*(?:{_MARKER.pattern}))+", piece, re.IGNORECASE)
            leading = _markers_in(lead.group(0)) if lead else []
            if not words:  # only markers (a line "[2]", or "[2]" after a full stop): they cite what came before
                if previous is not None:
                    previous.markers += leading
                elif leading:
                    carried += leading
                continue
            if leading and previous is not None and not (i == 0 and prefix):
                previous.markers += leading
                piece = piece[lead.end():] if lead else piece
            sentence = _Sentence(_without_markers(piece), carried + _markers_in(piece), prefix if not sentences else "",
                                 gaps[i] if i < len(gaps) else "")
            carried = []
            sentences.append(sentence)
            previous = sentence
        if sentences or not line.strip() or prefix:
            if not sentences and prefix:
                continue  # a bare list number with nothing after it
            lines.append(sentences)
    return lines


def _render(sentence: _Sentence, allowed: set[int] | None) -> str:
    numbers = [n for n in dict.fromkeys(sentence.markers) if allowed is None or n in allowed]
    if not numbers:
        return sentence.prefix + sentence.text
    body, end = _TRAILING.match(sentence.text).groups()  # type: ignore[union-attr]
    return f"{sentence.prefix}{body} {' '.join(f'[{n}]' for n in numbers)}{end}"


def _join(lines: list[list[_Sentence]], allowed: set[int] | None, keep=lambda s: True) -> str:
    out = []
    for sentences in lines:
        kept = [s for s in sentences if keep(s)]
        if sentences and not kept:
            continue  # the whole line went: no empty list item left behind
        if kept and kept[0].prefix == "" and sentences[0].prefix:
            kept[0] = _Sentence(kept[0].text, kept[0].markers, sentences[0].prefix, kept[0].tail)
        out.append("".join(_render(s, allowed) + (s.tail if i < len(kept) - 1 else "") for i, s in enumerate(kept)))
    text = "\n".join(_renumbered(out))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _renumbered(lines: list[str]) -> list[str]:
    """Numbered list items counted from 1: a dropped item leaves no gap ("1. 2. 4.") and no list opens on "5."."""
    out: list[str] = []
    number = 0
    for line in lines:
        match = re.match(r"^(\s*)(\d{1,3})([.)]\s)", line)
        if match is None:
            number = number if not line.strip() else 0
        else:
            number += 1
            line = f"{match.group(1)}{number}{match.group(3)}{line[match.end():]}"
        out.append(line)
    return out


def clean_citations(text: str, valid: Iterable[int]) -> str:
    """Every marker as `[n]` at the end of the sentence it belongs to: split ("[1, 2]" -> "[1] [2]"), each source
    once per sentence, only sources that exist (`valid`), none alone on a line or stuck to a list number.

    Builds on app/prompt.py's reading of markers (`cited_numbers` reads the result; `strip_invalid_citations`'
    job, dropping out-of-range markers, is done here too) and accepts the looser shapes small models write.
    """
    return _join(_parse(text), set(valid))


def held_citations(text: str, source_texts: dict[int, str], min_share: float = 0.4) -> str:
    """Each sentence's markers kept only for sources that hold its words; a sentence left with none cites the
    source that holds it best, if any does.

    A source holds a sentence when at least `min_share` of the sentence's content words (names, figures, terms)
    are in it. A small model cites every source it was shown ("[1] [2] [3]") or the wrong neighbour; a marker
    that opens a source about something else breaks the employee's trust in the ones that hold. Sentences with
    no content words of their own ("Here are the steps:") keep their markers.
    """
    texts = {n: content_words(t) for n, t in source_texts.items()}
    known = {n: _known_numbers([t]) for n, t in source_texts.items()}

    def share(words: set[str], number: int) -> float:
        return len(words & texts.get(number, set())) / len(words)

    def states(figures: list[Figure], number: int) -> bool:
        return all(any(_supports(f, k) for k in known.get(number, ())) for f in figures)

    lines = _parse(text)
    for sentences in lines:
        for sentence in sentences:
            words = content_words(sentence.text)
            if not words or not sentence.markers:
                continue
            held = [n for n in dict.fromkeys(sentence.markers) if n in texts and share(words, n) >= min_share]
            if not held:
                best = max(texts, key=lambda n: share(words, n), default=None)
                held = [best] if best is not None and share(words, best) >= min_share else sentence.markers
            # Figures no source states (the question's own "6 years") are the figure check's business, not this one's.
            figures = [f for f in answer_numbers(sentence.text) if any(states([f], n) for n in texts)]
            if figures and not any(states(figures, n) for n in held):
                # The words fit a source that does not state the figure ("28 days, full-time [4]" citing the leave
                # policy's prose while the table of source 2 holds 28): the figure says where the sentence is from.
                stating = [n for n in texts if states(figures, n) and share(words, n) >= min_share]
                if stating:
                    held = [max(stating, key=lambda n: share(words, n))]
            sentence.markers = held
    return _join(lines, None)


def malformed_markers(text: str, valid: Iterable[int]) -> list[str]:
    """What a reader would see as a broken citation: bracket-like markers that are not a plain `[n]` of an
    existing source, a source cited twice in one sentence, a marker alone on a line, stuck to a list number or
    after its sentence's full stop.
    Empty for any output of `clean_citations` (the benchmark counts these over stored answers)."""
    allowed = set(valid)
    problems: list[str] = []
    for match in _MARKER.finditer(text):
        token = match.group(0)
        clean = _CLEAN_MARKER.fullmatch(token)
        if clean is None or int(clean.group(1)) not in allowed:
            problems.append(token)
    # Numbers in brackets that no marker pattern reads (a year "[2026]" is not a citation either).
    problems += [m.group(0) for m in re.finditer(r"[\[【][^\]】\n]{0,40}\d[^\]】\n]{0,40}[\]】]", text)
                 if not _MARKER.fullmatch(m.group(0))]
    for line in text.split("\n"):
        if line.strip() and not re.search(r"\w", _MARKER.sub("", line)):
            problems.append(f"alone on a line: {line.strip()}")
        # "1 [1]. Go to ..." is a list number the marker stuck to; "22 [1]." alone is a figure answered and cited.
        elif (re.match(rf"^\s*\d{{1,3}}\s*{_M}[.,;:]?\s*\w", line, re.IGNORECASE)
              or re.match(rf"^\s*(?:\d{{1,3}}[.)]|[-*•])\s*{_M}", line, re.IGNORECASE)):
            problems.append(f"stuck to a list number: {line.strip()[:30]}")
        # A marker written after the full stop ("band B2. [2]") belongs to the sentence before it: counted there for
        # duplicates ("[2]. [2]"), and misplaced, since the clean form puts it before the full stop.
        problems += [f"after the full stop: {m.group(1)}" for m in re.finditer(r"[.!?]\s*(\[\d{1,3}\])", line)]
        sentences: list[str] = []
        for piece in _SENTENCE.split(line):
            lead = re.match(r"^(?:\s*\[\d{1,3}\])+", piece)
            if lead and sentences:
                sentences[-1] += lead.group(0)
                piece = piece[lead.end():]
            sentences.append(piece)
        for sentence in sentences:
            numbers = [int(n) for n in _CLEAN_MARKER.findall(sentence)]
            problems += [f"cited twice: [{n}]" for n in sorted({n for n in numbers if numbers.count(n) > 1})]
    return problems


# --- figures ---------------------------------------------------------------------------------------------------
_CURRENCY = r"(?:[£$€¥]|(?:GBP|USD|EUR|CAD|CHF)\b)"
_SCALE = r"(?:k|K|thousand|m|M|mn|million|bn|BN|billion)\b"
# A figure as written: optional sign, currency, digits (thousands separators), decimals, then optional currency
# code and scale word, and a percent sign. The digits must not be glued to letters on either side.
_FIGURE = re.compile(
    rf"(?<![\w.,])(?P<sign>[-−–]\s?)?(?:{_CURRENCY}\s?)?"
    rf"(?P<digits>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    rf"(?P<unit>\s?{_CURRENCY})?(?P<scale>\s?{_SCALE})?(?P<pct>\s?%)?(?![\w]|[.,]\d)"
)
_LOOSE_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
_LIST_NUMBER = re.compile(r"^\s*\d{1,3}[.)](?=\s)", re.MULTILINE)
_WORDS: dict[str, float] = {w: i for i, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"))}
_WORDS |= {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
           "hundred": 100, "dozen": 12, "once": 1, "twice": 2, "half": 0.5}
# Capitalised only: "you may" is not May.
_MONTH = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\b")
_MONTHS = {m: i + 1 for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                           "Nov", "Dec"))}


@dataclass(frozen=True)
class Figure:
    """A number an answer states: as written, its value, its decimals and whether a scale word follows it."""

    text: str
    value: float
    decimals: int
    scaled: bool


def answer_numbers(answer: str) -> list[Figure]:
    """The figures an answer states (see the module docstring for what is and is not a figure)."""
    text = _MARKER.sub(" ", answer)
    text = _LIST_NUMBER.sub(" ", text)
    out = []
    for match in _FIGURE.finditer(text):
        digits = match.group("digits").replace(",", "")
        value = float(digits)
        if not math.isfinite(value):
            continue
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        out.append(Figure(match.group(0).strip(), abs(value), decimals, bool(match.group("scale"))))
    return out


@dataclass(frozen=True)
class _Known:
    value: float
    scaled: bool


def _known_numbers(texts: Iterable[str]) -> list[_Known]:
    """Every number the texts hold, read leniently: loose digit runs (also inside identifiers and each part of
    a comma-separated CSV line), number words and month names."""
    out: set[_Known] = set()
    for text in texts:
        for match in _LOOSE_NUMBER.finditer(text):
            raw = match.group(0)
            after = text[match.end(): match.end() + 16]
            scaled = bool(re.match(rf"\s?(?:{_CURRENCY}\s?)?{_SCALE}", after))
            out.add(_Known(abs(float(raw.replace(",", ""))), scaled))
            if "," in raw:  # "13,400,9" in a CSV row is three cells as much as one number
                out |= {_Known(float(p), False) for p in re.split(r"[,]", raw) if p}
        out |= {_Known(float(_WORDS[w]), False) for w in re.findall(r"[a-z]+", text.lower()) if w in _WORDS}
        out |= {_Known(float(_MONTHS[m.group(1)]), False) for m in _MONTH.finditer(text)}
    return list(out)


def _supports(figure: Figure, known: _Known) -> bool:
    """The known number says the figure: equal at the figure's written precision, possibly across a factor of
    1,000 (k, million, billion) when either side carries a scale word."""
    half_ulp = 0.5 * 10 ** -figure.decimals + 1e-9
    factors = (1.0, 1e3, 1e6, 1e9, 1e-3, 1e-6, 1e-9) if figure.scaled or known.scaled else (1.0,)
    return any(abs(figure.value - known.value / f) <= half_ulp for f in factors)


def unsupported_numbers(answer: str, cited_texts: Sequence[str], computed_values: Sequence[str] = (),
                        question: str = "") -> list[str]:
    """The figures in `answer` (as written) that none of the cited source texts, the computed table values or
    the question states, compared as numbers. Empty when every figure is backed."""
    known = _known_numbers([*cited_texts, *computed_values, question])
    return [f.text for f in answer_numbers(answer) if not any(_supports(f, k) for k in known)]


def source_text(source: Source) -> str:
    """All of a source the figures are checked against: the whole chunk (what the employee can open), the excerpt
    the model read (its header and table rows read aloud) and the location (page numbers)."""
    return f"{source.hit.text}\n{source.excerpt}\n{source.location}"


@dataclass
class Checked:
    """An answer after `without_unsupported`: the kept text, the sentences dropped, whether content is left."""

    text: str
    removed: list[str]
    has_content: bool


# A sentence that stops where its statement should be: "The combined staff cost budget is [1] [2] [3]." (the model
# cited instead of stating), "The correct answer is [1]." A colon is not here: "follow these steps:" opens a list.
# Lower case only: "The grade is A." ends a statement.
_UNFINISHED = re.compile(r"\b(is|are|was|were|be|been|equals?|of|the|a|an|to|for|by|with|and|or|from)\W*$")


# Pay asked for by name. A budget's "Staff costs" and an assumption's "Subcontractor costs" are real figures that
# the model read as "the average salary in Legal" and "Margaret Okafor's salary" for an employee who may not see
# the salary table: a figure given for pay must come from a line (or the table header above it) that names pay.
PAY_ASKED = re.compile(r"\b(salar(y|ies)|wages?|bonus(es)?|compensation|remuneration|earnings)\b", re.I)
PAY_NAMED = re.compile(r"salar(y|ies)|wages?|bonus|compensation|remuneration|earnings|\bpay\b|\bpaid\b", re.I)


def _lines_in_context(texts: Iterable[str]) -> list[str]:
    """Each line of the texts with the header row of the markdown table it belongs to (chunks of a table open with
    "| col | col |" then "| --- |"), so a row is read with its column names."""
    out: list[str] = []
    for text in texts:
        lines = text.splitlines()
        header = ""
        for i, line in enumerate(lines):
            if line.startswith("|") and i + 1 < len(lines) and re.match(r"\|\s*-{3}", lines[i + 1]):
                header = line
            out.append(f"{header}\n{line}" if line.startswith("|") else line)
    return out


def pay_not_named(figures: Sequence[Figure], texts: Sequence[str]) -> bool:
    """No line that states one of the figures names pay (`PAY_NAMED`), in its words or its table's header."""
    lines = [line for line in _lines_in_context(texts) if PAY_NAMED.search(line)]
    known = _known_numbers(lines)
    return not any(_supports(f, k) for f in figures for k in known)


def without_unsupported(answer: str, cited_texts: Sequence[str], computed_values: Sequence[str] = (),
                        question: str = "", people: Callable[[str], Sequence[str]] | None = None) -> Checked:
    """The answer without its unfinished sentences ("The total is [1]."), its sentences that state a figure no
    cited source, computed value or the question holds, and (given `people`, a person finder) its sentences that
    state a figure about a person no cited source names: "Margaret Okafor's salary is 800 GBP k [1]" citing a
    budget row that holds 800 but not her is a real figure read as the wrong thing. Each sentence goes whole, with
    its markers; a list item whose only sentence goes leaves no empty number behind. `has_content` is False when
    nothing but markers and stopwords is left (the chat abstains). A question that asks for pay by name (salary,
    bonus, ...) keeps a figure only from a line that names pay (`pay_not_named`)."""
    known = _known_numbers([*cited_texts, *computed_values, question])
    pay = bool(PAY_ASKED.search(question))
    held = "\n".join([*cited_texts, *computed_values]).lower()
    removed: list[str] = []

    def keep(sentence: _Sentence) -> bool:
        if _UNFINISHED.search(sentence.text):
            removed.append(_render(sentence, None).strip())
            return False
        figures = answer_numbers(sentence.text)
        bad = [f for f in figures if not any(_supports(f, k) for k in known)]
        if not bad and figures and people is not None:
            bad = [name for name in people(sentence.text) if not _named_in(name, held)]
        if not bad and figures and pay and pay_not_named(figures, [*cited_texts, *computed_values]):
            bad = [f.text for f in figures]
        if bad:
            removed.append(_render(sentence, None).strip())
        return not bad

    lines = _parse(answer)
    text = _join(lines, None, keep)
    return Checked(text, removed, _has_content(text))


def _has_content(text: str) -> bool:
    """Something is said besides markers and stopwords (`Checked.has_content`)."""
    return bool(content_words(_without_markers(text)))


def _named_in(name: str, text: str) -> bool:
    """The person's surname (the last word of the name, possessive cut) stands in the lower-cased text as a word:
    sources write "M. Okafor" or "Okafor, Margaret" as often as the full name."""
    words = re.findall(r"[^\W\d_][\w'-]*", re.sub(r"['’]s\b", "", name))
    return not words or re.search(rf"\b{re.escape(words[-1].lower())}\b", text) is not None


# --- one case per answer ---------------------------------------------------------------------------------------
def asked_cases(question: str, sources: Sequence[Source]) -> dict[int, str]:
    """For each source whose chunk lists alternative cases (list items with lead-ins: "New phone, old phone still
    working: ...", "Phone lost, stolen or reset: ..."), the one case the question names, if it names exactly one:
    the lead-in sharing the most word stems with the question, ahead of every other. Words of the chunk's heading
    name its topic, not a case: "What is the VPN token reset procedure?" under "Resetting your VPN token" asks
    for every case, though "reset" is a word of the lost-phone case."""
    out: dict[int, str] = {}
    for source in sources:
        cases = list(dict.fromkeys(u.case for u in source.units if u.case))
        if len(cases) < 2:
            continue
        asked_stems = word_stems(question) - word_stems(source.header)
        shared = sorted(((len(asked_stems & word_stems(case)), case) for case in cases), reverse=True)
        if shared[0][0] > shared[1][0]:
            out[source.number] = shared[0][1]
    return out


def one_case_per_list(answer: str, question: str, sources: Sequence[Source], min_share: float = 0.5) -> Checked:
    """The answer with the cases its sources list kept apart: when the question asks about one case, without the
    sentences taken from another; otherwise each list that mixes cases regrouped, one list per case under its
    lead-in.

    Asked "I got a new phone. How do I move my VPN token?", the model listed the new-phone steps and then "use the
    bypass code to sign in and enrol a new token", the lost-phone step; asked for "the VPN token reset procedure",
    it numbered steps of both cases as one procedure. A sentence belongs to the unit of the sources it cites (all,
    if it cites none) that holds most of its content words (at least `min_share`), and so to that unit's case; only
    sources whose chunk lists two or more cases take part. Nothing is dropped when nothing else would stay.
    """
    listing = [s for s in sources if len({u.case for u in s.units if u.case}) >= 2]
    units = [(s.number, u.case, content_words(u.read)) for s in listing for u in s.units]
    unchanged = Checked(answer, [], _has_content(answer))
    if not units:
        return unchanged

    def case_of(sentences: Sequence[_Sentence]) -> tuple[int, str] | None:
        words = content_words(" ".join(s.text for s in sentences))
        cited = {n for s in sentences for n in s.markers}
        # A sentence citing sources is about what they say: one that cites only sources listing no cases is not
        # about a case ("This is in the section on maternity leave [1]" kept its place).
        candidates = [unit for unit in units if not cited or unit[0] in cited]
        if not words or not candidates:
            return None
        number, case, held = max(candidates, key=lambda unit: len(words & unit[2]))
        return (number, case) if case and len(words & held) / len(words) >= min_share else None

    asked = asked_cases(question, listing)
    lines = _parse(answer)
    if asked:
        removed: list[str] = []

        def keep(sentence: _Sentence) -> bool:
            found = case_of([sentence])
            if found is None or found[0] not in asked or asked[found[0]] == found[1]:
                return True
            removed.append(_render(sentence, None).strip())
            return False

        text = _join(lines, None, keep)
        return Checked(text, removed, True) if removed and _has_content(text) else unchanged
    return Checked(_join(_cases_apart(lines, case_of), None), [], unchanged.has_content)


def _cases_apart(lines: list[list[_Sentence]], case_of: Callable[[Sequence[_Sentence]], tuple[int, str] | None]
                 ) -> list[list[_Sentence]]:
    """Each run of list items that holds two or more cases, reordered: the items of no case first, then each case's
    items under a line naming the case, in the order the cases first appear."""
    out: list[list[_Sentence]] = []
    run: list[list[_Sentence]] = []

    def flush() -> None:
        found = [case_of(line) for line in run]
        cases = list(dict.fromkeys(c for c in found if c is not None))
        if len(cases) < 2:
            out.extend(run)
        else:
            out.extend(line for line, c in zip(run, found, strict=True) if c is None)
            for case in cases:
                # Blank lines around the case's line: Markdown would read a line right after a list item as more
                # of that item, and number every case's steps as one list (seen in the browser).
                out.extend([[], [_Sentence(f"{case[1]}:", [])], []])
                out.extend(line for line, c in zip(run, found, strict=True) if c == case)
        run.clear()

    for line in lines:
        if line and line[0].prefix:
            run.append(line)
            continue
        flush()
        out.append(line)
    flush()
    return out
