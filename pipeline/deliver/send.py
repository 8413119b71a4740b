"""Email a run's documents: one message per referral, plan and letter attached (the officers' guide to it is
docs/email.md).

Used as a library, the whole of `reintegrate send RUN_DIR` is::

    from pipeline.core.config import load_config
    from pipeline.deliver.send import send_with_config

    report = send_with_config("outbox/20261129T101500123456Z-ab12", load_config())
    for line in report.lines():
        print(line)
    raise SystemExit(report.exit_code)

or, step by step: `EmailSettings.from_config(config.email)` (`pipeline.deliver.settings`), a `Ledger`, then
`send_run(run_dir, settings, ledger)`. The flow for each referral in the run's `manifest.json` is

    read the entry -> find the newest plan -> hash the attachments -> already delivered (any run)? ->
    every recipient allowed? -> build the message (an update?) -> draft (.eml) or send (SMTP) -> record

with each step in its own module: `manifest` (the run folder's manifest), `prepare` (an entry, its documents
and fingerprints), `message` (the MIME message, from `template`), `smtp` (the SMTP connection), `report`
(what happened). This module decides and records.

Transports:

- ``files`` (the default): ``RUN_DIR/mail/<Referral ID>.eml`` drafts that Outlook opens ready to send
  (header ``X-Unsent: 1``). A draft is recorded as ``drafted``; it never counts as sent, so a later SMTP send
  still sends it.
- ``smtp``: one connection for the whole command (`SendSession`), retried within a deadline of at most 55
  seconds without progress; see `pipeline.deliver.smtp`. A message the server may have accepted before the
  connection was lost is ``uncertain``, and left alone by later sends unless ``--resend``.

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
Referral ID, school names, officer and domains, never a pupil's name or UPN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Mapping

import jinja2

from pipeline.core.addresses import domain_allowed, domain_of, split_address
from pipeline.core.errors import MissingPassword
from pipeline.core.files import safe_name_part, write_bytes
from pipeline.deliver.manifest import read_manifest
from pipeline.deliver.message import compose
from pipeline.deliver.prepare import MailError, Prepared, one_line, prepare_entry
from pipeline.deliver.report import SendReport, SendResult
from pipeline.deliver.settings import PASSWORD_ENV, EmailSettings
from pipeline.deliver.smtp import Log, SmtpBatch
from pipeline.deliver.template import load_email_template

__all__ = ["SendSession", "send_run", "send_with_config"]


class SendSession:
    """Everything one command sends, however many run folders: one SMTP connection and ONE retry deadline,
    so `run a.xlsx b.xlsx --send` against a server that is down still gives up within a minute."""

    def __init__(self):
        self.batch: SmtpBatch | None = None

    def close(self) -> None:
        if self.batch is not None:
            self.batch.close()
            self.batch = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ------------------------------------------------------------------------------------------- drafts

def _draft_names(entries: list) -> list[str]:
    """One .eml name per manifest entry, unique in the run: Referral IDs such as HAV/1 and HAV-1 make the same
    safe name, and one draft must never replace another."""
    names, seen = [], set()
    for index, entry in enumerate(entries):
        rid = one_line(entry.get("referral_id")) if isinstance(entry, dict) else ""
        stem = safe_name_part(rid or f"referral-{index + 1}")
        name, n = f"{stem}.eml", 2
        while name.casefold() in seen:
            name, n = f"{stem}-{n}.eml", n + 1
        seen.add(name.casefold())
        names.append(name)
    return names


def _draft_matches(path: Path, content_sha256: str) -> bool:
    try:
        with path.open("rb") as fh:
            headers = BytesParser(policy=policy.default).parse(fh, headersonly=True)
    except OSError:
        return False
    return "".join(str(headers.get("X-Reintegrate-Content", "")).split()) == content_sha256


# ---------------------------------------------------------------------------------------- decisions

@dataclass(frozen=True)
class _Decision:
    """What to do with one prepared message, from the ledger's record of earlier sends."""

    skip: str | None = None  # why it is not sent again (already sent, may have been sent, draft written)
    update: bool = False  # the school had an earlier version: the subject says so


def _decide(prepared: Prepared, ledger, *, smtp: bool, resend: bool) -> _Decision:
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


