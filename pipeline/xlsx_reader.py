"""A fast reader for ordinary referral workbooks: python-calamine (Rust) reads the cells when a cheap scan of
the worksheet's XML shows calamine will read it exactly as `pipeline.ingest`'s own streaming reader does, and
safely; every other workbook or sheet is read by that reader. Same contract, same values, a third of the time.

`xlsx_sheets(path, notes)` is a drop-in for `ingest._xlsx_sheets(path, notes)`: it returns ``(sheets, book)``,
``sheets`` a list of ``(sheet name, rows)`` in workbook order, ``rows`` an iterator (with ``close()``) of
``(row number, cells)`` for each row holding a value, ``cells`` a tuple of values from column A up to the row's
last value: ``str``, ``int`` (a number written without a fraction), ``float``, ``bool``, ``datetime`` (a
number with a date format), ``None`` for a blank cell; ``book.close()`` releases the file. Merged areas are
noted in ``notes.merged`` once a sheet has been read to its end, as the streaming reader notes them.

Why a scan first: calamine allocates a sheet's whole used range at once (a 6 KB workbook with one cell in A1
and one in XFD1048576 aborts the process), gives error cells (``#REF!``) as blank, reads a formula without a
saved result as blank without saying so, and decides for itself which number formats are dates. So the
sheet's XML is searched (bytes, no parsing) and calamine is used only when the sheet

* is at most `MAX_FAST_SHEET_BYTES` of XML and its used range at most `MAX_FAST_CELLS` cells within
  `ingest.MAX_COLUMNS` columns, rows numbered in order, every cell's reference in its own row;
* has no formulas, error cells, ISO-date cells, empty or phonetic strings, text with spaces at an end but no
  ``xml:space="preserve"`` (calamine trims it), whole numbers written with a
  fraction or an exponent (``2.0``, ``1E+3``), namespace prefixes, or cells and rows without references;
* and the workbook uses only number formats both readers agree are dates (``14``-``17``, ``22``, and custom
  day/month/year patterns) or are not (General, whole, decimal, percent, currency, text), and the 1900 date
  system.

Anything else (an unusual writer, a hostile file, a damaged one) goes to `ingest`, whose checks and messages
then apply. `tests/test_speed_paths.py` compares both readers on many workbooks.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from datetime import date, datetime
from pathlib import Path

from lxml import etree

MAX_FAST_SHEET_BYTES = 64 << 20  # a sheet's XML is read into memory for the scan
MAX_FAST_CELLS = 4_000_000  # calamine holds 32 bytes a cell of the used range: 128 MB
MAX_MERGES = 10_000  # as ingest notes them
_MAX_PART = 16 << 20  # workbook.xml, relationships, styles
_MAX_STRINGS = 64 << 20

_PARSER = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"

# the scan: each finds a reason to leave the sheet to ingest's reader (separate searches: each has a literal
# start the regex engine skips to, so together they are faster than one search with alternatives)
_SCAN = [re.compile(pattern) for pattern in (
    rb"<![Dd][Oo][Cc]|<![Ee][Nn][Tt]",  # a document type declaration (ingest refuses it)
    rb"<[A-Za-z_][\w.\-]*:(?:sheetData|row|c|v|f|is|t|r|rPh|mergeCell)[\s/>]",  # prefixed elements
    rb"<f[\s/>]",  # a formula
    rb"<rPh[\s/>]",  # phonetic text
    rb"<(?:t|is)(?:\s[^>]*)?(?:/>|></(?:t|is)>)",  # an empty string
    rb"<(?:c|row)[/>]",  # a cell or row without a reference
    # a number ingest reads as a float that calamine's reading would make whole (`_value`): a whole number with
    # a fraction (2.0), or an exponent that can make one (1E+3, 10E-1; not 1E+20 or 1E-07)
    rb"<v>\s*-?(?:\d+\.0*\s*</v>|[\d.]*[Ee]\+?0*(?:1[0-5]|\d)\s*</v>|\d{2,}\.?\d*[Ee]-)",
    rb""" t(?:="[ed]"|=')""",  # error or ISO-date cells, a single-quoted type
    rb"t\s+=|t=\s",  # an attribute written with spaces (perhaps a type)
    rb'<c r="(?:[A-Z]{3}|I[W-Z]|[J-Z][A-Z])\d',  # beyond column IV (ingest warns and ignores)
    rb"<t>(?:\s|[^<]*\s</t>)",  # text starting or ending in a space without xml:space="preserve" (calamine trims)
)]
_CELL_ROW = re.compile(rb'<c r="[A-Z]{1,3}(\d{1,7})"')
_TWO_LETTERS = re.compile(rb'<c r="([A-Z])[A-Z]\d')
_MERGE = re.compile(rb'<mergeCell ref="([A-Za-z0-9:$]{1,40})"')
_STRINGS_UNUSUAL = re.compile(rb"<!(?:DOCTYPE|ENTITY)|<rPh[\s/>]|<(?:t|si)(?:\s[^>]*)?(?:/>|></(?:t|si)>)"
                              rb"|<[A-Za-z_][\w.\-]*:(?:si|t|r|rPh)[\s/>]|<t>(?:\s|[^<]*\s</t>)", re.I)

