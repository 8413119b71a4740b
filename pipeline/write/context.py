"""The data a Word template sees: one plain dict per referral, built by `build_context`.

Templates are edited by officers, so everything they can reach is already display-ready text: only
dicts, lists and strings (numbers too are strings), no dates, no booleans, no None except
`provisional_note`. A template never needs a filter to show a value.

Date formats (UK):

* long, ``"Monday 3 September 2024"``: every date of an event (``generated_on``, ``dates.*``,
  ``placement.ipa_start``/``ipa_end``, ``reviews[].date``, ``review_record[].date``);
* short, ``"03/09/2024"``: ``pupil.date_of_birth`` and the extra ``short`` keys
  (``reviews[].short``, ``dates.short.*``), for narrow table cells.

Blank optional text becomes ``"None recorded"`` (``"To be arranged"`` for the planning meeting,
``"Not applicable"`` for IPA fields of a pupil who is not in an alternative provision), so a blank
cell in a plan always means the officer has something to write, never that data was lost.

Contract (other modules rely on these names; keys may be added, never removed)::

    referral_id, run_id, generated_on, provisional_note (str or None)
    pupil{forename, surname, preferred_name, greeting_name, full_name, upn, date_of_birth,
          year_group, sen_status, looked_after, social_worker}
    parent{name, email, phone, contact ("Email: ...\nPhone: ..." with only those recorded)}
    placement{reason, via_fap, provision_type, provision_name, referring_school, receiving_school,
              receiving_contact, receiving_email, ipa_reference, ipa_start, ipa_end,
              ipa_dates ("<start> to <end>")}
    dates{decision, planning_meeting_time, planning_meeting_venue ("To be arranged" when blank), decision_made ("was made on ..." or "is to be made on ..."), planned_return,
          planning_meeting, previous_return, short{...}}
    support{key_worker, buddy, adjustments[str], strengths, needs, additional_support}
    review_frequency_weeks, settling_in_period_weeks, review_frequency (e.g. "every 2 weeks")
    reviews[{number, date, weekday, short, week}]
    review_record[{number, date, status, outcome, next_steps}]
    checklist[{clause, requirement, status}]
    minimum_expectations[{step, result, outcome, in_place}]
    officer{name, email}
    letter{kind ("invitation"|"request"), clause ("3.6"|"3.7"), title}
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import date, datetime

from pipeline.check.calendar import review_weeks
from schemas.model import Referral

NONE_RECORDED = "None recorded"
TO_BE_ARRANGED = "To be arranged"
NOT_APPLICABLE = "Not applicable"

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")

# The policy's "agreed minimum expectations for a reintegration" table, verbatim (steps, result,
# outcome), in the policy's order.
MINIMUM_EXPECTATIONS = (
    (
        "A Reintegration Plan is drawn up and followed by all parties",
        "Regular and timely reviews are held and recorded on the Reintegration Plan to monitor "
        "progress or identify further support requirements",
        "Pupil is given a clear plan to engage well with the opportunity of a fresh start in school",
    ),
    (
        "Support staff and buddy are available to ensure pupil feels welcome for a successful "
        "reintegration",
        "Pupil feels supported and anxieties are reduced",
        "Pupil settles and engage well which leads to positive relationships being formed with "
        "teachers and pupils",
    ),
    (
        "Reasonable adjustments are explored and put in place to enable pupil to engage well",
        "Pupil understands and engages with the reintegration process",
        "Pupil is able to settle into school with the right support, at the right time in the right "
        "place",
    ),
)


def long_date(d: date | None, blank: str = NONE_RECORDED) -> str:
    """``date(2024, 9, 3)`` -> ``"Tuesday 3 September 2024"`` (English whatever the locale)."""
    if d is None:
        return blank
    return f"{_DAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]} {d.year}"


def short_date(d: date | None, blank: str = NONE_RECORDED) -> str:
    """``date(2024, 9, 3)`` -> ``"03/09/2024"``."""
    if d is None:
        return blank
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def _text(value, blank: str = NONE_RECORDED) -> str:
    if value is None:
        return blank
    text = str(value).strip()
    return text or blank


def _yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def _year_group(code: str) -> str:
    code = str(code).strip()
    if code.upper() in ("R", "RECEPTION"):
        return "Reception"
    if code.lower().startswith("year"):
        return code.title()
    return f"Year {code}"


def _is_ap_placement(referral: Referral) -> bool:
    """Clause 3.8: the pupil holds an AP placement with an Individual Placement Agreement."""
    return referral.current_provision_type == "Alternative provision"


def letter_kind(referral: Referral) -> tuple[str, str]:
    """Clause 3.6 (invitation: the pupil comes from an AP or a medical provision) or 3.7 (request:
    the pupil comes from a school), as `Referral.from_ap` decides."""
    if referral.from_ap:
        return "invitation", "3.6"
    return "request", "3.7"


def _review_rows(reviews: Iterable[date], every_weeks: int, settling_weeks: int) -> list[dict]:
    """Each review with the school week it closes (`calendar.review_weeks`: never past the settling-in period)."""
    rows = []
    weeks = review_weeks(every_weeks, settling_weeks)
    for number, d in enumerate(reviews, start=1):
        week = weeks[min(number, len(weeks)) - 1]  # more dates than weeks (hand-made data): never past the period
        rows.append({
            "number": str(number),
            "date": long_date(d),
            "weekday": _DAYS[d.weekday()],
            "short": short_date(d),
            "week": f"Week {week}",
        })
    return rows


def _record_value(row: Mapping, *keys: str):
    for key in keys:
        if key in row and row[key] not in (None, ""):
            return row[key]
    return None


def _record_rows(records: Iterable[Mapping]) -> list[dict]:
    """Recorded reviews (from the review tracker) as text. Accepts keys ``number`` (or ``review``),
    ``date`` (a date or text), ``status``, ``outcome``, ``next_steps``; blanks stay blank so the
    officer can add to them by hand."""
    rows = []
    for index, row in enumerate(records, start=1):
        number = _record_value(row, "number", "review")
        when = _record_value(row, "date")
        if isinstance(when, datetime):
            when = when.date()
        rows.append({
            "number": str(number if number is not None else index),
            "date": long_date(when) if isinstance(when, date) else _text(when, ""),
            "status": _text(_record_value(row, "status"), ""),
            "outcome": _text(_record_value(row, "outcome"), ""),
            "next_steps": _text(_record_value(row, "next_steps", "next steps"), ""),
        })
    return rows


def _checklist(r: Referral, ctx: dict, generated_on: date) -> list[dict]:  # long: one entry per clause, in the policy's order
    dates, placement = ctx["dates"], ctx["placement"]
    rows = [{
        "clause": "2.2",
        "requirement": "The reintegration follows an intervention in a medical provision, a period "
                       "of support in AP, a direction off-site to AP or a direction from the FAP.",
        "status": f"Reason recorded: {r.reintegration_reason}. Current provision: "
                  f"{r.current_provision_type}, {r.current_provision_name}.",
    }, {
        "clause": "3.1",
        "requirement": "Reintegration support is only available to pupils returning to mainstream "
                       "school via the Fair Access Protocol.",
        "status": f"Returning via the Fair Access Protocol: {_yes_no(r.returning_via_fap)}.",
    }]
    ready = ("The plan was prepared before the return."
             if generated_on <= r.planned_return_date else
             "The plan was prepared after the planned return date: agree it with the receiving "
             "school at once.")
    meeting = (f"planning meeting {dates['planning_meeting']}"
               if r.planning_meeting_date else "planning meeting to be arranged before the return")
    rows.append({
        "clause": "3.4",
        "requirement": "The reintegration starts when the decision to return is made; the plan is "
                       "drafted and ready to use before the pupil's return.",
        "status": (f"Decision expected {dates['decision']}; plan prepared ahead of it on {ctx['generated_on']}; "
                   if r.decision_date > generated_on else
                   f"Decision {dates['decision']}; plan prepared {ctx['generated_on']}; ")
                  + f"{meeting}; return {dates['planned_return']}. {ready}",
    })
    kind, _ = letter_kind(r)
    if kind == "invitation":
        rows.append({
            "clause": "3.6",
            "requirement": "A pupil reintegrating from an AP: the receiving school is invited to the "
                           "reintegration planning meeting.",
            "status": f"Invitation letter to {placement['receiving_contact']}, "
                      f"{placement['receiving_school']}, produced with this plan.",
        })
    else:
        rows.append({
            "clause": "3.7",
            "requirement": "A pupil reintegrating from a school: the Inclusions Team arranges the "
                           "reintegration planning meeting.",
            "status": f"Meeting request letter produced with this plan; the Inclusions Team "
                      f"({r.inclusions_officer}) arranges the meeting with "
                      f"{placement['receiving_school']}.",
        })
    if _is_ap_placement(r):
        rows.append({
            "clause": "3.8",
            "requirement": "AP placements are time limited, with start and end dates agreed on the "
                           "Individual Placement Agreement (IPA).",
            "status": f"IPA reference {placement['ipa_reference']}: {placement['ipa_start']} to "
                      f"{placement['ipa_end']}.",
        })
    if r.reintegration_reason == "Direction off-site":
        if r.last_return_date:
            previous = (f"the last return to school was {long_date(r.last_return_date)}"
                        f" ({r.last_return_source or 'recorded earlier'})")
        elif r.previous_return_date:
            previous = f"the last return to the referring school was {dates['previous_return']}"
        else:
            previous = "no earlier return to the referring school is recorded"
        rows.append({
            "clause": "3.9",
            "requirement": "A direction off-site is not considered within the first term after the "
                           "pupil has returned to their referring school.",
            "status": f"Direction dated {placement['ipa_start']}; {previous}. Checked against the "
                      f"first full term after any such return.",
        })
    return rows


def _minimum_expectations(r: Referral, ctx: dict) -> list[dict]:
    support, reviews = ctx["support"], ctx["reviews"]
    n = len(reviews)
    if n:
        plan = (f"This Reintegration Plan, with {n} review{'s' if n != 1 else ''} scheduled "
                f"{ctx['review_frequency']} through the {r.settling_in_period_weeks}-school-week "
                f"settling-in period, the first on {reviews[0]['date']}.")
    else:
        plan = (f"This Reintegration Plan; no review could be scheduled in the "
                f"{r.settling_in_period_weeks}-school-week settling-in period: agree the review dates.")
    people = f"Key worker: {support['key_worker']}. Buddy: {support['buddy']}."
    adjustments = "; ".join(support["adjustments"])
    in_place = (plan, people, f"Reasonable adjustments: {adjustments}.")
    return [{"step": step, "result": result, "outcome": outcome, "in_place": have}
            for (step, result, outcome), have in zip(MINIMUM_EXPECTATIONS, in_place)]


def build_context(referral: Referral, reviews: list[date], *, run_id: str, generated_on: date,  # long: every placeholder the templates can use, in one readable dict (docs/templates.md)
                  review_record: Iterable[Mapping] = (), provisional_note: str | None = None) -> dict:
    """Everything a plan or letter template can show for one accepted referral.

    `reviews` are the scheduled review dates (the calendar stage's job); `review_record` the reviews
    recorded in a returned tracker; `provisional_note` a sentence shown on the plan when the school
    calendar used is provisional.
    """
    r = referral
    from_ap = _is_ap_placement(r)
    ipa_blank = NONE_RECORDED if from_ap else NOT_APPLICABLE
    adjustments = [a.strip() for a in r.reasonable_adjustments if a and a.strip()] or [NONE_RECORDED]
    kind, clause = letter_kind(r)
    ctx: dict = {
        "referral_id": r.referral_id,
        "run_id": str(run_id),
        "generated_on": long_date(generated_on),
        "provisional_note": (provisional_note or None),
        "pupil": {
            "forename": r.legal_forename,
            "surname": r.legal_surname,
            "preferred_name": _text(r.preferred_name),
            "greeting_name": r.greeting_name,
            "full_name": f"{r.legal_forename} {r.legal_surname}",
            "upn": r.upn,
            "date_of_birth": short_date(r.date_of_birth),
            "year_group": _year_group(r.year_group),
            "sen_status": r.sen_status,
            "looked_after": _yes_no(r.looked_after_child),
            "social_worker": _text(r.social_worker),
        },
        "parent": {
            "name": r.parent_carer_name,
            "email": _text(r.parent_carer_email),
            "phone": _text(r.parent_carer_phone),
            # each labelled, only those recorded: never an unlabelled "None recorded" under an email
            "contact": "\n".join(f"{label}: {value}" for label, value in
                                  (("Email", r.parent_carer_email), ("Phone", r.parent_carer_phone)) if value)
                       or NONE_RECORDED,
        },
        "placement": {
            "reason": r.reintegration_reason,
            "via_fap": _yes_no(r.returning_via_fap),
            "provision_type": r.current_provision_type,
            "provision_name": r.current_provision_name,
            "referring_school": r.referring_school,
            "receiving_school": r.receiving_school,
            "receiving_contact": r.receiving_school_contact,
            "receiving_email": r.receiving_school_email,
            "ipa_reference": _text(r.ipa_reference, ipa_blank),
            "ipa_start": long_date(r.ipa_start_date, ipa_blank),
            "ipa_end": long_date(r.ipa_end_date, ipa_blank),
            "ipa_dates": (f"{long_date(r.ipa_start_date)} to {long_date(r.ipa_end_date)}"
                          if r.ipa_start_date or r.ipa_end_date else ipa_blank),
        },
        "dates": {
            "decision": long_date(r.decision_date),
            # never describe a decision after the day the plan is prepared as made (clause 3.4's warning)
            "decision_made": (f"is to be made on {long_date(r.decision_date)}" if r.decision_date > generated_on
                              else f"was made on {long_date(r.decision_date)}"),
            "planned_return": long_date(r.planned_return_date),
            "planning_meeting": long_date(r.planning_meeting_date, TO_BE_ARRANGED),
            "planning_meeting_time": _text(r.planning_meeting_time, TO_BE_ARRANGED),
            "planning_meeting_venue": _text(r.planning_meeting_venue, TO_BE_ARRANGED),
            "previous_return": long_date(r.previous_return_date),
            "short": {
                "decision": short_date(r.decision_date),
                "planned_return": short_date(r.planned_return_date),
                "planning_meeting": short_date(r.planning_meeting_date, TO_BE_ARRANGED),
                "previous_return": short_date(r.previous_return_date),
            },
        },
        "support": {
            "key_worker": _text(r.key_worker),
            "buddy": _text(r.buddy),
            "adjustments": adjustments,
            "strengths": _text(r.strengths_and_interests),
            "needs": _text(r.needs_and_triggers),
            "additional_support": _text(r.additional_support),
        },
        "review_frequency_weeks": str(r.review_frequency_weeks),
        "settling_in_period_weeks": str(r.settling_in_period_weeks),
        "review_frequency": ("every school week" if r.review_frequency_weeks == 1
                             else f"every {r.review_frequency_weeks} school weeks"),
        "reviews": _review_rows(reviews, r.review_frequency_weeks, r.settling_in_period_weeks),
        "review_record": _record_rows(review_record),
        "officer": {"name": r.inclusions_officer, "email": r.inclusions_officer_email},
        "letter": {
            "kind": kind,
            "clause": clause,
            "title": ("Invitation to a reintegration planning meeting" if kind == "invitation"
                      else "Request for a reintegration planning meeting"),
        },
    }
    ctx["checklist"] = _checklist(r, ctx, generated_on)
    ctx["minimum_expectations"] = _minimum_expectations(r, ctx)
    return ctx


def sample_referral() -> Referral:
    """A made-up pupil (no real person) with every field filled, for template checks and tests."""
    return Referral(
        referral_id="HAV-SAMPLE-001",
        upn="B801200005001",
        legal_forename="Alexandra",
        legal_surname="Example",
        preferred_name="Alex",
        date_of_birth=date(2010, 5, 4),
        year_group="9",
        sen_status="SEN support",
        looked_after_child=False,
        social_worker=None,
        parent_carer_name="Sam Example",
        parent_carer_email="sam.example@example.org",
        parent_carer_phone="01708 000000",
        reintegration_reason="Alternative provision",
        returning_via_fap=True,
        current_provision_type="Alternative provision",
        current_provision_name="Sample Pathways AP",
        referring_school="Sample Park Academy",
        receiving_school="Sample Hill School",
        receiving_school_contact="Ms Jo Teacher",
        receiving_school_email="jo.teacher@samplehill.example.sch.uk",
        ipa_reference="IPA-2024-001",
        ipa_start_date=date(2024, 4, 22),
        ipa_end_date=date(2024, 10, 18),
        decision_date=date(2024, 9, 2),
        planned_return_date=date(2024, 9, 23),
        planning_meeting_date=date(2024, 9, 16),
        key_worker="Mr Lee Mentor",
        buddy="Priya (Year 9)",
        reasonable_adjustments=("Time-out card", "Phased timetable for the first two weeks",
                                "Quiet space at lunchtime"),
        strengths_and_interests="Art and football; helpful with younger pupils.",
        needs_and_triggers="Crowded corridors\nSudden changes to the timetable",
        additional_support="Weekly check-in with the SENCo.",
        inclusions_officer="Pat Officer",
        inclusions_officer_email="pat.officer@havering.gov.uk",
        review_frequency_weeks=2,
        settling_in_period_weeks=6,
    )


def sample_context() -> dict:
    """A complete context from `sample_referral`, with one recorded review so that every template
    branch has data. A fresh copy each call."""
    return copy.deepcopy(SAMPLE_CONTEXT)


SAMPLE_CONTEXT: dict = build_context(
    sample_referral(),
    [date(2024, 10, 7), date(2024, 10, 21), date(2024, 11, 4)],
    run_id="20240902T090000-sample",
    generated_on=date(2024, 9, 2),
    review_record=[{"number": 1, "date": date(2024, 10, 7), "status": "Held",
                    "outcome": "Settling well; attendance 100%.",
                    "next_steps": "Keep the phased timetable for one more week."}],
)
