"""`reintegrate reviews`: a real run's tracker, filled in with openpyxl the way an officer would, read back."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date, datetime
from pathlib import Path

import docx
import openpyxl
import pytest
from click.testing import CliRunner

from pipeline.cli.main import main
from pipeline.core.config import Config
from pipeline.core.errors import InputError
from pipeline.write.plan_record import newest_plan
from pipeline.reviews import (STATE_FILE, TrackerMismatchError, UnknownRunError, read_tracker, review_tracker,
                              reviewed_plan_name)
from pipeline.run import run_file
from schemas.tracker import parse_review_number, parse_status

RUN_AS_OF = date(2026, 11, 30)
AFTER = date(2027, 6, 1)  # after every review and every settling-in period of the example rows
SCHEDULE = {"Review frequency (weeks)": 2, "Settling-in period (weeks)": 6}  # three reviews each


@pytest.fixture
def make_run(tmp_path, valid_row, workbook):
    """A real run of `n` pupils (3 reviews each): (run_dir, manifest)."""

    def make(n: int = 3):
        rows = [valid_row(seed, **SCHEDULE) for seed in range(1, n + 1)]
        result = run_file(workbook(rows), config=Config(outbox=tmp_path / "outbox"), as_of=RUN_AS_OF)
        assert result.accepted == n
        manifest = json.loads((result.run_dir / "manifest.json").read_text(encoding="utf-8"))
        return result.run_dir, manifest

    return make


# ------------------------------------------------------------------------------------- officer helpers

def open_tracker(path):
    wb = openpyxl.load_workbook(path)
    return wb, wb["Reviews"]


def find_row(ws, referral_id, review) -> int:
    for r in range(2, ws.max_row + 1):
        if ws.cell(r, 1).value == referral_id and ws.cell(r, 5).value == review:
            return r
    raise AssertionError(f"no row for {referral_id} review {review}")


def fill(ws, referral_id, review, status=None, outcome=None, next_steps=None, when=None):
    r = find_row(ws, referral_id, review)
    if status is not None:
        ws.cell(r, 7).value = status
    if outcome is not None:
        ws.cell(r, 8).value = outcome
    if next_steps is not None:
        ws.cell(r, 9).value = next_steps
    if when is not None:
        ws.cell(r, 6).value = when
    return r


def resort(ws, key, reverse=False):
    """Sort the data rows as Excel's Sort would: values move, headings stay."""
    width = ws.max_column
    rows = [[ws.cell(r, c).value for c in range(1, width + 1)] for r in range(2, ws.max_row + 1)]
    rows = [row for row in rows if any(v is not None for v in row)]
    rows.sort(key=key, reverse=reverse)
    for r in range(2, ws.max_row + 1):
        for c in range(1, width + 1):
            ws.cell(r, c).value = None
    for r, row in enumerate(rows, start=2):
        for c, value in enumerate(row, start=1):
            ws.cell(r, c).value = value


def record_table(path):
    """The plan's review record table (headings Review, Date, Status, Outcome, Next steps) as text."""
    document = docx.Document(path)
    for table in document.tables:
        head = [c.text for c in table.rows[0].cells]
        if head == ["Review", "Date", "Status", "Outcome", "Next steps"]:
            return [[c.text for c in row.cells] for row in table.rows[1:]]
    raise AssertionError("no review record table")


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------- the whole flow

