"""Each policy rule firing and not firing, at its boundary, on real workbooks read the way a run reads them.

Dates are in 2024/25, the year the policy's calendar gives exactly: autumn 2 Sep-20 Dec 2024 (half-term 28 Oct-1 Nov),
spring 6 Jan-4 Apr 2025 (half-term 17-21 Feb), summer 22 Apr-22 Jul 2025 (5 May, half-term 26-30 May).
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pipeline.read.referrals import read_referrals
from pipeline.core.ledger import Ledger, now_iso
from pipeline.check.rules import RuleContext, check_sheet

AS_OF = date(2024, 12, 2)


def base(valid_row, **overrides) -> dict:
    """A valid school-to-school referral deciding on 2 Dec 2024 and returning on 6 Jan 2025."""
    row = valid_row(**{
        "Reintegration reason": "Fair Access Protocol", "Current provision type": "School",
        "Current provision name": "Hylands School", "IPA reference": None, "IPA start date": None, "IPA end date": None,
        "Decision date": date(2024, 12, 2), "Planned return date": date(2025, 1, 6), "Planning meeting date": None,
        "Previous return date": None, "Date of birth": date(2012, 3, 14), "Year group": "Year 8",
        "Review frequency (weeks)": 2, "Settling-in period (weeks)": 6,
    })
    row.update(overrides)
    return row


def check(workbook, calendar, rows, as_of=AS_OF, ledger=None):
    sheet = read_referrals(workbook(rows))
    return check_sheet(sheet, RuleContext(calendar, as_of, ledger))


def issues(result, rule=None):
    return [i for i in result.issues if rule is None or i.rule == rule]


def one(workbook, calendar, valid_row, as_of=AS_OF, ledger=None, **overrides):
    [result] = check(workbook, calendar, [base(valid_row, **overrides)], as_of=as_of, ledger=ledger)
    return result


def test_the_base_row_is_clean(workbook, calendar, valid_row):
    result = one(workbook, calendar, valid_row)
    assert result.accepted and result.issues == []
    # the last school day of school weeks 2, 4 and 6 from Monday 6 January
    assert result.reviews == [date(2025, 1, 17), date(2025, 1, 31), date(2025, 2, 14)]


# ---------------------------------------------------------------- 2.2
def test_2_2_unknown_route_is_rejected_citing_the_clause(workbook, calendar, valid_row):
    result = one(workbook, calendar, valid_row, **{"Reintegration reason": "Managed move"})
    [issue] = issues(result)
    assert (issue.rule, issue.severity, issue.column) == ("2.2", "error", "Reintegration reason")
    assert issue.message.startswith("2.2:") and "Managed move" in issue.message and f"cell {issue.cell}" in issue.message


def test_2_2_direction_off_site_must_be_in_an_ap(workbook, calendar, valid_row):
    result = one(workbook, calendar, valid_row, **{"Reintegration reason": "Direction off-site",
                                                  "IPA reference": "IPA-1", "IPA start date": date(2024, 10, 1),
                                                  "IPA end date": date(2025, 1, 3)})
    assert [(i.rule, i.column) for i in issues(result, "2.2")] == [("2.2", "Current provision type")]
    assert not result.accepted


@pytest.mark.parametrize("reason", ["Medical provision", "Alternative provision", "Fair Access Protocol", "fap", "AP"])
def test_2_2_the_four_routes_pass(workbook, calendar, valid_row, reason):
    result = one(workbook, calendar, valid_row, **{"Reintegration reason": reason})
    assert issues(result, "2.2") == []


# ---------------------------------------------------------------- 3.1
@pytest.mark.parametrize("typed, rejected", [("No", True), ("n", True), ("Yes", False), ("Y", False)])
def test_3_1_only_returns_via_fap(workbook, calendar, valid_row, typed, rejected):
    result = one(workbook, calendar, valid_row, **{"Returning via FAP": typed})
    assert bool(issues(result, "3.1")) is rejected
    assert result.accepted is not rejected


# ---------------------------------------------------------------- 3.4
@pytest.mark.parametrize("decided, rejected", [(date(2025, 1, 6), False), (date(2025, 1, 7), True)])
def test_3_4_decision_on_or_before_return(workbook, calendar, valid_row, decided, rejected):
    result = one(workbook, calendar, valid_row, **{"Decision date": decided})
    found = [i for i in issues(result, "3.4") if i.column == "Decision date" and i.is_error]
    assert bool(found) is rejected and result.accepted is not rejected


@pytest.mark.parametrize("decided, warned", [(AS_OF, False), (AS_OF + timedelta(days=1), True)])
def test_3_4_a_decision_after_the_as_of_date_warns(workbook, calendar, valid_row, decided, warned):
    result = one(workbook, calendar, valid_row, **{"Decision date": decided})
    found = [i for i in issues(result, "3.4") if i.column == "Decision date"]
    assert bool(found) is warned and result.accepted
    if warned:
        assert found[0].severity == "warning" and "still to be made" in found[0].message


@pytest.mark.parametrize("meeting, rejected", [(date(2025, 1, 6), False), (date(2025, 1, 7), True)])
def test_3_4_planning_meeting_on_or_before_return(workbook, calendar, valid_row, meeting, rejected):
    result = one(workbook, calendar, valid_row, **{"Planning meeting date": meeting})
    found = [i for i in issues(result, "3.4") if i.column == "Planning meeting date"]
    assert bool(found) is rejected


@pytest.mark.parametrize("as_of, warned", [(date(2025, 1, 6), False), (date(2025, 1, 7), True)])
def test_3_4_late_return_is_a_warning_not_a_rejection(workbook, calendar, valid_row, as_of, warned):
    result = one(workbook, calendar, valid_row, as_of=as_of)
    found = issues(result, "3.4")
    assert bool(found) is warned and result.accepted
    assert all(i.severity == "warning" and i.column == "Planned return date" for i in found)


# ---------------------------------------------------------------- 3.8
AP = {"Reintegration reason": "Alternative provision", "Current provision type": "Alternative provision",
      "Current provision name": "Olive Academy Havering", "IPA reference": "IPA-1001",
      "IPA start date": date(2024, 9, 9), "IPA end date": date(2024, 12, 20)}


def test_3_8_complete_ipa_passes(workbook, calendar, valid_row):
    assert one(workbook, calendar, valid_row, **AP).accepted


@pytest.mark.parametrize("blank", ["IPA reference", "IPA start date", "IPA end date"])
def test_3_8_ap_needs_every_ipa_field(workbook, calendar, valid_row, blank):
    result = one(workbook, calendar, valid_row, **{**AP, blank: None})
    [issue] = issues(result, "3.8")
    assert issue.column == blank and issue.message.startswith("3.8:") and not result.accepted


@pytest.mark.parametrize("end, rejected", [(date(2024, 9, 9), True), (date(2024, 9, 10), False)])
def test_3_8_end_after_start(workbook, calendar, valid_row, end, rejected):
    result = one(workbook, calendar, valid_row, **{**AP, "IPA end date": end})
    assert bool(issues(result, "3.8")) is rejected


def test_3_8_does_not_apply_to_a_school(workbook, calendar, valid_row):
    assert issues(one(workbook, calendar, valid_row), "3.8") == []


# ---------------------------------------------------------------- 3.9
DIRECTION = {**AP, "Reintegration reason": "Direction off-site"}


@pytest.mark.parametrize("returned, direction, rejected", [
    # return on the first day of spring: protected to the end of spring (4 Apr 2025)
    (date(2025, 1, 6), date(2025, 4, 4), True),
    (date(2025, 1, 6), date(2025, 4, 22), False),
    # return the day after: spring is not a full term, so protected to the end of summer (22 Jul 2025)
    (date(2025, 1, 7), date(2025, 7, 22), True),
    (date(2025, 1, 7), date(2025, 9, 2), False),
    # return on the last day of autumn: protected through spring
    (date(2024, 12, 20), date(2025, 4, 4), True),
    (date(2024, 12, 20), date(2025, 4, 22), False),
    # return in the Christmas holiday: the next term to start (spring) is the first full term
    (date(2024, 12, 27), date(2025, 4, 4), True),
    (date(2024, 12, 27), date(2025, 4, 22), False),
    # return in February half-term counts as inside spring
    (date(2025, 2, 18), date(2025, 7, 22), True),
])
def test_3_9_protected_period_after_the_previous_return(workbook, calendar, valid_row, returned, direction, rejected):
    row = {**DIRECTION, "Previous return date": returned, "IPA start date": direction,
           "IPA end date": direction + timedelta(days=90), "Decision date": direction, "Planned return date": direction + timedelta(days=91)}
    result = one(workbook, calendar, valid_row, as_of=direction, **row)
    found = issues(result, "3.9")
    assert bool(found) is rejected
    if rejected:
        assert found[0].column == "IPA start date" and found[0].message.startswith("3.9:")


def test_3_9_a_direction_before_the_return_is_not_judged(workbook, calendar, valid_row):
    row = {**DIRECTION, "Previous return date": date(2024, 11, 4), "IPA start date": date(2024, 10, 1),
           "IPA end date": date(2024, 12, 20)}
    assert issues(one(workbook, calendar, valid_row, **row), "3.9") == []


def record_earlier_return(ledger, upn: str, returned: date) -> None:
    """An earlier run's accepted referral HAV-OLD for this pupil, returning on `returned`."""
    ledger.record_run({"run_id": "R1", "kind": "run", "started_at": now_iso(), "input_name": "autumn.xlsx",
                       "sha256": "x", "as_of": "2024-09-01", "run_dir": "outbox/R1", "rows": 1, "accepted": 1,
                       "rejected": 0},
                      [{"referral_id": "HAV-OLD", "upn": upn, "planned_return": returned}])


