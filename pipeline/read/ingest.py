"""Reading a referral spreadsheet: find the sheet and its heading row, map headings to schema fields, and
keep every value with the file's own cell reference.

Nothing here judges a value; it only finds it. A file that cannot be read at all raises `InputError` with one
sentence naming the file and the reason (the CLI's exit code 2).

Input is untrusted (anyone who can write to the inbox can hand us a file), so reading is bounded in time and
memory whatever the file holds (see docs/limits.md and the limits below):

* `.xlsx`/`.xlsm` are read by a small streaming reader of our own (lxml `iterparse`), not by openpyxl or
  calamine: openpyxl's read-only mode takes minutes over a sheet of a million empty formatted rows and pads
  every row to the sheet's declared width, and calamine allocates the whole declared range at once (a 6 KB
  workbook with one cell in A1 and one in XFD1048576 aborts the process). Rows holding no value are dropped
  from the XML stream before parsing, so a million of them cost about a second.
* Each part we unpack has a size limit checked against the zip directory before reading it, and zipfile
  itself stops at the declared size (a part that lies about its size fails its CRC check): a zip bomb is
  refused before it inflates. Macros (`xl/vbaProject.bin`) and every other part we do not need are never
  opened, let alone run. XML is parsed without DTDs, entities or network access.
* Password-protected workbooks (an encrypted package inside an OLE file) and old `.xls` files are told apart
  by the names in the OLE directory and refused with a sentence saying what to do.
* CSV is read as a stream with a bounded line length.
"""

from __future__ import annotations

import codecs
import csv
import math
import mmap
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path

from lxml import etree
from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel

from pipeline.core.errors import WARNING, InputError, Issue
from schemas.parsers import normalise_heading
from schemas.referral import SCHEMA

HEADING_SEARCH_ROWS = 10  # SPEC 2: the heading row may sit below title rows
MIN_HEADINGS = 3  # a row matching fewer known headings is not a heading row
SHEET_NAME = "Referrals"
SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".csv", ".xls", ".xlsb", ".ods")

# ---- limits (docs/limits.md states them for officers and administrators)
MiB = 1 << 20
MAX_FILE_BYTES = 100 * MiB  # the file on disk
MAX_DATA_ROWS = 20_000  # non-blank rows below the heading row (twice the largest batch SPEC 8 benchmarks)
MAX_SHEET_ROW = 1_048_576  # Excel's last row: a row numbered beyond it is damage, not data
MAX_COLUMNS = 256  # column IV: cells further right are ignored (with a warning)
MAX_ZIP_MEMBERS = 10_000
MAX_SHEET_XML_BYTES = 256 * MiB  # a worksheet's XML, streamed (bounds the time taken)
MAX_STRINGS_XML_BYTES = 64 * MiB  # the shared-strings table, held in memory while reading
MAX_PART_BYTES = 16 * MiB  # workbook.xml, relationships, styles
MAX_CELL_CHARS = 32_768  # Excel holds at most 32,767 in a cell: longer text is cut here, one past the limit,
#                          so the schema still reports it as too long, and no message, report or summary
#                          grows with what a hostile file puts in one cell
MAX_CSV_LINE_CHARS = 1_000_000
CSV_FIELD_LIMIT = 131_072  # csv's own default, stated here so it is a documented bound


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
    for v in cells:
        if v is not None and not (isinstance(v, str) and not v.strip()):
            return False
    return True


def _mb(size: int) -> str:
    return f"{size / MiB:,.0f} MB" if size >= MiB else f"{size:,} bytes"


