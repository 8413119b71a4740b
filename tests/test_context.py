"""pipeline.write.context: the plain, display-ready dict every Word template is filled from."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from pipeline.write.context import (
    MINIMUM_EXPECTATIONS,
    SAMPLE_CONTEXT,
    build_context,
    letter_kind,
    long_date,
    sample_context,
    sample_referral,
    short_date,
)

REVIEWS = [date(2024, 10, 7), date(2024, 10, 21), date(2024, 11, 4)]


def make(**changes):
    return replace(sample_referral(), **changes)


def context(referral=None, reviews=REVIEWS, **kwargs):
    kwargs.setdefault("run_id", "run-1")
    kwargs.setdefault("generated_on", date(2024, 9, 2))
    return build_context(referral or sample_referral(), reviews, **kwargs)


def school_referral(**changes):
    return make(current_provision_type="School", current_provision_name="Sample Park Academy",
                reintegration_reason="Fair Access Protocol", ipa_reference=None,
                ipa_start_date=None, ipa_end_date=None, **changes)


# --- the contract ------------------------------------------------------------------------------

CONTRACT = {
    "": {"referral_id", "run_id", "generated_on", "provisional_note", "pupil", "parent",
         "placement", "dates", "support", "review_frequency_weeks", "settling_in_period_weeks",
         "reviews", "review_record", "checklist", "minimum_expectations", "officer", "letter"},
    "pupil": {"forename", "surname", "preferred_name", "greeting_name", "full_name", "upn",
              "date_of_birth", "year_group", "sen_status", "looked_after", "social_worker"},
    "parent": {"name", "email", "phone"},
    "placement": {"reason", "via_fap", "provision_type", "provision_name", "referring_school",
                  "receiving_school", "receiving_contact", "receiving_email", "ipa_reference",
                  "ipa_start", "ipa_end"},
    "dates": {"decision", "planned_return", "planning_meeting", "previous_return"},
    "support": {"key_worker", "buddy", "adjustments", "strengths", "needs", "additional_support"},
    "officer": {"name", "email"},
    "letter": {"kind", "clause"},
}
ROW_KEYS = {
    "reviews": {"number", "date", "weekday"},
    "review_record": {"number", "date", "status", "outcome", "next_steps"},
    "checklist": {"clause", "requirement", "status"},
    "minimum_expectations": {"step", "result", "outcome", "in_place"},
}


@pytest.mark.parametrize("ctx", [SAMPLE_CONTEXT, context(school_referral(), reviews=[])],
                         ids=["sample", "school-no-reviews"])
def test_every_contract_key_is_present(ctx):
    for section, keys in CONTRACT.items():
        holder = ctx if not section else ctx[section]
        assert keys <= set(holder), (section, keys - set(holder))
    for section, keys in ROW_KEYS.items():
        for row in ctx[section]:
            assert keys <= set(row), (section, keys - set(row))


def _plain(value, where="context"):
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            _plain(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _plain(item, f"{where}[{index}]")
    else:
        assert type(value) is str, f"{where} is {type(value).__name__}, not text"


def test_only_plain_dicts_lists_and_strings():
    ctx = context(provisional_note="The 2026/27 dates are provisional.")
    _plain(ctx)
    ctx = context()
    assert ctx.pop("provisional_note") is None
    _plain(ctx)


def test_sample_context_is_complete_and_a_fresh_copy_each_time():
    first = sample_context()
    first["pupil"]["full_name"] = "changed"
    assert sample_context()["pupil"]["full_name"] == SAMPLE_CONTEXT["pupil"]["full_name"]
    assert SAMPLE_CONTEXT["reviews"] and SAMPLE_CONTEXT["review_record"]
    assert SAMPLE_CONTEXT["support"]["adjustments"]
    assert copy.deepcopy(SAMPLE_CONTEXT) == sample_context()


# --- formats ----------------------------------------------------------------------------------


def test_dates_uk_long_and_short():
    assert long_date(date(2024, 9, 3)) == "Tuesday 3 September 2024"
    assert short_date(date(2024, 9, 3)) == "03/09/2024"
    ctx = context()
    assert ctx["generated_on"] == "Monday 2 September 2024"
    assert ctx["dates"]["planned_return"] == "Monday 23 September 2024"
    assert ctx["dates"]["short"]["planned_return"] == "23/09/2024"
    assert ctx["pupil"]["date_of_birth"] == "04/05/2010"
    assert ctx["placement"]["ipa_start"] == "Monday 22 April 2024"


@pytest.mark.parametrize("code, shown", [("R", "Reception"), ("1", "Year 1"), ("9", "Year 9"),
                                         ("11", "Year 11")])
def test_year_group(code, shown):
    assert context(make(year_group=code))["pupil"]["year_group"] == shown


def test_names_and_yes_no():
    ctx = context(make(preferred_name=None, looked_after_child=True, social_worker="Dana Worker"))
    pupil = ctx["pupil"]
    assert pupil["full_name"] == "Alexandra Example"
    assert pupil["greeting_name"] == "Alexandra"
    assert pupil["preferred_name"] == "None recorded"
    assert pupil["looked_after"] == "Yes"
    assert pupil["social_worker"] == "Dana Worker"
    assert context()["pupil"]["greeting_name"] == "Alex"
    assert ctx["placement"]["via_fap"] == "Yes"


def test_blank_optional_text_says_none_recorded():
    ctx = context(make(strengths_and_interests=None, needs_and_triggers="  ", additional_support="",
                       parent_carer_email=None, parent_carer_phone=None, planning_meeting_date=None,
                       previous_return_date=None))
    support = ctx["support"]
    assert support["strengths"] == support["needs"] == support["additional_support"] == \
        "None recorded"
    assert ctx["parent"]["email"] == ctx["parent"]["phone"] == "None recorded"
    assert ctx["dates"]["planning_meeting"] == "To be arranged"
    assert ctx["dates"]["previous_return"] == "None recorded"


def test_ipa_fields_not_applicable_when_not_in_an_ap():
    placement = context(school_referral())["placement"]
    assert placement["ipa_reference"] == placement["ipa_start"] == placement["ipa_end"] == \
        placement["ipa_dates"] == "Not applicable"


def test_adjustments_list_and_numbers_as_text():
    ctx = context(make(reasonable_adjustments=("None needed",), review_frequency_weeks=1,
                       settling_in_period_weeks=8))
    assert ctx["support"]["adjustments"] == ["None needed"]
    assert ctx["review_frequency_weeks"] == "1"
    assert ctx["settling_in_period_weeks"] == "8"
    assert ctx["review_frequency"] == "every school week"


# --- reviews ----------------------------------------------------------------------------------


def test_review_rows():
    rows = context()["reviews"]
    assert [r["number"] for r in rows] == ["1", "2", "3"]
    assert rows[0] == {"number": "1", "date": "Monday 7 October 2024", "weekday": "Monday",
                       "short": "07/10/2024", "week": "Week 2"}
    assert [r["week"] for r in rows] == ["Week 2", "Week 4", "Week 6"]  # every 2 school weeks of 6: never past 6


def test_review_record_rows_accept_dates_text_and_blanks():
    record = [
        {"number": 1, "date": date(2024, 10, 7), "status": "Held", "outcome": "Good start",
         "next_steps": None},
        {"review": "2", "date": "21/10/2024", "status": "Missed"},
    ]
    rows = context(review_record=record)["review_record"]
    assert rows[0] == {"number": "1", "date": "Monday 7 October 2024", "status": "Held",
                       "outcome": "Good start", "next_steps": ""}
    assert rows[1] == {"number": "2", "date": "21/10/2024", "status": "Missed", "outcome": "",
                       "next_steps": ""}
    assert context()["review_record"] == []


# --- letters and checklist --------------------------------------------------------------------


@pytest.mark.parametrize("provision, kind, clause", [
    ("Alternative provision", "invitation", "3.6"),
    ("Medical provision", "invitation", "3.6"),
    ("School", "request", "3.7"),
])
def test_letter_kind_follows_the_current_provision(provision, kind, clause):
    referral = make(current_provision_type=provision)
    assert letter_kind(referral) == (kind, clause)
    letter = context(referral)["letter"]
    assert (letter["kind"], letter["clause"]) == (kind, clause)


def clauses(ctx):
    return [row["clause"] for row in ctx["checklist"]]


def test_checklist_from_an_ap():
    ctx = context()
    assert clauses(ctx) == ["2.2", "3.1", "3.4", "3.6", "3.8"]
    status = {row["clause"]: row["status"] for row in ctx["checklist"]}
    assert "Alternative provision" in status["2.2"]
    assert status["3.1"].endswith("Yes.")
    assert "Monday 2 September 2024" in status["3.4"] and "before the return" in status["3.4"]
    assert "Ms Jo Teacher" in status["3.6"]
    assert "IPA-2024-001" in status["3.8"] and "Friday 18 October 2024" in status["3.8"]


def test_checklist_from_a_school_and_a_medical_provision():
    assert clauses(context(school_referral())) == ["2.2", "3.1", "3.4", "3.7"]
    medical = make(current_provision_type="Medical provision", reintegration_reason="Medical provision",
                   ipa_reference=None, ipa_start_date=None, ipa_end_date=None)
    assert clauses(context(medical)) == ["2.2", "3.1", "3.4", "3.6"]


def test_checklist_direction_off_site_adds_3_9():
    ctx = context(make(reintegration_reason="Direction off-site",
                       previous_return_date=date(2023, 1, 9)))
    assert clauses(ctx) == ["2.2", "3.1", "3.4", "3.6", "3.8", "3.9"]
    status = ctx["checklist"][-1]["status"]
    assert "Monday 22 April 2024" in status and "Monday 9 January 2023" in status


def test_checklist_flags_a_plan_prepared_after_the_return():
    ctx = context(generated_on=date(2024, 9, 30))
    status = {row["clause"]: row["status"] for row in ctx["checklist"]}["3.4"]
    assert "after the planned return date" in status


# --- minimum expectations -----------------------------------------------------------------------


def _policy_path() -> Path | None:
    here = Path(__file__).resolve()
    for folder in (here.parents[1] / "shared", here.parents[2] / "shared", Path("/work/shared")):
        candidate = folder / "reintegration-policy-2023-24.txt"
        if candidate.is_file():
            return candidate
    return None


def test_minimum_expectations_are_the_policy_table_verbatim():
    policy = _policy_path()
    if policy is None:
        pytest.skip("the policy text is not beside this checkout")
    text = policy.read_text(encoding="utf-8")
    table = text[text.index("Steps\tResult\tOutcome"):].splitlines()[1:]
    rows = [tuple(cell.strip() for cell in line.split("\t")) for line in table if line.strip()]
    assert rows == [tuple(row) for row in MINIMUM_EXPECTATIONS]


def test_minimum_expectations_say_what_this_pupil_has():
    rows = context()["minimum_expectations"]
    assert [(r["step"], r["result"], r["outcome"]) for r in rows] == list(MINIMUM_EXPECTATIONS)
    plan, people, adjustments = (r["in_place"] for r in rows)
    assert "3 reviews" in plan and "every 2 school weeks" in plan and "6-school-week" in plan
    assert "Monday 7 October 2024" in plan
    assert people == "Key worker: Mr Lee Mentor. Buddy: Priya (Year 9)."
    assert adjustments == ("Reasonable adjustments: Time-out card; Phased timetable for the first "
                           "two weeks; Quiet space at lunchtime.")
    none = context(reviews=[])["minimum_expectations"][0]["in_place"]
    assert "no review could be scheduled" in none


def test_provisional_note_passes_through():
    assert context(provisional_note="Provisional.")["provisional_note"] == "Provisional."
    assert context(provisional_note="")["provisional_note"] is None


def test_no_date_or_bool_leaks_into_text():
    flat = repr(context())
    assert "datetime" not in flat and "True" not in flat and "False" not in flat
    assert not re.search(r"\d{4}-\d{2}-\d{2}", flat)