def test_3_9_uses_the_ledger_for_an_earlier_run_of_the_same_pupil(tmp_path, workbook, calendar, valid_row):
    row = base(valid_row, **{**DIRECTION, "IPA start date": date(2025, 3, 3), "IPA end date": date(2025, 6, 30),
                             "Decision date": date(2025, 3, 3), "Planned return date": date(2025, 6, 30)})
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        record_earlier_return(ledger, row["UPN"], date(2025, 1, 6))
        [result] = check(workbook, calendar, [row], as_of=date(2025, 3, 3), ledger=ledger)
        [issue] = issues(result, "3.9")
        assert "HAV-OLD" in issue.message and "04/04/2025" in issue.message
        # the same Referral ID re-run is not "an earlier referral under another ID"
        row["Referral ID"] = "HAV-OLD"
        [again] = check(workbook, calendar, [row], as_of=date(2025, 3, 3), ledger=ledger)
        assert issues(again, "3.9") == []


def test_3_9_outside_the_calendar_is_a_clear_error(workbook, calendar, valid_row):
    row = {**DIRECTION, "Previous return date": date(2023, 6, 1), "IPA start date": date(2023, 11, 1)}
    [issue] = issues(one(workbook, calendar, valid_row, **row), "3.9")
    assert "outside the school calendar" in issue.message and issue.column == "Previous return date"