# ---------------------------------------------------------------- what kind of file is this?
def sniff(path: Path) -> str:
    """'xlsx' or 'csv', or InputError saying why the file cannot be read. The content decides, not the name:
    an Excel workbook saved with a .csv or .xls name is still read as a workbook."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "the file does not exist")
    suffix = path.suffix.lower()
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InputError(path, f"the file cannot be opened ({exc.strerror or type(exc).__name__})") from None
    if size == 0:
        raise InputError(path, "the file is empty")
    if size > MAX_FILE_BYTES:
        raise InputError(path, f"the file is {_mb(size)}, more than the {_mb(MAX_FILE_BYTES)} a referral workbook can be")
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _ole_kind(path)
    if head.startswith(b"PK\x03\x04"):
        if suffix not in SPREADSHEET_SUFFIXES:
            raise InputError(path, f"a '{suffix or 'no extension'}' file is not a referral spreadsheet: use .xlsx, .xls, .ods or .csv")
        return _check_zip(path)
    if suffix in (".xlsx", ".xlsm", ".xlsb", ".ods"):
        raise InputError(path, "the file is not an Excel workbook despite its name (it may be damaged, or another kind of file renamed)")
    if suffix == ".xls":
        raise InputError(path, "this is not an Excel 97-2003 workbook despite its .xls name: save the referrals as .xlsx")
    if suffix == ".csv":
        return "csv"
    raise InputError(path, f"'{suffix or 'no extension'}' is not a spreadsheet type we read: use .xlsx, .xls, .ods or .csv")


_OLE_NAMES = ("EncryptionInfo", "EncryptedPackage", "Workbook", "Book", "WordDocument", "PowerPoint Document")


def _ole_stream_names(path: Path) -> set[str]:
    """Names of the streams we care about in an OLE compound file: directory entries are 128 bytes, aligned
    to 128 bytes, the name in UTF-16 followed at offset 64 by its length in bytes (with the terminator)."""
    found = set()
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for name in _OLE_NAMES:
            needle = name.encode("utf-16-le") + b"\x00\x00"
            start = 512
            while (at := data.find(needle, start)) != -1:
                if at % 128 == 0 and int.from_bytes(data[at + 64:at + 66], "little") == len(needle):
                    found.add(name)
                    break
                start = at + 1
    return found


def _ole_kind(path: Path) -> str:
    """'xls' for an Excel 97-2003 workbook; InputError for an encrypted workbook or another Office file."""
    names = _ole_stream_names(path)
    if {"EncryptionInfo", "EncryptedPackage"} & names:
        raise InputError(path, "the workbook is password-protected: open it in Excel, remove the password (File > Info > "
                               "Protect Workbook > Encrypt with Password) and save it again")
    if {"Workbook", "Book"} & names:
        return "xls"
    if {"WordDocument", "PowerPoint Document"} & names:
        raise InputError(path, "this is a Word or PowerPoint file, not a spreadsheet: use .xlsx, .xls, .ods or .csv")
    raise InputError(path, "this is an old-style Office file but not an Excel workbook we can read: save the referrals as .xlsx")


MAX_UNPACKED_BYTES = 512 * MiB  # an .ods or .xlsb read whole (calamine): all its parts, unpacked
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"


def _check_zip(path: Path) -> str:
    """'xlsx', 'xlsb' or 'ods' for a zip that is a workbook; InputError otherwise. Member names are compared
    as Excel does (case-insensitively, either slash), so two parts with one name are refused, never one of
    them read silently."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            mimetype = zf.read("mimetype")[:100] if "mimetype" in zf.NameToInfo else b""
    except Exception:  # zipfile raises many types for a damaged archive
        raise InputError(path, "the workbook is damaged and cannot be opened (it is cut short, or its zip structure is broken)") from None
    if len(infos) > MAX_ZIP_MEMBERS:
        raise InputError(path, f"the file holds {len(infos):,} parts, more than the {MAX_ZIP_MEMBERS:,} a workbook can have; it is not a normal referral workbook")
    seen: dict[str, str] = {}
    for info in infos:
        key = member_key(info.filename)
        if key in seen:
            raise InputError(path, f"the workbook holds two parts named {info.filename!r} and {seen[key]!r}, which Excel "
                                   "counts as one; it cannot be read one way only: open it in Excel and save it again")
        seen[key] = info.filename
    if mimetype.strip() == ODS_MIMETYPE:
        _check_unpacked(path, infos)
        return "ods"
    if "[content_types].xml" not in seen or "_rels/.rels" not in seen and not any(k.startswith("xl/") for k in seen):
        raise InputError(path, "the file is a zip archive but not an Excel workbook (it may be a Word or other Office file renamed)")
    if any(k.endswith(".bin") and k.rsplit("/", 1)[-1] == "workbook.bin" for k in seen):
        _check_unpacked(path, infos)
        return "xlsb"
    return "xlsx"


def _check_unpacked(path: Path, infos) -> None:
    total = sum(i.file_size for i in infos)
    if total > MAX_UNPACKED_BYTES:
        raise InputError(path, f"the workbook unpacks to {_mb(total)}, more than the {_mb(MAX_UNPACKED_BYTES)} limit; "
                               "it is not a normal referral workbook (it may be a 'zip bomb')")


def member_key(name: str) -> str:
    """A zip member's name as Excel finds it: `\\` and `/` alike, case ignored, no leading slash."""
    return name.replace("\\", "/").lstrip("/").lower()


# ---------------------------------------------------------------- reading .xls, .xlsb, .ods (calamine)
CALAMINE_MEMORY = 1024 * MiB  # address space of the reading process: calamine allocates a sheet's declared range


def _calamine_sheets(path: Path):
    """[(name, rows)] read by python-calamine in a child process, the same (row number, cells) as the .xlsx
    reader yields: blanks as None, whole numbers as int, dates and times as Python values. calamine allocates
    a sheet's whole declared range, so a hostile file could exhaust memory or abort the process: the child
    has a bounded address space, and its death is a sentence about the file, never the end of the run."""
    import multiprocessing

    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_calamine_child, args=(str(path), send), daemon=True)
    child.start()
    send.close()
    try:
        outcome = receive.recv() if receive.poll(CALAMINE_SECONDS) else ("error", "it took too long to read")
    except EOFError:  # the child died: out of memory, or calamine aborted on the file
        outcome = ("error", "it is too large, or damaged in a way that stops it being read")
    finally:
        receive.close()
        child.join(1)
        if child.is_alive():
            child.kill()
            child.join()
    kind, value = outcome
    if kind == "password":
        raise InputError(path, "the workbook is password-protected: open it, remove the password and save it again")
    if kind == "error":
        raise InputError(path, f"the workbook cannot be read: {value}")
    return [(name, iter(rows)) for name, rows in value], None


