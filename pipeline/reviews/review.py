"""`reintegrate reviews TRACKER.xlsx`: read a filled-in review tracker back, report the reviews that are
overdue, missed or cancelled, and write a reviewed version of each plan with the recorded reviews in its
review record table (SPEC 1, policy: "Regular and timely reviews are held and recorded on the
Reintegration Plan").

Used as a library, the whole command is::

    from datetime import date
    from pipeline.reviews.review import review_tracker

    report = review_tracker("outbox/20261129T101500123456Z-ab12/review-tracker.xlsx", as_of=date(2027, 3, 1))
    for line in report.lines():
        print(line)
    raise SystemExit(report.exit_code)   # 1 when a review is overdue or a tracker row is rejected

The flow reads like the command:

    read_tracker -> find_run -> match the rows to the run's schedule -> judge each review on the as-of date
    -> write plans/<stem>.reviewed-YYYY-MM-DD.docx -> write review-state.json

What a tracker row means (documented for officers in docs/reviews.md):

* a row whose Review number the run scheduled is that review; its Date may be changed (a moved review), a
  blank Date keeps the scheduled date; a blank Status is ``Scheduled``; statuses are read case-, space- and
  punctuation-insensitively;
* a row with the Review cell blank (or ``Extra``) is an extra review: recorded, numbered "Extra" in the plan;
  if its date is the scheduled date of a review whose row is missing, it is taken as that review (warning);
* a scheduled review with no row (the officer deleted it) is simply not recorded: it counts as not held (warning);
* overdue: dated before the as-of date and still ``Scheduled`` (nothing recorded), or ``Missed`` with no
  review held after it. ``Held`` and ``Cancelled`` reviews are never overdue (the tracker's red highlight
  follows the same statuses);
* settling-in shortfall: the settling-in period (from the planned return, `Settling-in period (weeks)` long,
  and at least until the last scheduled review) is over on the as-of date and fewer reviews were held than
  were scheduled (extra reviews held count);
* a row with an unreadable value is rejected (located error, exit 1) and its review counts as not recorded;
  a Referral ID the run never had, or a Review number the run never scheduled for that pupil, means the
  tracker no longer matches its run: `TrackerMismatchError` (exit 2), nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields as dataclass_fields
from datetime import date, datetime, timedelta
from pathlib import Path, PurePosixPath

from marshmallow import ValidationError
from openpyxl.utils import get_column_letter

from pipeline.core import files
from pipeline.core.config import Config
from pipeline.write.context import build_context, long_date
from pipeline.core.errors import ERROR, WARNING, InputError, Issue
from pipeline.write.plan_record import newest_plan, reviewed_plan_name
from pipeline.write.tracker import RUN_ID_PROPERTY
from pipeline.write.tracker import SHEET as SHEET_NAME
from schemas import tracker as schema
from schemas.model import Referral
from schemas.parsers import normalise_heading
from schemas.tracker import CANCELLED, HELD, MISSED, SCHEDULED

__all__ = [
    "EXIT_OK", "EXIT_OVERDUE", "STATE_FILE", "PupilReviews", "Review", "ReviewReport", "Run", "Tracker",
    "TrackerMismatchError", "TrackerRow", "UnknownRunError", "find_run", "read_tracker", "reviewed_plan_name",
    "review_tracker",
]

EXIT_OK, EXIT_OVERDUE = 0, 1
STATE_FILE = "review-state.json"
STATE_VERSION = 1
HEADING_SEARCH_ROWS = 10  # an officer may put a title above the headings
MIN_HEADINGS = 3
MAX_ROWS = 200_000
MAX_LISTED_ISSUES = 50  # the report lists this many issues; review-state.json has them all
_RUN_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,99}")
_LOOKUP = schema.heading_lookup()
_INFORMATION = {normalise_heading(h): h for h in schema.INFORMATION_HEADINGS}


class TrackerMismatchError(InputError):
    """The tracker's rows do not fit its run (a Referral ID or a review number the run never had)."""


