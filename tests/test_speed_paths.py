"""The fast paths give exactly what the plain ones give (equivalence, not timing: `benchmarks/bench.py` times).

* `pipeline.rules.RowLoader` (memoised field by field) against marshmallow's own `SCHEMA.load`.
"""

from __future__ import annotations

import math
import random
from datetime import date, datetime

import pytest
from marshmallow import ValidationError

from pipeline.examples import generate_rows
from pipeline.rules import RowLoader
from schemas.referral import HEADINGS, SCHEMA

# values an officer (or a broken formula) can leave in any cell, read as ingest reads them
ODD_VALUES = [
    "", " ", "x", "  padded  ", "#REF!", " #n/a ", "None needed", "Yes", "no", "Y", "TRUE", "0", "1", "7", "2.0",
    "Year 9", "y10", "R", "Reception", "12", "31/02/2024", "03/09/2024", "3 Sept 2024", "2024-09-03", "13/13/2024",
    "03/09/24", "Tuesday 3 September 2024", "September 3, 2024", "B801200005001", "A801200005001",
    "B80120000500A", "b801 2000 0500 1", "inclusion@school.sch.uk", "mailto:A@Example.ORG", "not an email",
    "07700 900123", "+44 7700 900123", "12345", "EHCP", "sen k", "AP", "Direction offsite", "School", "Medical",
    "a;b\nc", "- item one\r\n• item two", "x" * 2001, "=1+1", "Zoë O'Brien & <Co>",
    0, 1, 2, 6, 7, 16, 17, -3, 0.0, -0.0, 1.0, 2.5, 3.0, 45000.0, 45000.5, 45536, 1e20, float("nan"), float("inf"),
    True, False, date(2024, 9, 3), date(1899, 12, 31), datetime(2024, 9, 3), datetime(2024, 9, 3, 10, 30),
    7700900123.0,
]


def reference_load(data: dict) -> tuple[dict, dict]:
    try:
        return SCHEMA.load(data), {}
    except ValidationError as err:
        return err.valid_data or {}, err.messages


def same(a, b) -> bool:
    """Equal, with NaN equal to itself and types compared too (1 == 1.0 == True otherwise)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def assert_same_load(loader: RowLoader, data: dict) -> None:
    try:
        expected_values, expected_messages = reference_load(data)
    except Exception as exc:  # a parser bug is the same bug both ways (not ours to hide here)
        with pytest.raises(type(exc)):
            loader.load(data)
        return
    values, messages = loader.load(data)
    assert list(values) == list(expected_values)
    assert all(same(values[k], expected_values[k]) for k in values), (data, values, expected_values)
    assert messages == expected_messages
    assert list(messages) == list(expected_messages)


def mutated_rows(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for row in generate_rows(count, seed=seed):
        data = {k: v for k, v in row.items() if v is not None}
        for heading in rng.sample(list(HEADINGS.values()), rng.randint(0, 6)):
            if rng.random() < 0.2:
                data.pop(heading, None)  # a blank cell
            else:
                data[heading] = rng.choice(ODD_VALUES)
        rows.append(data)
    return rows


def test_row_loader_matches_marshmallow_on_valid_rows():
    loader = RowLoader()
    for data in generate_rows(300, seed=11):
        assert_same_load(loader, {k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_row_loader_matches_marshmallow_on_faulty_rows(seed):
    loader = RowLoader()  # one loader for the sheet: later rows hit values remembered from earlier ones
    for data in mutated_rows(400, seed):
        assert_same_load(loader, data)


def test_row_loader_matches_marshmallow_value_by_value():
    loader = RowLoader()
    for heading in HEADINGS.values():
        for value in ODD_VALUES:
            assert_same_load(loader, {heading: value})
            assert_same_load(loader, {heading: value})  # the second time from memory


def test_empty_row_and_unknown_keys():
    loader = RowLoader()
    assert_same_load(loader, {})
    assert_same_load(loader, {"Internal notes": "x", "Referral ID": "HAV-1"})


# ---------------------------------------------------------------- pipeline.xlsx_reader against ingest's reader
import inspect  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import openpyxl  # noqa: E402
import xlsxwriter  # noqa: E402

from pipeline import ingest, xlsx_reader  # noqa: E402
from pipeline.examples import write_rows  # noqa: E402
from tests import corpus  # noqa: E402


def read_both(path: Path):
    """Each reader's (sheets as [(name, [(row number, cells)])], notes), or the exception it raised (which
    `ingest.read_referrals` turns into the sentence an officer sees)."""
    results = []
    for reader in (ingest._xlsx_sheets, xlsx_reader.xlsx_sheets):
        notes = ingest._SheetNotes()
        try:
            sheets, book = reader(path, notes)
            try:
                read = [(name, list(rows)) for name, rows in sheets]
            finally:
                book.close()
        except Exception as exc:
            results.append(("raised", type(exc).__name__, str(exc)))
            continue
        results.append((read, vars(notes)))
    return results


def assert_same_reading(path: Path) -> None:
    slow, fast = read_both(path)
    assert fast == slow
    if slow[0] != "raised":  # and the same types: 1 == 1.0 == True, datetime == date would hide a change
        for (_, slow_rows), (_, fast_rows) in zip(slow[0], fast[0]):
            for (_, a), (_, b) in zip(slow_rows, fast_rows):
                assert [type(v) for v in a] == [type(v) for v in b]


def fast_path_taken(path: Path) -> list[bool]:
    """For each sheet, whether calamine read it (True) or ingest's reader (False)."""
    notes = ingest._SheetNotes()
    sheets, book = xlsx_reader.xlsx_sheets(path, notes)
    try:
        taken = []
        for _, rows in sheets:
            list(rows)
            taken.append(isinstance(rows, xlsx_reader._Rows) and rows.fast)
        return taken
    finally:
        book.close()