def test_officer_filled_tracker_is_reported_and_recorded_in_new_plans(make_run):
    run_dir, manifest = make_run(3)
    a, b, c = (e["referral_id"] for e in manifest["referrals"])
    tracker = run_dir / "review-tracker.xlsx"
    originals = {e["plan"]: sha(run_dir / e["plan"]) for e in manifest["referrals"]}
    wb, ws = open_tracker(tracker)
    # pupil A: typed status in another case with spaces, an outcome and next steps; review 2 missed; review 3's row deleted
    fill(ws, a, 1, "  hELD ", "Settling well; attendance 100%.", "Keep the phased timetable\nuntil half-term.")
    fill(ws, a, 2, "Missed")
    ws.delete_rows(find_row(ws, a, 3))
    # pupil B: drop-down values, one cancelled, and an extra review added at the bottom, date typed as text
    fill(ws, b, 1, "Held", "Anxious at lunchtimes.", "Lunchtime club from Monday.")
    fill(ws, b, 2, "CANCELLED", "School closed (snow).")
    fill(ws, b, 3, "held", "Much calmer.")
    extra = ws.max_row + 1
    for col, value in enumerate((b, "", None, None, None, "10/03/2027", "Held", "Parent asked for a meeting.",
                                 "Review again after Easter."), start=1):
        ws.cell(extra, col).value = value or None
    # pupil C: nothing recorded. The officer adds a column and sorts the sheet by date, newest first
    ws.cell(1, 10).value = "Officer's own notes"
    ws.cell(2, 10).value = "ring Mrs Osei"
    before = [(ws.cell(r, 1).value, ws.cell(r, 5).value) for r in range(2, ws.max_row + 1)]
    resort(ws, key=lambda row: row[5] if isinstance(row[5], datetime) else datetime(2027, 3, 10), reverse=True)
    after = [(ws.cell(r, 1).value, ws.cell(r, 5).value) for r in range(2, ws.max_row + 1)]
    assert sorted(after, key=str) == sorted(before, key=str) and after != before  # really re-sorted
    ws.auto_filter.ref = f"A1:J{ws.max_row}"  # and filtered to pupil A: the other rows are hidden, not gone
    for r in range(2, ws.max_row + 1):
        ws.row_dimensions[r].hidden = ws.cell(r, 1).value != a
    wb.save(tracker)

    report = review_tracker(tracker, as_of=AFTER)

    assert report.run_id == manifest["run_id"] and report.run_dir == run_dir
    assert report.exit_code == 1
    by_id = {p.referral_id: p for p in report.pupils}
    pa, pb, pc = by_id[a], by_id[b], by_id[c]
    # A: review 2 missed and never made up, review 3 not recorded (row deleted): both overdue; 1 of 3 held
    assert [(r.number, r.status) for r in pa.overdue] == [(2, "Missed"), (3, "Scheduled")]
    assert len(pa.held) == 1 and pa.shortfall
    # B: nothing overdue: review 2 cancelled, an extra review held; 3 held of 3 scheduled
    assert pb.overdue == [] and [r.number for r in pb.cancelled] == [2]
    assert [(r.number, r.date, r.status) for r in pb.reviews if r.number is None] == [(None, date(2027, 3, 10), "Held")]
    assert len(pb.held) == 3 and not pb.shortfall
    # C: every review overdue, settling-in over with none held
    assert [r.number for r in pc.overdue] == [1, 2, 3] and pc.shortfall and not pc.recorded
    assert report.exit_code == 1

    messages = [i.message for i in report.issues]
    assert any(f"review 3 of {a}" in m and "no row" in m for m in messages)  # the deleted row: a warning
    unknown = [i for i in report.issues if i.column == "Officer's own notes"]
    assert unknown and unknown[0].severity == "warning" and unknown[0].cell == "J1"
    assert not [i for i in report.issues if i.is_error]

    text = "\n".join(report.lines())
    assert f"{a}: overdue review 2" in text and f"{c}: overdue review 1" in text
    assert f"{b}: cancelled review 2" in text
    assert "settling-in period ended" in text
    for e in manifest["referrals"]:  # the report names no pupil
        assert e["referral"]["legal_surname"] not in text

    # new plan versions beside the originals, for the pupils with recorded reviews only; originals untouched
    plans = {e["referral_id"]: e["plan"] for e in manifest["referrals"]}
    assert sorted(report.plans_written) == sorted(reviewed_plan_name(plans[x], AFTER) for x in (a, b))
    assert all(sha(run_dir / plan) == digest for plan, digest in originals.items())
    assert not list((run_dir / "plans").glob(Path(plans[c]).stem + ".reviewed-*"))
    reviewed_a = run_dir / reviewed_plan_name(plans[a], AFTER)
    assert reviewed_a.name.endswith(".reviewed-2027-06-01.docx")
    assert newest_plan(run_dir / plans[a]) == reviewed_a  # what `send` attaches

    dates_a = [date.fromisoformat(d) for d in manifest["referrals"][0]["reviews"]]
    rows_a = record_table(reviewed_a)
    assert [r[0] for r in rows_a] == ["1", "2", "3"]
    assert rows_a[0][2:] == ["Held", "Settling well; attendance 100%.", "Keep the phased timetable\nuntil half-term."]
    assert rows_a[0][1].endswith(f"{dates_a[0].day} {dates_a[0]:%B %Y}")
    assert rows_a[1][2:] == ["Missed", "", ""]
    assert rows_a[2][2] == "Not recorded"
    rows_b = record_table(run_dir / reviewed_plan_name(plans[b], AFTER))
    assert [r[2] for r in rows_b] == ["Held", "Cancelled", "Held", "Held"]
    assert rows_b[1][3] == "School closed (snow)."
    assert rows_b[3] == ["Extra", "Wednesday 10 March 2027", "Held", "Parent asked for a meeting.",
                         "Review again after Easter."]
    body = "\n".join(p.text for p in docx.Document(reviewed_a).paragraphs)
    assert "Prepared Monday 30 November 2026" in body  # the plan as prepared: only its review record changed
    assert "ring Mrs Osei" not in body

    state = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
    assert state["run_id"] == manifest["run_id"] and state["as_of"] == "2027-06-01"
    assert state["totals"]["overdue"] == 5 and state["totals"]["plans_written"] == 2
    assert state["totals"]["settling_in_shortfall"] == 2
    sa = next(p for p in state["referrals"] if p["referral_id"] == a)
    assert sa["held"] == 1 and sa["shortfall"] and sa["reviewed_plan"] == reviewed_plan_name(plans[a], AFTER)
    assert [r["status"] for r in sa["reviews"]] == ["Held", "Missed", "Scheduled"]
    assert sa["reviews"][2]["tracker_row"] is None and sa["reviews"][2]["overdue"]
    assert (run_dir / STATE_FILE).stat().st_mode & 0o077 == 0
    assert reviewed_a.stat().st_mode & 0o077 == 0


