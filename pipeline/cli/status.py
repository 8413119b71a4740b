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


def to_do(view: TermView, outbox: str = "outbox") -> list[str]:
    out: list[str] = []
    overdue = sorted(((review.date, r.referral_id, _review(r, review)) for r in view.overdue for review in r.overdue))
    _listed("Overdue reviews (hold or rearrange them, then record them in the tracker)", [o[2] for o in overdue], out)
    due = sorted((review.date, r.referral_id, _review(r, review)) for r, review in view.due_this_week())
    _listed("Reviews due in the next 7 days", [d[2] for d in due], out)
    by_run: dict[str, list[str]] = {}
    for r in view.not_sent:
        by_run.setdefault(r.run_folder, []).append(r.referral_id)
    _listed("Plans not sent",
            [f"{len(ids)} from run {folder}: reintegrate send {outbox}/{folder}"
             for folder, ids in sorted(by_run.items())], out)
    _listed("Rows waiting for a fix (correct them and run the file again)",
            [f"{w.input_name} row {w.row}" + (f" ({w.referral_id})" if w.referral_id else "") + f": {w.rules}"
             for w in view.waiting], out)
    return ["Needs doing:", *out] if out else ["Nothing needs doing this week."]
