"""Email a run's documents (SPEC section 6): one message per referral, plan and letter attached.

Used as a library, the whole of `reintegrate send RUN_DIR` is::

    from pipeline.config import load_config
    from pipeline.mail import send_with_config

    report = send_with_config("outbox/20261129T101500123456Z-ab12", load_config())
    for line in report.lines():
        print(line)
    raise SystemExit(report.exit_code)

or, step by step: `EmailSettings.from_config(config.email)`, a `Ledger`, then `send_run(run_dir, settings,
ledger)`. The flow for each referral in the run's `manifest.json` is

    read the entry -> find the newest plan -> hash the attachments -> already sent? -> every recipient
    allowed? -> build the message -> draft (.eml) or send (SMTP) -> record in the ledger

Transports:

- ``files`` (the default): ``RUN_DIR/mail/<Referral ID>.eml`` drafts that Outlook opens ready to send
  (header ``X-Unsent: 1``). A draft is recorded as ``drafted``; it never counts as sent, so a later SMTP send
  still sends it. A draft already written for the same content is not rewritten unless ``resend``.
- ``smtp``: one connection for the whole batch (STARTTLS, SSL or none; login when a username is set, the
  password from the environment variable ``REINTEGRATE_SMTP_PASSWORD`` only). Each message is one SMTP
  transaction (MAIL, RCPT for every recipient, DATA): a recipient refused means nothing is delivered to anyone,
  so a retry never sends a duplicate. Refused connections, timeouts, dropped connections and 4xx replies
  are retried (exponential backoff, ``max_attempts`` a message); a 5xx reply fails that message at once.
  All the time spent on failures in one send (failed attempts, waits) is bounded by ``retry_deadline``
  (at most 55 seconds), so a send against a server that is down gives up within a minute however many
  messages there are: once the server is judged down, the remaining messages fail at once. A failed
  message is recorded ``failed`` and the next send picks it up.

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

from pipeline.errors import ConfigError, InputError, ReintegrateError, TemplateError
from pipeline.files import safe_name_part, write_bytes

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
    "inclusions_officer_email", "letter_kind", "run_id", "as_of", "plan_reviewed", "plan_review_date",
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

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# dot-atom local part (RFC 5322 atext), ASCII only: anything else is treated as malformed
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


def _ascii_domain(domain: str) -> str | None:
    """The domain lower-cased and in ASCII (IDNA), or None when it is not a well-formed host name."""
    domain = domain.strip().lower()
    if not domain or len(domain) > 253:
        return None
    try:
        domain = domain.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return None
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        return None
    return domain


def _split_address(address) -> tuple[str, str] | None:
    """(local part, ASCII domain) of a bare address like ``jpatel@brookfield.sch.uk``; None if malformed."""
    if not isinstance(address, str):
        return None
    address = address.strip()
    if address.count("@") != 1 or len(address) > 254:
        return None
    local, domain = address.split("@")
    if len(local) > 64 or not _LOCAL.match(local):
        return None
    ascii_domain = _ascii_domain(domain)
    return (local, ascii_domain) if ascii_domain else None


def domain_allowed(address: str, allowed_domains) -> bool:
    """True when the address is well formed and its domain is one of `allowed_domains` or a subdomain of one.

    Case-insensitive; ``sch.uk`` allows ``x@brookfield.sch.uk`` and ``x@sch.uk`` but never
    ``x@evilsch.uk``. An empty or missing list allows nothing.
    """
    parts = _split_address(address)
    if parts is None or not allowed_domains:
        return False
    domain = parts[1]
    for allowed in allowed_domains:
        allowed = _ascii_domain(str(allowed).strip().lstrip("@").lstrip(".")) if allowed else None
        if allowed and (domain == allowed or domain.endswith("." + allowed)):
            return True
    return False


def _domain_of(address: str) -> str:
    parts = _split_address(address)
    return parts[1] if parts else "(malformed address)"


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
    retry_deadline: float = 45.0  # seconds one send may spend on failures in all before giving up
    attach_pdf: bool = False  # also attach the PDF copy beside each document (run --pdf, or pdf = true)

    KEYS = ("transport", "host", "port", "security", "username", "sender", "allowed_domains", "timeout",
            "max_attempts", "retry_delay", "retry_deadline", "attach_pdf")

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
        if sender is not None and _split_address(sender) is None:
            raise ConfigError(f"[email] sender {sender!r} is not a valid email address.")
        port = number("port", SECURITIES[security], 1, 65535, whole=True)
        timeout = float(number("timeout", 15, 0.1, 300))
        max_attempts = number("max_attempts", 3, 1, 10, whole=True)
        retry_delay = float(number("retry_delay", 2, 0, 30))
        retry_deadline = float(number("retry_deadline", 45, 0.1, MAX_RETRY_DEADLINE))
        attach_pdf = email.get("attach_pdf", False)
        if not isinstance(attach_pdf, bool):
            raise ConfigError(f"[email] attach_pdf must be true or false (no quotes), not {attach_pdf!r}.")

        domains = email.get("allowed_domains", [])
        if isinstance(domains, str) or not isinstance(domains, (list, tuple)):
            raise ConfigError('[email] allowed_domains must be a list in brackets, e.g. '
                              'allowed_domains = ["havering.gov.uk", "sch.uk"].')
        allowed = []
        for item in domains:
            cleaned = item.strip().lstrip("@") if isinstance(item, str) else ""
            domain = _ascii_domain(cleaned.lstrip(".")) if cleaned else None
            if domain is None:
                raise ConfigError(f"[email] allowed_domains entry {item!r} is not a domain name with at least two "
                                  'parts, e.g. "sch.uk" (which also allows every school under it).')
            if domain not in allowed:
                allowed.append(domain)

        if transport == "smtp":
            if host is None:
                raise ConfigError('[email] transport = "smtp" needs host, the mail server\'s name.')
            if sender is None:
                raise ConfigError('[email] transport = "smtp" needs sender, the address the messages come from.')
        if username is not None and security == "none":
            raise ConfigError('[email] security = "none" cannot be used with a username, as the password would '
                              'travel unencrypted: use "starttls" or "ssl".')
        password = env.get(PASSWORD_ENV) or None
        return cls(transport=transport, host=host, port=port, security=security, username=username,
                   password=password, sender=sender, allowed_domains=tuple(allowed), timeout=timeout,
                   max_attempts=max_attempts, retry_delay=retry_delay, retry_deadline=retry_deadline,
                   attach_pdf=attach_pdf)


# ------------------------------------------------------------------------------------------ templates

def _shipped_templates() -> Path | None:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_templates", here.parent / "templates"):  # installed wheel, then source tree
        if (candidate / "email" / EMAIL_TEMPLATE).is_file():
            return candidate
    return None


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

_REVIEW_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def newest_plan(plan: Path) -> Path:
    """The newest version of a plan: the ``<stem>.reviewed-YYYY-MM-DD.docx`` written last (its date is the
    --as-of of that `reviews`, which can be in the future), else the plan."""
    plan = Path(plan)
    prefix, suffix = plan.stem + ".reviewed-", ".docx"
    best, best_date = plan, None
    try:
        siblings = list(plan.parent.iterdir())
    except OSError:
        return plan
    for path in siblings:
        name = path.name
        if not (name.startswith(prefix) and name.endswith(suffix)) or not path.is_file():
            continue
        stamp = name[len(prefix):-len(suffix)]
        if not _REVIEW_DATE.match(stamp):
            continue
        try:
            when = (path.stat().st_mtime_ns, date.fromisoformat(stamp))
        except (ValueError, OSError):
            continue
        if best_date is None or when > best_date:
            best, best_date = path, when
    return best


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
    content_sha256: str

    @property
    def recipients(self) -> list[str]:
        return [self.to] + ([self.cc] if self.cc else [])


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
    files = []
    review_date = None
    for key in ("plan", "letter"):
        try:
            path = _inside(run_dir, entry.get(key))
        except MailError as exc:
            raise MailError(f"the {key} file: {exc}") from None
        if key == "plan":
            newest = newest_plan(path)
            if newest != path:
                review_date = newest.name[-len("YYYY-MM-DD.docx"):-len(".docx")]
            path = newest
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MailError(f"the {key} file is missing from the {path.parent.name}/ folder") from None
        except OSError as exc:
            raise MailError(f"the {key} file in the {path.parent.name}/ folder cannot be read "
                            f"({exc.strerror or exc})") from None
        files.append((path, data))
    if attach_pdf:  # the PDF copy beside each document: plans/<name>.pdf, letters/<name>.pdf
        for key, (path, _) in zip(("plan", "letter"), list(files)):
            pdf = path.with_suffix(".pdf")
            try:
                files.append((pdf, pdf.read_bytes()))
            except OSError:
                raise MailError(f"attach_pdf is on but the PDF copy of the {key} is missing from "
                                f"the {path.parent.name}/ folder: make it with `reintegrate run --pdf` (or Word's "
                                "Save as PDF, beside the document), or set attach_pdf = false") from None
    attachments = [(attachment_name(entry, key, path, review_date), data)
                    for key, (path, data) in zip(("plan", "letter", "plan", "letter"), files)]
    return _Prepared(referral_id=referral_id, entry=entry, to=to, cc=cc, attachments=attachments,
                     attachment_paths=[p.relative_to(run_dir).as_posix() for p, _ in files],
                     plan_review_date=review_date, content_sha256=content_hash(attachments))


def _address(addr: str, display_name: str = "") -> Address:
    parts = _split_address(addr)
    if parts is None:
        raise MailError(f"{addr!r} is not a valid email address")
    return Address(display_name=_clean(display_name), username=parts[0], domain=parts[1])


def subject_for(entry: Mapping) -> str:
    """``Reintegration plan HAV-0001 – Brookfield Academy``: the Referral ID, never a pupil's name or UPN."""
    school = _clean(entry.get("receiving_school"))
    return f"Reintegration plan {_clean(entry.get('referral_id'))}" + (f" – {school}" if school else "")


