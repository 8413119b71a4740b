"""The corpus of bad and awkward inputs (tests/corpus.py), each with its exact outcome: the exit code, the one
sentence on stderr (or the result in summary.json), and where the files went. Never a traceback, never a hang,
never a file outside the run folder (docs/design.md: exit codes, outputs, the watcher)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.read import limits
from pipeline.cli.main import main
from pipeline.core.config import Config
from pipeline.core.errors import InputError
from pipeline.read.referrals import read_referrals
from tests import corpus
from pipeline.write.examples import write_rows
from tests.corpus import COLUMN

AS_OF = "2026-11-30"
PROVISIONAL = ("the term dates for 2026/27 are provisional (not yet confirmed against Havering's published dates): "
               "check school-day counts and review dates before relying on them")
ROOT = Path(__file__).resolve().parent.parent

# builder -> the reason InputError gives (the CLI prints "Error: <file name>: <reason>")
UNREADABLE = {
    corpus.not_a_spreadsheet: "the file is not an Excel workbook despite its name (it may be damaged, or another kind of file renamed)",
    corpus.word_document_renamed: "the file is a zip archive but not an Excel workbook (it may be a Word or other Office file renamed)",
    corpus.empty_file: "the file is empty",
    corpus.truncated: "the workbook is damaged and cannot be opened (it is cut short, or its zip structure is broken)",
    corpus.corrupt_sheet: "the workbook is damaged and cannot be read (a part fails its checksum)",
    corpus.zip_bomb: "the workbook's part xl/worksheets/sheet1.xml unpacks to 300 MB, more than the 256 MB limit; it is not a "
                     "normal referral workbook (it may be a 'zip bomb')",
    corpus.lying_zip: "the workbook is damaged and cannot be read (a part fails its checksum)",
    corpus.password_protected: "the workbook is password-protected: open it in Excel, remove the password (File > Info > Protect "
                               "Workbook > Encrypt with Password) and save it again",
    # an old Excel workbook is read now (python-calamine): this one has no sheet with referrals in it
    corpus.old_xls: "no sheet has a heading row we recognise in its first 10 rows (expected headings such as Referral ID, UPN, Legal surname)",
    corpus.word_97_doc: "this is a Word or PowerPoint file, not a spreadsheet: use .xlsx, .xls, .ods or .csv",
    corpus.duplicate_headings: "sheet 'Referrals': the heading 'UPN' appears more than once (cells B1 and AO1); delete or rename all but one",
    corpus.alias_clash: "sheet 'Referrals': the heading 'Legal surname' appears more than once (cells D1 and AO1); delete or rename all but one",
    corpus.no_heading_row: "no sheet has a heading row we recognise in its first 10 rows (expected headings such as Referral ID, UPN, Legal surname)",
    corpus.doctype_entities: "the workbook is damaged: it holds an XML document type declaration, which Excel never writes",
    corpus.csv_utf16: "the CSV file is in UTF-16 ('Unicode text'): save it from Excel as 'CSV UTF-8'",
    corpus.csv_binary: "the file is not a CSV text file (it holds binary data)",
    corpus.csv_long_line: "line 3 of the CSV file is longer than 1,000,000 characters; it is not a referral spreadsheet",
    corpus.too_many_rows: "sheet 'Referrals' has more than 20,000 referral rows; split it into smaller files",
    corpus.missing_shared_string: "the workbook is damaged: cell A3 refers to a shared string that does not exist",
    corpus.malformed_sheet_xml: "the workbook is damaged and cannot be read (its XML is malformed)",
}


def validate(*paths, outbox: Path, command: str = "validate"):
    return CliRunner().invoke(main, [command, *map(str, paths), "--outbox", str(outbox), "--as-of", AS_OF])


def run_folders(outbox: Path) -> list[Path]:
    return sorted(p for p in outbox.iterdir() if p.is_dir()) if outbox.exists() else []


def summary_of(outbox: Path) -> dict:
    (folder,) = run_folders(outbox)
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


def errors_by_row(summary: dict) -> dict[int, list[tuple[str, str, str]]]:
    """row -> [(rule, cell, message)] of its errors."""
    return {r["row"]: [(i["rule"], i["cell"], i["message"]) for i in r["issues"] if i["severity"] == "error"]
            for r in summary["referrals"] if r["status"] == "rejected"}


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    return folder


# ---------------------------------------------------------------- unreadable: exit 2, one sentence, nothing written
@pytest.mark.timing
@pytest.mark.parametrize("build", list(UNREADABLE), ids=lambda b: b.__name__)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_unreadable_input_is_one_sentence_exit_2_and_nothing_is_written(build, command, inputs, tmp_path):
    path = build(inputs)
    before = {p: p.read_bytes() for p in files_under(inputs)}
    outbox = tmp_path / "outbox"
    started = time.monotonic()
    result = validate(path, outbox=outbox, command=command)
    assert time.monotonic() - started < 20
    assert result.exit_code == 2, result.output
    assert result.stderr == f"Error: {path.name}: {UNREADABLE[build]}\n"
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert run_folders(outbox) == []  # no run folder, no report
    assert {p: p.read_bytes() for p in files_under(inputs)} == before  # the input is where it was, unchanged
    assert files_under(tmp_path) == set(before)  # and nothing was written anywhere else


@pytest.mark.parametrize("build", list(UNREADABLE), ids=lambda b: b.__name__)
def test_the_library_raises_input_error_with_the_same_reason(build, inputs):
    path = build(inputs)
    with pytest.raises(InputError) as raised:
        read_referrals(path)
    assert raised.value.reason == UNREADABLE[build]
    assert str(raised.value) == f"{path.name}: {UNREADABLE[build]}"


@pytest.mark.timing
def test_the_zip_bomb_is_tiny_and_refused_before_it_inflates(inputs):
    path = corpus.zip_bomb(inputs)
    assert path.stat().st_size < 1 << 20
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("xl/worksheets/sheet1.xml").file_size > limits.MAX_SHEET_XML_BYTES
    started = time.monotonic()
    with pytest.raises(InputError):
        read_referrals(path)
    assert time.monotonic() - started < 1


def test_an_xls_saved_with_an_xlsx_name_is_read_as_the_xls_it_is(inputs):
    path = corpus.old_xls(inputs, "referrals.xlsx")
    with pytest.raises(InputError, match=r"no sheet has a heading row we recognise"):  # read, not refused by name
        read_referrals(path)


def test_a_workbook_saved_with_a_csv_name_is_read_as_the_workbook_it_is(inputs):
    path = corpus.valid_workbook(inputs, "referrals.csv")
    assert len(read_referrals(path).rows) == 3


def test_one_unreadable_file_does_not_stop_the_others(inputs, tmp_path):
    bad, good = corpus.password_protected(inputs), corpus.valid_workbook(inputs)
    outbox = tmp_path / "outbox"
    result = validate(bad, good, outbox=outbox)
    assert result.exit_code == 2  # the worst of the files
    assert result.stderr.startswith("Error: password.xlsx: the workbook is password-protected")
    assert summary_of(outbox)["input"] == "referrals.xlsx"


# ---------------------------------------------------------------- a real process: no traceback reaches stderr
@pytest.mark.parametrize("build", [corpus.truncated, corpus.password_protected, corpus.doctype_entities],
                         ids=lambda b: b.__name__)
def test_a_real_process_prints_one_line_and_no_traceback(build, inputs, tmp_path):
    path = build(inputs)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(path), "--outbox", str(tmp_path / "out"),
                           "--as-of", AS_OF], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert proc.stderr == f"Error: {path.name}: {UNREADABLE[build]}\n"
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out").exists() or run_folders(tmp_path / "out") == []


def test_a_million_empty_formatted_rows_read_in_seconds_and_bounded_memory(inputs, tmp_path):
    """The workbook as a real process: time and peak memory (maxrss) of the whole `validate`."""
    path = corpus.million_empty_rows(inputs)
    script = ("import resource, sys, time\n"
              "from pipeline.cli.main import main\n"
              "t = time.monotonic()\n"
              "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
              "print(code, round(time.monotonic() - t, 2), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", script, "validate", str(path), "--outbox", str(tmp_path / "out"),
                           "--as-of", AS_OF], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    code, seconds, maxrss_kb = proc.stderr.splitlines()[-1].split()
    assert int(code) == 0
    assert float(seconds) < 15  # about 2 s on the 2-core machine
    assert int(maxrss_kb) < 250 * 1024  # MB: the sheet is 100 MB of XML
    assert "Traceback" not in proc.stdout + proc.stderr
    (folder,) = run_folders(tmp_path / "out")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert (summary["rows"], summary["accepted"], summary["rejected"]) == (3, 3, 0)


# ---------------------------------------------------------------- readable: the correct result
@pytest.mark.timing
def test_million_empty_formatted_rows_give_the_three_referrals(inputs, tmp_path):
    path = corpus.million_empty_rows(inputs)
    started = time.monotonic()
    sheet = read_referrals(path)
    assert time.monotonic() - started < 10
    assert [r.number for r in sheet.rows] == [2, 3, 4]
    assert sheet.file_issues == []


def test_cells_far_apart_do_not_blow_up_the_range(inputs, tmp_path):
    path = corpus.far_apart_cells(inputs)
    outbox = tmp_path / "outbox"
    result = validate(path, outbox=outbox)
    assert result.exit_code == 0, result.output
    summary = summary_of(outbox)
    assert (summary["rows"], summary["accepted"]) == (3, 3)
    assert summary["file_issues"][0]["message"] == ("sheet 'Referrals': cells beyond column IV (the first at XFD1048576) were "
                                                    "ignored; keep referrals in the first 256 columns")


def test_xlsm_macros_are_never_opened_and_never_copied(inputs, tmp_path, monkeypatch):
    path = corpus.macro_workbook(inputs)
    with zipfile.ZipFile(path) as zf:
        assert "xl/vbaProject.bin" in zf.namelist()
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    outbox = tmp_path / "outbox"
    result = validate(path, outbox=outbox)
    assert result.exit_code == 0, result.output
    assert summary_of(outbox)["accepted"] == 2
    read = [n for n in opened if not str(n).startswith(str(outbox))]
    assert "xl/worksheets/sheet1.xml" in read
    assert not [n for n in read if "vba" in str(n).lower()]
    monkeypatch.undo()
    (folder,) = run_folders(outbox)
    with zipfile.ZipFile(folder / "validation-report.xlsx") as zf:
        assert not [n for n in zf.namelist() if "vba" in n.lower()]


def test_windows_1252_csv_is_read_with_its_accents_and_a_warning(inputs, tmp_path):
    path = corpus.csv_windows_1252(inputs)
    sheet = read_referrals(path)
    assert [(r.values["Legal forename"], r.values["Legal surname"]) for r in sheet.rows] == [
        ("Zoë", "Müller-Núñez"), ("Chloé", "O’Brien")]
    outbox = tmp_path / "outbox"
    result = validate(path, outbox=outbox)
    assert result.exit_code == 0, result.output
    summary = summary_of(outbox)
    assert summary["accepted"] == 2
    assert summary["file_issues"][0]["message"] == ("the CSV file is not UTF-8; it was read as Windows-1252 (save it as "
                                                    "'CSV UTF-8' to be sure accents are right)")


def test_utf8_csv_with_a_bom_matches_its_first_heading(inputs):
    sheet = read_referrals(corpus.csv_utf8_bom(inputs))
    assert "referral_id" in sheet.columns and sheet.file_issues == []
    assert sheet.rows[0].values["Legal forename"] == "Zoë"


def test_a_heading_row_only_is_zero_rows_exit_0_and_a_warning(inputs, tmp_path):
    outbox = tmp_path / "outbox"
    result = validate(corpus.headings_only(inputs), outbox=outbox)
    assert result.exit_code == 0
    summary = summary_of(outbox)
    assert (summary["rows"], summary["accepted"], summary["rejected"]) == (0, 0, 0)
    assert [i["message"] for i in summary["file_issues"]] == [
        "sheet 'Referrals' has a heading row (row 1) but no referral rows below it"]
    assert "Traceback" not in result.output


def test_formula_and_error_cells(inputs, tmp_path):
    outbox = tmp_path / "outbox"
    result = validate(corpus.formulas_and_errors(inputs), outbox=outbox)
    assert result.exit_code == 1
    summary = summary_of(outbox)
    accepted = [r["referral_id"] for r in summary["referrals"] if r["status"] == "accepted"]
    assert accepted == ["HAV-00001"]  # the formula's saved result
    assert errors_by_row(summary) == {
        3: [("schema", "B3", "UPN is required but the cell is blank (cell B3, UPN)")],
        4: [("schema", f"{COLUMN['Date of birth']}4", "the cell holds the Excel error #REF! (a broken formula): type the "
                                                      f"value in (cell {COLUMN['Date of birth']}4, Date of birth)"),
            ("schema", f"{COLUMN['Decision date']}4", "the cell holds the Excel error #N/A (a broken formula): type the "
                                                      f"value in (cell {COLUMN['Decision date']}4, Decision date)")],
    }
    assert summary["file_issues"][0]["message"] == (
        "sheet 'Referrals': cell B3 holds a formula with no saved result (the file was not last saved by Excel), so it "
        "was read as blank; open the file in Excel, save it and try again")


def test_merged_cells_are_named_and_the_blank_row_is_located(inputs, tmp_path):
    outbox = tmp_path / "outbox"
    result = validate(corpus.merged_cells(inputs), outbox=outbox)
    assert result.exit_code == 1
    summary = summary_of(outbox)
    s = COLUMN["Receiving school"]
    assert errors_by_row(summary) == {3: [("schema", f"{s}3", f"Receiving school is required but the cell is blank (cell {s}3, Receiving school)")]}
    assert summary["file_issues"][0]["message"] == (
        f"sheet 'Referrals': cells {s}2:{s}3 are merged; only the first cell of a merged area holds its value, so the "
        "others were read as blank; unmerge them and fill in every row")


def test_dates_as_numbers_and_as_text(inputs, tmp_path):
    outbox = tmp_path / "outbox"
    result = validate(corpus.dates_as_numbers_and_text(inputs), outbox=outbox)
    assert result.exit_code == 1
    summary = summary_of(outbox)
    assert [r["status"] for r in summary["referrals"]] == ["accepted", "accepted", "rejected", "rejected"]
    dob, decided = COLUMN["Date of birth"], COLUMN["Decision date"]
    assert errors_by_row(summary) == {
        4: [("schema", f"{dob}4", "the value has a two-digit year: write the year in full (e.g. 03/09/2024) "
                                  f"(cell {dob}4, Date of birth)")],
        5: [("schema", f"{decided}5", f"'31/02/2027' is not a real date: February 2027 has no day 31 (cell {decided}5, "
                                      "Decision date)")],
    }


def test_serial_and_text_dates_read_as_the_same_dates(inputs):
    path = corpus.dates_as_numbers_and_text(inputs)
    from pipeline.check.rules import RuleContext, check_sheet
    from pipeline.check.calendar import SchoolCalendar

    results = check_sheet(read_referrals(path), RuleContext(SchoolCalendar.load(), date(2026, 11, 30)))
    original = corpus.rows(4)
    for result, row in zip(results[:2], original[:2]):
        assert result.referral.date_of_birth == row["Date of birth"]
        assert result.referral.planned_return_date == row["Planned return date"]
        assert result.referral.decision_date == row["Decision date"]


def test_awkward_names_are_kept_and_file_names_stay_in_the_run_folder(inputs, tmp_path):
    path = corpus.awkward_names(inputs)
    outbox = tmp_path / "outbox"
    result = validate(path, outbox=outbox, command="run")
    assert result.exit_code == 0, result.output
    (folder,) = run_folders(outbox)
    written = files_under(tmp_path) - files_under(inputs)
    assert all(p.resolve().is_relative_to(outbox.resolve()) for p in written)
    # beside the run folders only the ledger and the term register it makes (docs/term-register.md)
    assert {p for p in written if not p.resolve().is_relative_to(folder.resolve())} == {
        outbox / "ledger.sqlite3", outbox / "term-register.xlsx"}
    summary = summary_of(outbox)
    plans = [r["plan"] for r in summary["referrals"]]
    assert plans == ["plans/HAV-0001_O'Brien_Siobhán.docx", "plans/HAV-0002_الحسن_مريم.docx",
                     "plans/HAV-0003_Nguyễn_Zoë-🙂.docx", "plans/escape_etc-passwd_unnamed.docx",
                     "plans/_CON__AUX.txt__NUL.docx", "plans/HAV-0006_C-Windows-x_Amy.docx"]
    for plan in plans:
        assert (folder / plan).is_file() and (folder / plan).parent == folder / "plans"
    # the names themselves reach the plan unchanged
    import docx

    text = "\n".join(p.text for p in docx.Document(folder / plans[1]).paragraphs)
    assert "مريم" in text and "الحسن" in text
    text = "\n".join(p.text for p in docx.Document(folder / plans[0]).paragraphs)
    assert "Siobhán" in text and "O'Brien" in text


def test_ten_thousand_character_cells_are_read_up_to_excels_limit(inputs, tmp_path):
    """Text cells hold up to Excel's own 32,767 characters; the text is never echoed."""
    outbox = tmp_path / "outbox"
    result = validate(corpus.long_cells(inputs), outbox=outbox)
    assert result.exit_code == 0, result.output
    assert errors_by_row(summary_of(outbox)) == {}
    assert "A" * 100 not in result.output