class UnknownRunError(InputError):
    """The tracker's run cannot be found (no run id, or no such run folder)."""


# --------------------------------------------------------------------------------------------- reading


@dataclass
class TrackerRow:
    """One row an officer filled in, as read and checked by `schemas.tracker`."""

    number: int  # the spreadsheet's own row number
    values: dict  # field name -> parsed value (valid values only)
    raw: dict  # field name -> the cell's value as typed
    cells: dict  # field name -> cell reference (e.g. "G5")
    pupil: object = None  # the Pupil cell, for the wrong-pupil check
    pupil_cell: str | None = None
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(i.is_error for i in self.issues)


@dataclass
class Tracker:
    path: Path
    sheet: str
    heading_row: int
    run_id: str | None  # the workbook's custom property `reintegrate_run_id`
    columns: dict[str, int]  # field name -> 0-based column index
    rows: list[TrackerRow]
    issues: list[Issue] = field(default_factory=list)  # about the whole file (unknown columns)

    def issue(self, row: TrackerRow, severity: str, rule: str, name: str, text: str) -> Issue:
        """An issue located the way the core pipeline locates one: sheet, cell, heading, value."""
        heading = schema.HEADINGS.get(name, name)
        cell = row.cells.get(name) if name in schema.HEADINGS else row.pupil_cell
        raw = row.raw.get(name) if name in schema.HEADINGS else row.pupil
        where = (f"sheet '{self.sheet}', cell {cell}, {heading}" if cell
                 else f"sheet '{self.sheet}', row {row.number}, no {heading} column")
        return Issue(severity, rule, f"{text} ({where})", column=heading, cell=cell, row=row.number,
                     value=_display(raw))


def _display(raw) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, datetime):
        raw = raw.date() if raw.time() == datetime.min.time() else raw
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw.strftime("%d/%m/%Y")
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


def _clean(value):
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _check_file(path: Path) -> None:
    from pipeline.read.ingest import sniff

    if not path.is_file():
        folder = "the current folder" if str(path.parent) == "." else f"the folder {path.parent}"
        raise InputError(path, f"there is no such file in {folder}" if not path.exists()
                         else "this is a folder, not a review tracker")
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        raise InputError(path, "this is not the review tracker workbook: give the review-tracker.xlsx that "
                               "`reintegrate run` wrote (saved as .xlsx, so it keeps its run id)")
    sniff(path)  # damaged, password-protected, not really a workbook: InputError


def _match_headings(cells) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for index, value in enumerate(cells):
        if value is None:
            continue
        name = _LOOKUP.get(normalise_heading(value))
        if name:
            found.setdefault(name, []).append(index)
    return found


def read_tracker(path: str | Path) -> Tracker:
    """Read and check a review tracker as an officer left it: rows sorted, filtered, deleted or added, extra
    columns, statuses typed in any case. Raises `InputError` when it cannot be read at all (no workbook, no
    sheet with the tracker's headings, a heading missing). Read by the referral reader (`pipeline.read.ingest`),
    with its bounds and refusals: a zip bomb, a DOCTYPE, a malformed sheet are one sentence, never more."""
    from pipeline.read import ingest

    path = Path(path)
    _check_file(path)
    sheets, wb = ingest.workbook_sheets(path)
    try:
        run_id = ingest.custom_property(wb, RUN_ID_PROPERTY)
        return _read_sheet(path, [(name, _Rows(rows)) for name, rows in sheets], run_id)
    except InputError:
        raise
    except ingest.DamagedWorkbook as exc:
        raise InputError(path, f"the workbook is damaged: {exc}") from None
    except Exception as exc:  # zipfile, zlib and lxml raise many types for damaged files
        raise InputError(path, f"the workbook is damaged and cannot be read ({ingest.damage_reason(exc)})") from None
    finally:
        for _, rows in sheets:
            rows.close()
        wb.close()