CALAMINE_SECONDS = 120


def _calamine_child(path: str, send) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (CALAMINE_MEMORY, CALAMINE_MEMORY))
    except (ImportError, ValueError, OSError):  # Windows: no address-space limit, the process still isolates
        pass
    try:
        from python_calamine import CalamineWorkbook

        with open(path, "rb") as fh:  # from the content, not the name: an .xls saved as .xlsx is still an .xls
            book = CalamineWorkbook.from_filelike(fh)
            sheets = [(name, list(_calamine_rows(book, name))) for name in book.sheet_names]
            book.close()
        send.send(("ok", sheets))
    except MemoryError:
        send.send(("error", "it is too large to read"))
    except Exception as exc:  # calamine raises its own error types for damage
        if type(exc).__name__ == "PasswordError":
            send.send(("password", None))
        else:
            send.send(("error", f"it is damaged ({type(exc).__name__})"))
    finally:
        send.close()


def _calamine_rows(book, name: str):
    sheet = book.get_sheet_by_name(name)
    first_col = (sheet.start or (0, 0))[1]
    # iter_rows counts rows from the sheet's first row (empty ones included) but columns from its first
    # used column: both made the sheet's own numbers here (tests/test_workbooks.py checks it)
    for index, row in enumerate(sheet.iter_rows()):
        if index + 1 > MAX_SHEET_ROW:
            break
        cells = [None] * first_col + [_calamine_value(v) for v in row[:max(0, MAX_COLUMNS - first_col)]]
        while cells and cells[-1] is None:
            cells.pop()
        if cells:
            yield index + 1, tuple(cells)


def _calamine_value(value):
    if value == "" or value is None:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    if isinstance(value, str):
        return _no_lone_surrogates(value[:MAX_CELL_CHARS])
    return value


# ---------------------------------------------------------------- reading .xlsx: the parts we need
_XML_PARSER = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True,
                   remove_pis=True)


def _local(tag) -> str:
    return tag[tag.rfind("}") + 1:] if isinstance(tag, str) else ""


_DECLARATION = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.I)


class _Part:
    """A zip member as a file object for lxml that refuses a DOCTYPE or ENTITY declaration wherever it stands
    in the part (OOXML never has one; a long comment first must not hide one)."""

    CHUNK = MiB

    def __init__(self, raw):
        self.raw = raw
        self.tail = b""  # the end of the last chunk: a declaration split across two chunks is still seen

    def read(self, size=-1) -> bytes:
        chunk = self.raw.read(self.CHUNK)
        if b"<!" in self.tail + chunk[:16] or b"<!" in chunk:
            if _DECLARATION.search(self.tail + chunk):
                raise _Damaged("it holds an XML document type declaration, which Excel never writes")
        self.tail = chunk[-16:]
        return chunk

    def close(self):
        self.raw.close()


_QNAME = rb"(?:[A-Za-z_][\w.\-]*:)?"


