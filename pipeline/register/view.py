"""Where every referral of the term stands on a day, read from the ledger: the term register's rows and what
`reintegrate status` counts. A view, never a store: everything here is worked out again from the ledger (and,
for runs recorded before the ledger kept the register's facts, from that run's manifest.json).

One row per referral (Referral IDs compare case-insensitively), from its latest accepted version: the newest
`run` that accepted it. Its reviews are the ones the latest `reviews` recorded for that run (else for the
referral's newest run that has any), else the run's schedule with nothing recorded yet.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from marshmallow import ValidationError

from pipeline.check.calendar import SchoolCalendar, settling_in_end
from pipeline.check.reviews_due import overdue_flags
from pipeline.core.addresses import domain_of
from pipeline.core.errors import CalendarError
from pipeline.core.ledger import Ledger
from pipeline.write.plan_record import newest_versions, review_date_of
from schemas.manifest import load_manifest
from schemas.model import referral_key
from schemas.tracker import HELD, MISSED, SCHEDULED

# what the register says of a referral's plan
NOT_SENT = "Not yet sent"
UPDATE_NOT_SENT = "Update not yet sent"
DRAFT_ONLY = "Draft only (not sent)"
BLOCKED = "Blocked (address not allowed)"
MAY_HAVE_BEEN_SENT = "May have been sent"
SENT = "Sent"
NEEDS_SENDING = (NOT_SENT, UPDATE_NOT_SENT, DRAFT_ONLY, BLOCKED)
WEEK = timedelta(days=6)  # "this week": the as-of day and the six after it


@dataclass(frozen=True)
class Sent:
    """The newest send (or draft) of a referral's plan."""

    on: date
    status: str  # "sent", "uncertain" (may have been sent), "drafted", "blocked" (never sent: not allowed)
    version: str  # "original", or "reviewed 2027-01-20"
    domain: str  # the receiving school's address domain
    run_id: str
    current: bool  # it carried the latest accepted version (else an update is waiting)


@dataclass(frozen=True)
class ReviewDue:
    number: int | None
    date: date
    status: str
    overdue: bool


@dataclass(frozen=True)
class Referral:
    """One row of the register."""

    referral_id: str
    pupil: str
    receiving_school: str
    route: str
    planned_return: date
    settling_in_end: date | None
    protected_until: date | None  # clause 3.9: no direction off-site before this day's end
    reviews: tuple[ReviewDue, ...]
    sent: Sent | None
    run_id: str
    run_folder: str
    latest_version: str = "original"  # of the plan: "original", or "reviewed 2027-01-20" once `reviews` wrote one

    @property
    def held(self) -> int:
        return sum(r.status == HELD for r in self.reviews)

    @property
    def missed(self) -> int:
        return sum(r.status == MISSED for r in self.reviews)

    @property
    def overdue(self) -> list[ReviewDue]:
        return [r for r in self.reviews if r.overdue]

    @property
    def next_review(self) -> ReviewDue | None:
        return next((r for r in self.reviews if r.status == SCHEDULED and not r.overdue), None)

    @property
    def plan_sent(self) -> str:
        if self.sent is None:
            return NOT_SENT
        if not self.sent.current and self.sent.status != "blocked":
            return UPDATE_NOT_SENT
        return {"sent": SENT, "uncertain": MAY_HAVE_BEEN_SENT, "blocked": BLOCKED}.get(self.sent.status, DRAFT_ONLY)

    @property
    def needs_sending(self) -> bool:
        return self.plan_sent in NEEDS_SENDING


@dataclass(frozen=True)
class Waiting:
    """A rejected row no later run has accepted: the officer still has to fix it."""

    input_name: str
    row: int | None
    referral_id: str | None
    rules: str
    run_id: str
    run_folder: str


@dataclass
class TermView:
    as_of: date
    referrals: list[Referral] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)

    @property
    def overdue(self) -> list[Referral]:
        return [r for r in self.referrals if r.overdue]

    @property
    def not_sent(self) -> list[Referral]:
        return [r for r in self.referrals if r.needs_sending]

    def due_this_week(self) -> list[tuple[Referral, ReviewDue]]:
        return [(r, review) for r in self.referrals for review in r.reviews
                if review.status == SCHEDULED and self.as_of <= review.date <= self.as_of + WEEK]

    @property
    def settling_in(self) -> list[Referral]:
        return [r for r in self.referrals if r.settling_in_end is None or r.settling_in_end >= self.as_of]


