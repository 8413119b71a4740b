"""The ``[email]`` settings of ``reintegrate.toml``, checked: `EmailSettings`.

`EmailSettings.from_config(config.email)` checks the raw table through the schema `schemas.email_settings`,
adds the checks that need more than the table's shape (``sender`` is an address and ``allowed_domains`` are
domains, by the rules of `pipeline.core.addresses`; ``ca_file`` is a certificate on this machine), and takes
the SMTP password from the ``REINTEGRATE_SMTP_PASSWORD`` environment variable, never from the file. A wrong
value raises `ConfigError`: one sentence, about the first problem in the order the schema looks for them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from marshmallow import ValidationError

from pipeline.core.addresses import allowed_domains_of, split_address
from pipeline.core.errors import ConfigError
from pipeline.deliver.tls import tls_context
from schemas.email_settings import (
    MAX_RETRY_DEADLINE,
    PASSWORD_ENV,
    SECURITIES,
    SETTING_KEYS,
    TRANSPORTS,
    EmailSettingsSchema,
    first_problem,
)

__all__ = ["MAX_RETRY_DEADLINE", "PASSWORD_ENV", "SECURITIES", "TRANSPORTS", "EmailSettings"]


@dataclass(frozen=True)
class EmailSettings:
    """The ``[email]`` table of ``reintegrate.toml``, checked. Build it with `EmailSettings.from_config`."""

    transport: str = "files"
    host: str | None = None
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # only ever from REINTEGRATE_SMTP_PASSWORD
    sender: str | None = None
    allowed_domains: tuple[str, ...] = ()
    timeout: float = 15.0  # seconds for one network operation (capped by what is left of retry_deadline)
    max_attempts: int = 3  # tries per message for transient failures
    retry_delay: float = 2.0  # seconds before the first retry; doubled before each further retry
    retry_deadline: float = 45.0  # seconds without an accepted message before a send gives up on the rest
    attach_pdf: bool = False  # also attach the PDF copy beside each document (run --pdf, or pdf = true)
    ca_file: str | None = None  # a private certificate authority (PEM) trusted as well as the system's

    KEYS = SETTING_KEYS

    @classmethod
    def from_config(cls, email: Mapping | None, *, env: Mapping[str, str] | None = None) -> "EmailSettings":
        """Check the raw ``[email]`` dict (`Config.email`); any wrong value raises `ConfigError`."""
        values = _checked(dict(email or {}))
        env = os.environ if env is None else env
        return cls(**values, password=env.get(PASSWORD_ENV) or None)


def _checked(email: dict) -> dict:
    """The table's values, checked and normalised; the first problem found raises `ConfigError`."""
    try:
        values, problems = EmailSettingsSchema().load(email), {}
    except ValidationError as exc:
        values, problems = exc.valid_data or {}, dict(exc.messages)
    sender = values.get("sender")
    if "sender" not in problems and sender is not None and split_address(sender) is None:
        problems["sender"] = [f"[email] sender {sender!r} is not a valid email address."]
    try:
        allowed = allowed_domains_of(email)
    except ConfigError as exc:
        problems["allowed_domains"] = [str(exc)]
    if problems:
        raise ConfigError(first_problem(problems))
    _check_ca_file(values["ca_file"])
    return {**values, "allowed_domains": tuple(allowed)}


def _check_ca_file(ca_file: str | None) -> None:
    """A ``ca_file`` must be there, and be a certificate: both fail here, before anything is sent."""
    if ca_file is None:
        return
    if not Path(ca_file).is_file():
        raise ConfigError(f"[email] ca_file {ca_file} does not exist; give the path of the certificate "
                          "authority's PEM file from IT (relative to reintegrate.toml's folder).")
    tls_context(ca_file)
