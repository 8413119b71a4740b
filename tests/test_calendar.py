"""The school calendar: shipped Havering dates, school-day arithmetic and the clause 3.9 protected period."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.check.calendar import SchoolCalendar, Term
from pipeline.core.errors import CalendarError, ConfigError

D = date
CAL = SchoolCalendar.load()
in_coverage = st.dates(min_value=CAL.first_day, max_value=CAL.last_day)

# Bank holidays in England during the shipped years: none may be a school day.
BANK_HOLIDAYS = [
    D(2023, 12, 25), D(2023, 12, 26),
    D(2024, 1, 1), D(2024, 3, 29), D(2024, 4, 1), D(2024, 5, 6), D(2024, 5, 27), D(2024, 8, 26),
    D(2024, 12, 25), D(2024, 12, 26),
    D(2025, 1, 1), D(2025, 4, 18), D(2025, 4, 21), D(2025, 5, 5), D(2025, 5, 26), D(2025, 8, 25),
    D(2025, 12, 25), D(2025, 12, 26),
    D(2026, 1, 1), D(2026, 4, 3), D(2026, 4, 6), D(2026, 5, 4), D(2026, 5, 25), D(2026, 8, 31),
    D(2026, 12, 25), D(2026, 12, 28),
    D(2027, 1, 1), D(2027, 3, 26), D(2027, 3, 29), D(2027, 5, 3), D(2027, 5, 31),
]

GOOD_TOML = """
[[year]]
name = "2024/25"
provisional = false
source = "test"
[[year.term]]
name = "Autumn"
start = 2024-09-02
end = 2024-12-20
holidays = [[2024-10-28, 2024-11-01]]
[[year.term]]
name = "Spring"
start = 2025-01-06
end = 2025-04-04
holidays = [[2025-02-17, 2025-02-21]]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "term-dates.toml"
    p.write_text(text, encoding="utf-8")
    return p


# --- the shipped file ------------------------------------------------------------------------------


def test_shipped_file_has_five_years_of_three_terms():
    """2023/24 up to the current school year (2026/27), and the year after it (pipeline/data/term-dates.toml), provisional."""
    years = [t.year for t in CAL.terms]
    assert sorted(set(years)) == ["2023/24", "2024/25", "2025/26", "2026/27", "2027/28"]
    assert all(years.count(y) == 3 for y in set(years))
    assert [t.name for t in CAL.terms[:3]] == ["Autumn", "Spring", "Summer"]
    assert CAL.first_day == D(2023, 9, 4) and CAL.last_day == D(2028, 7, 21)


def test_2024_25_is_exactly_as_spec():
    terms = [t for t in CAL.terms if t.year == "2024/25"]
    assert terms == [
        Term("2024/25", "Autumn", D(2024, 9, 2), D(2024, 12, 20), ((D(2024, 10, 28), D(2024, 11, 1)),), False),
        Term("2024/25", "Spring", D(2025, 1, 6), D(2025, 4, 4), ((D(2025, 2, 17), D(2025, 2, 21)),), False),
        Term("2024/25", "Summer", D(2025, 4, 22), D(2025, 7, 22),
             ((D(2025, 5, 5), D(2025, 5, 5)), (D(2025, 5, 26), D(2025, 5, 30))), False),
    ]
    assert terms[0].label == "Autumn 2024/25"


def test_unconfirmed_years_are_provisional():
    assert {t.year for t in CAL.terms if t.provisional} == {"2023/24", "2025/26", "2026/27", "2027/28"}


def test_every_term_starts_and_ends_on_a_school_day():
    for t in CAL.terms:
        assert CAL.is_school_day(t.start) and CAL.is_school_day(t.end), t.label


def test_no_bank_holiday_is_a_school_day():
    for d in BANK_HOLIDAYS:
        if CAL.covers(d):
            assert not CAL.is_school_day(d), d


