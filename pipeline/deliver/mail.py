"""Email a run's documents (SPEC section 6): one message per referral, plan and letter attached.

Used as a library, the whole of `reintegrate send RUN_DIR` is::

    from pipeline.core.config import load_config
    from pipeline.deliver.mail import send_with_config

    report = send_with_config("outbox/20261129T101500123456Z-ab12", load_config())
    for line in report.lines():
        print(line)
    raise SystemExit(report.exit_code)

or, step by step: `EmailSettings.from_config(config.email)`, a `Ledger`, then `send_run(run_dir, settings,
ledger)`. The flow for each referral in the run's `manifest.json` is

    read the entry -> find the newest plan -> hash the attachments -> already delivered (any run)? ->
    every recipient allowed? -> build the message (an update?) -> draft (.eml) or send (SMTP) -> record

Transports:

- ``files`` (the default): ``RUN_DIR/mail/<Referral ID>.eml`` drafts that Outlook opens ready to send
  (header ``X-Unsent: 1``). A draft is recorded as ``drafted``; it never counts as sent, so a later SMTP send
  still sends it.
- ``smtp``: one connection for the whole command (``starttls`` or ``ssl``, the certificate and host name
  verified against the system's CAs plus ``ca_file``, never a clear-text fallback; or ``none`` for a local
  relay; a login when a username is set, the password from ``REINTEGRATE_SMTP_PASSWORD`` only). Each message
  is one SMTP transaction (MAIL, RCPT for every recipient, DATA): a recipient refused means nothing is
  delivered to anyone. Failures before the message is handed over (refused connections, timeouts, 4xx
  replies) are retried (exponential backoff, ``max_attempts`` a message); a 5xx reply fails that message at
  once; a wrong password or a TLS failure fails them all at once (no retry storm that locks the account).
  A connection lost *after* the content was handed over is ``uncertain`` ("may have been sent"): never
  retried, and left alone by later sends unless ``--resend``. The bound is on progress: once no message
  has been accepted for ``retry_deadline`` seconds (at most 55), the rest are left for a later send, however
  slowly the server answers (every wait is cut to the time left, and a watchdog shuts the socket).

Once per term: before a message is made, the ledger's record of earlier sends of the same Referral ID (any
run folder, case-insensitive) decides. The same *substance* (`substance_of`: the referral's data, reviews,
letter kind and addresses, not the run id, row or preparation date) already delivered is skipped ("already
sent (run, date)"); documents edited in Word or reviewed since count as new unless those very bytes went
before; anything else the school had an earlier version of goes as an update (subject "Updated ...").

Allowed domains: ``allowed_domains`` lists the domains mail may go to; a domain allows itself and its
subdomains (``sch.uk`` allows ``brookfield.sch.uk``, never ``evilsch.uk``). With the list empty or unset,
**nothing is allowed**, for both transports: every message is blocked and the report says to set the list.
A message with any recipient outside the list is not drafted or sent at all, is recorded ``blocked`` and
makes the send exit 1 so the officer checks the address first.

Personal data stays inside the attachments: subjects, bodies, attachment file names and log lines carry the
Referral ID, school names, officer and domains, never a pupil's name or UPN. Attachments are named by what
they are (`HAV-0001 reintegration plan.docx`, `HAV-0001 meeting invitation.docx`), since a file name travels
in the message headers like a subject line, and the plan and letter share one file name in the run folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, localtime, make_msgid
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

from pipeline.core.errors import ConfigError, InputError, MissingPassword, ReintegrateError, TemplateError
from pipeline.core.addresses import split_address, allowed_domains_of, domain_allowed, domain_of
from pipeline.core.files import safe_name_part, write_bytes
from pipeline.core.ledger import referral_key
from pipeline.write.plan_record import newest_plan, review_date_of

__all__ = [
    "DOCX_TYPE",
    "EMAIL_CONTEXT_KEYS",
    "EMAIL_TEMPLATE",
    "PASSWORD_ENV",
    "EmailSettings",
    "MailError",
    "SendReport",
    "SendResult",
    "build_message",
    "content_hash",
    "domain_allowed",
    "newest_plan",
    "send_run",
    "send_with_config",
]

PASSWORD_ENV = "REINTEGRATE_SMTP_PASSWORD"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PDF_TYPE = "application/pdf"
EMAIL_TEMPLATE = "plan-email.txt"
#: the variables the email template is given (for `check-templates`)
EMAIL_CONTEXT_KEYS = frozenset({
    "referral_id", "receiving_school", "receiving_school_contact", "inclusions_officer",
    "inclusions_officer_email", "letter_kind", "run_id", "as_of", "plan_reviewed", "plan_review_date", "update",
})

TRANSPORTS = ("files", "smtp")
SECURITIES = {"starttls": 587, "ssl": 465, "none": 25}
MAX_RETRY_DEADLINE = 55.0  # seconds: a send against a dead server must give up within a minute

Log = Callable[[str], None]


class MailError(ReintegrateError):
    """A referral whose message cannot be built (missing file, missing or malformed field).

    The message never names a plan or letter file: their names carry the pupil's name.
    """


# --------------------------------------------------------------------------------------------- settings

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


# ------------------------------------------------------------------------------------------ templates

def _shipped_templates() -> Path | None:
    from pipeline.core.resources import shipped

    found = shipped(f"templates/email/{EMAIL_TEMPLATE}")  # the one lookup: a checkout first, then the package
    return found.parent.parent if found else None


@lru_cache(maxsize=8)
def _environment(templates_dir: str | None) -> SandboxedEnvironment:
    loaders = []
    if templates_dir:
        loaders.append(jinja2.FileSystemLoader(str(Path(templates_dir) / "email")))
    shipped = _shipped_templates()
    if shipped is not None:
        loaders.append(jinja2.FileSystemLoader(str(shipped / "email")))
    return SandboxedEnvironment(loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
                                autoescape=False, keep_trailing_newline=True, trim_blocks=True,
                                lstrip_blocks=True)


def check_email_template(templates_dir: str | Path | None = None) -> list[str]:
    """`reintegrate check-templates` for the email body: a syntax error, or each name it uses that the message
    data does not provide (`EMAIL_CONTEXT_KEYS`), one sentence each."""
    try:
        template = load_email_template(templates_dir)
    except TemplateError as exc:
        return [str(exc)]
    env = template.environment
    source = env.loader.get_source(env, EMAIL_TEMPLATE)[0]
    unknown = sorted(jinja2.meta.find_undeclared_variables(env.parse(source)) - EMAIL_CONTEXT_KEYS)
    return [f"email/{EMAIL_TEMPLATE}: placeholder '{name}' cannot be filled (an email has only: "
            f"{', '.join(sorted(EMAIL_CONTEXT_KEYS))})" for name in unknown]


def load_email_template(templates_dir: str | Path | None = None) -> jinja2.Template:
    """The body template: ``<templates_dir>/email/plan-email.txt`` if present, else the shipped one."""
    try:
        return _environment(str(templates_dir) if templates_dir else None).get_template(EMAIL_TEMPLATE)
    except jinja2.TemplateNotFound:
        raise TemplateError(f"email/{EMAIL_TEMPLATE}: the email template was not found in "
                            f"{templates_dir or 'the shipped templates'}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"email/{EMAIL_TEMPLATE}: template syntax error on line {exc.lineno}: "
                            f"{exc.message}") from None


# ------------------------------------------------------------------------------------------- messages

def attachment_name(entry: Mapping, key: str, path: Path, review_date: str | None) -> str:
    """What the receiving school sees: the Referral ID and the document, never the pupil's name."""
    rid = safe_name_part(str(entry.get("referral_id") or "referral"))
    if key == "plan":
        what = "reintegration plan" + (f" reviewed {review_date}" if review_date else "")
    else:
        what = "meeting request" if entry.get("letter_kind") == "request" else "meeting invitation"
    return f"{rid} {what}{path.suffix.lower()}"


