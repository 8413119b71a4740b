"""The policy rules: one small function per checkable clause of Havering's Reintegration Policy 2023/24.

Each rule takes a row whose values the schema has already read (only the values that were valid) and
yields Issues whose message cites the clause in plain words and names the cell. A rule whose inputs are
missing or invalid stays silent: the schema has already said what is wrong with them.

Every rule has one entry in `RULES` at the end of this module: its id (as the reports show it), the clause
it enforces, the one-line title the run summary and docs/rules.md use, its severity and its checks. The
clauses and where each is checked: docs/design.md.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from pipeline.check.calendar import SchoolCalendar
from pipeline.check.row_loader import RowLoader
from pipeline.core.addresses import domain_allowed, domain_of
from pipeline.core.errors import ERROR, WARNING, CalendarError, Issue
from pipeline.read.referrals import Sheet
from schemas.model import Referral
from schemas.parsers import format_uk_date as uk
from schemas.referral import FIELD_BY_HEADING, HEADINGS, to_referral

AP = "Alternative provision"
DIRECTION = "Direction off-site"
FAP_SCHOOL_DAYS = 20

# schema problems that are really a policy clause: the message then cites the clause
SCHEMA_FIELD_RULES = {
    "reintegration_reason": ("2.2", "2.2: a reintegration follows one of the policy's four routes"),
    "returning_via_fap": ("3.1", "3.1: reintegration support is only for pupils returning via the Fair Access Protocol"),
    "key_worker": ("ME", "Minimum expectations: support staff (a key worker) must be named"),
    "buddy": ("ME", "Minimum expectations: a buddy must be named"),
    "reasonable_adjustments": ("ME", "Minimum expectations: reasonable adjustments must be listed, or 'None needed'"),
}


@dataclass
class Row:
    """One referral row as the rules see it."""

    number: int
    values: dict  # field name -> parsed value (valid values only)
    cells: dict  # field name -> the file's cell reference, None when the column is missing (`.get`)
    raw: dict  # field name -> the cell's value as typed (blank cells left out: `.get`)
    issues: list[Issue] = field(default_factory=list)
    reviews: list[date] = field(default_factory=list)  # the review schedule, once ME has computed it
    last_return: tuple[date, str] | None = None  # the return 3.9 judged against, and where it is recorded

    def get(self, name):
        return self.values.get(name)

    def issue(self, severity: str, rule: str, name: str, text: str) -> Issue:
        cell = self.cells.get(name)
        where = f"cell {cell}, {HEADINGS[name]}" if cell else f"row {self.number}, no {HEADINGS[name]} column"
        raw = self.raw.get(name)
        if len(text) > MAX_MESSAGE:  # a message quoting a very long value: the value is in the report's cell
            text = text[:MAX_MESSAGE - 1] + "…"
        return Issue(severity, rule, f"{text} ({where})", column=HEADINGS[name], cell=cell, row=self.number,
                     value=_display(raw))


MAX_SHOWN_ID = 60  # characters of an unreadable Referral ID shown where a message names its row
MAX_MESSAGE = 500  # characters of a message before its cell reference (a quoted value can be long)
MAX_VALUE = 1_000  # characters of a value shown in the report's Value column (the cell itself holds it all)


def _display(raw) -> str | None:
    """A cell's value as the officer would read it, for the report's Value column (cut to `MAX_VALUE`)."""
    if raw is None:
        return None
    if isinstance(raw, str) and len(raw) > MAX_VALUE:
        return raw[:MAX_VALUE - 1] + "…"
    if isinstance(raw, datetime) and raw.time() == datetime.min.time():
        raw = raw.date()
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return uk(raw)
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


@dataclass(frozen=True)
class RuleContext:
    calendar: SchoolCalendar
    as_of: date
    ledger: object | None = None  # pipeline.core.ledger.Ledger, for 3.9's earlier returns
    allowed_domains: tuple[str, ...] = ()  # [email] allowed_domains: `send` will not email other domains


@dataclass
class RowResult:
    number: int
    referral_id: str | None
    issues: list[Issue]
    referral: Referral | None  # set when accepted
    reviews: list[date]

    @property
    def accepted(self) -> bool:
        return self.referral is not None


# ---------------------------------------------------------------- the rules
def rule_2_2(row: Row, ctx: RuleContext):
    if row.get("reintegration_reason") == DIRECTION and row.get("current_provision_type") not in (None, AP):
        yield row.issue(ERROR, "2.2", "current_provision_type",
                        f"2.2: a direction off-site places the pupil in an AP, so Current provision type must be "
                        f"'{AP}', not '{row.get('current_provision_type')}'")


def rule_3_1(row: Row, ctx: RuleContext):
    if row.get("returning_via_fap") is False:
        yield row.issue(ERROR, "3.1", "returning_via_fap",
                        "3.1: reintegration support is only available to pupils returning to mainstream school via "
                        "the Fair Access Protocol; this row says No")


def rule_3_4(row: Row, ctx: RuleContext):
    returning = row.get("planned_return_date")
    if returning is None:
        return
    decided = row.get("decision_date")
    if decided is not None and decided > returning:
        yield row.issue(ERROR, "3.4", "decision_date",
                        f"3.4: the decision date {uk(decided)} is after the planned return date {uk(returning)}; "
                        "a reintegration starts when the decision is made, before the return")
    meeting = row.get("planning_meeting_date")
    if meeting is not None and meeting > returning:
        yield row.issue(ERROR, "3.4", "planning_meeting_date",
                        f"3.4: the planning meeting {uk(meeting)} is after the planned return date {uk(returning)}; "
                        "the plan must be ready before the pupil returns")
    if decided is not None and ctx.as_of < decided <= returning:  # after the return: the error above says it
        yield row.issue(WARNING, "3.4", "decision_date",
                        f"3.4: the decision date {uk(decided)} is after {uk(ctx.as_of)}, the date the rules are judged "
                        "on: the plan and letter say the decision is still to be made; check the date")
    if returning < ctx.as_of:
        yield row.issue(WARNING, "3.4", "planned_return_date",
                        f"3.4: the planned return date {uk(returning)} is before {uk(ctx.as_of)}, so the plan cannot be "
                        "ready before the pupil returns; check the date")


def _in_ap(row: Row) -> bool:
    return row.get("current_provision_type") == AP or row.get("reintegration_reason") == DIRECTION


def rule_3_8(row: Row, ctx: RuleContext):
    if not _in_ap(row):
        return
    for name, what in (("ipa_reference", "an IPA reference"), ("ipa_start_date", "an IPA start date"),
                       ("ipa_end_date", "an IPA end date")):
        if row.raw.get(name) is None:
            yield row.issue(ERROR, "3.8", name, f"3.8: an AP placement is time limited and needs {what} from its "
                                                "Individual Placement Agreement")
    start, end = row.get("ipa_start_date"), row.get("ipa_end_date")
    if start and end and end <= start:
        yield row.issue(ERROR, "3.8", "ipa_end_date",
                        f"3.8: the IPA end date {uk(end)} must be after its start date {uk(start)}")


def rule_3_9(row: Row, ctx: RuleContext):
    direction = row.get("ipa_start_date")
    if row.get("reintegration_reason") != DIRECTION or direction is None:
        return
    returns = []  # (return date, where it comes from)
    if (previous := row.get("previous_return_date")) is not None:
        returns.append((previous, "previous_return_date", "the Previous return date"))
    if ctx.ledger is not None and row.get("upn") and row.get("referral_id"):
        for earlier in ctx.ledger.earlier_returns(row.get("upn"), row.get("referral_id")):
            returns.append((earlier.planned_return, "ipa_start_date",
                            f"referral {earlier.referral_id} (run {earlier.run_id})"))
    before = [r for r in returns if r[0] <= direction]  # a direction dated before the return is not judged
    if not before:
        return
    returned, cell_field, source = max(before, key=lambda r: r[0])
    row.last_return = (returned, source)
    first_term = ctx.calendar.terms[0]
    if returned < first_term.start and direction > first_term.end:
        return  # whatever term that return fell in, its protected period ended by the calendar's first term's end
    try:
        protected_to = ctx.calendar.protected_period_end(returned)
    except CalendarError as exc:
        yield row.issue(ERROR, "3.9", cell_field, f"3.9: cannot judge the direction off-site: {exc}")
        return
    # the terms that decided it: the one the return fell in (or before) and the one the protection ends with
    deciding = [t for t in ctx.calendar.terms if t.end >= returned and t.start <= protected_to]
    provisional = _provisional([t for t in deciding if t.provisional])
    if direction <= protected_to:
        yield row.issue(ERROR, "3.9", "ipa_start_date",
                        f"3.9: a direction off-site on {uk(direction)} falls within the first full term after the "
                        f"pupil returned to school on {uk(returned)} ({source}); the pupil is protected until "
                        f"{uk(protected_to)} to settle{provisional}")
    elif provisional:
        yield row.issue(WARNING, "calendar", "ipa_start_date",
                        f"3.9: the direction off-site on {uk(direction)} is after the protected period that followed "
                        f"the return on {uk(returned)} (it ended {uk(protected_to)}){provisional}")


def rule_me(row: Row, ctx: RuleContext):
    """Minimum expectations: blank or placeholder key worker, buddy and adjustments come from the schema (see
    SCHEMA_FIELD_RULES); here, reviews must be scheduled through the settling-in period, in school weeks. A
    schedule that runs past the end of the school calendar is a warning: the reviews it could date are kept."""
    returning = row.get("planned_return_date")
    every, settling = row.get("review_frequency_weeks"), row.get("settling_in_period_weeks")
    if returning is None or every is None or settling is None or not ctx.calendar.covers(returning):
        return  # a return outside the calendar is reported once, by rule_school_day
    schedule = ctx.calendar.review_schedule(returning, every, settling)
    row.reviews = list(schedule.dates)
    if not schedule.complete:
        counted = (f"only {len(schedule.dates)} of its {schedule.wanted} reviews could be dated"
                   if schedule.dates else "none of its reviews could be dated")
        yield row.issue(WARNING, "ME", "planned_return_date",
                        f"Minimum expectations: the {settling}-school-week settling-in period runs past the end of "
                        f"the school calendar ({uk(ctx.calendar.last_day)}), so {counted}: agree the later review "
                        "dates with the school, and add the next year's term dates")
    # provisional review dates: said once for the file (`provisional_years`), not on every row


def _provisional(terms) -> str:
    """A clause for a message whose answer depends on provisional term dates ('' when none are)."""
    if not terms:
        return ""
    years = ", ".join(sorted({t.year for t in terms}))
    return (f" (judged with the term dates for {years}, which are provisional: check them against Havering's "
            "published dates)")


def rule_school_day(row: Row, ctx: RuleContext):
    """The planned return is a school day (docs/referral-workbook.md) (not a weekend, nor a holiday of the calendar)."""
    returning = row.get("planned_return_date")
    if returning is None:
        return
    if not ctx.calendar.covers(returning):
        yield row.issue(ERROR, "3.4", "planned_return_date",
                        f"3.4: the planned return date {uk(returning)} is outside the school calendar "
                        f"({uk(ctx.calendar.first_day)} to {uk(ctx.calendar.last_day)}), so its school days and "
                        "reviews cannot be worked out: check the year, or add that year's term dates")
        return
    if ctx.calendar.is_school_day(returning):
        return
    if returning.weekday() >= 5:
        why = f"a {returning:%A}"
    elif ctx.calendar.term_of(returning) is None:
        why = "in the school holidays between terms"
    else:
        why = "a half-term or bank holiday"
    yield row.issue(ERROR, "3.4", "planned_return_date",
                    f"3.4: the planned return date {uk(returning)} is not a school day ({why}); the pupil returns on "
                    f"a day the school is open, e.g. {uk(ctx.calendar.next_school_day(returning))}")


def rule_fap20(row: Row, ctx: RuleContext):
    decided, returning = row.get("decision_date"), row.get("planned_return_date")
    if decided is None or returning is None or decided > returning:
        return
    if not ctx.calendar.covers(decided) or not ctx.calendar.covers(returning):
        # a warning rule never rejects: say what could not be counted
        outside = "decision_date" if not ctx.calendar.covers(decided) else "planned_return_date"
        when = decided if outside == "decision_date" else returning
        yield row.issue(WARNING, "FAP20", outside,
                        f"FAP guidance: the school days from the decision to the return cannot be counted, as "
                        f"{uk(when)} is outside the school calendar ({uk(ctx.calendar.first_day)} to "
                        f"{uk(ctx.calendar.last_day)}); check the return is within {FAP_SCHOOL_DAYS} school days")
        return
    days = ctx.calendar.school_days_between(decided, returning)
    if days > FAP_SCHOOL_DAYS:
        terms = [t for t in ctx.calendar.terms if t.end >= decided and t.start <= returning and t.provisional]
        yield row.issue(WARNING, "FAP20", "planned_return_date",
                        f"FAP guidance: the return is {days} school days after the decision on {uk(decided)}; "
                        f"pupils placed through the Fair Access Protocol should start within {FAP_SCHOOL_DAYS} "
                        f"school days{_provisional(terms)}")


def rule_email_domain(row: Row, ctx: RuleContext):
    """docs/email.md: a message with a recipient outside allowed_domains is never sent, so say so now, before the
    documents are made. Silent while no allowed_domains are set (then `send` explains the setting)."""
    if not ctx.allowed_domains:
        return
    for name, who in (("receiving_school_email", "the receiving school"),
                      ("inclusions_officer_email", "the inclusions officer (in copy)")):
        address = row.get(name)
        if address and not domain_allowed(address, ctx.allowed_domains):
            yield row.issue(WARNING, "email", name,
                            f"Email: the domain {domain_of(address)} is not in allowed_domains, so `send` will not "
                            f"email {who} about this referral; check the address, or add the domain to "
                            "allowed_domains in reintegrate.toml")


def _age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _expected_year_group(born: date, on: date) -> int:
    """0 for Reception: English year groups, 31 August cut-off."""
    cohort = born.year if born.month >= 9 else born.year - 1
    school_year = on.year if on.month >= 9 else on.year - 1
    return school_year - (cohort + 5)


def rule_age(row: Row, ctx: RuleContext):
    born, returning = row.get("date_of_birth"), row.get("planned_return_date")
    if born is None or returning is None:
        return
    age = _age_on(born, returning)
    if not 4 <= age <= 16:
        yield row.issue(ERROR, "schema", "date_of_birth",
                        f"the pupil would be {age} on the planned return date {uk(returning)}; the policy covers pupils "
                        "of school age, 4 to 16 (Reception to Year 11): check the date of birth")
        return
    group = row.get("year_group")
    if group is None:
        return
    expected = _expected_year_group(born, returning)
    actual = 0 if group == "R" else int(group)
    if expected != actual:
        given = "Reception" if actual == 0 else f"Year {actual}"
        if 0 <= expected <= 11:
            name = "Reception" if expected == 0 else f"Year {expected}"
        else:  # age 4 or 16, but a birthday outside Reception to Year 11 for that school year
            name = "Nursery (before Reception)" if expected < 0 else f"Year {expected} (beyond Year 11)"
        yield row.issue(WARNING, "schema", "year_group",
                        f"the date of birth puts the pupil in {name} on the return date, not {given}; this is fine "
                        "for a pupil taught out of year group, otherwise check both")


def rule_temporary_upn(row: Row, ctx: RuleContext):
    upn = row.get("upn")
    if upn and upn[-1].isalpha():  # the schema has checked it (`parse_upn`): a letter last means temporary
        yield row.issue(WARNING, "schema", "upn", "this is a temporary UPN (it ends in a letter); replace it with the "
                                                  "permanent UPN when the school has it")


def provisional_years(results: list["RowResult"], calendar: SchoolCalendar) -> Issue | None:
    """One file-level warning naming the provisional term-dates years the accepted rows' dates fall in."""
    dates = [d for r in results if r.referral for d in (r.referral.decision_date, r.referral.planned_return_date, *r.reviews)]
    terms = calendar.provisional_terms(*[d for d in dates if calendar.covers(d)])
    if not terms:
        return None
    years = ", ".join(sorted({t.year for t in terms}))
    return Issue(WARNING, "calendar", f"the term dates for {years} are provisional (not yet confirmed against Havering's "
                                      "published dates): check school-day counts and review dates before relying on them")


