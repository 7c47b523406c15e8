"""The one citation marker the chat asks for and reads: `[n]`, or `[n, m]` for several sources.

Example:
    >>> [m.group(1) for m in CITATION.finditer("Core hours are 10:00 to 16:00 [2]. Leave is 26 weeks [1, 3].")]
    ['2', '1, 3']

Every module that finds, strips or checks markers builds on this pattern (app/prompt.py reads the cited numbers,
app/injection.py recognises a sentence that is only markers, app/table_qa.py strips markers a model wrote into
SQL), so a change to what counts as a marker is made here once. app/answer_checks.py reads the looser shapes a
small model writes ("[Source 2]", "【1】") in order to rewrite them into this one.
"""

from __future__ import annotations

import re

NUMBERS = r"\d{1,3}(?:\s*[,;]\s*\d{1,3})*"
CITATION = re.compile(rf"\[({NUMBERS})\]")