class _Rows:
    """A sheet's (row number, cells) rows, read as far as asked: the heading search reads ten rows of each
    sheet, and only the chosen sheet is read on."""

    def __init__(self, rows):
        self._rows = rows
        self.seen: list[tuple[int, tuple]] = []

    def head(self, last_row: int) -> list[tuple[int, tuple]]:
        while not self.seen or self.seen[-1][0] <= last_row:
            try:
                self.seen.append(next(self._rows))
            except StopIteration:
                break
        return [(n, c) for n, c in self.seen if n <= last_row]

    def after(self, row: int):
        yield from ((n, c) for n, c in self.seen if n > row)
        yield from self._rows

    def close(self):
        close = getattr(self._rows, "close", None)
        if close:
            close()


def _choose_sheet(path: Path, sheets):
    """(name, rows, heading row number, {field: [column indexes]}, heading cells): the `Reviews` sheet, else the
    first sheet whose heading row is recognised."""
    named = [sheet for sheet in sheets if sheet[0].strip().casefold() == SHEET_NAME.casefold()]
    for name, rows in named or sheets:
        best = None
        for number, cells in rows.head(HEADING_SEARCH_ROWS):
            found = _match_headings(cells)
            if len(found) >= MIN_HEADINGS and (best is None or len(found) > len(best[1])):
                best = (number, found, tuple(cells))
        if best:
            return name, rows, *best
        if named:
            raise InputError(path, f"sheet '{name}' has no heading row we recognise in its first "
                                   f"{HEADING_SEARCH_ROWS} rows (expected Referral ID, Review, Date, Status)")
    raise InputError(path, f"no sheet has the review tracker's headings (Referral ID, Review, Date, Status) in its "
                           f"first {HEADING_SEARCH_ROWS} rows; use the review-tracker.xlsx that `reintegrate run` wrote")


def _read_sheet(path: Path, sheets, run_id: str | None) -> Tracker:
    sheet, rows, heading_number, found, heading_cells = _choose_sheet(path, sheets)
    for name, places in found.items():
        if len(places) > 1:
            cells = " and ".join(f"{get_column_letter(i + 1)}{heading_number}" for i in places)
            raise InputError(path, f"sheet '{sheet}': the heading '{schema.HEADINGS[name]}' appears more than once "
                                   f"(cells {cells}); delete or rename all but one")
    for name in schema.REQUIRED_COLUMNS:
        if name not in found:
            raise InputError(path, f"sheet '{sheet}' has no '{schema.HEADINGS[name]}' column (headings are in row "
                                   f"{heading_number}); put the column back as `reintegrate run` wrote it")
    columns = {name: places[0] for name, places in found.items()}
    pupil_index = next((i for i, v in enumerate(heading_cells)
                        if v is not None and normalise_heading(v) == normalise_heading("Pupil")), None)
    if pupil_index is None:  # without it no row can be checked against the run's pupils
        raise TrackerMismatchError(path, f"sheet '{sheet}' has no 'Pupil' column, so its rows cannot be checked "
                                         "against the run's pupils and none was applied; put the column back as "
                                         "`reintegrate run` wrote it")
    file_issues = []
    known = set(columns.values())
    for index, value in enumerate(heading_cells):
        if index in known or value is None or not str(value).strip() or normalise_heading(value) in _INFORMATION:
            continue
        text = str(value).strip()
        file_issues.append(Issue(WARNING, "schema", f"column '{text}' is not a tracker heading, so it was ignored and "
                                                    "what it holds does not go into the plans; write notes in Outcome "
                                                    f"or Next steps (sheet '{sheet}', cell "
                                                    f"{get_column_letter(index + 1)}{heading_number})",
                                 column=text, cell=f"{get_column_letter(index + 1)}{heading_number}",
                                 row=heading_number, value=text))
    tracker = Tracker(path, sheet, heading_number, run_id, columns, [], file_issues)
    by_key = [(name, index, schema.HEADINGS[name]) for name, index in columns.items()]
    for number, cells in rows.after(heading_number):
        values, raw = {}, {}
        for name, index, key in by_key:
            value = _clean(cells[index]) if index < len(cells) else None
            raw[name] = value
            if value is not None:
                values[key] = value
        if not values:
            continue  # a blank row, or one with only the Pupil / school / key worker cells left
        if len(tracker.rows) >= MAX_ROWS:
            raise InputError(path, f"sheet '{sheet}' has more than {MAX_ROWS:,} review rows; this is not a review tracker")
        row = TrackerRow(number, {}, raw, {name: f"{get_column_letter(index + 1)}{number}" for name, index in columns.items()})
        if pupil_index is not None and pupil_index < len(cells):
            row.pupil = _clean(cells[pupil_index])
            row.pupil_cell = f"{get_column_letter(pupil_index + 1)}{number}"
        try:
            row.values = schema.SCHEMA.load(values)
        except ValidationError as err:
            row.values = err.valid_data or {}
            for heading, errors in err.messages.items():
                name = schema.FIELD_BY_HEADING.get(heading, heading)
                for text in errors if isinstance(errors, list) else [str(errors)]:
                    row.issues.append(tracker.issue(row, ERROR, "schema", name, text))
        tracker.rows.append(row)
    return tracker