def rule_duplicate(rows: list[Row]):
    """Referral IDs are unique within the file: every row sharing an ID is rejected."""
    by_id = defaultdict(list)
    for row in rows:
        if row.get("referral_id"):
            by_id[row.get("referral_id").casefold()].append(row)
    for same in by_id.values():
        if len(same) > 1:
            numbers = ", ".join(str(r.number) for r in same)
            for row in same:
                row.issues.append(row.issue(ERROR, "duplicate", "referral_id",
                                            f"Referral ID {row.get('referral_id')} is used on rows {numbers}; each "
                                            "referral needs its own ID, so all of these rows are rejected"))


# ---------------------------------------------------------------- the stage
def _schema_issues(row: Row, messages: dict) -> list[Issue]:
    issues = []
    for heading, errors in messages.items():
        name = FIELD_BY_HEADING[heading]
        rule, lead = SCHEMA_FIELD_RULES.get(name, ("schema", None))
        for text in errors if isinstance(errors, list) else [str(errors)]:
            if name is not None and row.cells.get(name) is None and row.raw.get(name) is None:
                text = f"{HEADINGS[name]} is required but the sheet has no such column"
            issues.append(row.issue(ERROR, rule, name, f"{lead}; {text}" if lead else text))
    return issues


class CellRefs:
    """A row's cell references by field name (`get` gives e.g. 'T7', or None when the sheet has no such
    column), made when a message needs one rather than for every field of every row."""

    __slots__ = ("letters", "number")

    def __init__(self, letters: dict[str, str], number: int):
        self.letters, self.number = letters, number

    def get(self, name: str, default=None):
        letter = self.letters.get(name)
        return f"{letter}{self.number}" if letter else default

    def __getitem__(self, name: str) -> str:
        letter = self.letters[name]
        return f"{letter}{self.number}"

    def __contains__(self, name) -> bool:
        return name in self.letters

    def __iter__(self):
        return iter(self.letters)

    def __len__(self) -> int:
        return len(self.letters)

    def __eq__(self, other) -> bool:
        return dict(self.items()) == dict(other.items()) if hasattr(other, "items") else NotImplemented

    def items(self):
        return [(name, f"{letter}{self.number}") for name, letter in self.letters.items()]


