"""Property-based tests (hypothesis): random rows never crash the validator, an accepted row always renders,
and random workbooks (written by openpyxl, or damaged byte by byte) either read back exactly or give one
InputError sentence."""

from __future__ import annotations

import io
import math
import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from pipeline.check.calendar import SchoolCalendar
from pipeline.core.errors import InputError
from pipeline.read.headings import HEADING_SEARCH_ROWS
from pipeline.read.referrals import InputRow, Sheet, _clean, read_referrals
from pipeline.check.rules import RuleContext, check_sheet
from schemas.referral import HEADINGS, SCHEMA
from tests import corpus

AS_OF = date(2026, 11, 30)
CALENDAR = SchoolCalendar.load()
FIELDS = list(HEADINGS)
RULES = {"2.2", "3.1", "3.4", "3.8", "3.9", "ME", "FAP20", "duplicate", "schema", "calendar"}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])

# ---------------------------------------------------------------- strategies
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
awkward_text = st.one_of(
    text,
    st.sampled_from(["", " ", "=1+1", "+44", "-", "@SUM(A1)", "\t", "\r\n", "#REF!", "#N/A", "None needed", "Yes",
                     "No", "R", "Year 9", "Y12", "0", "1e308", "nan", "inf", "{{ pupil.upn }}", "{% for x in y %}",
                     "O'Brien", "مريم", "🙂", "../../x", "CON", "a" * 2001, "03/09/2023", "31/02/2027",
                     "3 Sept 2023", "2023-09-03", "B801200005001", "A801200005001", "x@y", "07700 900123"]),
)
cell_value = st.one_of(
    st.none(), awkward_text, st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.dates(date(1, 1, 1), date(9999, 12, 31)),
    st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31)),
)


@st.composite
def random_rows(draw):
    """Rows of random values under random subsets of the headings, some starting from a valid row."""
    count = draw(st.integers(1, 4))
    result = []
    for i in range(count):
        if draw(st.booleans()):
            row = corpus.rows(1, seed=draw(st.integers(0, 10_000)))[0]
            for heading in draw(st.lists(st.sampled_from(list(HEADINGS.values())), max_size=5)):
                row[heading] = draw(cell_value)
        else:
            row = {h: draw(cell_value) for h in draw(st.lists(st.sampled_from(list(HEADINGS.values())), max_size=40))}
        result.append({k: v for k, v in row.items() if v is not None})
    return result


def sheet_of(rows: list[dict]) -> Sheet:
    from pipeline.read.referrals import Column

    columns = {name: Column(name, i, HEADINGS[name]) for i, name in enumerate(FIELDS)}
    rows = [{k: _clean(v) for k, v in row.items() if _clean(v) is not None} for row in rows]  # as ingest hands them on
    input_rows = [InputRow(n, values, tuple(values.get(HEADINGS[f]) for f in FIELDS)) for n, values in enumerate(rows, start=2)]
    return Sheet(Path("fuzz.xlsx"), "Referrals", 1, columns, input_rows, headings=tuple(HEADINGS.values()))


# ---------------------------------------------------------------- the validator
@FUZZ
@given(random_rows())
def test_random_rows_never_crash_the_validator(rows):
    sheet = sheet_of(rows)
    results = check_sheet(sheet, RuleContext(CALENDAR, AS_OF, None))
    assert [r.number for r in results] == [r.number for r in sheet.rows]
    for result, row in zip(results, sheet.rows):
        assert result.accepted == (not any(i.is_error for i in result.issues))
        for issue in result.issues:
            assert issue.rule in RULES and issue.severity in ("error", "warning")
            assert issue.message and "\n" not in issue.message.strip()
            assert issue.column in HEADINGS.values()
            if issue.cell:
                assert issue.cell.endswith(str(row.number)) and f"cell {issue.cell}" in issue.message
        if result.accepted:
            referral = result.referral
            assert referral.referral_id and referral.upn and len(referral.upn) == 13
            assert 1 <= referral.review_frequency_weeks <= 6 and 2 <= referral.settling_in_period_weeks <= 16
            assert referral.decision_date <= referral.planned_return_date