# ---------------------------------------------------------------- ME
@pytest.mark.parametrize("heading", ["Key worker", "Buddy", "Reasonable adjustments"])
def test_me_blank_support_is_rejected(workbook, calendar, valid_row, heading):
    result = one(workbook, calendar, valid_row, **{heading: None})
    [issue] = issues(result, "ME")
    assert issue.column == heading and issue.message.startswith("Minimum expectations")
    assert issue.cell is not None and not result.accepted


def test_me_none_needed_is_an_answer(workbook, calendar, valid_row):
    result = one(workbook, calendar, valid_row, **{"Reasonable adjustments": "None needed"})
    assert result.accepted and result.referral.reasonable_adjustments == ("None needed",)


def test_me_adjustments_split_on_semicolons_and_lines(workbook, calendar, valid_row):
    result = one(workbook, calendar, valid_row, **{"Reasonable adjustments": "Time-out card; Seat by door\nLunch club"})
    assert result.referral.reasonable_adjustments == ("Time-out card", "Seat by door", "Lunch club")


@pytest.mark.parametrize("every, settling, weeks", [(6, 4, [4]), (3, 2, [2]), (2, 2, [2]), (6, 6, [6]),
                                                    (4, 6, [4, 6]), (2, 5, [2, 4, 5])])
def test_me_reviews_run_through_the_settling_in_period_the_last_at_its_end(workbook, calendar, valid_row, every,
                                                                          settling, weeks):
    result = one(workbook, calendar, valid_row, **{"Review frequency (weeks)": every, "Settling-in period (weeks)": settling})
    assert result.accepted and issues(result, "ME") == []
    # Monday 6 January 2025: school week n ends on Friday 10 January + 7(n-1) days (no holiday before 17 Feb)
    assert result.reviews == [date(2025, 1, 10) + timedelta(weeks=n - 1) for n in weeks]


