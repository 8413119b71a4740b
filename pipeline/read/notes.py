"""What reading a worksheet noticed besides its values (formulas with no saved result, cells beyond the last
column read, merged cells), and the file-level warnings they become for the sheet that was chosen."""

from __future__ import annotations

from dataclasses import dataclass, field

from openpyxl.utils import get_column_letter

from pipeline.core.errors import WARNING, Issue
from pipeline.read.limits import MAX_COLUMNS

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass
class SheetNotes:
    """What reading a worksheet noticed besides values (turned into file-level warnings)."""

    formulas_without_value: list[str] = field(default_factory=list)
    beyond_last_column: str | None = None
    merged: list[str] = field(default_factory=list)


def notes_issues(notes: SheetNotes, heading_number: int, sheet_label: str) -> list[Issue]:
    """The warnings for one sheet's notes; merged cells only count below the heading row."""
    issues = []
    if notes.formulas_without_value:
        issues.append(_formulas_issue(notes.formulas_without_value, sheet_label))
    if notes.beyond_last_column:
        issues.append(Issue(WARNING, "schema", f"{sheet_label}: cells beyond column {get_column_letter(MAX_COLUMNS)} (the first at "
                                               f"{notes.beyond_last_column}) were ignored; keep referrals in the first "
                                               f"{MAX_COLUMNS} columns", cell=notes.beyond_last_column))
    data_merges = _merges_below(notes.merged, heading_number)
    if data_merges:
        listed = _listed(data_merges)
        issues.append(Issue(WARNING, "schema", f"{sheet_label}: cells {listed} are merged; only the first cell of a merged area "
                                               "holds its value, so the others were read as blank; unmerge them and fill in "
                                               "every row", cell=data_merges[0].partition(":")[0]))
    return issues


def _formulas_issue(cells: list[str], sheet_label: str) -> Issue:
    listed = _listed(cells)
    what = f"cells {listed} hold formulas" if len(cells) > 1 else f"cell {listed} holds a formula"
    return Issue(WARNING, "schema", f"{sheet_label}: {what} with no saved result (the file was not last saved by "
                                    "Excel), so it was read as blank; open the file in Excel, save it and try again",
                 cell=cells[0])


def _listed(cells: list[str]) -> str:
    """The first ten cells named, and how many more there are."""
    return ", ".join(cells[:10]) + (f" and {len(cells) - 10:,} more" if len(cells) > 10 else "")


def _merges_below(merged: list[str], heading_number: int) -> list[str]:
    """The merged ranges ('A5:C5') whose last row is below the heading row."""
    below = []
    for ref in merged:
        first, _, last = ref.partition(":")
        try:
            last_row = int((last or first).lstrip(_LETTERS))
        except ValueError:
            continue
        if last_row > heading_number:
            below.append(ref)
    return below
