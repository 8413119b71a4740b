"""`reintegrate reviews`: a filled-in review tracker read back, each pupil's reviews judged on the as-of date,
a reviewed version of each plan written, and the report. Used as a library, the whole command is::

    from datetime import date
    from pipeline.reviews import review_tracker

    report = review_tracker("outbox/20261129T101500123456Z-ab12/review-tracker.xlsx", as_of=date(2027, 3, 1))
    for line in report.lines():
        print(line)
    raise SystemExit(report.exit_code)   # 1 when a review is overdue or a tracker row is rejected

The modules, in the order the command uses them: `tracker_file` (reading the tracker), `run_folder` (finding
and loading its run), `judge` (matching rows to pupils, judging reviews), `plans` (the reviewed plans and their
PDF copies), `report` (the officer's report and review-state.json), `command` (`review_tracker`, the flow);
`errors` holds the two ways a tracker cannot be applied.
"""

from pipeline.reviews.errors import TrackerMismatchError, UnknownRunError
from pipeline.reviews.tracker_file import Tracker, TrackerRow, read_tracker
from pipeline.reviews.run_folder import Run, find_run
from pipeline.reviews.judge import PupilReviews, Review
from pipeline.reviews.report import STATE_FILE, ReviewReport
from pipeline.reviews.command import review_tracker
from pipeline.write.plan_record import reviewed_plan_name

__all__ = [
    "STATE_FILE", "PupilReviews", "Review", "ReviewReport", "Run", "Tracker",
    "TrackerMismatchError", "TrackerRow", "UnknownRunError", "find_run", "read_tracker", "reviewed_plan_name",
    "review_tracker",
]