def test_review_defaults_are_every_two_weeks_for_six_weeks(workbook, calendar, valid_row):
    result = one(workbook, calendar, valid_row, **{"Review frequency (weeks)": None, "Settling-in period (weeks)": None})
    assert (result.referral.review_frequency_weeks, result.referral.settling_in_period_weeks) == (2, 6)
    assert len(result.reviews) == 3


# ---------------------------------------------------------------- FAP20
def nth_school_day_after(calendar, start, n):
    day = start
    for _ in range(n):
        day = calendar.next_school_day(day + timedelta(days=1))
    return day


@pytest.mark.parametrize("days, warned", [(20, False), (21, True)])
def test_fap20_twenty_school_days(workbook, calendar, valid_row, days, warned):
    decided = date(2024, 12, 2)
    returning = nth_school_day_after(calendar, decided, days)
    assert calendar.school_days_between(decided, returning) == days
    result = one(workbook, calendar, valid_row, **{"Decision date": decided, "Planned return date": returning})
    found = issues(result, "FAP20")
    assert bool(found) is warned and result.accepted
    if warned:
        assert found[0].severity == "warning" and "21 school days" in found[0].message


# ---------------------------------------------------------------- duplicate
def test_duplicate_ids_reject_every_row_sharing_them(workbook, calendar, valid_row):
    rows = [base(valid_row, seed=1), base(valid_row, seed=2), base(valid_row, seed=3)]
    rows[1]["Referral ID"] = "hav-77"
    rows[2]["Referral ID"] = "HAV-77 "
    results = check(workbook, calendar, rows)
    assert [r.accepted for r in results] == [True, False, False]
    assert all("rows 6, 7" in i.message or "rows 2, 3" in i.message or "used on rows" in i.message
               for r in results[1:] for i in issues(r, "duplicate"))


# ---------------------------------------------------------------- schema: age, year group, UPN
@pytest.mark.parametrize("born, rejected", [
    (date(2021, 1, 6), False),  # 4 on the return date
    (date(2021, 1, 7), True),  # 3
    (date(2008, 1, 7), False),  # 16
    (date(2008, 1, 6), True),  # 17
])
def test_age_four_to_sixteen_on_the_return_date(workbook, calendar, valid_row, born, rejected):
    result = one(workbook, calendar, valid_row, **{"Date of birth": born, "Year group": None})
    age = [i for i in result.issues if i.column == "Date of birth"]
    assert bool(age) is rejected


def test_year_group_inconsistent_with_birthday_is_a_warning(workbook, calendar, valid_row):
    result = one(workbook, calendar, valid_row, **{"Year group": "Year 9"})
    [issue] = [i for i in result.issues if i.column == "Year group"]
    assert issue.severity == "warning" and "Year 8" in issue.message and result.accepted


def test_31_august_cut_off(workbook, calendar, valid_row):
    # born 31 Aug 2013: the youngest of Year 7 in 2024/25; born 1 Sep 2013: the oldest of Year 6
    assert one(workbook, calendar, valid_row, **{"Date of birth": date(2013, 8, 31), "Year group": "7"}).issues == []
    assert one(workbook, calendar, valid_row, **{"Date of birth": date(2013, 9, 1), "Year group": "6"}).issues == []
    assert one(workbook, calendar, valid_row, **{"Date of birth": date(2013, 9, 1), "Year group": "7"}).issues != []


def test_temporary_upn_is_accepted_with_a_warning(workbook, calendar, valid_row):
    from schemas.parsers import upn_check_letter

    body = "80120000500A"
    result = one(workbook, calendar, valid_row, **{"UPN": upn_check_letter("X" + body) + body})
    [issue] = issues(result)
    assert result.accepted and issue.severity == "warning" and "temporary UPN" in issue.message


def test_bad_upn_is_a_schema_error_on_its_cell(workbook, calendar, valid_row):
    result = one(workbook, calendar, valid_row, UPN="A801200005001")
    [issue] = issues(result)
    assert (issue.rule, issue.column, issue.cell) == ("schema", "UPN", "B2")
    assert "check letter" in issue.message and "cell B2" in issue.message