@FUZZ
@given(st.dictionaries(st.sampled_from(list(HEADINGS.values()) + ["Unknown", ""]), cell_value, max_size=45))
def test_the_schema_never_raises_anything_but_validation_errors(values):
    from marshmallow import ValidationError

    try:
        SCHEMA.load(values)
    except ValidationError as err:
        assert set(err.messages) <= set(HEADINGS.values())


# ---------------------------------------------------------------- an accepted row always renders
@pytest.fixture(scope="module")
def templates():
    from pipeline.write.render import load_templates

    return load_templates()


free_text = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=300),
    st.sampled_from(["{{ 7*7 }}", "{% raw %}", "]]>", "<w:t>x</w:t>", "&amp; <b>", "\x00\x01\x0b\x1f text",
                     "line one\r\nline two\rthree\n\tfour", "a" * 1999 + "b", "مريم 🙂 O'Brien", "\u202eexe.docx"]),
)


@st.composite
def accepted_rows(draw):
    row = corpus.rows(1, seed=draw(st.integers(0, 100_000)))[0]
    for heading in ("Legal forename", "Legal surname", "Preferred name", "Parent/carer name", "Social worker",
                    "Current provision name", "Referring school", "Receiving school", "Receiving school contact",
                    "Key worker", "Buddy", "Reasonable adjustments", "Strengths and interests", "Needs and triggers",
                    "Additional support", "Inclusions officer", "Referral ID"):
        if draw(st.booleans()):
            row[heading] = draw(free_text)
    return row


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(accepted_rows())
def test_an_accepted_row_always_renders(templates, row):
    from pipeline.write.context import build_context
    from pipeline.write.render import LETTERS, PLAN

    (result,) = check_sheet(sheet_of([row]), RuleContext(CALENDAR, AS_OF, None))
    assume(result.accepted)
    context = build_context(result.referral, result.reviews, run_id="20261130T000000000000Z-fuzz", generated_on=AS_OF)
    for name in (PLAN, LETTERS[context["letter"]["kind"]]):
        data = templates[name].render(context)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            assert zf.testzip() is None
            parts = [etree.fromstring(zf.read(n)) for n in zf.namelist() if n.startswith("word/") and n.endswith(".xml")]
        words = "".join(t for part in parts for t in part.itertext())
        # the Referral ID reaches every document, as typed (less characters XML cannot hold)
        shown = "".join(ch for ch in result.referral.referral_id if ch >= " " or ch in "\t\n\r")
        for piece in shown.split():
            assert piece in words
    plan = templates[PLAN].render(context)
    with zipfile.ZipFile(io.BytesIO(plan)) as zf:
        words = "".join(etree.fromstring(zf.read("word/document.xml")).itertext())
    for piece in "".join(ch for ch in result.referral.key_worker if ch >= " ").split():
        assert piece in words


# ---------------------------------------------------------------- random workbooks written by openpyxl
safe_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30).filter(
    lambda s: not s.startswith("="))
grid_value = st.one_of(st.none(), safe_text, st.integers(-10**12, 10**12),
                       st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False), st.booleans(),
                       st.datetimes(datetime(1950, 1, 1), datetime(2090, 12, 31)).map(lambda d: d.replace(microsecond=0)))


@st.composite
def workbooks(draw):
    """(sheets: [(name, grid)], heading row or None) with referral headings placed somewhere in the first rows."""
    headings = draw(st.lists(st.sampled_from(list(HEADINGS.values())), min_size=0, max_size=12, unique=True))
    extra = draw(st.lists(safe_text, max_size=3))
    heading_cells = headings + extra
    draw(st.randoms()).shuffle(heading_cells)
    heading_row = draw(st.integers(1, HEADING_SEARCH_ROWS + 2))
    width = max(len(heading_cells), 1)
    rows_count = draw(st.integers(0, 6))
    grid = [[draw(grid_value) for _ in range(width)] if draw(st.booleans()) else [] for _ in range(heading_row - 1)]
    grid.append(heading_cells)
    grid += [[draw(grid_value) for _ in range(width)] for _ in range(rows_count)]
    name = draw(st.sampled_from(["Referrals", "Sheet1", " referrals ", "Data"]))
    return name, grid


def _write(path: Path, name: str, grid: list[list]) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = name
    for r, values in enumerate(grid, start=1):
        for c, value in enumerate(values, start=1):
            if value is not None:
                cell = ws.cell(r, c, value)
                if isinstance(value, str):
                    cell.data_type = "s"
    wb.save(path)


