"""The fast paths give exactly what the plain ones give (equivalence, not timing: `benchmarks/bench.py` times).

* `pipeline.check.row_loader.RowLoader` (memoised field by field) against marshmallow's own `SCHEMA.load`.
"""

from __future__ import annotations

import math
import random
from datetime import date, datetime

import pytest
from marshmallow import ValidationError

from pipeline.write.examples import generate_rows
from pipeline.check.row_loader import RowLoader
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


# ---------------------------------------------------------------- imports for the sections below
from pathlib import Path  # noqa: E402
import openpyxl  # noqa: E402


# ---------------------------------------------------------------- pipeline.write.xlsx_rows against write_value
from pipeline.write.workbooks import Formats, new_workbook, write_value  # noqa: E402
from pipeline.write.xlsx_rows import RowsWorksheet  # noqa: E402

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
import hashlib  # noqa: E402
import io  # noqa: E402

import docx  # noqa: E402
from docx.table import Table  # noqa: E402
from docx.text.paragraph import Paragraph  # noqa: E402

from pipeline.check.calendar import SchoolCalendar  # noqa: E402
from pipeline.write.context import build_context  # noqa: E402
from pipeline.write.documents import INVITATION, PLAN, REQUEST, write_documents  # noqa: E402
from pipeline.write.render import default_templates_dir  # noqa: E402
from pipeline.check.rules import RuleContext, check_sheet  # noqa: E402


def _accepted(count: int, seed: int):
    from pipeline.read.referrals import Column, InputRow, Sheet

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
    for (referral, reviews), (plan, letter, plan_sha256, letter_sha256) in zip(accepted, paths):
        assert hashlib.sha256((tmp_path / plan).read_bytes()).hexdigest() == plan_sha256
        assert hashlib.sha256((tmp_path / letter).read_bytes()).hexdigest() == letter_sha256
        context = build_context(referral, reviews, run_id="20261130T090000000000Z-test", generated_on=date(2026, 11, 30))
        assert structure((tmp_path / plan).read_bytes()) == structure(docxtpl_render(PLAN, context))
        letter_template = INVITATION if referral.from_ap else REQUEST
        assert structure((tmp_path / letter).read_bytes()) == structure(docxtpl_render(letter_template, context))


def test_the_structure_comparison_sees_a_difference():
    accepted = _accepted(3, seed=4)
    contexts = [build_context(r, v, run_id="x", generated_on=date(2026, 11, 30)) for r, v in accepted]
    assert structure(docxtpl_render(PLAN, contexts[0])) != structure(docxtpl_render(PLAN, contexts[1]))


def test_the_private_names_the_fast_paths_lean_on_are_still_there():
    """An upgrade that renames them fails here, loudly, rather than in an officer's run (pyproject.toml pins
    both libraries below their next major version)."""
    from importlib.metadata import version

    import xlsxwriter
    from xlsxwriter.format import Format
    from xlsxwriter.worksheet import Worksheet

    from schemas.referral import SCHEMA

    assert callable(Worksheet._write_rows) and callable(Format._get_xf_index)
    assert callable(Worksheet._convert_date_time)
    sheet = Worksheet()
    assert all(hasattr(sheet, name) for name in ("table", "dim_rowmin", "dim_rowmax", "xls_strmax"))
    from xlsxwriter.sharedstrings import SharedStringTable

    assert callable(SharedStringTable._get_shared_string_index)
    assert isinstance(SCHEMA._hooks, dict)
    assert int(xlsxwriter.__version__.split(".")[0]) == 3
    assert int(version("marshmallow").split(".")[0]) == 4