def test_outside_the_calendar_is_an_error_not_a_guess(workbook, calendar, valid_row):
    result = one(workbook, calendar, valid_row, **{"Decision date": date(2028, 9, 1), "Planned return date": date(2028, 9, 20)},
                 as_of=date(2028, 9, 1))
    assert not result.accepted
    [issue] = [i for i in result.issues if i.is_error]
    assert issue.column == "Planned return date" and "outside the school calendar" in issue.message


# ---------------------------------------------------------------- found in review
@pytest.mark.parametrize("born, group, shown", [(date(2008, 8, 31), "11", "Year 12 (beyond Year 11)"),
                                                (date(2020, 10, 1), "R", "Nursery (before Reception)")])
def test_a_birthday_outside_reception_to_year_11_is_flagged(workbook, calendar, valid_row, born, group, shown):
    result = one(workbook, calendar, valid_row, **{"Date of birth": born, "Year group": group})
    [issue] = [i for i in result.issues if i.column == "Year group"]
    assert shown in issue.message and issue.severity == "warning"


@pytest.mark.parametrize("typed", ["-", ";", "• ;", "- -"])
def test_adjustments_that_list_nothing_break_the_minimum_expectations(workbook, calendar, valid_row, typed):
    result = one(workbook, calendar, valid_row, **{"Reasonable adjustments": typed})
    [issue] = issues(result, "ME")
    assert issue.column == "Reasonable adjustments" and "no adjustment is listed" in issue.message
    assert not result.accepted


def test_a_settling_in_period_across_the_summer_holiday_skips_it(workbook, calendar, valid_row):
    # return Mon 15 Jul 2024 (term ends Tue 23 Jul): week 1 is 15-21 Jul, week 2 has 22-23 Jul; weeks 3-4 start
    # on 2 Sep, after six weeks without a school day
    result = one(workbook, calendar, valid_row, as_of=date(2024, 7, 1), **{
        "Decision date": date(2024, 7, 1), "Planned return date": date(2024, 7, 15),
        "Review frequency (weeks)": 2, "Settling-in period (weeks)": 4, "Date of birth": date(2011, 3, 14),
        "Year group": "Year 8"})
    assert result.accepted and issues(result, "ME") == []
    assert result.reviews == [date(2024, 7, 23), date(2024, 9, 13)]


def test_fap20_names_the_date_that_is_outside_the_calendar_and_only_warns(workbook, calendar, valid_row):
    # a decision before the calendar's first term: the school days cannot be counted, and a warning rule
    # never rejects a row
    result = one(workbook, calendar, valid_row, as_of=date(2023, 7, 1),
                 **{"Decision date": date(2023, 7, 1), "Planned return date": date(2023, 9, 11),
                    "Date of birth": date(2011, 3, 14), "Year group": "Year 7"})
    [issue] = issues(result, "FAP20")
    assert issue.column == "Decision date" and issue.severity == "warning" and result.accepted
    assert "cannot be counted" in issue.message and "01/07/2023" in issue.message


def test_3_9_a_return_before_the_calendar_cannot_protect_a_much_later_direction(workbook, calendar, valid_row):
    row = {**DIRECTION, "Previous return date": date(2022, 4, 25), "IPA start date": date(2024, 9, 9)}
    result = one(workbook, calendar, valid_row, **row)
    assert issues(result, "3.9") == [] and result.accepted


def test_3_9_the_return_it_judged_against_reaches_the_plan(tmp_path, workbook, calendar, valid_row):
    from pipeline.write.context import build_context

    row = base(valid_row, **{**DIRECTION, "IPA start date": date(2025, 9, 2), "IPA end date": date(2025, 12, 19),
                             "Decision date": date(2025, 9, 2), "Planned return date": date(2025, 9, 3),
                             "Date of birth": date(2011, 3, 14), "Year group": "Year 9"})
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        record_earlier_return(ledger, row["UPN"], date(2024, 9, 3))
        [result] = check(workbook, calendar, [row], as_of=date(2025, 9, 1), ledger=ledger)
    assert result.accepted and result.referral.last_return_date == date(2024, 9, 3)
    context = build_context(result.referral, result.reviews, run_id="R2", generated_on=date(2025, 9, 1))
    [status] = [c["status"] for c in context["checklist"] if c["clause"] == "3.9"]
    assert "3 September 2024" in status and "HAV-OLD" in status


