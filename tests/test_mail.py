"""pipeline.deliver (settings, message, send, smtp): allowed domains, messages, drafts and SMTP sends against a real local server."""

from __future__ import annotations

import io
import os
import json
import re
import socket
import stat
import sys
import time
import tomllib
from email import policy
from email.parser import BytesParser
from pathlib import Path

import docx
import pytest
from aiosmtpd.controller import Controller

from pipeline.core.config import load_config
from pipeline.core.errors import ConfigError, InputError
from pipeline.core.ledger import Ledger
from pipeline.core.addresses import domain_allowed
from pipeline.deliver.message import DOCX_TYPE, build_message
from pipeline.deliver.send import send_run, send_with_config
from pipeline.deliver.settings import PASSWORD_ENV, EmailSettings
from pipeline.deliver.template import EMAIL_CONTEXT_KEYS
from pipeline.write.plan_record import newest_plan

REPO = Path(__file__).resolve().parent.parent
RUN_ID = "20261129T101500123456Z-ab12"
PUPILS = {
    "HAV-0001": ("Amy", "Smith", "B801200005001", "jpatel@brookfield.sch.uk"),
    "HAV-0002": ("Zainab", "Okonkwo", "C801200005002", "head@oakwood.havering.sch.uk"),
    "HAV-0003": ("Tomasz", "Wiśniewski", "D801200005003", "office@riverside.sch.uk"),
}


# ------------------------------------------------------------------------------------------ builders

