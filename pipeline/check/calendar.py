"""Havering's school calendar: terms, school days, and the protected period of policy clause 3.9.

Clause 3.9 says a pupil may not be directed off-site "within the first term after the pupil has returned
to their referring school". We read that as the first *full* term the pupil attends, so the protected
period runs from the return date to the last day of:

- the term that starts on or after the return date, when the pupil returns on or before a term's first
  day (a return on the first day of term, or during the holiday before it, starts a full term at once);
- the next term, when the pupil returns after the first day of a term (a part term is not a full term;
  a return during a half-term or on a bank holiday inside a term counts as inside that term).

Both cases come to one rule: the protected period ends on the last day of the first term whose first
day is on or after the return date. Examples with 2024/25 dates: a return on Monday 6 January 2025
(first day of the spring term) is protected to 4 April 2025; a return on 7 January 2025, or in the
February half-term, is protected to 22 July 2025 (end of summer term); a return in the summer holiday
of 2024 is protected to 20 December 2024.

The dates come from a TOML file (`pipeline/data/term-dates.toml` ships with Havering's dates). Nothing
here guesses a date outside that file: a rule that needs one gets a `CalendarError` saying which year
to add.
"""

from __future__ import annotations

import bisect
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Iterable

from pipeline.core.errors import CalendarError, ConfigError

TERM_NAMES = ("Autumn", "Spring", "Summer")
# Longer than any summer holiday: a bigger gap between two terms means a term or a year is missing.
MAX_GAP = timedelta(days=70)
_YEAR_KEYS = {"name", "provisional", "source", "term"}
_TERM_KEYS = {"name", "start", "end", "holidays"}


@dataclass(frozen=True)
class Term:
    year: str  # "2024/25"
    name: str  # "Autumn" | "Spring" | "Summer"
    start: date
    end: date
    holidays: tuple[tuple[date, date], ...] = ()  # inclusive ranges inside the term
    provisional: bool = False

    @property
    def label(self) -> str:
        return f"{self.name} {self.year}"

    def contains(self, d: date) -> bool:
        return self.start <= d <= self.end


def review_weeks(every_weeks: int, settling_weeks: int) -> list[int]:
    """The school weeks whose last day has a review: every `every_weeks`-th, and always the last week of the
    settling-in period (2 and 6 give [2, 4, 6]; 4 and 6 give [4, 6])."""
    numbers = list(range(every_weeks, settling_weeks + 1, every_weeks))
    if not numbers or numbers[-1] != settling_weeks:
        numbers.append(settling_weeks)
    return numbers


def settling_in_end(planned_return: date, settling_weeks: int, reviews) -> date:
    """The settling-in period's last day as the reviews count it: the last scheduled review is on its last
    school day; with no review scheduled, the period is taken in calendar weeks from the return."""
    return reviews[-1] if reviews else planned_return + timedelta(weeks=settling_weeks)


@dataclass(frozen=True)
class Schedule:
    """A settling-in period's reviews: their dates, the school week each ends, and the period's last school
    day (None when the calendar ends before the period does; then some reviews may be missing)."""

    dates: tuple[date, ...]
    weeks: tuple[int, ...]
    settling_in_end: date | None
    wanted: int  # how many reviews the period should have

    @property
    def complete(self) -> bool:
        return self.settling_in_end is not None and len(self.dates) == self.wanted


