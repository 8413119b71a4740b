"""Reading .xlsx and .xlsm: a small streaming reader of our own over lxml `iterparse`, not openpyxl or
calamine. openpyxl's read-only mode takes minutes over a sheet of a million empty formatted rows and pads
every row to the sheet's declared width, and calamine allocates the whole declared range at once (a 6 KB
workbook with one cell in A1 and one in XFD1048576 aborts the process). Rows holding no value are dropped from
the XML stream before parsing (`xmlparts.SheetStream`), so a million of them cost about a second.

Each part we unpack has a size limit checked against the zip directory before reading it, and zipfile itself
stops at the declared size (a part that lies about its size fails its CRC check). Macros (`xl/vbaProject.bin`)
and every other part we do not need are never opened, let alone run.

`workbook_sheets` and `custom_property` serve other readers of an .xlsx (the review tracker), with every
bound and refusal of the referral reader; such a reader tells a damaged file with `DamagedWorkbook` and
`damage_reason` (`pipeline.read.damage`)."""

from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path

from lxml import etree
from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900

from pipeline.core.errors import InputError
from pipeline.read.cells import Tags, cell_value, column_of, rich_text
from pipeline.read.celltext import unescape
from pipeline.read.damage import DamagedWorkbook, told_as_damaged
from pipeline.read.limits import (MAX_CELL_CHARS, MAX_COLUMNS, MAX_PART_BYTES, MAX_SHEET_ROW, MAX_SHEET_XML_BYTES,
                                  MAX_STRINGS_XML_BYTES, shown_size)
from pipeline.read.notes import SheetNotes
from pipeline.read.sniff import sniff
from pipeline.read.xmlparts import XML_PARSER, Part, SheetStream, local_name
from pipeline.read.zipcheck import member_key


class XlsxWorkbook:
    """The parts of an .xlsx we need, opened lazily and each within its limit: its worksheets (name, zip
    member), calendar (`epoch`), shared strings and which cell styles are dates."""

    def __init__(self, path: Path):
        self.path = path
        self.zf = zipfile.ZipFile(path)
        self.members = {member_key(i.filename): i for i in self.zf.infolist()}
        workbook_part = self._office_document()
        rels = self._relationships(workbook_part)
        self.sheets: list[tuple[str, str]] = []  # (sheet name, zip member)
        self.epoch = CALENDAR_WINDOWS_1900
        self._read_workbook_part(workbook_part, rels)
        if not self.sheets:
            raise DamagedWorkbook("it has no worksheets")
        kinds = {kind.rsplit("/", 1)[-1]: member for kind, member in rels.values()}
        self.strings = self._shared_strings(kinds.get("sharedStrings"))
        self.date_styles = self._date_styles(kinds.get("styles"))

    @classmethod
    def open_file(cls, path: Path) -> "XlsxWorkbook":
        """The workbook, its zip closed again if reading its parts fails."""
        wb = cls.__new__(cls)
        wb.zf = None
        try:
            wb.__init__(path)
        except BaseException:
            if wb.zf is not None:
                wb.zf.close()
            raise
        return wb

    def close(self):
        self.zf.close()

    def open(self, member: str, limit: int, *, sheet: bool = False) -> Part:
        info = self.members.get(member_key(member))
        if info is None:
            raise DamagedWorkbook(f"its part {member} is missing")
        if info.flag_bits & 0x1:
            raise InputError(self.path, "the workbook is password-protected: open it in Excel, remove the password and save it again")
        if info.file_size > limit:
            raise InputError(self.path, f"the workbook's part {info.filename} unpacks to {shown_size(info.file_size)}, more than the "
                                        f"{shown_size(limit)} limit; it is not a normal referral workbook (it may be a 'zip bomb')")
        raw = self.zf.open(info)
        return SheetStream(raw) if sheet else Part(raw)

    def xml(self, member: str, limit: int):
        """The root element of a (small) part, parsed whole."""
        part = self.open(member, limit)
        try:
            return etree.parse(part, etree.XMLParser(**XML_PARSER)).getroot()
        finally:
            part.close()

    def _read_workbook_part(self, workbook_part: str, rels: dict[str, tuple[str, str]]) -> None:
        """The calendar (1904 or 1900) and the worksheets, in the workbook's order, that are really there."""
        for element in self.xml(workbook_part, MAX_PART_BYTES).iter():
            name = local_name(element.tag)
            if name == "workbookPr" and element.get("date1904", "").lower() in ("1", "true"):
                self.epoch = CALENDAR_MAC_1904
            elif name == "sheet":
                rid = next((v for k, v in element.attrib.items() if local_name(k) == "id"), None)
                target = rels.get(rid)
                if target and target[0].endswith("/worksheet") and target[1] in self.members:
                    self.sheets.append((element.get("name") or "", target[1]))

    def _office_document(self) -> str:
        if "_rels/.rels" in self.members:
            for kind, member in self._relationships("").values():
                if kind.endswith("/officeDocument") and member in self.members:
                    return member
        if "xl/workbook.xml" in self.members:
            return "xl/workbook.xml"
        raise DamagedWorkbook("it has no workbook part")

    def _relationships(self, part: str) -> dict[str, tuple[str, str]]:
        """rId -> (relationship type, zip member in lower case) for the part's relationships."""
        folder, _, name = part.rpartition("/")
        rels_name = f"{folder}/_rels/{name}.rels" if folder else f"_rels/{name}.rels"
        if member_key(rels_name) not in self.members:
            return {}
        result = {}
        for element in self.xml(rels_name, MAX_PART_BYTES).iter():
            if local_name(element.tag) != "Relationship" or element.get("TargetMode") == "External":
                continue
            target = (element.get("Target") or "").replace("\\", "/")
            target = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
            result[element.get("Id")] = (element.get("Type") or "", member_key(posixpath.normpath(target)))
        return result

    def _shared_strings(self, member: str | None) -> list[str]:
        if member is None or member not in self.members:
            return []
        strings = []
        part = self.open(member, MAX_STRINGS_XML_BYTES)
        try:
            for _, si in etree.iterparse(part, events=("end",), tag="{*}si", **XML_PARSER):
                strings.append(unescape(rich_text(si)[:MAX_CELL_CHARS]))
                si.clear()
        finally:
            part.close()
        return strings

    def _date_styles(self, member: str | None) -> frozenset[int]:
        """The indexes of the cell styles (cellXfs) whose number format is a date or time."""
        if member is None or member not in self.members:
            return frozenset()
        root = self.xml(member, MAX_PART_BYTES)
        formats = dict(BUILTIN_FORMATS)
        xfs = None
        for element in root:
            if local_name(element.tag) == "numFmts":
                for fmt in element:
                    try:
                        formats[int(fmt.get("numFmtId"))] = fmt.get("formatCode") or ""
                    except (TypeError, ValueError):
                        continue
            elif local_name(element.tag) == "cellXfs":
                xfs = element
        dates = set()
        for index, xf in enumerate(xfs if xfs is not None else ()):
            try:
                code = formats.get(int(xf.get("numFmtId", 0)))
            except ValueError:
                continue
            if code and is_date_format(code):
                dates.add(index)
        return frozenset(dates)