def test_everything_held_exits_0(make_run):
    run_dir, manifest = make_run(2)
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    for r in range(2, ws.max_row + 1):
        ws.cell(r, 7).value = "Held"
        ws.cell(r, 8).value = f"Outcome {r}"
    wb.save(tracker)
    report = review_tracker(tracker, as_of=AFTER)
    assert report.exit_code == 0 and report.overdue == [] and not any(p.shortfall for p in report.pupils)
    assert len(report.plans_written) == 2 and report.issues == []


def test_missed_review_made_up_by_a_later_held_review_is_not_overdue(make_run):
    run_dir, manifest = make_run(1)
    a = manifest["referrals"][0]["referral_id"]
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    fill(ws, a, 1, "Missed", "Pupil absent.")
    fill(ws, a, 2, "Held")
    fill(ws, a, 3, "Cancelled")
    wb.save(tracker)
    report = review_tracker(tracker, as_of=AFTER)
    assert report.overdue == [] and report.exit_code == 0
    assert report.pupils[0].shortfall  # 1 of 3 held once settling-in is over
    assert "missed review 1" in "\n".join(report.lines())


def test_before_the_reviews_nothing_is_overdue_and_a_future_held_review_is_a_warning(make_run):
    run_dir, manifest = make_run(1)
    entry = manifest["referrals"][0]
    a, first = entry["referral_id"], date.fromisoformat(entry["reviews"][0])
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    fill(ws, a, 2, "Held")  # dated after the as-of date
    ws.cell(find_row(ws, a, 1), 7).value = None  # blank status = Scheduled
    wb.save(tracker)
    as_of = date(first.year, first.month, first.day)
    report = review_tracker(tracker, as_of=as_of)
    assert report.overdue == [] and report.exit_code == 0
    assert not report.pupils[0].settling_in_over
    warning = [i for i in report.issues if i.column == "Date"]
    assert warning and warning[0].severity == "warning" and "check the date" in warning[0].message
    assert warning[0].cell == f"F{find_row(ws, a, 2)}"
    # the day after the first review, a review still Scheduled is overdue
    later = review_tracker(tracker, as_of=date.fromordinal(as_of.toordinal() + 1))
    assert [(x, r.number) for x, r in later.overdue] == [(a, 1)] and later.exit_code == 1


def test_a_status_that_is_not_a_status_is_a_located_error_and_the_review_is_not_recorded(make_run):
    run_dir, manifest = make_run(1)
    a = manifest["referrals"][0]["referral_id"]
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    row = fill(ws, a, 1, "Helf", "Went well")
    fill(ws, a, 2, "Held", "Fine")
    wb.save(tracker)
    report = review_tracker(tracker, as_of=AFTER)
    errors = [i for i in report.issues if i.is_error]
    assert len(errors) == 1
    error = errors[0]
    assert (error.rule, error.column, error.cell, error.row, error.value) == ("schema", "Status", f"G{row}", row, "Helf")
    assert "sheet 'Reviews', cell G" in error.message and "not a review status" in error.message
    assert report.exit_code == 1 and report.rejected_rows == [row]
    # not a second "no row" warning for the rejected review
    assert not any("no row" in i.message for i in report.issues)
    rows = record_table(run_dir / report.plans_written[0])
    assert rows[0][2] == "Not recorded" and rows[1][2:4] == ["Held", "Fine"]


