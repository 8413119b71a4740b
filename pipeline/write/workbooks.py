"""Shared settings for every workbook we write with XlsxWriter.

Text is always written as text: a value starting with `=`, `+`, `-`, `@`, a tab or a carriage return never
becomes a formula (spreadsheet injection), and gets Excel's quote prefix so it stays text when edited.
"""

from __future__ import annotations

from datetime import date, datetime

import xlsxwriter

OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
RISKY_START = ("=", "+", "-", "@", "\t", "\r")
DATE_FORMAT = "dd/mm/yyyy"


def new_workbook(path, *, constant_memory: bool = False) -> xlsxwriter.Workbook:
    return xlsxwriter.Workbook(str(path), {**OPTIONS, "constant_memory": constant_memory})


class Formats:
    """The formats of one workbook, made once (XlsxWriter formats belong to a workbook)."""

    def __init__(self, wb: xlsxwriter.Workbook):
        self.wb = wb
        self.heading = wb.add_format({"bold": True, "bg_color": "#1F4E79", "font_color": "#FFFFFF",
                                      "text_wrap": True, "valign": "top", "border": 1})
        self.date = wb.add_format({"num_format": DATE_FORMAT, "align": "left"})
        self.text = wb.add_format({"text_wrap": False, "valign": "top"})
        self.quoted = wb.add_format({"quote_prefix": True, "valign": "top"})
        self.title = wb.add_format({"bold": True, "font_size": 14})
        self._cache: dict = {}

    def derived(self, base: str, **props):
        key = (base, tuple(sorted(props.items())))
        if key not in self._cache:
            spec = {"valign": "top", **props}
            if base == "date":
                spec["num_format"] = DATE_FORMAT
                spec.setdefault("align", "left")
            if base == "quoted":
                spec["quote_prefix"] = True
            self._cache[key] = self.wb.add_format(spec)
        return self._cache[key]


def kind_of(value) -> str:
    if isinstance(value, (date, datetime)):
        return "date"
    if isinstance(value, str) and value.startswith(RISKY_START):
        return "quoted"
    return "text"


def write_value(ws, row: int, col: int, value, formats: Formats, **props) -> None:
    """Write one cell by its Python type; strings always as strings."""
    kind = kind_of(value)
    fmt = formats.derived(kind, **props) if props else getattr(formats, kind)
    if value is None:
        ws.write_blank(row, col, None, fmt)
    elif isinstance(value, bool):
        ws.write_boolean(row, col, value, fmt)
    elif isinstance(value, (int, float)):
        ws.write_number(row, col, value, fmt)
    elif isinstance(value, datetime):
        ws.write_datetime(row, col, value, fmt)
    elif isinstance(value, date):
        ws.write_datetime(row, col, datetime(value.year, value.month, value.day), fmt)
    else:
        ws.write_string(row, col, str(value), fmt)


def print_setup(ws, *, landscape: bool = True, pages_wide: int = 1) -> None:
    """A4, `pages_wide` pages across, heading row repeated, protective marking on every printed page."""
    ws.set_paper(9)
    if landscape:
        ws.set_landscape()
    ws.fit_to_pages(pages_wide, 0)
    ws.repeat_rows(0)
    ws.set_header("&L&8London Borough of Havering - Inclusions Team&C&8&\"-,Bold\"OFFICIAL-SENSITIVE")
    ws.set_footer("&C&8&\"-,Bold\"OFFICIAL-SENSITIVE&R&8Page &P of &N")
