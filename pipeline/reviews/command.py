"""`reintegrate reviews TRACKER.xlsx` as one function: read a filled-in review tracker back, report the reviews
that are overdue, missed or cancelled, and write a reviewed version of each plan with the recorded reviews in its
review record table. The flow reads like the command:

    read_tracker -> find_run -> match the rows to the run's schedule -> judge each review on the as-of date
    -> write plans/<stem>.reviewed-YYYY-MM-DD.docx -> write review-state.json
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path, PurePosixPath

from pipeline.core import files
from pipeline.core.config import Config
from pipeline.core.errors import ERROR
from pipeline.reviews.judge import _judge, _match_rows, id_key
from pipeline.reviews.plans import _PlanJob, _pdf_copies, _plan_context, _write_plans, record_sha256
from pipeline.reviews.report import STATE_FILE, ReviewReport, previous_state
from pipeline.reviews.run_folder import find_run
from pipeline.reviews.tracker_file import read_tracker
from pipeline.write.plan_record import newest_plan, reviewed_plan_name

__all__ = ["review_tracker"]


def review_tracker(tracker_path: str | Path, *, outbox: str | Path | None = None, as_of: date | None = None,
                   config=None, workers: int | None = None, progress=None) -> ReviewReport:
    """The whole of `reintegrate reviews`: read the tracker, find its run (beside the tracker, else in `outbox`,
    else in the config's outbox), judge every review on `as_of` (default today), write a reviewed version of
    every plan with recorded reviews and `RUN_DIR/review-state.json`, and return the report.

    Raises `InputError` (exit 2; `UnknownRunError`, `TrackerMismatchError`) with nothing written when the tracker
    cannot be read or does not fit a run."""
    as_of = as_of or date.today()
    if outbox is None and config is not None:
        outbox = config.outbox
    tracker = read_tracker(tracker_path)
    run = find_run(tracker, outbox)
    matched = _match_rows(tracker, run)
    # reviews whose only rows were rejected: their errors say so; no "deleted row" warning as well
    rejected_numbers: dict[str, set[int]] = defaultdict(set)
    ids = {id_key(e.referral_id): e.referral_id for e in run.entries}
    for row in tracker.rows:
        rid = row.values.get("referral_id") or row.raw.get("referral_id")
        number = row.values.get("review")
        if not row.ok and rid is not None and number is not None and id_key(rid) in ids:
            rejected_numbers[ids[id_key(rid)]].add(number)
    pupils = [_judge(tracker, entry, matched.get(entry.referral_id, []), rejected_numbers[entry.referral_id], as_of)
              for entry in run.entries]
    report = ReviewReport(tracker.path, run.run_id, run.run_dir, as_of, pupils, [])
    jobs, writing = [], []
    before = previous_state(run.run_dir)
    for entry, pupil in zip(run.entries, pupils):
        if not pupil.recorded:
            continue
        pupil.record_sha256 = record_sha256(pupil)
        latest = newest_plan(run.run_dir / entry.plan)
        last = before.get(id_key(entry.referral_id), {})
        if (last.get("record_sha256") == pupil.record_sha256 and last.get("reviewed_plan")
                and latest.name == PurePosixPath(last["reviewed_plan"]).name):
            pupil.reviewed_plan, pupil.version = last["reviewed_plan"], "unchanged"
            continue
        pupil.reviewed_plan = reviewed_plan_name(entry.plan, as_of)
        jobs.append(_PlanJob(latest, run.run_dir / pupil.reviewed_plan, _plan_context(entry, pupil, run, as_of)))
        writing.append(pupil)
    config = config or Config()
    if jobs:
        for pupil, (version, notes) in zip(writing, _write_plans(jobs, config.templates(), workers, progress)):
            pupil.version, pupil.notes = version, notes
    report.plans_written = [p.reviewed_plan for p in writing]
    if config.pdf and report.plans_written:
        report.pdf_failed = _pdf_copies(run.run_dir, writing, workers)
    row_issues = sorted((i for row in tracker.rows for i in row.issues),
                        key=lambda i: (i.row or 0, i.severity != ERROR))
    report.issues = tracker.issues + row_issues
    report.state_path = run.run_dir / STATE_FILE
    files.write_json(report.state_path, report.state())
    return report
