"""The ``[email]`` table of ``reintegrate.toml``: what each setting may hold, as a marshmallow schema.

`EmailSettingsSchema().load(table)` checks the raw table as `tomllib` read it and returns its values, trimmed,
lower-cased where case does not matter, and with every default filled in. A table that is wrong raises
`ValidationError` with *every* problem, each keyed by the setting it is about (`messages`); each message is
one sentence for the officer, starting ``[email]``. Problems are looked for in `CHECK_ORDER`, and an officer
is told the first: `first_problem` picks it.

Two checks are not here, because they need more than the table's shape: whether ``sender`` is a well-formed
address and ``allowed_domains`` a list of domains (the address rules of `pipeline.core.addresses`, a layer
above this one), and whether ``ca_file`` is a certificate on this machine. `pipeline.deliver.settings` adds
them, in their places in `CHECK_ORDER`, and builds the frozen `EmailSettings`.
"""

from __future__ import annotations

from typing import Mapping

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, pre_load, validates_schema

from schemas import config

PASSWORD_ENV = "REINTEGRATE_SMTP_PASSWORD"  # where the SMTP password comes from: never the config file
TRANSPORTS = ("files", "smtp")
SECURITIES = {"starttls": 587, "ssl": 465, "none": 25}  # each with its usual port, the default
MAX_RETRY_DEADLINE = 55.0  # seconds: a send against a dead server must give up within a minute
#: every setting the table may hold, in the order reintegrate.example.toml documents them
SETTING_KEYS = ("transport", "host", "port", "security", "username", "sender", "allowed_domains", "timeout",
                "max_attempts", "retry_delay", "retry_deadline", "attach_pdf", "ca_file")

PASSWORD, UNKNOWN, BETWEEN = "password", "unknown settings", "_schema"  # the keys of problems not about one value
#: the order problems are looked for in; an officer is told the first (`first_problem`). The rules between
#: settings (`BETWEEN`) come after every single value but before ca_file, as they always have.
CHECK_ORDER = (PASSWORD, UNKNOWN, "transport", "security", "host", "username", "sender", "port", "timeout",
               "max_attempts", "retry_delay", "retry_deadline", "attach_pdf", "allowed_domains", BETWEEN,
               "ca_file")


def first_problem(messages: Mapping[str, list[str]]) -> str:
    """The message an officer sees: the first problem in `CHECK_ORDER` (`schemas.config.first_problem`)."""
    return config.first_problem(messages, CHECK_ORDER)


class _Setting(fields.Field):
    """One setting, whose own check words every message: an explicit None (a Python caller may pass one) is
    judged like any other value, not with marshmallow's "may not be null"."""

    def __init__(self, **kwargs):
        super().__init__(allow_none=False, **kwargs)  # else a None default would let an explicit None through

    def _validate_missing(self, value) -> None:
        pass

    def _problem(self, text: str) -> ValidationError:
        return ValidationError(f"[email] {self.name} {text}")


class _Text(_Setting):
    """Text in quotes, trimmed; None or absent is no value."""

    def __init__(self, **kwargs):
        super().__init__(load_default=None, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self._problem(f"must be text in quotes, e.g. {self.name} = \"...\".")
        return value.strip()


class _Choice(_Setting):
    """One of a few words, case and surrounding spaces ignored."""

    def __init__(self, options, default: str, **kwargs):
        super().__init__(load_default=default, **kwargs)
        self.options = tuple(options)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or value.strip().lower() not in self.options:
            raise self._problem(f"must be one of {', '.join(repr(o) for o in self.options)}, not {value!r}.")
        return value.strip().lower()


class _Number(_Setting):
    """A number from `low` to `high`: a whole number (`whole`), or seconds (read as a float). TOML's true and
    false are not numbers, though Python counts them as 1 and 0."""

    def __init__(self, low, high, *, whole: bool = False, default=None, **kwargs):
        super().__init__(load_default=default, **kwargs)
        self.low, self.high, self.whole = low, high, whole

    def _deserialize(self, value, attr, data, **kwargs):
        kinds = (int,) if self.whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not (self.low <= value <= self.high):
            kind = "a whole number" if self.whole else "a number of seconds"
            raise self._problem(f"must be {kind} from {self.low} to {self.high}, not {value!r}.")
        return value if self.whole else float(value)


class _Switch(_Setting):
    """true or false, written without quotes."""

    def __init__(self, **kwargs):
        super().__init__(load_default=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self._problem(f"must be true or false (no quotes), not {value!r}.")
        return value


class EmailSettingsSchema(Schema):
    """The ``[email]`` table's settings. ``port`` defaults to the usual port of ``security``; ``allowed_domains``
    is passed through as written, for `pipeline.core.addresses.allowed_domains_of` to check."""

    class Meta:
        unknown = RAISE  # never reached: `_no_password_nor_unknown_settings` names them first

    transport = _Choice(TRANSPORTS, "files")
    host = _Text()
    port = _Number(1, 65535, whole=True)  # None until `_usual_port` fills it in
    security = _Choice(tuple(SECURITIES), "starttls")
    username = _Text()
    sender = _Text()
    allowed_domains = _Setting(load_default=())
    timeout = _Number(0.1, 300, default=15.0)  # seconds for one network operation
    max_attempts = _Number(1, 10, whole=True, default=3)  # tries per message for transient failures
    retry_delay = _Number(0, 30, default=2.0)  # seconds before the first retry; doubled before each further one
    retry_deadline = _Number(0.1, MAX_RETRY_DEADLINE, default=45.0)  # seconds without an accepted message
    attach_pdf = _Switch()
    ca_file = _Text()

    @pre_load
    def _no_password_nor_unknown_settings(self, data, **kwargs):
        if PASSWORD in data:
            raise ValidationError(f"[email] must not hold the password: set the {PASSWORD_ENV} environment "
                                  "variable instead and remove 'password' from the config file.", PASSWORD)
        unknown = sorted(set(data) - set(SETTING_KEYS))
        if unknown:
            raise ValidationError(f"[email] has unknown setting(s) {', '.join(unknown)}; the settings are "
                                  f"{', '.join(SETTING_KEYS)} (see reintegrate.example.toml).", UNKNOWN)
        return data

    # runs even when a value is wrong, so that its problem can come before ca_file's (see CHECK_ORDER)
    @validates_schema(skip_on_field_errors=False)
    def _settings_that_go_together(self, data, **kwargs):
        if data.get("transport") == "smtp":
            if data.get("host") is None:
                raise ValidationError('[email] transport = "smtp" needs host, the mail server\'s name.')
            if data.get("sender") is None:
                raise ValidationError('[email] transport = "smtp" needs sender, the address the messages come '
                                      'from.')
        if data.get("username") is not None and data.get("security") == "none":
            raise ValidationError('[email] security = "none" cannot be used with a username, as the password '
                                  'would travel unencrypted: use "starttls" or "ssl".')

    @post_load
    def _usual_port(self, data, **kwargs):
        if data["port"] is None:
            data["port"] = SECURITIES[data["security"]]
        return data
