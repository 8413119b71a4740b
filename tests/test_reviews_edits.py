"""`reintegrate reviews` keeps the officer's own edits: the plan is edited the way Word saves it (python-docx:
added paragraphs, a changed table cell, a comment, bold text), the tracker filled, and the reviewed version
checked for both the edits and the recorded reviews. Also: nothing new when nothing new was recorded; a tracker
that cannot be tied to its run's pupils is refused, writing nothing."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import docx
import openpyxl
import pytest
from click.testing import CliRunner

from pipeline.cli.main import main
from pipeline.core.config import Config
from pipeline.deliver.send import send_run
from pipeline.deliver.settings import EmailSettings
from pipeline.write.plan_record import newest_plan
from pipeline.reviews import TrackerMismatchError, review_tracker, reviewed_plan_name
from tests.test_reviews import AFTER, fill, open_tracker, record_table, sha  # noqa: F401
from tests.test_reviews import make_run  # noqa: F401 (a fixture)

LATER = date(2027, 6, 8)
NOTE = "Agreed at the planning meeting: Amara may use the library at lunchtime."


def edit_like_word(path: Path) -> None:
    """What an officer does in Word before sending: a new paragraph, a changed cell, a comment, bold text."""
    document = docx.Document(str(path))
    paragraph = document.add_paragraph()
    paragraph.add_run(NOTE).bold = True
    key_worker = next(t for t in document.tables if any("Key worker" in c.text for c in t.rows[0].cells)
                      or any("Key worker" in c.text for r in t.rows for c in r.cells))
    cell = next(c for r in key_worker.rows for c in r.cells if c.text.strip() == "Key worker")
    row = next(r for r in key_worker.rows if cell._tc in [c._tc for c in r.cells])
    value = row.cells[[c._tc for c in row.cells].index(cell._tc) + 1]
    value.paragraphs[0].runs[0].text = "Ms P Shah (changed at the meeting)"
    document.add_comment(paragraph.runs[0], text="Check with the SENCo", author="Priya Shah", initials="PS")
    document.save(str(path))


def texts(path: Path) -> str:
    document = docx.Document(str(path))
    cells = [c.text for t in document.tables for r in t.rows for c in r.cells]
    return "\n".join([p.text for p in document.paragraphs] + cells)


@pytest.fixture
def edited(make_run):  # noqa: F811
    run_dir, manifest = make_run(2)
    entry = manifest["referrals"][0]
    plan = run_dir / entry["plan"]
    edit_like_word(plan)
    return run_dir, manifest, entry["referral_id"], plan


def test_the_officers_word_edits_survive_every_review(edited):
    run_dir, manifest, a, plan = edited
    edited_bytes = plan.read_bytes()
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    fill(ws, a, 1, "Held", "Settling well.", "Keep the timetable.")
    wb.save(tracker)
    report = review_tracker(tracker, as_of=AFTER)
    reviewed = run_dir / reviewed_plan_name(manifest["referrals"][0]["plan"], AFTER)
    assert report.plans_written == [reviewed.relative_to(run_dir).as_posix()]
    assert plan.read_bytes() == edited_bytes  # the officer's file is never changed
    text = texts(reviewed)
    assert NOTE in text and "Ms P Shah (changed at the meeting)" in text
    document = docx.Document(str(reviewed))
    assert [c.text for c in document.comments] == ["Check with the SENCo"]
    assert any(r.bold and r.text == NOTE for p in document.paragraphs for r in p.runs)
    assert record_table(reviewed)[0][2:] == ["Held", "Settling well.", "Keep the timetable."]
    assert report.pupils[0].version == "kept"

    # the officer edits the reviewed version too; the next review starts from it
    document.add_paragraph("Second meeting: transport sorted.")
    document.save(str(reviewed))
    wb, ws = open_tracker(tracker)
    fill(ws, a, 2, "Missed")
    wb.save(tracker)
    second = review_tracker(tracker, as_of=LATER)
    newer = run_dir / reviewed_plan_name(manifest["referrals"][0]["plan"], LATER)
    assert second.plans_written == [newer.relative_to(run_dir).as_posix()] and newest_plan(plan) == newer
    text = texts(newer)
    assert NOTE in text and "Second meeting: transport sorted." in text
    assert [r[2] for r in record_table(newer)][:2] == ["Held", "Missed"]
    assert [c.text for c in docx.Document(str(newer)).comments] == ["Check with the SENCo"]


def test_a_second_reviews_with_nothing_new_writes_and_sends_nothing(edited, tmp_path):
    run_dir, manifest, a, plan = edited
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    fill(ws, a, 1, "Held", "Settling well.")
    wb.save(tracker)
    assert len(review_tracker(tracker, as_of=AFTER).plans_written) == 1
    domains = sorted({e[k].split("@")[1] for e in manifest["referrals"]
                      for k in ("receiving_school_email", "inclusions_officer_email")})
    settings = EmailSettings.from_config({"allowed_domains": domains}, env={})
    from pipeline.core.ledger import Ledger

    with Ledger(run_dir.parent / "ledger.sqlite3") as ledger:
        first = send_run(run_dir, settings, ledger)
        before = sorted(p.name for p in (run_dir / "plans").iterdir())
        again = review_tracker(tracker, as_of=LATER)  # another day, nothing new recorded
        assert again.plans_written == [] and again.pupils[0].version == "unchanged"
        assert "left as it was: no review recorded since the last `reviews`" in "\n".join(again.lines())
        assert sorted(p.name for p in (run_dir / "plans").iterdir()) == before
        second = send_run(run_dir, settings, ledger)
    assert len(first.drafted) == 2, first.lines()
    assert not second.drafted and len(second.skipped) == 2


def test_a_plan_whose_record_table_is_gone_is_made_afresh_and_the_command_says_so(edited):
    run_dir, manifest, a, plan = edited
    document = docx.Document(str(plan))
    for table in document.tables:
        if [c.text for c in table.rows[0].cells][:3] == ["Review", "Date", "Status"]:
            table._tbl.getparent().remove(table._tbl)
    document.save(str(plan))
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    fill(ws, a, 1, "Held", "Settling well.")
    wb.save(tracker)
    report = review_tracker(tracker, as_of=AFTER)
    reviewed = run_dir / report.plans_written[0]
    assert report.pupils[0].version == "afresh"
    assert record_table(reviewed)[0][2:4] == ["Held", "Settling well."]
    assert NOTE not in texts(reviewed)
    line = next(line for line in report.lines() if line.startswith(f"  {a}: ") and "afresh" in line)
    assert "edits made in Word are not in it" in line


def test_a_restructured_record_table_is_filled_by_its_headings(edited):
    run_dir, manifest, a, plan = edited
    document = docx.Document(str(plan))
    table = next(t for t in document.tables if [c.text for c in t.rows[0].cells][:3] == ["Review", "Date", "Status"])
    for row in table.rows:  # the officer renames Next steps to Attendees, and swaps Status and Outcome's text
        cells = row.cells
        if cells[4].text == "Next steps":
            cells[4].paragraphs[0].runs[0].text = "Attendees"
    document.save(str(plan))
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    fill(ws, a, 1, "Held", "Settling well.", "Phone the parent")
    wb.save(tracker)
    report = review_tracker(tracker, as_of=AFTER)
    reviewed = run_dir / report.plans_written[0]
    document = docx.Document(str(reviewed))
    table = next(t for t in document.tables if [c.text for c in t.rows[0].cells][:3] == ["Review", "Date", "Status"])
    assert [c.text for c in table.rows[0].cells] == ["Review", "Date", "Status", "Outcome", "Attendees"]
    assert [c.text for c in table.rows[1].cells][2:] == ["Held", "Settling well.", ""]
    assert any("no Next Steps column" in note for note in report.pupils[0].notes)


def test_a_tracker_copied_into_another_runs_folder_is_refused_writing_nothing(make_run, tmp_path):  # noqa: F811
    first_dir, first = make_run(2)
    second_dir, second = make_run(2)
    copied = second_dir / "review-tracker (copy).xlsx"
    shutil.copy(first_dir / "review-tracker.xlsx", copied)  # its run id says the first run
    wb, ws = open_tracker(copied)
    fill(ws, first["referrals"][0]["referral_id"], 1, "Held", "Notes")
    wb.save(copied)
    before = {d: sorted(p.name for p in (d / "plans").iterdir()) for d in (first_dir, second_dir)}
    result = CliRunner().invoke(main, ["reviews", str(copied), "--as-of", AFTER.isoformat(),
                                       "--outbox", str(first_dir.parent)])
    assert result.exit_code == 2, result.output
    assert f"belongs to run {first['run_id']} but sits in the folder of run {second['run_id']}" in result.output
    assert "Traceback" not in result.output
    assert {d: sorted(p.name for p in (d / "plans").iterdir()) for d in before} == before


def test_a_tracker_without_its_pupil_column_is_refused(make_run):  # noqa: F811
    run_dir, manifest = make_run(2)
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    fill(ws, manifest["referrals"][0]["referral_id"], 1, "Held", "Notes")
    ws.delete_cols(2)  # Pupil
    wb.save(tracker)
    with pytest.raises(TrackerMismatchError, match="no 'Pupil' column"):
        review_tracker(tracker, as_of=AFTER)
    assert not list((run_dir / "plans").glob("*.reviewed-*"))


def test_a_reviewed_plan_gets_its_pdf_copy_when_pdf_is_on(edited, monkeypatch):
    from pipeline.deliver.pdf import find_soffice

    if find_soffice() is None:
        pytest.skip("LibreOffice is not installed here (CI installs it)")
    run_dir, manifest, a, plan = edited
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    fill(ws, a, 1, "Held", "Settling well.")
    wb.save(tracker)
    report = review_tracker(tracker, as_of=AFTER, config=Config(outbox=run_dir.parent, pdf=True))
    reviewed = run_dir / report.plans_written[0]
    pdf = reviewed.with_suffix(".pdf")
    assert report.pdf_failed == () and pdf.read_bytes().startswith(b"%PDF")
    assert pdf.stat().st_mode & 0o077 == 0


def test_reviews_outbox_reminds_of_an_earlier_runs_tracker_in_use(make_run):  # noqa: F811
    first_dir, first = make_run(1)
    tracker = first_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    fill(ws, first["referrals"][0]["referral_id"], 1, "Held", "Settling well.")
    wb.save(tracker)
    review_tracker(tracker, as_of=AFTER)
    second_dir, _ = make_run(1)  # the workbook run again after a fix: a fresh tracker
    result = CliRunner().invoke(main, ["reviews", str(first_dir.parent), "--as-of", AFTER.isoformat()])
    assert f"Using the newest run folder with documents: {second_dir.parent.name}/{second_dir.name}" in result.output \
        or second_dir.name in result.output
    assert f"Note: the earlier run {first_dir.name} has reviews recorded in its own tracker" in result.output
