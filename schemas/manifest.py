"""`manifest.json`, a run folder's list of who gets which documents: written by `reintegrate run`, read by
`send`, `reviews` and the term register. One schema for both directions:

    {"run_id": "...", "input": "referrals.xlsx", "as_of": "2026-11-30",
     "referrals": [{"referral_id": "HAV-0001", "row": 5, "plan": "plans/....docx", "letter": "letters/....docx",
                    "plan_sha256": "...", "letter_sha256": "...", "receiving_school": "...", ...,
                    "letter_kind": "invitation" | "request", "reviews": ["2027-01-18", ...],
                    "referral": {every field of `schemas.model.Referral`, dates as ISO text}}]}

The pupil's data is loaded back into a `Referral` by the types its dataclass declares, so nothing is guessed
from a value's look. `run` writes it with `entry_record`/`dump_manifest` (what the schema's dump gives, made
directly for speed); `reviews` and the term register load it with `load_manifest`; `send` takes each entry as
written (`pipeline.deliver.manifest` says why). Unknown keys are kept out (a manifest from a newer version still reads); a manifest from
an older version without the SHA-256 keys or the pupil data reads with those missing (None).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from datetime import date
from typing import Mapping

from marshmallow import EXCLUDE, Schema, ValidationError, fields

from schemas.model import Referral, referral_key

_REFERRAL_TYPES = typing.get_type_hints(Referral)
_REFERRAL_FIELDS = tuple(f.name for f in dataclasses.fields(Referral))


def _loader_for(name: str, kind):
    """A converter from JSON for one `Referral` field, by the type its dataclass declares."""
    args = typing.get_args(kind)
    base = next((a for a in args if a is not type(None)), kind) if type(None) in args else kind
    if base is date:
        def load(value):
            return date.fromisoformat(value)
    elif typing.get_origin(base) is tuple:
        def load(value):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TypeError
            return tuple(value)
    else:
        def load(value):
            if not isinstance(value, base) or (base is int and isinstance(value, bool)):
                raise TypeError
            return value
    return load


_LOADERS = {name: _loader_for(name, _REFERRAL_TYPES[name]) for name in _REFERRAL_FIELDS}


def pupil_record(referral: Referral) -> dict:
    """A `Referral` as JSON-ready data: every field, dates as ISO text, lists for tuples."""
    return {k: (v.isoformat() if isinstance(v, date) else list(v) if isinstance(v, tuple) else v)
            for k, v in vars(referral).items()}


class _PupilField(fields.Field):
    """A `Referral` as a JSON object of its fields: written by one dict comprehension and read back with the
    type its dataclass declares for each field (a run writes, and `send` and `reviews` read, thousands)."""

    def _serialize(self, value: Referral | None, attr, obj, **kwargs):
        return None if value is None else pupil_record(value)

    def _deserialize(self, value, attr, data, **kwargs) -> Referral:
        if not isinstance(value, dict):
            raise ValidationError("the pupil's data is not a record")
        loaded = {}
        for name, raw in value.items():
            load = _LOADERS.get(name)
            if load is None:
                continue
            try:
                loaded[name] = None if raw is None else load(raw)
            except (TypeError, ValueError):
                raise ValidationError(f"the pupil's {name} is not a {_REFERRAL_TYPES[name]}") from None
        try:
            return Referral(**loaded)
        except TypeError as exc:  # a required field left out
            raise ValidationError(f"the pupil's data is incomplete ({exc})") from None


class _IsoDates(fields.Field):
    """A list of dates as ISO text: one field for the whole list (a List of Date fields costs a call a date)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return [d.isoformat() for d in value]

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return [date.fromisoformat(v) for v in value]
        except (TypeError, ValueError):
            raise ValidationError("not a list of dates (YYYY-MM-DD)") from None


class ManifestEntrySchema(Schema):
    """One accepted referral: its documents (paths relative to the run folder), their SHA-256 as written,
    the addresses `send` uses, the review dates and the pupil's data."""

    class Meta:
        unknown = EXCLUDE

    referral_id = fields.String(required=True)
    row = fields.Integer(allow_none=True, load_default=None)
    plan = fields.String(required=True)
    letter = fields.String(required=True)
    plan_sha256 = fields.String(allow_none=True, load_default=None)
    letter_sha256 = fields.String(allow_none=True, load_default=None)
    receiving_school = fields.String(allow_none=True, load_default=None)
    receiving_school_contact = fields.String(allow_none=True, load_default=None)
    receiving_school_email = fields.String(allow_none=True, load_default=None)
    inclusions_officer = fields.String(allow_none=True, load_default=None)
    inclusions_officer_email = fields.String(allow_none=True, load_default=None)
    letter_kind = fields.String(allow_none=True, load_default=None)
    reviews = _IsoDates(load_default=list)
    referral = _PupilField(allow_none=True, load_default=None)


class ManifestSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    run_id = fields.String(allow_none=True, load_default=None)
    input = fields.String(allow_none=True, load_default=None)
    as_of = fields.Date(allow_none=True, load_default=None)
    referrals = fields.List(fields.Nested(ManifestEntrySchema), load_default=list)


MANIFEST = ManifestSchema()
ENTRY = ManifestEntrySchema()


def entry_record(referral: Referral, reviews, written) -> dict:
    """What `run` writes for one accepted referral (`written`: the plan and letter as written, with SHA-256)."""
    return {
        "referral_id": referral.referral_id, "row": referral.row, "plan": written.plan, "letter": written.letter,
        "plan_sha256": written.plan_sha256, "letter_sha256": written.letter_sha256,
        "receiving_school": referral.receiving_school, "receiving_school_contact": referral.receiving_school_contact,
        "receiving_school_email": referral.receiving_school_email, "inclusions_officer": referral.inclusions_officer,
        "inclusions_officer_email": referral.inclusions_officer_email,
        "letter_kind": "invitation" if referral.from_ap else "request", "reviews": [d.isoformat() for d in reviews],
        "referral": pupil_record(referral),
    }


def dump_manifest(run_id: str, input_name: str, as_of: date, entries: list[dict]) -> dict:
    """The manifest as JSON-ready data, `entries` from `entry_record`: exactly what `MANIFEST.dump` gives
    (tests/test_manifest.py checks it), built directly because marshmallow's dump costs a run of 10,000
    referrals over a second."""
    return {"run_id": run_id, "input": input_name, "as_of": as_of.isoformat(), "referrals": entries}


def load_manifest(data) -> dict:
    """A manifest read from JSON, checked and typed (`Referral`, dates); raises marshmallow's ValidationError."""
    return MANIFEST.load(data)


# manifest keys that change from run to run without changing what the school is told
_NOT_SUBSTANCE = frozenset({"row", "plan", "letter", "plan_sha256", "letter_sha256"})


def substance_of(entry: Mapping) -> str:
    """SHA-256 of what a referral's documents say: its data, review dates, letter kind and addresses, without
    the run id, preparation date, spreadsheet row or file names. Re-running a workbook gives the same value
    for every referral whose row did not change."""
    kept = {k: v for k, v in entry.items() if k not in _NOT_SUBSTANCE}
    if isinstance(kept.get("referral"), dict):
        kept["referral"] = {k: v for k, v in kept["referral"].items() if k not in _NOT_SUBSTANCE}
    for part in (kept, kept.get("referral")):  # Referral IDs compare case-insensitively everywhere
        if isinstance(part, dict) and isinstance(part.get("referral_id"), str):
            part["referral_id"] = referral_key(part["referral_id"])
    text = json.dumps(kept, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