class _SheetStream(_Part):
    """A worksheet's XML with only what we read left in it, so that parsing is fast and holds little memory
    whatever else the sheet carries: the root element, the rows of <sheetData> that hold something (a row
    with an explicit number and only self-closed, valueless cells is dropped as bytes, before parsing), and
    <mergeCells>. Everything else (column formats, conditional formats, extensions...) is skipped unparsed.
    Tags never contain '<', so cutting each chunk at its last '<' never splits a tag we look for."""

    MAX_CARRY = 4 * MiB
    _ROOT = re.compile(rb"<(?![?!])(" + _QNAME + rb"[A-Za-z_][\w.\-]*)[^>]*>")
    _SHEET_DATA = re.compile(rb"<(" + _QNAME + rb")sheetData(?=[\s/>])[^>]*?(/?)>")
    _MERGE_CELLS = re.compile(rb"<(" + _QNAME + rb")mergeCells(?=[\s/>])[^>]*?(/?)>")
    _EMPTY_ROW = re.compile(rb"<(" + _QNAME + rb")row\s[^>]*?\br\s*=\s*[\"']\d+[\"'][^>]*?"
                            rb"(?:/>|>(?:\s*<\1c\s[^>]*/>)*\s*</\1row\s*>)")

    def __init__(self, raw):
        super().__init__(raw)
        self.state = "prolog"  # prolog -> skip -> rows -> tail -> (merges -> tail) -> done
        self.root = b""
        self.close_tag = None
        self.carry = b""
        self.eof = False

    def read(self, size=-1) -> bytes:
        while not self.eof:
            chunk = super().read()
            if not chunk:
                self.eof = True
                out = self._flush_rows(self.carry) if self.state in ("rows", "merges") else b""
                self.carry = b""
                if self.state == "prolog":
                    raise _Damaged("a worksheet has no root element")
                if self.state in ("rows", "merges"):
                    raise _Damaged("a worksheet is cut short")
                return out + (b"</" + self.root + b">" if self.root else b"")
            data = self.carry + chunk
            cut = data.rfind(b"<")
            if cut <= 0 or len(data) - cut > self.MAX_CARRY:
                if self.state in ("rows", "merges"):
                    self.carry = b""
                    return self._flush_rows(data)
                self.carry = data[-64:] if self.state == "prolog" else b""
                continue
            data, self.carry = data[:cut], data[cut:]
            out = self._process(data)
            if out:
                return out
        return b""

    def _flush_rows(self, data: bytes) -> bytes:
        return self._EMPTY_ROW.sub(b"", data) if self.state == "rows" else data

    def _process(self, data: bytes) -> bytes:
        out = []
        while data:
            if self.state == "prolog":
                m = self._ROOT.search(data)
                if m is None:
                    return b"".join(out)
                self.root = m[1]
                out.append(data[:m.end()])
                data, self.state = data[m.end():], "skip"
            elif self.state == "skip":
                m = self._SHEET_DATA.search(data)
                if m is None:
                    return b"".join(out)
                out.append(m[0])
                data = data[m.end():]
                if m[2]:  # <sheetData/>
                    self.state = "tail"
                else:
                    self.state, self.close_tag = "rows", re.compile(rb"</" + re.escape(m[1]) + rb"sheetData\s*>")
            elif self.state in ("rows", "merges"):
                m = self.close_tag.search(data)
                if m is None:
                    out.append(self._flush_rows(data))
                    return b"".join(out)
                out.append(self._flush_rows(data[:m.end()]))
                data, self.state = data[m.end():], "tail"
            elif self.state == "tail":
                m = self._MERGE_CELLS.search(data)
                if m is None:
                    return b"".join(out)
                out.append(m[0])
                data = data[m.end():]
                if not m[2]:
                    self.state, self.close_tag = "merges", re.compile(rb"</" + re.escape(m[1]) + rb"mergeCells\s*>")
            else:
                return b"".join(out)
        return b"".join(out)


class _Damaged(Exception):
    """A structural problem found while reading a workbook; becomes an InputError naming the file."""


class _Workbook:
    """The parts of an .xlsx we need, opened lazily and each within its limit."""

    def __init__(self, path: Path):
        self.path = path
        self.zf = zipfile.ZipFile(path)
        self.members = {member_key(i.filename): i for i in self.zf.infolist()}
        workbook_part = self._office_document()
        rels = self._relationships(workbook_part)
        self.sheets: list[tuple[str, str]] = []  # (sheet name, zip member)
        self.epoch = CALENDAR_WINDOWS_1900
        root = self._xml(workbook_part, MAX_PART_BYTES)
        for element in root.iter():
            name = _local(element.tag)
            if name == "workbookPr" and element.get("date1904", "").lower() in ("1", "true"):
                self.epoch = CALENDAR_MAC_1904
            elif name == "sheet":
                rid = next((v for k, v in element.attrib.items() if _local(k) == "id"), None)
                target = rels.get(rid)
                if target and target[0].endswith("/worksheet") and target[1] in self.members:
                    self.sheets.append((element.get("name") or "", target[1]))
        if not self.sheets:
            raise _Damaged("it has no worksheets")
        kinds = {kind.rsplit("/", 1)[-1]: member for kind, member in rels.values()}
        self.strings = self._shared_strings(kinds.get("sharedStrings"))
        self.date_styles = self._date_styles(kinds.get("styles"))

    @classmethod
    def open_file(cls, path: Path) -> "_Workbook":
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

    def open(self, member: str, limit: int, *, sheet: bool = False) -> _Part:
        info = self.members.get(member_key(member))
        if info is None:
            raise _Damaged(f"its part {member} is missing")
        if info.flag_bits & 0x1:
            raise InputError(self.path, "the workbook is password-protected: open it in Excel, remove the password and save it again")
        if info.file_size > limit:
            raise InputError(self.path, f"the workbook's part {info.filename} unpacks to {_mb(info.file_size)}, more than the "
                                        f"{_mb(limit)} limit; it is not a normal referral workbook (it may be a 'zip bomb')")
        raw = self.zf.open(info)
        return _SheetStream(raw) if sheet else _Part(raw)

    def _xml(self, member: str, limit: int):
        part = self.open(member, limit)
        try:
            return etree.parse(part, etree.XMLParser(**_XML_PARSER)).getroot()
        finally:
            part.close()

    def _office_document(self) -> str:
        if "_rels/.rels" in self.members:
            for kind, member in self._relationships("").values():
                if kind.endswith("/officeDocument") and member in self.members:
                    return member
        if "xl/workbook.xml" in self.members:
            return "xl/workbook.xml"
        raise _Damaged("it has no workbook part")

    def _relationships(self, part: str) -> dict[str, tuple[str, str]]:
        """rId -> (relationship type, zip member in lower case) for the part's relationships."""
        folder, _, name = part.rpartition("/")
        rels_name = f"{folder}/_rels/{name}.rels" if folder else f"_rels/{name}.rels"
        if member_key(rels_name) not in self.members:
            return {}
        result = {}
        for element in self._xml(rels_name, MAX_PART_BYTES).iter():
            if _local(element.tag) != "Relationship" or element.get("TargetMode") == "External":
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
            for _, si in etree.iterparse(part, events=("end",), tag="{*}si", **_XML_PARSER):
                strings.append(_unescape(_rich_text(si)[:MAX_CELL_CHARS]))
                si.clear()
        finally:
            part.close()
        return strings

    def _date_styles(self, member: str | None) -> frozenset[int]:
        if member is None or member not in self.members:
            return frozenset()
        root = self._xml(member, MAX_PART_BYTES)
        formats = dict(BUILTIN_FORMATS)
        xfs = None
        for element in root:
            if _local(element.tag) == "numFmts":
                for fmt in element:
                    try:
                        formats[int(fmt.get("numFmtId"))] = fmt.get("formatCode") or ""
                    except (TypeError, ValueError):
                        continue
            elif _local(element.tag) == "cellXfs":
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