class _RememberingCalendar:
    """The school calendar with its answers remembered for one sheet: most rows share their dates, and
    the review schedule and school-day counts are pure functions of them. Errors are not remembered (each
    row asks again and gets its own exception)."""

    def __init__(self, calendar: SchoolCalendar):
        self._calendar = calendar
        self._answers: dict = {}

    def _ask(self, method: str, *args):
        key = (method, *args)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._answers[key] = getattr(self._calendar, method)(*args)
        return answer

    def review_schedule(self, returned: date, every_weeks: int, settling_weeks: int):
        return self._ask("review_schedule", returned, every_weeks, settling_weeks)

    def school_days_between(self, start: date, end: date) -> int:
        return self._ask("school_days_between", start, end)

    def protected_period_end(self, returned: date) -> date:
        return self._ask("protected_period_end", returned)

    def __getattr__(self, name):
        return getattr(self._calendar, name)


def check_sheet(sheet: Sheet, ctx: RuleContext) -> list[RowResult]:
    """Schema, then every rule, for every row; issues in column order within a row."""
    rows = []
    fields = list(HEADINGS)
    letters = {name: sheet.columns[name].letter for name in fields if name in sheet.columns}
    loader = RowLoader()
    rules_ctx = replace(ctx, calendar=_RememberingCalendar(ctx.calendar))
    for input_row in sheet.rows:
        given = input_row.values
        raw = {FIELD_BY_HEADING[key]: value for key, value in given.items() if key in FIELD_BY_HEADING}
        values, messages = loader.load(given)
        row = Row(input_row.number, values, CellRefs(letters, input_row.number), raw)
        row.issues.extend(_schema_issues(row, messages))
        for rule in ROW_RULES:
            row.issues.extend(rule(row, rules_ctx))
        rows.append(row)
    rule_duplicate(rows)
    order = {HEADINGS[name]: i for i, name in enumerate(fields)}
    results = []
    for row in rows:
        row.issues.sort(key=lambda i: (i.severity != ERROR, order.get(i.column, 99)))
        accepted = not any(i.is_error for i in row.issues)
        referral = None
        if accepted:
            judged = dict(zip(("last_return_date", "last_return_source"), row.last_return or ()))
            referral = to_referral({**row.values, **judged}, row.number)
        rid = row.get("referral_id") or (str(row.raw["referral_id"]) if row.raw.get("referral_id") is not None else None)
        if rid is not None and len(rid) > MAX_SHOWN_ID:  # it names the row in every message: keep it short
            rid = rid[:MAX_SHOWN_ID - 1] + "…"
        results.append(RowResult(row.number, rid, row.issues, referral, row.reviews if accepted else []))
    return results