# ---------------------------------------------------------------- the edges of the calendar and of typing
def test_3_9_judged_with_provisional_term_dates_says_so_rejected_or_not(workbook, calendar, valid_row):
    # a previous return in 2025/26 (provisional): Mon 1 Sep 2025 is its first day, protected to the autumn's end
    row = {**DIRECTION, "Previous return date": date(2025, 9, 1), "Decision date": date(2025, 10, 1),
           "Planned return date": date(2026, 1, 5), "IPA end date": date(2026, 1, 2),
           "Date of birth": date(2012, 3, 14), "Year group": "Year 8"}
    inside = one(workbook, calendar, valid_row, as_of=date(2025, 10, 1), **{**row, "IPA start date": date(2025, 10, 1)})
    [error] = issues(inside, "3.9")
    assert error.is_error and "2025/26, which are provisional" in error.message
    after = one(workbook, calendar, valid_row, as_of=date(2025, 10, 1),
                **{**row, "IPA start date": date(2025, 12, 22), "IPA end date": date(2026, 3, 1)})
    assert issues(after, "3.9") == [] and after.accepted
    [note] = [i for i in after.issues if i.rule == "calendar"]
    assert note.severity == "warning" and note.message.startswith("3.9:") and "2025/26" in note.message
    # confirmed dates (2024/25) add nothing
    confirmed = one(workbook, calendar, valid_row, **{**DIRECTION, "Previous return date": date(2024, 9, 2),
                                                      "IPA start date": date(2025, 1, 6)})
    assert [i for i in confirmed.issues if i.rule == "calendar"] == []


def test_fap20_counted_with_provisional_dates_says_so(workbook, calendar, valid_row):
    result = one(workbook, calendar, valid_row, as_of=date(2026, 11, 2), **{
        "Decision date": date(2026, 11, 2), "Planned return date": date(2027, 1, 4)})
    [issue] = issues(result, "FAP20")
    assert "2026/27, which are provisional" in issue.message


@pytest.mark.parametrize("returned, why", [
    (date(2026, 12, 25), "in the school holidays between terms"),  # Christmas Day
    (date(2025, 1, 4), "a Saturday"),
    (date(2025, 2, 17), "a half-term or bank holiday"),
    (date(2025, 5, 5), "a half-term or bank holiday"),  # Early May bank holiday
])
def test_a_planned_return_that_is_not_a_school_day_is_an_error_naming_the_cell(workbook, calendar, valid_row,
                                                                               returned, why):
    result = one(workbook, calendar, valid_row, as_of=date(2024, 12, 2), **{"Planned return date": returned})
    [issue] = [i for i in result.issues if i.column == "Planned return date" and i.is_error]
    assert issue.rule == "3.4" and why in issue.message and f"cell {issue.cell}" in issue.message
    assert not result.accepted


@pytest.mark.parametrize("returned", [date(2025, 1, 6), date(2025, 2, 24), date(2025, 4, 22)])
def test_a_return_on_the_first_school_day_after_a_holiday_is_fine(workbook, calendar, valid_row, returned):
    result = one(workbook, calendar, valid_row, **{"Planned return date": returned,
                                                   "Decision date": date(2024, 12, 2)})
    assert result.accepted and [i for i in result.issues if i.is_error] == []


def test_no_referral_for_the_current_school_year_is_rejected_for_where_the_calendar_ends(workbook, calendar,
                                                                                       valid_row):
    # the newcomer's case: a return from 10 June 2027 under the default 2-weekly, 6-week settings
    result = one(workbook, calendar, valid_row, as_of=date(2027, 5, 20), **{
        "Decision date": date(2027, 5, 20), "Planned return date": date(2027, 6, 10),
        "Review frequency (weeks)": None, "Settling-in period (weeks)": None,
        "Date of birth": date(2014, 3, 14), "Year group": "Year 8"})
    assert result.accepted and issues(result, "ME") == []
    assert result.reviews == [date(2027, 6, 23), date(2027, 7, 7), date(2027, 7, 21)]


