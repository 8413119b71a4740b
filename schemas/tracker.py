"""The review tracker row schema: one field per column `reintegrate reviews` reads back, and nothing else.

The tracker (`review-tracker.xlsx`, docs/reviews.md) is written by `pipeline.write.tracker`; officers then fill it in by
hand. This schema reads one of its rows as the officer left it. Like `schemas.referral`, `data_key` is the
heading exactly as the tracker spells it and `metadata` carries the other spellings we accept, so every
message can name its cell. The informational columns the tracker also carries (Pupil, Receiving school,
Key worker) are not fields: they are never read back into a plan (the Pupil cell is only compared with
the run's pupil, in `pipeline.reviews`).

A row reads as::

    {"referral_id": "HAV-0001", "review": 2 (None: an extra review the officer added),
     "date": date(2027, 2, 2) (None: keep the scheduled date), "status": "Held",
     "outcome": "Settling well" or None, "next_steps": "..." or None}

Rules that need the run or the as-of date (is the review overdue, was it scheduled, is a Held review dated
in the future) live in `pipeline.reviews`, not here.
"""

from __future__ import annotations

import re

from marshmallow import EXCLUDE, Schema, ValidationError, validates_schema

from schemas import parsers
from schemas.referral import Parsed, _text

SCHEDULED, HELD, MISSED, CANCELLED = "Scheduled", "Held", "Missed", "Cancelled"
STATUSES = (SCHEDULED, HELD, MISSED, CANCELLED)  # the tracker's drop-down, in its order
MAX_NOTE = 10_000  # an outcome longer than this is almost certainly pasted by mistake

_STATUS_LOOKUP = {parsers.normalise_heading(s): s for s in STATUSES}
_STATUS_LOOKUP["canceled"] = CANCELLED  # US spelling
# what an officer types in the Review cell of a row they added for an extra review
EXTRA_WORDS = frozenset({"extra", "extrareview", "adhoc", "adhocreview", "additional", "additionalreview",
                         "unscheduled", "new"})
_REVIEW_NUMBER = re.compile(r"(?:review|rev|no|number|#)?\s*(\d{1,3})(?:\.0+)?")


def parse_status(value) -> str:
    """`Held`, ` held `, `HELD`, `He ld` -> "Held": case, spaces and punctuation ignored, nothing guessed."""
    found = _STATUS_LOOKUP.get(parsers.normalise_heading(value))
    if found is None:
        raise ValueError(f"'{value}' is not a review status: use {', '.join(STATUSES[:-1])} or {STATUSES[-1]} "
                         "(the cell's drop-down list), or leave it blank for Scheduled")
    return found


def parse_review_number(value) -> int | None:
    """The review's number in the pupil's schedule (`2`, `2.0`, `Review 2`, `#2`), or None for an extra review
    the officer added (`Extra`, `Ad hoc`, `Additional`)."""
    if isinstance(value, bool):
        raise ValueError(f"'{value}' is not a review number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"'{value}' is not a review number (a whole number such as 2)")
        value = int(value)
    if isinstance(value, int):
        number = value
    else:
        text = " ".join(str(value).split()).casefold()
        if parsers.normalise_heading(text) in EXTRA_WORDS:
            return None
        m = _REVIEW_NUMBER.fullmatch(text)
        if not m:
            raise ValueError(f"'{value}' is not a review number: keep the number the tracker gave, or type "
                             "Extra (or leave it blank) for an extra review you added")
        number = int(m[1])
    if number < 1:
        raise ValueError(f"{number} is not a review number: reviews are numbered from 1")
    return number


def _note(value) -> str | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(text) > MAX_NOTE:
        raise ValueError(f"the text is {len(text):,} characters long; at most {MAX_NOTE:,} are allowed")
    return text or None


def _field(heading, parser, *, required=False, aliases=(), hint="", choices=None, kind="text", default=None):
    meta = {"heading": heading, "aliases": tuple(aliases), "hint": hint, "choices": choices, "kind": kind}
    kwargs = {"data_key": heading, "required": required, "metadata": meta,
              "error_messages": {"required": f"{heading} is required but the cell is blank"}}
    if not required:
        kwargs["load_default"] = default
    return Parsed(parser, **kwargs)


class ReviewRowSchema(Schema):
    """One row of the `Reviews` sheet. Blank cells are left out of the input dict (as the referral reader, `pipeline.read.referrals`, does)."""

    class Meta:
        unknown = EXCLUDE
        ordered = True

    referral_id = _field("Referral ID", _text, required=True, aliases=("Ref", "Reference", "Referral", "ID"),
                         hint="The pupil's Referral ID, as in the referral workbook.")
    review = _field("Review", parse_review_number, kind="number",
                    aliases=("Review number", "Review no", "Review No.", "No.", "Number", "#"),
                    hint="The review's number in the pupil's schedule; blank or 'Extra' for an extra review.")
    date = _field("Date", parsers.parse_uk_date, kind="date", aliases=("Review date", "Date of review"),
                  hint="When the review is (or was) held; change it when a review is moved.")
    status = _field("Status", parse_status, kind="choice", choices=STATUSES, default=SCHEDULED,
                    aliases=("Review status", "State"),
                    hint="Scheduled, Held, Missed or Cancelled; blank means Scheduled.")
    outcome = _field("Outcome", _note, aliases=("Outcomes", "Review outcome", "Outcome notes"),
                     hint="What the review found: progress, concerns, support agreed.")
    next_steps = _field("Next steps", _note, aliases=("Next step", "Actions", "Actions agreed", "Next actions"),
                        hint="What happens next, who does it, by when.")

    @validates_schema
    def _extra_review_has_a_date(self, data, **kwargs):
        # a scheduled review without a date keeps its scheduled date; an extra review has nothing to fall back on
        if data.get("review") is None and data.get("date") is None:
            raise ValidationError("an extra review (no Review number) needs its date: type the day it was held",
                                  "date")


SCHEMA = ReviewRowSchema()
HEADINGS = {name: f.data_key for name, f in SCHEMA.fields.items()}  # field name -> tracker heading
FIELD_BY_HEADING = {v: k for k, v in HEADINGS.items()}
REQUIRED_COLUMNS = ("referral_id", "review", "date", "status")  # a sheet without one of these is not a tracker
# the tracker's other columns (pipeline.write.tracker.HEADINGS): read for checks only, never an "unknown column"
INFORMATION_HEADINGS = ("Pupil", "Receiving school", "Key worker")


def heading_lookup() -> dict[str, str]:
    """Normalised spelling -> field name, for every heading and alias."""
    lookup: dict[str, str] = {}
    for name, fld in SCHEMA.fields.items():
        for spelling in (fld.data_key, name, *fld.metadata["aliases"]):
            key = parsers.normalise_heading(spelling)
            if lookup.setdefault(key, name) != name:
                raise AssertionError(f"tracker heading spelling {spelling!r} maps to two fields")
    return lookup
