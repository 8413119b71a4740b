"""Finding a sheet's heading row and the sheet that has one, for any table whose headings map to schema
fields: the referral sheet (`pipeline.read.referrals`) and the review tracker alike.

A `HeadingFinder` holds what differs between tables: the lookup from a normalised heading to its field, the
normaliser, how many rows the heading row may sit below the top (title rows above it), how many known headings
make a row the heading row, and which cells may be headings at all. The heading row is the row in the search
rows that matches the most known headings (at least `min_headings`); on a tie the upper row wins. The sheet is
the one named `preferred` if there is one (and then only that sheet), else the first sheet with a heading row.

What a caller does with the result (the sentences of its refusals, whether a missing column is an error on
every row or a refusal of the file) stays with the caller; `refuse_repeated_headings` and `missing_headings`
are the checks both tables make."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from openpyxl.utils import get_column_letter

from pipeline.core.errors import InputError
from schemas.parsers import normalise_heading

HEADING_SEARCH_ROWS = 10  # the heading row may sit below title rows (docs/limits.md)
MIN_HEADINGS = 3  # a row matching fewer known headings is not a heading row
LONGEST_HEADING = 200  # characters: longer text in a cell is never compared with the headings


def is_heading_text(value) -> bool:
    """The referral reader's test of a cell that may be a heading: text of at most LONGEST_HEADING characters."""
    return isinstance(value, str) and len(value) <= LONGEST_HEADING


def is_filled(value) -> bool:
    """A looser test: any cell that holds something (a number's text is compared too)."""
    return value is not None


@dataclass(frozen=True)
class HeadingRow:
    """A sheet's heading row: its number, its cells as read, and the fields its headings name."""

    number: int  # the sheet's own row number
    cells: tuple  # the whole row as read
    found: dict[str, list[tuple[int, str]]]  # field -> [(0-based column, the file's heading text)], left to right

    def first_columns(self) -> dict[str, int]:
        """field -> its (first) column index."""
        return {name: places[0][0] for name, places in self.found.items()}


class SheetRows:
    """A sheet's (row number, cells) rows, read only as far as asked: the heading search reads the first rows
    of each sheet, and only the chosen sheet is read on (`after`), the rows already read included."""

    def __init__(self, rows: Iterable[tuple[int, tuple]]):
        self._rows = iter(rows)
        self._done = False
        self.seen: list[tuple[int, tuple]] = []

    def head(self, last_row: int) -> list[tuple[int, tuple]]:
        """The rows numbered up to `last_row` (reading one row past them, kept for `after`)."""
        while not self._done and (not self.seen or self.seen[-1][0] <= last_row):
            try:
                self.seen.append(next(self._rows))
            except StopIteration:
                self._done = True
        return [(n, c) for n, c in self.seen if n <= last_row]

    def after(self, row: int):
        """Every row numbered after `row`: those already read first, then the rest of the sheet."""
        yield from ((n, c) for n, c in self.seen if n > row)
        if not self._done:
            yield from self._rows

    def close(self) -> None:
        """Close the sheet's row stream (an .xlsx sheet's holds its part open)."""
        close = getattr(self._rows, "close", None)
        if close:
            close()


@dataclass
class ChosenSheet:
    """The sheet a table is read from, and its heading row: None when the sheet was chosen by its name but
    has no heading row in the search rows."""

    name: str
    rows: SheetRows
    heading: HeadingRow | None


@dataclass(frozen=True)
class HeadingFinder:
    """How one kind of table's headings are found (see the module's docstring)."""

    lookup: Mapping[str, str]  # normalised heading -> field name
    search_rows: int = HEADING_SEARCH_ROWS
    min_headings: int = MIN_HEADINGS
    normalise: Callable[[object], str] = normalise_heading
    may_be_heading: Callable[[object], bool] = is_heading_text

    def match(self, cells: Sequence) -> dict[str, list[tuple[int, str]]]:
        """field -> [(column index, heading text)] for each cell of a row that names a known heading."""
        found: dict[str, list[tuple[int, str]]] = {}
        for index, value in enumerate(cells):
            if not self.may_be_heading(value):
                continue
            name = self.lookup.get(self.normalise(value))
            if name:
                found.setdefault(name, []).append((index, str(value).strip()))
        return found

    def heading_row(self, first_rows: Iterable[tuple[int, tuple]]) -> HeadingRow | None:
        """The heading row among a sheet's first rows (those numbered up to `search_rows`), or None."""
        best = None
        for number, cells in first_rows:
            if number > self.search_rows:
                break  # rows come in order: the rest are below the search rows
            found = self.match(cells)
            if len(found) >= self.min_headings and (best is None or len(found) > len(best.found)):
                best = HeadingRow(number, tuple(cells), found)
        return best

    def choose_sheet(self, sheets: Iterable[tuple[str, SheetRows]], preferred: str) -> ChosenSheet | None:
        """The sheet named `preferred` (names compared without case or surrounding spaces), with its heading
        row or None; else the first sheet with a heading row; else None."""
        sheets = list(sheets)
        named = [sheet for sheet in sheets if sheet[0].strip().casefold() == preferred.casefold()]
        if named:
            name, rows = named[0]
            return ChosenSheet(name, rows, self.heading_row(rows.head(self.search_rows)))
        for name, rows in sheets:
            heading = self.heading_row(rows.head(self.search_rows))
            if heading:
                return ChosenSheet(name, rows, heading)
        return None


def refuse_repeated_headings(path: Path, heading: HeadingRow, sheet_label: str, heading_of: Callable[[str], str]) -> None:
    """InputError naming the cells of the first heading that appears more than once; `heading_of(field)` is
    the heading as the table's schema spells it, `sheet_label` "sheet 'Referrals'" or "the file"."""
    for name, places in heading.found.items():
        if len(places) > 1:
            cells = " and ".join(f"{get_column_letter(i + 1)}{heading.number}" for i, _ in places)
            raise InputError(path, f"{sheet_label}: the heading '{heading_of(name)}' appears more than once (cells {cells}); delete or rename all but one")


def missing_headings(heading: HeadingRow, required: Iterable[str]) -> list[str]:
    """The required fields, in the order given, that the heading row does not name."""
    return [name for name in required if name not in heading.found]