def test_each_year_has_195_days():
    # Havering's dates include the five training days: 190 pupil days + 5.
    for year in {t.year for t in CAL.terms}:
        t = [t for t in CAL.terms if t.year == year]
        assert 1 + CAL.school_days_between(t[0].start, t[-1].end) == 195, year  # + the first day


def test_load_accepts_a_path(tmp_path):
    cal = SchoolCalendar.load(write(tmp_path, GOOD_TOML))
    assert cal.first_day == D(2024, 9, 2) and cal.last_day == D(2025, 4, 4)
    assert SchoolCalendar.load(str(write(tmp_path, GOOD_TOML))).terms == cal.terms


# --- is_school_day / term_of ----------------------------------------------------------------------


@pytest.mark.parametrize("d, expected", [
    (D(2024, 9, 2), True),     # first day of autumn term
    (D(2024, 12, 20), True),   # last day of autumn term
    (D(2024, 9, 7), False),    # Saturday
    (D(2024, 9, 8), False),    # Sunday
    (D(2024, 10, 28), False),  # first day of half-term
    (D(2024, 11, 1), False),   # last day of half-term
    (D(2024, 11, 4), True),    # back after half-term
    (D(2025, 5, 5), False),    # Early May bank holiday
    (D(2025, 5, 6), True),
    (D(2024, 12, 23), False),  # Christmas holiday, between terms
    (D(2025, 4, 21), False),   # Easter Monday, between terms
    (D(2025, 4, 22), True),    # first day of summer term
])
def test_is_school_day(d, expected):
    assert CAL.is_school_day(d) is expected


def test_term_of_counts_half_term_inside_the_term():
    assert CAL.term_of(D(2024, 10, 30)).label == "Autumn 2024/25"
    assert CAL.term_of(D(2024, 12, 20)).label == "Autumn 2024/25"
    assert CAL.term_of(D(2024, 12, 23)) is None
    assert CAL.term_of(D(2020, 1, 1)) is None


# --- next_school_day ------------------------------------------------------------------------------


@pytest.mark.parametrize("d, expected", [
    (D(2024, 9, 2), D(2024, 9, 2)),     # already a school day
    (D(2024, 9, 7), D(2024, 9, 9)),     # weekend -> Monday
    (D(2024, 10, 26), D(2024, 11, 4)),  # Saturday before half-term -> after it
    (D(2024, 10, 30), D(2024, 11, 4)),  # inside half-term
    (D(2025, 5, 3), D(2025, 5, 6)),     # weekend + bank holiday Monday
    (D(2025, 7, 23), D(2025, 9, 2)),    # summer holiday -> first day of next autumn
    (D(2024, 12, 21), D(2025, 1, 6)),   # Christmas
])
def test_next_school_day(d, expected):
    assert CAL.next_school_day(d) == expected


def test_next_school_day_past_the_last_school_day():
    # A term may end on a holiday after an officer's edit: there is then no next school day.
    cal = SchoolCalendar([Term("2024/25", "Autumn", D(2024, 9, 2), D(2024, 9, 8), ((D(2024, 9, 6), D(2024, 9, 6)),))])
    with pytest.raises(CalendarError, match="no school day on or after 2024-09-06"):
        cal.next_school_day(D(2024, 9, 6))


# --- school_days_between --------------------------------------------------------------------------


@pytest.mark.parametrize("start, end, expected", [
    (D(2024, 9, 2), D(2024, 9, 30), 20),   # exactly 20 school days (FAP20 not triggered)
    (D(2024, 9, 2), D(2024, 10, 1), 21),   # 21: FAP20 triggered
    (D(2024, 10, 14), D(2024, 11, 18), 20),  # across half-term
    (D(2024, 10, 14), D(2024, 11, 19), 21),
    (D(2024, 9, 2), D(2024, 9, 3), 1),     # next day counts, the start day does not
    (D(2024, 9, 6), D(2024, 9, 9), 1),     # Friday -> Monday
    (D(2024, 9, 2), D(2024, 9, 2), 0),
    (D(2024, 9, 9), D(2024, 9, 2), 0),     # end before start
    (D(2024, 12, 20), D(2025, 1, 6), 1),   # across Christmas
])
def test_school_days_between(start, end, expected):
    assert CAL.school_days_between(start, end) == expected