def _blocked_reason(prepared: Prepared, settings: EmailSettings) -> str | None:
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


# ------------------------------------------------------------------------------------------ sending

def _to_and_cc(prepared: Prepared) -> str:
    return f"to {prepared.to}" + (f", cc {prepared.cc}" if prepared.cc else "")


class _Sender:
    """One `send_run`: the report, the ledger record and the log, one referral at a time."""

    def __init__(self, run_dir: Path, manifest: dict, settings: EmailSettings, ledger, report: SendReport, *,
                 dry_run: bool, resend: bool, log: Log, template: jinja2.Template, batch: SmtpBatch | None):
        self.run_dir, self.manifest, self.settings, self.ledger = run_dir, manifest, settings, ledger
        self.report, self.dry_run, self.resend, self.log = report, dry_run, resend, log
        self.template, self.batch = template, batch
        self.smtp = settings.transport == "smtp"

    def record(self, referral_id, status, detail, prepared: Prepared | None = None) -> None:
        if self.ledger is None or self.dry_run:
            return
        try:
            self.ledger.record_send(
                run_id=self.report.run_id, referral_id=referral_id, transport=self.settings.transport,
                content_sha256=prepared.content_sha256 if prepared else "-",
                recipients=prepared.recipients if prepared else [], status=status, detail=detail,
                substance=prepared.substance if prepared else None,
                plan=prepared.attachment_paths[0] if prepared and prepared.attachment_paths else None)
        except Exception as exc:  # noqa: BLE001 - a ledger problem must not hide what was sent
            self.log(f"{referral_id}: could not record '{status}' in the ledger ({exc})")

    def one(self, index: int, entry, eml: Path) -> None:
        """Manifest entry `index`: prepare it, decide, compose, then plan, draft or send it (to `eml` if a
        draft); each way out is one report entry, one log line and (but in a dry run) one ledger record."""
        prepared = self._prepare(index, entry)
        if prepared is None:
            return
        decision = _decide(prepared, self.ledger, smtp=self.smtp, resend=self.resend)
        if decision.skip:
            return self._add(prepared, "skipped", decision.skip)
        if not self.smtp and not self.resend and _draft_matches(eml, prepared.content_sha256):
            return self._add(prepared, "skipped", f"draft already written: mail/{eml.name}")
        blocked = _blocked_reason(prepared, self.settings)
        if blocked:
            return self._add(prepared, "blocked", f"not sent: {blocked}", "blocked", blocked)
        try:
            msg = compose(prepared, self.settings, self.template, self.manifest, draft=not self.smtp,
                          update=decision.update)
        except MailError as exc:
            return self._add(prepared, "failed", f"not sent: {exc}", "failed", str(exc))
        as_update = " as an update" if decision.update else ""
        if self.dry_run:
            self._plan(prepared, eml, as_update)
        elif not self.smtp:
            self._draft(prepared, msg, eml, as_update)
        else:
            self._send(prepared, msg, as_update)

    def _prepare(self, index: int, entry) -> Prepared | None:
        """The entry made ready, or None once its failure is reported (it names the entry as best it can)."""
        fallback_id = (one_line(entry.get("referral_id")) if isinstance(entry, dict) else "") \
            or f"(manifest entry {index + 1})"
        try:
            return prepare_entry(entry, self.run_dir, index, attach_pdf=self.settings.attach_pdf)
        except MailError as exc:
            self.report.failed.append(SendResult(fallback_id, f"not sent: {exc}"))
            self.log(f"{fallback_id}: not sent: {exc}")
            self.record(fallback_id, "failed", str(exc))
            return None

    def _add(self, prepared: Prepared, kind: str, reason: str, status: str | None = None,
             detail: str | None = None) -> None:
        """Report `kind` (a `SendReport` list) with `reason`; log it by domain only; record `status` if given."""
        rid = prepared.referral_id
        getattr(self.report, kind).append(SendResult(rid, reason, prepared.to, prepared.cc or "",
                                                     tuple(prepared.attachment_paths)))
        where = f"to {domain_of(prepared.to)}" + (f", cc {domain_of(prepared.cc)}" if prepared.cc else "")
        self.log(f"{rid}: {kind} {where}: {detail or reason}")
        if status:
            self.record(rid, status, detail or reason, prepared)

    def _plan(self, prepared: Prepared, eml: Path, as_update: str) -> None:
        """A dry run: what would go where. Report lines name no file: plan and letter file names carry the
        pupil's name."""
        files = ("the plan" + (f" (reviewed version of {prepared.plan_review_date})"
                               if prepared.plan_review_date else "") + " and the letter"
                 + (", each as Word and PDF" if self.settings.attach_pdf else ""))
        self._add(prepared, "planned", _to_and_cc(prepared) + f", attaching {files}{as_update}"
                  + ("" if self.smtp else f" (mail/{eml.name})"))

    def _draft(self, prepared: Prepared, msg: EmailMessage, eml: Path, as_update: str) -> None:
        try:
            write_bytes(eml, msg.as_bytes(policy=policy.SMTP))
        except OSError as exc:
            reason = f"the draft mail/{eml.name} could not be written ({exc.strerror or exc})"
            return self._add(prepared, "failed", f"not drafted: {reason}", "failed", reason)
        self._add(prepared, "drafted", f"draft written to mail/{eml.name}{as_update} (open it in Outlook and "
                  "press Send)", "drafted", f"mail/{eml.name}")

    def _send(self, prepared: Prepared, msg: EmailMessage, as_update: str) -> None:
        try:
            outcome, detail = self.batch.send(msg, prepared.recipients, prepared.referral_id)
        except Exception as exc:  # noqa: BLE001 - one message's surprise must not stop the others
            outcome, detail = "failed", f"unexpected error ({type(exc).__name__}); send again later"
        to = _to_and_cc(prepared)
        if outcome == "sent":
            self._add(prepared, "sent", f"sent{as_update} {to}", "sent", detail)
        elif outcome == "uncertain":
            self._add(prepared, "uncertain", f"{detail}; may have been sent {to}: check with the school before "
                      "sending again (a later send leaves it alone; --resend sends it again)", "uncertain", detail)
        else:
            self._add(prepared, "failed", f"not sent: {detail}", "failed", detail)


