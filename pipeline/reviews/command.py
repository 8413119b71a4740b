"""`reintegrate reviews TRACKER.xlsx` as one function: read a filled-in review tracker back, report the reviews
that are overdue, missed or cancelled, and write a reviewed version of each plan with the recorded reviews in its
review record table (the policy: "Regular and timely reviews are held and recorded on the Reintegration Plan").
The flow reads like the command:

    read_tracker -> find_run -> match the rows to the run's schedule -> judge each review on the as-of date
    -> write plans/<stem>.reviewed-YYYY-MM-DD.docx -> write review-state.json
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

from pipeline.core import files
from pipeline.core.config import Config
from pipeline.core.errors import ERROR, Issue, ReintegrateError
from pipeline.core.ledger import Ledger
from pipeline.reviews.judge import judge_reviews
from pipeline.reviews.plans import pdf_copies, plan_jobs, write_plans
from pipeline.reviews.report import STATE_FILE, ReviewReport, previous_state
from pipeline.reviews.run_folder import find_run
from pipeline.reviews.tracker_file import Tracker, read_tracker

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
    pupils = judge_reviews(tracker, run, as_of)
    report = ReviewReport(tracker.path, run.run_id, run.run_dir, as_of, pupils, [])
    jobs, writing = plan_jobs(run, pupils, as_of, previous_state(run.run_dir))
    config = config or Config()
    if jobs:
        for pupil, (version, notes) in zip(writing, write_plans(jobs, config.templates(), workers, progress)):
            pupil.version, pupil.notes = version, notes
    report.plans_written = [p.reviewed_plan for p in writing]
    if config.pdf and report.plans_written:
        report.pdf_failed = pdf_copies(run.run_dir, writing, workers)
    report.issues = tracker.issues + _row_issues(tracker)
    report.state_path = run.run_dir / STATE_FILE
    files.write_json(report.state_path, report.state())
    report.ledger_problem = _record_in_ledger(run, pupils, config)
    return report


def _record_in_ledger(run, pupils, config: Config) -> str | None:
    """What this tracker says of each pupil's reviews, for the term register: in the ledger the run was
    recorded in (the config's, else the one beside the run folder); None, or the sentence saying why not."""
    path = config.ledger_of(run.run_dir)
    if not Path(path).is_file():
        return None  # a run folder copied away from its outbox: there is no register to keep
    try:
        with Ledger(path) as ledger:
            ledger.record_reviews(run.run_id, {p.referral_id: [(r.number, r.scheduled, r.date, r.status)
                                                               for r in p.reviews] for p in pupils})
    except (OSError, sqlite3.Error, ReintegrateError) as exc:
        return (f"the reviews could not be recorded in the ledger for the term register ({exc}); the reviewed "
                "plans and review-state.json are written: run reviews again later")
    return None


def _row_issues(tracker: Tracker) -> list[Issue]:
    """Every row's issues, by row, a row's errors before its warnings."""
    return sorted((i for row in tracker.rows for i in row.issues), key=lambda i: (i.row or 0, i.severity != ERROR))
