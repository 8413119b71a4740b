"""`reintegrate status`: the term register on one screen. Counts first, then what needs doing this week:
reviews overdue or due, plans not sent, rows waiting for a fix. Referral IDs only, never a pupil's name (the
screen ends up in logs and screenshots); the register itself has the names."""

from __future__ import annotations

from pipeline.core.printable import quoted
from pipeline.register.view import (BLOCKED, DRAFT_ONLY, MAY_HAVE_BEEN_SENT, NOT_SENT, SENT, UPDATE_NOT_SENT,
                                     TermView)

SHOWN = 8  # lines per list: one screen; the register has the rest


def _uk(day) -> str:
    return day.strftime("%d/%m/%Y")


def _review(referral, review) -> str:
    label = f"review {review.number}" if review.number is not None else "an extra review"
    return f"{referral.referral_id} {label} ({review.status.lower()}, {_uk(review.date)})"


def _listed(title: str, lines: list[str], out: list[tuple[str, str]], kind: str = "info", more: str = "") -> None:
    if not lines:
        return
    out.append((kind, f"  {title}:"))
    out.extend((kind, f"    {line}") for line in lines[:SHOWN])
    if len(lines) > SHOWN:
        out.append((kind, f"    ... and {len(lines) - SHOWN} more{more}"))


def counts(view: TermView) -> list[str]:
    refs = view.referrals
    plans = [r.plan_sent for r in refs]
    reviews = [review for r in refs for review in r.reviews]
    overdue = sum(review.overdue for review in reviews)
    unsent = sum(plan in (NOT_SENT, UPDATE_NOT_SENT) for plan in plans)
    return [
        f"Term register as of {view.as_of:%A} {_uk(view.as_of)}: {len(refs)} referral{'s' * (len(refs) != 1)}, "
        f"{len(view.settling_in)} still settling in, {len(view.waiting)} row{'s' * (len(view.waiting) != 1)} "
        "waiting for a fix",
        f"  Plans: {plans.count(SENT)} sent, {plans.count(MAY_HAVE_BEEN_SENT)} may have been sent, "
        f"{plans.count(DRAFT_ONLY)} drafted but not sent, {plans.count(BLOCKED)} blocked, {unsent} not yet sent",
        f"  Reviews: {sum(r.held for r in refs)} held, {sum(r.missed for r in refs)} missed, {overdue} overdue "
        f"({len(view.overdue)} pupil{'s' * (len(view.overdue) != 1)}), {len(view.due_this_week())} due in the next "
        "7 days",
    ]


def to_do(view: TermView, outbox: str = "outbox") -> list[tuple[str, str]]:
    """(kind, line): "problem" for what is overdue (shown even with --quiet), else "info"."""
    out: list[tuple[str, str]] = []
    overdue = sorted(((review.date, r.referral_id, _review(r, review)) for r in view.overdue for review in r.overdue))
    _listed("Overdue reviews (hold or rearrange them, then record them in the tracker)", [o[2] for o in overdue],
            out, "problem", ": see the review trackers")
    due = sorted((review.date, r.referral_id, _review(r, review)) for r, review in view.due_this_week())
    _listed("Reviews due in the next 7 days", [d[2] for d in due], out, more=": see the review trackers")
    _listed("Plans to send", _plans_to_send(view, outbox), out)
    _listed("Rows waiting for a fix (correct them and run the file again)",
            [f"{w.input_name} row {w.row}" + (f" ({w.referral_id})" if w.referral_id else "") + f": {w.rules}"
             for w in view.waiting], out, more=": see the register's second sheet")
    return [("info", "Needs doing:"), *out] if out else [("info", "Nothing needs doing this week.")]


def _plans_to_send(view: TermView, outbox: str) -> list[str]:
    """One line per run folder and kind: what to do about its plans the schools do not have."""
    groups: dict[tuple[str, str], int] = {}
    for r in view.not_sent:
        kind = {DRAFT_ONLY: "drafted", BLOCKED: "blocked"}.get(r.plan_sent, "send")
        groups[(r.run_folder, kind)] = groups.get((r.run_folder, kind), 0) + 1
    lines = []
    for (folder, kind), n in sorted(groups.items()):
        where = f"{outbox}/{folder}"
        if kind == "drafted":
            lines.append(f"{n} drafted, not sent: open them in {quoted(where + '/mail')} in Outlook and press Send")
        elif kind == "blocked":
            lines.append(f"{n} blocked (address not allowed): correct it, then reintegrate send {quoted(where)}")
        else:
            lines.append(f"{n} not yet sent: reintegrate send {quoted(where)}")
    return lines
