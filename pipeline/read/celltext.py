"""Text as a cell holds it, made safe to carry on: Excel's `_xHHHH_` escapes decoded, and lone UTF-16
surrogates (which a hostile or broken file can hold) replaced, so no text we read fails to encode later."""

from __future__ import annotations

import re

_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")


def unescape(text: str) -> str:
    """Excel writes characters XML cannot hold as _xHHHH_ (a carriage return is _x000D_); a character outside
    the basic plane as two, `_xD83D__xDE00_`, which are joined, and half of one alone becomes U+FFFD."""
    if "_x" not in text:
        return text
    return no_lone_surrogates(_ESCAPED.sub(lambda m: chr(int(m[1], 16)), text))


def no_lone_surrogates(text: str) -> str:
    """Surrogate pairs joined into their character, a lone surrogate replaced by U+FFFD (as Excel shows it):
    no text we read can fail to encode when it is written out."""
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