def sheet_rows(wb: XlsxWorkbook, member: str, notes: SheetNotes):
    """Yield (row number, cells tuple) for every row holding a value, streaming the sheet's XML."""
    part = wb.open(member, MAX_SHEET_XML_BYTES, sheet=True)
    last_row = 0
    done = 0
    tags = None
    try:
        for _, element in etree.iterparse(part, events=("end",), tag=("{*}row", "{*}mergeCell"), **XML_PARSER):
            done += 1
            if done % 256 == 0:
                parent = element.getparent()
                if parent is not None:
                    del parent[:-1]  # rows (or merges) already read: memory stays bounded
            if local_name(element.tag) == "mergeCell":
                if len(notes.merged) < 10_000:
                    notes.merged.append(element.get("ref") or "")
                element.clear()
                continue
            if tags is None:
                tags = Tags(element.tag)
            number = _row_number(element, last_row)
            last_row = number
            values = _row_values(element, number, wb, tags, notes)
            element.clear()
            if values:
                cells = [None] * max(values)
                for col, value in values.items():
                    cells[col - 1] = value
                yield number, tuple(cells)
    finally:
        part.close()


def _row_number(row, last_row: int) -> int:
    """The row's own number (its `r`, else the next one); DamagedWorkbook unless it follows `last_row`."""
    number = row.get("r")
    try:
        number = int(number) if number is not None else last_row + 1
    except ValueError:
        raise DamagedWorkbook(f"a row is numbered '{number[:20]}'") from None
    if not last_row < number <= MAX_SHEET_ROW:
        raise DamagedWorkbook(f"its rows are out of order or numbered beyond Excel's last row (row {number:,} after row {last_row:,})")
    return number


def _row_values(row, number: int, wb: XlsxWorkbook, tags: Tags, notes: SheetNotes) -> dict[int, object]:
    """1-based column -> value of a <row>'s cells that hold one, noting formulas without a saved result and
    values beyond the last column read."""
    values: dict[int, object] = {}
    column = 0
    for cell in row:
        if cell.tag != tags.c:
            continue
        ref = cell.get("r")
        column = column_of(ref) if ref else column + 1
        value, no_value = cell_value(cell, wb, tags)
        if column > MAX_COLUMNS:
            if value is not None and notes.beyond_last_column is None:
                notes.beyond_last_column = f"{get_column_letter(min(column, 16384))}{number}"
            continue
        if no_value and len(notes.formulas_without_value) < 1000:
            notes.formulas_without_value.append(f"{get_column_letter(column)}{number}")
        if value is not None:
            values[column] = value
    return values


def xlsx_sheets(path: Path, notes: dict[str, SheetNotes]):
    """(sheets, workbook): sheets as [(name, row iterator)], never touching macros or unneeded parts. Each
    sheet's notes go in `notes[name]`, so a formula on a cover sheet is never blamed on the referrals."""
    with told_as_damaged(path, "opened"):
        wb = XlsxWorkbook.open_file(path)
    return [(name, sheet_rows(wb, member, notes.setdefault(name, SheetNotes()))) for name, member in wb.sheets], wb


def workbook_sheets(path: Path):
    """(sheets, workbook) of an .xlsx for a reader other than the referral sheet's (the review tracker): every
    bound and refusal of `read_referrals` applies. Close each sheet's rows and the workbook when done."""
    kind = sniff(path)
    if kind != "xlsx":
        raise InputError(path, "this is not an .xlsx workbook: use the file reintegrate wrote, saved as .xlsx")
    return xlsx_sheets(path, {})


def custom_property(wb: XlsxWorkbook, name: str) -> str | None:
    """A custom document property of the workbook (File > Info > Properties > Advanced > Custom), as text."""
    member = next((m for m in wb.members if m.endswith("docprops/custom.xml")), None)
    if member is None:
        return None
    for element in wb.xml(member, MAX_PART_BYTES).iter():
        if local_name(element.tag) == "property" and element.get("name") == name:
            value = "".join(element.itertext()).strip()
            return value or None
    return None