def content_hash(attachments: list[tuple[str, bytes]]) -> str:
    """SHA-256 over the attachments' bytes (in order): a new plan version is new content."""
    digest = hashlib.sha256()
    for _name, data in attachments:
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def _clean(value) -> str:
    """Header- and template-safe text: no line breaks or control characters, spaces collapsed."""
    if value is None:
        return ""
    return re.sub(r"[\s\x00-\x1f\x7f]+", " ", str(value)).strip()


@dataclass
class _Prepared:
    """One manifest entry, read and checked, ready to become a message."""

    referral_id: str
    entry: dict
    to: str
    cc: str | None
    attachments: list[tuple[str, bytes]]  # (file name, bytes)
    attachment_paths: list[str]  # relative to the run folder, for reports
    plan_review_date: str | None
    content_sha256: str  # the attachments' bytes
    substance: str  # what the referral says, apart from run id, row and preparation date
    as_generated: bool  # plan and letter are exactly as `run` wrote them (no reviewed version, no Word edit)

    @property
    def recipients(self) -> list[str]:
        return [self.to] + ([self.cc] if self.cc else [])


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


def _inside(run_dir: Path, relative) -> Path:
    if not isinstance(relative, str) or not relative.strip():
        raise MailError("the manifest names no file for it")
    path = Path(relative)
    if path.is_absolute():
        raise MailError("the manifest points outside the run folder")
    resolved = (run_dir / path).resolve()
    if not resolved.is_relative_to(run_dir.resolve()):
        raise MailError("the manifest points outside the run folder")
    return run_dir / path


def _read_document(run_dir: Path, entry: dict, key: str) -> tuple[Path, bytes]:
    """The newest version of the plan (or the letter) and its bytes."""
    try:
        path = _inside(run_dir, entry.get(key))
    except MailError as exc:
        raise MailError(f"the {key} file: {exc}") from None
    if key == "plan":
        path = newest_plan(path)
    try:
        return path, path.read_bytes()
    except FileNotFoundError:
        raise MailError(f"the {key} file is missing from the {path.parent.name}/ folder") from None
    except OSError as exc:
        raise MailError(f"the {key} file in the {path.parent.name}/ folder cannot be read "
                        f"({exc.strerror or exc})") from None


def _pdf_copies(files: list[tuple[Path, bytes]]) -> list[tuple[Path, bytes]]:
    """The PDF copy beside each document: plans/<name>.pdf, letters/<name>.pdf."""
    copies = []
    for key, (path, _) in zip(("plan", "letter"), files):
        pdf = path.with_suffix(".pdf")
        try:
            copies.append((pdf, pdf.read_bytes()))
        except OSError:
            raise MailError(f"attach_pdf is on but the PDF copy of the {key} is missing from "
                            f"the {path.parent.name}/ folder: make it with `reintegrate run --pdf` (or Word's "
                            "Save as PDF, beside the document), or set attach_pdf = false") from None
    return copies