def _rich_text(element) -> str:
    """The text of an <si> or <is>: its <t>, or its runs' <t>s; phonetic runs (<rPh>) left out."""
    parts = []
    for child in element:
        name = _local(child.tag)
        if name == "t":
            parts.append(child.text or "")
        elif name == "r":
            for t in child:
                if _local(t.tag) == "t":
                    parts.append(t.text or "")
    return "".join(parts)


_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _unescape(text: str) -> str:
    """Excel writes characters XML cannot hold as _xHHHH_ (a carriage return is _x000D_); a character outside
    the basic plane as two, `_xD83D__xDE00_`, which are joined, and half of one alone becomes U+FFFD."""
    if "_x" not in text:
        return text
    return _no_lone_surrogates(_ESCAPED.sub(lambda m: chr(int(m[1], 16)), text))


def _no_lone_surrogates(text: str) -> str:
    """Surrogate pairs joined into their character, a lone surrogate replaced by U+FFFD (as Excel shows it):
    no text we read can fail to encode when it is written out."""
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


_COLUMN_CACHE: dict[str, int] = {}
_REF = re.compile(r"([A-Za-z]{1,3})(\d+)")


def _column_of(ref: str) -> int:
    """1-based column of a cell reference such as 'AB12'."""
    letters = ref.rstrip("0123456789")
    column = _COLUMN_CACHE.get(letters)
    if column is None:
        if not _REF.fullmatch(ref):
            raise _Damaged(f"a cell has the reference '{ref[:20]}', which is not a cell")
        column = 0
        for ch in letters.upper():
            column = column * 26 + ord(ch) - 64
        if len(_COLUMN_CACHE) < 20_000:
            _COLUMN_CACHE[letters] = column
    return column


@dataclass
class _SheetNotes:
    """What reading a worksheet noticed besides values (turned into file-level warnings)."""

    formulas_without_value: list[str] = field(default_factory=list)
    beyond_last_column: str | None = None
    merged: list[str] = field(default_factory=list)


def _number(text: str, style: int, wb: _Workbook):
    try:
        value = int(text) if text.lstrip("-").isdigit() else float(text)
    except ValueError:
        return text
    if isinstance(value, float) and not math.isfinite(value):
        return text  # Excel never writes inf or nan: keep what the file says, as text
    if style in wb.date_styles:
        try:
            return from_excel(value, wb.epoch)
        except (OverflowError, ValueError, TypeError):
            return value
    return value


class _Tags:
    """The element names of one sheet's namespace (transitional or strict OOXML), to compare tags cheaply."""

    def __init__(self, tag: str):
        ns = tag[:tag.rfind("}") + 1]
        self.c, self.v, self.f, self.inline, self.t, self.r = (ns + n for n in ("c", "v", "f", "is", "t", "r"))


def _inline_text(element, tags: _Tags) -> str:
    parts = []
    for child in element:
        if child.tag == tags.t:
            parts.append(child.text or "")
        elif child.tag == tags.r:
            parts.extend(t.text or "" for t in child if t.tag == tags.t)
    return _unescape("".join(parts)[:MAX_CELL_CHARS])


