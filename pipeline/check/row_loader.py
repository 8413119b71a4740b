"""A fast path: `RowLoader` loads a referral row as `SCHEMA.load` would, several times faster on a big sheet.

It leans on marshmallow's private `Schema._hooks` to know when its own loop is safe (no pre/post-load hooks,
no schema validators), so marshmallow is pinned below its next major version in pyproject.toml, and
`tests/test_speed_paths.py` checks both that the private name is still there and that the fast path gives the
same values and messages as marshmallow on every kind of row. The project's fast paths are listed in
docs/design.md.
"""

from __future__ import annotations

from datetime import date

from marshmallow import ValidationError, missing

from schemas.referral import SCHEMA, Parsed


class RowLoader:
    """`SCHEMA.load` for one row, giving the same values and the same messages, fast.

    Most of a sheet's cells repeat (dates, schools, year groups, officers), and a `Parsed` field's
    deserialisation is a pure function of the cell's value, so each distinct (field, value) is
    deserialised once by the field itself (`Field.deserialize`: the schema stays the one source of
    every rule and message) and remembered for the rest of the sheet. The loop mirrors marshmallow's
    `Schema._deserialize`; a schema with hooks (pre/post-load, validators) is loaded by marshmallow
    itself. `tests/test_speed_paths.py` checks both give the same result."""

    CACHED_TYPES = (str, int, float, bool, date, tuple, type(None))

    def __init__(self, schema=SCHEMA):
        self.schema = schema
        self.fields = [(name, fld, fld.data_key if fld.data_key is not None else name, fld.attribute or name,
                        isinstance(fld, Parsed)) for name, fld in schema.load_fields.items()]
        self.own_loop = not any(schema._hooks.values()) and not schema.partial and not schema.many
        self.memo: dict = {}

    def load(self, data: dict) -> tuple[dict, dict]:
        """(values, messages): the loaded values (only the valid ones when there are messages) and
        marshmallow's messages keyed by heading."""
        if not self.own_loop:
            try:
                return self.schema.load(data), {}
            except ValidationError as err:
                return err.valid_data or {}, err.messages
        values: dict = {}
        messages: dict = {}
        memo = self.memo
        for name, fld, key, attribute, pure in self.fields:
            raw = data.get(key, missing)
            if not pure:
                memo_key = found = None
            else:  # by type too (True == 1 == 1.0), and floats by repr (-0.0 == 0.0 but reads differently)
                memo_key = (key, float, repr(raw)) if raw.__class__ is float else (key, raw.__class__, raw)
                found = memo.get(memo_key)
            if found is None:
                try:
                    found = (fld.deserialize(raw, key, data), None)
                except ValidationError as err:  # as marshmallow's _call_and_store keeps it
                    found = (err.valid_data or missing, err.messages)
                if memo_key is not None and (found[1] is not None or found[0] is missing
                                             or isinstance(found[0], self.CACHED_TYPES)):
                    memo[memo_key] = found
            result, errors = found
            if errors is not None:
                messages[key] = list(errors) if isinstance(errors, list) else errors
            if result is not missing:
                values[attribute] = result
        return values, messages