def test_a_review_schedule_past_the_calendar_only_warns(workbook, calendar, valid_row):
    result = one(workbook, calendar, valid_row, as_of=date(2028, 6, 20), **{
        "Decision date": date(2028, 6, 20), "Planned return date": date(2028, 7, 3),
        "Date of birth": date(2015, 3, 14), "Year group": "Year 8"})
    [issue] = issues(result, "ME")
    assert issue.severity == "warning" and result.accepted
    assert "only 1 of its 3 reviews could be dated" in issue.message and "21/07/2028" in issue.message


@pytest.mark.parametrize("typed", ["TBC", "tba", "TBD", "?", "N/A", "unknown", "None", "-", "??", "tbc."])
@pytest.mark.parametrize("heading", ["Key worker", "Buddy"])
def test_a_placeholder_instead_of_a_named_person_is_me(workbook, calendar, valid_row, heading, typed):
    result = one(workbook, calendar, valid_row, **{heading: typed})
    [issue] = issues(result, "ME")
    assert issue.column == heading and "placeholder" in issue.message and not result.accepted


@pytest.mark.parametrize("named", ["Ms Tbc Smith", "Noneka Obi", "Mr N/A-Reyes"])
def test_a_name_containing_a_placeholder_word_is_a_name(workbook, calendar, valid_row, named):
    assert one(workbook, calendar, valid_row, **{"Key worker": named}).accepted


@pytest.mark.parametrize("length", [2_400, 32_767])
def test_text_up_to_excels_own_limit(workbook, calendar, valid_row, length):
    result = one(workbook, calendar, valid_row, **{"Needs and triggers": "x" * length})
    assert result.accepted and len(result.referral.needs_and_triggers) == length


def test_text_past_excels_limit_is_an_error(tmp_path, calendar, valid_row):
    """Excel itself cannot hold it; a CSV can."""
    import csv

    row = base(valid_row, **{"Needs and triggers": "x" * 32_768})
    path = tmp_path / "referrals.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(row)
        writer.writerow([v.strftime("%d/%m/%Y") if isinstance(v, date) else v for v in row.values()])
    [result] = check_sheet(read_referrals(path), RuleContext(calendar, AS_OF))
    [issue] = [i for i in result.issues if i.column == "Needs and triggers"]
    assert "32,768 characters" in issue.message and "32,767" in issue.message and not result.accepted


@pytest.mark.parametrize("typed", ["31/12/9999", "01/01/1066", "9999-12-31"])
def test_any_date_at_all_gives_a_message_on_its_cell(workbook, calendar, valid_row, typed):
    for heading in ("Planned return date", "Decision date", "Date of birth", "IPA start date", "Previous return date"):
        result = one(workbook, calendar, valid_row, **{heading: typed})
        [issue] = [i for i in result.issues if i.column == heading and i.is_error]
        assert "not a plausible date" in issue.message and not result.accepted


def test_3_9_referral_ids_differing_only_in_case_are_one_referral(tmp_path, workbook, calendar, valid_row):
    row = base(valid_row, **{**DIRECTION, "IPA start date": date(2025, 3, 3), "IPA end date": date(2025, 6, 30),
                             "Decision date": date(2025, 3, 3), "Planned return date": date(2025, 6, 30),
                             "Referral ID": "l4"})
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        ledger.record_run({"run_id": "R1", "kind": "run", "started_at": now_iso(), "input_name": "autumn.xlsx",
                           "sha256": "x", "as_of": "2024-09-01", "run_dir": "outbox/R1", "rows": 1, "accepted": 1,
                           "rejected": 0}, [{"referral_id": "L4", "upn": row["UPN"], "planned_return": date(2025, 1, 6)}])
        [result] = check(workbook, calendar, [row], as_of=date(2025, 3, 3), ledger=ledger)
    assert issues(result, "3.9") == []  # L4's earlier run is l4's own referral, not another one


def test_a_date_in_the_year_9999_through_the_whole_run_is_a_message_on_its_cell(tmp_path, workbook, valid_row,
                                                                                monkeypatch):
    from click.testing import CliRunner

    from pipeline.cli.main import main

    monkeypatch.chdir(tmp_path)
    path = workbook([valid_row(1), valid_row(2, **{"Planned return date": "31/12/9999"})])
    result = CliRunner().invoke(main, ["run", str(path), "--as-of", "2026-11-30"])
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output.lower() and "Traceback" not in result.output
    assert "is not a plausible date" in result.output and "Planned return date" in result.output