# number formats both readers agree on (ingest: openpyxl's is_date_format; calamine: its own rules)
_PLAIN_BUILTIN = {0, 1, 2, 3, 4, 9, 10, 11, 12, 13, 37, 38, 39, 40, 48, 49}
_DATE_BUILTIN = {14, 15, 16, 17, 22}
_PLAIN_CUSTOM = re.compile(r'General|(?:[0#?.,%+\-()\s@;*_\\/]|"[^"dmyhsDMYHS]*"|\[\$[^\]\-]*(?:-[0-9A-Fa-f]+)?\]'
                           r'|\[(?:Red|Black|Blue|Green|Magenta|Cyan|White|Yellow)\]|[£$€])*')
_DATE_CUSTOM = re.compile(r"(?:\[\$-[0-9A-Fa-f]{1,8}\])?(?:d{1,4}|m{1,4}|y{2}|y{4})"
                          r"(?:(?:[-/., ]|\\[-/., ])+(?:d{1,4}|m{1,4}|y{2}|y{4}))*(?:;@)?", re.I)


class _Unusual(Exception):
    """This workbook or sheet is for ingest's reader."""


def _streaming_reader():
    """ingest's own reader, which this one falls back to (so `ingest._xlsx_sheets` must stay that reader:
    `read_referrals` calls `xlsx_sheets` instead of it)."""
    from pipeline import ingest

    if ingest._xlsx_sheets is xlsx_sheets:
        raise RuntimeError("ingest._xlsx_sheets must stay ingest's streaming reader; call xlsx_reader.xlsx_sheets instead")
    return ingest._xlsx_sheets


def xlsx_sheets(path: Path, notes):
    """Drop-in for `ingest._xlsx_sheets(path, notes)` (see the module's docstring)."""
    try:
        book = _Book(Path(path))
    except Exception:  # unusual or damaged: ingest's reader says which, in its words
        return _streaming_reader()(path, notes)
    return [(name, _Rows(book, index, notes)) for index, (name, _) in enumerate(book.sheets)], book


def iter_sheets(path):
    """(sheet name, iterator of (row number, cells)) for each worksheet, closing the file when done."""
    from pipeline.ingest import _SheetNotes

    sheets, book = xlsx_sheets(Path(path), _SheetNotes())
    try:
        for name, rows in sheets:
            yield name, rows
    finally:
        book.close()


