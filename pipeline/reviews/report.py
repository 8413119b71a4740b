"""What `reintegrate reviews` reports: the officer's lines (Referral IDs only, never a pupil's name), the exit
code, and `RUN_DIR/review-state.json`, which the next `reviews` of the run reads back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipeline.core import files
from pipeline.core.errors import ExitCode, Issue
from pipeline.reviews.judge import PupilReviews, Review, id_key
from pipeline.write.context import long_date
from schemas.tracker import CANCELLED, HELD, MISSED, SCHEDULED

__all__ = ["STATE_FILE", "ReviewReport", "previous_state"]

STATE_FILE = "review-state.json"
STATE_VERSION = 1
MAX_LISTED_ISSUES = 50  # the report lists this many issues; review-state.json has them all


def previous_state(run_dir: Path) -> dict[str, dict]:
    """The last `reviews` of this run, per Referral ID (case-insensitive): what its plans' records said."""
    try:
        data = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
        return {id_key(p["referral_id"]): p for p in data.get("referrals", []) if isinstance(p, dict)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


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
    ledger_problem: str | None = None  # the reviews could not be recorded for the term register

    @property
    def overdue(self) -> list[tuple[str, Review]]:
        return [(p.referral_id, r) for p in self.pupils for r in p.overdue]

    @property
    def rejected_rows(self) -> list[int]:
        return sorted({i.row for i in self.issues if i.is_error and i.row is not None})

    @property
    def exit_code(self) -> ExitCode:
        """ACT when any review is overdue or a tracker row was rejected, else OK (docs/reviews.md, "Exit codes")."""
        return ExitCode.ACT if self.overdue or self.rejected_rows else ExitCode.OK

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
                "tracker_sha256": files.file_sha256(self.tracker), "as_of": self.as_of.isoformat(), "totals": self.counts(),
                "issues": [i.as_dict() for i in self.issues],
                "referrals": [p.as_dict() for p in self.pupils]}

    def lines(self) -> list[str]:
        """The report for the officer: Referral IDs only, never a pupil's name."""
        return [text for _, text in self.entries()]

    def entries(self) -> list[tuple[str, str]]:
        """The report as (kind, line): "summary" (the first line), "problem" (an overdue review, a rejected
        row: what the officer must act on) or "info"."""
        c = self.counts()
        on = long_date(self.as_of)
        out = [f"{self.tracker.name} (run {self.run_id}): {c['pupils']} pupils, {c['reviews']} reviews: "
               f"{c['held']} held, {c['missed']} missed, {c['cancelled']} cancelled, {c['scheduled']} not recorded; "
               f"{c['overdue']} overdue on {on}"]
        kinds = ["summary"]
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
                kinds.append("problem" if p.overdue else "info")
        for issue in self.issues[:MAX_LISTED_ISSUES]:
            out.append(f"  {issue.severity}: {issue.message}")
            kinds.append("problem" if issue.is_error else "info")
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
        if self.ledger_problem:
            kinds += ["info"] * (len(out) - len(kinds)) + ["problem"]
            out.append(f"  {self.ledger_problem}")
        return list(zip(kinds + ["info"] * (len(out) - len(kinds)), out))

