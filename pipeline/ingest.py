"""Reading a referral spreadsheet: find the sheet and its heading row, map headings to schema fields, and
keep every value with the file's own cell reference.

Nothing here judges a value; it only finds it. A file that cannot be read at all raises `InputError` with one
sentence naming the file and the reason (the CLI's exit code 2).
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from openpyxl.utils import get_column_letter

from pipeline.errors import WARNING, InputError, Issue
from schemas.parsers import normalise_heading
from schemas.referral import SCHEMA

HEADING_SEARCH_ROWS = 10  # SPEC 2: the heading row may sit below title rows
MIN_HEADINGS = 3  # a row matching fewer known headings is not a heading row
MAX_UNPACKED_BYTES = 256 * 1024 * 1024  # a workbook inflating past this is refused (zip bomb)
MAX_DATA_ROWS = 100_000
MAX_FILE_BYTES = 100 * 1024 * 1024
SHEET_NAME = "Referrals"
SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".csv")


def _heading_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for name, fld in SCHEMA.fields.items():
        for spelling in (fld.data_key, name, *fld.metadata["aliases"]):
            key = normalise_heading(spelling)
            if lookup.setdefault(key, name) != name:
                raise AssertionError(f"heading spelling {spelling!r} maps to two fields")
    return lookup


HEADING_LOOKUP = _heading_lookup()


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
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in cells)


# ---------------------------------------------------------------- what kind of file is this?
def sniff(path: Path) -> str:
    """'xlsx' or 'csv', or InputError saying why the file cannot be read."""
    if not path.is_file():
        raise InputError(path, "the file does not exist")
    suffix = path.suffix.lower()
    size = path.stat().st_size
    if size == 0:
        raise InputError(path, "the file is empty")
    if size > MAX_FILE_BYTES:
        raise InputError(path, f"the file is {size // 2**20} MB, more than the {MAX_FILE_BYTES // 2**20} MB a referral workbook can be")
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        # an OLE compound file: either an old .xls or an encrypted (password-protected) .xlsx
        data = path.read_bytes()
        if "EncryptionInfo".encode("utf-16-le") in data or "EncryptedPackage".encode("utf-16-le") in data:
            raise InputError(path, "the workbook is password-protected: remove the password in Excel (File > Info > Protect Workbook) and save it again")
        raise InputError(path, "this is an old Excel 97-2003 (.xls) workbook: open it in Excel and save it as .xlsx")
    if suffix == ".xls":
        raise InputError(path, "this is not an Excel 97-2003 workbook despite its .xls name: save the referrals as .xlsx")
    if head.startswith(b"PK\x03\x04"):
        if suffix not in (".xlsx", ".xlsm"):
            raise InputError(path, f"a '{suffix}' file is not a referral spreadsheet: use .xlsx, .xlsm or .csv")
        _check_zip(path)
        return "xlsx"
    if suffix in (".xlsx", ".xlsm"):
        raise InputError(path, "the file is not an Excel workbook despite its name (it may be damaged or another kind of file renamed)")
    if suffix == ".csv":
        return "csv"
    raise InputError(path, f"'{suffix or 'no extension'}' is not a spreadsheet type we read: use .xlsx, .xlsm or .csv")


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            names = {i.filename for i in infos}
            bad = zf.testzip() if len(infos) < 2000 else None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise InputError(path, f"the workbook is damaged and cannot be opened ({type(exc).__name__})") from None
    if bad is not None:
        raise InputError(path, f"the workbook is damaged: its part {bad} cannot be read")
    if "xl/workbook.xml" not in names:
        raise InputError(path, "the file is a zip archive but not an Excel workbook (it may be a Word or other Office file renamed)")
    unpacked = sum(i.file_size for i in infos)
    if unpacked > MAX_UNPACKED_BYTES:
        raise InputError(path, f"the workbook unpacks to {unpacked // 2**20} MB, more than the {MAX_UNPACKED_BYTES // 2**20} MB limit; it is not a normal referral workbook")


# ---------------------------------------------------------------- reading grids
def _xlsx_sheets(path: Path):
    """Yield (sheet name, row iterator of value tuples) for each worksheet, never running macros."""
    import openpyxl  # openpyxl never executes VBA; keep_vba=False drops it entirely

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_vba=False, keep_links=False)
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise InputError(path, f"the workbook is damaged and cannot be opened ({type(exc).__name__})") from None
    try:
        for ws in wb.worksheets:
            yield ws.title, ws.iter_rows(values_only=True)
    finally:
        wb.close()


def _csv_sheets(path: Path):
    raw = path.read_bytes()
    issues = []
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise InputError(path, "the CSV file is not text in UTF-8 or Windows-1252: save it from Excel as 'CSV UTF-8'") from None
        issues.append(Issue(WARNING, "schema", "the CSV file is not UTF-8; it was read as Windows-1252 (save it as 'CSV UTF-8' to be sure accents are right)"))
    if "\x00" in text:
        raise InputError(path, "the file is not a CSV text file (it holds binary data)")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise InputError(path, f"the CSV file cannot be read ({exc})") from None
    return [(path.stem, iter([tuple(r) for r in rows]))], issues


# ---------------------------------------------------------------- finding headings
def _match_headings(cells) -> dict[str, list[tuple[int, str]]]:
    found: dict[str, list[tuple[int, str]]] = {}
    for index, value in enumerate(cells):
        if value is None:
            continue
        name = HEADING_LOOKUP.get(normalise_heading(value))
        if name:
            found.setdefault(name, []).append((index, str(value).strip()))
    return found


def _find_heading_row(first_rows):
    best = None
    for number, cells in first_rows:
        found = _match_headings(cells)
        if len(found) >= MIN_HEADINGS and (best is None or len(found) > len(best[1])):
            best = (number, found)
    return best


def read_referrals(path: str | Path) -> Sheet:
    """Read the referral sheet of a workbook or CSV file."""
    path = Path(path)
    kind = sniff(path)
    file_issues: list[Issue] = []
    if kind == "csv":
        sheets, file_issues = _csv_sheets(path)
    else:
        sheets = _xlsx_sheets(path)
    try:
        return _read_sheet(path, sheets, file_issues)
    except InputError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, EOFError) as exc:
        raise InputError(path, f"the workbook is damaged and cannot be read ({type(exc).__name__})") from None


def _read_sheet(path: Path, sheets, file_issues: list[Issue]) -> Sheet:
    candidates = []
    for name, rows in sheets:
        head = []
        for number, cells in enumerate(rows, start=1):
            head.append((number, tuple(cells)))
            if number >= HEADING_SEARCH_ROWS:
                break
        candidates.append((name, rows, head))
        if name.strip().casefold() == SHEET_NAME.casefold():
            candidates = [candidates[-1]]  # SPEC 2: the Referrals sheet is used if present
            break
    named = [c for c in candidates if c[0].strip().casefold() == SHEET_NAME.casefold()]
    if named:
        chosen = named[0]
        heading = _find_heading_row(chosen[2])
        if heading is None:
            raise InputError(path, f"sheet '{chosen[0]}' has no heading row we recognise in its first {HEADING_SEARCH_ROWS} rows (expected headings such as Referral ID, UPN, Legal surname)")
    else:
        chosen = heading = None
        for candidate in candidates:
            heading = _find_heading_row(candidate[2])
            if heading:
                chosen = candidate
                break
        if chosen is None:
            what = "the file" if path.suffix.lower() == ".csv" else "no sheet"
            raise InputError(path, f"{what} has no heading row we recognise in its first {HEADING_SEARCH_ROWS} rows (expected headings such as Referral ID, UPN, Legal surname)")
    sheet_name, rows, head = chosen
    heading_number, found = heading
    sheet_label = f"sheet '{sheet_name}'" if path.suffix.lower() != ".csv" else "the file"
    for name, places in found.items():
        if len(places) > 1:
            cells = " and ".join(f"{get_column_letter(i + 1)}{heading_number}" for i, _ in places)
            raise InputError(path, f"{sheet_label}: the heading '{SCHEMA.fields[name].data_key}' appears more than once (cells {cells}); delete or rename all but one")
    columns = {name: Column(name, places[0][0], places[0][1]) for name, places in found.items()}
    heading_cells = dict(head)[heading_number]
    known = {c.index for c in columns.values()}
    for index, value in enumerate(heading_cells):
        if index not in known and value is not None and str(value).strip():
            file_issues.append(Issue(WARNING, "schema", f"column '{str(value).strip()}' is not a referral heading we know, so it was ignored",
                                     column=str(value).strip(), cell=f"{get_column_letter(index + 1)}{heading_number}"))
    for name, fld in SCHEMA.fields.items():
        if fld.required and name not in columns:
            file_issues.append(Issue("error", "schema", f"there is no '{fld.data_key}' column, so every row lacks it; add the column (see `reintegrate template`)",
                                     column=fld.data_key))

    title_rows = [(n, c) for n, c in head if n < heading_number and not _is_blank(c)]
    by_key = [(fld_name, column.index, SCHEMA.fields[fld_name].data_key) for fld_name, column in columns.items()]
    data_rows: list[InputRow] = []

    def take(number, cells):
        if _is_blank(cells):
            return
        if len(data_rows) >= MAX_DATA_ROWS:
            raise InputError(path, f"{sheet_label} has more than {MAX_DATA_ROWS:,} referral rows; split it into smaller files")
        values = {}
        for _, index, key in by_key:
            if index < len(cells):
                value = _clean(cells[index])
                if value is not None:
                    values[key] = value
        data_rows.append(InputRow(number, values, cells))

    for number, cells in head:
        if number > heading_number:
            take(number, cells)
    for number, cells in enumerate(rows, start=len(head) + 1):
        take(number, tuple(cells))
    return Sheet(path, sheet_name, heading_number, columns, data_rows, title_rows, heading_cells, file_issues)
