"""Text that reaches a terminal or a log, made printable: a control character (ESC starts a terminal
sequence, CR rewinds the line, LF forges a new log line) or a bidirectional override (which reorders what a
reader sees) from a file name or a cell is shown as an escape, `\\x1b` or `\\u202e`, never acted on."""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, bidi embeddings, overrides and isolates, line and paragraph separators
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]")


def printable(text: str) -> str:
    """`text` with every control or bidi character escaped; plain text comes back unchanged (and fast)."""
    text = str(text)
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(lambda m: _escape(m[0]), text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def quoted(path) -> str:
    """A path as the officer would type it after a command: in double quotes when it has a space (or is empty)."""
    text = str(path)
    return f'"{text}"' if (" " in text or not text) else text