def _cell_value(cell, wb: _Workbook, tags: _Tags):
    """(value, has_formula_without_value) of one <c> element."""
    text = inline = None
    formula = False
    for child in cell:
        tag = child.tag
        if tag == tags.v:
            text = child.text or ""
        elif tag == tags.f:
            formula = True
        elif tag == tags.inline:
            inline = _inline_text(child, tags)
    kind = cell.get("t")
    if inline is not None and kind == "inlineStr":
        return inline, False
    if text is None or (formula and not text and kind in (None, "n")):
        return None, formula
    if kind is None or kind == "n":
        style = cell.get("s")
        try:
            style = int(style) if style else 0
        except ValueError:
            style = 0
        return _number(text.strip(), style, wb), False
    if kind == "s":
        if not text.strip():
            return None, False  # an empty <v/>: Excel shows a blank cell
        try:
            return wb.strings[int(text)], False
        except (ValueError, IndexError):
            raise _Damaged(f"cell {cell.get('r') or '?'} refers to a shared string that does not exist") from None
    if kind in ("str", "inlineStr"):
        return _unescape(text[:MAX_CELL_CHARS]), False
    if kind == "e":
        return text.strip(), False
    if kind == "b":
        return text.strip() in ("1", "true"), False
    if kind == "d":  # an ISO date cell (Strict OOXML, LibreOffice): a date, a date and time, or a time
        try:
            return datetime.fromisoformat(text.strip()), False
        except ValueError:
            try:
                return time.fromisoformat(text.strip()), False
            except ValueError:
                return text, False
    return text, False


def _sheet_rows(wb: _Workbook, member: str, notes: _SheetNotes):
    """Yield (row number, cells tuple) for every row holding a value, streaming the sheet's XML."""
    part = wb.open(member, MAX_SHEET_XML_BYTES, sheet=True)
    last_row = 0
    done = 0
    tags = None
    try:
        for _, element in etree.iterparse(part, events=("end",), tag=("{*}row", "{*}mergeCell"), **_XML_PARSER):
            done += 1
            if done % 256 == 0:
                parent = element.getparent()
                if parent is not None:
                    del parent[:-1]  # rows (or merges) already read: memory stays bounded
            if _local(element.tag) == "mergeCell":
                if len(notes.merged) < 10_000:
                    notes.merged.append(element.get("ref") or "")
                element.clear()
                continue
            if tags is None:
                tags = _Tags(element.tag)
            number = element.get("r")
            try:
                number = int(number) if number is not None else last_row + 1
            except ValueError:
                raise _Damaged(f"a row is numbered '{number[:20]}'") from None
            if not last_row < number <= MAX_SHEET_ROW:
                raise _Damaged(f"its rows are out of order or numbered beyond Excel's last row (row {number:,} after row {last_row:,})")
            last_row = number
            values: dict[int, object] = {}
            column = 0
            for cell in element:
                if cell.tag != tags.c:
                    continue
                ref = cell.get("r")
                column = _column_of(ref) if ref else column + 1
                value, no_value = _cell_value(cell, wb, tags)
                if column > MAX_COLUMNS:
                    if value is not None and notes.beyond_last_column is None:
                        notes.beyond_last_column = f"{get_column_letter(min(column, 16384))}{number}"
                    continue
                if no_value and len(notes.formulas_without_value) < 1000:
                    notes.formulas_without_value.append(f"{get_column_letter(column)}{number}")
                if value is not None:
                    values[column] = value
            element.clear()
            if values:
                cells = [None] * max(values)
                for col, value in values.items():
                    cells[col - 1] = value
                yield number, tuple(cells)
    finally:
        part.close()


def _xlsx_sheets(path: Path, notes: dict[str, _SheetNotes]):
    """(sheets, workbook): sheets as [(name, row iterator)], never touching macros or unneeded parts. Each
    sheet's notes go in `notes[name]`, so a formula on a cover sheet is never blamed on the referrals."""
    try:
        wb = _Workbook.open_file(path)
    except InputError:
        raise
    except _Damaged as exc:
        raise InputError(path, f"the workbook is damaged: {exc}") from None
    except Exception as exc:  # zipfile, zlib and lxml raise many types for damaged files
        raise InputError(path, f"the workbook is damaged and cannot be opened ({_reason(exc)})") from None
    return [(name, _sheet_rows(wb, member, notes.setdefault(name, _SheetNotes()))) for name, member in wb.sheets], wb


def workbook_sheets(path: Path):
    """(sheets, workbook) of an .xlsx for a reader other than the referral sheet's (the review tracker): every
    bound and refusal of `read_referrals` applies. Close each sheet's rows and the workbook when done."""
    kind = sniff(path)
    if kind != "xlsx":
        raise InputError(path, "this is not an .xlsx workbook: use the file reintegrate wrote, saved as .xlsx")
    return _xlsx_sheets(path, {})


def custom_property(wb: "_Workbook", name: str) -> str | None:
    """A custom document property of the workbook (File > Info > Properties > Advanced > Custom), as text."""
    member = next((m for m in wb.members if m.endswith("docprops/custom.xml")), None)
    if member is None:
        return None
    for element in wb._xml(member, MAX_PART_BYTES).iter():
        if _local(element.tag) == "property" and element.get("name") == name:
            value = "".join(element.itertext()).strip()
            return value or None
    return None


DamagedWorkbook = _Damaged  # for readers outside this module


def damage_reason(exc: Exception) -> str:
    return _reason(exc)


