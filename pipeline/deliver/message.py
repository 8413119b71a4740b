"""The email itself: one MIME message per referral, to the receiving school contact, cc the inclusions
officer, the body from the email template, the plan and letter attached.

Subjects, display names and bodies carry the Referral ID, school names, officer and domains, never a
pupil's name or UPN. The message is 7-bit (quoted-printable body), so no server needs 8BITMIME or SMTPUTF8.
"""

from __future__ import annotations

import re
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, localtime, make_msgid
from pathlib import Path
from typing import Mapping

import jinja2

from pipeline.core.addresses import domain_of, split_address
from pipeline.deliver.prepare import MailError, Prepared, one_line, prepare_entry
from pipeline.deliver.settings import EmailSettings
from pipeline.deliver.template import EMAIL_TEMPLATE, load_email_template

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PDF_TYPE = "application/pdf"

# an address, an angle bracket or an RFC 2047 encoded word in a display name could pass for another address
_NOT_A_NAME = re.compile(r"=\?[^?\s]*\?[A-Za-z]\?[^?\s]*\?=|\S*@\S*|[<>\"\\,;:]")


def display_name(text) -> str:
    """A display name that reads as a name and nothing else: no address, no `<` or `>`, no encoded word,
    no quotes, commas or colons (which would split or quote the header); empty when nothing is left."""
    cleaned = _NOT_A_NAME.sub(" ", one_line(text))
    return " ".join(cleaned.replace("=?", " ").split())[:80]


def _address(addr: str, name: str = "") -> Address:
    parts = split_address(addr)
    if parts is None:
        raise MailError(f"{addr!r} is not a valid email address")
    return Address(display_name=display_name(name), username=parts[0], domain=parts[1])


def subject_for(entry: Mapping, *, update: bool = False) -> str:
    """``Reintegration plan HAV-0001 – Brookfield Academy``: the Referral ID, never a pupil's name or UPN.
    An update of a referral the school already has says so first."""
    school = one_line(entry.get("receiving_school"))
    return (("Updated reintegration plan" if update else "Reintegration plan")
            + f" {one_line(entry.get('referral_id'))}" + (f" – {school}" if school else ""))


def _body(prepared: Prepared, template: jinja2.Template, run: Mapping, update: bool) -> str:
    """The template filled in with the message data (exactly `EMAIL_CONTEXT_KEYS`)."""
    entry = prepared.entry
    context = {
        "referral_id": prepared.referral_id,
        "receiving_school": one_line(entry.get("receiving_school")),
        "receiving_school_contact": one_line(entry.get("receiving_school_contact")),
        "inclusions_officer": one_line(entry.get("inclusions_officer")),
        "inclusions_officer_email": prepared.cc or "",
        "letter_kind": one_line(entry.get("letter_kind")),
        "run_id": one_line(run.get("run_id")),
        "as_of": one_line(run.get("as_of")),
        "plan_reviewed": prepared.plan_review_date is not None,
        "plan_review_date": prepared.plan_review_date or "",
        "update": update,
    }
    try:
        return template.render(context)
    except jinja2.TemplateError as exc:
        raise MailError(f"the email template email/{EMAIL_TEMPLATE} could not be rendered ({exc})") from None


def compose(prepared: Prepared, settings: EmailSettings, template: jinja2.Template,
            run: Mapping | None = None, *, draft: bool = False, update: bool = False) -> EmailMessage:
    """The message for a prepared entry; `run` is the manifest (run_id, as_of), `draft` marks it for Outlook,
    `update` says the school had an earlier version. Raises `MailError` when it cannot be made."""
    entry = prepared.entry
    body = _body(prepared, template, run or {}, update)
    msg = EmailMessage(policy=policy.default)
    msg["Subject"] = subject_for(entry, update=update)
    if settings.sender:
        msg["From"] = _address(settings.sender, "Havering Inclusions Team")
    msg["To"] = _address(prepared.to, one_line(entry.get("receiving_school_contact")))
    if prepared.cc:
        msg["Cc"] = _address(prepared.cc, one_line(entry.get("inclusions_officer")))
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
    return compose(prepare_entry(entry, Path(run_dir), attach_pdf=settings.attach_pdf), settings,
                   load_email_template(templates_dir), run, draft=draft)