def test_school_days_between_outside_coverage():
    with pytest.raises(CalendarError):
        CAL.school_days_between(D(2023, 8, 1), D(2023, 9, 10))
    with pytest.raises(CalendarError):
        CAL.school_days_between(D(2028, 7, 1), D(2028, 9, 10))


# --- protected_period_end (clause 3.9) ------------------------------------------------------------


@pytest.mark.parametrize("returned, expected", [
    (D(2025, 1, 6), D(2025, 4, 4)),     # first day of spring term: spring is a full term
    (D(2025, 1, 7), D(2025, 7, 22)),    # day after the first day: next term (summer)
    (D(2025, 2, 18), D(2025, 7, 22)),   # spring half-term counts as inside spring
    (D(2024, 10, 30), D(2025, 4, 4)),   # autumn half-term -> spring
    (D(2024, 8, 10), D(2024, 12, 20)),  # summer holiday -> the autumn term that follows
    (D(2024, 12, 20), D(2025, 4, 4)),   # last day of autumn: inside autumn -> spring
    (D(2024, 12, 23), D(2025, 4, 4)),   # Christmas holiday -> spring
    (D(2025, 1, 4), D(2025, 4, 4)),     # Saturday before term -> that term
    (D(2023, 9, 4), D(2023, 12, 20)),   # first day of the calendar
    (D(2027, 4, 12), D(2027, 7, 21)),   # first day of the summer term 2027
    (D(2028, 4, 18), D(2028, 7, 21)),   # first day of the calendar's last term
])
def test_protected_period_end(returned, expected):
    assert CAL.protected_period_end(returned) == expected


def test_protected_period_before_the_first_term_is_an_error():
    # Before 2023/24 we cannot tell whether the return was inside an unlisted term: no guessing.
    with pytest.raises(CalendarError, match="2023-08-01 is outside the school calendar"):
        CAL.protected_period_end(D(2023, 8, 1))


def test_protected_period_needing_a_missing_term_is_an_error():
    with pytest.raises(CalendarError, match="term after Summer 2027/28, which is not in the school calendar"):
        CAL.protected_period_end(D(2028, 4, 19))


# --- provisional_terms ----------------------------------------------------------------------------


def test_provisional_terms():
    autumn_25 = CAL.term_of(D(2025, 10, 1))
    assert CAL.provisional_terms(D(2025, 1, 10), D(2025, 10, 1), D(2025, 10, 2), D(2025, 8, 1)) == [autumn_25]
    assert CAL.provisional_terms(D(2025, 1, 10)) == []
    assert CAL.provisional_terms() == []


# --- review_schedule ------------------------------------------------------------------------------


def dates(schedule) -> list:
    return list(schedule.dates)


def test_reviews_fall_on_the_last_school_day_of_their_school_week():
    # a Monday return: school weeks are Monday to Sunday; every 2 weeks through 6 -> weeks 2, 4 and 6
    schedule = CAL.review_schedule(D(2024, 9, 2), every_weeks=2, settling_weeks=6)
    assert dates(schedule) == [D(2024, 9, 13), D(2024, 9, 27), D(2024, 10, 11)] and schedule.weeks == (2, 4, 6)
    assert schedule.settling_in_end == D(2024, 10, 11) and schedule.complete


def test_a_week_wholly_in_half_term_does_not_count():
    # return Mon 14 Oct 2024; 28 Oct - 1 Nov is half-term: week 3 is 4-8 Nov
    schedule = CAL.review_schedule(D(2024, 10, 14), every_weeks=2, settling_weeks=6)
    assert dates(schedule) == [D(2024, 10, 25), D(2024, 11, 15), D(2024, 11, 29)]