def _nothing(_line: str) -> None:
    pass


def _require_password(settings: EmailSettings, dry_run: bool) -> None:
    """An SMTP login needs the password before anything is sent (a dry run sends nothing)."""
    if settings.transport == "smtp" and not dry_run and settings.username and not settings.password:
        raise MissingPassword(f"[email] username is set but the {PASSWORD_ENV} environment variable is empty; "
                              "set it to the SMTP password before sending.")


def _smtp_batch(settings: EmailSettings, session: SendSession | None, log: Log, *, dry_run: bool,
                clock, sleep) -> SmtpBatch | None:
    """The connection the messages go through: the session's, so that one command has one deadline, or a new
    one; None when nothing goes over SMTP."""
    if settings.transport != "smtp" or dry_run:
        return None
    if session is not None and session.batch is not None:
        return session.batch
    batch = SmtpBatch(settings, log, clock=clock, sleep=sleep)
    if session is not None:
        session.batch = batch
    return batch


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
    manifest = read_manifest(run_dir)
    report = SendReport(run_id=one_line(manifest.get("run_id")) or run_dir.name, transport=settings.transport,
                        dry_run=dry_run)
    _require_password(settings, dry_run)
    template = load_email_template(templates_dir)
    batch = _smtp_batch(settings, session, log, dry_run=dry_run, clock=_clock, sleep=_sleep)
    sender = _Sender(run_dir, manifest, settings, ledger, report, dry_run=dry_run, resend=resend, log=log,
                     template=template, batch=batch)
    entries = manifest.get("referrals", [])
    try:
        for index, (entry, name) in enumerate(zip(entries, _draft_names(entries))):
            sender.one(index, entry, run_dir / "mail" / name)
    finally:
        if batch is not None and session is None:  # a session's connection outlives this run folder
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
    ledger_path = config.ledger_of(run_dir)
    templates = config.templates() if hasattr(config, "templates") else None
    if dry_run and not Path(ledger_path).exists():
        return send_run(run_dir, settings, None, dry_run=True, resend=resend, log=log, templates_dir=templates)
    with Ledger(ledger_path) as ledger:
        return send_run(run_dir, settings, ledger, dry_run=dry_run, resend=resend, log=log,
                        templates_dir=templates, session=session)