def term_view(ledger: Ledger, as_of: date, calendar: SchoolCalendar | None = None,
              outbox: Path | None = None) -> TermView:
    """The term on `as_of`, from the ledger; `outbox` (default: the ledger's folder) holds the run folders."""
    db = ledger.db
    latest = _latest_versions(db, RunFolders(outbox or ledger.path.parent))
    _fill_from_manifests(latest, calendar)
    recorded = _review_records(db)
    sends = _latest_sends(db)
    versions = _plan_versions(latest)
    referrals = []
    for key, row in sorted(latest.items(), key=lambda kv: (kv[1]["planned_return"], kv[0])):
        reviews = _reviews_of(row, recorded.get(key, {}), as_of)
        version = versions.get(row["run_dir"], {}).get(_stem(row["plan"]))
        version = f"reviewed {review_date_of(Path(version))}" if version else "original"
        referrals.append(Referral(
            row["referral_id"], row["pupil"] or "", row["receiving_school"] or "", row["route"] or "",
            _day(row["planned_return"]), _day(row["settling_in_end"]), _day(row["protected_until"]), reviews,
            _sent(sends.get(key), row, version), row["run_id"], os.path.basename(row["run_dir"]), version))
    return TermView(as_of, referrals, _waiting(db, latest))


def _stem(plan: str | None) -> str | None:
    return os.path.splitext(os.path.basename(plan))[0] if plan else None


def _plan_versions(latest: dict[str, dict]) -> dict[str, dict[str, str]]:
    """Each run folder's reviewed plan versions (`plan_record.newest_versions`), one look at each folder."""
    return {run_dir: newest_versions(Path(run_dir) / "plans") for run_dir in {row["run_dir"] for row in latest.values()}}


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


_REFERRAL_COLUMNS = ("run_id", "referral_id", "referral_key", "planned_return", "plan", "pupil", "receiving_school",
                     "route", "reviews", "settling_in_end", "protected_until", "substance")


class RunFolders:
    """Where a run folder is now: the ledger records it as the command was given it (`outbox/<run id>`,
    relative to the folder the officer worked in), and a scheduled `status` starts somewhere else. Run folders
    live in the outbox, so a relative one is looked for there first."""

    def __init__(self, outbox: Path):
        self.outbox = Path(outbox)
        self._found: dict[str, str] = {}

    def __call__(self, recorded: str) -> str:
        found = self._found.get(recorded)
        if found is None:
            path = Path(recorded)
            beside = self.outbox / path.name
            found = self._found[recorded] = str(path if path.is_absolute() or not beside.is_dir() else beside)
        return found


def _latest_versions(db, run_folder: RunFolders) -> dict[str, dict]:
    """The newest `run` that accepted each referral (run ids sort by time), by Referral ID key."""
    have = {row[1] for row in db.execute("PRAGMA table_info(referrals)")}
    columns = ", ".join(f"referrals.{c}" if c in have else f"NULL AS {c}" for c in _REFERRAL_COLUMNS)
    rows = db.execute(f"SELECT {columns}, runs.run_dir FROM referrals JOIN runs USING (run_id)"
                      " WHERE runs.kind = 'run' ORDER BY referrals.run_id").fetchall()
    latest = {}
    for values in rows:
        row = dict(zip((*_REFERRAL_COLUMNS, "run_dir"), values))
        row["run_dir"] = run_folder(row["run_dir"])
        latest[row["referral_key"] or referral_key(row["referral_id"])] = row
    return latest


def _fill_from_manifests(latest: dict[str, dict], calendar: SchoolCalendar | None) -> None:
    """A run recorded before the ledger kept the register's facts: read them from its manifest.json."""
    by_run: dict[str, list[dict]] = {}
    for row in latest.values():
        if row["pupil"] is None:
            by_run.setdefault(row["run_dir"], []).append(row)
    for run_dir, rows in by_run.items():
        try:
            manifest = load_manifest(json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, ValidationError):
            continue  # the row still shows what the ledger has
        pupils = {referral_key(e["referral_id"]): e for e in manifest["referrals"] if e["referral"]}
        for row in rows:
            entry = pupils.get(referral_key(row["referral_id"]))
            if entry is None:
                continue
            referral = entry["referral"]
            row.update(pupil=referral.shown_name,
                       receiving_school=referral.receiving_school, route=referral.reintegration_reason,
                       reviews=",".join(d.isoformat() for d in entry["reviews"]),
                       settling_in_end=settling_in_end(referral.planned_return_date,
                                                       referral.settling_in_period_weeks, entry["reviews"]).isoformat())
            if calendar is not None:
                try:
                    row["protected_until"] = calendar.protected_period_end(referral.planned_return_date).isoformat()
                except CalendarError:
                    pass


def _review_records(db) -> dict[str, dict[str, list[tuple]]]:
    """Recorded reviews by Referral ID key, then by run: (number, scheduled, date, status, recorded at)."""
    found: dict[str, dict[str, list[tuple]]] = {}
    for run_id, key, number, scheduled, when, status, at in db.execute(
            "SELECT run_id, referral_key, number, scheduled, date, status, recorded_at FROM review_records"
            " ORDER BY date, number"):
        found.setdefault(key, {}).setdefault(run_id, []).append(
            (number, _day(scheduled), date.fromisoformat(when), status, at))
    return found