class _Book:
    def __init__(self, path: Path):
        self.path = path
        self.fallback = None  # (sheets, book) from ingest, opened when a sheet needs it
        self.calamine = None
        self.zf = zipfile.ZipFile(path)
        try:
            self._inspect()
        except BaseException:
            self.zf.close()
            raise

    def _inspect(self) -> None:
        infos = self.zf.infolist()
        self.members = {i.filename: i for i in infos}
        if len(self.members) != len({name.lower() for name in self.members}):
            raise _Unusual("member names differ only in case")
        if any(i.flag_bits & 0x1 for i in infos):
            raise _Unusual("encrypted members")
        top = self._rels("_rels/.rels")
        office = [t for kind, t in top.values() if kind.endswith("/officeDocument")]
        if office != ["xl/workbook.xml"]:
            raise _Unusual("the workbook part is not xl/workbook.xml")
        rels = self._rels("xl/_rels/workbook.xml.rels")
        root = self._xml("xl/workbook.xml", _MAX_PART)
        self.sheets: list[tuple[str, str]] = []
        for element in root.iter():
            if element.tag == f"{{{_MAIN}}}workbookPr":
                if element.get("date1904", "").lower() not in ("", "0", "false"):
                    raise _Unusual("the 1904 date system")
            elif element.tag == f"{{{_MAIN}}}sheet":
                target = rels.get(element.get(f"{{{_DOC_RELS}}}id"))
                if target and target[0].endswith("/worksheet") and target[1] in self.members:
                    self.sheets.append((element.get("name") or "", target[1]))
                elif target is None or target[0].endswith("/worksheet"):
                    raise _Unusual("a sheet whose part is missing")
        if not self.sheets:
            raise _Unusual("no worksheets")
        kinds = {kind.rsplit("/", 1)[-1]: target for kind, target in rels.values()}
        self._check_styles(kinds.get("styles"))
        self._check_strings(kinds.get("sharedStrings"))

    def _read(self, member: str, limit: int) -> bytes:
        info = self.members.get(member)
        if info is None or info.file_size > limit:
            raise _Unusual(f"{member} is missing or too big")
        with self.zf.open(info) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise _Unusual(f"{member} is bigger than it says")
        return data

    def _xml(self, member: str, limit: int):
        data = self._read(member, limit)
        if re.search(rb"<!(?:DOCTYPE|ENTITY)", data, re.I):
            raise _Unusual("a document type declaration")
        return etree.fromstring(data, etree.XMLParser(**_PARSER))

    def _rels(self, member: str) -> dict[str, tuple[str, str]]:
        folder = posixpath.dirname(posixpath.dirname(member))
        result = {}
        for element in self._xml(member, _MAX_PART):
            if element.tag != f"{{{_RELS}}}Relationship" or element.get("TargetMode") == "External":
                continue
            target = element.get("Target") or ""
            target = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
            result[element.get("Id")] = (element.get("Type") or "", posixpath.normpath(target))
        return result

    def _check_styles(self, member: str | None) -> None:
        if member is None:
            return
        root = self._xml(member, _MAX_PART)
        custom = {}
        for fmt in root.iter(f"{{{_MAIN}}}numFmt"):
            custom[int(fmt.get("numFmtId"))] = fmt.get("formatCode") or ""
        for xfs in root.iter(f"{{{_MAIN}}}cellXfs"):
            for xf in xfs:
                number_format = int(xf.get("numFmtId", "0"))
                if number_format in custom:
                    code = custom[number_format]
                    if not (_PLAIN_CUSTOM.fullmatch(code) or _DATE_CUSTOM.fullmatch(code)):
                        raise _Unusual(f"number format {code!r}")
                elif number_format not in _PLAIN_BUILTIN and number_format not in _DATE_BUILTIN:
                    raise _Unusual(f"built-in number format {number_format}")

    def _check_strings(self, member: str | None) -> None:
        if member is None:
            return
        if _STRINGS_UNUSUAL.search(self._read(member, _MAX_STRINGS)):
            raise _Unusual("empty, phonetic or prefixed shared strings")

    # ---------------------------------------------------------------- one sheet
    def rows(self, index: int, notes) -> list[tuple[int, tuple]]:
        """Every row holding a value, read by calamine; `_Unusual` when the sheet is for ingest."""
        name, member = self.sheets[index]
        data = self._read(member, MAX_FAST_SHEET_BYTES)
        merges = _scan(data)
        del data
        if self.calamine is None:
            import python_calamine

            self.calamine = python_calamine.CalamineWorkbook.from_path(str(self.path))
            names = [m.name for m in self.calamine.sheets_metadata if m.typ == python_calamine.SheetTypeEnum.WorkSheet]
            if names != [n for n, _ in self.sheets]:
                raise _Unusual("calamine sees other worksheets")
        grid = self.calamine.get_sheet_by_name(name).to_python(skip_empty_area=False)
        return _convert(grid), merges

    def fallback_rows(self, index: int, notes):
        if self.fallback is None:
            self.fallback = _streaming_reader()(self.path, notes)
        return self.fallback[0][index][1]

    def close(self) -> None:
        self.zf.close()
        if self.calamine is not None:
            self.calamine.close()
            self.calamine = None
        if self.fallback is not None:
            for _, rows in self.fallback[0]:
                close = getattr(rows, "close", None)
                if close:
                    close()
            self.fallback[1].close()