def make_docx(path: Path, *lines: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = docx.Document()
    for line in lines:
        document.add_paragraph(line)
    document.save(path)


def make_run(tmp_path: Path, ids=("HAV-0001",), emails: dict | None = None) -> Path:
    """A run folder as `reintegrate run` writes it: real .docx plan and letter per referral, manifest.json."""
    run_dir = tmp_path / "outbox" / RUN_ID
    referrals = []
    for row, rid in enumerate(ids, start=5):
        forename, surname, upn, school_email = PUPILS[rid]
        stem = f"{rid}_{surname}_{forename}"
        make_docx(run_dir / "plans" / f"{stem}.docx", f"Reintegration plan for {forename} {surname}", f"UPN {upn}")
        make_docx(run_dir / "letters" / f"{stem}.docx", f"Invitation: planning meeting for {forename} {surname}")
        referrals.append({
            "referral_id": rid, "row": row, "plan": f"plans/{stem}.docx", "letter": f"letters/{stem}.docx",
            "receiving_school": "Brookfield Academy", "receiving_school_contact": "Ms J Patel",
            "receiving_school_email": (emails or {}).get(rid, school_email),
            "inclusions_officer": "Sam Jones", "inclusions_officer_email": "sam.jones@havering.gov.uk",
            "letter_kind": "invitation" if row % 2 else "request",
        })
    manifest = {"run_id": RUN_ID, "input": "referrals.xlsx", "as_of": "2026-11-29", "referrals": referrals}
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return run_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """An aiosmtpd handler that stores what it receives and can answer 451 (or 550) first."""

    def __init__(self, rcpt_451: int = 0, data_451: int = 0, reject: tuple[str, ...] = (), data_421: int = 0):
        self.rcpt_451 = rcpt_451
        self.data_451 = data_451
        self.data_421 = data_421
        self.reject = reject
        self.messages: list[dict] = []
        self.rcpt_commands = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_commands += 1
        if self.rcpt_451 > 0:
            self.rcpt_451 -= 1
            return "451 4.3.0 Temporary failure, try again later"
        if address in self.reject:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_451 > 0:
            self.data_451 -= 1
            return "451 4.3.0 Local problem, try again later"
        if self.data_421 > 0:
            self.data_421 -= 1
            return "421 4.3.2 Service shutting down"
        self.messages.append({
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "peer": session.peer,
            "message": BytesParser(policy=policy.default).parsebytes(envelope.original_content),
        })
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    servers = []

    def start(handler=None):
        handler = handler or Recorder()
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        servers.append(controller)
        return handler, controller.port

    yield start
    for controller in servers:
        controller.stop()


def smtp_settings(port: int, **overrides) -> EmailSettings:
    email = {"transport": "smtp", "host": "127.0.0.1", "port": port, "security": "none",
             "sender": "inclusions@havering.gov.uk", "allowed_domains": ["havering.gov.uk", "sch.uk"],
             "timeout": 5, "max_attempts": 3, "retry_delay": 0.05, "retry_deadline": 10}
    email.update(overrides)
    return EmailSettings.from_config(email, env={})


@pytest.fixture
def ledger(tmp_path):
    with Ledger(tmp_path / "outbox" / "ledger.sqlite3") as led:
        yield led


def attachments(message):
    return [(part.get_filename(), part.get_content_type(), part.get_content()) for part in message.iter_attachments()]


def body_text(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def assert_no_pupil_data(message, rid):
    forename, surname, upn, _ = PUPILS[rid]
    visible = message["Subject"] + "\n" + body_text(message)
    for secret in (forename, surname, upn):
        assert secret not in visible


# ------------------------------------------------------------------------------------------ settings

def test_settings_defaults_are_files_transport():
    settings = EmailSettings.from_config({}, env={})
    assert settings.transport == "files"
    assert settings.allowed_domains == ()
    assert settings.retry_deadline <= 55


def test_settings_read_password_only_from_environment():
    settings = smtp_settings(2525, username="inclusions", security="starttls")
    assert settings.password is None
    settings = EmailSettings.from_config({"username": "inclusions"}, env={PASSWORD_ENV: "s3cret"})
    assert settings.password == "s3cret"
    assert "s3cret" not in repr(settings)
    with pytest.raises(ConfigError, match=PASSWORD_ENV):
        EmailSettings.from_config({"password": "s3cret"}, env={})


def test_settings_default_port_follows_security():
    assert EmailSettings.from_config({"security": "ssl"}, env={}).port == 465
    assert EmailSettings.from_config({"security": "STARTTLS"}, env={}).port == 587
    assert EmailSettings.from_config({"security": "none", "port": 2525}, env={}).port == 2525


@pytest.mark.parametrize("email, words", [
    ({"transport": "smpt"}, "transport"),
    ({"security": "tls"}, "security"),
    ({"port": "587"}, "port"),
    ({"port": 70000}, "port"),
    ({"port": True}, "port"),
    ({"hots": "x"}, "unknown"),
    ({"allowed_domains": "sch.uk"}, "list"),
    ({"allowed_domains": ["*.sch.uk"]}, "allowed_domains"),
    ({"allowed_domains": ["uk"]}, "allowed_domains"),
    ({"allowed_domains": [3]}, "allowed_domains"),
    ({"sender": "not an address"}, "sender"),
    ({"transport": "smtp", "sender": "a@havering.gov.uk"}, "host"),
    ({"transport": "smtp", "host": "smtp.example.org"}, "sender"),
    ({"security": "none", "username": "x"}, "unencrypted"),
    ({"retry_deadline": 600}, "retry_deadline"),
    ({"max_attempts": 0}, "max_attempts"),
    ({"timeout": -1}, "timeout"),
])
def test_settings_reject_bad_values_with_one_sentence(email, words):
    with pytest.raises(ConfigError) as info:
        EmailSettings.from_config(email, env={})
    message = str(info.value)
    assert words in message
    assert "\n" not in message and "Traceback" not in message


def test_settings_normalise_allowed_domains():
    settings = EmailSettings.from_config({"allowed_domains": ["Havering.GOV.uk", "@sch.uk", ".sch.uk"]}, env={})
    assert settings.allowed_domains == ("havering.gov.uk", "sch.uk")


def test_example_config_parses_and_is_accepted():
    path = REPO / "reintegrate.example.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    settings = EmailSettings.from_config(data["email"], env={})
    assert settings.transport == "files"
    assert "sch.uk" in settings.allowed_domains
    config = load_config(path)
    assert config.email == data["email"]
    # every SMTP key is documented, commented out
    text = path.read_text(encoding="utf-8")
    for key in EmailSettings.KEYS:
        assert f"{key} =" in text
    for key in ("outbox", "inbox", "templates_dir", "term_dates", "ledger", "workers", "pdf"):
        assert f"# {key} =" in text
    # and the SMTP lines, switched on, are accepted too
    switched_on = [line[2:] for line in text.split("[email]", 1)[1].splitlines()
                   if re.match(r"^# [a-z_]+ = ", line)]
    smtp = tomllib.loads("\n".join(switched_on))
    assert set(smtp) == {"host", "security", "port", "username", "timeout", "max_attempts", "retry_delay",
                         "retry_deadline", "ca_file"}
    with pytest.raises(ConfigError, match="ca_file council-ca.pem does not exist"):  # it names IT's file
        EmailSettings.from_config({**data["email"], **smtp, "transport": "smtp"}, env={})
    del smtp["ca_file"]
    settings = EmailSettings.from_config({**data["email"], **smtp, "transport": "smtp"}, env={})
    assert settings.host == "smtp.example.org" and settings.security == "starttls"


# ------------------------------------------------------------------------------------------ domains

@pytest.mark.parametrize("address, allowed", [
    ("jpatel@brookfield.sch.uk", True),
    ("JPatel@Brookfield.SCH.UK", True),
    ("office@sch.uk", True),
    ("head@oakwood.havering.sch.uk", True),
    ("sam.jones@havering.gov.uk", True),
    ("x@evilsch.uk", False),
    ("x@sch.uk.evil.com", False),
    ("x@havering.gov.uk.evil.com", False),
    ("x@nothavering.gov.uk", False),
    ("x@gmail.com", False),
    ("no-at-sign.sch.uk", False),
    ("two@@sch.uk", False),
    ("a@b@sch.uk", False),
    ("@sch.uk", False),
    ("x@", False),
    ("x@.sch.uk", False),
    ("x@brookfield..sch.uk", False),
    ("x @sch.uk", False),
    ("Ms Patel <jpatel@brookfield.sch.uk>", False),
    ("x@brookfield.sch.uk\nBcc: y@evil.com", False),
    ("", False),
    (None, False),
])
def test_domain_allowed(address, allowed):
    assert domain_allowed(address, ["sch.uk", "havering.gov.uk"]) is allowed


def test_domain_allowed_with_no_domains_allows_nothing():
    assert not domain_allowed("jpatel@brookfield.sch.uk", [])
    assert not domain_allowed("jpatel@brookfield.sch.uk", None)


# ------------------------------------------------------------------------------------------ messages

def test_build_message(tmp_path):
    run_dir = make_run(tmp_path)
    entry = json.loads((run_dir / "manifest.json").read_text())["referrals"][0]
    settings = EmailSettings.from_config({"sender": "inclusions@havering.gov.uk", "allowed_domains": ["sch.uk"]},
                                         env={})
    msg = build_message(entry, run_dir, settings)
    msg = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert msg["Subject"] == "Reintegration plan HAV-0001 – Brookfield Academy"
    assert msg["To"].addresses[0].display_name == "Ms J Patel"
    assert msg["To"].addresses[0].addr_spec == "jpatel@brookfield.sch.uk"
    assert msg["Cc"].addresses[0].addr_spec == "sam.jones@havering.gov.uk"
    assert msg["From"].addresses[0].addr_spec == "inclusions@havering.gov.uk"
    assert "X-Unsent" not in msg
    body = body_text(msg)
    assert "HAV-0001" in body and "Brookfield Academy" in body and "Sam Jones" in body
    assert "invitation to the reintegration planning meeting" in body
    assert_no_pupil_data(msg, "HAV-0001")
    files = attachments(msg)
    # named by Referral ID and document, never by the pupil: file names travel in the headers
    assert [(name, kind) for name, kind, _ in files] == [
        ("HAV-0001 reintegration plan.docx", DOCX_TYPE), ("HAV-0001 meeting invitation.docx", DOCX_TYPE)]
    assert all("Smith" not in name and "Amy" not in name for name, _, _ in files)
    assert docx.Document(io.BytesIO(files[0][2])).paragraphs[0].text == "Reintegration plan for Amy Smith"
    assert docx.Document(io.BytesIO(files[1][2])).paragraphs[0].text.startswith("Invitation")


def test_build_message_uses_templates_dir_override(tmp_path):
    run_dir = make_run(tmp_path)
    entry = json.loads((run_dir / "manifest.json").read_text())["referrals"][0]
    custom = tmp_path / "mytemplates"
    (custom / "email").mkdir(parents=True)
    (custom / "email" / "plan-email.txt").write_text("Custom body for {{ referral_id }}\n", encoding="utf-8")
    msg = build_message(entry, run_dir, EmailSettings(), templates_dir=custom)
    assert body_text(msg).strip() == "Custom body for HAV-0001"
    # a templates folder without an email template falls back to the shipped one
    msg = build_message(entry, run_dir, EmailSettings(), templates_dir=tmp_path / "empty")
    assert "Inclusions Team" in body_text(msg)


def test_shipped_template_uses_only_known_variables():
    import jinja2.meta

    from pipeline.deliver.template import _environment

    env = _environment(None)
    source = env.loader.get_source(env, "plan-email.txt")[0]
    assert jinja2.meta.find_undeclared_variables(env.parse(source)) <= EMAIL_CONTEXT_KEYS


def test_newest_plan_is_the_reviewed_version_written_last(tmp_path):
    plan = tmp_path / "plans" / "HAV-0001_Smith_Amy.docx"
    make_docx(plan, "original")
    assert newest_plan(plan) == plan
    # `reviews --as-of 2027-01-07` run first (a date in the future), then today's real `reviews`
    for n, stamp in enumerate(("2026-12-10", "2027-01-07", "2026-12-24")):
        path = plan.with_name(f"HAV-0001_Smith_Amy.reviewed-{stamp}.docx")
        make_docx(path, stamp)
        os.utime(path, ns=(10**18 + n * 10**9, 10**18 + n * 10**9))
    make_docx(plan.with_name("HAV-0001_Smith_Amy.reviewed-2027-13-01.docx"), "not a date")
    make_docx(plan.with_name("HAV-0001_Smith_Amy_2.reviewed-2028-01-01.docx"), "another pupil's plan")
    assert newest_plan(plan).name == "HAV-0001_Smith_Amy.reviewed-2026-12-24.docx"


# ------------------------------------------------------------------------------------------ files transport

def test_files_transport_writes_outlook_drafts(tmp_path, ledger):
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002"))
    settings = EmailSettings.from_config({"sender": "inclusions@havering.gov.uk",
                                          "allowed_domains": ["havering.gov.uk", "sch.uk"]}, env={})
    lines = []
    report = send_run(run_dir, settings, ledger, log=lines.append)
    assert [r.referral_id for r in report.drafted] == ["HAV-0001", "HAV-0002"]
    assert report.exit_code == 0 and not report.sent
    eml = run_dir / "mail" / "HAV-0001.eml"
    assert stat.S_IMODE(eml.stat().st_mode) == 0o600
    msg = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert msg["X-Unsent"] == "1"
    assert msg["To"].addresses[0].addr_spec == "jpatel@brookfield.sch.uk"
    assert msg["Cc"].addresses[0].addr_spec == "sam.jones@havering.gov.uk"
    assert "HAV-0001" in msg["Subject"]
    assert_no_pupil_data(msg, "HAV-0001")
    assert [kind for _, kind, _ in attachments(msg)] == [DOCX_TYPE, DOCX_TYPE]
    for _, _, data in attachments(msg):
        docx.Document(io.BytesIO(data))
    # drafts are recorded but never count as sent
    statuses = ledger.db.execute("SELECT referral_id, status, transport FROM sends ORDER BY id").fetchall()
    assert statuses == [("HAV-0001", "drafted", "files"), ("HAV-0002", "drafted", "files")]
    assert not any(ledger.db.execute("SELECT 1 FROM sends WHERE status = 'sent'").fetchall())
    log_text = "\n".join(lines)
    assert "HAV-0001" in log_text and "brookfield.sch.uk" in log_text
    for forename, surname, upn, _ in PUPILS.values():
        assert forename not in log_text and surname not in log_text and upn not in log_text
    # the same content is not drafted twice; --resend rewrites it
    again = send_run(run_dir, settings, ledger)
    assert len(again.skipped) == 2 and not again.drafted and again.exit_code == 0
    assert len(send_run(run_dir, settings, ledger, resend=True).drafted) == 2


def test_drafts_do_not_count_as_sent_for_smtp(tmp_path, ledger, smtp_server):
    run_dir = make_run(tmp_path)
    files = EmailSettings.from_config({"allowed_domains": ["havering.gov.uk", "sch.uk"]}, env={})
    assert len(send_run(run_dir, files, ledger).drafted) == 1
    handler, port = smtp_server()
    report = send_run(run_dir, smtp_settings(port), ledger)
    assert [r.referral_id for r in report.sent] == ["HAV-0001"]
    assert len(handler.messages) == 1


def test_no_allowed_domains_blocks_everything(tmp_path, ledger):
    run_dir = make_run(tmp_path)
    report = send_run(run_dir, EmailSettings(), ledger)
    assert [r.referral_id for r in report.blocked] == ["HAV-0001"]
    assert "allowed_domains" in report.blocked[0].reason
    assert report.exit_code == 1
    assert not (run_dir / "mail").exists()


def test_missing_run_folder_or_manifest_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not a run folder"):
        send_run(tmp_path / "nope", EmailSettings())
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="manifest.json"):
        send_run(tmp_path / "empty", EmailSettings())


def test_bad_manifest_entries_fail_without_traceback(tmp_path, ledger):
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002", "HAV-0003"))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["referrals"][0]["plan"] = "../../../etc/passwd"
    (run_dir / manifest["referrals"][1]["letter"]).unlink()
    manifest["referrals"].append("not a record")
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    settings = EmailSettings.from_config({"allowed_domains": ["havering.gov.uk", "sch.uk"]}, env={})
    lines = []
    report = send_run(run_dir, settings, ledger, log=lines.append)
    failed = {r.referral_id: r.reason for r in report.failed}
    assert "outside the run folder" in failed["HAV-0001"]
    assert "letter file is missing" in failed["HAV-0002"]
    assert "Okonkwo" not in "\n".join(lines) + failed["HAV-0002"]  # file names carry the pupil's name
    assert "(manifest entry 4)" in failed
    assert [r.referral_id for r in report.drafted] == ["HAV-0003"]
    assert report.exit_code == 1


# ------------------------------------------------------------------------------------------ SMTP transport

def test_smtp_send_delivers_to_school_and_officer_on_one_connection(tmp_path, ledger, smtp_server):
    handler, port = smtp_server()
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002", "HAV-0003"))
    report = send_run(run_dir, smtp_settings(port), ledger)
    assert [r.referral_id for r in report.sent] == ["HAV-0001", "HAV-0002", "HAV-0003"]
    assert report.exit_code == 0
    assert len(handler.messages) == 3
    assert len({m["peer"] for m in handler.messages}) == 1  # one connection for the batch
    for received, rid in zip(handler.messages, ("HAV-0001", "HAV-0002", "HAV-0003")):
        msg = received["message"]
        to = msg["To"].addresses[0].addr_spec
        cc = msg["Cc"].addresses[0].addr_spec
        assert received["rcpt_tos"] == [to, cc]
        assert to == PUPILS[rid][3] and cc == "sam.jones@havering.gov.uk"
        assert received["mail_from"] == "inclusions@havering.gov.uk"
        assert rid in msg["Subject"]
        assert "X-Unsent" not in msg
        assert_no_pupil_data(msg, rid)
        files = attachments(msg)
        assert len(files) == 2
        for name, kind, data in files:
            assert kind == DOCX_TYPE and name.startswith(rid) and name.endswith(".docx")
            assert docx.Document(io.BytesIO(data)).paragraphs
    assert ledger.was_sent("HAV-0001", _content_of(ledger, "HAV-0001"))


def _content_of(ledger, rid):
    return ledger.db.execute("SELECT content_sha256 FROM sends WHERE referral_id = ? ORDER BY id DESC LIMIT 1",
                             (rid,)).fetchone()[0]


def test_second_send_sends_nothing_and_resend_sends_again(tmp_path, ledger, smtp_server):
    handler, port = smtp_server()
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002"))
    settings = smtp_settings(port)
    assert len(send_run(run_dir, settings, ledger).sent) == 2
    second = send_run(run_dir, settings, ledger)
    assert not second.sent and len(second.skipped) == 2 and second.exit_code == 0
    assert len(handler.messages) == 2
    third = send_run(run_dir, settings, ledger, resend=True)
    assert len(third.sent) == 2
    assert len(handler.messages) == 4


def test_newest_reviewed_plan_is_attached_and_is_new_content(tmp_path, ledger, smtp_server):
    handler, port = smtp_server()
    run_dir = make_run(tmp_path)
    settings = smtp_settings(port)
    assert len(send_run(run_dir, settings, ledger).sent) == 1
    make_docx(run_dir / "plans" / "HAV-0001_Smith_Amy.reviewed-2026-12-10.docx", "Reviewed 10 December")
    make_docx(run_dir / "plans" / "HAV-0001_Smith_Amy.reviewed-2027-01-07.docx", "Reviewed 7 January")
    report = send_run(run_dir, settings, ledger)
    assert [r.referral_id for r in report.sent] == ["HAV-0001"]
    assert report.sent[0].attachments[0] == "plans/HAV-0001_Smith_Amy.reviewed-2027-01-07.docx"
    msg = handler.messages[-1]["message"]
    name, kind, data = attachments(msg)[0]
    assert name == "HAV-0001 reintegration plan reviewed 2027-01-07.docx" and kind == DOCX_TYPE
    assert docx.Document(io.BytesIO(data)).paragraphs[0].text == "Reviewed 7 January"
    assert "2027-01-07" in body_text(msg)


def test_disallowed_domain_is_blocked_and_never_reaches_the_server(tmp_path, ledger, smtp_server):
    handler, port = smtp_server()
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002"), emails={"HAV-0001": "jpatel@evilsch.uk"})
    lines = []
    report = send_run(run_dir, smtp_settings(port, allowed_domains=["sch.uk", "havering.gov.uk"]), ledger,
                      log=lines.append)
    assert [r.referral_id for r in report.blocked] == ["HAV-0001"]
    assert "jpatel@evilsch.uk" in report.blocked[0].reason
    assert [r.referral_id for r in report.sent] == ["HAV-0002"]
    assert report.exit_code == 1
    assert all("evilsch.uk" not in ",".join(m["rcpt_tos"]) for m in handler.messages)
    assert len(handler.messages) == 1
    assert ledger.db.execute("SELECT status FROM sends WHERE referral_id = 'HAV-0001'").fetchall() == [("blocked",)]
    assert any("HAV-0001" in line and "evilsch.uk" in line for line in lines)


@pytest.mark.timing
def test_server_down_fails_fast_and_is_sent_later(tmp_path, ledger, smtp_server):
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002", "HAV-0003"))
    dead = free_port()  # nothing listens here
    started = time.monotonic()
    report = send_run(run_dir, smtp_settings(dead, retry_delay=0.05, max_attempts=3), ledger)
    elapsed = time.monotonic() - started
    assert elapsed < 60 and elapsed < 10
    assert [r.referral_id for r in report.failed] == ["HAV-0001", "HAV-0002", "HAV-0003"]
    assert not report.sent and report.exit_code == 1
    assert "refused" in report.failed[0].reason and "3 attempts" in report.failed[0].reason
    assert all("not attempted" in r.reason for r in report.failed[1:])
    assert [s for (s,) in ledger.db.execute("SELECT status FROM sends")] == ["failed"] * 3
    # the next send picks them up
    handler, port = smtp_server()
    later = send_run(run_dir, smtp_settings(port), ledger)
    assert len(later.sent) == 3 and later.exit_code == 0
    assert len(handler.messages) == 3


@pytest.mark.timing
def test_silent_server_gives_up_within_the_deadline_whatever_the_number_of_messages(tmp_path, ledger):
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002", "HAV-0003"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(50)  # accepts connections in the kernel, never says a word
    try:
        settings = smtp_settings(listener.getsockname()[1], timeout=0.3, max_attempts=10, retry_delay=0.1,
                                 retry_deadline=1.5)
        started = time.monotonic()
        report = send_run(run_dir, settings, ledger)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert elapsed < 4
    assert len(report.failed) == 3 and report.exit_code == 1


@pytest.mark.timing
def test_default_settings_give_up_within_a_minute(tmp_path, ledger, monkeypatch):
    """Shipped defaults against a server that never answers (each connect waits its full timeout): a send of
    many messages still gives up within a minute. Time is simulated: the connect and the waits move a clock."""
    import smtplib

    clock = [0.0]

    def silent_connect(self, host="localhost", port=0, source_address=None):
        clock[0] += self.timeout
        raise TimeoutError("timed out")

    def fake_sleep(seconds):
        clock[0] += seconds

    monkeypatch.setattr(smtplib.SMTP, "connect", silent_connect)
    many = {f"HAV-{n:04d}": ("Amy", "Smith", "B801200005001", "jpatel@brookfield.sch.uk") for n in range(1, 41)}
    monkeypatch.setattr(sys.modules[__name__], "PUPILS", many)
    run_dir = make_run(tmp_path, ids=tuple(many))
    settings = EmailSettings.from_config({"transport": "smtp", "host": "smtp.example.org", "security": "none",
                                          "sender": "inclusions@havering.gov.uk",
                                          "allowed_domains": ["sch.uk", "havering.gov.uk"]}, env={})
    report = send_run(run_dir, settings, ledger, _sleep=fake_sleep, _clock=lambda: clock[0])
    assert len(report.failed) == 40 and report.exit_code == 1
    assert clock[0] <= settings.retry_deadline + 1 < 60
    assert "no answer" in report.failed[0].reason


def test_451_on_rcpt_is_retried_then_sent(tmp_path, ledger, smtp_server):
    handler, port = smtp_server(Recorder(rcpt_451=1))
    run_dir = make_run(tmp_path)
    report = send_run(run_dir, smtp_settings(port), ledger)
    assert [r.referral_id for r in report.sent] == ["HAV-0001"]
    assert len(handler.messages) == 1
    assert sorted(handler.messages[0]["rcpt_tos"]) == ["jpatel@brookfield.sch.uk", "sam.jones@havering.gov.uk"]
    detail = ledger.db.execute("SELECT detail FROM sends WHERE status = 'sent'").fetchone()[0]
    assert "after 2 attempts" in detail


def test_451_on_data_is_retried_then_sent_once(tmp_path, ledger, smtp_server):
    handler, port = smtp_server(Recorder(data_451=2))
    run_dir = make_run(tmp_path)
    report = send_run(run_dir, smtp_settings(port, max_attempts=3), ledger)
    assert [r.referral_id for r in report.sent] == ["HAV-0001"]
    assert len(handler.messages) == 1


def test_421_drops_the_connection_and_reconnects(tmp_path, ledger, smtp_server):
    handler, port = smtp_server(Recorder(data_421=1))
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002"))
    report = send_run(run_dir, smtp_settings(port), ledger)
    assert [r.referral_id for r in report.sent] == ["HAV-0001", "HAV-0002"]
    assert len(handler.messages) == 2


@pytest.mark.timing
def test_server_without_starttls_fails_every_message_at_once(tmp_path, ledger, smtp_server):
    handler, port = smtp_server()  # plain server: STARTTLS not offered
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002"))
    started = time.monotonic()
    report = send_run(run_dir, smtp_settings(port, security="starttls", retry_delay=5), ledger)
    assert time.monotonic() - started < 5  # not retried: waiting would not help
    assert len(report.failed) == 2 and report.exit_code == 1
    assert "STARTTLS" in report.failed[0].reason
    assert "not attempted" in report.failed[1].reason
    assert handler.messages == []


def test_persistent_451_fails_that_message_only(tmp_path, ledger, smtp_server):
    handler, port = smtp_server(Recorder(rcpt_451=2))
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002"))
    report = send_run(run_dir, smtp_settings(port, max_attempts=2), ledger)
    assert [r.referral_id for r in report.failed] == ["HAV-0001"]
    assert "451" in report.failed[0].reason
    assert [r.referral_id for r in report.sent] == ["HAV-0002"]


def test_550_is_permanent_for_that_message_and_nobody_gets_a_partial_copy(tmp_path, ledger, smtp_server):
    handler, port = smtp_server(Recorder(reject=("jpatel@brookfield.sch.uk",)))
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002"))
    report = send_run(run_dir, smtp_settings(port), ledger)
    assert [r.referral_id for r in report.failed] == ["HAV-0001"]
    assert "550" in report.failed[0].reason and "not retried" in report.failed[0].reason
    assert [r.referral_id for r in report.sent] == ["HAV-0002"]
    assert len(handler.messages) == 1  # the officer did not get a copy of HAV-0001 either
    assert handler.rcpt_commands == 3  # HAV-0001 tried once (rejected at the school), HAV-0002 two RCPTs
    assert report.exit_code == 1


def test_dry_run_sends_and_records_nothing(tmp_path, ledger, smtp_server):
    handler, port = smtp_server()
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002"), emails={"HAV-0002": "x@gmail.com"})
    report = send_run(run_dir, smtp_settings(port), ledger, dry_run=True)
    assert [r.referral_id for r in report.planned] == ["HAV-0001"]
    assert "jpatel@brookfield.sch.uk" in report.planned[0].reason
    assert "Smith" not in "\n".join(report.lines())
    assert [r.referral_id for r in report.blocked] == ["HAV-0002"]
    assert not report.sent and report.exit_code == 1
    assert "nothing was sent" in report.summary()
    assert handler.messages == []
    assert ledger.db.execute("SELECT COUNT(*) FROM sends").fetchone()[0] == 0
    files = send_run(run_dir, EmailSettings(allowed_domains=("sch.uk", "havering.gov.uk")), ledger, dry_run=True)
    assert len(files.planned) == 1 and not (run_dir / "mail").exists()


def test_missing_password_is_a_config_error_before_anything_is_sent(tmp_path, ledger):
    run_dir = make_run(tmp_path)
    settings = smtp_settings(free_port(), username="inclusions", security="starttls")
    with pytest.raises(ConfigError, match=PASSWORD_ENV):
        send_run(run_dir, settings, ledger)
    assert send_run(run_dir, settings, ledger, dry_run=True).planned  # a dry run needs no password


def test_send_with_config_uses_the_ledger_beside_the_run(tmp_path, smtp_server):
    from pipeline.core.config import Config

    handler, port = smtp_server()
    run_dir = make_run(tmp_path)
    config = Config(email={"transport": "smtp", "host": "127.0.0.1", "port": port, "security": "none",
                           "sender": "inclusions@havering.gov.uk", "allowed_domains": ["sch.uk", "havering.gov.uk"]})
    dry = send_with_config(run_dir, config, dry_run=True, env={})
    assert len(dry.planned) == 1 and not (tmp_path / "outbox" / "ledger.sqlite3").exists()
    assert len(send_with_config(run_dir, config, env={}).sent) == 1
    assert (tmp_path / "outbox" / "ledger.sqlite3").exists()
    assert len(send_with_config(run_dir, config, env={}).skipped) == 1
    assert len(handler.messages) == 1


def test_report_lines_and_dict(tmp_path, ledger):
    run_dir = make_run(tmp_path, ids=("HAV-0001",), emails={"HAV-0001": "x@evilsch.uk"})
    report = send_run(run_dir, EmailSettings(allowed_domains=("sch.uk",)), ledger)
    lines = report.lines()
    assert lines[0].startswith("HAV-0001: BLOCKED:")
    assert lines[-1] == "0 sent, 0 drafted, 0 skipped, 1 blocked, 0 failed."
    data = report.as_dict()
    assert data["exit_code"] == 1 and data["blocked"][0]["referral_id"] == "HAV-0001"
    json.dumps(data)



@pytest.mark.timing
def test_one_session_gives_up_once_for_several_run_folders(tmp_path, ledger):
    """`run a.xlsx b.xlsx --send` shares one deadline: the second run folder is not tried against a dead server."""
    from pipeline.deliver.send import SendSession

    first = make_run(tmp_path / "a", ids=("HAV-0001", "HAV-0002"))
    second = make_run(tmp_path / "b", ids=("HAV-0003",))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(50)  # accepts, never answers
    try:
        settings = smtp_settings(listener.getsockname()[1], timeout=0.3, max_attempts=10, retry_delay=0.1,
                                 retry_deadline=1.5)
        started = time.monotonic()
        with SendSession() as session:
            reports = [send_run(run, settings, ledger, session=session) for run in (first, second)]
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert elapsed < 4  # one deadline of 1.5 s for both folders, not one each
    assert [len(r.failed) for r in reports] == [2, 1]
    assert "not attempted" in reports[1].failed[0].reason


def test_two_ids_with_the_same_safe_name_get_two_drafts(tmp_path, ledger):
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002"))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["referrals"][1]["referral_id"] = "HAV/0001"  # a different ID that cleans to the same file name
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    settings = EmailSettings.from_config({"allowed_domains": ["sch.uk", "havering.gov.uk"]}, env={})
    report = send_run(run_dir, settings, ledger)
    assert len(report.drafted) == 2
    drafts = sorted(p.name for p in (run_dir / "mail").iterdir())
    assert drafts == ["HAV-0001-2.eml", "HAV-0001.eml"]
    subjects = {BytesParser(policy=policy.default).parsebytes((run_dir / "mail" / d).read_bytes())["Subject"]
                for d in drafts}
    assert len(subjects) == 2


def test_an_unexpected_error_on_one_message_fails_only_that_message(tmp_path, ledger, monkeypatch):
    from pipeline.deliver import smtp

    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002"))
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    original = smtp.SmtpBatch.send
    calls = []

    def send(self, msg, recipients, referral_id):
        calls.append(referral_id)
        if len(calls) == 1:
            raise UnicodeEncodeError("ascii", "é", 0, 1, "surprise")
        return original(self, msg, recipients, referral_id)

    monkeypatch.setattr(smtp.SmtpBatch, "send", send)
    try:
        report = send_run(run_dir, smtp_settings(controller.port), ledger)
    finally:
        controller.stop()
    assert [r.referral_id for r in report.failed] == ["HAV-0001"] and "unexpected error" in report.failed[0].reason
    assert [r.referral_id for r in report.sent] == ["HAV-0002"] and report.exit_code == 1


def test_check_templates_checks_the_email_template_too(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli.main import main

    import shutil

    from pipeline.write.render import default_templates_dir

    folder = tmp_path / "templates"
    shutil.copytree(default_templates_dir(), folder)
    (folder / "email" / "plan-email.txt").write_text("Dear {{ pupil_name }}, see {{ referral_id }}\n")
    result = CliRunner().invoke(main, ["check-templates", str(folder)])
    assert result.exit_code == 1 and "email/plan-email.txt: placeholder 'pupil_name' cannot be filled" in result.output
    (folder / "email" / "plan-email.txt").write_text("Dear {{ referral_id }\n")
    result = CliRunner().invoke(main, ["check-templates", str(folder)])
    assert result.exit_code == 1 and "email/plan-email.txt: template syntax error" in result.output
    (folder / "email" / "plan-email.txt").write_text("Plan {{ referral_id }} for {{ receiving_school }}\n")
    assert CliRunner().invoke(main, ["check-templates", str(folder)]).exit_code == 0