def test_calamine_reads_the_example_generators_workbooks_as_ingest_does(tmp_path):
    small = write_rows(tmp_path / "small.xlsx", generate_rows(40, seed=5), title_rows=["Havering referrals", "Spring"],
                       extra_columns={"Internal notes": "see file"})
    big = write_rows(tmp_path / "big.xlsx", generate_rows(2100, seed=6))  # constant_memory: inline strings
    for path in (small, big):
        assert_same_reading(path)
        assert fast_path_taken(path) == [True]


def _typed_cells(path: Path, seed: int) -> Path:
    """Cells of every type an officer's workbook holds, in random places, on two sheets."""
    rng = random.Random(seed)
    wb = xlsxwriter.Workbook(str(path))
    formats = [None] + [wb.add_format({"num_format": f}) for f in
                        ("dd/mm/yyyy", "d mmmm yyyy", "[$-809]dd mmmm yyyy;@", "0.00", "#,##0", "0%", "@", 14, 15, 17)]
    texts = ["Zoë", "  padded  ", "a\nb", "a\r\nb", "tab\there", "_x000D_ literal", "😀", "=1+1", "#REF!", "0123",
             "a&b<c>\"d'", "Year 9", "03/09/2024", "x" * 300]
    for name in ("Instructions", "Referrals"):
        ws = wb.add_worksheet(name)
        for _ in range(400):
            row, col = rng.randrange(0, 60), rng.randrange(0, 40)
            fmt = rng.choice(formats)
            kind = rng.randrange(6)
            if kind == 0:
                ws.write_string(row, col, rng.choice(texts), fmt)
            elif kind == 1:  # (a fraction, or below 1, in a date format is a time: ingest's reader reads those)
                number = rng.choice([0, 1, 2, 6, -3, 2.5, 45000, 45536, 123456789012, 0.1, 1e-7])
                ws.write_number(row, col, number, fmt if number >= 1 and number == int(number) else formats[4])
            elif kind == 2:
                ws.write_datetime(row, col, datetime(rng.randrange(1990, 2030), rng.randrange(1, 13),
                                                     rng.randrange(1, 29)), fmt or formats[1])
            elif kind == 3:
                ws.write_boolean(row, col, rng.random() < 0.5, fmt)
            elif kind == 4:
                ws.write_blank(row, col, None, fmt or formats[4])
            else:
                ws.write_string(row, col, rng.choice(texts), fmt)
        for n in range(5):  # merged areas, in rows of their own
            col = rng.randrange(0, 30)
            ws.merge_range(70 + n * 2, col, 70 + n * 2 + rng.randrange(0, 2), col + rng.randrange(1, 4), "")
            ws.write_string(70 + n * 2, col, rng.choice(texts))  # merge_range would make '=1+1' a formula
    wb.close()
    return path