def test_the_christmas_holiday_weeks_do_not_count():
    # return Mon 9 Dec 2024: weeks 1-2 are 9-20 Dec; 23 Dec - 5 Jan has no school day; week 3 starts 6 Jan
    schedule = CAL.review_schedule(D(2024, 12, 9), every_weeks=1, settling_weeks=6)
    assert dates(schedule) == [D(2024, 12, 13), D(2024, 12, 20), D(2025, 1, 10), D(2025, 1, 17),
                               D(2025, 1, 24), D(2025, 1, 31)]
    assert schedule.weeks == (1, 2, 3, 4, 5, 6)


def test_a_week_with_one_school_day_counts_and_its_review_is_that_day():
    # return Thu 19 Dec 2024: week 1 is 19-25 Dec, school on 19 and 20 Dec only
    schedule = CAL.review_schedule(D(2024, 12, 19), every_weeks=1, settling_weeks=2)
    assert dates(schedule) == [D(2024, 12, 20), D(2025, 1, 8)]  # week 2: 2-8 Jan, school from 6 Jan


def test_the_last_review_is_at_the_end_of_the_settling_in_period_and_labels_never_pass_it():
    schedule = CAL.review_schedule(D(2024, 9, 2), every_weeks=4, settling_weeks=6)
    assert dates(schedule) == [D(2024, 9, 27), D(2024, 10, 11)] and schedule.weeks == (4, 6)
    schedule = CAL.review_schedule(D(2024, 9, 2), every_weeks=6, settling_weeks=2)
    assert dates(schedule) == [D(2024, 9, 13)] and schedule.weeks == (2,)
    for every in range(1, 7):
        for settling in range(2, 17):
            weeks = CAL.review_schedule(D(2025, 1, 6), every, settling).weeks
            assert max(weeks) == settling and list(weeks) == sorted(set(weeks))


def test_review_schedule_from_a_weekend_return():
    # Saturday 3 May 2025: week 1 is 3-9 May (Mon 5 May a bank holiday), its last school day Fri 9 May
    assert dates(CAL.review_schedule(D(2025, 5, 3), every_weeks=1, settling_weeks=1)) == [D(2025, 5, 9)]


def test_review_schedule_past_the_calendar_keeps_what_it_can_date():
    schedule = CAL.review_schedule(D(2028, 7, 3), every_weeks=2, settling_weeks=6)
    assert dates(schedule) == [D(2028, 7, 14)] and schedule.settling_in_end is None and not schedule.complete
    assert schedule.wanted == 3


def test_a_return_in_june_2027_is_scheduled_in_full():
    schedule = CAL.review_schedule(D(2027, 6, 10), every_weeks=2, settling_weeks=6)
    assert schedule.complete and dates(schedule) == [D(2027, 6, 23), D(2027, 7, 7), D(2027, 7, 21)]


# --- coverage and bad files -----------------------------------------------------------------------


def test_date_outside_coverage_message():
    with pytest.raises(CalendarError) as e:
        CAL.is_school_day(D(2028, 9, 10))
    assert str(e.value) == (
        "2028-09-10 is outside the school calendar (2023-09-04 to 2028-07-21); "
        "add that year's term dates to the term-dates file"
    )
    assert not CAL.covers(D(2028, 9, 10)) and CAL.covers(D(2028, 7, 21))