def _reviews_of(row: dict, by_run: dict[str, list[tuple]], as_of: date) -> tuple[ReviewDue, ...]:
    """The latest version's schedule, with what any `reviews` recorded for this referral laid over it: a review
    held under an earlier version of the referral (its tracker) is still held, matched by its scheduled day.
    Where two trackers say different things of one review, the later `reviews` wins; a blank (Scheduled)
    never hides a recorded one."""
    schedule = {date.fromisoformat(d): [n, date.fromisoformat(d), SCHEDULED]
                for n, d in enumerate((row["reviews"] or "").split(","), start=1) if d}
    extras: dict[tuple, list] = {}
    records = sorted((r for records in by_run.values() for r in records), key=lambda r: r[4])
    for number, scheduled, when, status, _ in records:
        if number is None or scheduled is None:
            extras[(when, status)] = [None, when, status]
        elif scheduled in schedule:
            review = schedule[scheduled]
            if status != SCHEDULED:
                review[1:] = [when, status]
            elif review[2] == SCHEDULED:
                review[1] = when  # moved to another day, nothing recorded yet
    reviews = sorted([*schedule.values(), *extras.values()], key=lambda r: (r[1], r[0] or 99))
    flags = overdue_flags([(when, status) for _, when, status in reviews], as_of)
    return tuple(ReviewDue(number, when, status, flag) for (number, when, status), flag in zip(reviews, flags))


def _latest_sends(db) -> dict[str, list[tuple]]:
    """Each referral's sends and drafts that reached (or may have reached) the school, and the sends refused
    for an address outside allowed_domains, newest first."""
    have = {row[1] for row in db.execute("PRAGMA table_info(sends)")}
    plan = "plan" if "plan" in have else "NULL"
    found: dict[str, list[tuple]] = {}
    for key, *rest in db.execute(
            f"SELECT referral_key, run_id, status, at, substance, recipients, {plan} FROM sends"
            " WHERE status IN ('sent', 'uncertain', 'drafted', 'blocked') ORDER BY id DESC"):
        found.setdefault(key, []).append(tuple(rest))
    return found


def _sent(history: list[tuple] | None, row: dict, latest_version: str) -> Sent | None:
    """The newest delivery (a real send before a draft); `current` when it carried this version: the same run,
    or the same substance (what `send` compares: a re-run that changed nothing for this pupil sends nothing),
    and, when the plan has a reviewed version, that version (one written since is an update to send)."""
    if not history:
        return None
    # what reached the school counts first, then a draft, then a refusal (once something went, a later
    # refusal of a re-send does not undo it)
    delivered = ([h for h in history if h[1] in ("sent", "uncertain")] or [h for h in history if h[1] == "drafted"]
                 or history)
    run_id, status, at, substance, recipients, plan = delivered[0]
    current = run_id == row["run_id"] or (substance is not None and substance == row["substance"])
    reviewed = review_date_of(Path(plan)) if plan else None
    version = f"reviewed {reviewed}" if reviewed else "original" if plan else ""
    # as `send` decides: a plan as `run` wrote it matches on substance alone; a reviewed version must be the one
    # that went
    current = current and (not plan or latest_version == "original" or version == latest_version)
    first = (recipients or "").split(", ")[0]
    return Sent(date.fromisoformat(at[:10]), status, version, domain_of(first) if first else "", run_id, current)


def _waiting(db, latest: dict[str, dict]) -> list[Waiting]:
    """Rejected rows of the newest run (or validate) of each input file, unless a later run accepted their
    Referral ID (the officer fixed the row and ran a file under another name); a referral rejected in two
    files is listed once, from the newer."""
    rows = db.execute(
        "SELECT rejections.run_id, runs.input_name, runs.run_dir, rejections.row, rejections.referral_id,"
        " rejections.referral_key, rejections.rules FROM rejections JOIN runs USING (run_id)"
        " WHERE rejections.run_id = (SELECT max(r2.run_id) FROM runs r2 WHERE r2.input_name = runs.input_name)"
        " ORDER BY rejections.run_id DESC, rejections.row").fetchall()
    newest: dict[str, str] = {}  # Referral ID key -> the newest run that rejected it
    for run_id, *_, key, _rules in rows:
        if key:
            newest.setdefault(key, run_id)
    waiting = []
    for run_id, input_name, run_dir, row, referral_id, key, rules in rows:
        accepted = latest.get(key) if key else None
        if (accepted is not None and accepted["run_id"] > run_id) or (key and newest[key] != run_id):
            continue
        waiting.append(Waiting(input_name, row, referral_id, rules, run_id, os.path.basename(run_dir)))
    return sorted(waiting, key=lambda w: (w.input_name, w.row or 0))