# --------------------------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Entry:
    """One accepted referral of the run, from its manifest.json."""

    referral_id: str
    plan: str  # relative to the run folder: plans/<stem>.docx
    referral: Referral
    scheduled: tuple[date, ...]


@dataclass
class Run:
    run_id: str
    run_dir: Path
    as_of: date | None  # the run's own as-of date (when the original plans were prepared)
    entries: list[Entry]


def _referral_from_json(data: dict) -> Referral:
    kwargs = {}
    for f in dataclass_fields(Referral):
        if f.name not in data:
            continue
        value = data[f.name]
        if value is not None and str(f.type).startswith("date"):
            value = date.fromisoformat(value)
        elif f.name == "reasonable_adjustments":
            value = tuple(value or ())
        kwargs[f.name] = value
    return Referral(**kwargs)


def _load_run(tracker_path: Path, run_dir: Path, run_id: str) -> Run:
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        raise UnknownRunError(tracker_path, f"run {run_id} ({run_dir}) has no manifest.json, so its plans are not "
                                            "known (it was a `validate` run, or it did not finish)")
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
        entries = []
        for item in data["referrals"]:
            plan = PurePosixPath(item["plan"])
            if len(plan.parts) != 2 or plan.parts[0] != "plans" or plan.suffix != ".docx" or plan.name.startswith("."):
                raise ValueError(f"plan {item['plan']!r} is not in the run's plans folder")
            if "referral" not in item:
                raise ValueError("no pupil data (made by an older version of reintegrate)")
            entries.append(Entry(item["referral_id"], str(plan), _referral_from_json(item["referral"]),
                                 tuple(date.fromisoformat(d) for d in item["reviews"])))
        as_of = date.fromisoformat(data["as_of"]) if data.get("as_of") else None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UnknownRunError(tracker_path, f"the manifest.json of run {run_id} cannot be read ({exc}); run the "
                                            "referrals again to make a new tracker") from None
    if data.get("run_id") not in (None, run_id):
        raise UnknownRunError(tracker_path, f"the folder {run_dir} holds run {data.get('run_id')}, not run {run_id}")
    return Run(run_id, run_dir, as_of, entries)