@pytest.mark.parametrize("edit, message", [
    (("end = 2024-12-20", "end = 2024-08-01"),
     "term-dates.toml: year 2024/25 Autumn: end 2024-08-01 is before start 2024-09-02"),
    (("start = 2024-09-02", 'start = "2024-09-02"'),
     "term-dates.toml: year 2024/25 Autumn: start '2024-09-02' must be a date written like 2024-09-02, without quotes"),
    (("start = 2024-09-02", ""),
     "term-dates.toml: year 2024/25 Autumn: start is missing"),
    (("[[2024-10-28, 2024-11-01]]", "[[2024-10-28, 2025-01-10]]"),
     "term-dates.toml: year 2024/25 Autumn: holiday 2024-10-28 to 2025-01-10 is not inside the term"),
    (("holidays = [[2024-10-28", "holiday = [[2024-10-28"),
     "term-dates.toml: year 2024/25 Autumn: unknown key 'holiday'"),
    (('name = "Spring"', 'name = "Spring 1"'),
     "term-dates.toml: year 2024/25: term name 'Spring 1' must be one of Autumn, Spring, Summer"),
    (("start = 2025-01-06", "start = 2024-12-02"),
     "term-dates.toml: year 2024/25 Spring: starts 2024-12-02, before year 2024/25 Autumn ends"),
    (("start = 2025-01-06\nend = 2025-04-04\nholidays = [[2025-02-17, 2025-02-21]]",
      "start = 2026-01-05\nend = 2026-03-27"),
     "term-dates.toml: year 2024/25 Spring: starts 2026-01-05, 381 days after"),
    (("provisional = false", 'provisional = "no"'),
     "term-dates.toml: year 2024/25: provisional must be true or false"),
    (("end = 2024-12-20", "end = 2024-12-20 ="),
     "term-dates.toml: the term-dates file is not valid TOML"),
    (("[[year]]", "[[years]]"),
     "term-dates.toml: no [[year]] sections found"),
])
def test_bad_file_is_a_config_error(tmp_path, edit, message):
    old, new = edit
    with pytest.raises(ConfigError) as e:
        SchoolCalendar.load(write(tmp_path, GOOD_TOML.replace(old, new, 1)))
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml: the term-dates file cannot be read"):
        SchoolCalendar.load(tmp_path / "nope.toml")


def test_a_single_day_holiday_may_be_a_bare_date(tmp_path):
    cal = SchoolCalendar.load(write(tmp_path, GOOD_TOML.replace("[[2025-02-17, 2025-02-21]]", "[2025-02-17]")))
    assert not cal.is_school_day(D(2025, 2, 17)) and cal.is_school_day(D(2025, 2, 18))


def test_constructor_validates_order():
    a = Term("2024/25", "Autumn", D(2024, 9, 2), D(2024, 12, 20))
    b = Term("2024/25", "Spring", D(2025, 1, 6), D(2025, 4, 4))
    with pytest.raises(ConfigError, match="date order"):
        SchoolCalendar([b, a])
    with pytest.raises(ConfigError, match="no terms"):
        SchoolCalendar([])


# --- properties -----------------------------------------------------------------------------------


@given(in_coverage)
def test_next_school_day_is_a_school_day_on_or_after(d):
    n = CAL.next_school_day(d)
    assert n >= d and CAL.is_school_day(n)
    assert all(not CAL.is_school_day(d + timedelta(days=i)) for i in range((n - d).days))


@given(in_coverage, in_coverage, in_coverage)
def test_school_days_between_is_monotone(a, b1, b2):
    b1, b2 = sorted((b1, b2))
    assert CAL.school_days_between(a, CAL.next_school_day(b1)) <= CAL.school_days_between(a, CAL.next_school_day(b2))


@settings(max_examples=50)
@given(in_coverage, st.integers(0, 60))
def test_school_days_between_matches_counting(a, n):
    b = min(a + timedelta(days=n), CAL.last_day)
    days = (a + timedelta(days=i) for i in range(1, (b - a).days + 1))
    assert CAL.school_days_between(a, b) == sum(CAL.is_school_day(d) for d in days)


@given(st.dates(min_value=CAL.first_day, max_value=CAL.terms[-1].start))
def test_protected_period_ends_on_a_term_end_after_the_return(d):
    end = CAL.protected_period_end(d)
    assert end > d
    assert end in {t.end for t in CAL.terms}
    term = CAL.term_of(end)
    # The protected term is a full one: the pupil was back on or before its first day.
    assert d <= term.start
    # ...and it is the first such term.
    assert all(t.start < d for t in CAL.terms if t.end < end)
