"""`validate` end to end on the shipped example workbook: the report an officer opens, and summary.json."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from pipeline.cli.main import main
from pipeline.run import validate_file

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "referrals-spring-2027.xlsx"
AS_OF = date(2026, 11, 30)
# see tools/make_example_workbook.py for the deliberate mistakes
EXPECTED_REJECTED = {
    "HAV-00003": {("schema", "UPN")},
    "HAV-00005": {("3.1", "Returning via FAP")},
    "HAV-00008": {("3.8", "IPA end date")},
    "HAV-00011": {("3.9", "IPA start date")},
    "HAV-00013": {("duplicate", "Referral ID")},
    "HAV-00016": {("schema", "Date of birth")},
    "HAV-00019": {("ME", "Buddy")},
    "HAV-00021": {("3.4", "Decision date")},
}


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    from pipeline.core.config import Config

    outbox = tmp_path_factory.mktemp("outbox")
    result = validate_file(EXAMPLE, config=Config(outbox=outbox), as_of=AS_OF)
    return result, json.loads((result.run_dir / "summary.json").read_text())


def test_example_accepts_and_rejects_the_expected_rows(validated):
    result, summary = validated
    assert (summary["rows"], summary["accepted"], summary["rejected"]) == (24, 15, 9)
    assert result.exit_code == 1
    rejected = {}
    for referral in summary["referrals"]:
        if referral["status"] == "rejected":
            rejected.setdefault(referral["referral_id"], set()).update(
                (i["rule"], i["column"]) for i in referral["issues"] if i["severity"] == "error")
    assert rejected == EXPECTED_REJECTED
    warned = {r["referral_id"]: {i["rule"] for i in r["issues"]} for r in summary["referrals"] if r["status"] == "accepted" and r["issues"]}
    assert "FAP20" in warned["HAV-00023"] and "schema" in warned["HAV-00024"]


def test_every_message_names_a_real_cell_of_the_workbook(validated):
    _, summary = validated
    ws = openpyxl.load_workbook(EXAMPLE)["Referrals"]
    headings = {c.column_letter: c.value for c in ws[4] if c.value}
    for referral in summary["referrals"]:
        for issue in referral["issues"]:
            cell = issue["cell"]
            assert cell and f"cell {cell}" in issue["message"]
            letter = cell.rstrip("0123456789")
            assert int(cell[len(letter):]) == referral["row"]
            assert headings[letter] == issue["column"]  # the file's heading at that cell is the issue's column


def test_summary_json_has_the_spec_shape(validated):
    result, summary = validated
    assert list(summary) == ["input", "sha256", "run_id", "as_of", "rows", "accepted", "rejected", "warnings",
                             "file_issues", "referrals"]
    assert summary["input"] == EXAMPLE.name and summary["as_of"] == "2026-11-30" and summary["run_id"] == result.run_id
    assert len(summary["sha256"]) == 64
    assert summary["file_issues"][0]["column"] == "Internal notes"
    assert {"severity", "rule", "column", "message"} == set(summary["file_issues"][0])
    referral = summary["referrals"][0]
    assert set(referral) == {"referral_id", "row", "status", "plan", "letter", "issues"}
    assert referral["row"] == 5 and referral["plan"] is None  # validate writes no documents
    assert summary["warnings"] == sum(1 for r in summary["referrals"] for i in r["issues"] if i["severity"] == "warning")
    assert sorted(p.name for p in result.run_dir.iterdir()) == ["summary.json", "validation-report.xlsx"]


def test_validation_report_highlights_and_comments_faulty_cells(validated):
    result, summary = validated
    wb = openpyxl.load_workbook(result.run_dir / "validation-report.xlsx")
    sheet = wb["Referrals"]
    assert sheet["A1"].value == "London Borough of Havering – Inclusions Team"  # title rows kept where they were
    assert sheet["A4"].value == "Referral ID" and sheet.freeze_panes == "B5"  # headings and Referral ID stay in view
    assert wb.sheetnames[0] == "Issues" and wb.active.title == "Issues"  # it opens on the issues
    bad_upn = sheet["B7"]
    assert bad_upn.fill.fgColor.rgb.endswith("FFC7CE") and "check letter" in bad_upn.comment.text
    assert sheet["A7"].fill.fgColor.rgb in (None, "00000000")
    dob = sheet["F20"]
    assert dob.value == "31/02/2013" and "no day 31" in dob.comment.text
    status = [c.value for c in sheet[4]].index("Status (reintegrate)")
    assert sheet.cell(row=7, column=status + 1).value == "Rejected"
    assert sheet.cell(row=5, column=status + 1).value == "Accepted"
    issues = list(openpyxl.load_workbook(result.run_dir / "validation-report.xlsx", data_only=True)["Issues"]
                  .iter_rows(values_only=True))
    assert issues[0] == ("Referral ID", "Row", "Cell", "Heading", "Value", "Rule", "Severity", "Message")
    upn_row = next(r for r in issues if r[2] == "B7")
    assert upn_row[:2] == ("HAV-00003", 7) and upn_row[3] == "UPN" and upn_row[5] == "schema" and upn_row[6] == "error"
    assert wb["Issues"]["C4"].value == "=HYPERLINK(\"#'Referrals'!B7\",\"B7\")"  # a link to the highlighted cell
    assert bad_upn.comment.text.startswith("Error (schema): the UPN's check letter")  # the rule said once
    three_one = wb["Referrals"]["O9"].comment.text
    assert three_one.startswith("Error: 3.1: ") and "3.1: 3.1" not in three_one
    assert len(issues) - 1 == len(summary["file_issues"]) + sum(len(r["issues"]) for r in summary["referrals"])


def test_outputs_are_owner_only(validated):
    result, _ = validated
    for path in result.run_dir.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path
    assert result.run_dir.stat().st_mode & 0o077 == 0


def test_cli_validate_exit_codes(tmp_path, workbook, valid_row):
    runner = CliRunner()
    good = workbook([valid_row(seed=1), valid_row(seed=2)], name="good.xlsx")
    r = runner.invoke(main, ["validate", str(good), "--outbox", str(tmp_path / "o"), "--as-of", "2026-11-30"])
    assert r.exit_code == 0, r.output
    assert "2 rows, 2 accepted, 0 rejected" in r.output
    r = runner.invoke(main, ["validate", str(EXAMPLE), "--outbox", str(tmp_path / "o"), "--as-of", "2026-11-30"])
    assert r.exit_code == 1 and "row 7 (HAV-00003)" in r.output and "cell B7" in r.output
    junk = tmp_path / "notes.xlsx"
    junk.write_text("this is not a workbook")
    r = runner.invoke(main, ["validate", str(junk), "--outbox", str(tmp_path / "o")])
    assert r.exit_code == 2 and "notes.xlsx" in r.output and "Traceback" not in r.output
    r = runner.invoke(main, ["validate", str(good), "--as-of", "30/11/2026"])
    assert r.exit_code == 2 and "YYYY-MM-DD" in r.output


def test_worst_exit_code_over_several_files(tmp_path, workbook, valid_row):
    good = workbook([valid_row()], name="good.xlsx")
    missing = tmp_path / "missing.xlsx"
    r = CliRunner().invoke(main, ["validate", str(good), str(missing), "--outbox", str(tmp_path / "o"), "--as-of", "2026-11-30"])
    assert r.exit_code == 2 and "1 row, 1 accepted" in r.output and "missing.xlsx: the file does not exist" in r.output


def test_csv_with_bom_validates_like_the_workbook(tmp_path, valid_row):
    import csv

    row = valid_row()
    path = tmp_path / "referrals.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(row))
        writer.writerow([v.strftime("%d/%m/%Y") if isinstance(v, date) else ("" if v is None else v) for v in row.values()])
    from pipeline.core.config import Config

    result = validate_file(path, config=Config(outbox=tmp_path / "o"), as_of=AS_OF)
    assert (result.accepted, result.rejected) == (1, 0)


def test_even_a_bug_shows_one_sentence_not_a_traceback(tmp_path):
    import subprocess
    import sys

    code = ("import pipeline.run as run\n"
            "def broken(*args, **kwargs):\n    raise KeyError('internal')\n"
            "run.process_file = broken\n"
            "from pipeline.cli.main import run_cli\nrun_cli()\n")
    proc = subprocess.run([sys.executable, "-c", code, "validate", str(EXAMPLE), "--outbox", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert "internal error (KeyError)" in line
    details = Path(line.rsplit(" in ", 1)[1].rstrip("."))
    assert "Traceback" in details.read_text() and details.stat().st_mode & 0o077 == 0
    details.unlink()


@pytest.mark.parametrize("line, message", [('pdf = "false"', "'pdf' must be true or false"),
                                           ("workers = true", "'workers' must be a whole number")])
def test_config_values_of_the_wrong_kind_are_refused(tmp_path, line, message):
    from pipeline.core.config import load_config
    from pipeline.core.errors import ConfigError

    path = tmp_path / "reintegrate.toml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_notes_right_of_the_table_keep_their_cells_and_the_status_goes_after_them(tmp_path, workbook, valid_row):
    path = workbook([valid_row(seed=1), valid_row(seed=2)])
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    last = ws.max_column
    ws.cell(row=2, column=last + 1, value="note: called mum")
    ws.cell(row=3, column=last + 3, value="chase IPA")
    wb.save(path)
    from pipeline.core.config import Config

    result = validate_file(path, config=Config(outbox=tmp_path / "o"), as_of=AS_OF)
    report = openpyxl.load_workbook(result.run_dir / "validation-report.xlsx")["Referrals"]
    assert report.cell(row=2, column=last + 1).value == "note: called mum"
    assert report.cell(row=3, column=last + 3).value == "chase IPA"
    status = [c.value for c in report[1]].index("Status (reintegrate)") + 1
    assert status > last + 3 and report.cell(row=2, column=status).value == "Accepted"