def _manifest_run_id(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None


def find_run(tracker: Tracker, outbox: str | Path | None = None) -> Run:
    """The run the tracker came from: the folder the tracker sits in when it is that run's folder, else
    `outbox`/<run id>. Raises `UnknownRunError` (one sentence) when there is no such run."""
    path, run_id = tracker.path, tracker.run_id
    beside = path.parent
    beside_id = _manifest_run_id(beside)
    if run_id is None:
        if beside_id:
            return _load_run(path, beside, beside_id)
        raise UnknownRunError(path, f"the workbook has no run id (document property {RUN_ID_PROPERTY}) and does not "
                                    "sit in a run folder, so its run is unknown: use the review-tracker.xlsx that "
                                    "`reintegrate run` wrote, or keep it in its run folder")
    if not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise UnknownRunError(path, f"the workbook's run id {run_id!r} is not one `reintegrate run` writes; use the "
                                    "review-tracker.xlsx from the run folder")
    if beside_id == run_id:
        return _load_run(path, beside, run_id)
    if beside_id is not None:  # a tracker copied into another run's folder: which run's pupils would it mean?
        raise TrackerMismatchError(path, f"the tracker belongs to run {run_id} but sits in the folder of run "
                                         f"{beside_id}, so it is not applied to either; use the review-tracker.xlsx "
                                         "that is in its own run folder")
    if outbox is not None and (Path(outbox) / run_id).is_dir():
        return _load_run(path, Path(outbox) / run_id, run_id)
    where = f"beside the tracker nor in {outbox}" if outbox is not None else "beside the tracker"
    raise UnknownRunError(path, f"the tracker belongs to run {run_id}, which is not {where}: give --outbox the "
                                "folder holding that run's folder")


# --------------------------------------------------------------------------------------------- judging


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


def _id_key(text) -> str:
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


def _match_rows(tracker: Tracker, run: Run) -> dict[str, list[TrackerRow]]:
    """Every valid row under its run entry's Referral ID. Rows that do not fit the run raise
    `TrackerMismatchError`; a row naming another pupil, or a review on two differing rows, is rejected."""
    exact = {e.referral_id: e for e in run.entries}
    loose: dict[str, list] = defaultdict(list)
    for e in run.entries:
        loose[_id_key(e.referral_id)].append(e)
    problems: list[str] = []
    matched: dict[str, list[TrackerRow]] = defaultdict(list)
    for row in tracker.rows:
        if not row.ok or "referral_id" not in row.values:
            continue
        rid = row.values["referral_id"]
        entry = exact.get(rid) or (loose[_id_key(rid)][0] if len(loose.get(_id_key(rid), ())) == 1 else None)
        if entry is None:
            problems.append(f"row {row.number} has Referral ID '{rid}', which is not a referral of that run")
            continue
        number = row.values.get("review")
        if number is not None and number > len(entry.scheduled):
            scheduled = (f"only review{'s 1 to ' if len(entry.scheduled) > 1 else ' '}{len(entry.scheduled)}"
                         if entry.scheduled else "no reviews")
            problems.append(f"row {row.number} is review {number} of {entry.referral_id}, but that run scheduled "
                            f"{scheduled} for that pupil (type Extra in the Review cell for an extra review)")
            continue
        # a blank Pupil cell is an officer's added row (an extra review): its Referral ID must still be the run's
        if row.pupil is not None and normalise_heading(row.pupil) not in _pupil_names(entry.referral):
            # a tracker whose rows name other pupils belongs to another run (or was mistyped): applying any
            # of it could put one child's review in another child's plan
            problems.append(f"row {row.number}'s Pupil cell ({row.pupil_cell}) does not match the pupil of "
                            f"Referral ID {entry.referral_id}")
            continue
        matched[entry.referral_id].append(row)
    if problems:
        raise _mismatch(tracker, run, problems)
    for rows in matched.values():
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
    return matched


def _judge(tracker: Tracker, entry: Entry, rows: list[TrackerRow], rejected: set[int], as_of: date) -> PupilReviews:
    referral = entry.referral
    by_number = {row.values["review"]: row for row in rows if row.values.get("review") is not None}
    extras = [row for row in rows if row.values.get("review") is None]
    # an extra row dated on the day of a scheduled review whose row is gone is that review, renumbered blank
    for row in list(extras):
        for number, when in enumerate(entry.scheduled, start=1):
            if row.values["date"] == when and number not in by_number and number not in rejected:
                by_number[number] = row
                extras.remove(row)
                row.issues.append(tracker.issue(row, WARNING, "review", "review",
                                                f"the Review number is blank; taken as review {number} of "
                                                f"{entry.referral_id}, scheduled that day"))
                break
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
        if r.date < as_of:
            if r.status == SCHEDULED:
                r.overdue = True
            elif r.status == MISSED:  # still owed until a later review has been held
                r.overdue = not any(h.status == HELD and h.date > r.date for h in reviews)
    # the last review is on the last school day of the settling-in period (SPEC 4: counted in school weeks);
    # with no review scheduled, the period is taken in calendar weeks from the return
    settling_end = entry.scheduled[-1] if entry.scheduled else (
        referral.planned_return_date + timedelta(weeks=referral.settling_in_period_weeks))
    return PupilReviews(entry.referral_id, entry.plan, referral.upn, referral.planned_return_date, settling_end,
                        len(entry.scheduled), reviews, settling_in_over=as_of > settling_end)


# --------------------------------------------------------------------------------------------- writing


def _record(pupil: PupilReviews, as_of: date) -> list[dict]:
    """The plan's review record rows (`build_context`'s ``review_record``)."""
    rows = []
    for r in pupil.reviews:
        status = r.status
        if status == SCHEDULED:
            status = "Scheduled" if r.date >= as_of else "Not recorded"
        rows.append({"number": str(r.number) if r.number is not None else "Extra", "date": r.date,
                     "status": status, "outcome": r.outcome or "", "next_steps": r.next_steps or ""})
    return rows


def _plan_context(entry: Entry, pupil: PupilReviews, run: Run, as_of: date) -> dict:
    # The plan was prepared on the run's date (its clause 3.4 checklist says so); this version on `as_of`.
    prepared = run.as_of or as_of
    context = build_context(entry.referral, list(entry.scheduled), run_id=run.run_id, generated_on=prepared,
                            review_record=_record(pupil, as_of))
    context["generated_on"] = long_date(as_of)
    return context


def record_sha256(pupil: PupilReviews) -> str:
    """What the plan's review record says, apart from the as-of date (a scheduled review that has passed
    reads "Not recorded" later, which is not news): equal digests, nothing new to write or send."""
    rows = [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in row.items()}
            for row in _record(pupil, date.min)]
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


