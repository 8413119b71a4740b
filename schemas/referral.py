"""The referral row schema: one field per heading of docs/referral-workbook.md, and nothing else.

This class is the single source of truth for the referral workbook: `data_key` is the heading exactly as
docs/referral-workbook.md spells it, `metadata` carries the other spellings we accept (`aliases`), the officer's hint, and the
choices of closed fields. Ingestion matches headings from it, the blank template workbook is generated from
it, and its error messages are keyed by heading so every message can name its cell.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, time

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from schemas import parsers
from schemas.model import Referral

MAX_TEXT = 32_767  # Excel's own limit for a cell


class Parsed(fields.Field):
    """A field whose value is read by one of `schemas.parsers` (which raise ValueError with the reason)."""

    def __init__(self, parser, **kwargs):
        super().__init__(**kwargs)
        self.parser = parser

    def _deserialize(self, value, attr, data, **kwargs):
        if (err := parsers.excel_error(value)) is not None:
            raise ValidationError(f"the cell holds the Excel error {err} (a broken formula): type the value in")
        try:
            return self.parser(value)
        except ValueError as exc:
            message = " ".join(str(exc).split())  # a value's line breaks would split the message over lines
            if self.metadata.get("personal"):
                message = _without_value(message, value)
            raise ValidationError(message) from None


def _without_value(message: str, value) -> str:
    """A message about a personal field (a name, date of birth, UPN, parent's contact) without the value, so
    that messages printed on a terminal or written to logs never carry it; the validation report still shows
    the value in its own cell."""
    text = str(value)
    for shown in sorted({text, text.strip(), " ".join(text.split())}, key=len, reverse=True):
        if shown:  # quoted, as the parsers quote a value: a bare "12" must not eat "900123" in an example
            message = message.replace(f"'{shown}'", "the value")
    return re.sub(r": [A-Z][a-z]+ \d{4} has no day (\d+)$", r": that month has no day \1", message)  # no month, year


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if len(text) > MAX_TEXT:
        raise ValueError(f"the text is {len(text):,} characters long; at most {MAX_TEXT:,} are allowed")
    return text


MAX_REFERRAL_ID = 50  # it names files, email subjects and messages


def _referral_id(value) -> str:
    text = _text(value)
    if len(text) > MAX_REFERRAL_ID:
        raise ValueError(f"a Referral ID is at most {MAX_REFERRAL_ID} characters; this one has {len(text):,}")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text):
        raise ValueError("a Referral ID cannot hold control or invisible characters (a line break, a tab, a "
                         "direction mark): retype it")
    return text


def _time_text(value) -> str:
    """A time as Excel stores one typed as 10:00 (a time, or a fraction of a day), or the text typed."""
    if isinstance(value, datetime):
        value = value.time()
    if isinstance(value, time):
        return f"{value.hour:02d}:{value.minute:02d}"
    if isinstance(value, float) and 0 <= value < 1:
        minutes = round(value * 24 * 60)
        return f"{minutes // 60:02d}:{minutes % 60:02d}"
    return _text(value)


# what officers type while a person is still to be found (docs/referral-workbook.md): not a named key worker or buddy
PLACEHOLDERS = frozenset({"tbc", "tba", "tbd", "?", "n/a", "na", "unknown", "none", "-", "to be confirmed",
                          "to be arranged", "to be decided", "not known", "nobody", "no one"})


def _person(value) -> str:
    text = _text(value)
    if text.casefold().rstrip(".") in PLACEHOLDERS or (text and set(text) <= set("?-. ")):
        raise ValueError(f"'{text}' is a placeholder, not a person: name who it will be")
    return text


def _choice(options: tuple[str, ...], aliases: dict[str, str] | None = None):
    lookup = {parsers.normalise_heading(o): o for o in options}
    lookup.update({parsers.normalise_heading(k): v for k, v in (aliases or {}).items()})

    def parse(value) -> str:
        found = lookup.get(parsers.normalise_heading(value))
        if found is None:
            raise ValueError(f"'{value}' is not one of: {', '.join(options)}")
        return found

    return parse


def _items(value) -> tuple[str, ...]:
    """Reasonable adjustments: items separated by ';' or new lines."""
    text = _text(value)
    items = tuple(item.strip(" \t-•") for item in text.replace("\r", "\n").replace(";", "\n").split("\n")
                  if item.strip(" \t-•"))
    if not items:  # "-", ";" or a bullet alone is not an adjustment
        raise ValueError("no adjustment is listed: list at least one, or write 'None needed'")
    return items


def _email(value) -> str:
    """A plain ASCII address. Accented (IDN) domains and invisible characters pasted from web pages are
    refused: mail servers may not take them, and a look-alike domain is how plans go astray. The message
    never repeats the address (a parent's address is personal data)."""
    text = str(value).strip()
    if text.lower().startswith("mailto:"):
        text = text[7:].strip()
    if not text.isascii() or not text.isprintable():
        raise ValueError("the email address has accented or invisible characters: retype it, e.g. copied from Outlook")
    try:
        validate.Email()(text)
    except ValidationError:
        raise ValueError("this is not an email address (e.g. name@school.sch.uk)") from None
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


SEN = ("No SEN", "SEN support", "EHCP")
REASONS = ("Medical provision", "Alternative provision", "Direction off-site", "Fair Access Protocol")
PROVISIONS = ("Alternative provision", "School", "Medical provision")
YES_NO = ("Yes", "No")
YEAR_GROUPS = ("R", *map(str, range(1, 12)))


def _field(heading, parser, *, required=False, aliases=(), hint="", choices=None, kind="text", default=None,
           personal=False):
    meta = {"heading": heading, "aliases": tuple(aliases), "hint": hint, "choices": choices, "kind": kind,
            "personal": personal}
    kwargs = {"data_key": heading, "required": required, "metadata": meta,
              "error_messages": {"required": f"{heading} is required but the cell is blank"}}
    if default is not None:
        kwargs["load_default"] = default
    return Parsed(parser, **kwargs)


def text(heading, **kw):
    return _field(heading, _text, **kw)


def date_field(heading, **kw):
    return _field(heading, parsers.parse_uk_date, kind="date", **kw)


def yes_no(heading, **kw):
    return _field(heading, parsers.parse_yes_no, kind="choice", choices=YES_NO, **kw)


def email(heading, **kw):
    return _field(heading, _email, kind="email", **kw)


class ReferralSchema(Schema):
    class Meta:
        unknown = EXCLUDE
        ordered = True

    referral_id = _field("Referral ID", _referral_id, required=True,
                         aliases=("Ref", "Reference", "Referral", "Referral number", "ID"),
                         hint="Your reference for this referral, unique in the file, e.g. HAV-0001 (at most 50 characters).")
    upn = _field("UPN", lambda v: parsers.parse_upn(v)[0], required=True, personal=True,
                 aliases=("Unique pupil number", "Pupil UPN"),
                 hint="The pupil's 13-character Unique Pupil Number, e.g. B801200005001.")
    legal_forename = text("Legal forename", required=True, personal=True, aliases=("Forename", "First name", "Given name"))
    legal_surname = text("Legal surname", required=True, personal=True, aliases=("Surname", "Last name", "Family name"))
    preferred_name = text("Preferred name", personal=True, aliases=("Known as",), hint="Used to greet the pupil in the plan.")
    date_of_birth = date_field("Date of birth", required=True, personal=True, aliases=("DOB", "Birth date", "D.O.B."),
                               hint="Day/month/year, e.g. 14/03/2012. The pupil must be 4 to 16 on the return date.")
    year_group = _field("Year group", parsers.parse_year_group, required=True, kind="choice", choices=YEAR_GROUPS,
                        aliases=("Year", "NC year", "National curriculum year"),
                        hint="R (Reception) or 1 to 11; 'Year 9', 'Y9' and '9' all mean 9.")
    sen_status = _field("SEN status", _choice(SEN, {"SEN": "SEN support", "SEN K": "SEN support", "K": "SEN support",
                                                     "EHC plan": "EHCP", "E": "EHCP", "None": "No SEN", "N": "No SEN"}),
                        required=True, kind="choice", choices=SEN, aliases=("SEND", "SEND status", "SEN"),
                        personal=True)  # special category data: what was typed is never quoted in a message
    looked_after_child = yes_no("Looked after child", required=True, aliases=("LAC", "CLA", "Looked after", "CLA/LAC"),
                                personal=True)
    social_worker = text("Social worker")
    parent_carer_name = text("Parent/carer name", required=True, personal=True, aliases=("Parent name", "Carer name", "Parent", "Parent/carer"))
    parent_carer_email = email("Parent/carer email", personal=True, aliases=("Parent email", "Carer email"))
    parent_carer_phone = _field("Parent/carer phone", parsers.parse_uk_phone, kind="phone", personal=True,
                                aliases=("Parent phone", "Carer phone", "Parent telephone", "Parent/carer telephone"))
    reintegration_reason = _field("Reintegration reason", _choice(REASONS, {"AP": "Alternative provision",
                                                                            "Medical": "Medical provision",
                                                                            "FAP": "Fair Access Protocol",
                                                                            "Direction offsite": "Direction off-site",
                                                                            "Off-site direction": "Direction off-site"}),
                                  required=True, kind="choice", choices=REASONS, aliases=("Reason",),
                                  hint="Clause 2.2: what the pupil is returning to school after.")
    returning_via_fap = yes_no("Returning via FAP", required=True, aliases=("Via FAP", "FAP", "Fair Access Protocol"),
                               hint="Clause 3.1: reintegration support is only for pupils returning via the Fair Access Protocol.")
    current_provision_type = _field("Current provision type", _choice(PROVISIONS, {"AP": "Alternative provision",
                                                                                  "Medical": "Medical provision"}),
                                    required=True, kind="choice", choices=PROVISIONS, aliases=("Provision type",),
                                    hint="Decides the letter: from an AP or medical provision an invitation (3.6), from a school a request (3.7).")
    current_provision_name = text("Current provision name", required=True, aliases=("Current provision", "Provision name", "Provision"))
    referring_school = text("Referring school", required=True, aliases=("Home school",))
    receiving_school = text("Receiving school", required=True, aliases=("New school",))
    receiving_school_contact = text("Receiving school contact", required=True, aliases=("School contact", "Receiving contact"))
    receiving_school_email = email("Receiving school email", required=True, aliases=("School email", "Receiving email"),
                                   hint="The plan and letter are emailed here.")
    ipa_reference = text("IPA reference", aliases=("IPA ref", "IPA"), hint="Clause 3.8: needed when the pupil is in an AP.")
    ipa_start_date = date_field("IPA start date", aliases=("IPA start",), hint="Clause 3.8 (and 3.9: the date of a direction off-site).")
    ipa_end_date = date_field("IPA end date", aliases=("IPA end",), hint="Clause 3.8: after the IPA start date.")
    decision_date = date_field("Decision date", required=True, aliases=("Date of decision", "Decision"),
                               hint="Clause 3.4: when the return to mainstream was decided.")
    planned_return_date = date_field("Planned return date", required=True, aliases=("Return date", "Date of return"),
                                     hint="Clause 3.4: on or after the decision date.")
    planning_meeting_date = date_field("Planning meeting date", aliases=("Meeting date", "Reintegration meeting date"),
                                       hint="Clause 3.4: on or before the planned return date.")
    previous_return_date = date_field("Previous return date", aliases=("Last return date", "Previous return"),
                                      hint="Clause 3.9: when the pupil last returned to the referring school, if ever.")
    key_worker = _field("Key worker", _person, required=True, aliases=("Keyworker", "Support staff"),
                        hint="Minimum expectations: a named member of staff (not TBC).")
    buddy = _field("Buddy", _person, required=True, aliases=("Peer buddy",),
                   hint="Minimum expectations: a named pupil (not TBC).")
    reasonable_adjustments = _field("Reasonable adjustments", _items, required=True, kind="list",
                                    aliases=("Adjustments",),
                                    hint="Items separated by ';' or new lines, or 'None needed'.")
    strengths_and_interests = text("Strengths and interests", aliases=("Strengths",))
    needs_and_triggers = text("Needs and triggers", aliases=("Needs", "Triggers"))
    additional_support = text("Additional support")
    review_frequency_weeks = _field("Review frequency (weeks)", lambda v: parsers.parse_whole_number(v, 1, 6),
                                    kind="number", default=2, aliases=("Review frequency",),
                                    hint="School weeks between reviews, 1 to 6 (blank means 2); holiday weeks do not count.")
    settling_in_period_weeks = _field("Settling-in period (weeks)", lambda v: parsers.parse_whole_number(v, 2, 16),
                                      kind="number", default=6, aliases=("Settling in period", "Settling-in period"),
                                      hint="School weeks of settling in, 2 to 16 (blank means 6); the last review is at its end.")
    inclusions_officer = text("Inclusions officer", required=True, aliases=("Officer",))
    inclusions_officer_email = email("Inclusions officer email", required=True, aliases=("Officer email",))
    # optional (docs/referral-workbook.md), after every other column so a workbook made before them keeps its column letters
    planning_meeting_time = _field("Planning meeting time", _time_text, aliases=("Meeting time",),
                                 hint="Printed in the letter and the plan, e.g. 10:00 (blank: To be arranged).")
    planning_meeting_venue = text("Planning meeting venue", aliases=("Meeting venue", "Meeting place"),
                                  hint="Printed in the letter and the plan, e.g. Olive Academy, meeting room 2.")



def to_referral(values: dict, row: int | None = None) -> Referral:
    """Rules run on the loaded dict (partial when a row has errors); accepted rows become a Referral."""
    return Referral(**values, row=row)


SCHEMA = ReferralSchema()
HEADINGS = {name: f.data_key for name, f in SCHEMA.fields.items()}  # field name -> its heading
FIELD_BY_HEADING = {v: k for k, v in HEADINGS.items()}