def _compose(prepared: _Prepared, settings: EmailSettings, template: jinja2.Template,
             run: Mapping | None = None, *, draft: bool = False) -> EmailMessage:
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
    }
    try:
        body = template.render(context)
    except jinja2.TemplateError as exc:
        raise MailError(f"the email template email/{EMAIL_TEMPLATE} could not be rendered ({exc})") from None

    msg = EmailMessage(policy=policy.default)
    msg["Subject"] = subject_for(entry)
    if settings.sender:
        msg["From"] = _address(settings.sender, "Havering Inclusions Team")
    msg["To"] = _address(prepared.to, context["receiving_school_contact"])
    if prepared.cc:
        msg["Cc"] = _address(prepared.cc, context["inclusions_officer"])
    msg["Date"] = format_datetime(localtime())
    domain = _domain_of(settings.sender) if settings.sender else "reintegrate.invalid"
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

    @property
    def exit_code(self) -> int:
        """1 when any message was not sent (blocked or failed); 0 when all were sent or nothing was left."""
        return 1 if (self.blocked or self.failed) else 0

    def summary(self) -> str:
        if self.dry_run:
            verb = "would be drafted" if self.transport == "files" else "would be sent"
            return (f"Dry run: {len(self.planned)} {verb}, {len(self.skipped)} already sent, "
                    f"{len(self.blocked)} blocked, {len(self.failed)} failed; nothing was sent.")
        return (f"{len(self.sent)} sent, {len(self.drafted)} drafted, {len(self.skipped)} skipped, "
                f"{len(self.blocked)} blocked, {len(self.failed)} failed.")

    def lines(self) -> list[str]:
        """One line per referral, then the summary: what the CLI prints."""
        out = []
        for label, results in (("would send" if self.transport == "smtp" else "would draft", self.planned),
                               ("sent", self.sent), ("drafted", self.drafted), ("skipped", self.skipped),
                               ("BLOCKED", self.blocked), ("FAILED", self.failed)):
            out.extend(f"{r.referral_id}: {label}: {r.reason}" for r in results)
        out.append(self.summary())
        return out

    def as_dict(self) -> dict:
        data = asdict(self)
        data["exit_code"] = self.exit_code
        return data


