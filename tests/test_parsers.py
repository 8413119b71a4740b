"""The parsers of what officers type: dates, UPNs, headings, year groups, yes/no, phones."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import parsers
from schemas.parsers import (UPN_LETTERS, normalise_heading, parse_uk_date, parse_uk_phone, parse_upn,
                             parse_year_group, parse_yes_no, upn_check_letter)
from pipeline.read.referrals import HEADING_LOOKUP
from schemas.referral import SCHEMA

dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))  # parsers.YEARS: plausible dates


# ---------------------------------------------------------------- dates
@pytest.mark.parametrize("text, expected", [
    ("03/09/2023", date(2023, 9, 3)),
    ("3/9/2023", date(2023, 9, 3)),
    ("03-09-2023", date(2023, 9, 3)),
    ("03.09.2023", date(2023, 9, 3)),
    ("2023-09-03", date(2023, 9, 3)),
    ("3 Sept 2023", date(2023, 9, 3)),
    ("3 Sep 2023", date(2023, 9, 3)),
    ("3rd September 2023", date(2023, 9, 3)),
    ("Sunday 3 September 2023", date(2023, 9, 3)),
    ("September 3, 2023", date(2023, 9, 3)),
    ("  03/09/2023 ", date(2023, 9, 3)),
    ("2023-09-03 00:00:00", date(2023, 9, 3)),
    ("2023-09-03T00:00:00", date(2023, 9, 3)),
])
def test_uk_text_dates(text, expected):
    assert parse_uk_date(text) == expected


def test_excel_dates_and_serials():
    assert parse_uk_date(datetime(2024, 1, 2)) == date(2024, 1, 2)
    assert parse_uk_date(date(2024, 1, 2)) == date(2024, 1, 2)
    assert parse_uk_date(45293) == date(2024, 1, 2)  # a date stored as a number
    assert parse_uk_date(45293.0) == date(2024, 1, 2)


@pytest.mark.parametrize("text, reason", [
    ("31/02/2013", "February 2013 has no day 31"),
    ("13/13/2023", "no month 13"),
    ("03/09/23", "two-digit year"),
    ("03/09", "not a date we can read"),
    ("next Tuesday", "not a date we can read"),
    ("3 Smarch 2023", "not a month"),
    ("", "blank"),
])
def test_impossible_or_ambiguous_dates_are_errors(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_uk_date(text)


@pytest.mark.parametrize("value", [45293.5, 12, True, 9_999_999])
def test_numbers_that_are_not_dates(value):
    with pytest.raises(ValueError):
        parse_uk_date(value)


@given(dates)
def test_any_real_date_round_trips_in_every_uk_spelling(d):
    for text in (d.strftime("%d/%m/%Y"), f"{d.day}/{d.month}/{d.year}", d.isoformat(),
                 f"{d.day} {d.strftime('%B')} {d.year}", f"{d.day} {d.strftime('%b')} {d.year}",
                 d.strftime("%A %d %B %Y"), d.strftime("%d-%b-%Y"), f"{d.day}-{d.strftime('%b')}-{d.year}",
                 d.strftime("%d-%B-%Y").upper()):
        assert parse_uk_date(text) == d, text


@given(st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31)).filter(lambda d: not 1900 <= d.year <= 2100))
def test_an_implausible_year_is_an_error_in_every_spelling_never_a_guess(d):
    for value in (d, d.strftime("%d/%m/%Y"), d.strftime("%d-%b-%Y"), d.isoformat()):
        with pytest.raises(ValueError, match="year.* is not between 1900 and 2100"):
            parse_uk_date(value)


@pytest.mark.parametrize("text, expected", [("05-Mar-2025", date(2025, 3, 5)), ("5-Mar-2025", date(2025, 3, 5)),
                                            ("5-mar-2025", date(2025, 3, 5)), ("05-Sept-2025", date(2025, 9, 5))])
def test_excels_own_text_dates(text, expected):
    assert parse_uk_date(text) == expected


def test_excels_two_digit_year_text_date_is_refused():
    with pytest.raises(ValueError, match="two-digit year"):
        parse_uk_date("05-Mar-25")


@given(st.integers(1, 31), st.integers(1, 12), st.integers(1900, 2100))
def test_day_month_text_is_never_read_month_first(day, month, year):
    text = f"{day:02d}/{month:02d}/{year}"
    try:
        parsed = parse_uk_date(text)
    except ValueError as exc:
        assert "no day" in str(exc)  # only impossible days fail, never a swapped reading
        with pytest.raises(ValueError):
            date(year, month, day)
    else:
        assert (parsed.day, parsed.month, parsed.year) == (day, month, year)


@given(st.text(max_size=30))
def test_date_parser_only_ever_raises_value_error(text):
    try:
        result = parse_uk_date(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert isinstance(result, date)


# ---------------------------------------------------------------- UPNs
def test_spec_test_vector():
    assert parse_upn("B801200005001") == ("B801200005001", False)
    with pytest.raises(ValueError, match="check letter"):
        parse_upn("A801200005001")


def test_upn_normalised_and_temporary():
    assert parse_upn(" b801 2000 05001 ")[0] == "B801200005001"
    body = "80120000500A"
    temporary = upn_check_letter("X" + body) + body
    assert parse_upn(temporary) == (temporary, True)


@pytest.mark.parametrize("bad", ["B80120000500", "B8012000050011", "1801200005001", "B80120000500I", "B8012X0005001"])
def test_malformed_upns(bad):
    with pytest.raises(ValueError):
        parse_upn(bad)


@given(st.text("0123456789", min_size=11, max_size=11), st.sampled_from(list("0123456789" + UPN_LETTERS)))
def test_every_generated_upn_validates_and_any_other_check_letter_fails(digits, last):
    body = digits + last
    good = upn_check_letter("X" + body)
    assert parse_upn(good + body)[0] == good + body
    for wrong in UPN_LETTERS:
        if wrong != good:
            with pytest.raises(ValueError, match="check letter"):
                parse_upn(wrong + body)


@given(st.text(max_size=20))
def test_upn_parser_only_ever_raises_value_error(text):
    try:
        upn, _ = parse_upn(text)
    except ValueError:
        pass
    else:
        assert len(upn) == 13 and upn[0] == upn_check_letter(upn)


# ---------------------------------------------------------------- headings
@pytest.mark.parametrize("spelling", ["Date of Birth", "date_of_birth", "DOB", " D.O.B. ", "DATE-OF-BIRTH", "dateofbirth"])
def test_heading_spellings(spelling):
    assert HEADING_LOOKUP[normalise_heading(spelling)] == "date_of_birth"


def test_every_spec_heading_matches_its_own_field():
    for name, fld in SCHEMA.fields.items():
        assert HEADING_LOOKUP[normalise_heading(fld.data_key)] == name


@given(st.sampled_from([f.data_key for f in SCHEMA.fields.values()]),
       st.lists(st.sampled_from([" ", "_", "-", ".", "/", "(", ")", "  "]), max_size=4), st.booleans())
def test_headings_match_whatever_the_case_spaces_and_punctuation(heading, noise, upper):
    mangled = "".join(noise) + (heading.upper() if upper else heading.lower()).replace(" ", "_") + "".join(noise)
    assert HEADING_LOOKUP[normalise_heading(mangled)] == HEADING_LOOKUP[normalise_heading(heading)]


@given(st.text(max_size=40))
def test_heading_normalisation_is_idempotent(text):
    once = normalise_heading(text)
    assert normalise_heading(once) == once
    assert once == once.casefold()


# ---------------------------------------------------------------- the rest
@pytest.mark.parametrize("typed, expected", [("Year 9", "9"), ("Y9", "9"), ("9", "9"), (9, "9"), (9.0, "9"),
                                             ("yr 10", "10"), ("Reception", "R"), ("R", "R"), ("YR", "R"),
                                             ("year r", "R"), ("11", "11")])
def test_year_groups(typed, expected):
    assert parse_year_group(typed) == expected


@pytest.mark.parametrize("typed", ["Year 12", "0", "Nursery", "Y", "", True])
def test_bad_year_groups(typed):
    with pytest.raises(ValueError):
        parse_year_group(typed)


@pytest.mark.parametrize("typed, expected", [("Yes", True), ("y", True), ("Y", True), (True, True), (1, True),
                                             ("No", False), ("n", False), (" NO ", False), (False, False)])
def test_yes_no(typed, expected):
    assert parse_yes_no(typed) is expected


def test_yes_no_rejects_other_words():
    with pytest.raises(ValueError, match="not Yes or No"):
        parse_yes_no("maybe")


@pytest.mark.parametrize("typed, expected", [("01708 433000", "01708 433000"), ("07700 900123", "07700 900123"),
                                             ("+44 7700 900123", "+44 7700 900123"),
                                             ("(01708)  433-000", "(01708) 433-000"), (7700900123, "07700 900123"),
                                             ("07700900123", "07700 900123")])
def test_uk_phones(typed, expected):
    assert parse_uk_phone(typed) == expected


@pytest.mark.parametrize("typed", ["12345", "+1 212 555 0100", "0000000000", "phone me"])
def test_bad_phones(typed):
    with pytest.raises(ValueError, match="UK phone"):
        parse_uk_phone(typed)


def test_excel_error_literals():
    assert parsers.excel_error("#REF!") == "#REF!"
    assert parsers.excel_error(" #n/a ") == "#N/A"
    assert parsers.excel_error("REF") is None


@pytest.mark.parametrize("typed", ["office@brookfiëld.sch.uk", "x@sch.uk\u200b", "head@sch.uk\u202e"])
def test_emails_with_accents_or_invisible_characters_are_refused(typed):
    from schemas.referral import _email

    with pytest.raises(ValueError, match="accented or invisible"):
        _email(typed)


def test_email_messages_never_repeat_the_address():
    from schemas.referral import _email

    with pytest.raises(ValueError) as caught:
        _email("mailto:jane.doe.parent@@example.com")
    assert "jane" not in str(caught.value)
    assert _email("mailto:Jane@Example.COM") == "Jane@example.com"