def _expected(value):
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return value  # compared with ==, so 3.0 == 3
    return value


@FUZZ
@given(workbooks())
def test_random_workbooks_read_back_exactly_or_give_one_sentence(tmp_path_factory, workbook):
    name, grid = workbook
    path = tmp_path_factory.mktemp("wb") / "random.xlsx"
    _write(path, name, grid)
    try:
        sheet = read_referrals(path)
    except InputError as exc:
        assert str(exc).startswith("random.xlsx: ") and "\n" not in str(exc)
        assert "heading" in exc.reason
        return
    by_number = {n: values for n, values in enumerate(grid, start=1)}
    written = [v if v != "" else None for v in by_number[sheet.heading_row]]
    read = list(sheet.headings) + [None] * (len(written) - len(sheet.headings))
    assert read == written
    for row in sheet.rows:
        written = by_number[row.number]
        for fld, column in sheet.columns.items():
            value = written[column.index] if column.index < len(written) else None
            got = row.values.get(HEADINGS[fld])
            expected = _expected(value)
            if isinstance(expected, float) and math.isfinite(expected):
                assert got == pytest.approx(expected, rel=1e-15, abs=0)
            else:
                assert got == expected, (fld, value, got)
    numbers = [r.number for r in sheet.rows]
    assert numbers == sorted(numbers) and all(n > sheet.heading_row for n in numbers)
    expected_rows = [n for n, values in by_number.items()
                     if n > sheet.heading_row and any(_expected(v) is not None for v in values)]
    assert numbers == expected_rows


# ---------------------------------------------------------------- damaged workbooks and random CSV
@pytest.fixture(scope="module")
def sheet_xml(tmp_path_factory) -> tuple[Path, bytes]:
    path = corpus.valid_workbook(tmp_path_factory.mktemp("base"), n=2)
    with zipfile.ZipFile(path) as zf:
        return path, zf.read("xl/worksheets/sheet1.xml")


@FUZZ
@given(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 40), st.binary(max_size=12)), min_size=1, max_size=4))
def test_damaged_sheet_xml_reads_or_gives_one_sentence(tmp_path_factory, sheet_xml, edits):
    """Splice random bytes into the sheet's XML (a well-formed zip holding broken XML)."""
    base, xml = sheet_xml
    data = bytearray(xml)
    for where, cut, insert in edits:
        at = int(where * len(data))
        data[at:at + cut] = insert
    path = tmp_path_factory.mktemp("damaged") / "damaged.xlsx"
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, bytes(data) if info.filename == "xl/worksheets/sheet1.xml" else src.read(info))
    try:
        sheet = read_referrals(path)
    except InputError as exc:
        assert str(exc).startswith("damaged.xlsx: ") and "\n" not in str(exc)
        return
    assert all(isinstance(r.number, int) for r in sheet.rows)
    check_sheet(sheet, RuleContext(CALENDAR, AS_OF, None))  # and the rules cope with whatever was read


@FUZZ
@given(st.binary(max_size=400), st.integers(0, 2000))
def test_damaged_zip_bytes_read_or_give_one_sentence(tmp_path_factory, sheet_xml, junk, at):
    base, _ = sheet_xml
    data = bytearray(base.read_bytes())
    at = min(at * 5, len(data))
    data[at:at + len(junk)] = junk
    path = tmp_path_factory.mktemp("zip") / "zip.xlsx"
    path.write_bytes(bytes(data))
    try:
        read_referrals(path)
    except InputError as exc:
        assert str(exc).startswith("zip.xlsx: ") and "\n" not in str(exc)


@FUZZ
@given(st.one_of(st.binary(max_size=600),
                 st.lists(st.lists(awkward_text, max_size=8), max_size=8).map(
                     lambda rows: "\r\n".join(",".join(f'"{c}"' for c in r) for r in
                                              [list(HEADINGS.values())[:6]] + rows).encode("utf-8"))))
def test_random_csv_reads_or_gives_one_sentence(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("csv") / "random.csv"
    path.write_bytes(data)
    try:
        sheet = read_referrals(path)
    except InputError as exc:
        assert str(exc).startswith("random.csv: ") and "\n" not in str(exc)
        return
    check_sheet(sheet, RuleContext(CALENDAR, AS_OF, None))