# ---------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Rule:
    """One checkable rule: `id` is what each Issue and report names; `title` is the one line the run summary
    and docs/rules.md show; `checks` run on every row in registry order (none: checked by the schema, across
    rows, or on the file)."""

    id: str
    clause: str
    title: str
    severity: str
    checks: tuple = ()


RULES = (
    Rule("2.2", "Policy 2.2: the four reintegration routes", "clause 2.2: one of the four reintegration routes",
         "error", (rule_2_2,)),
    Rule("3.1", "Policy 3.1: only pupils returning via the Fair Access Protocol",
         "clause 3.1: only pupils returning via the Fair Access Protocol", "error", (rule_3_1,)),
    Rule("3.4", "Policy 3.4: decision and meeting before the return; a school day; late return",
         "clause 3.4: decision and meeting before the return", "error / warning", (rule_3_4, rule_school_day)),
    Rule("3.8", "Policy 3.8: AP placements need IPA start and end dates",
         "clause 3.8: an AP placement needs its IPA dates", "error", (rule_3_8,)),
    Rule("3.9", "Policy 3.9: no direction off-site in the first full term back",
         "clause 3.9: no direction off-site in the first full term back", "error", (rule_3_9,)),
    Rule("ME", "Policy, minimum expectations: key worker, buddy, adjustments, reviews",
         "minimum expectations: key worker, buddy, adjustments, reviews", "error", (rule_me,)),
    Rule("FAP20", "DfE Fair Access guidance: start within 20 school days",
         "DfE FAP guidance: return within 20 school days of the decision", "warning", (rule_fap20,)),
    Rule("schema", "the referral columns (docs/referral-workbook.md): types and formats; age 4-16; year group vs date of birth",
         "a value's type or format (dates, UPN, emails, lists, age)", "error / warning",
         (rule_age, rule_temporary_upn)),
    Rule("email", "allowed_domains in reintegrate.toml: send never emails another domain",
         "an email domain not in allowed_domains: send skips it", "warning", (rule_email_domain,)),
    Rule("duplicate", "Referral IDs unique in the file", "the same Referral ID on more than one row", "error"),
    Rule("calendar", "term dates: a provisional year was used", "a provisional year of term dates was used",
         "warning"),
)
RULE_BY_ID = {rule.id: rule for rule in RULES}
ROW_RULES = tuple(check for rule in RULES for check in rule.checks)  # the order issues appear within a row


def rule_title(rule_id: str) -> str:
    """The summary's one line for a rule id ('' for one the registry does not hold)."""
    rule = RULE_BY_ID.get(rule_id)
    return rule.title if rule else ""