def _reason(exc: Exception) -> str:
    if isinstance(exc, etree.XMLSyntaxError):
        return "its XML is malformed"
    if isinstance(exc, zipfile.BadZipFile):
        return "a part fails its checksum" if "CRC" in str(exc) else "the zip structure is broken"
    if isinstance(exc, (EOFError, ValueError)) or type(exc).__name__ == "error":  # zlib.error
        return "a part is cut short or corrupt"
    return type(exc).__name__


# ---------------------------------------------------------------- reading CSV
def _csv_encoding(path: Path) -> tuple[str, list[Issue]]:
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(path, "the CSV file is in UTF-16 ('Unicode text'): save it from Excel as 'CSV UTF-8'")
    for encoding in ("utf-8-sig", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(MiB):
                    if b"\x00" in chunk:
                        raise InputError(path, "the file is not a CSV text file (it holds binary data)")
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        if encoding == "cp1252":
            return encoding, [Issue(WARNING, "schema", "the CSV file is not UTF-8; it was read as Windows-1252 (save it "
                                                       "as 'CSV UTF-8' to be sure accents are right)")]
        return encoding, []
    raise InputError(path, "the CSV file is not text in UTF-8 or Windows-1252: save it from Excel as 'CSV UTF-8'")


def _csv_rows(path: Path, encoding: str):
    def lines(fh):
        number = 0
        while line := fh.readline(MAX_CSV_LINE_CHARS + 1):
            number += 1
            if len(line) > MAX_CSV_LINE_CHARS:
                raise InputError(path, f"line {number:,} of the CSV file is longer than {MAX_CSV_LINE_CHARS:,} characters; "
                                       "it is not a referral spreadsheet")
            yield line

    old_limit = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        with path.open("r", encoding=encoding, newline="") as fh:
            reader = csv.reader(lines(fh))
            try:
                for number, cells in enumerate(reader, start=1):
                    if number > MAX_SHEET_ROW:
                        raise InputError(path, f"the CSV file has more than {MAX_SHEET_ROW:,} lines, more than Excel can hold")
                    yield number, tuple(cells[:MAX_COLUMNS])
            except csv.Error as exc:
                raise InputError(path, f"the CSV file cannot be read at line {reader.line_num:,} ({exc})") from None
    finally:
        csv.field_size_limit(old_limit)


# ---------------------------------------------------------------- finding headings
def _match_headings(cells) -> dict[str, list[tuple[int, str]]]:
    found: dict[str, list[tuple[int, str]]] = {}
    for index, value in enumerate(cells):
        if value is None or not isinstance(value, str) or len(value) > 200:
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
    notes: dict[str, _SheetNotes] = {}
    workbook = None
    if kind == "csv":
        encoding, file_issues = _csv_encoding(path)
        sheets = [(path.stem, _csv_rows(path, encoding))]
    elif kind == "xlsx":
        file_issues = []
        sheets, workbook = _xlsx_sheets(path, notes)
    else:  # .xls, .xlsb, .ods: read by python-calamine, then judged exactly as an .xlsx
        file_issues = []
        sheets, workbook = _calamine_sheets(path)
    try:
        return _read_sheet(path, sheets, file_issues, notes, is_csv=kind == "csv",
                           date1904=getattr(workbook, "epoch", None) == CALENDAR_MAC_1904)
    except InputError:
        raise
    except _Damaged as exc:
        raise InputError(path, f"the workbook is damaged: {exc}") from None
    except (MemoryError, RecursionError):
        raise InputError(path, "the file is too large or too deeply nested to read; it is not a normal referral workbook") from None
    except Exception as exc:  # zipfile, zlib and lxml raise many types for damaged files
        raise InputError(path, f"the workbook is damaged and cannot be read ({_reason(exc)})") from None
    finally:
        for _, rows in sheets:
            close = getattr(rows, "close", None)
            if close:
                close()
        if workbook is not None:
            workbook.close()


def _head(rows):
    """The rows numbered within the heading search, and the first row after them (or None)."""
    head = []
    for number, cells in rows:
        if number > HEADING_SEARCH_ROWS:
            return head, (number, cells)
        head.append((number, cells))
    return head, None


DAYS_1900_TO_1904 = 1462  # Excel's 1904 day 0 is its 1900 day 1462


def _read_sheet(path: Path, sheets, file_issues: list[Issue], notes: dict[str, _SheetNotes], *, is_csv: bool,
                date1904: bool = False) -> Sheet:
    named = [s for s in sheets if s[0].strip().casefold() == SHEET_NAME.casefold()]
    chosen = heading = None
    if named:
        # SPEC 2: the Referrals sheet is used if present
        name, rows = named[0]
        head, pending = _head(rows)
        heading = _find_heading_row(head)
        if heading is None:
            raise InputError(path, f"sheet '{name}' has no heading row we recognise in its first {HEADING_SEARCH_ROWS} rows (expected headings such as Referral ID, UPN, Legal surname)")
        chosen = (name, rows, head, pending)
    else:
        for name, rows in sheets:
            head, pending = _head(rows)
            heading = _find_heading_row(head)
            if heading:
                chosen = (name, rows, head, pending)
                break
        if chosen is None:
            what = "the file has no heading row" if is_csv else "no sheet has a heading row"
            raise InputError(path, f"{what} we recognise in its first {HEADING_SEARCH_ROWS} rows (expected headings such as Referral ID, UPN, Legal surname)")
    sheet_name, rows, head, pending = chosen
    heading_number, found = heading
    sheet_label = "the file" if is_csv else f"sheet '{sheet_name}'"
    for name, places in found.items():
        if len(places) > 1:
            cells = " and ".join(f"{get_column_letter(i + 1)}{heading_number}" for i, _ in places)
            raise InputError(path, f"{sheet_label}: the heading '{SCHEMA.fields[name].data_key}' appears more than once (cells {cells}); delete or rename all but one")
    columns = {name: Column(name, places[0][0], places[0][1]) for name, places in found.items()}
    heading_cells = dict(head)[heading_number]
    known = {c.index for c in columns.values()}
    for index, value in enumerate(heading_cells):
        if index not in known and value is not None and str(value).strip():
            text = str(value).strip()
            shown = text if len(text) <= 60 else text[:57] + "..."
            file_issues.append(Issue(WARNING, "schema", f"column '{shown}' is not a referral heading we know, so it was ignored",
                                     column=shown, cell=f"{get_column_letter(index + 1)}{heading_number}"))
    for name, fld in SCHEMA.fields.items():
        if fld.required and name not in columns:
            file_issues.append(Issue("error", "schema", f"there is no '{fld.data_key}' column, so every row lacks it; add the column (see `reintegrate template`)",
                                     column=fld.data_key))

    title_rows = [(n, c) for n, c in head if n < heading_number and not _is_blank(c)]
    by_key = [(column.index, SCHEMA.fields[fld_name].data_key) for fld_name, column in columns.items()]
    # a plain number in a date column of a Mac (1904) workbook counts its days from 1904: shift it to the
    # 1900 system the date parser reads (date-formatted cells are already converted by the reader)
    shift_1904 = {column.index for fld_name, column in columns.items()
                  if date1904 and SCHEMA.fields[fld_name].metadata["kind"] == "date"}
    data_rows: list[InputRow] = []

    def take(number, cells):
        if _is_blank(cells):
            return
        if len(data_rows) >= MAX_DATA_ROWS:
            raise InputError(path, f"{sheet_label} has more than {MAX_DATA_ROWS:,} referral rows; split it into smaller files")
        values = {}
        for index, key in by_key:
            if index < len(cells):
                value = _clean(cells[index])
                if value is not None:
                    if index in shift_1904 and isinstance(value, (int, float)) and not isinstance(value, bool):
                        value = value + DAYS_1900_TO_1904
                    values[key] = value
        data_rows.append(InputRow(number, values, cells))

    for number, cells in head:
        if number > heading_number:
            take(number, cells)
    if pending is not None:
        take(*pending)
    for number, cells in rows:
        take(number, cells)

    file_issues.extend(_notes_issues(notes.get(sheet_name, _SheetNotes()), heading_number, sheet_label))
    if not data_rows:
        file_issues.append(Issue(WARNING, "schema", f"{sheet_label} has a heading row (row {heading_number}) but no referral rows below it"))
    return Sheet(path, sheet_name, heading_number, columns, data_rows, title_rows, heading_cells, file_issues)


def _notes_issues(notes: _SheetNotes, heading_number: int, sheet_label: str) -> list[Issue]:
    issues = []
    if notes.formulas_without_value:
        cells = notes.formulas_without_value
        listed = ", ".join(cells[:10]) + (f" and {len(cells) - 10:,} more" if len(cells) > 10 else "")
        what = f"cells {listed} hold formulas" if len(cells) > 1 else f"cell {listed} holds a formula"
        issues.append(Issue(WARNING, "schema", f"{sheet_label}: {what} with no saved result (the file was not last saved by "
                                               "Excel), so it was read as blank; open the file in Excel, save it and try again",
                            cell=cells[0]))
    if notes.beyond_last_column:
        issues.append(Issue(WARNING, "schema", f"{sheet_label}: cells beyond column {get_column_letter(MAX_COLUMNS)} (the first at "
                                               f"{notes.beyond_last_column}) were ignored; keep referrals in the first "
                                               f"{MAX_COLUMNS} columns", cell=notes.beyond_last_column))
    data_merges = []
    for ref in notes.merged:
        first, _, last = ref.partition(":")
        try:
            last_row = int((last or first).lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
        except ValueError:
            continue
        if last_row > heading_number:
            data_merges.append(ref)
    if data_merges:
        listed = ", ".join(data_merges[:10]) + (f" and {len(data_merges) - 10:,} more" if len(data_merges) > 10 else "")
        issues.append(Issue(WARNING, "schema", f"{sheet_label}: cells {listed} are merged; only the first cell of a merged area "
                                               "holds its value, so the others were read as blank; unmerge them and fill in "
                                               "every row", cell=data_merges[0].partition(":")[0]))
    return issues
