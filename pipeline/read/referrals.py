"""Reading a referral spreadsheet: find the sheet and its heading row, map headings to schema fields, and
keep every value with the file's own cell reference (`read_referrals` -> `Sheet` of `InputRow`s).

Nothing here judges a value; it only finds it. A file that cannot be read at all raises `InputError` with one
sentence naming the file and the reason (the CLI's exit code 2).

Input is untrusted (anyone who can write to the inbox can hand us a file), so reading is bounded in time and
memory whatever the file holds (docs/limits.md; the bounds are in `pipeline.read.limits`): the kind of file is
told from its content (`sniff`), an .xlsx is read by our own streaming reader (`xlsx`), .xls, .xlsb and .ods by
calamine in a bounded child process (`calamine`), and CSV as a stream (`delimited`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import CALENDAR_MAC_1904

from pipeline.core.errors import WARNING, InputError, Issue
from pipeline.read.calamine import calamine_sheets
from pipeline.read.damage import told_as_damaged
from pipeline.read.delimited import csv_encoding, csv_rows
from pipeline.read.headings import (HEADING_SEARCH_ROWS, HeadingFinder, HeadingRow, SheetRows, missing_headings,
                                    refuse_repeated_headings)
from pipeline.read.limits import MAX_DATA_ROWS
from pipeline.read.notes import SheetNotes, notes_issues
from pipeline.read.sniff import sniff
from pipeline.read.xlsx import xlsx_sheets
from schemas.parsers import normalise_heading
from schemas.referral import SCHEMA

SHEET_NAME = "Referrals"  # the sheet read when a workbook has one (else the first with a heading row)
DAYS_1900_TO_1904 = 1462  # Excel's 1904 day 0 is its 1900 day 1462
_EXPECTED = "(expected headings such as Referral ID, UPN, Legal surname)"


def _heading_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for name, fld in SCHEMA.fields.items():
        for spelling in (fld.data_key, name, *fld.metadata["aliases"]):
            key = normalise_heading(spelling)
            if lookup.setdefault(key, name) != name:
                raise AssertionError(f"heading spelling {spelling!r} maps to two fields")
    return lookup


HEADING_LOOKUP = _heading_lookup()  # normalised spelling -> referral field, for every heading and alias
REFERRAL_HEADINGS = HeadingFinder(HEADING_LOOKUP)


@dataclass(frozen=True)
class Column:
    field: str  # schema field name
    index: int  # 0-based column index in the sheet
    heading: str  # the file's own heading text

    @property
    def letter(self) -> str:
        return get_column_letter(self.index + 1)


@dataclass
class InputRow:
    number: int  # the spreadsheet's own row number
    values: dict  # schema heading (data_key) -> raw cell value; blank cells left out
    cells: tuple  # the whole row as read, for the validation report


@dataclass
class Sheet:
    path: Path
    name: str
    heading_row: int
    columns: dict[str, Column]  # schema field -> column
    rows: list[InputRow]
    title_rows: list[tuple[int, tuple]] = field(default_factory=list)  # (row number, cells) above the headings
    headings: tuple = ()
    file_issues: list[Issue] = field(default_factory=list)

    def cell(self, field_name: str, row_number: int) -> str | None:
        column = self.columns.get(field_name)
        return f"{column.letter}{row_number}" if column else None


def _clean(value):
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _is_blank(cells) -> bool:
    for v in cells:
        if v is not None and not (isinstance(v, str) and not v.strip()):
            return False
    return True


def read_referrals(path: str | Path) -> Sheet:
    """Read the referral sheet of a workbook or CSV file."""
    path = Path(path)
    kind = sniff(path)
    notes: dict[str, SheetNotes] = {}
    sheets, workbook, file_issues = _open_sheets(path, kind, notes)
    try:
        with told_as_damaged(path, too_big="the file is too large or too deeply nested to read; it is not a normal "
                                           "referral workbook"):
            return _read_sheet(path, sheets, file_issues, notes, is_csv=kind == "csv",
                               date1904=getattr(workbook, "epoch", None) == CALENDAR_MAC_1904)
    finally:
        for _, rows in sheets:
            close = getattr(rows, "close", None)
            if close:
                close()
        if workbook is not None:
            workbook.close()


def _open_sheets(path: Path, kind: str, notes: dict[str, SheetNotes]):
    """(sheets as [(name, rows)], the open .xlsx workbook or None, the file's issues so far) by the file's kind."""
    if kind == "csv":
        encoding, file_issues = csv_encoding(path)
        return [(path.stem, csv_rows(path, encoding))], None, file_issues
    if kind == "xlsx":
        sheets, workbook = xlsx_sheets(path, notes)
        return sheets, workbook, []
    # .xls, .xlsb, .ods: read by python-calamine, then judged exactly as an .xlsx
    sheets, workbook = calamine_sheets(path)
    return sheets, workbook, []


def _read_sheet(path: Path, sheets, file_issues: list[Issue], notes: dict[str, SheetNotes], *, is_csv: bool,
                date1904: bool = False) -> Sheet:
    """The chosen sheet's headings checked, then its rows read: the steps of `read_referrals` once open."""
    sheet_name, rows, heading = _choose_sheet(path, sheets, is_csv)
    sheet_label = "the file" if is_csv else f"sheet '{sheet_name}'"
    refuse_repeated_headings(path, heading, sheet_label, lambda name: SCHEMA.fields[name].data_key)
    columns = {name: Column(name, places[0][0], places[0][1]) for name, places in heading.found.items()}
    file_issues.extend(_unknown_heading_issues(heading, columns))
    file_issues.extend(_missing_column_issues(heading))
    title_rows = [(n, c) for n, c in rows.head(heading.number - 1) if not _is_blank(c)]
    data_rows = _data_rows(path, rows, heading.number, columns, sheet_label, date1904)
    file_issues.extend(notes_issues(notes.get(sheet_name, SheetNotes()), heading.number, sheet_label))
    if not data_rows:
        file_issues.append(Issue(WARNING, "schema", f"{sheet_label} has a heading row (row {heading.number}) but no referral rows below it"))
    return Sheet(path, sheet_name, heading.number, columns, data_rows, title_rows, heading.cells, file_issues)


def _choose_sheet(path: Path, sheets, is_csv: bool) -> tuple[str, SheetRows, HeadingRow]:
    """The Referrals sheet if there is one, else the first sheet with a heading row; InputError if none."""
    chosen = REFERRAL_HEADINGS.choose_sheet([(name, SheetRows(rows)) for name, rows in sheets], SHEET_NAME)
    if chosen is None:
        what = "the file has no heading row" if is_csv else "no sheet has a heading row"
        raise InputError(path, f"{what} we recognise in its first {HEADING_SEARCH_ROWS} rows {_EXPECTED}")
    if chosen.heading is None:
        raise InputError(path, f"sheet '{chosen.name}' has no heading row we recognise in its first {HEADING_SEARCH_ROWS} rows {_EXPECTED}")
    return chosen.name, chosen.rows, chosen.heading


def _unknown_heading_issues(heading: HeadingRow, columns: dict[str, Column]) -> list[Issue]:
    """A warning for each heading cell that names no referral field: its column is not read."""
    issues = []
    known = {c.index for c in columns.values()}
    for index, value in enumerate(heading.cells):
        if index not in known and value is not None and str(value).strip():
            text = str(value).strip()
            shown = text if len(text) <= 60 else text[:57] + "..."
            issues.append(Issue(WARNING, "schema", f"column '{shown}' is not a referral heading we know, so it was ignored",
                                column=shown, cell=f"{get_column_letter(index + 1)}{heading.number}"))
    return issues


def _missing_column_issues(heading: HeadingRow) -> list[Issue]:
    """An error for each required column the sheet lacks (every row then lacks its value)."""
    required = [name for name, fld in SCHEMA.fields.items() if fld.required]
    return [Issue("error", "schema", f"there is no '{SCHEMA.fields[name].data_key}' column, so every row lacks it; add the column (see `reintegrate template`)",
                  column=SCHEMA.fields[name].data_key)
            for name in missing_headings(heading, required)]


def _data_rows(path: Path, rows: SheetRows, heading_number: int, columns: dict[str, Column], sheet_label: str,
               date1904: bool) -> list[InputRow]:
    """The non-blank rows below the heading row, each value under its schema heading; InputError past
    MAX_DATA_ROWS."""
    by_key = [(column.index, SCHEMA.fields[fld_name].data_key) for fld_name, column in columns.items()]
    # a plain number in a date column of a Mac (1904) workbook counts its days from 1904: shift it to the
    # 1900 system the date parser reads (date-formatted cells are already converted by the reader)
    shift_1904 = {column.index for fld_name, column in columns.items()
                  if date1904 and SCHEMA.fields[fld_name].metadata["kind"] == "date"}
    data_rows: list[InputRow] = []
    for number, cells in rows.after(heading_number):
        if _is_blank(cells):
            continue
        if len(data_rows) >= MAX_DATA_ROWS:
            raise InputError(path, f"{sheet_label} has more than {MAX_DATA_ROWS:,} referral rows; split it into smaller files")
        data_rows.append(InputRow(number, _row_values(cells, by_key, shift_1904), cells))
    return data_rows


def _row_values(cells: tuple, by_key: list[tuple[int, str]], shift_1904: set[int]) -> dict:
    """schema heading -> the cell's value, blanks left out (and 1904 day numbers moved to 1900's)."""
    values = {}
    for index, key in by_key:
        if index < len(cells):
            value = _clean(cells[index])
            if value is not None:
                if index in shift_1904 and isinstance(value, (int, float)) and not isinstance(value, bool):
                    value = value + DAYS_1900_TO_1904
                values[key] = value
    return values