_TEMPLATES = None  # per process: (templates_dir, compiled templates)


def _plan_template(templates_dir):
    global _TEMPLATES
    from pipeline.write.render import PLAN, load_templates

    if _TEMPLATES is None or _TEMPLATES[0] != templates_dir:
        _TEMPLATES = (templates_dir, load_templates(templates_dir))
    return _TEMPLATES[1][PLAN]


@dataclass(frozen=True)
class _PlanJob:
    source: Path  # the officer's latest version: the plan as saved in Word, or the last reviewed version
    dest: Path
    context: dict  # build_context's, for the review record rows and for a plan made afresh


def _write_one(job: _PlanJob, templates_dir) -> tuple[str, list[str]]:
    """("kept", notes) when the latest version's review record table was filled in place; ("afresh", notes)
    when the table was gone and the plan was made again from the template."""
    from pipeline.write.plan_record import fill_review_record

    filled = fill_review_record(job.source, job.dest, job.context["review_record"])
    if filled is None:
        files.write_bytes(job.dest, _plan_template(templates_dir).render(job.context))
        return "afresh", [f"its review record table is no longer in {job.source.name.split('_')[0]}'s latest plan, "
                          "so this version was made afresh from the template: edits made in Word are not in it"]
    notes = []
    if filled.missing:
        notes.append("the review record table has no " + ", ".join(k.replace("_", " ").title() for k in filled.missing)
                     + " column, so that is not in the plan")
    if filled.replaced_typed_rows:
        notes.append(f"{filled.replaced_typed_rows} row(s) typed into the review record table in Word were replaced "
                     "by the tracker's (record reviews in the tracker)")
    return "kept", notes


def _render_batch(job) -> list[tuple[str, list[str]]]:
    templates_dir, items = job
    return [_write_one(item, templates_dir) for item in items]


