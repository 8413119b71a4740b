"""Workbooks that real writers made (tests/workbooks/README.md says where each comes from): our streaming
.xlsx reader gives the cells python-calamine gives, and every file, in every format, is read or refused in one
sentence, never an internal error. Then the quirks of particular writers, each built the way that writer
builds it."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from pipeline.read.calamine import calamine_sheets
from pipeline.core.errors import InputError
from pipeline.read.referrals import read_referrals
from pipeline.read.sniff import sniff
from pipeline.read.xlsx import xlsx_sheets

CORPUS = Path(__file__).resolve().parent / "workbooks"
FILES = sorted(p for p in CORPUS.rglob("*") if p.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"))
XLSX = [p for p in FILES if p.suffix.lower() in (".xlsx", ".xlsm")]
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "referrals-spring-2027.xlsx"
ERROR = re.compile(r"#(?:NULL!|DIV/0!|VALUE!|REF!|NAME\?|NUM!|N/A|GETTING_DATA|SPILL!|CALC!|BLOCKED!|FIELD!)")

# Where calamine and we read a cell differently on purpose (the values a referral needs are the same):
# calamine drops an error cell's text and trims strings; we keep what Excel shows (our rules then strip
# the text, and read "#DIV/0!" as a formula error to fix); a duration over 24 hours is a timedelta there and
# a date-time on Excel's 1900 calendar here.
KNOWN = {"calamine/date.xlsx", "calamine/date_1904.xlsx"}


def normal(value):
    if value is None or isinstance(value, dt.timedelta):
        return None
    if isinstance(value, str):
        value = value.strip()
        return None if not value or ERROR.fullmatch(value) else value
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return round(float(value), 9)
    if isinstance(value, dt.datetime):
        return value.date() if value.time() == dt.time() else value.replace(microsecond=0)
    return value


def our_cells(path: Path) -> dict:
    sheets, wb = xlsx_sheets(path, {})
    try:
        return {name: {(n, c): normal(v) for n, row in rows for c, v in enumerate(row) if normal(v) is not None}
                for name, rows in sheets}
    finally:
        wb.close()


def calamine_cells(path: Path) -> dict:
    book = CalamineWorkbook.from_path(str(path))
    out = {}
    for name in book.sheet_names:
        sheet = book.get_sheet_by_name(name)
        first_col = (sheet.start or (0, 0))[1]
        out[name] = {(i + 1, first_col + j): normal(v) for i, row in enumerate(sheet.iter_rows())
                     for j, v in enumerate(row) if normal(v) is not None}
    return out


def test_the_corpus_is_a_few_hundred_workbooks_of_every_format():
    kinds = {p.suffix.lower() for p in FILES}
    assert len(FILES) >= 250 and kinds == {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}


def test_our_xlsx_reader_reads_every_cell_as_calamine_does():
    agree, refused, differ = 0, 0, []
    for path in XLSX:
        name = path.relative_to(CORPUS).as_posix()
        try:
            ours = our_cells(path) if sniff(path) == "xlsx" else None
        except InputError:
            ours = None
        try:
            theirs = calamine_cells(path)
        except Exception:  # noqa: BLE001 - calamine refuses it too
            theirs = None
        # a chart sheet holds no cells: calamine lists it empty, we skip it
        ours, theirs = ({k: v for k, v in d.items() if v} if d is not None else None for d in (ours, theirs))
        if ours is None and theirs is None:
            refused += 1
        elif ours == theirs or name in KNOWN:
            agree += 1
        else:
            differ.append(name)
    print(f"corpus: {len(XLSX)} .xlsx/.xlsm files, {agree} read alike, {refused} refused by both, {len(differ)} differ")
    assert differ == [] and agree >= 200


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(CORPUS).as_posix() for p in FILES])
def test_every_workbook_is_read_or_refused_in_one_sentence(path):
    try:
        sheet = read_referrals(path)
    except InputError as exc:
        text = str(exc)
        assert text.startswith(path.name + ": ") and "\n" not in text and len(text) < 400, text
        return
    assert all(isinstance(row.cells, tuple) for row in sheet.rows)
    for row in sheet.rows:  # nothing that cannot be written out again (no lone surrogates)
        for value in row.cells:
            if isinstance(value, str):
                value.encode("utf-8")


# ------------------------------------------------------------------------------ the quirks, built as writers do

def rewrite(src: Path, dest: Path, change) -> Path:
    """A copy of a workbook with `change(name, data) -> (name, data) | None` applied to each zip member."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            changed = change(info.filename, zin.read(info.filename))
            if changed is not None:
                zout.writestr(changed[0], changed[1])
    return dest