def test_a_row_whose_pupil_is_not_the_referral_refuses_the_tracker(make_run):
    run_dir, manifest = make_run(2)
    a, b = (e["referral_id"] for e in manifest["referrals"])
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    fill(ws, b, 1, "Held", "Notes about pupil B")
    row = fill(ws, a, 1, "Held", "Notes about pupil A")
    ws.cell(row, 1).value = b  # a mistyped Referral ID: would put A's notes in B's plan
    wb.save(tracker)
    before = sorted(p.name for p in (run_dir / "plans").iterdir())
    with pytest.raises(TrackerMismatchError, match=f"row {row}'s Pupil cell \\(B{row}\\) does not match"):
        review_tracker(tracker, as_of=AFTER)
    assert sorted(p.name for p in (run_dir / "plans").iterdir()) == before  # nothing written for anyone


def test_duplicated_rows(make_run):
    run_dir, manifest = make_run(1)
    a = manifest["referrals"][0]["referral_id"]
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    row = fill(ws, a, 1, "Held", "Good")
    copy = ws.max_row + 1
    for col in range(1, 10):
        ws.cell(copy, col).value = ws.cell(row, col).value
    wb.save(tracker)
    same = review_tracker(tracker, as_of=AFTER)
    assert [i.rule for i in same.issues if i.row == copy] == ["duplicate"]
    assert not any(i.is_error for i in same.issues) and len(same.pupils[0].held) == 1

    ws.cell(copy, 8).value = "Different"
    wb.save(tracker)
    differ = review_tracker(tracker, as_of=AFTER)
    assert sorted(i.row for i in differ.issues if i.is_error) == [row, copy]
    assert differ.pupils[0].held == [] and differ.exit_code == 1


def test_read_tracker_on_its_own(make_run):
    run_dir, manifest = make_run(1)
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    ws.insert_rows(1)  # a title row above the headings
    ws.cell(1, 1).value = "Reviews: spring 2027"
    ws.cell(3, 5).value = "Review 1"
    ws.cell(3, 7).value = " cancelled "
    wb.save(tracker)
    read = read_tracker(tracker)
    assert read.run_id == manifest["run_id"] and read.sheet == "Reviews" and read.heading_row == 2
    assert [r.number for r in read.rows] == [3, 4, 5]
    assert read.rows[0].values["review"] == 1 and read.rows[0].values["status"] == "Cancelled"
    assert read.rows[1].values["status"] == "Scheduled" and isinstance(read.rows[1].values["date"], date)


# ------------------------------------------------------------------------------------- wrong trackers

def test_unknown_referral_or_unscheduled_review_number_is_one_sentence_error(make_run):
    run_dir, manifest = make_run(1)
    a = manifest["referrals"][0]["referral_id"]
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    ws.cell(2, 1).value = "HAV-99999"
    wb.save(tracker)
    with pytest.raises(TrackerMismatchError) as caught:
        review_tracker(tracker, as_of=AFTER)
    message = str(caught.value)
    assert message.startswith("review-tracker.xlsx: ") and "HAV-99999" in message and manifest["run_id"] in message
    assert "\n" not in message and message.count(". ") == 0
    assert not (run_dir / STATE_FILE).exists()

    ws.cell(2, 1).value = a
    ws.cell(find_row(ws, a, 3), 5).value = 7
    wb.save(tracker)
    with pytest.raises(TrackerMismatchError, match="review 7 of .* scheduled only reviews 1 to 3"):
        review_tracker(tracker, as_of=AFTER)


def test_run_found_beside_the_tracker_or_in_outbox(make_run, tmp_path):
    run_dir, manifest = make_run(1)
    a = manifest["referrals"][0]["referral_id"]
    elsewhere = tmp_path / "desktop" / "tracker (officer copy).xlsx"
    elsewhere.parent.mkdir()
    shutil.copy(run_dir / "review-tracker.xlsx", elsewhere)
    wb, ws = open_tracker(elsewhere)
    fill(ws, a, 1, "Held", "Fine")
    wb.save(elsewhere)
    with pytest.raises(UnknownRunError, match=f"run {manifest['run_id']}.*--outbox"):
        review_tracker(elsewhere, as_of=AFTER)
    report = review_tracker(elsewhere, outbox=run_dir.parent, as_of=AFTER)
    assert report.run_dir == run_dir and (run_dir / report.plans_written[0]).is_file()

    wb = openpyxl.load_workbook(elsewhere)  # a copy whose document properties were lost
    wb.custom_doc_props = openpyxl.packaging.custom.CustomPropertyList()
    wb.save(elsewhere)
    with pytest.raises(UnknownRunError, match="no run id"):
        review_tracker(elsewhere, outbox=run_dir.parent, as_of=AFTER)
    inside = run_dir / "review-tracker.xlsx"
    shutil.copy(elsewhere, inside)  # ...but kept in its run folder: that folder is its run
    assert review_tracker(inside, as_of=AFTER).run_id == manifest["run_id"]