# ----------------------------------------------------------------------------------------------- smtp

class _Retry(Exception):
    """A transient failure: try this message again (after a wait)."""

    def __init__(self, reason: str, *, connection: bool):
        super().__init__(reason)
        self.reason = reason
        self.connection = connection  # the connection is gone (refused, timed out, dropped, 421)


class _Permanent(Exception):
    """A 5xx reply: this message fails now; the server is fine for the others."""


class _Fatal(Exception):
    """Nothing can be sent this time (login refused, TLS cannot be set up): every message fails."""


def _reply_text(resp) -> str:
    if isinstance(resp, bytes):
        resp = resp.decode("utf-8", "replace")
    return " ".join(str(resp).split())[:200]


class _SmtpBatch:
    """One SMTP connection reused for a batch, with bounded retries and a deadline on time spent failing."""

    def __init__(self, settings: EmailSettings, log: Log, *, clock=time.monotonic, sleep=time.sleep):
        self.settings = settings
        self.log = log
        self.clock = clock
        self.sleep = sleep
        self.conn: smtplib.SMTP | None = None
        self.failing_time = 0.0  # seconds spent on failed attempts and waits, across the batch
        self.down_reason: str | None = None
        self.where = f"{settings.host}:{settings.port}"

    # time left before the batch gives up
    def _left(self) -> float:
        return self.settings.retry_deadline - self.failing_time

    def _timeout(self) -> float:
        return max(0.2, min(self.settings.timeout, self._left()))

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a broken socket must never fail the send
                pass
            self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except Exception:  # noqa: BLE001
                pass
        self._drop()

    def _open(self, timeout: float) -> smtplib.SMTP:
        """Connect, secure and log in; the half-open connection is closed if any step fails."""
        s = self.settings
        local = socket.gethostname() or "localhost"  # not getfqdn(): that can wait on DNS
        if s.security == "ssl":
            conn = smtplib.SMTP_SSL(local_hostname=local, timeout=timeout, context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(local_hostname=local, timeout=timeout)
        try:
            conn.connect(s.host, s.port)
            if s.security == "starttls":
                conn.ehlo()
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if s.username:
                conn.login(s.username, s.password or "")
            return conn
        except BaseException:
            try:
                conn.close()
            except OSError:
                pass
            raise

    def _connect(self) -> smtplib.SMTP:
        """`_open`, with every failure sorted into retry (transient) or fatal (nothing can be sent)."""
        s = self.settings
        timeout = self._timeout()
        try:
            return self._open(timeout)
        except smtplib.SMTPAuthenticationError as exc:
            if 400 <= exc.smtp_code < 500:
                raise _Retry(f"login temporarily refused ({exc.smtp_code} {_reply_text(exc.smtp_error)})",
                             connection=True) from None
            raise _Fatal(f"the server at {self.where} refused the login for {s.username} "
                         f"({exc.smtp_code} {_reply_text(exc.smtp_error)}); check the username and "
                         f"{PASSWORD_ENV}") from None
        except smtplib.SMTPNotSupportedError as exc:
            missing = "STARTTLS" if "STARTTLS" in str(exc) else "login"
            raise _Fatal(f"the server at {self.where} does not support {missing} ({_reply_text(str(exc))}); "
                         "check security and username in [email]") from None
        except ssl.SSLError as exc:
            raise _Fatal(f"a secure (TLS) connection to {self.where} could not be set up ({exc.reason or exc}); "
                         "check host, port and security in [email]") from None
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
            raise _Retry(f"no answer from {self.where} within {timeout:g} seconds", connection=True) from None
        except ConnectionRefusedError:
            raise _Retry(f"connection to {self.where} refused", connection=True) from None
        except socket.gaierror:
            raise _Retry(f"the mail server name {s.host} could not be found", connection=True) from None
        except OSError as exc:
            raise _Retry(f"cannot connect to {self.where} ({exc.strerror or exc})", connection=True) from None

    def _transaction(self, sender: str, recipients: list[str], data: bytes) -> None:
        """MAIL, RCPT for every recipient, DATA: all recipients accepted or nothing delivered."""
        if self.conn is None:
            self.conn = self._connect()
        else:
            self.conn.timeout = self._timeout()
            if self.conn.sock is not None:
                self.conn.sock.settimeout(self.conn.timeout)
        conn = self.conn
        try:
            conn.ehlo_or_helo_if_needed()
            steps = [("MAIL FROM", lambda: conn.mail(sender))]
            steps += [(f"RCPT TO ({_domain_of(r)})", lambda r=r: conn.rcpt(r)) for r in recipients]
            steps.append(("DATA", lambda: conn.data(data)))
            for step, call in steps:
                try:
                    code, resp = call()
                except smtplib.SMTPResponseException as exc:  # DATA refused before the content
                    code, resp = exc.smtp_code, exc.smtp_error
                if code in (250, 251):
                    continue
                reply = f"{code} {_reply_text(resp)} at {step}"
                if code == 421 or code < 0:
                    self._drop()
                    raise _Retry(f"the server closed the connection ({reply})", connection=True)
                try:
                    conn.rset()
                except (smtplib.SMTPException, OSError):
                    self._drop()
                if 400 <= code < 500:
                    raise _Retry(f"temporary refusal ({reply})", connection=False)
                raise _Permanent(f"refused ({reply})")
        except (_Retry, _Permanent):
            raise
        except smtplib.SMTPServerDisconnected:
            self._drop()
            raise _Retry(f"the connection to {self.where} was closed", connection=True) from None
        except (TimeoutError, socket.timeout):
            self._drop()
            raise _Retry(f"no answer from {self.where} within {conn.timeout:g} seconds", connection=True) from None
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

    def send(self, msg: EmailMessage, recipients: list[str], referral_id: str) -> tuple[bool, str]:
        """(True, detail) when the server accepted the message; (False, reason) when it was not sent."""
        if self.down_reason:
            return False, f"not attempted: {self.down_reason}; send again later"
        data = msg.as_bytes(policy=policy.SMTP)
        delay = self.settings.retry_delay
        attempt = 0
        while True:
            attempt += 1
            started = self.clock()
            try:
                self._transaction(self.settings.sender, recipients, data)
                return True, f"accepted by {self.where}" + (f" after {attempt} attempts" if attempt > 1 else "")
            except _Permanent as exc:
                return False, f"{exc}; not retried"
            except _Fatal as exc:
                self._drop()
                self.down_reason = str(exc)
                return False, str(exc)
            except _Retry as exc:
                self.failing_time += self.clock() - started
                last = exc
            give_up = None
            if attempt >= self.settings.max_attempts:
                give_up = f"{last.reason}; gave up after {attempt} attempts"
            elif self._left() <= 0:
                give_up = f"{last.reason}; gave up after {attempt} attempts (retry_deadline reached)"
            if give_up:
                if last.connection or self._left() <= 0:
                    self.down_reason = f"the mail server at {self.where} is not available ({last.reason})"
                    self.log(f"mail server {self.where} judged unavailable; the remaining messages are left "
                             "for a later send")
                return False, give_up
            wait = min(delay, max(0.0, self._left()))
            self.log(f"{referral_id}: attempt {attempt} failed ({last.reason}); retrying in {wait:g} s")
            if wait > 0:
                self.sleep(wait)
                self.failing_time += wait
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


def send_run(run_dir: str | Path, settings: EmailSettings, ledger=None, *, dry_run: bool = False,
             resend: bool = False, log: Log | None = None, templates_dir: str | Path | None = None,
             session: SendSession | None = None, _sleep=time.sleep, _clock=time.monotonic) -> SendReport:
    """Draft or send one message per referral in ``RUN_DIR/manifest.json``; see the module docstring.

    `ledger` (a `pipeline.ledger.Ledger`, or None to neither check nor record) says what was already sent
    and records each outcome. `dry_run` reports what would go where and changes nothing. Problems with one
    referral become report entries; only a run folder that cannot be read (`InputError`), a missing SMTP
    password (`ConfigError`) or a broken email template (`TemplateError`) raise.
    """
    log = log or _nothing
    run_dir = Path(run_dir)
    manifest = _read_manifest(run_dir)
    run_id = _clean(manifest.get("run_id")) or run_dir.name
    smtp = settings.transport == "smtp"
    report = SendReport(run_id=run_id, transport=settings.transport, dry_run=dry_run)
    if smtp and not dry_run and settings.username and not settings.password:
        raise ConfigError(f"[email] username is set but the {PASSWORD_ENV} environment variable is empty; "
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

    def record(referral_id, status, detail, content="-", recipients=()):
        if ledger is None or dry_run:
            return
        try:
            ledger.record_send(run_id=run_id, referral_id=referral_id, content_sha256=content,
                               transport=settings.transport, recipients=list(recipients), status=status,
                               detail=detail)
        except Exception as exc:  # noqa: BLE001 - a ledger problem must not hide what was sent
            log(f"{referral_id}: could not record '{status}' in the ledger ({exc})")

    draft_names = _draft_names(manifest.get("referrals", []))
    try:
        for index, entry in enumerate(manifest.get("referrals", [])):
            fallback_id = (_clean(entry.get("referral_id")) if isinstance(entry, dict) else "") \
                or f"(manifest entry {index + 1})"
            try:
                prepared = _prepare(entry, run_dir, index, attach_pdf=settings.attach_pdf)
            except MailError as exc:
                report.failed.append(SendResult(fallback_id, f"not sent: {exc}"))
                log(f"{fallback_id}: not sent: {exc}")
                record(fallback_id, "failed", str(exc))
                continue
            rid = prepared.referral_id
            where = f"to {_domain_of(prepared.to)}" + (f", cc {_domain_of(prepared.cc)}" if prepared.cc else "")
            result = lambda reason: SendResult(rid, reason, prepared.to, prepared.cc or "",  # noqa: E731
                                               tuple(prepared.attachment_paths))
            eml = run_dir / "mail" / draft_names[index]

            if not resend and ledger is not None and ledger.was_sent(rid, prepared.content_sha256):
                report.skipped.append(result("already sent with this plan and letter (use --resend to send again)"))
                log(f"{rid}: skipped, already sent with the same plan and letter")
                continue
            if not smtp and not resend and _draft_matches(eml, prepared.content_sha256):
                report.skipped.append(result(f"draft already written: mail/{eml.name}"))
                log(f"{rid}: skipped, draft already written for the same plan and letter")
                continue

            outside = [r for r in prepared.recipients if not domain_allowed(r, settings.allowed_domains)]
            if outside:
                if not settings.allowed_domains:
                    reason = ("no allowed_domains are set in [email], so nothing may be sent; add the domains "
                              'you send to, e.g. allowed_domains = ["havering.gov.uk", "sch.uk"]')
                else:
                    shown = ", ".join(
                        f"{r} ({'malformed address' if _split_address(r) is None else 'domain not allowed'})"
                        for r in outside)
                    reason = (f"recipient outside allowed_domains: {shown}; check the address in the referral "
                              "spreadsheet, or add the domain to allowed_domains")
                report.blocked.append(result(f"not sent: {reason}"))
                log(f"{rid}: blocked, {', '.join(_domain_of(r) for r in outside)} not in allowed_domains")
                record(rid, "blocked", reason, prepared.content_sha256, prepared.recipients)
                continue

            try:
                msg = _compose(prepared, settings, template, manifest, draft=not smtp)
            except MailError as exc:
                report.failed.append(result(f"not sent: {exc}"))
                log(f"{rid}: not sent: {exc}")
                record(rid, "failed", str(exc), prepared.content_sha256, prepared.recipients)
                continue

            # report lines name no file: plan and letter file names carry the pupil's name
            files = ("the plan" + (f" (reviewed version of {prepared.plan_review_date})"
                                   if prepared.plan_review_date else "") + " and the letter"
                     + (", each as Word and PDF" if settings.attach_pdf else ""))
            if dry_run:
                action = "would send" if smtp else f"would write mail/{eml.name}"
                report.planned.append(result(f"to {prepared.to}" + (f", cc {prepared.cc}" if prepared.cc else "")
                                             + f", attaching {files}" + ("" if smtp else f" (mail/{eml.name})")))
                log(f"{rid}: dry run, {action} {where}")
                continue

            if not smtp:
                try:
                    write_bytes(eml, msg.as_bytes(policy=policy.SMTP))
                except OSError as exc:
                    reason = f"the draft mail/{eml.name} could not be written ({exc.strerror or exc})"
                    report.failed.append(result(f"not drafted: {reason}"))
                    log(f"{rid}: not drafted: {reason}")
                    record(rid, "failed", reason, prepared.content_sha256, prepared.recipients)
                    continue
                report.drafted.append(result(f"draft written to mail/{eml.name} (open it in Outlook and press Send)"))
                log(f"{rid}: draft written {where}")
                record(rid, "drafted", f"mail/{eml.name}", prepared.content_sha256, prepared.recipients)
                continue

            try:
                ok, detail = batch.send(msg, prepared.recipients, rid)
            except Exception as exc:  # noqa: BLE001 - one message's surprise must not stop the others
                ok, detail = False, f"unexpected error ({type(exc).__name__}); send again later"
            if ok:
                report.sent.append(result(f"sent to {prepared.to}" + (f", cc {prepared.cc}" if prepared.cc else "")))
                log(f"{rid}: sent {where}")
                record(rid, "sent", detail, prepared.content_sha256, prepared.recipients)
            else:
                report.failed.append(result(f"not sent: {detail}"))
                log(f"{rid}: not sent ({where}): {detail}")
                record(rid, "failed", detail, prepared.content_sha256, prepared.recipients)
    finally:
        if batch is not None and session is None:
            batch.close()
    log(report.summary())
    return report


def send_with_config(run_dir: str | Path, config, *, dry_run: bool = False, resend: bool = False,
                     log: Log | None = None, env: Mapping[str, str] | None = None,
                     session: SendSession | None = None) -> SendReport:
    """`send_run` with everything taken from a `pipeline.config.Config` (what `send` and `run --send` call).

    The ledger is the config's ``ledger`` if set, else ``ledger.sqlite3`` in the outbox holding the run
    folder (the run folder's parent). Templates: the config's templates folder, else the shipped ones.
    """
    from pipeline.ledger import Ledger

    settings = EmailSettings.from_config(config.email, env=env)
    run_dir = Path(run_dir)
    ledger_path = config.ledger or (run_dir.resolve().parent / "ledger.sqlite3")
    templates = config.templates() if hasattr(config, "templates") else None
    if dry_run and not Path(ledger_path).exists():
        return send_run(run_dir, settings, None, dry_run=True, resend=resend, log=log, templates_dir=templates)
    with Ledger(ledger_path) as ledger:
        return send_run(run_dir, settings, ledger, dry_run=dry_run, resend=resend, log=log,
                        templates_dir=templates, session=session)