def test_a_number_typed_into_a_date_formatted_cell_is_located_not_a_crash(inputs, tmp_path):
    """Found by the fuzzer: a date in Review frequency (weeks) raised TypeError inside the validator."""
    outbox = tmp_path / "outbox"
    result = validate(corpus.date_in_number_column(inputs), outbox=outbox)
    assert result.exit_code == 1, result.output
    cell = f"{COLUMN['Review frequency (weeks)']}2"
    assert errors_by_row(summary_of(outbox)) == {2: [(
        "schema", cell, "the cell holds a date, not a whole number: format the cell as Number and type the number "
                        f"again (cell {cell}, Review frequency (weeks))")]}


# ---------------------------------------------------------------- the inbox: failed/ with the sentence beside it
def test_the_inbox_moves_unreadable_files_to_failed_with_the_sentence(tmp_path):
    from pipeline.watch import watch

    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    bad = [corpus.password_protected(inbox), corpus.truncated(inbox), corpus.zip_bomb(inbox)]
    (inbox / "whole.xlsx").unlink()  # the truncated builder's source
    good = corpus.valid_workbook(inbox)
    lines = []
    code = watch(Config(inbox=inbox, outbox=outbox), once=True, settle=0.0, grace=0.0, as_of=date(2026, 11, 30),
                 documents=False, log=lines.append)
    assert code == 2
    for path in bad:
        assert not path.exists()
        assert (inbox / "failed" / path.name).is_file()
        note = (inbox / "failed" / f"{path.name}.error.txt").read_text(encoding="utf-8")
        assert note.strip() == f"{path.name}: {UNREADABLE[getattr(corpus, _builder_of(path.name))]}"
    assert not good.exists()
    (processed,) = [p for p in (inbox / "processed").iterdir() if p.name != "duplicates"]
    assert (processed / "referrals.xlsx").is_file() and (outbox / processed.name / "summary.json").is_file()


def _builder_of(name: str) -> str:
    return {"password.xlsx": "password_protected", "truncated.xlsx": "truncated", "zip-bomb.xlsx": "zip_bomb"}[name]


# ---------------------------------------------------------------- found here, for their owners to fix
def test_an_input_sheet_named_issues_is_validated(inputs, tmp_path):
    path = write_rows(inputs / "issues.xlsx", corpus.rows(2), sheet="Issues")
    result = validate(path, outbox=tmp_path / "outbox")
    assert result.exit_code == 0, result.output
    assert summary_of(tmp_path / "outbox")["accepted"] == 2


@pytest.mark.parametrize("name", ["referrals [final].csv", "'spring'.csv"])
def test_a_csv_whose_name_is_not_a_valid_sheet_name_is_validated(inputs, tmp_path, name):
    path = inputs / name
    path.write_bytes(corpus.csv_utf8_bom(inputs).read_bytes())
    result = validate(path, outbox=tmp_path / "outbox")
    assert result.exit_code == 0, result.output
    assert summary_of(tmp_path / "outbox")["accepted"] == 2
