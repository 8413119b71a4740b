"""`reintegrate status`: the term register on one screen. Counts first, then what needs doing this week:
reviews overdue or due, plans not sent, rows waiting for a fix. Referral IDs only, never a pupil's name (the
screen ends up in logs and screenshots); the register itself has the names."""

from __future__ import annotations

from pipeline.register.view import MAY_HAVE_BEEN_SENT, SENT, TermView

SHOWN = 8  # lines per list: one screen; the register has the rest


def _uk(day) -> str:
    return day.strftime("%d/%m/%Y")


def _review(referral, review) -> str:
    label = f"review {review.number}" if review.number is not None else "an extra review"
    return f"{referral.referral_id} {label} ({review.status.lower()}, {_uk(review.date)})"


def _listed(title: str, lines: list[str], out: list[str]) -> None:
    if not lines:
        return
    out.append(f"  {title}:")
    out.extend(f"    {line}" for line in lines[:SHOWN])
    if len(lines) > SHOWN:
        out.append(f"    ... and {len(lines) - SHOWN} more: see the register")


def counts(view: TermView) -> list[str]:
    refs = view.referrals
    plans = [r.plan_sent for r in refs]
    reviews = [review for r in refs for review in r.reviews]
    overdue = sum(review.overdue for review in reviews)
    return [
        f"Term register as of {view.as_of:%A} {_uk(view.as_of)}: {len(refs)} referral{'s' * (len(refs) != 1)}, "
        f"{len(view.settling_in)} still settling in, {len(view.waiting)} row{'s' * (len(view.waiting) != 1)} "
        "waiting for a fix",
        f"  Plans: {plans.count(SENT)} sent, {plans.count(MAY_HAVE_BEEN_SENT)} may have been sent, "
        f"{len(view.not_sent)} not yet sent",
        f"  Reviews: {sum(r.held for r in refs)} held, {sum(r.missed for r in refs)} missed, {overdue} overdue "
        f"({len(view.overdue)} pupil{'s' * (len(view.overdue) != 1)}), {len(view.due_this_week())} due in the next "
        "7 days",
    ]


def to_do(view: TermView) -> list[str]:
    out: list[str] = []
    _listed("Overdue reviews (hold or rearrange them, then record them in the tracker)",
            [_review(r, review) for r in view.overdue for review in r.overdue], out)
    _listed("Reviews due in the next 7 days", [_review(r, review) for r, review in view.due_this_week()], out)
    _listed("Plans not sent (reintegrate send OUTBOX)",
            [f"{r.referral_id}: {r.plan_sent.lower()} (run {r.run_folder})" for r in view.not_sent], out)
    _listed("Rows waiting for a fix (correct them and run the file again)",
            [f"{w.input_name} row {w.row}" + (f" ({w.referral_id})" if w.referral_id else "") + f": rules {w.rules}"
             for w in view.waiting], out)
    return ["Needs doing:", *out] if out else ["Nothing needs doing this week."]
