"""Pure parsers for the values officers type: dates, UPNs, year groups, yes/no, phone numbers, headings.

Each returns the normalised value or raises `ValueError` with a sentence an officer understands.
They never guess: an ambiguous or impossible value is an error.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time, timedelta

EXCEL_ERRORS = {"#REF!", "#N/A", "#VALUE!", "#DIV/0!", "#NAME?", "#NULL!", "#NUM!", "#SPILL!", "#CALC!",
                "#GETTING_DATA", "#FIELD!", "#BLOCKED!", "#UNKNOWN!", "#BUSY!", "#CONNECT!"}


def normalise_heading(text) -> str:
    """`Date of Birth`, `date_of_birth`, ` DOB ` -> `dateofbirth`, `dob`: case, spaces and punctuation ignored."""
    return re.sub(r"[\W_]+", "", str(text or ""), flags=re.UNICODE).casefold()


def excel_error(value) -> str | None:
    """The Excel error literal a cell holds (`#REF!`), or None."""
    if isinstance(value, str) and value.strip().upper() in EXCEL_ERRORS:
        return value.strip().upper()
    return None


# ---------------------------------------------------------------- dates
_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4,
    "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9,
    "september": 9, "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}
_WEEKDAYS = r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*,?\s+"
_NUMERIC_UK = re.compile(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{2,4})")
_ISO = re.compile(r"(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})")
_WORDS_DMY = re.compile(rf"(?:{_WEEKDAYS})?(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?([a-z]+)\.?,?\s+(\d{{2,4}})")
# Excel's own text dates: 05-Mar-2025, 5-Mar-2025, 05-Mar-25 (the last refused: a two-digit year)
_WORDS_DASHED = re.compile(r"(\d{1,2})\s*[-/.]\s*([a-z]+)\s*[-/.]\s*(\d{2,4})")
_WORDS_MDY = re.compile(rf"(?:{_WEEKDAYS})?([a-z]+)\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{2,4}})")
_TIME_SUFFIX = re.compile(r"[ tT]00:00(?::00(?:\.0+)?)?$")
# Excel's 1900 date system: serial 60 is the phantom 29 Feb 1900, so day 0 is 30 Dec 1899 for serials > 60
_EXCEL_EPOCH = date(1899, 12, 30)
_SERIAL_RANGE = (date(1990, 1, 1), date(2100, 12, 31))


# a referral's dates lie within a pupil's lifetime and a few years ahead: anything else is a typing slip,
# and a date far out (31/12/9999) would overflow the school-day arithmetic
YEARS = (1900, 2100)


def _make_date(year: int, month: int, day: int, text: str) -> date:
    if year < 1000:
        raise ValueError(f"'{text}' has a two-digit year: write the year in full (e.g. 03/09/2024)")
    if not YEARS[0] <= year <= YEARS[1]:
        raise ValueError(f"'{text}' is not a plausible date: the year {year} is not between {YEARS[0]} and "
                         f"{YEARS[1]}; check the year")
    if not 1 <= month <= 12:
        raise ValueError(f"'{text}' is not a real date: there is no month {month} (dates are day/month/year)")
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"'{text}' is not a real date: {month_name(month)} {year} has no day {day}") from None


def month_name(month: int) -> str:
    return date(2000, month, 1).strftime("%B")


def parse_uk_date(value) -> date:
    """A real Excel date, an Excel serial number, or UK-order text: `03/09/2023`, `3 Sept 2023`, `2023-09-03`."""
    if isinstance(value, datetime):
        value = value.date()  # a date with a time of day is still the date the officer meant
    if isinstance(value, date):
        if not YEARS[0] <= value.year <= YEARS[1]:
            raise ValueError(f"the date is not plausible: its year is not between {YEARS[0]} and {YEARS[1]}; "
                             "check the year")
        return value
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not a date")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"'{value}' is not a date (a number with a fraction)")
        serial = int(value)
        first, last = ((d - _EXCEL_EPOCH).days for d in _SERIAL_RANGE)
        if not first <= serial <= last:
            raise ValueError(f"'{value}' is a number, not a date: format the cell as a date or type e.g. 03/09/2024")
        return _EXCEL_EPOCH + timedelta(days=serial)
    text = " ".join(str(value).split())
    if not text:
        raise ValueError("the date is blank")
    low = _TIME_SUFFIX.sub("", text.casefold())
    if m := _ISO.fullmatch(low):
        return _make_date(int(m[1]), int(m[2]), int(m[3]), text)
    if m := _NUMERIC_UK.fullmatch(low):
        return _make_date(int(m[3]), int(m[2]), int(m[1]), text)
    if m := _WORDS_DMY.fullmatch(low) or _WORDS_DASHED.fullmatch(low):
        if m[2] not in _MONTHS:
            raise ValueError(f"'{text}' is not a date: '{m[2]}' is not a month")
        return _make_date(int(m[3]), _MONTHS[m[2]], int(m[1]), text)
    if m := _WORDS_MDY.fullmatch(low):
        if m[1] in _MONTHS:
            return _make_date(int(m[3]), _MONTHS[m[1]], int(m[2]), text)
    raise ValueError(f"'{text}' is not a date we can read: use day/month/year, e.g. 03/09/2024 or 3 September 2024")


def format_uk_date(d: date) -> str:
    return d.strftime("%d/%m/%Y")


# ---------------------------------------------------------------- UPN
UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"  # A-Z without I, O and S: 23 letters
_UPN_SHAPE = re.compile(r"[A-Z]\d{11}[0-9A-Z]")


def upn_check_letter(upn: str) -> str:
    """The DfE check letter for characters 2-13 of a UPN (weights 2..13, sum mod 23)."""
    total = 0
    for weight, ch in enumerate(upn[1:13], start=2):
        total += weight * (UPN_LETTERS.index(ch) if ch.isalpha() else int(ch))
    return UPN_LETTERS[total % 23]


def parse_upn(value) -> tuple[str, bool]:
    """(UPN, is_temporary). Spaces ignored, letters upper-cased; the check letter must be right."""
    text = re.sub(r"\s+", "", str(value)).upper()
    if len(text) != 13:
        raise ValueError(f"a UPN has 13 characters; this one has {len(text)}")
    if not _UPN_SHAPE.fullmatch(text) or (text[12].isalpha() and text[12] not in UPN_LETTERS):
        raise ValueError("a UPN is a letter, 11 digits, then a digit (or a letter for a temporary UPN)")
    expected = upn_check_letter(text)
    if text[0] != expected:
        # no letter or digit of it in the message: a UPN identifies a child, and messages reach terminals and logs
        raise ValueError("the UPN's check letter does not match its digits: check it was copied correctly")
    return text, text[12].isalpha()


# ---------------------------------------------------------------- year groups, yes/no, numbers
_YEAR = re.compile(r"(?:year|yr|y)?\s*(\d{1,2}|r|rec|reception)")


def parse_year_group(value) -> str:
    """`R`, `Reception`, `Year 9`, `Y9`, `9`, 9.0 -> 'R' or '9'."""
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not a year group")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = " ".join(str(value).split()).casefold()
    m = _YEAR.fullmatch(text)
    if not m:
        raise ValueError(f"'{value}' is not a year group: use R (Reception) or 1 to 11, e.g. 'Year 9' or 9")
    group = m[1]
    if group in ("r", "rec", "reception"):
        return "R"
    number = int(group)
    if not 1 <= number <= 11:
        raise ValueError(f"'{value}' is outside Reception to Year 11, the years this policy covers")
    return str(number)


_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


def parse_yes_no(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().casefold()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise ValueError(f"'{value}' is not Yes or No")


def parse_whole_number(value, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not a whole number")
    if isinstance(value, (date, datetime, time)):
        # a number typed into a cell formatted as a date reads back as a date (2 -> 02/01/1900)
        raise ValueError("the cell holds a date, not a whole number: format the cell as Number and type the number again")
    if not isinstance(value, (int, float, str)):
        raise ValueError(f"'{value}' is not a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"'{value}' is not a whole number")
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"\d+(?:\.0+)?", text):
            raise ValueError(f"'{value}' is not a whole number")
        value = int(float(text))
    if not low <= value <= high:
        raise ValueError(f"{value} is outside {low} to {high}")
    return value


# ---------------------------------------------------------------- phone numbers
def parse_uk_phone(value) -> str:
    """A UK phone number: 10 or 11 digits starting 0 (or +44), spaces, dashes and brackets allowed."""
    if isinstance(value, float) and value.is_integer():
        # a number typed into a cell loses its leading zero
        value = "0" + str(int(value))
    elif isinstance(value, int):
        value = "0" + str(value)
    text = str(value).strip()
    digits = re.sub(r"[\s\-().]", "", text)
    if digits.startswith("+44"):
        digits = "0" + digits[3:].removeprefix("0")
    elif digits.startswith("0044"):
        digits = "0" + digits[4:].removeprefix("0")
    if not re.fullmatch(r"0\d{9,10}", digits) or digits[1] in "0":
        raise ValueError("this is not a UK phone number (e.g. 01708 433 000 or 07700 900123)")
    if text.isdigit() and len(digits) == 11:  # typed (or stored) without spaces: the usual 5-6 grouping
        return f"{digits[:5]} {digits[5:]}"
    return " ".join(text.split())  # as the officer typed it, spaces and all
