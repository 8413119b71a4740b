"""The validation report (`validation-report.xlsx`) and `summary.json` of a run (docs/design.md, "Outputs")."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

from pipeline.core.errors import ERROR, WARNING
from pipeline.core.files import atomic_path
from pipeline.read.referrals import Sheet
from pipeline.check.rules import RowResult
from pipeline.write.workbooks import Formats, kind_of, new_workbook, print_setup, write_value
from pipeline.write.xlsx_rows import Link, RowsWorksheet

MAX_ISSUE_LINES = 50_000  # an officer reads a few hundred; a file with more is mostly wrong, and summary.json has all
MAX_COMMENTS = 5_000  # cell comments are heavy to write (each its own shape): past this, cells are only filled
ERROR_FILL = "#FFC7CE"
WARNING_FILL = "#FFEB9C"
ISSUE_HEADINGS = ("Referral ID", "Row", "Cell", "Heading", "Value", "Rule", "Severity", "Message")
ISSUE_WIDTHS = (14, 6, 8, 22, 22, 9, 9, 90)  # the Message column wraps: readable and printable without resizing


def summary(*, input_name: str, sha256: str, run_id: str, as_of, sheet: Sheet, results: list[RowResult],
            documents: dict[int, tuple[str | None, str | None]] | None = None) -> dict:
    """summary.json (docs/design.md, "Outputs"); `documents` maps a row number to its (plan, letter) paths in the run folder."""
    documents = documents or {}
    referrals = []
    for r in results:
        plan, letter = documents.get(r.number, (None, None))
        referrals.append({
            "referral_id": r.referral_id, "row": r.number, "status": "accepted" if r.accepted else "rejected",
            "plan": plan, "letter": letter,
            "issues": [{"severity": i.severity, "rule": i.rule, "column": i.column, "cell": i.cell, "message": i.message}
                       for i in r.issues],
        })
    return {
        "input": input_name, "sha256": sha256, "run_id": run_id, "as_of": as_of.isoformat(),
        "rows": len(results),
        "accepted": sum(r.accepted for r in results),
        "rejected": sum(not r.accepted for r in results),
        "warnings": sum(i.severity == WARNING for r in results for i in r.issues),
        "file_issues": [{"severity": i.severity, "rule": i.rule, "column": i.column, "message": i.message}
                        for i in sheet.file_issues],
        "referrals": referrals,
    }


def write_summary(path: Path, data: dict) -> None:
    write_json_by_line(path, data)


def write_json_by_line(path: Path, data: dict, listed: tuple[str, ...] = ("referrals", "file_issues")) -> None:
    """A JSON object with each item of its `listed` lists on a line of its own: readable, and written by
    json's fast encoder (indent=2 uses its slow one: a second at 10,000 referrals), a line at a time, so a
    summary of hundreds of thousands of issues is never held as one string."""
    def dump(value) -> str:
        return json.dumps(value, ensure_ascii=False, default=str)

    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        fh.write("{\n")
        for n, (key, value) in enumerate(data.items()):
            fh.write(("" if n == 0 else ",\n") + f"  {dump(key)}: ")
            if key in listed and isinstance(value, list) and value:
                fh.write("[\n")
                for i, item in enumerate(value):
                    fh.write(("" if i == 0 else ",\n") + f"    {dump(item)}")
                fh.write("\n  ]")
            else:
                fh.write(dump(value))
        fh.write("\n}\n")


_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def report_sheet_name(name: str | None) -> str:
    """The input sheet's name as Excel allows it (no []:*?/\\, no apostrophe at either end, 31 characters),
    never clashing with the report's own Issues sheet."""
    name = _SHEET_NAME_FORBIDDEN.sub("-", name or "").strip().strip("'").strip()[:31].strip("'") or "Referrals"
    return "Referrals (input)" if name.casefold() == "issues" else name


def comment_text(issue) -> str:
    """A cell comment: `Error: 3.1: ...`, the rule said once (messages that cite their clause start with it)."""
    lead = issue.severity.capitalize()
    if issue.message.startswith(f"{issue.rule}:"):
        return f"{lead}: {issue.message}"
    return f"{lead} ({issue.rule}): {issue.message}"


def write_validation_report(path: Path, sheet: Sheet, results: list[RowResult]) -> None:
    """An Issues sheet first (the one it opens on): one line per issue, its cell a link to the highlighted cell;
    then the input rows where they stood, faulty cells filled and commented."""
    with atomic_path(path) as tmp:
        wb = new_workbook(tmp)
        fmt = Formats(wb)
        issues_ws = wb.add_worksheet("Issues", worksheet_class=RowsWorksheet)
        copy_name = report_sheet_name(sheet.name)
        ws = wb.add_worksheet(copy_name, worksheet_class=RowsWorksheet)
        issues_ws.activate()
        _write_issues(issues_ws, sheet, results, fmt, copy_name)
        _write_rows_copy(ws, sheet, results, fmt)
        wb.close()