def first_rows(path: Path) -> list:
    return [(r.number, r.cells[:4]) for r in read_referrals(path).rows[:2]]


def test_backslash_member_names_as_some_windows_exporters_write_them(tmp_path):
    odd = rewrite(EXAMPLE, tmp_path / "backslash.xlsx", lambda n, d: (n.replace("/", "\\"), d)
                  if n.startswith("xl/") else (n, d))
    assert first_rows(odd) == first_rows(EXAMPLE)


def test_workbook_parts_outside_xl(tmp_path):
    def move(name, data):
        if name.startswith("xl/"):
            return "book/" + name[3:], data
        if name in ("_rels/.rels", "[Content_Types].xml"):
            return name, data.replace(b"/xl/", b"/book/").replace(b"xl/workbook", b"book/workbook")
        return name, data

    assert first_rows(rewrite(EXAMPLE, tmp_path / "elsewhere.xlsx", move)) == first_rows(EXAMPLE)


def test_two_parts_with_one_name_are_refused_never_read_one_way(tmp_path):
    path = tmp_path / "twice.xlsx"
    shutil.copy(EXAMPLE, path)
    with zipfile.ZipFile(path, "a") as zf:  # the same part again, its name differing only in case
        zf.writestr("XL/Worksheets/Sheet1.xml", b"<worksheet/>")
    with pytest.raises(InputError, match="two parts named"):
        read_referrals(path)
    exact = tmp_path / "exact.xlsx"
    shutil.copy(EXAMPLE, exact)
    with zipfile.ZipFile(exact, "a") as zf, pytest.warns(UserWarning):  # zipfile warns: a duplicate name
        zf.writestr("xl/worksheets/sheet1.xml", b"<worksheet/>")
    with pytest.raises(InputError, match="two parts named"):
        read_referrals(exact)


def _sheet_with(cells_xml: str, tmp_path: Path, name: str, strings: str | None = None) -> Path:
    """A one-sheet workbook whose sheet1.xml holds a heading row and `cells_xml` as row 2."""
    headings = ["Referral ID", "UPN", "Legal forename", "Legal surname"]

    def change(member, data):
        if member == "xl/worksheets/sheet1.xml":
            heads = "".join(f'<c r="{chr(65 + i)}1" t="inlineStr"><is><t>{h}</t></is></c>' for i, h in enumerate(headings))
            return member, (b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
                            b'spreadsheetml/2006/main"><sheetData><row r="1">' + heads.encode() +
                            b'</row><row r="2">' + cells_xml.encode() + b"</row></sheetData></worksheet>")
        if member == "xl/sharedStrings.xml" and strings is not None:
            return member, strings.encode()
        return member, data

    return rewrite(EXAMPLE, tmp_path / name, change)


def test_an_empty_shared_string_value_is_a_blank_cell(tmp_path):
    path = _sheet_with('<c r="A2" t="inlineStr"><is><t>HAV-1</t></is></c><c r="B2" t="s"><v/></c>'
                       '<c r="C2" t="s"><v></v></c>', tmp_path, "empty-v.xlsx")
    assert read_referrals(path).rows[0].cells == ("HAV-1",)


def test_iso_date_cells_are_dates(tmp_path):
    path = _sheet_with('<c r="A2" t="inlineStr"><is><t>HAV-1</t></is></c><c r="B2" t="d"><v>2025-03-05</v></c>'
                       '<c r="C2" t="d"><v>2025-03-05T00:00:00Z</v></c><c r="D2" t="d"><v>10:30:00</v></c>',
                       tmp_path, "iso.xlsx")
    cells = read_referrals(path).rows[0].cells
    assert cells[1] == dt.datetime(2025, 3, 5) and cells[2].date() == dt.date(2025, 3, 5)
    assert cells[3] == dt.time(10, 30)


def test_escaped_unpaired_surrogates_become_a_replacement_character_never_a_crash(tmp_path):
    path = _sheet_with('<c r="A2" t="inlineStr"><is><t>HAV-1</t></is></c>'
                       '<c r="C2" t="inlineStr"><is><t>Amy _xD83D_ Smith</t></is></c>'
                       '<c r="D2" t="inlineStr"><is><t>_xD83D__xDE00_</t></is></c>', tmp_path, "surrogate.xlsx")
    cells = read_referrals(path).rows[0].cells
    assert cells[2] == "Amy \ufffd Smith" and cells[3] == "\U0001F600"