def _write_plans(jobs: list[_PlanJob], templates_dir, workers: int | None, progress) -> list[tuple[str, list[str]]]:
    from pipeline.write.batch import choose_workers

    chunk = 50
    batches = [(templates_dir, jobs[i:i + chunk]) for i in range(0, len(jobs), chunk)]
    workers = choose_workers(len(jobs), workers)
    _plan_template(templates_dir)  # a broken template fails before the first plan
    outcomes: list[tuple[str, list[str]]] = []
    if workers == 1 or len(batches) <= 1:
        done_batches = map(_render_batch, batches)
        for done in done_batches:
            outcomes += done
            if progress:
                progress(len(done))
        return outcomes
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for done in pool.map(_render_batch, batches):
            outcomes += done
            if progress:
                progress(len(done))
    return outcomes


def _previous_state(run_dir: Path) -> dict[str, dict]:
    """The last `reviews` of this run, per Referral ID (case-insensitive): what its plans' records said."""
    try:
        data = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
        return {_id_key(p["referral_id"]): p for p in data.get("referrals", []) if isinstance(p, dict)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


# --------------------------------------------------------------------------------------------- the report


@dataclass
class ReviewReport:
    tracker: Path
    run_id: str
    run_dir: Path
    as_of: date
    pupils: list[PupilReviews]
    issues: list[Issue]  # file-level first, then by tracker row
    plans_written: list[str] = field(default_factory=list)  # relative to run_dir
    state_path: Path | None = None
    pdf_failed: tuple[str, ...] = ()  # pdf = true: a sentence per reviewed plan left without its PDF copy

    @property
    def overdue(self) -> list[tuple[str, Review]]:
        return [(p.referral_id, r) for p in self.pupils for r in p.overdue]

    @property
    def rejected_rows(self) -> list[int]:
        return sorted({i.row for i in self.issues if i.is_error and i.row is not None})

    @property
    def exit_code(self) -> int:
        """SPEC 1: 1 when any review is overdue or a tracker row was rejected, else 0."""
        return EXIT_OVERDUE if self.overdue or self.rejected_rows else EXIT_OK

    def counts(self) -> dict:
        reviews = [r for p in self.pupils for r in p.reviews]
        return {"pupils": len(self.pupils), "reviews": len(reviews),
                "held": sum(r.status == HELD for r in reviews), "missed": sum(r.status == MISSED for r in reviews),
                "cancelled": sum(r.status == CANCELLED for r in reviews),
                "scheduled": sum(r.status == SCHEDULED for r in reviews),
                "extra": sum(r.number is None for r in reviews), "overdue": len(self.overdue),
                "settling_in_shortfall": sum(p.shortfall for p in self.pupils),
                "rejected_rows": len(self.rejected_rows),
                "warnings": sum(not i.is_error for i in self.issues), "plans_written": len(self.plans_written)}

    def state(self) -> dict:
        """What `review-state.json` holds (see docs/reviews.md)."""
        return {"version": STATE_VERSION, "run_id": self.run_id, "tracker": self.tracker.name,
                "tracker_sha256": _sha256(self.tracker), "as_of": self.as_of.isoformat(), "totals": self.counts(),
                "issues": [i.as_dict() for i in self.issues],
                "referrals": [p.as_dict() for p in self.pupils]}

    def lines(self) -> list[str]:
        """The report for the officer: Referral IDs only, never a pupil's name."""
        c = self.counts()
        on = long_date(self.as_of)
        out = [f"{self.tracker.name} (run {self.run_id}): {c['pupils']} pupils, {c['reviews']} reviews: "
               f"{c['held']} held, {c['missed']} missed, {c['cancelled']} cancelled, {c['scheduled']} not recorded; "
               f"{c['overdue']} overdue on {on}"]
        for p in self.pupils:
            parts = []
            if p.overdue:
                parts.append("overdue " + ", ".join(f"{r.label} ({long_date(r.date)}{', missed' if r.status == MISSED else ''})"
                                                    for r in p.overdue))
            missed = [r for r in p.missed if not r.overdue]
            if missed:
                parts.append("missed " + ", ".join(f"{r.label} ({long_date(r.date)})" for r in missed))
            if p.cancelled:
                parts.append("cancelled " + ", ".join(f"{r.label} ({long_date(r.date)})" for r in p.cancelled))
            if p.shortfall:
                parts.append(f"settling-in period ended {long_date(p.settling_in_end)} with "
                             f"{len(p.held)} of {p.scheduled} review{'s' if p.scheduled != 1 else ''} held")
            if parts:
                out.append(f"  {p.referral_id}: " + "; ".join(parts))
        for issue in self.issues[:MAX_LISTED_ISSUES]:
            out.append(f"  {issue.severity}: {issue.message}")
        if len(self.issues) > MAX_LISTED_ISSUES:
            out.append(f"  ... and {len(self.issues) - MAX_LISTED_ISSUES} more issues (see {STATE_FILE})")
        for p in self.pupils:
            if p.version == "afresh" or p.notes:
                out.extend(f"  {p.referral_id}: {note}" for note in p.notes)
        for sentence in self.pdf_failed:
            out.append(f"  PDF copy not made: {sentence}")
        unchanged = sum(p.version == "unchanged" for p in self.pupils)
        if self.plans_written:
            out.append(f"Wrote {len(self.plans_written)} reviewed plan{'s' if len(self.plans_written) != 1 else ''} "
                       f"(*.reviewed-{self.as_of.isoformat()}.docx, each from the latest version of its plan) in "
                       f"{self.run_dir / 'plans'}")
        if unchanged:
            out.append(f"{unchanged} plan{'s' if unchanged != 1 else ''} left as {'they were' if unchanged != 1 else 'it was'}: "
                       "no review recorded since the last `reviews`")
        if not self.plans_written and not unchanged:
            out.append("No reviews are recorded yet, so no plan was rewritten")
        if self.state_path:
            out.append(f"Review state: {self.state_path}")
        return out


def _pdf_copies(run_dir: Path, pupils: list[PupilReviews], workers) -> tuple[str, ...]:
    """A PDF beside each reviewed plan written (`pdf = true`), as `run` makes one beside each plan: a sentence per
    plan left without one, naming its Referral ID."""
    from pipeline.deliver.pdf import convert_to_pdf, require_soffice

    try:
        soffice = require_soffice()
    except Exception as exc:  # noqa: BLE001 - LibreOffice missing: every plan is left without its PDF, said once
        return (f"no PDF copies were made ({exc})",)
    done = convert_to_pdf([run_dir / p.reviewed_plan for p in pupils], None, workers, soffice=soffice)
    return tuple(f"the reviewed plan of {p.referral_id}: {c.error}" for p, c in zip(pupils, done) if c.error)


def _sha256(path: Path) -> str:
    from pipeline.run import file_sha256

    return file_sha256(path)


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
    ids = {_id_key(e.referral_id): e.referral_id for e in run.entries}
    for row in tracker.rows:
        rid = row.values.get("referral_id") or row.raw.get("referral_id")
        number = row.values.get("review")
        if not row.ok and rid is not None and number is not None and _id_key(rid) in ids:
            rejected_numbers[ids[_id_key(rid)]].add(number)
    pupils = [_judge(tracker, entry, matched.get(entry.referral_id, []), rejected_numbers[entry.referral_id], as_of)
              for entry in run.entries]
    report = ReviewReport(tracker.path, run.run_id, run.run_dir, as_of, pupils, [])
    jobs, writing = [], []
    before = _previous_state(run.run_dir)
    for entry, pupil in zip(run.entries, pupils):
        if not pupil.recorded:
            continue
        pupil.record_sha256 = record_sha256(pupil)
        latest = newest_plan(run.run_dir / entry.plan)
        last = before.get(_id_key(entry.referral_id), {})
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