def _prepare(entry: dict, run_dir: Path, index: int = 0, attach_pdf: bool = False) -> _Prepared:
    if not isinstance(entry, dict):
        raise MailError(f"manifest entry {index + 1} is not a record")
    referral_id = _clean(entry.get("referral_id"))
    if not referral_id:
        raise MailError(f"manifest entry {index + 1} has no referral_id")
    to = _clean(entry.get("receiving_school_email"))
    if not to:
        raise MailError("no receiving school email in the manifest")
    cc = _clean(entry.get("inclusions_officer_email")) or None
    if cc and cc.lower() == to.lower():
        cc = None
    files = [_read_document(run_dir, entry, "plan"), _read_document(run_dir, entry, "letter")]
    plan_path = files[0][0]
    review_date = review_date_of(plan_path)
    as_generated = review_date is None and all(
        entry.get(f"{key}_sha256") == hashlib.sha256(data).hexdigest()
        for key, (_, data) in zip(("plan", "letter"), files))
    if attach_pdf:
        files += _pdf_copies(files)
    attachments = [(attachment_name(entry, key, path, review_date), data)
                   for key, (path, data) in zip(("plan", "letter", "plan", "letter"), files)]
    return _Prepared(referral_id=referral_id, entry=entry, to=to, cc=cc, attachments=attachments,
                     attachment_paths=[p.relative_to(run_dir).as_posix() for p, _ in files],
                     plan_review_date=review_date, content_sha256=content_hash(attachments),
                     substance=substance_of(entry), as_generated=as_generated)


# an address, an angle bracket or an RFC 2047 encoded word in a display name could pass for another address
_NOT_A_NAME = re.compile(r"=\?[^?\s]*\?[A-Za-z]\?[^?\s]*\?=|\S*@\S*|[<>\"\\,;:]")


def display_name(text) -> str:
    """A display name that reads as a name and nothing else: no address, no `<` or `>`, no encoded word,
    no quotes, commas or colons (which would split or quote the header); empty when nothing is left."""
    cleaned = _NOT_A_NAME.sub(" ", _clean(text))
    return " ".join(cleaned.replace("=?", " ").split())[:80]


def _address(addr: str, name: str = "") -> Address:
    parts = split_address(addr)
    if parts is None:
        raise MailError(f"{addr!r} is not a valid email address")
    return Address(display_name=display_name(name), username=parts[0], domain=parts[1])


def subject_for(entry: Mapping, *, update: bool = False) -> str:
    """``Reintegration plan HAV-0001 – Brookfield Academy``: the Referral ID, never a pupil's name or UPN.
    An update of a referral the school already has says so first."""
    school = _clean(entry.get("receiving_school"))
    return (("Updated reintegration plan" if update else "Reintegration plan") + f" {_clean(entry.get('referral_id'))}"
            + (f" – {school}" if school else ""))


def _compose(prepared: _Prepared, settings: EmailSettings, template: jinja2.Template,
             run: Mapping | None = None, *, draft: bool = False, update: bool = False) -> EmailMessage:
    entry, run = prepared.entry, run or {}
    context = {
        "referral_id": prepared.referral_id,
        "receiving_school": _clean(entry.get("receiving_school")),
        "receiving_school_contact": _clean(entry.get("receiving_school_contact")),
        "inclusions_officer": _clean(entry.get("inclusions_officer")),
        "inclusions_officer_email": prepared.cc or "",
        "letter_kind": _clean(entry.get("letter_kind")),
        "run_id": _clean(run.get("run_id")),
        "as_of": _clean(run.get("as_of")),
        "plan_reviewed": prepared.plan_review_date is not None,
        "plan_review_date": prepared.plan_review_date or "",
        "update": update,
    }
    try:
        body = template.render(context)
    except jinja2.TemplateError as exc:
        raise MailError(f"the email template email/{EMAIL_TEMPLATE} could not be rendered ({exc})") from None

    msg = EmailMessage(policy=policy.default)
    msg["Subject"] = subject_for(entry, update=update)
    if settings.sender:
        msg["From"] = _address(settings.sender, "Havering Inclusions Team")
    msg["To"] = _address(prepared.to, context["receiving_school_contact"])
    if prepared.cc:
        msg["Cc"] = _address(prepared.cc, context["inclusions_officer"])
    msg["Date"] = format_datetime(localtime())
    domain = domain_of(settings.sender) if settings.sender else "reintegrate.invalid"
    msg["Message-ID"] = make_msgid(domain=domain)
    if draft:
        msg["X-Unsent"] = "1"  # Outlook opens the .eml as a draft, ready to send
        msg["X-Reintegrate-Content"] = prepared.content_sha256
    # quoted-printable keeps the message 7-bit: no server needs 8BITMIME or SMTPUTF8
    msg.set_content(body, subtype="plain", charset="utf-8", cte="quoted-printable")
    for name, data in prepared.attachments:
        maintype, subtype = (PDF_TYPE if name.lower().endswith(".pdf") else DOCX_TYPE).split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


def build_message(entry: dict, run_dir: str | Path, settings: EmailSettings, *,
                  templates_dir: str | Path | None = None, run: Mapping | None = None,
                  draft: bool = False) -> EmailMessage:
    """The message for one manifest entry: to the receiving school contact, cc the inclusions officer.

    Attachments are the newest plan version and the letter (Word MIME type, their own file names); the
    body comes from ``email/plan-email.txt``. `run` is the manifest (for run_id and as_of in the template);
    `draft` adds the headers that make Outlook open the message as a draft. Raises `MailError` when the entry
    cannot make a message (missing file, malformed address) and `TemplateError` for a broken template.
    """
    return _compose(_prepare(entry, Path(run_dir), attach_pdf=settings.attach_pdf), settings,
                    load_email_template(templates_dir), run,
                    draft=draft)


# --------------------------------------------------------------------------------------------- report