def test_unreadable_tracker(tmp_path):
    bad = tmp_path / "review-tracker.xlsx"
    bad.write_text("not a workbook")
    with pytest.raises(InputError, match="not an Excel workbook"):
        review_tracker(bad, as_of=AFTER)
    other = tmp_path / "other.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["Name", "Town"])
    wb.save(other)
    with pytest.raises(InputError, match="no sheet has the review tracker's headings"):
        read_tracker(other)
    with pytest.raises(InputError, match="there is no such file in the folder"):
        read_tracker(tmp_path / "missing.xlsx")


# ------------------------------------------------------------------------------------- CLI and schema

def test_cli(make_run, tmp_path):
    run_dir, manifest = make_run(1)
    a = manifest["referrals"][0]["referral_id"]
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    fill(ws, a, 1, "Held", "Fine")
    wb.save(tracker)
    runner = CliRunner()
    result = runner.invoke(main, ["reviews", str(tracker), "--as-of", "2027-06-01"])
    assert result.exit_code == 1, result.output
    assert f"{a}: overdue review 2" in result.output and "Wrote 1 reviewed plan" in result.output
    for row in range(2, 5):
        ws.cell(row, 7).value = "held"
    wb.save(tracker)
    assert runner.invoke(main, ["reviews", str(tracker), "--as-of", "2027-06-01"]).exit_code == 0

    bad = tmp_path / "broken.xlsx"
    bad.write_bytes(b"PK\x03\x04 nonsense")
    result = runner.invoke(main, ["reviews", str(bad)])
    assert result.exit_code == 2 and result.output.startswith("Error: broken.xlsx: ")
    assert "Traceback" not in result.output and result.output.count("\n") == 1
    help_text = runner.invoke(main, ["reviews", "--help"]).output
    assert "Examples:" in help_text and "--outbox" in help_text and "--as-of" in help_text


@pytest.mark.parametrize("typed, status", [("Held", "Held"), (" held ", "Held"), ("HELD", "Held"),
                                           ("He ld", "Held"), ("missed", "Missed"), ("Canceled", "Cancelled"),
                                           ("scheduled", "Scheduled")])
def test_parse_status(typed, status):
    assert parse_status(typed) == status


@pytest.mark.parametrize("typed", ["Helf", "done", "yes"])
def test_parse_status_never_guesses(typed):
    with pytest.raises(ValueError, match="not a review status"):
        parse_status(typed)


@pytest.mark.parametrize("typed, number", [(2, 2), (2.0, 2), ("2", 2), ("Review 2", 2), ("#3", 3),
                                           ("Extra", None), ("ad hoc", None), ("Additional review", None)])
def test_parse_review_number(typed, number):
    assert parse_review_number(typed) == number


@pytest.mark.parametrize("typed", [0, 1.5, "two", True])
def test_parse_review_number_rejects(typed):
    with pytest.raises(ValueError):
        parse_review_number(typed)


def test_a_scheduled_review_retyped_without_its_number_is_that_review(make_run):
    run_dir, manifest = make_run(1)
    entry = manifest["referrals"][0]
    a, second = entry["referral_id"], date.fromisoformat(entry["reviews"][1])
    tracker = run_dir / "review-tracker.xlsx"
    wb, ws = open_tracker(tracker)
    ws.delete_rows(find_row(ws, a, 2))
    new = ws.max_row + 1
    for col, value in ((1, a), (6, second.strftime("%d/%m/%Y")), (7, "Held"), (8, "Retyped")):
        ws.cell(new, col).value = value
    wb.save(tracker)
    report = review_tracker(tracker, as_of=AFTER)
    review = next(r for r in report.pupils[0].reviews if r.row == new)
    assert (review.number, review.status, review.outcome) == (2, "Held", "Retyped")
    assert any("taken as review 2" in i.message and i.severity == "warning" for i in report.issues)
    assert not any("no row" in i.message for i in report.issues)
    body = [row for table in docx.Document(run_dir / report.plans_written[0]).tables for row in table.rows]
    checklist = [[c.text for c in row.cells] for row in body if row.cells[0].text == "3.4"]
    assert "prepared Monday 30 November 2026" in checklist[0][2]  # the original plan's date, not the review's
    assert "The plan was prepared before the return." in checklist[0][2]