def _scan(data: bytes) -> list[str]:
    """The sheet's merged areas; `_Unusual` unless calamine reads this sheet safely and as ingest does."""
    for pattern in _SCAN:
        if pattern.search(data):
            raise _Unusual(f"formulas, errors, empty strings or unusual XML ({pattern.pattern[:30]!r})")
    # every cell's reference is its first attribute and names its own row; rows are numbered in order
    cell_rows = _CELL_ROW.findall(data)
    if len(cell_rows) != data.count(b"<c "):
        raise _Unusual("a cell whose reference is not its first attribute")
    chunks = data.split(b'<row r="')
    if len(chunks) - 1 != data.count(b"<row ") or b'<c r="' in chunks[0]:
        raise _Unusual("a row whose number is not its first attribute")
    expected: list[bytes] = []
    last_row = 0
    for chunk in chunks[1:]:
        number = chunk[:chunk.find(b'"')]
        if not number.isdigit() or number[:1] == b"0" or int(number) <= last_row:
            raise _Unusual("rows out of order")
        last_row = int(number)
        expected += [number] * chunk.count(b'<c r="')
    if expected != cell_rows:
        raise _Unusual("a cell outside its row")
    from pipeline.ingest import MAX_SHEET_ROW

    firsts = set(_TWO_LETTERS.findall(data))  # columns are at most IV (see _UNUSUAL)
    width = 26 * (max(firsts)[0] - 64 + 1) if firsts else 26
    if last_row > MAX_SHEET_ROW or width * last_row > MAX_FAST_CELLS:
        raise _Unusual("too long for calamine")
    return [m.decode("ascii") for m in _MERGE.findall(data, data.rfind(b"</sheetData>"))][:MAX_MERGES]


_EXACT_INT = 1e16  # whole numbers below this are written as digits by Excel and XlsxWriter: ingest gives int


def _value(value):
    kind = value.__class__
    if kind is str:
        return value or None
    if kind is float:
        return int(value) if value.is_integer() and -_EXACT_INT < value < _EXACT_INT else value
    if kind is date:
        return datetime(value.year, value.month, value.day)
    if kind is bool:
        return value
    if kind is datetime and not (value.hour or value.minute or value.second or value.microsecond):
        return value
    # a time of day (calamine rounds it its own way), a time or a duration: ingest's reader decides
    raise _Unusual(f"calamine gave a {kind.__name__} {value!r}")


def _convert(grid: list[list]) -> list[tuple[int, tuple]]:
    rows = []
    for number, cells in enumerate(grid, start=1):
        end = len(cells)
        while end and cells[end - 1] == "":
            end -= 1
        if end:
            rows.append((number, tuple([_value(v) for v in cells[:end]])))
    return rows


class _Rows:
    """One sheet's rows, read on first use: by calamine when the scan allows, else by ingest's reader."""

    def __init__(self, book: _Book, index: int, notes):
        self.book, self.index, self.notes = book, index, notes
        self.it = None
        self.merges: list[str] = []
        self.closed = False
        self.fast = False  # read by calamine (for tests)

    def __iter__(self):
        return self

    def __next__(self):
        if self.it is None:
            if self.closed:
                raise StopIteration
            try:
                rows, self.merges = self.book.rows(self.index, self.notes)
                self.it, self.fast = iter(rows), True
            except Exception:  # _Unusual, or calamine could not read it: ingest's reader, and its messages
                self.it = self.book.fallback_rows(self.index, self.notes)
                self.merges = []
        try:
            return next(self.it)
        except StopIteration:
            if self.merges:  # noted when the sheet has been read to its end, as ingest's reader does
                room = MAX_MERGES - len(self.notes.merged)
                self.notes.merged.extend(self.merges[:max(room, 0)])
                self.merges = []
            raise

    def close(self) -> None:
        self.closed = True
        close = getattr(self.it, "close", None)
        if close:
            close()