@dataclass(frozen=True)
class SendResult:
    """What happened to one referral's message (no pupil data: referral id, addresses, file names)."""

    referral_id: str
    reason: str
    to: str = ""
    cc: str = ""
    attachments: tuple[str, ...] = ()


@dataclass
class SendReport:
    run_id: str
    transport: str
    dry_run: bool = False
    sent: list[SendResult] = field(default_factory=list)
    drafted: list[SendResult] = field(default_factory=list)
    skipped: list[SendResult] = field(default_factory=list)
    blocked: list[SendResult] = field(default_factory=list)
    failed: list[SendResult] = field(default_factory=list)
    planned: list[SendResult] = field(default_factory=list)  # dry run: what would be sent or drafted
    uncertain: list[SendResult] = field(default_factory=list)  # this send: the server may have accepted it

    PROBLEMS = ("blocked", "failed", "uncertain")  # what the officer must act on

    @property
    def exit_code(self) -> int:
        """1 when any message was not (surely) sent: blocked, failed or maybe sent; 0 when all were sent or
        nothing was left."""
        return 1 if any(getattr(self, name) for name in self.PROBLEMS) else 0

    def summary(self) -> str:
        maybe = f", {len(self.uncertain)} may have been sent" if self.uncertain else ""
        if self.dry_run:
            verb = "would be drafted" if self.transport == "files" else "would be sent"
            done = "already drafted or sent" if self.transport == "files" else "already sent"
            return (f"Dry run: {len(self.planned)} {verb}, {len(self.skipped)} {done}, "
                    f"{len(self.blocked)} blocked, {len(self.failed)} failed; nothing was sent.")
        return (f"{len(self.sent)} sent, {len(self.drafted)} drafted, {len(self.skipped)} skipped, "
                f"{len(self.blocked)} blocked, {len(self.failed)} failed{maybe}.")

    def entries(self) -> list[tuple[str, SendResult]]:
        """(what happened, result) for each referral, in report order; what happened is one of "planned",
        "sent", "drafted", "skipped", or a problem in `PROBLEMS`."""
        return [(name, r) for name in ("planned", "sent", "drafted", "skipped", "blocked", "failed", "uncertain")
                for r in getattr(self, name)]

    _LABELS = {"sent": "sent", "drafted": "drafted", "skipped": "skipped", "blocked": "BLOCKED",
               "failed": "FAILED", "uncertain": "MAY HAVE BEEN SENT"}

    def line(self, what: str, result: SendResult) -> str:
        label = ("would send" if self.transport == "smtp" else "would draft") if what == "planned" \
            else self._LABELS[what]
        return f"{result.referral_id}: {label}: {result.reason}"

    def lines(self) -> list[str]:
        """One line per referral, then the summary: what the CLI prints."""
        return [self.line(what, r) for what, r in self.entries()] + [self.summary()]

    def as_dict(self) -> dict:
        data = asdict(self)
        data["exit_code"] = self.exit_code
        return data


# ----------------------------------------------------------------------------------------------- smtp

class _Retry(Exception):
    """A transient failure before the message was handed over: try it again (after a wait)."""

    def __init__(self, reason: str, *, connection: bool):
        super().__init__(reason)
        self.reason = reason
        self.connection = connection  # the connection is gone (refused, timed out, dropped, 421)


class _Permanent(Exception):
    """A 5xx reply: this message fails now; the server is fine for the others."""


class _Fatal(Exception):
    """Nothing can be sent this time (login refused, TLS cannot be set up): every message fails."""


class _Uncertain(Exception):
    """The connection failed after the message's content was handed over: the server may have accepted it,
    so it is never retried automatically (a retry could deliver a second copy)."""


def _reply_text(resp) -> str:
    if isinstance(resp, bytes):
        resp = resp.decode("utf-8", "replace")
    return " ".join(str(resp).split())[:200]


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The system's trusted certificate authorities, plus `ca_file` (a council's private CA) when set; the
    server's certificate and host name are always verified."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"[email] ca_file {ca_file} cannot be used as a certificate authority "
                              f"({getattr(exc, 'strerror', None) or exc}); it must be a PEM file "
                              "(text starting -----BEGIN CERTIFICATE-----) from IT.") from None
    return context


def _tls_failure(exc: ssl.SSLError, where: str) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or "not trusted"
        if "hostname" in str(why).lower() or "ip address mismatch" in str(why).lower():
            return (f"the certificate of the server at {where} is for another name ({why}); set host to the name "
                    "the certificate is made out to (ask IT)")
        return (f"the certificate of the server at {where} is not trusted ({why}); if the council uses its own "
                'certificate authority, ask IT for it as a PEM file and set ca_file = "..." in [email] '
                "(docs/email.md)")
    return (f"a secure (TLS) connection to {where} could not be set up ({exc.reason or exc}); check port and "
            'security in [email]: usually 587 with "starttls", 465 with "ssl"')