def _write_rows_copy(ws: RowsWorksheet, sheet: Sheet, results: list[RowResult], fmt: Formats) -> None:
    for number, cells in sheet.title_rows:
        for col, value in enumerate(cells):
            if value is not None:
                write_value(ws, number - 1, col, value, fmt)
    # the status column goes after everything the sheet holds, notes typed right of the table included
    width = max(len(sheet.headings), *(len(r.cells) for r in sheet.rows), *(len(c) for _, c in sheet.title_rows), 1)
    quoted_heading = fmt.derived("text", bold=True, bg_color="#1F4E79", font_color="#FFFFFF", text_wrap=True,
                                 border=1, quote_prefix=True)
    for col, value in enumerate(sheet.headings):
        if value is not None:
            text = str(value)
            ws.write_string(sheet.heading_row - 1, col, text,
                            quoted_heading if kind_of(text) == "quoted" else fmt.heading)
    status_col = width
    ws.write_string(sheet.heading_row - 1, status_col, "Status (reintegrate)", fmt.heading)
    ws.freeze_panes(sheet.heading_row, 1)

    by_row = {r.number: r for r in results}
    letters_to_index = {c.letter: c.index for c in sheet.columns.values()}
    accepted_fmt = fmt.derived("text", bold=True, font_color="#006100")
    rejected_fmt = fmt.derived("text", bold=True, font_color="#9C0006")
    fills = {ERROR: {"bg_color": ERROR_FILL}, WARNING: {"bg_color": WARNING_FILL}}
    comments = 0
    for input_row in sheet.rows:  # whole rows at once (RowsWorksheet): a cell each as write_value writes it
        result = by_row.get(input_row.number)
        marks: dict[int, list] = {}
        for issue in result.issues if result else ():
            if issue.cell:
                index = letters_to_index.get(issue.cell.rstrip("0123456789"))
                if index is not None:
                    marks.setdefault(index, []).append(issue)
        props = {}
        for col, found in sorted(marks.items()):
            props[col] = fills[ERROR if any(i.is_error for i in found) else WARNING]
            if comments < MAX_COMMENTS:
                comments += 1
                ws.write_comment(input_row.number - 1, col, "\n".join(comment_text(i) for i in found),
                                 {"x_scale": 3, "y_scale": 2, "author": "reintegrate"})
        cells = input_row.cells
        if marks and max(marks) >= len(cells):  # a faulty blank cell after the row's last value
            cells = (*cells, *(None,) * (max(marks) + 1 - len(cells)))
        extra = ((status_col, "Accepted" if result.accepted else "Rejected",
                  accepted_fmt if result.accepted else rejected_fmt),) if result else ()
        ws.add_row(input_row.number - 1, cells, fmt, props=props, extra=extra)
    for col in range(width + 1):
        ws.set_column(col, col, 18)
    # printed: landscape A4, the headings and the Referral ID column on every page, two pages across
    print_setup(ws, pages_wide=2)
    ws.repeat_rows(sheet.heading_row - 1)
    ws.repeat_columns(0)


LINE_POINTS = 15  # a line of 11-point text
MESSAGE_LINE = ISSUE_WIDTHS[-1] - 12  # characters a line of the Message column holds, with room for a wider font


def _wrapped_height(message: str) -> float:
    """The row height that shows the whole wrapped message (Excel and LibreOffice keep a set height)."""
    lines = max(1, -(-len(message) // MESSAGE_LINE))
    return LINE_POINTS * min(lines, 20)


def _write_issues(ws: RowsWorksheet, sheet: Sheet, results: list[RowResult], fmt: Formats, copy_name: str) -> None:
    for col, heading in enumerate(ISSUE_HEADINGS):
        ws.write_string(0, col, heading, fmt.heading)
    centred = {"align": "center"}
    target = "#'" + copy_name.replace("'", "''") + "'!"  # a link into the copy of the input rows
    props = {1: centred, 2: {**centred, "font_color": "#0563C1", "underline": 1}, 7: {"text_wrap": True}}
    n = 0
    every = itertools.chain(((None, i) for i in sheet.file_issues), ((r.referral_id, i) for r in results for i in r.issues))
    for referral_id, issue in itertools.islice(every, MAX_ISSUE_LINES):
        n += 1
        link = Link(f"{target}{issue.cell}", issue.cell) if issue.cell else None
        ws.add_row(n, (referral_id, issue.row, link, issue.column, issue.value, issue.rule, issue.severity,
                       issue.message), fmt, blanks=True, props=props, height=_wrapped_height(issue.message))
    more = sum(1 for _ in every)
    if more:
        n += 1
        ws.add_row(n, (None, None, None, None, None, None, None,
                       f"... and {more:,} more issues, not listed here: every one is in summary.json, and each faulty "
                       "cell is filled in the referral sheet. A file with this many is usually the wrong file, or "
                       "its columns are out of place."), fmt, blanks=True, props=props, height=LINE_POINTS * 2)
    ws.freeze_panes(1, 0)
    print_setup(ws)
    ws.autofilter(0, 0, max(n, 1), len(ISSUE_HEADINGS) - 1)
    for col, w in enumerate(ISSUE_WIDTHS):
        ws.set_column(col, col, w)
