"""Matching a tracker's rows to the run's pupils and judging each pupil's reviews on the as-of date.

What a tracker row means (documented for officers in docs/reviews.md):

* a row whose Review number the run scheduled is that review; its Date may be changed (a moved review), a
  blank Date keeps the scheduled date; a blank Status is ``Scheduled``; statuses are read case-, space- and
  punctuation-insensitively;
* a row with the Review cell blank (or ``Extra``) is an extra review: recorded, numbered "Extra" in the plan;
  if its date is the scheduled date of a review whose row is missing, it is taken as that review (warning);
* a scheduled review with no row (the officer deleted it) is simply not recorded: it counts as not held (warning);
* overdue: dated before the as-of date and still ``Scheduled`` (nothing recorded), or ``Missed`` with no
  review held after it (`pipeline.check.reviews_due`, which the term register uses too). ``Held`` and
  ``Cancelled`` reviews are never overdue; the tracker's red highlight, worked out by Excel as it opens the
  file, marks a review dated before today unless it is Held or Cancelled (a Missed one stays red);
* settling-in shortfall: the settling-in period (from the planned return, `Settling-in period (weeks)` long,
  and at least until the last scheduled review) is over on the as-of date and fewer reviews were held than
  were scheduled (extra reviews held count);
* a row with an unreadable value is rejected (located error, exit 1) and its review counts as not recorded;
  a Referral ID the run never had, or a Review number the run never scheduled for that pupil, means the
  tracker no longer matches its run: `TrackerMismatchError` (exit 2), nothing is written.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from pipeline.check.reviews_due import overdue_flags
from pipeline.core.errors import ERROR, WARNING, Issue
from pipeline.reviews.errors import TrackerMismatchError
from pipeline.reviews.run_folder import Entry, Run
from pipeline.reviews.tracker_file import Tracker, TrackerRow
from pipeline.write.context import long_date
from schemas.model import Referral
from schemas.parsers import normalise_heading
from schemas.tracker import CANCELLED, HELD, MISSED, SCHEDULED

__all__ = ["PupilReviews", "Review", "id_key", "judge_reviews"]


@dataclass
class Review:
    """One review of one pupil, as recorded (or not) in the tracker, judged on the as-of date."""

    number: int | None  # None: an extra review the officer added
    scheduled: date | None  # the run's date for it (None for an extra review)
    date: date
    status: str = SCHEDULED
    outcome: str | None = None
    next_steps: str | None = None
    row: int | None = None  # the tracker row it was read from; None when the row was deleted
    overdue: bool = False

    @property
    def recorded(self) -> bool:
        """Something was written down for it: a status other than Scheduled, an outcome or next steps."""
        return self.status != SCHEDULED or bool(self.outcome) or bool(self.next_steps)

    @property
    def label(self) -> str:
        return f"review {self.number}" if self.number is not None else "extra review"

    def as_dict(self) -> dict:
        return {"number": self.number, "extra": self.number is None,
                "scheduled_date": self.scheduled.isoformat() if self.scheduled else None,
                "date": self.date.isoformat(), "status": self.status, "outcome": self.outcome,
                "next_steps": self.next_steps, "tracker_row": self.row, "overdue": self.overdue}


@dataclass
class PupilReviews:
    referral_id: str
    plan: str  # the original plan, relative to the run folder
    upn: str
    planned_return: date
    settling_in_end: date  # the later of (planned return + the settling-in weeks) and the last scheduled review
    scheduled: int  # how many reviews the run scheduled
    reviews: list[Review]
    settling_in_over: bool = False
    reviewed_plan: str | None = None  # the newest reviewed version (written now, or unchanged since)
    record_sha256: str | None = None  # what the plan's review record says: unchanged -> nothing new written
    version: str | None = None  # "kept" (the officer's latest version, table filled), "afresh", "unchanged"
    notes: list[str] = field(default_factory=list)  # about this pupil's new version, for the report

    def _with(self, *statuses) -> list[Review]:
        return [r for r in self.reviews if r.status in statuses]

    @property
    def held(self) -> list[Review]:
        return self._with(HELD)

    @property
    def missed(self) -> list[Review]:
        return self._with(MISSED)

    @property
    def cancelled(self) -> list[Review]:
        return self._with(CANCELLED)

    @property
    def overdue(self) -> list[Review]:
        return [r for r in self.reviews if r.overdue]

    @property
    def shortfall(self) -> bool:
        """The settling-in period is over with fewer reviews held than the run scheduled."""
        return self.settling_in_over and len(self.held) < self.scheduled

    @property
    def recorded(self) -> bool:
        return any(r.recorded for r in self.reviews)

    def as_dict(self) -> dict:
        return {"referral_id": self.referral_id, "upn": self.upn, "plan": self.plan,
                "reviewed_plan": self.reviewed_plan, "planned_return": self.planned_return.isoformat(),
                "settling_in_end": self.settling_in_end.isoformat(),
                "settling_in_over": self.settling_in_over, "scheduled": self.scheduled, "held": len(self.held),
                "missed": len(self.missed), "cancelled": len(self.cancelled), "overdue": len(self.overdue),
                "extra": sum(r.number is None for r in self.reviews), "shortfall": self.shortfall,
                "record_sha256": self.record_sha256, "version": self.version,
                "reviews": [r.as_dict() for r in self.reviews]}


def id_key(text) -> str:
    return " ".join(str(text).split()).casefold()


def _pupil_names(referral: Referral) -> set[str]:
    names = set()
    for forename in filter(None, (referral.legal_forename, referral.preferred_name)):
        names.add(normalise_heading(f"{forename} {referral.legal_surname}"))
        names.add(normalise_heading(f"{referral.legal_surname} {forename}"))
    return names


def _mismatch(tracker: Tracker, run: Run, problems: list[str]) -> TrackerMismatchError:
    more = len(problems) - 1
    tail = f" (and {more} more row{'s' if more != 1 else ''} like it)" if more else ""
    return TrackerMismatchError(tracker.path, f"the tracker no longer matches run {run.run_id}: {problems[0]}{tail}; "
                                              "use the review-tracker.xlsx of the run that made these plans, or "
                                              "correct those rows")


def judge_reviews(tracker: Tracker, run: Run, as_of: date) -> list[PupilReviews]:
    """Every pupil of the run (in the run's order) with its reviews judged on `as_of`. Raises
    `TrackerMismatchError` when rows do not fit the run; adds each row's and the tracker's issues as it goes."""
    matched = _match_rows(tracker, run)
    rejected_numbers = _rejected_numbers(tracker, run)
    return [_judge(tracker, entry, matched.get(entry.referral_id, []), rejected_numbers[entry.referral_id], as_of)
            for entry in run.entries]


def _rejected_numbers(tracker: Tracker, run: Run) -> dict[str, set[int]]:
    """Per Referral ID, the reviews whose rows were rejected: their errors say so; no "deleted row" warning
    as well."""
    rejected_numbers: dict[str, set[int]] = defaultdict(set)
    ids = {id_key(e.referral_id): e.referral_id for e in run.entries}
    for row in tracker.rows:
        rid = row.values.get("referral_id") or row.raw.get("referral_id")
        number = row.values.get("review")
        if not row.ok and rid is not None and number is not None and id_key(rid) in ids:
            rejected_numbers[ids[id_key(rid)]].add(number)
    return rejected_numbers


def _match_rows(tracker: Tracker, run: Run) -> dict[str, list[TrackerRow]]:
    """Every valid row under its run entry's Referral ID. Rows that do not fit the run raise
    `TrackerMismatchError`; a row naming another pupil, or a review on two differing rows, is rejected."""
    exact = {e.referral_id: e for e in run.entries}
    loose: dict[str, list] = defaultdict(list)
    for e in run.entries:
        loose[id_key(e.referral_id)].append(e)
    problems: list[str] = []
    matched: dict[str, list[TrackerRow]] = defaultdict(list)
    for row in tracker.rows:
        if not row.ok or "referral_id" not in row.values:
            continue
        rid = row.values["referral_id"]
        entry = exact.get(rid) or (loose[id_key(rid)][0] if len(loose.get(id_key(rid), ())) == 1 else None)
        if entry is None:
            problems.append(f"row {row.number} has Referral ID '{rid}', which is not a referral of that run")
            continue
        problem = _row_problem(row, entry)
        if problem:
            problems.append(problem)
            continue
        matched[entry.referral_id].append(row)
    if problems:
        raise _mismatch(tracker, run, problems)
    for rows in matched.values():
        _drop_duplicate_reviews(tracker, rows)
    return matched


def _row_problem(row: TrackerRow, entry: Entry) -> str | None:
    """Why a row with this entry's Referral ID still does not fit the run, or None when it does."""
    number = row.values.get("review")
    if number is not None and number > len(entry.scheduled):
        scheduled = (f"only review{'s 1 to ' if len(entry.scheduled) > 1 else ' '}{len(entry.scheduled)}"
                     if entry.scheduled else "no reviews")
        return (f"row {row.number} is review {number} of {entry.referral_id}, but that run scheduled "
                f"{scheduled} for that pupil (type Extra in the Review cell for an extra review)")
    # a blank Pupil cell is an officer's added row (an extra review): its Referral ID must still be the run's
    if row.pupil is not None and normalise_heading(row.pupil) not in _pupil_names(entry.referral):
        # a tracker whose rows name other pupils belongs to another run (or was mistyped): applying any
        # of it could put one child's review in another child's plan
        return (f"row {row.number}'s Pupil cell ({row.pupil_cell}) does not match the pupil of "
                f"Referral ID {entry.referral_id}")
    return None


def _drop_duplicate_reviews(tracker: Tracker, rows: list[TrackerRow]) -> None:
    """A review on several rows of one pupil: counted once when the rows agree (a warning on the copies),
    else none of them is (an error on each). The rows not counted are removed from `rows`."""
    by_number: dict[int, list[TrackerRow]] = defaultdict(list)
    for row in rows:
        if row.values.get("review") is not None:
            by_number[row.values["review"]].append(row)
    for number, same in by_number.items():
        if len(same) < 2:
            continue
        first = same[0]
        keys = ("date", "status", "outcome", "next_steps")
        if all(all(r.values.get(k) == first.values.get(k) for k in keys) for r in same[1:]):
            for r in same[1:]:
                r.issues.append(tracker.issue(r, WARNING, "duplicate", "review",
                                              f"review {number} of {r.values['referral_id']} is also on row "
                                              f"{first.number} with the same entries; it is counted once"))
                rows.remove(r)
            continue
        numbers = " and ".join(str(r.number) for r in same)
        for r in same:
            r.issues.append(tracker.issue(r, ERROR, "duplicate", "review",
                                          f"review {number} of {r.values['referral_id']} is on rows {numbers} "
                                          "with different entries, so none was recorded: keep one row per review "
                                          "(type Extra in the Review cell for an extra review)"))
            rows.remove(r)


def _judge(tracker: Tracker, entry: Entry, rows: list[TrackerRow], rejected: set[int], as_of: date) -> PupilReviews:
    referral = entry.referral
    by_number = {row.values["review"]: row for row in rows if row.values.get("review") is not None}
    extras = [row for row in rows if row.values.get("review") is None]
    _take_blank_numbered_rows(tracker, entry, by_number, extras, rejected)
    reviews = _reviews(tracker, entry, by_number, extras, rejected)
    _check_reviews(tracker, entry, rows, reviews, as_of)
    # the last review is on the last school day of the settling-in period (the run counted that period in school
    # weeks when it scheduled the reviews); with no review scheduled, the period is taken in calendar weeks from
    # the return
    settling_end = entry.scheduled[-1] if entry.scheduled else (
        referral.planned_return_date + timedelta(weeks=referral.settling_in_period_weeks))
    return PupilReviews(entry.referral_id, entry.plan, referral.upn, referral.planned_return_date, settling_end,
                        len(entry.scheduled), reviews, settling_in_over=as_of > settling_end)


def _take_blank_numbered_rows(tracker: Tracker, entry: Entry, by_number: dict[int, TrackerRow],
                              extras: list[TrackerRow], rejected: set[int]) -> None:
    """An extra row dated on the day of a scheduled review whose row is gone is that review, renumbered blank:
    moved from `extras` into `by_number`, with a warning."""
    for row in list(extras):
        for number, when in enumerate(entry.scheduled, start=1):
            if row.values["date"] == when and number not in by_number and number not in rejected:
                by_number[number] = row
                extras.remove(row)
                row.issues.append(tracker.issue(row, WARNING, "review", "review",
                                                f"the Review number is blank; taken as review {number} of "
                                                f"{entry.referral_id}, scheduled that day"))
                break


def _reviews(tracker: Tracker, entry: Entry, by_number: dict[int, TrackerRow], extras: list[TrackerRow],
             rejected: set[int]) -> list[Review]:
    """Every scheduled review (as its row records it, or not recorded when it has none) and every extra one,
    in date order; a warning on the tracker for each scheduled review with no row that was not rejected."""
    reviews: list[Review] = []
    for number, when in enumerate(entry.scheduled, start=1):
        row = by_number.get(number)
        if row is None:
            reviews.append(Review(number, when, when))
            if number not in rejected:
                tracker.issues.append(Issue(
                    WARNING, "review", f"review {number} of {entry.referral_id} ({long_date(when)}) has no row in the "
                                       f"tracker (sheet '{tracker.sheet}'; deleted?), so it counts as not held",
                    column="Review", value=str(number)))
            continue
        v = row.values
        reviews.append(Review(number, when, v.get("date") or when, v.get("status", SCHEDULED), v.get("outcome"),
                              v.get("next_steps"), row.number))
    for row in extras:
        v = row.values
        reviews.append(Review(None, None, v["date"], v.get("status", SCHEDULED), v.get("outcome"),
                              v.get("next_steps"), row.number))
    reviews.sort(key=lambda r: (r.date, r.number if r.number is not None else 10**6, r.row or 0))
    return reviews


def _check_reviews(tracker: Tracker, entry: Entry, rows: list[TrackerRow], reviews: list[Review], as_of: date) -> None:
    """A warning on the row of a review whose status does not fit what it records or its date; each review
    marked overdue or not on `as_of`."""
    rows_by_number = {row.number: row for row in rows}
    for r in reviews:
        row = rows_by_number.get(r.row)
        if r.status == SCHEDULED and (r.outcome or r.next_steps) and row is not None:
            row.issues.append(tracker.issue(row, WARNING, "review", "status",
                                            f"{r.label} of {entry.referral_id} has an outcome or next steps but its "
                                            "status is Scheduled: set it to Held, Missed or Cancelled"))
        if r.status in (HELD, MISSED) and r.date > as_of and row is not None:
            row.issues.append(tracker.issue(row, WARNING, "review", "date",
                                            f"{r.label} of {entry.referral_id} is marked {r.status} but dated "
                                            f"{long_date(r.date)}, after {long_date(as_of)}: check the date"))
    for r, overdue in zip(reviews, overdue_flags([(r.date, r.status) for r in reviews], as_of)):
        r.overdue = overdue