class _SmtpBatch:
    """One SMTP connection reused for a batch (a whole `send` command), with bounded retries.

    The bound is on progress: once no message has been accepted for `retry_deadline` seconds (at most 55),
    the rest are left for a later send, however slowly the server answers. Every network wait is cut to the
    time left, and a watchdog shuts the socket at the deadline, so a server that drips its replies cannot
    hold `send` past it.
    """

    def __init__(self, settings: EmailSettings, log: Log, *, clock=time.monotonic, sleep=time.sleep):
        self.settings = settings
        self.log = log
        self.clock = clock
        self.sleep = sleep
        self.conn: smtplib.SMTP | None = None
        self.last_progress = clock()  # when the batch started, or a message was last accepted
        self.down_reason: str | None = None
        self.where = f"{settings.host}:{settings.port}"
        self.context = tls_context(settings.ca_file) if settings.security != "none" else None
        self._lock = threading.Lock()
        self._watchdog: threading.Timer | None = None

    # seconds left before the batch gives up
    def _left(self) -> float:
        return self.settings.retry_deadline - (self.clock() - self.last_progress)

    def _timeout(self) -> float:
        left = self._left()
        if left <= 0:
            raise _Retry(f"no message accepted by {self.where} for {self.settings.retry_deadline:g} seconds",
                         connection=True)
        return max(0.05, min(self.settings.timeout, left))

    def _tick(self, conn: smtplib.SMTP) -> None:
        """Before each network step: its wait is cut to the time left."""
        conn.timeout = self._timeout()
        if conn.sock is not None:
            conn.sock.settimeout(conn.timeout)

    def _arm(self, conn: smtplib.SMTP | None) -> None:
        """Shut the socket down when the deadline passes, wherever the step is waiting."""
        self._disarm()
        if conn is None or self.clock is not time.monotonic:  # a simulated clock has no real deadline
            return

        def cut():
            with self._lock:
                sock = conn.sock
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        self._watchdog = threading.Timer(max(0.0, self._left()) + 0.05, cut)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _disarm(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _drop(self) -> None:
        self._disarm()
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a broken socket must never fail the send
                pass
            self.conn = None

    def close(self) -> None:
        self._disarm()
        if self.conn is not None:
            try:
                self.conn.timeout = 2
                if self.conn.sock is not None:
                    self.conn.sock.settimeout(2)
                self.conn.quit()
            except Exception:  # noqa: BLE001
                pass
        self._drop()

    def _open(self) -> smtplib.SMTP:
        """Connect (the host name goes to the constructor: TLS checks the certificate against it), secure,
        log in. Never falls back to clear text. The half-open connection is closed if any step fails."""
        s = self.settings
        local = socket.gethostname() or "localhost"  # not getfqdn(): that can wait on DNS
        if s.security == "ssl":
            conn = smtplib.SMTP_SSL(s.host, s.port, local_hostname=local, timeout=self._timeout(),
                                    context=self.context)
        else:
            conn = smtplib.SMTP(s.host, s.port, local_hostname=local, timeout=self._timeout())
        try:
            self._arm(conn)
            self._tick(conn)
            conn.ehlo()
            if s.security == "starttls":
                if not conn.has_extn("starttls"):
                    raise _Fatal(f"the server at {self.where} does not offer STARTTLS, so the connection cannot be "
                                 "encrypted and nothing was sent; ask IT for the port that offers STARTTLS "
                                 '(usually 587), or use security = "ssl" (usually port 465)')
                self._tick(conn)
                conn.starttls(context=self.context)
                self._tick(conn)
                conn.ehlo()
            if s.username:
                self._tick(conn)
                conn.login(s.username, s.password or "")
            return conn
        except BaseException:
            self._disarm()
            try:
                conn.close()
            except OSError:
                pass
            raise

    def _connect(self) -> smtplib.SMTP:
        """`_open`, with every failure sorted into retry (transient) or fatal (nothing can be sent)."""
        s = self.settings
        try:
            return self._open()
        except (_Retry, _Fatal):
            raise
        except smtplib.SMTPAuthenticationError as exc:
            if 400 <= exc.smtp_code < 500:
                raise _Retry(f"login temporarily refused ({exc.smtp_code} {_reply_text(exc.smtp_error)})",
                             connection=True) from None
            raise _Fatal(f"the server at {self.where} refused the login for {s.username} "
                         f"({exc.smtp_code} {_reply_text(exc.smtp_error)}); check the username in [email] and "
                         f"the password in the {PASSWORD_ENV} environment variable (not retried, so the account "
                         "is not locked)") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise _Fatal(f"the server at {self.where} does not support logging in ({_reply_text(str(exc))}); "
                         "check security and username in [email] with IT") from None
        except ssl.SSLError as exc:
            raise _Fatal(_tls_failure(exc, self.where)) from None
        except smtplib.SMTPResponseException as exc:  # includes SMTPConnectError (the greeting)
            if 400 <= exc.smtp_code < 500:
                raise _Retry(f"the server at {self.where} is busy ({exc.smtp_code} {_reply_text(exc.smtp_error)})",
                             connection=True) from None
            raise _Fatal(f"the server at {self.where} refused the connection ({exc.smtp_code} "
                         f"{_reply_text(exc.smtp_error)})") from None
        except smtplib.SMTPServerDisconnected as exc:  # also a greeting that never came (timeout)
            raise _Retry(f"the server at {self.where} closed the connection or did not answer "
                         f"({_reply_text(str(exc))})", connection=True) from None
        except smtplib.SMTPException as exc:
            raise _Fatal(f"the server at {self.where} cannot be used ({_reply_text(str(exc))})") from None
        except (TimeoutError, socket.timeout):
            raise _Retry(f"no answer from {self.where} in time", connection=True) from None
        except ConnectionRefusedError:
            raise _Retry(f"connection to {self.where} refused", connection=True) from None
        except socket.gaierror:
            raise _Retry(f"the mail server name {s.host} could not be found", connection=True) from None
        except OSError as exc:
            raise _Retry(f"cannot connect to {self.where} ({exc.strerror or exc})", connection=True) from None

    def _command(self, conn: smtplib.SMTP, step: str, call) -> None:
        """One envelope command; a reply other than 250/251 becomes retry or permanent."""
        self._tick(conn)
        try:
            code, resp = call()
        except smtplib.SMTPResponseException as exc:
            code, resp = exc.smtp_code, exc.smtp_error
        if code in (250, 251):
            return
        self._refused(conn, code, f"{code} {_reply_text(resp)} at {step}")

    def _refused(self, conn: smtplib.SMTP, code: int, reply: str) -> None:
        if code == 421 or code < 0:
            self._drop()
            raise _Retry(f"the server closed the connection ({reply})", connection=True)
        try:
            self._tick(conn)
            conn.rset()
        except (smtplib.SMTPException, OSError, _Retry):
            self._drop()
        if 400 <= code < 500:
            raise _Retry(f"temporary refusal ({reply})", connection=False)
        raise _Permanent(f"refused ({reply})")

    def _data(self, conn: smtplib.SMTP, data: bytes) -> None:
        """DATA as smtplib does it, split where it matters: up to the 354 reply nothing is delivered (safe to
        retry); once the content is handed over, a lost connection means the server may have it."""
        self._tick(conn)
        conn.putcmd("data")
        code, resp = conn.getreply()
        if code != 354:
            self._refused(conn, code, f"{code} {_reply_text(resp)} at DATA")
        content = re.sub(rb"(?m)^\.", b"..", data)
        if not content.endswith(b"\r\n"):
            content += b"\r\n"
        self._tick(conn)  # past the deadline before the content goes: dropping the connection delivers nothing
        try:
            conn.send(content + b".\r\n")
            self._tick(conn)
            code, resp = conn.getreply()
        except (_Retry, smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise _Uncertain(f"the connection to {self.where} was lost after the message was handed over "
                             f"({_reply_text(getattr(exc, 'reason', None) or exc) or type(exc).__name__})") from None
        if code != 250:
            self._refused(conn, code, f"{code} {_reply_text(resp)} after the message")

    def _transaction(self, sender: str, recipients: list[str], data: bytes) -> None:
        """MAIL, RCPT for every recipient, DATA: all recipients accepted or nothing delivered."""
        if self.conn is None:
            self.conn = self._connect()
        else:
            self._arm(self.conn)
        conn = self.conn
        try:
            self._command(conn, "MAIL FROM", lambda: conn.mail(sender))
            for r in recipients:
                self._command(conn, f"RCPT TO ({domain_of(r)})", lambda r=r: conn.rcpt(r))
            self._data(conn, data)
        except (_Retry, _Permanent, _Uncertain):
            raise
        except smtplib.SMTPServerDisconnected:
            self._drop()
            raise _Retry(f"the connection to {self.where} was closed", connection=True) from None
        except (TimeoutError, socket.timeout):
            self._drop()
            raise _Retry(f"no answer from {self.where} in time", connection=True) from None
        except ssl.SSLError as exc:
            self._drop()
            raise _Retry(f"the secure connection to {self.where} failed ({exc.reason or exc})",
                         connection=True) from None
        except OSError as exc:
            self._drop()
            raise _Retry(f"the connection to {self.where} failed ({exc.strerror or exc})", connection=True) from None
        except smtplib.SMTPException as exc:
            self._drop()
            raise _Retry(f"{_reply_text(str(exc))}", connection=True) from None
        finally:
            self._disarm()

    def send(self, msg: EmailMessage, recipients: list[str], referral_id: str) -> tuple[str, str]:
        """("sent", detail) when the server accepted the message; ("uncertain", reason) when it may have;
        ("failed", reason) when it was not sent."""
        if self.down_reason:
            return "failed", f"not attempted: {self.down_reason}"
        data = msg.as_bytes(policy=policy.SMTP)
        delay = self.settings.retry_delay
        attempt = 0
        while True:
            attempt += 1
            try:
                self._transaction(self.settings.sender, recipients, data)
                self.last_progress = self.clock()
                return "sent", f"accepted by {self.where}" + (f" after {attempt} attempts" if attempt > 1 else "")
            except _Uncertain as exc:
                return "uncertain", str(exc)
            except _Permanent as exc:
                return "failed", f"{exc}; not retried"
            except _Fatal as exc:
                self._drop()
                self.down_reason = str(exc)
                return "failed", str(exc)
            except _Retry as exc:
                last = exc
            give_up = None
            if self._left() <= 0:
                give_up = (f"{last.reason}; gave up after {attempt} attempts (no message accepted for "
                           f"{self.settings.retry_deadline:g} seconds)")
            elif attempt >= self.settings.max_attempts:
                give_up = f"{last.reason}; gave up after {attempt} attempts"
            if give_up:
                if last.connection or self._left() <= 0:
                    self.down_reason = (f"the mail server at {self.where} is not available ({last.reason}); "
                                        "send again later")
                    self.log(f"mail server {self.where} judged unavailable; the remaining messages are left "
                             "for a later send")
                return "failed", give_up
            wait = min(delay, max(0.0, self._left()))
            self.log(f"{referral_id}: attempt {attempt} failed ({last.reason}); retrying in {wait:g} s")
            if wait > 0:
                self.sleep(wait)
            delay *= 2

# ----------------------------------------------------------------------------------------------- send

def _read_manifest(run_dir: Path) -> dict:
    path = run_dir / "manifest.json"
    if not run_dir.is_dir():
        raise InputError(run_dir, "this is not a run folder (it does not exist or is not a folder)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "the run folder has no manifest.json, so it is not a run folder written by "
                               "'reintegrate run'") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"the manifest cannot be read ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("referrals", []), list):
        raise InputError(path, "the manifest has no list of referrals")
    return manifest


def _draft_matches(path: Path, content_sha256: str) -> bool:
    try:
        with path.open("rb") as fh:
            headers = BytesParser(policy=policy.default).parse(fh, headersonly=True)
    except OSError:
        return False
    return "".join(str(headers.get("X-Reintegrate-Content", "")).split()) == content_sha256


def _nothing(_line: str) -> None:
    pass


def _draft_names(entries: list) -> list[str]:
    """One .eml name per manifest entry, unique in the run: Referral IDs such as HAV/1 and HAV-1 make the same
    safe name, and one draft must never replace another."""
    names, seen = [], set()
    for index, entry in enumerate(entries):
        rid = _clean(entry.get("referral_id")) if isinstance(entry, dict) else ""
        stem = safe_name_part(rid or f"referral-{index + 1}")
        name, n = f"{stem}.eml", 2
        while name.casefold() in seen:
            name, n = f"{stem}-{n}.eml", n + 1
        seen.add(name.casefold())
        names.append(name)
    return names


class SendSession:
    """Everything one command sends, however many run folders: one SMTP connection and ONE retry deadline,
    so `run a.xlsx b.xlsx --send` against a server that is down still gives up within a minute."""

    def __init__(self):
        self.batch: _SmtpBatch | None = None

    def close(self) -> None:
        if self.batch is not None:
            self.batch.close()
            self.batch = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass(frozen=True)
class _Decision:
    """What to do with one prepared message, from the ledger's record of earlier sends."""

    skip: str | None = None  # why it is not sent again (already sent, may have been sent, draft written)
    update: bool = False  # the school had an earlier version: the subject says so


def _decide(prepared: _Prepared, ledger, *, smtp: bool, resend: bool) -> _Decision:
    """Each school gets each referral once across the term: the same substance already delivered (in any run)
    is skipped; a changed one goes as an update. Documents as `run` wrote them match on substance alone, so a
    re-run that only changes the run id and date sends nothing; a reviewed or Word-edited version is new
    unless those very bytes went before."""
    if ledger is None:
        return _Decision()
    counted = ("sent", "uncertain") if smtp else ("sent", "uncertain", "drafted")
    history = ledger.deliveries(prepared.referral_id, counted)
    same = [d for d in history if d.substance == prepared.substance
            and (prepared.as_generated or d.content_sha256 == prepared.content_sha256)]
    update = any(d not in same for d in history)
    if resend or not same:
        return _Decision(update=update)
    done = same[0]
    if done.status == "sent":
        return _Decision(skip=f"already sent (run {done.run_id}, {done.day}); --resend sends it again")
    if done.status == "uncertain":
        return _Decision(skip=f"may have been sent (run {done.run_id}, {done.day}): check with the school before "
                              "sending again; --resend sends it again")
    return _Decision(skip=f"draft already written (run {done.run_id}, {done.day}); --resend writes it again")


def _blocked_reason(prepared: _Prepared, settings: EmailSettings) -> str | None:
    outside = [r for r in prepared.recipients if not domain_allowed(r, settings.allowed_domains)]
    if not outside:
        return None
    if not settings.allowed_domains:
        return ("no allowed_domains are set in [email], so nothing may be sent; add the domains "
                'you send to, e.g. allowed_domains = ["havering.gov.uk", "sch.uk"]')
    shown = ", ".join(f"{r} ({'malformed address' if split_address(r) is None else 'domain not allowed'})"
                      for r in outside)
    return (f"recipient outside allowed_domains: {shown}; check the address in the referral "
            "spreadsheet, or add the domain to allowed_domains")


class _Sender:
    """One `send_run`: the report, the ledger record and the log, one referral at a time."""

    def __init__(self, run_dir: Path, manifest: dict, settings: EmailSettings, ledger, report: SendReport, *,
                 dry_run: bool, resend: bool, log: Log, template: jinja2.Template, batch):
        self.run_dir, self.manifest, self.settings, self.ledger = run_dir, manifest, settings, ledger
        self.report, self.dry_run, self.resend, self.log = report, dry_run, resend, log
        self.template, self.batch = template, batch
        self.smtp = settings.transport == "smtp"

    def record(self, referral_id, status, detail, prepared: _Prepared | None = None) -> None:
        if self.ledger is None or self.dry_run:
            return
        try:
            self.ledger.record_send(
                run_id=self.report.run_id, referral_id=referral_id, transport=self.settings.transport,
                content_sha256=prepared.content_sha256 if prepared else "-",
                recipients=prepared.recipients if prepared else [], status=status, detail=detail,
                substance=prepared.substance if prepared else None)
        except Exception as exc:  # noqa: BLE001 - a ledger problem must not hide what was sent
            self.log(f"{referral_id}: could not record '{status}' in the ledger ({exc})")

    def one(self, index: int, entry, eml: Path) -> None:
        fallback_id = (_clean(entry.get("referral_id")) if isinstance(entry, dict) else "") \
            or f"(manifest entry {index + 1})"
        try:
            prepared = _prepare(entry, self.run_dir, index, attach_pdf=self.settings.attach_pdf)
        except MailError as exc:
            self.report.failed.append(SendResult(fallback_id, f"not sent: {exc}"))
            self.log(f"{fallback_id}: not sent: {exc}")
            self.record(fallback_id, "failed", str(exc))
            return
        rid = prepared.referral_id
        where = f"to {domain_of(prepared.to)}" + (f", cc {domain_of(prepared.cc)}" if prepared.cc else "")

        def add(kind: str, reason: str, status: str | None = None, detail: str | None = None) -> None:
            getattr(self.report, kind).append(SendResult(rid, reason, prepared.to, prepared.cc or "",
                                                         tuple(prepared.attachment_paths)))
            self.log(f"{rid}: {kind} {where}: {detail or reason}")
            if status:
                self.record(rid, status, detail or reason, prepared)

        decision = _decide(prepared, self.ledger, smtp=self.smtp, resend=self.resend)
        if decision.skip:
            return add("skipped", decision.skip)
        if not self.smtp and not self.resend and _draft_matches(eml, prepared.content_sha256):
            return add("skipped", f"draft already written: mail/{eml.name}")
        blocked = _blocked_reason(prepared, self.settings)
        if blocked:
            return add("blocked", f"not sent: {blocked}", "blocked", blocked)
        try:
            msg = _compose(prepared, self.settings, self.template, self.manifest, draft=not self.smtp,
                           update=decision.update)
        except MailError as exc:
            return add("failed", f"not sent: {exc}", "failed", str(exc))
        as_update = " as an update" if decision.update else ""
        if self.dry_run:
            # report lines name no file: plan and letter file names carry the pupil's name
            files = ("the plan" + (f" (reviewed version of {prepared.plan_review_date})"
                                   if prepared.plan_review_date else "") + " and the letter"
                     + (", each as Word and PDF" if self.settings.attach_pdf else ""))
            return add("planned", f"to {prepared.to}" + (f", cc {prepared.cc}" if prepared.cc else "")
                       + f", attaching {files}{as_update}" + ("" if self.smtp else f" (mail/{eml.name})"))
        if not self.smtp:
            try:
                write_bytes(eml, msg.as_bytes(policy=policy.SMTP))
            except OSError as exc:
                reason = f"the draft mail/{eml.name} could not be written ({exc.strerror or exc})"
                return add("failed", f"not drafted: {reason}", "failed", reason)
            return add("drafted", f"draft written to mail/{eml.name}{as_update} (open it in Outlook and press Send)",
                       "drafted", f"mail/{eml.name}")
        try:
            outcome, detail = self.batch.send(msg, prepared.recipients, rid)
        except Exception as exc:  # noqa: BLE001 - one message's surprise must not stop the others
            outcome, detail = "failed", f"unexpected error ({type(exc).__name__}); send again later"
        to = f"to {prepared.to}" + (f", cc {prepared.cc}" if prepared.cc else "")
        if outcome == "sent":
            add("sent", f"sent{as_update} {to}", "sent", detail)
        elif outcome == "uncertain":
            add("uncertain", f"{detail}; may have been sent {to}: check with the school before sending again "
                             "(a later send leaves it alone; --resend sends it again)", "uncertain", detail)
        else:
            add("failed", f"not sent: {detail}", "failed", detail)


def send_run(run_dir: str | Path, settings: EmailSettings, ledger=None, *, dry_run: bool = False,
             resend: bool = False, log: Log | None = None, templates_dir: str | Path | None = None,
             session: SendSession | None = None, _sleep=time.sleep, _clock=time.monotonic) -> SendReport:
    """Draft or send one message per referral in ``RUN_DIR/manifest.json``; see the module docstring.

    `ledger` (a `pipeline.core.ledger.Ledger`, or None to neither check nor record) says what was already sent
    and records each outcome. `dry_run` reports what would go where and changes nothing. Problems with one
    referral become report entries; only a run folder that cannot be read (`InputError`), a missing SMTP
    password (`MissingPassword`) or a broken email template (`TemplateError`) raise.
    """
    log = log or _nothing
    run_dir = Path(run_dir)
    manifest = _read_manifest(run_dir)
    run_id = _clean(manifest.get("run_id")) or run_dir.name
    smtp = settings.transport == "smtp"
    report = SendReport(run_id=run_id, transport=settings.transport, dry_run=dry_run)
    if smtp and not dry_run and settings.username and not settings.password:
        raise MissingPassword(f"[email] username is set but the {PASSWORD_ENV} environment variable is empty; "
                              "set it to the SMTP password before sending.")
    template = load_email_template(templates_dir)
    batch = None
    if smtp and not dry_run:
        if session is not None and session.batch is not None:
            batch = session.batch
        else:
            batch = _SmtpBatch(settings, log, clock=_clock, sleep=_sleep)
            if session is not None:
                session.batch = batch
    sender = _Sender(run_dir, manifest, settings, ledger, report, dry_run=dry_run, resend=resend, log=log,
                     template=template, batch=batch)
    entries = manifest.get("referrals", [])
    try:
        for index, (entry, name) in enumerate(zip(entries, _draft_names(entries))):
            sender.one(index, entry, run_dir / "mail" / name)
    finally:
        if batch is not None and session is None:
            batch.close()
    log(report.summary())
    return report


def send_with_config(run_dir: str | Path, config, *, dry_run: bool = False, resend: bool = False,
                     log: Log | None = None, env: Mapping[str, str] | None = None,
                     session: SendSession | None = None) -> SendReport:
    """`send_run` with everything taken from a `pipeline.core.config.Config` (what `send` and `run --send` call).

    The ledger is the config's ``ledger`` if set, else ``ledger.sqlite3`` in the outbox holding the run
    folder (the run folder's parent). Templates: the config's templates folder, else the shipped ones.
    """
    from pipeline.core.ledger import Ledger

    settings = EmailSettings.from_config(config.email, env=env)
    run_dir = Path(run_dir)
    ledger_path = config.ledger or (run_dir.resolve().parent / "ledger.sqlite3")
    templates = config.templates() if hasattr(config, "templates") else None
    if dry_run and not Path(ledger_path).exists():
        return send_run(run_dir, settings, None, dry_run=True, resend=resend, log=log, templates_dir=templates)
    with Ledger(ledger_path) as ledger:
        return send_run(run_dir, settings, ledger, dry_run=dry_run, resend=resend, log=log,
                        templates_dir=templates, session=session)
