"""Many rows into an XlsxWriter worksheet, fast: the big sheets of a run (the validation report's input rows
and issues, the review tracker) hold hundreds of thousands of cells, and XlsxWriter spends about 6 us on each
(argument checks, a cell tuple, then at close an attribute list and escaping per cell).

`RowsWorksheet.add_row` takes a whole row of Python values and writes each cell exactly as
`pipeline.write.workbooks.write_value` would (same formats, strings through the workbook's shared-string table,
the same XML for each cell), building the row's XML at once; XlsxWriter still writes everything else of the
sheet (title and heading rows, comments, filters, panes, validation, print settings) and the workbook. Rows
added this way come after every row written cell by cell, in order. About a fifth of the time per cell.

Example::

    ws = wb.add_worksheet("Reviews", worksheet_class=RowsWorksheet)
    ws.write_string(0, 0, "Referral ID", fmt.heading)        # XlsxWriter as usual
    ws.add_row(1, ("HAV-0001", "Amy Smith", date(2026, 12, 7)), fmt, blanks=True)

`tests/test_speed_paths.py` checks a workbook written this way reads back (values, formats, comments) the
same as one written cell by cell.
"""

from __future__ import annotations

from datetime import date, datetime
from math import isfinite
from typing import NamedTuple
from xml.sax.saxutils import escape

from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

try:
    from xlsxwriter.worksheet import _utf16_len, _utf16_truncate
except ImportError:  # older XlsxWriter counted characters
    def _utf16_len(text: str) -> int:
        return len(text)

    def _utf16_truncate(text: str, limit: int) -> str:
        return text[:limit]

from pipeline.write.workbooks import RISKY_START, Formats

_COLUMNS = [xl_col_to_name(c) for c in range(16384)]


class Link(NamedTuple):
    """A cell that links elsewhere (`#'Sheet'!B7` for a cell of this workbook), shown as `text`. Written as
    a HYPERLINK formula of our own making, never from input: XlsxWriter's hyperlinks stop at Excel's 65,530
    a sheet, and a report can have more issues than that."""

    target: str
    text: str

    def xml(self, ref: str, xf: int) -> str:
        target, text = (part.replace('"', '""') for part in (self.target, self.text))
        formula = escape(f'HYPERLINK("{target}","{text}")')
        return f'<c r="{ref}" s="{xf}" t="str"><f>{formula}</f><v>{escape(self.text)}</v></c>'


