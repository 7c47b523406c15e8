"""Text from files and file names made safe: no control characters in the index, none raw on a terminal.

Example:
    >>> strip_controls("Total:\\x1b[31m 12\\x00 EUR\\r\\nnext")
    'Total: 12 EUR\\nnext'
    >>> printable("a\\x1b[31mb.txt")
    'a\\\\x1b[31mb.txt'
    >>> break_long_runs("x" * 450, max_run=200).count(" ")
    2

The escape-sequence patterns are written here by hand from ECMA-48 (string sequences, CSI, other
escapes): a few regular expressions, not worth a dependency.
"""

from __future__ import annotations

import re
import unicodedata

# 7-bit escape sequences: a string sequence (OSC, DCS, SOS, PM, APC) runs to its terminator (BEL or ST),
# or to the end of the line when unterminated, so a stray ESC ] cannot swallow a whole document; CSI
# takes parameter and intermediate bytes then a final byte; any other ESC takes intermediates and a final.
_ANSI = re.compile(
    r"\x1b[\]PX^_][^\x07\x1b\n]*(?:\x07|\x1b\\)?"
    r"|\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[ -/]*[0-~]?"
)
# Controls that end a line or a page become a newline, so removing controls never joins two words.
_LINE_BREAKS = re.compile(r"\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# C0 except tab and newline (the line breaks above are gone by then), DEL, C1. A C1 control is removed
# alone: in text decoded from a single-byte charset it is a stray byte, not the start of a sequence.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ANY_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# Bidirectional overrides and isolates can make a terminal show a name other than the real one.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,15}://")
URL_MAX_CHARS = 2048  # the longest URL most browsers and servers accept


def strip_controls(text: str) -> str:
    """`text` without ANSI escape sequences and C0/C1 control characters; tabs and newlines are kept.

    Carriage returns, form feeds and the other line or page separators become newlines.
    """
    if not _ANY_CONTROL.search(text):  # the common case: no second pass over a large text
        return text
    text = _ANSI.sub("", text)
    text = _LINE_BREAKS.sub("\n", text)
    return _CONTROLS.sub("", text)


def printable(text: str) -> str:
    """`text` for a terminal or a log line: control characters (newlines too) and bidi overrides are shown
    escaped (\\x1b, \\n, \\u202e), so the output is one line and shows the characters really there."""
    if text.isprintable():
        return text
    return "".join(_escape(ch) for ch in text)


def break_long_runs(text: str, max_run: int = 200) -> str:
    """Insert a space every `max_run` characters inside runs without whitespace (base64 blobs, 3 MB of 'A').

    Tokenizers, sentence splitters and text splitters all cut at whitespace: one endless "word" makes them
    slow, or lets one unknown-word token stand for megabytes. URLs are kept whole up to URL_MAX_CHARS.
    """
    if max_run < 1:
        raise ValueError(f"max_run must be positive, got {max_run}")
    if len(text) <= max_run:
        return text
    return re.sub(rf"\S{{{max_run + 1},}}", lambda m: _split_run(m.group(), max_run), text)


def _split_run(run: str, max_run: int) -> str:
    if _URL.match(run) and len(run) <= URL_MAX_CHARS:
        return run
    return " ".join(run[i:i + max_run] for i in range(0, len(run), max_run))


def _escape(ch: str) -> str:
    if ch not in _BIDI and unicodedata.category(ch) not in ("Cc", "Zl", "Zp"):
        return ch
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