@pytest.mark.parametrize("seed", range(6))
def test_calamine_reads_every_kind_of_cell_as_ingest_does(tmp_path, seed):
    path = _typed_cells(tmp_path / f"typed-{seed}.xlsx", seed)
    assert_same_reading(path)
    assert fast_path_taken(path) == [True, True]


def test_an_openpyxl_workbook_with_merged_title_and_data_cells(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Referrals"
    ws["A1"] = "Havering Inclusions Team: referrals"
    ws.merge_cells("A1:F1")
    headings = list(HEADINGS.values())
    for col, heading in enumerate(headings, start=1):
        ws.cell(row=3, column=col, value=heading)
    for r, data in enumerate(generate_rows(5, seed=3), start=4):
        for col, heading in enumerate(headings, start=1):
            value = data.get(heading)
            cell = ws.cell(row=r, column=col, value=value)
            if isinstance(value, date):
                cell.number_format = "dd/mm/yyyy"
    ws.merge_cells("S4:S5")
    path = tmp_path / "openpyxl.xlsx"
    wb.save(path)
    assert_same_reading(path)
    assert fast_path_taken(path) == [True]
    assert sorted(read_both(path)[1][1]["merged"]) == ["A1:F1", "S4:S5"]


# every corpus workbook: the fast reader takes the file to ingest's reader whenever it must, and agrees
_SLOW_CORPUS = {"zip_bomb", "million_empty_rows", "too_many_rows", "wide_rows"}  # minutes, or gigabytes, each
CORPUS_WORKBOOKS = [name for name, builder in vars(corpus).items()
                    if inspect.isfunction(builder) and builder.__module__ == corpus.__name__
                    and list(inspect.signature(builder).parameters) == ["folder"] and name not in _SLOW_CORPUS]


@pytest.mark.parametrize("name", CORPUS_WORKBOOKS)
def test_every_corpus_file_reads_the_same(tmp_path, name):
    path = getattr(corpus, name)(tmp_path)
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        pytest.skip("not a workbook")
    if name == "far_apart_cells":
        pytest.skip("read in a separate process below: calamine would abort this one")
    assert_same_reading(path)


def test_far_apart_cells_never_reach_calamine(tmp_path):
    """A1 and XFD1048576: calamine would allocate 512 GB and abort the process; the scan sends it to ingest."""
    path = corpus.far_apart_cells(tmp_path)
    code = ("import sys; from pathlib import Path; from pipeline import ingest, xlsx_reader; "
            "notes = ingest._SheetNotes(); sheets, book = xlsx_reader.xlsx_sheets(Path(sys.argv[1]), notes); "
            "print(sum(1 for _, rows in sheets for _ in rows), notes.beyond_last_column); book.close()")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["4", "XFD1048576"]


def _raw(tmp_path: Path, name: str, rows_xml: str, *, strings: list[str] | None = None, numfmt: str | None = None,
         workbook_pr: str = "", merges: str = "", prolog: str = "") -> Path:
    """A one-sheet workbook with exactly this <sheetData> content (and optional shared strings, one custom
    number format as style 1, a workbookPr)."""
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    path = tmp_path / name
    styles = (f'<styleSheet xmlns="{ns}">' + (f'<numFmts count="1"><numFmt numFmtId="164" formatCode="{numfmt}"/></numFmts>'
                                               if numfmt else "")
              + f'<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="{164 if numfmt else 14}"/></cellXfs></styleSheet>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                    '<Default Extension="xml" ContentType="application/xml"/></Types>')
        zf.writestr("_rels/.rels", '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                    f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        zf.writestr("xl/workbook.xml", f'<workbook xmlns="{ns}" xmlns:r="{rel}">{workbook_pr}<sheets>'
                    '<sheet name="Referrals" sheetId="1" r:id="rId1"/></sheets></workbook>')
        zf.writestr("xl/_rels/workbook.xml.rels", '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                    f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
                    f'<Relationship Id="rId2" Type="{rel}/styles" Target="styles.xml"/>'
                    + (f'<Relationship Id="rId3" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/>' if strings else "")
                    + '</Relationships>')
        zf.writestr("xl/styles.xml", styles)
        if strings:
            zf.writestr("xl/sharedStrings.xml", f'<sst xmlns="{ns}">' + "".join(strings) + "</sst>")
        zf.writestr("xl/worksheets/sheet1.xml", f'{prolog}<worksheet xmlns="{ns}" xmlns:x="{ns}"><sheetData>{rows_xml}</sheetData>'
                                               f'{merges}</worksheet>')
    return path


HEAD = '<row r="1"><c r="A1" t="inlineStr"><is><t>Referral ID</t></is></c><c r="B1" t="inlineStr"><is><t>UPN</t></is></c></row>'
UNUSUAL_SHEETS = {  # each read by ingest's reader, and the same either way
    "error-cells": HEAD + '<row r="2"><c r="A2" t="e"><v>#REF!</v></c><c r="B2" t="e"><v>#N/A</v></c></row>',
    "iso-date-cell": HEAD + '<row r="2"><c r="A2" t="d"><v>2024-09-03T00:00:00</v></c></row>',
    "formula-with-result": HEAD + '<row r="2"><c r="A2" t="str"><f>"HAV-"&amp;1</f><v>HAV-1</v></c></row>',
    "formula-without-result": HEAD + '<row r="2"><c r="A2"><f>1+1</f></c></row>',
    "empty-inline-string": HEAD + '<row r="2"><c r="A2" t="inlineStr"><is><t></t></is></c><c r="B2"><v>3</v></c></row>',
    "prefixed-elements": HEAD + '<x:row r="2"><x:c r="A2"><x:v>7</x:v></x:c></x:row>',
    "cells-without-references": HEAD + '<row r="2"><c><v>1</v></c><c><v>2</v></c></row><row><c><v>3</v></c></row>',
    "reference-not-first": HEAD + '<row r="2"><c s="0" r="B2"><v>1</v></c></row>',
    "cell-outside-its-row": HEAD + '<row r="2"><c r="A5"><v>1</v></c></row><row r="5"><c r="B5"><v>2</v></c></row>',
    "rows-out-of-order": HEAD + '<row r="3"><c r="A3"><v>1</v></c></row><row r="2"><c r="A2"><v>2</v></c></row>',
    "whole-number-with-fraction": HEAD + '<row r="2"><c r="A2"><v>2.0</v></c><c r="B2"><v>1E+3</v></c></row>',
    "spaced-attributes": HEAD + '<row r="2"><c r="A2" t = "e"><v>#DIV/0!</v></c></row>',
    "single-quoted-type": HEAD + "<row r=\"2\"><c r=\"A2\" t='e'><v>#NULL!</v></c></row>",
    "time-of-day": HEAD + '<row r="2"><c r="A2" s="1"><v>45000.5</v></c><c r="B2" s="1"><v>0.25</v></c></row>',
    "beyond-column-iv": HEAD + '<row r="2"><c r="A2"><v>1</v></c><c r="IW2"><v>2</v></c></row>',
    "tall-and-sparse": HEAD + '<row r="1000000"><c r="Z1000000"><v>1</v></c></row>',
    "doctype": HEAD,
}


@pytest.mark.parametrize("name", sorted(UNUSUAL_SHEETS))
def test_unusual_sheets_go_to_ingests_reader_and_read_the_same(tmp_path, name):
    prolog = '<!DOCTYPE worksheet [<!ENTITY a "x">]>' if name == "doctype" else ""
    path = _raw(tmp_path, f"{name}.xlsx", UNUSUAL_SHEETS[name], prolog=prolog)
    assert_same_reading(path)
    if read_both(path)[0][0] != "raised":
        assert fast_path_taken(path) == [False]


@pytest.mark.parametrize("name, numfmt, workbook_pr, strings", [
    ("time-format", "hh:mm", "", None),
    ("duration-format", "[h]:mm:ss", "", None),
    ("date-1904", None, '<workbookPr date1904="1"/>', None),
    ("phonetic-shared-string", None, "", ['<si><t>漢字</t><rPh sb="0" eb="2"><t>かんじ</t></rPh></si>']),
    ("empty-shared-string", None, "", ["<si><t/></si>"]),
    ("unpreserved-space", None, "", ["<si><r><t>rich </t></r><r><t>text</t></r></si>"]),
])
def test_unusual_workbooks_go_to_ingests_reader_and_read_the_same(tmp_path, name, numfmt, workbook_pr, strings):
    rows_xml = HEAD + '<row r="2"><c r="A2" s="1"><v>45000</v></c>' + ('<c r="B2" t="s"><v>0</v></c>' if strings else "") + "</row>"
    path = _raw(tmp_path, f"{name}.xlsx", rows_xml, numfmt=numfmt, workbook_pr=workbook_pr, strings=strings)
    assert_same_reading(path)
    assert fast_path_taken(path) == [False]


def test_ordinary_raw_sheets_take_the_fast_path(tmp_path):
    rows_xml = (HEAD + '<row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2" s="1"><v>45000</v></c></row>'
                '<row r="4"><c r="A4" t="b"><v>1</v></c><c r="C4"><v>-0</v></c><c r="D4"><v>2.5</v></c></row>')
    path = _raw(tmp_path, "plain.xlsx", rows_xml, numfmt="dd/mm/yyyy",
                strings=['<si><r><t xml:space="preserve">rich </t></r><r><rPr><b/></rPr><t>text</t></r></si>'],
                merges='<mergeCells count="1"><mergeCell ref="A4:B4"/></mergeCells>')
    assert_same_reading(path)
    assert fast_path_taken(path) == [True]


def test_the_reader_never_allows_more_columns_than_ingest_reads():
    assert ingest.MAX_COLUMNS == 256  # the scan's pattern for "beyond column IV"


def test_iter_sheets_reads_every_sheet_and_closes_the_file(tmp_path):
    path = _typed_cells(tmp_path / "typed.xlsx", 9)
    names = [(name, len(list(rows))) for name, rows in xlsx_reader.iter_sheets(path)]
    assert [n for n, _ in names] == ["Instructions", "Referrals"] and all(count for _, count in names)


# ---------------------------------------------------------------- pipeline.xlsx_rows against write_value
from pipeline.workbooks import Formats, new_workbook, write_value  # noqa: E402
from pipeline.xlsx_rows import RowsWorksheet  # noqa: E402

ROW_VALUES = ["HAV-0001", "Zoë O'Brien & <Co>", "  padded  ", "=1+1", "+44 7700", "-2", "@SUM(A1)", "\tx", "\r=1",
              "x" * 40_000, "", None, 0, 7, -3, 2.5, 1e20, 123456789012345, True, False, date(2026, 12, 7),
              datetime(2026, 12, 7), datetime(2026, 12, 7, 10, 30), date(1900, 1, 2), ("a", "b")]


def _sheet_rows(seed: int, count: int = 60) -> list[tuple]:
    rng = random.Random(seed)
    return [tuple(rng.choice(ROW_VALUES) for _ in range(rng.randrange(1, 12))) for _ in range(count)]


def _both_ways(tmp_path: Path, seed: int):
    """The same sheet written cell by cell (write_value) and by rows (add_row): title and heading rows by
    XlsxWriter, then data rows with fills, comments and an extra status cell on some."""
    rng = random.Random(seed)
    rows = _sheet_rows(seed)
    marks = [{col: {"bg_color": rng.choice(["#FFC7CE", "#FFEB9C"])} for col in rng.sample(range(14), rng.randrange(0, 3))}
             for _ in rows]
    paths = []
    for way in ("cells", "rows"):
        path = tmp_path / f"{way}.xlsx"
        wb = new_workbook(path)
        fmt = Formats(wb)
        status = fmt.derived("text", bold=True, font_color="#006100")
        ws = wb.add_worksheet("Data", worksheet_class=RowsWorksheet)
        ws.write_string(0, 0, "A title", fmt.title)
        for col in range(14):
            ws.write_string(2, col, f"Heading {col}", fmt.heading)
        for n, (values, props) in enumerate(zip(rows, marks), start=3):
            blanks = n % 2 == 0
            for col in sorted(props):
                ws.write_comment(n, col, f"comment {n} {col}", {"author": "reintegrate"})
            extra = ((15, "Accepted", status),) if n % 3 else ()
            if way == "rows":
                ws.add_row(n, (*values, *(None,) * (max(props, default=0) + 1 - len(values))), fmt,
                           blanks=blanks, props=props, extra=extra)
                continue
            padded = (*values, *(None,) * (max(props, default=0) + 1 - len(values)))
            for col, value in enumerate(padded):
                if col in props:
                    write_value(ws, n, col, value, fmt, **props[col])
                elif value is not None or blanks:
                    write_value(ws, n, col, value, fmt)
            for col, text, cell_format in extra:
                ws.write_string(n, col, text, cell_format)
        ws.freeze_panes(3, 0)
        ws.autofilter(2, 0, 2 + len(rows), 15)
        wb.close()
        paths.append(path)
    return paths


def _described(path: Path):
    wb = openpyxl.load_workbook(path)
    ws = wb["Data"]
    cells = {}
    for row in ws.iter_rows():
        for c in row:
            if c.value is None and not c.has_style:
                continue
            cells[c.coordinate] = (c.value, c.data_type, c.number_format, c.font.b, c.font.color and c.font.color.rgb,
                                   c.fill.fgColor.rgb if c.fill.fill_type else None, c.alignment.vertical,
                                   c.alignment.wrap_text, c.quotePrefix, c.comment and (c.comment.text, c.comment.author))
    return ws.dimensions, ws.freeze_panes, ws.auto_filter.ref, cells


@pytest.mark.parametrize("seed", range(5))
def test_rows_added_whole_read_back_as_rows_written_cell_by_cell(tmp_path, seed):
    cells, rows = _both_ways(tmp_path, seed)
    assert _described(rows) == _described(cells)


def test_rows_are_added_in_order_after_the_cells_written_one_by_one(tmp_path):
    wb = new_workbook(tmp_path / "order.xlsx")
    fmt = Formats(wb)
    ws = wb.add_worksheet("Data", worksheet_class=RowsWorksheet)
    ws.write_string(5, 0, "heading", fmt.heading)
    with pytest.raises(ValueError):
        ws.add_row(5, ("x",), fmt)
    ws.add_row(6, ("x",), fmt)
    with pytest.raises(ValueError):
        ws.add_row(6, ("y",), fmt)
    with pytest.raises(TypeError):
        ws.add_row(7, (float("nan"),), fmt)
    wb.close()


# ---------------------------------------------------------------- documents: the run's own files against docxtpl
import io  # noqa: E402

import docx  # noqa: E402
from docx.table import Table  # noqa: E402
from docx.text.paragraph import Paragraph  # noqa: E402

from pipeline.calendar import SchoolCalendar  # noqa: E402
from pipeline.context import build_context  # noqa: E402
from pipeline.documents import INVITATION, PLAN, REQUEST, write_documents  # noqa: E402
from pipeline.render import default_templates_dir  # noqa: E402
from pipeline.rules import RuleContext, check_sheet  # noqa: E402


def _accepted(count: int, seed: int):
    from pipeline.ingest import Column, InputRow, Sheet

    columns = {name: Column(name, i, heading) for i, (name, heading) in enumerate(HEADINGS.items())}
    rows = [InputRow(n, {k: v for k, v in row.items() if v is not None}, ())
            for n, row in enumerate(generate_rows(count, seed=seed), start=2)]
    sheet = Sheet(Path("referrals.xlsx"), "Referrals", 1, columns, rows)
    results = check_sheet(sheet, RuleContext(SchoolCalendar.load(), date(2026, 11, 30)))
    return [(r.referral, r.reviews) for r in results if r.accepted]


def _runs(paragraph: Paragraph) -> list[tuple]:
    """Text by formatting: adjacent runs with the same formatting joined, empty runs left out (where Word or a
    renderer cuts a run does not show)."""
    runs = []
    for run in paragraph.runs:
        font = run.font
        form = (run.bold, run.italic, run.underline, font.size, font.name, font.color.rgb if font.color.type else None,
                run.style.name if run.style is not None else None)
        if not run.text:
            continue
        if runs and runs[-1][1] == form:
            runs[-1] = (runs[-1][0] + run.text, form)
        else:
            runs.append((run.text, form))
    return runs


def _paragraph(paragraph: Paragraph) -> tuple:
    return ("p", paragraph.style.name if paragraph.style is not None else None, paragraph.alignment,
            _runs(paragraph))


def _blocks(parent, container) -> list[tuple]:
    blocks = []
    for child in container.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            blocks.append(_paragraph(Paragraph(child, parent)))
        elif tag == "tbl":
            table = Table(child, parent)
            blocks.append(("table", table.style.name if table.style is not None else None,
                           [[_blocks(cell, cell._tc) for cell in row.cells] for row in table.rows]))
    return blocks


def structure(data: bytes) -> dict:
    """A document's text and structure: body blocks in order (paragraphs with style, alignment and formatted
    text; tables with style and every cell's blocks), headers and footers, and each section's page."""
    document = docx.Document(io.BytesIO(data))
    sections = [(s.page_width, s.page_height, s.orientation, s.left_margin, s.right_margin, s.top_margin,
                 s.bottom_margin, [_paragraph(p) for p in s.header.paragraphs],
                 [_paragraph(p) for p in s.footer.paragraphs]) for s in document.sections]
    return {"body": _blocks(document, document.element.body), "sections": sections,
            "properties": (document.core_properties.title, document.core_properties.subject)}


def docxtpl_render(name: str, context: dict) -> bytes:
    docxtpl = pytest.importorskip("docxtpl")
    reference = docxtpl.DocxTemplate(str(default_templates_dir() / name))
    reference.render(context, autoescape=True)
    buffer = io.BytesIO()
    reference.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("workers", [1, 2])
def test_the_runs_documents_have_docxtpls_text_and_structure(tmp_path, workers):
    """What `run` writes (plans and letters from `write_documents`, in worker processes or not) against
    docxtpl rendering the same templates with the same context, for generated referrals of every route."""
    accepted = _accepted(30, seed=21)
    kinds = {(referral.current_provision_type, referral.reintegration_reason) for referral, _ in accepted}
    assert len(kinds) >= 4 and {len(reviews) for _, reviews in accepted} != {0}
    paths = write_documents(tmp_path, accepted, run_id="20261130T090000000000Z-test", generated_on=date(2026, 11, 30),
                            workers=workers)
    for (referral, reviews), (plan, letter) in zip(accepted, paths):
        context = build_context(referral, reviews, run_id="20261130T090000000000Z-test", generated_on=date(2026, 11, 30))
        assert structure((tmp_path / plan).read_bytes()) == structure(docxtpl_render(PLAN, context))
        letter_template = INVITATION if referral.from_ap else REQUEST
        assert structure((tmp_path / letter).read_bytes()) == structure(docxtpl_render(letter_template, context))


def test_the_structure_comparison_sees_a_difference():
    accepted = _accepted(3, seed=4)
    contexts = [build_context(r, v, run_id="x", generated_on=date(2026, 11, 30)) for r, v in accepted]
    assert structure(docxtpl_render(PLAN, contexts[0])) != structure(docxtpl_render(PLAN, contexts[1]))