class RowsWorksheet(Worksheet):
    """An XlsxWriter worksheet that also takes whole rows (`add_row`)."""

    def __init__(self):
        super().__init__()
        self._rows_xml: list[str] = []
        self._first_added: int | None = None
        self._last_added = -1
        self._xf: dict[int, int] = {}  # id(format) -> xf index
        self._serials: dict = {}  # date -> Excel serial number

    def _xf_index(self, fmt) -> int:
        xf = self._xf.get(id(fmt))
        if xf is None:
            xf = self._xf[id(fmt)] = fmt._get_xf_index()
        return xf

    def _serial(self, value) -> str:
        serial = self._serials.get(value)
        if serial is None:
            when = value if value.__class__ is datetime else datetime(value.year, value.month, value.day)
            serial = self._serials[value] = f"{self._convert_date_time(when):.16G}"
        return serial

    def add_row(self, row: int, values, formats: Formats, *, blanks: bool = False, props: dict | None = None,  # long: the hot loop of every big sheet, kept whole so no call is paid per cell
                extra: tuple = (), height: float | None = None) -> None:
        """Write `values` into row `row` (0-based) from column A, each as `write_value(ws, row, col, value,
        formats, **props[col])` would. A None is a formatted blank cell when `blanks` or when the column has
        `props`, and no cell otherwise. `extra` is (column, text, format) cells written as `write_string`.
        `height` (points) sets the row's height, as `set_row` would: for wrapped text, since not every
        spreadsheet program fits the row to it when opening the file."""
        if self._first_added is None:
            if self.constant_memory:
                raise ValueError("add_row needs a workbook without constant_memory")
            if any(self.table[r] for r in list(self.table) if r >= row):
                raise ValueError(f"row {row} is not after the rows already written cell by cell")
        if row <= self._last_added or row >= self.xls_rowmax:
            raise ValueError(f"row {row} is not after the rows already added")
        strings = self.str_table
        table = strings.string_table
        serials = self._serials
        number = row + 1
        base_xfs = self._xf.get(("base", id(formats)))
        if base_xfs is None:
            base_xfs = self._xf[("base", id(formats))] = (
                self._xf_index(formats.text), self._xf_index(formats.quoted), self._xf_index(formats.date))
        text_xf, quoted_xf, date_xf = base_xfs
        parts = [f'<row r="{number}">' if height is None else f'<row r="{number}" ht="{height:g}" customHeight="1">']
        append = parts.append
        used = []  # columns written
        added = 0  # strings looked up
        for col, value in enumerate(values):
            kind = value.__class__
            if kind is Link:
                xf = self._xf_index(formats.derived("text", **props[col])) if props and col in props else text_xf
                append(value.xml(f"{_COLUMNS[col]}{number}", xf))
                used.append(col)
                continue
            if (kind is datetime or kind is date) and not props:  # dates, whole numbers: the next most common
                append(f'<c r="{_COLUMNS[col]}{number}" s="{date_xf}"><v>{serials.get(value) or self._serial(value)}</v></c>')
                used.append(col)
                continue
            if kind is int and not props:
                append(f'<c r="{_COLUMNS[col]}{number}" s="{text_xf}"><v>{value:.16G}</v></c>')
                used.append(col)
                continue
            if props and col in props:
                base = ("date" if isinstance(value, (date, datetime)) else
                        "quoted" if kind is str and value.startswith(RISKY_START) else "text")
                xf = self._xf_index(formats.derived(base, **props[col]))
            elif kind is str:  # most cells: the fast way
                index = table.get(value)
                if index is None:
                    if len(value) > self.xls_strmax // 2:
                        append(self._cell(col, number, value, quoted_xf if value.startswith(RISKY_START) else text_xf))
                        used.append(col)
                        continue
                    index = table[value] = strings.unique_count
                    strings.unique_count += 1
                added += 1
                append(f'<c r="{_COLUMNS[col]}{number}" s="{quoted_xf if value.startswith(RISKY_START) else text_xf}" '
                       f't="s"><v>{index}</v></c>')
                used.append(col)
                continue
            elif value is None:
                if not blanks:
                    continue
                xf = text_xf
            elif kind is datetime or kind is date or isinstance(value, (date, datetime)):
                xf = date_xf
            elif isinstance(value, str):
                xf = quoted_xf if value.startswith(RISKY_START) else text_xf
            else:
                xf = text_xf
            append(self._cell(col, number, value, xf))
            used.append(col)
        strings.count += added
        for col, text, fmt in extra:
            append(self._cell(col, number, str(text), self._xf_index(fmt)))
            used.append(col)
        if not used:
            return  # nothing to write, as cell-by-cell writing would write nothing
        parts.append("</row>")
        self._rows_xml.append("".join(parts))
        self._check_dimensions(row, min(used))
        self._check_dimensions(row, max(used))
        if self._first_added is None:
            self._first_added = row
        self._last_added = row

    def _cell(self, col: int, number: int, value, xf: int) -> str:
        """One cell's XML, as XlsxWriter writes it for write_value's call."""
        ref = f"{_COLUMNS[col]}{number}"
        kind = value.__class__
        if value is None:
            return f'<c r="{ref}" s="{xf}"/>'
        if kind is bool:
            return f'<c r="{ref}" s="{xf}" t="b"><v>{int(value)}</v></c>'
        if isinstance(value, (int, float)):
            if kind is not int and not isfinite(value):
                raise TypeError("NAN/INF not supported in write_number() without 'nan_inf_to_errors' Workbook() option")
            return f'<c r="{ref}" s="{xf}"><v>{value:.16G}</v></c>'
        if isinstance(value, (date, datetime)):
            return f'<c r="{ref}" s="{xf}"><v>{self._serial(value)}</v></c>'
        text = value if kind is str else str(value)
        if len(text) > self.xls_strmax // 2 and _utf16_len(text) > self.xls_strmax:
            text = _utf16_truncate(text, self.xls_strmax)  # as XlsxWriter does
        return f'<c r="{ref}" s="{xf}" t="s"><v>{self.str_table._get_shared_string_index(text)}</v></c>'

    def _write_rows(self) -> None:
        if self._first_added is None:
            super()._write_rows()
            return
        # XlsxWriter writes its own rows (all before the added ones); a comment in an added row is in a cell
        # the added row writes, so the row needs no empty <row> of XlsxWriter's
        if any(self.table[r] for r in list(self.table) if r >= self._first_added):
            raise ValueError("cells were written cell by cell into rows added by add_row")
        last = self.dim_rowmax
        self.dim_rowmax = self._first_added - 1
        try:
            if self.dim_rowmin <= self.dim_rowmax:
                super()._write_rows()
        finally:
            self.dim_rowmax = last
        write = self.fh.write
        for xml in self._rows_xml:
            write(xml)
