"""`reintegrate run` end to end: what an officer finds in the run folder, opened with the real libraries."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import docx
import openpyxl
import pytest
from click.testing import CliRunner

from pipeline.cli.main import main
from pipeline.core.config import Config
from pipeline.core.ledger import Ledger
from pipeline.run import run_file
from pipeline.write.tracker import STATUSES

AS_OF = date(2026, 11, 30)
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "referrals-spring-2027.xlsx"


def doc_text(path: Path) -> str:
    """Every paragraph and table cell of a .docx, headers and footers included."""
    document = docx.Document(path)
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    for section in document.sections:
        parts.extend(p.text for p in section.header.paragraphs)
        parts.extend(p.text for p in section.footer.paragraphs)
    return "\n".join(parts)


def table_value(document, label: str) -> str:
    """The cell to the right of a label cell in any table."""
    for table in document.tables:
        for row in table.rows:
            cells = row.cells
            for left, right in zip(cells, cells[1:]):
                if left.text.strip() == label:
                    return right.text.strip()
    raise AssertionError(f"no table cell labelled {label!r}")


@pytest.fixture
def tricky_rows(valid_row):
    rows = [valid_row(seed=s) for s in range(1, 6)]
    rows[0].update({"Legal forename": "Zoë", "Legal surname": "O'Brien & <Sons>", "Preferred name": None,
                    "Current provision type": "School", "Reintegration reason": "Fair Access Protocol",
                    "Current provision name": "Hylands School", "IPA reference": None, "IPA start date": None,
                    "IPA end date": None, "Additional support": "=HYPERLINK(\"http://evil\")"})
    rows[1].update({"Referral ID": "HAV/../CON", "Legal surname": "..\\..\\etc", "Legal forename": "CON"})
    rows[2].update({"Legal forename": "مريم", "Legal surname": "Kowalski 🙂"})
    rows[3]["Returning via FAP"] = "No"  # rejected: no documents
    return rows


@pytest.fixture
def ran(tmp_path, workbook, tricky_rows):
    result = run_file(workbook(tricky_rows), config=Config(outbox=tmp_path / "outbox"), as_of=AS_OF)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    return result, summary, tricky_rows


def test_run_writes_one_plan_and_letter_per_accepted_pupil(ran):
    result, summary, rows = ran
    assert (result.accepted, result.rejected) == (4, 1)
    accepted = [r for r in summary["referrals"] if r["status"] == "accepted"]
    for referral in accepted:
        assert (result.run_dir / referral["plan"]).is_file() and (result.run_dir / referral["letter"]).is_file()
    rejected = [r for r in summary["referrals"] if r["status"] == "rejected"]
    assert rejected[0]["plan"] is None and rejected[0]["letter"] is None
    assert len(list((result.run_dir / "plans").iterdir())) == 4
    assert len(list((result.run_dir / "letters").iterdir())) == 4


def test_pupil_data_lands_in_the_right_places(ran):
    result, summary, rows = ran
    row = rows[0]
    entry = next(r for r in summary["referrals"] if r["referral_id"] == row["Referral ID"])
    plan = docx.Document(result.run_dir / entry["plan"])
    assert table_value(plan, "Legal name") == "Zoë O'Brien & <Sons>"  # & < > survive as text
    assert table_value(plan, "UPN") == row["UPN"]
    assert table_value(plan, "Date of birth") == row["Date of birth"].strftime("%d/%m/%Y")
    assert table_value(plan, "Receiving school") == row["Receiving school"]
    assert table_value(plan, "Key worker") == row["Key worker"]
    text = doc_text(result.run_dir / entry["plan"])
    for adjustment in row["Reasonable adjustments"].split("; "):
        assert adjustment in text
    assert '=HYPERLINK("http://evil")' in text  # text, not a field
    assert "OFFICIAL-SENSITIVE" in text
    assert "{{" not in text and "{%" not in text
    letter = doc_text(result.run_dir / entry["letter"])
    assert "3.7" in letter and row["Receiving school contact"] in letter  # from a school: a request (3.7)


def test_no_template_tag_is_left_in_any_part(ran):
    result, *_ = ran
    for path in list((result.run_dir / "plans").iterdir()) + list((result.run_dir / "letters").iterdir()):
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if name.endswith(".xml"):
                    xml = zf.read(name).decode("utf-8")
                    assert "{{" not in xml and "{%" not in xml and "}}" not in xml, (path.name, name)


def test_file_names_are_safe_and_stay_in_the_run_folder(ran, tmp_path):
    result, summary, _ = ran
    names = sorted(p.name for p in (result.run_dir / "plans").iterdir())
    for name in names:
        assert not set(name) & set('<>:"/\\|?*') and not name.upper().startswith("CON.")
    assert any("Zoë" in n for n in names) and any("مريم" in n for n in names)  # unicode kept readable
    everything = {p.resolve() for p in (tmp_path / "outbox").rglob("*")}
    assert all(str(p).startswith(str((tmp_path / "outbox").resolve())) for p in everything)
    assert not (tmp_path / "etc").exists()


def test_tracker_has_one_row_per_review_with_the_spec_features(ran):
    result, summary, rows = ran
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    wb = openpyxl.load_workbook(result.run_dir / "review-tracker.xlsx")
    assert wb.sheetnames[0] == "Reviews"
    ws = wb["Reviews"]
    headings = [c.value for c in ws[1]]
    for needed in ("Referral ID", "Pupil", "Review", "Date", "Status", "Outcome", "Next steps"):
        assert needed in headings
    data = list(ws.iter_rows(min_row=2, values_only=True))
    expected = [(e["referral_id"], n, date.fromisoformat(d)) for e in manifest["referrals"]
                for n, d in enumerate(e["reviews"], start=1)]
    col = {h: i for i, h in enumerate(headings)}
    assert [(r[col["Referral ID"]], r[col["Review"]], r[col["Date"]].date()) for r in data] == expected
    assert all(r[col["Status"]] == "Scheduled" for r in data)
    assert ws.cell(row=2, column=col["Date"] + 1).number_format == "dd/mm/yyyy"
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref.startswith("A1:")
    [status_list] = ws.data_validations.dataValidation
    assert status_list.type == "list" and status_list.formula1 == '"' + ",".join(STATUSES) + '"'
    rules = [rule for cf in ws.conditional_formatting for rule in cf.rules]
    assert any("TODAY()" in rule.formula[0] for rule in rules)
    assert wb.custom_doc_props["reintegrate_run_id"].value == result.run_id
    formula_cells = [c for row in ws.iter_rows() for c in row if c.data_type == "f"]
    assert formula_cells == []


def test_tracker_never_turns_text_into_a_formula(tmp_path, workbook, valid_row):
    row = valid_row(**{"Key worker": "=1+2", "Receiving school": "@SUM(A1)", "Legal forename": "+Amy"})
    result = run_file(workbook([row]), config=Config(outbox=tmp_path / "o"), as_of=AS_OF)
    ws = openpyxl.load_workbook(result.run_dir / "review-tracker.xlsx")["Reviews"]
    values = [c for r in ws.iter_rows(min_row=2) for c in r]
    assert {c.value for c in values} >= {"=1+2", "@SUM(A1)"}
    assert all(c.data_type != "f" for c in values)
    report = openpyxl.load_workbook(result.run_dir / "validation-report.xlsx")
    assert all(c.data_type != "f" for sheet in report for r in sheet.iter_rows() for c in r)


def test_outputs_and_ledger_are_owner_only(ran, tmp_path):
    result, *_ = ran
    for path in [result.run_dir, *result.run_dir.rglob("*"), tmp_path / "outbox" / "ledger.sqlite3"]:
        assert path.stat().st_mode & 0o077 == 0, path
    assert not list(result.run_dir.rglob(".tmp-*"))  # no temporary file left behind


def test_ledger_records_the_run_and_its_accepted_referrals(ran, tmp_path):
    result, summary, rows = ran
    with Ledger(tmp_path / "outbox" / "ledger.sqlite3") as ledger:
        info = ledger.run_info(result.run_id)
        assert (info["kind"], info["accepted"], info["rejected"]) == ("run", 4, 1)
        assert ledger.run_for_input(summary["sha256"]) == result.run_id
        [earlier] = ledger.earlier_returns(rows[0]["UPN"], "another-id")
        assert earlier.planned_return == rows[0]["Planned return date"]
        raw = (tmp_path / "outbox" / "ledger.sqlite3").read_bytes()
        assert rows[0]["UPN"].encode() not in raw  # UPNs are stored as digests


def test_losing_the_ledger_loses_no_documents(ran, tmp_path):
    result, *_ = ran
    (tmp_path / "outbox" / "ledger.sqlite3").unlink()
    assert len(list((result.run_dir / "plans").iterdir())) == 4


def test_each_input_gets_its_own_run_folder(tmp_path, workbook, valid_row):
    a = workbook([valid_row(seed=1)], name="a.xlsx")
    b = workbook([valid_row(seed=2)], name="b.xlsx")
    r = CliRunner().invoke(main, ["run", str(a), str(b), "--outbox", str(tmp_path / "o"), "--as-of", "2026-11-30"])
    assert r.exit_code == 0, r.output
    runs = sorted(p for p in (tmp_path / "o").iterdir() if p.is_dir())
    assert len(runs) == 2 and runs[0].name < runs[1].name  # run ids sort by time
    assert {json.loads((p / "summary.json").read_text())["input"] for p in runs} == {"a.xlsx", "b.xlsx"}


def test_workers_give_the_same_documents(tmp_path, workbook, valid_row):
    rows = [valid_row(seed=s) for s in range(1, 121)]
    path = workbook(rows)
    one = run_file(path, config=Config(outbox=tmp_path / "one"), as_of=AS_OF, workers=1)
    two = run_file(path, config=Config(outbox=tmp_path / "two"), as_of=AS_OF, workers=2)
    names = sorted(p.name for p in (one.run_dir / "plans").iterdir())
    assert names == sorted(p.name for p in (two.run_dir / "plans").iterdir()) and len(names) == 120
    for name in names[:5] + names[-5:]:
        assert doc_text(one.run_dir / "plans" / name).replace(one.run_id, "") == \
            doc_text(two.run_dir / "plans" / name).replace(two.run_id, "")


def test_python_dash_m_pipeline_runs_the_example_without_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", str(EXAMPLE), "--outbox", str(tmp_path / "o"),
                           "--as-of", "2026-11-30"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "24 rows, 15 accepted, 9 rejected" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_converts_a_plan_and_the_tracker_to_pdf(ran, tmp_path):
    result, summary, _ = ran
    plan = next((result.run_dir / "plans").iterdir())
    out = tmp_path / "pdf"
    for source in (plan, result.run_dir / "review-tracker.xlsx"):
        proc = subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo-profile",
                               "--convert-to", "pdf", "--outdir", str(out), str(source)],
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr
        pdf = out / (source.stem + ".pdf")
        assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5000


def test_a_run_that_fails_half_way_leaves_no_run_folder(tmp_path, workbook, valid_row):
    import shutil

    from pipeline.core.errors import TemplateError
    from pipeline.write.render import default_templates_dir

    templates = tmp_path / "templates"
    shutil.copytree(default_templates_dir(), templates)
    document = docx.Document()
    document.add_paragraph("Third review: {{ reviews[2].date }}")  # fine for most pupils, not for one with two
    document.save(templates / "reintegration-plan.docx")
    rows = [valid_row(seed=s, **{"Review frequency (weeks)": 2, "Settling-in period (weeks)": 6}) for s in range(1, 4)]
    rows[2]["Settling-in period (weeks)"] = 4
    outbox = tmp_path / "outbox"
    with pytest.raises(TemplateError, match="cannot be filled"):
        run_file(workbook(rows), config=Config(outbox=outbox, templates_dir=templates), as_of=AS_OF)
    assert [p for p in outbox.iterdir() if p.is_dir()] == []  # no half-written run folder