class SchoolCalendar:
    """A run of consecutive terms; every question about school days is answered from them."""

    def __init__(self, terms: Iterable[Term]):
        self.terms: tuple[Term, ...] = tuple(terms)
        if not self.terms:
            raise ConfigError("there are no terms in the school calendar")
        for t in self.terms:
            _check_term(t)
        for a, b in zip(self.terms, self.terms[1:]):
            where = f"year {b.year} {b.name}"
            if b.start <= a.end:
                raise ConfigError(
                    f"{where}: starts {b.start}, before year {a.year} {a.name} ends ({a.end}); "
                    "terms must be listed in date order without overlapping"
                )
            if b.start - a.end > MAX_GAP:
                raise ConfigError(
                    f"{where}: starts {b.start}, {(b.start - a.end).days} days after year {a.year} "
                    f"{a.name} ends ({a.end}), so a term or year is missing"
                )
        self.first_day: date = self.terms[0].start
        self.last_day: date = self.terms[-1].end
        self._starts = [t.start for t in self.terms]
        # Every school day in order: a calendar is ~200 days a year, so bisect answers everything fast.
        self._days = [d for t in self.terms for d in _school_days(t)]
        self._day_set = frozenset(self._days)

    @classmethod
    def load(cls, path: str | Path | None = None) -> SchoolCalendar:
        """Read a term-dates file (None: the shipped Havering dates); a bad file is a `ConfigError`."""
        if path is None:
            source = resources.files("pipeline").joinpath("data/term-dates.toml")
            name = "term-dates.toml"
        else:
            source = Path(path)
            name = source.name
        try:
            data = tomllib.loads(source.read_bytes().decode("utf-8"))
        except OSError as e:
            raise ConfigError(f"{name}: the term-dates file cannot be read ({e.strerror or e})") from e
        except UnicodeDecodeError as e:
            raise ConfigError(f"{name}: the term-dates file is not UTF-8 text") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{name}: the term-dates file is not valid TOML ({e})") from e
        try:
            return cls(_parse(data))
        except ConfigError as e:
            raise ConfigError(f"{name}: {e}") from e

    # --- questions about a date ---------------------------------------------------------------

    def covers(self, d: date) -> bool:
        return self.first_day <= d <= self.last_day

    def term_of(self, d: date) -> Term | None:
        i = bisect.bisect_right(self._starts, d) - 1
        if i >= 0 and self.terms[i].contains(d):
            return self.terms[i]
        return None

    def is_school_day(self, d: date) -> bool:
        self._require(d)
        return d in self._day_set

    def next_school_day(self, d: date) -> date:
        self._require(d)
        i = bisect.bisect_left(self._days, d)
        if i == len(self._days):
            raise CalendarError(
                f"there is no school day on or after {d} in the school calendar "
                f"({self.first_day} to {self.last_day}); add the next year's term dates to the term-dates file"
            )
        return self._days[i]

    def school_days_between(self, start: date, end: date) -> int:
        """School days d with start < d <= end (so a return the next school day counts 1)."""
        self._require(start)
        self._require(end)
        if end <= start:
            return 0
        return bisect.bisect_right(self._days, end) - bisect.bisect_right(self._days, start)

    def protected_period_end(self, returned: date) -> date:
        """Last day of the first full term after a return (clause 3.9, see the module docstring)."""
        # Before the first term we cannot tell whether the return fell inside an unlisted term.
        self._require(returned)
        i = bisect.bisect_left(self._starts, returned)  # first term starting on or after `returned`
        if i == len(self.terms):
            raise CalendarError(
                f"the protected period after a return on {returned} runs into the term after "
                f"{self.terms[-1].label}, which is not in the school calendar; "
                "add the next year's term dates to the term-dates file"
            )
        return self.terms[i].end

    def provisional_terms(self, *dates: date) -> list[Term]:
        """The provisional terms these dates fall in, each once, for a 'dates not confirmed' warning."""
        found: list[Term] = []
        for d in dates:
            t = self.term_of(d)
            if t is not None and t.provisional and t not in found:
                found.append(t)
        return found

    def school_weeks(self, returned: date, count: int) -> tuple[list[tuple[date, date]], bool]:
        """The first `count` school weeks from a return: 7-day spans starting on the return date, skipping
        any span with no school day in it (a week wholly in a holiday does not count). Each as (first school
        day, last school day). The flag is False when the calendar ended before `count` were found."""
        self._require(returned)
        weeks: list[tuple[date, date]] = []
        i = bisect.bisect_left(self._days, returned)
        start = returned
        while len(weeks) < count:
            if i == len(self._days):
                return weeks, False
            end = start + timedelta(days=6)
            if self._days[i] > end:  # no school day in this span: skip whole spans up to the next school day
                start += timedelta(days=7 * ((self._days[i] - start).days // 7))
                continue
            j = bisect.bisect_right(self._days, end)
            if j == len(self._days) and end > self.last_day:
                return weeks, False  # the calendar ends inside this week: its last day is not known
            weeks.append((self._days[i], self._days[j - 1]))
            i, start = j, end + timedelta(days=1)
        return weeks, True

    def review_schedule(self, returned: date, every_weeks: int, settling_weeks: int) -> Schedule:
        """A review on the last school day of every `every_weeks`-th school week of the settling-in period,
        and the last on the last school day of that period (counted in school weeks: docs/rules.md, "ME")."""
        if every_weeks < 1:
            raise ValueError("every_weeks must be at least 1")
        numbers = review_weeks(every_weeks, settling_weeks)
        weeks, complete = self.school_weeks(returned, settling_weeks)
        reviews = [(weeks[n - 1][1], n) for n in numbers if n <= len(weeks)]
        return Schedule(tuple(d for d, _ in reviews), tuple(n for _, n in reviews),
                        settling_in_end=weeks[-1][1] if complete else None, wanted=len(numbers))

    def _require(self, d: date) -> None:
        if not self.covers(d):
            raise CalendarError(
                f"{d} is outside the school calendar ({self.first_day} to {self.last_day}); "
                "add that year's term dates to the term-dates file"
            )


def _school_days(t: Term) -> Iterable[date]:
    d = t.start
    while d <= t.end:
        if d.weekday() < 5 and not any(a <= d <= b for a, b in t.holidays):
            yield d
        d += timedelta(days=1)


def _check_term(t: Term) -> None:
    where = f"year {t.year} {t.name}"
    if t.end < t.start:
        raise ConfigError(f"{where}: end {t.end} is before start {t.start}")
    for a, b in t.holidays:
        if b < a:
            raise ConfigError(f"{where}: holiday {a} to {b} ends before it starts")
        if a < t.start or b > t.end:
            raise ConfigError(
                f"{where}: holiday {a} to {b} is not inside the term ({t.start} to {t.end}); "
                "list only half-terms and bank holidays that fall inside a term"
            )


def _parse(data: dict) -> list[Term]:
    """Turn the file's [[year]] / [[year.term]] tables into Terms, naming the place of any mistake."""
    years = data.get("year")
    if not isinstance(years, list) or not years:
        raise ConfigError("no [[year]] sections found")
    terms = []
    for n, y in enumerate(years, 1):
        year = y.get("name") if isinstance(y, dict) else None
        if not isinstance(year, str) or not year.strip():
            raise ConfigError(f"year number {n} has no name (e.g. name = \"2024/25\")")
        _no_unknown_keys(y, _YEAR_KEYS, f"year {year}")
        provisional = y.get("provisional", False)
        if not isinstance(provisional, bool):
            raise ConfigError(f"year {year}: provisional must be true or false")
        if not isinstance(y.get("term"), list) or not y["term"]:
            raise ConfigError(f"year {year}: no [[year.term]] sections found")
        for t in y["term"]:
            name = t.get("name") if isinstance(t, dict) else None
            if name not in TERM_NAMES:
                raise ConfigError(f"year {year}: term name {name!r} must be one of Autumn, Spring, Summer")
            where = f"year {year} {name}"
            _no_unknown_keys(t, _TERM_KEYS, where)
            terms.append(Term(
                year=year,
                name=name,
                start=_date(t.get("start"), f"{where}: start"),
                end=_date(t.get("end"), f"{where}: end"),
                holidays=tuple(_holiday(h, where) for h in t.get("holidays", [])),
                provisional=provisional,
            ))
    return terms


def _holiday(h, where: str) -> tuple[date, date]:
    if isinstance(h, list) and len(h) == 2:
        return _date(h[0], f"{where}: holiday"), _date(h[1], f"{where}: holiday")
    if isinstance(h, date) and not isinstance(h, datetime):
        return h, h  # a single day
    raise ConfigError(f"{where}: holiday {h!r} must be a date or a pair [first day, last day]")


def _date(v, what: str) -> date:
    # TOML gives real dates only when written unquoted; a datetime is not a day.
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    if v is None:
        raise ConfigError(f"{what} is missing")
    raise ConfigError(f"{what} {v!r} must be a date written like 2024-09-02, without quotes")


def _no_unknown_keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (expected {', '.join(sorted(allowed))})")