def test_a_doctype_anywhere_in_a_part_is_refused(tmp_path):
    comment = "<!--" + "x" * 20_000 + "-->"

    def change(member, data):
        if member == "xl/worksheets/sheet1.xml":
            return member, data.replace(b"?>", b"?>" + comment.encode() + b'<!DOCTYPE x [<!ENTITY e "boom">]>', 1)
        return member, data

    with pytest.raises(InputError, match="document type declaration"):
        read_referrals(rewrite(EXAMPLE, tmp_path / "doctype.xlsx", change))


@pytest.mark.parametrize("suffix", [".xls", ".ods"])
def test_old_excel_and_libreoffice_files_give_the_same_outcome_as_xlsx(tmp_path, suffix):
    from pipeline.deliver.pdf import find_soffice

    soffice = find_soffice()
    if soffice is None:
        pytest.skip("LibreOffice makes the .xls and .ods copies (CI installs it)")
    import subprocess

    subprocess.run([soffice, "--headless", f"-env:UserInstallation=file://{tmp_path}/profile", "--convert-to",
                    suffix[1:], "--outdir", str(tmp_path), str(EXAMPLE)], check=True, capture_output=True, timeout=180)
    converted = tmp_path / (EXAMPLE.stem + suffix)
    ours, theirs = read_referrals(EXAMPLE), read_referrals(converted)
    assert theirs.heading_row == ours.heading_row and len(theirs.rows) == len(ours.rows)
    norm = lambda v: v.date() if isinstance(v, dt.datetime) else v  # noqa: E731
    for a, b in zip(ours.rows, theirs.rows):
        assert a.number == b.number and [norm(v) for v in a.cells] == [norm(v) for v in b.cells]


def test_xlsb_and_ods_files_are_read_as_calamine_reads_them():
    for path in [p for p in FILES if p.suffix in (".xlsb", ".ods")]:
        try:
            theirs = calamine_cells(path)
        except Exception:  # noqa: BLE001 - calamine refuses it: we must refuse it too, in one sentence
            with pytest.raises(InputError):
                calamine_sheets(path)
            continue
        sheets, _ = calamine_sheets(path)
        ours = {name: {(n, c): normal(v) for n, row in rows for c, v in enumerate(row) if normal(v) is not None}
                for name, rows in sheets}
        assert ours == theirs, path.name


def test_a_calamine_file_that_would_exhaust_memory_is_one_sentence(tmp_path):
    for name in ("OOM_alloc.xls", "OOM_alloc2.xls", "OOM_alloc3.xls"):
        path = CORPUS / "calamine" / name
        if not path.exists():
            continue
        try:
            read_referrals(path)
        except InputError as exc:
            assert str(exc).startswith(name + ": ")


# ------------------------------------------------------------------------- the review tracker, with the same bounds

@pytest.fixture
def tracker(tmp_path, valid_row, workbook):
    from datetime import date

    from pipeline.core.config import Config
    from pipeline.run import run_file

    result = run_file(workbook([valid_row(1)]), config=Config(outbox=tmp_path / "outbox"), as_of=date(2026, 11, 30))
    return result.run_dir / "review-tracker.xlsx"


@pytest.mark.parametrize("kind, expected", [
    ("doctype", "document type declaration"),
    ("malformed", "XML is malformed"),
    ("bomb", "zip bomb"),
])
def test_a_hostile_tracker_is_refused_in_one_sentence_exit_2(tracker, tmp_path, kind, expected, monkeypatch):
    from click.testing import CliRunner

    from pipeline.cli.main import main

    def change(member, data):
        if member != "xl/worksheets/sheet1.xml":
            return member, data
        if kind == "doctype":
            laughs = b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>'
            return member, data.replace(b"?>", b"?>" + laughs, 1)
        if kind == "malformed":
            return member, data.replace(b"</sheetData>", b"<row r='9'><c></sheetData>", 1)
        return member, data + b" " * (300 * 2 ** 20)  # a sheet that unpacks to 300 MB of nothing

    bad = rewrite(tracker, tracker.with_name("review-tracker-bad.xlsx"), change)
    bad.replace(tracker)
    result = CliRunner().invoke(main, ["reviews", str(tracker), "--as-of", "2027-06-01"])
    assert result.exit_code == 2 and expected in result.output and "Traceback" not in result.output, result.output
    assert "internal error" not in result.output
