"""The ``[email]`` settings of ``reintegrate.toml``, checked: `EmailSettings`.

`EmailSettings.from_config(config.email)` checks the raw table, and takes the SMTP password from the
``REINTEGRATE_SMTP_PASSWORD`` environment variable, never from the file. A wrong value raises `ConfigError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from pipeline.core.addresses import allowed_domains_of, split_address
from pipeline.core.errors import ConfigError
from pipeline.deliver.tls import tls_context

__all__ = ["MAX_RETRY_DEADLINE", "PASSWORD_ENV", "SECURITIES", "TRANSPORTS", "EmailSettings"]

PASSWORD_ENV = "REINTEGRATE_SMTP_PASSWORD"
TRANSPORTS = ("files", "smtp")
SECURITIES = {"starttls": 587, "ssl": 465, "none": 25}
MAX_RETRY_DEADLINE = 55.0  # seconds: a send against a dead server must give up within a minute


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

    KEYS = ("transport", "host", "port", "security", "username", "sender", "allowed_domains", "timeout",
            "max_attempts", "retry_delay", "retry_deadline", "attach_pdf", "ca_file")

    @classmethod
    def from_config(cls, email: Mapping | None, *, env: Mapping[str, str] | None = None) -> "EmailSettings":
        """Check the raw ``[email]`` dict (`Config.email`); any wrong value raises `ConfigError`."""
        email = dict(email or {})
        env = os.environ if env is None else env
        if "password" in email:
            raise ConfigError(f"[email] must not hold the password: set the {PASSWORD_ENV} environment variable "
                              "instead and remove 'password' from the config file.")
        unknown = sorted(set(email) - set(cls.KEYS))
        if unknown:
            raise ConfigError(f"[email] has unknown setting(s) {', '.join(unknown)}; the settings are "
                              f"{', '.join(cls.KEYS)} (see reintegrate.example.toml).")

        def text(key):
            value = email.get(key)
            if value is None:
                return None
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"[email] {key} must be text in quotes, e.g. {key} = \"...\".")
            return value.strip()

        def choice(key, options, default):
            value = email.get(key, default)
            if not isinstance(value, str) or value.strip().lower() not in options:
                raise ConfigError(f"[email] {key} must be one of {', '.join(repr(o) for o in options)}, "
                                  f"not {value!r}.")
            return value.strip().lower()

        def number(key, default, low, high, whole=False):
            value = email.get(key, default)
            kinds = (int,) if whole else (int, float)
            if isinstance(value, bool) or not isinstance(value, kinds) or not (low <= value <= high):
                kind = "a whole number" if whole else "a number of seconds"
                raise ConfigError(f"[email] {key} must be {kind} from {low} to {high}, not {value!r}.")
            return value

        transport = choice("transport", TRANSPORTS, "files")
        security = choice("security", tuple(SECURITIES), "starttls")
        host = text("host")
        username = text("username")
        sender = text("sender")
        if sender is not None and split_address(sender) is None:
            raise ConfigError(f"[email] sender {sender!r} is not a valid email address.")
        port = number("port", SECURITIES[security], 1, 65535, whole=True)
        timeout = float(number("timeout", 15, 0.1, 300))
        max_attempts = number("max_attempts", 3, 1, 10, whole=True)
        retry_delay = float(number("retry_delay", 2, 0, 30))
        retry_deadline = float(number("retry_deadline", 45, 0.1, MAX_RETRY_DEADLINE))
        attach_pdf = email.get("attach_pdf", False)
        if not isinstance(attach_pdf, bool):
            raise ConfigError(f"[email] attach_pdf must be true or false (no quotes), not {attach_pdf!r}.")

        allowed = allowed_domains_of(email)

        if transport == "smtp":
            if host is None:
                raise ConfigError('[email] transport = "smtp" needs host, the mail server\'s name.')
            if sender is None:
                raise ConfigError('[email] transport = "smtp" needs sender, the address the messages come from.')
        if username is not None and security == "none":
            raise ConfigError('[email] security = "none" cannot be used with a username, as the password would '
                              'travel unencrypted: use "starttls" or "ssl".')
        ca_file = text("ca_file")
        if ca_file is not None:
            if not Path(ca_file).is_file():
                raise ConfigError(f"[email] ca_file {ca_file} does not exist; give the path of the certificate "
                                  "authority's PEM file from IT (relative to reintegrate.toml's folder).")
            tls_context(ca_file)  # a file that is not a certificate fails here, before anything is sent
        password = env.get(PASSWORD_ENV) or None
        return cls(transport=transport, host=host, port=port, security=security, username=username,
                   password=password, sender=sender, allowed_domains=tuple(allowed), timeout=timeout,
                   max_attempts=max_attempts, retry_delay=retry_delay, retry_deadline=retry_deadline,
                   attach_pdf=attach_pdf, ca_file=ca_file)
