"""`reintegrate.toml` checked: what each top-level setting may hold, with the sentence an officer reads when one
is wrong. The `[email]` table is checked by its own schema (`schemas.email_settings`) when a command sends;
here it only has to be a table. `pipeline.core.config.load_config` turns the result into a `Config`.
"""

from __future__ import annotations

from collections.abc import Mapping

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load

PATH_KEYS = ("outbox", "inbox", "templates_dir", "term_dates", "ledger")
KEYS = (*PATH_KEYS, "workers", "pdf", "email")
ORDER = ("_schema", "workers", "email", *PATH_KEYS, "pdf")  # which problem is reported when there are several


class _PathText(fields.Field):
    """A folder or file path, as TOML text in quotes."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError(f"'{attr}' must be a folder or file path in quotes")
        return value


class _WholeNumber(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(f"'{attr}' must be a whole number of at least 1")
        return value


class _TrueFalse(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):  # "false" in quotes is a non-empty string, which Python calls true
            raise ValidationError(f"'{attr}' must be true or false, without quotes")
        return value


class _Table(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError(f"[{attr}] must be a table of settings")
        return value


class ConfigSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # reported by `_known_keys`, in the officer's words

    outbox = _PathText(load_default=None)
    inbox = _PathText(load_default=None)
    templates_dir = _PathText(load_default=None)
    term_dates = _PathText(load_default=None)
    ledger = _PathText(load_default=None)
    workers = _WholeNumber(load_default=None)
    pdf = _TrueFalse(load_default=False)
    email = _Table(load_default=dict)

    @pre_load
    def _known_keys(self, data, **kwargs):
        unknown = sorted(set(data) - set(KEYS)) if isinstance(data, dict) else []
        if unknown:
            raise ValidationError(f"unknown setting(s) {', '.join(unknown)}; see reintegrate.example.toml")
        return data


CONFIG_SCHEMA = ConfigSchema()


def first_problem(messages: Mapping, order: tuple[str, ...] = ORDER) -> str:
    """The one sentence to show for a failed load (marshmallow reports every problem at once): the first in
    `order`, which lists the checks in the order the officer should meet them."""
    key = next((k for k in order if messages.get(k)), None) or next(iter(messages))
    problem = messages[key]
    return problem[0] if isinstance(problem, list) else str(problem)
