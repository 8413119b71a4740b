"""One cell of an .xlsx worksheet as a value: shared and inline strings, numbers, dates by their cell style
and the workbook's calendar, booleans, error literals and ISO date cells; and a cell reference's column."""

from __future__ import annotations

import math
import re
from datetime import datetime, time

from openpyxl.utils.datetime import from_excel

from pipeline.read.celltext import unescape
from pipeline.read.damage import DamagedWorkbook
from pipeline.read.limits import MAX_CELL_CHARS
from pipeline.read.xmlparts import local_name


def rich_text(element) -> str:
    """The text of an <si> or <is>: its <t>, or its runs' <t>s; phonetic runs (<rPh>) left out."""
    parts = []
    for child in element:
        name = local_name(child.tag)
        if name == "t":
            parts.append(child.text or "")
        elif name == "r":
            for t in child:
                if local_name(t.tag) == "t":
                    parts.append(t.text or "")
    return "".join(parts)


_COLUMN_CACHE: dict[str, int] = {}
_REF = re.compile(r"([A-Za-z]{1,3})(\d+)")


def column_of(ref: str) -> int:
    """1-based column of a cell reference such as 'AB12'."""
    letters = ref.rstrip("0123456789")
    column = _COLUMN_CACHE.get(letters)
    if column is None:
        if not _REF.fullmatch(ref):
            raise DamagedWorkbook(f"a cell has the reference '{ref[:20]}', which is not a cell")
        column = 0
        for ch in letters.upper():
            column = column * 26 + ord(ch) - 64
        if len(_COLUMN_CACHE) < 20_000:
            _COLUMN_CACHE[letters] = column
    return column


class Tags:
    """The element names of one sheet's namespace (transitional or strict OOXML), to compare tags cheaply."""

    def __init__(self, tag: str):
        ns = tag[:tag.rfind("}") + 1]
        self.c, self.v, self.f, self.inline, self.t, self.r = (ns + n for n in ("c", "v", "f", "is", "t", "r"))


def cell_value(cell, wb, tags: Tags):
    """(value, has_formula_without_value) of one <c> element; `wb` gives the shared strings, the date styles
    and the calendar (an `XlsxWorkbook`)."""
    text = inline = None
    formula = False
    for child in cell:
        tag = child.tag
        if tag == tags.v:
            text = child.text or ""
        elif tag == tags.f:
            formula = True
        elif tag == tags.inline:
            inline = _inline_text(child, tags)
    kind = cell.get("t")
    if inline is not None and kind == "inlineStr":
        return inline, False
    if text is None or (formula and not text and kind in (None, "n")):
        return None, formula
    return _typed_value(cell, kind, text, wb), False


def _typed_value(cell, kind: str | None, text: str, wb):
    """The value of a cell's <v> text, read as its type attribute `t` says."""
    if kind is None or kind == "n":
        style = cell.get("s")
        try:
            style = int(style) if style else 0
        except ValueError:
            style = 0
        return _number(text.strip(), style, wb)
    if kind == "s":
        if not text.strip():
            return None  # an empty <v/>: Excel shows a blank cell
        try:
            return wb.strings[int(text)]
        except (ValueError, IndexError):
            raise DamagedWorkbook(f"cell {cell.get('r') or '?'} refers to a shared string that does not exist") from None
    if kind in ("str", "inlineStr"):
        return unescape(text[:MAX_CELL_CHARS])
    if kind == "e":
        return text.strip()
    if kind == "b":
        return text.strip() in ("1", "true")
    if kind == "d":  # an ISO date cell (Strict OOXML, LibreOffice): a date, a date and time, or a time
        return _iso_date(text)
    return text


def _iso_date(text: str):
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            return time.fromisoformat(text.strip())
        except ValueError:
            return text


def _number(text: str, style: int, wb):
    try:
        value = int(text) if text.lstrip("-").isdigit() else float(text)
    except ValueError:
        return text
    if isinstance(value, float) and not math.isfinite(value):
        return text  # Excel never writes inf or nan: keep what the file says, as text
    if style in wb.date_styles:
        try:
            return from_excel(value, wb.epoch)
        except (OverflowError, ValueError, TypeError):
            return value
    return value


def _inline_text(element, tags: Tags) -> str:
    parts = []
    for child in element:
        if child.tag == tags.t:
            parts.append(child.text or "")
        elif child.tag == tags.r:
            parts.extend(t.text or "" for t in child if t.tag == tags.t)
    return unescape("".join(parts)[:MAX_CELL_CHARS])
