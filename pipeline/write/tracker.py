"""The review tracker (`review-tracker.xlsx`, docs/reviews.md): one row per scheduled review of every accepted pupil.

Officers fill in Status, Outcome and Next steps as reviews happen; `reintegrate reviews` reads it back.
The run id travels in the workbook's custom document properties (`reintegrate_run_id`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pipeline.core.files import atomic_path
from pipeline.write.workbooks import Formats, new_workbook, print_setup
from pipeline.write.xlsx_rows import RowsWorksheet
from schemas.tracker import CANCELLED, HELD, SCHEDULED, STATUSES

SHEET = "Reviews"
HEADINGS = ("Referral ID", "Pupil", "Receiving school", "Key worker", "Review", "Date", "Status", "Outcome",
            "Next steps")
WIDTHS = (14, 24, 28, 32, 8, 13, 12, 45, 45)
RUN_ID_PROPERTY = "reintegrate_run_id"
OVERDUE_FILL = "#F8CBAD"


def tracker_rows(referral, reviews: list[date]) -> list[tuple]:
    pupil = referral.shown_name
    return [(referral.referral_id, pupil, referral.receiving_school, referral.key_worker, n, when, SCHEDULED, None, None)
            for n, when in enumerate(reviews, start=1)]


def write_tracker(path: Path, rows: list[tuple], *, run_id: str) -> None:
    """`rows` from `tracker_rows`, in the order they should appear."""
    with atomic_path(path) as tmp:
        wb = new_workbook(tmp)
        wb.set_custom_property(RUN_ID_PROPERTY, run_id)
        wb.set_properties({"title": "Reintegration review tracker", "subject": f"run {run_id}",
                           "company": "London Borough of Havering", "keywords": "OFFICIAL-SENSITIVE"})
        fmt = Formats(wb)
        ws = wb.add_worksheet(SHEET, worksheet_class=RowsWorksheet)
        for col, (heading, width) in enumerate(zip(HEADINGS, WIDTHS)):
            ws.set_column(col, col, width)
        ws.set_row(0, 20)
        for col, heading in enumerate(HEADINGS):
            ws.write_string(0, col, heading, fmt.heading)
        # the review number centred, so it never reads as one with the date beside it ("125/01/2027")
        centred = {HEADINGS.index("Review"): {"align": "center"}}
        for r, values in enumerate(rows, start=1):  # whole rows: each cell as write_value writes it
            ws.add_row(r, values, fmt, blanks=True, props=centred)
        last = max(len(rows), 1)
        status_col = HEADINGS.index("Status")
        date_col = HEADINGS.index("Date")
        ws.freeze_panes(1, 0)
        print_setup(ws)
        ws.autofilter(0, 0, last, len(HEADINGS) - 1)
        # room below the last review for rows an officer adds
        ws.data_validation(1, status_col, last + 500, status_col, {
            "validate": "list", "source": list(STATUSES), "error_type": "warning",
            "error_title": "Review status", "error_message": f"Choose {', '.join(STATUSES[:-1])} or {STATUSES[-1]}.",
        })
        # overdue: the date has passed and the review is not Held or Cancelled, judged on the day it is opened
        d = chr(ord("A") + date_col)
        s = chr(ord("A") + status_col)
        ws.conditional_format(1, 0, last + 500, len(HEADINGS) - 1, {
            "type": "formula",
            "criteria": f'=AND(${d}2<>"",${d}2<TODAY(),LOWER(TRIM(${s}2))<>"{HELD.lower()}",'
                        f'LOWER(TRIM(${s}2))<>"{CANCELLED.lower()}")',
            "format": wb.add_format({"bg_color": OVERDUE_FILL}),
        })
        wb.close()
