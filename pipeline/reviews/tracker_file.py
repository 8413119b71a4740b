"""Reading a filled-in review tracker back: the sheet with the tracker's headings (wherever an officer moved
them), each row checked by `schemas.tracker`, every issue located by sheet, cell and heading.

    from pipeline.reviews.tracker_file import read_tracker

    tracker = read_tracker("outbox/<run id>/review-tracker.xlsx")   # tracker.run_id, tracker.rows, tracker.issues
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from marshmallow import ValidationError
from openpyxl.utils import get_column_letter

from pipeline.core.errors import ERROR, WARNING, InputError, Issue
from pipeline.read.headings import HeadingFinder, SheetRows, is_filled, missing_headings, refuse_repeated_headings
from pipeline.reviews.errors import TrackerMismatchError
from pipeline.write.tracker import RUN_ID_PROPERTY
from pipeline.write.tracker import SHEET as SHEET_NAME
from schemas import tracker as schema
from schemas.parsers import normalise_heading

__all__ = ["Tracker", "TrackerRow", "read_tracker"]

MAX_ROWS = 200_000
# the referral reader's finder, with any filled cell a candidate heading (a tracker's are short)
_FINDER = HeadingFinder(schema.heading_lookup(), may_be_heading=is_filled)
HEADING_SEARCH_ROWS = _FINDER.search_rows
_INFORMATION = {normalise_heading(h): h for h in schema.INFORMATION_HEADINGS}


@dataclass
class TrackerRow:
    """One row an officer filled in, as read and checked by `schemas.tracker`."""

    number: int  # the spreadsheet's own row number
    values: dict  # field name -> parsed value (valid values only)
    raw: dict  # field name -> the cell's value as typed
    cells: dict  # field name -> cell reference (e.g. "G5")
    pupil: object = None  # the Pupil cell, for the wrong-pupil check
    pupil_cell: str | None = None
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(i.is_error for i in self.issues)


@dataclass
class Tracker:
    path: Path
    sheet: str
    heading_row: int
    run_id: str | None  # the workbook's custom property `reintegrate_run_id`
    columns: dict[str, int]  # field name -> 0-based column index
    rows: list[TrackerRow]
    issues: list[Issue] = field(default_factory=list)  # about the whole file (unknown columns)

    def issue(self, row: TrackerRow, severity: str, rule: str, name: str, text: str) -> Issue:
        """An issue located the way the core pipeline locates one: sheet, cell, heading, value."""
        heading = schema.HEADINGS.get(name, name)
        cell = row.cells.get(name) if name in schema.HEADINGS else row.pupil_cell
        raw = row.raw.get(name) if name in schema.HEADINGS else row.pupil
        where = (f"sheet '{self.sheet}', cell {cell}, {heading}" if cell
                 else f"sheet '{self.sheet}', row {row.number}, no {heading} column")
        return Issue(severity, rule, f"{text} ({where})", column=heading, cell=cell, row=row.number,
                     value=_display(raw))


def _display(raw) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, datetime):
        raw = raw.date() if raw.time() == datetime.min.time() else raw
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw.strftime("%d/%m/%Y")
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


def _clean(value):
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _check_file(path: Path) -> None:
    from pipeline.read.sniff import sniff

    if not path.is_file():
        folder = "the current folder" if str(path.parent) == "." else f"the folder {path.parent}"
        raise InputError(path, f"there is no such file in {folder}" if not path.exists()
                         else "this is a folder, not a review tracker")
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        raise InputError(path, "this is not the review tracker workbook: give the review-tracker.xlsx that "
                               "`reintegrate run` wrote (saved as .xlsx, so it keeps its run id)")
    sniff(path)  # damaged, password-protected, not really a workbook: InputError


def read_tracker(path: str | Path) -> Tracker:
    """Read and check a review tracker as an officer left it: rows sorted, filtered, deleted or added, extra
    columns, statuses typed in any case. Raises `InputError` when it cannot be read at all (no workbook, no
    sheet with the tracker's headings, a heading missing). Read by the referral reader's workbook reader
    (`pipeline.read.xlsx`), with its bounds and refusals: a zip bomb, a DOCTYPE, a malformed sheet are one
    sentence, never more."""
    from pipeline.read import xlsx
    from pipeline.read.damage import told_as_damaged

    path = Path(path)
    _check_file(path)
    sheets, wb = xlsx.workbook_sheets(path)
    try:
        with told_as_damaged(path):
            run_id = xlsx.custom_property(wb, RUN_ID_PROPERTY)
            return _read_sheet(path, [(name, SheetRows(rows)) for name, rows in sheets], run_id)
    finally:
        for _, rows in sheets:
            rows.close()
        wb.close()


def _choose_sheet(path: Path, sheets):
    """(name, rows, heading row): the `Reviews` sheet, else the first sheet whose heading row is recognised."""
    chosen = _FINDER.choose_sheet(sheets, SHEET_NAME)
    if chosen is None:
        raise InputError(path, f"no sheet has the review tracker's headings (Referral ID, Review, Date, Status) in "
                               f"its first {HEADING_SEARCH_ROWS} rows; use the review-tracker.xlsx that "
                               "`reintegrate run` wrote")
    if chosen.heading is None:
        raise InputError(path, f"sheet '{chosen.name}' has no heading row we recognise in its first "
                               f"{HEADING_SEARCH_ROWS} rows (expected Referral ID, Review, Date, Status)")
    return chosen.name, chosen.rows, chosen.heading


def _read_sheet(path: Path, sheets, run_id: str | None) -> Tracker:
    sheet, rows, heading = _choose_sheet(path, sheets)
    heading_number, heading_cells = heading.number, heading.cells
    columns = _columns(path, sheet, heading)
    pupil_index = _pupil_column(path, sheet, heading_cells)
    file_issues = _unknown_columns(sheet, heading_number, heading_cells, set(columns.values()))
    tracker = Tracker(path, sheet, heading_number, run_id, columns, [], file_issues)
    by_key = [(name, index, schema.HEADINGS[name]) for name, index in columns.items()]
    for number, cells in rows.after(heading_number):
        values, raw = {}, {}
        for name, index, key in by_key:
            value = _clean(cells[index]) if index < len(cells) else None
            raw[name] = value
            if value is not None:
                values[key] = value
        if not values:
            continue  # a blank row, or one with only the Pupil / school / key worker cells left
        if len(tracker.rows) >= MAX_ROWS:
            raise InputError(path, f"sheet '{sheet}' has more than {MAX_ROWS:,} review rows; this is not a review tracker")
        tracker.rows.append(_checked_row(tracker, number, cells, values, raw, pupil_index))
    return tracker


def _columns(path: Path, sheet: str, heading) -> dict[str, int]:
    """{field: column index}; a heading twice, or a required one missing, is an `InputError`."""
    refuse_repeated_headings(path, heading, f"sheet '{sheet}'", schema.HEADINGS.__getitem__)
    missing = missing_headings(heading, schema.REQUIRED_COLUMNS)
    if missing:
        raise InputError(path, f"sheet '{sheet}' has no '{schema.HEADINGS[missing[0]]}' column (headings are in row "
                               f"{heading.number}); put the column back as `reintegrate run` wrote it")
    return heading.first_columns()


def _pupil_column(path: Path, sheet: str, heading_cells) -> int:
    pupil_index = next((i for i, v in enumerate(heading_cells)
                        if v is not None and normalise_heading(v) == normalise_heading("Pupil")), None)
    if pupil_index is None:  # without it no row can be checked against the run's pupils
        raise TrackerMismatchError(path, f"sheet '{sheet}' has no 'Pupil' column, so its rows cannot be checked "
                                         "against the run's pupils and none was applied; put the column back as "
                                         "`reintegrate run` wrote it")
    return pupil_index


def _unknown_columns(sheet: str, heading_number: int, heading_cells, known: set[int]) -> list[Issue]:
    """A warning for each heading that is neither a tracker field nor one of its information columns."""
    file_issues = []
    for index, value in enumerate(heading_cells):
        if index in known or value is None or not str(value).strip() or normalise_heading(value) in _INFORMATION:
            continue
        text = str(value).strip()
        file_issues.append(Issue(WARNING, "schema", f"column '{text}' is not a tracker heading, so it was ignored and "
                                                    "what it holds does not go into the plans; write notes in Outcome "
                                                    f"or Next steps (sheet '{sheet}', cell "
                                                    f"{get_column_letter(index + 1)}{heading_number})",
                                 column=text, cell=f"{get_column_letter(index + 1)}{heading_number}",
                                 row=heading_number, value=text))
    return file_issues


def _checked_row(tracker: Tracker, number: int, cells, values: dict, raw: dict, pupil_index: int | None) -> TrackerRow:
    """One row's cells checked by the tracker schema: its valid values, and an error for each invalid one."""
    row = TrackerRow(number, {}, raw, {name: f"{get_column_letter(index + 1)}{number}"
                                       for name, index in tracker.columns.items()})
    if pupil_index is not None and pupil_index < len(cells):
        row.pupil = _clean(cells[pupil_index])
        row.pupil_cell = f"{get_column_letter(pupil_index + 1)}{number}"
    try:
        row.values = schema.SCHEMA.load(values)
    except ValidationError as err:
        row.values = err.valid_data or {}
        for heading, errors in err.messages.items():
            name = schema.FIELD_BY_HEADING.get(heading, heading)
            for text in errors if isinstance(errors, list) else [str(errors)]:
                row.issues.append(tracker.issue(row, ERROR, "schema", name, text))
    return row
