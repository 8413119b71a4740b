"""Email through real encrypted servers, as a council's relay works: aiosmtpd on 127.0.0.1 with STARTTLS and a
login, and with implicit TLS, certificates from a private CA made in the test (trustme). Then the term as an
officer lives it: run, send, fix a row, run again, send: each school gets each referral once."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import openpyxl
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import CliRunner

from pipeline.cli.main import main
from pipeline.core.ledger import Ledger
from pipeline.deliver.send import send_run
from pipeline.deliver.settings import PASSWORD_ENV, EmailSettings
from tests.test_mail import Recorder, free_port, make_run, smtp_server, smtp_settings  # noqa: F401 (a fixture)

# implicit TLS: aiosmtpd cannot tell its own AUTH check that the connection is TLS from the first byte
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "referrals-spring-2027.xlsx"
USER, PASSWORD = "inclusions", "correct horse battery staple"


class Login:
    """An aiosmtpd authenticator: one account; counts every attempt (a retry storm would lock it)."""

    def __init__(self):
        self.attempts = 0

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.attempts += 1
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER
              and auth_data.password.decode() == PASSWORD)
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def ca_file(ca, tmp_path):
    path = tmp_path / "council-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca, *names) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*(names or ("127.0.0.1", "localhost"))).configure_cert(context)
    return context


@pytest.fixture
def tls_server(ca):
    """start(mode="starttls" | "ssl", names=...) -> (recorder, login, port): a server that insists on TLS
    (STARTTLS before anything, or implicit TLS) and on a login before MAIL."""
    controllers = []

    def start(mode="starttls", names=(), handler=None):
        handler, login = handler or Recorder(), Login()
        context = server_context(ca, *names)
        # implicit TLS is TLS from the first byte: aiosmtpd's auth_require_tls looks only for STARTTLS
        options = dict(authenticator=login, auth_required=True, auth_require_tls=mode != "ssl")
        if mode == "ssl":
            controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ssl_context=context,
                                    server_hostname="127.0.0.1", **options)
        else:
            controller = Controller(handler, hostname="127.0.0.1", port=free_port(), tls_context=context,
                                    require_starttls=True, **options)
        controller.start()
        controllers.append(controller)
        return handler, login, controller.port

    yield start
    for controller in controllers:
        controller.stop()


def tls_settings(port, security, ca_file=None, password=PASSWORD, **more) -> EmailSettings:
    email = {"transport": "smtp", "host": "127.0.0.1", "port": port, "security": security, "username": USER,
             "sender": "inclusions@havering.gov.uk", "allowed_domains": ["havering.gov.uk", "sch.uk"],
             "timeout": 5, "retry_delay": 0.05, "retry_deadline": 10, **more}
    if ca_file:
        email["ca_file"] = str(ca_file)
    return EmailSettings.from_config(email, env={PASSWORD_ENV: password} if password else {})


@pytest.fixture
def ledger(tmp_path):
    with Ledger(tmp_path / "outbox" / "ledger.sqlite3") as led:
        yield led


# ------------------------------------------------------------------------------ every security setting

@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_login_over_tls_delivers_every_message(tmp_path, ledger, tls_server, ca_file, security):
    handler, login, port = tls_server(security)
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002", "HAV-0003"))
    report = send_run(run_dir, tls_settings(port, security, ca_file), ledger)
    assert [r.referral_id for r in report.sent] == ["HAV-0001", "HAV-0002", "HAV-0003"], report.lines()
    assert report.exit_code == 0 and login.attempts == 1  # one connection, one login for the batch
    first = handler.messages[0]
    assert first["rcpt_tos"] == ["jpatel@brookfield.sch.uk", "sam.jones@havering.gov.uk"]
    names = [part.get_filename() for part in first["message"].iter_attachments()]
    assert names == ["HAV-0001 reintegration plan.docx", "HAV-0001 meeting invitation.docx"]


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_without_a_login_over_tls(tmp_path, ledger, ca, ca_file, security):
    handler = Recorder()
    context = server_context(ca)
    if security == "ssl":
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ssl_context=context)
    else:
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), tls_context=context,
                                require_starttls=True)
    controller.start()
    try:
        settings = smtp_settings(controller.port, security=security, ca_file=str(ca_file))
        report = send_run(make_run(tmp_path), settings, ledger)
    finally:
        controller.stop()
    assert len(report.sent) == 1 and len(handler.messages) == 1, report.lines()


def test_wrong_password_fails_once_without_a_retry_storm(tmp_path, ledger, tls_server, ca_file):
    handler, login, port = tls_server("starttls")
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002", "HAV-0003"))
    report = send_run(run_dir, tls_settings(port, "starttls", ca_file, password="wrong", max_attempts=5), ledger)
    assert not report.sent and not handler.messages and report.exit_code == 1
    assert login.attempts <= 3  # smtplib tries each mechanism once; never again per message
    assert "refused the login for inclusions" in report.failed[0].reason
    assert PASSWORD_ENV in report.failed[0].reason and "not retried" in report.failed[0].reason
    assert all("not attempted" in r.reason for r in report.failed[1:])


def test_an_untrusted_certificate_is_refused_and_names_ca_file(tmp_path, ledger, tls_server):
    handler, login, port = tls_server("starttls")
    report = send_run(make_run(tmp_path), tls_settings(port, "starttls"), ledger)  # no ca_file
    assert not report.sent and not handler.messages and login.attempts == 0
    assert "is not trusted" in report.failed[0].reason and "ca_file" in report.failed[0].reason


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_certificate_for_another_name_is_refused(tmp_path, ledger, tls_server, ca_file, security):
    handler, login, port = tls_server(security, names=("mail.example.org",))
    report = send_run(make_run(tmp_path), tls_settings(port, security, ca_file), ledger)
    assert not report.sent and not handler.messages and login.attempts == 0
    assert "for another name" in report.failed[0].reason


def test_ssl_against_a_starttls_port_says_which_setting_to_check(tmp_path, ledger, tls_server, ca_file):
    handler, login, port = tls_server("starttls")
    report = send_run(make_run(tmp_path), tls_settings(port, "ssl", ca_file, timeout=3), ledger)
    assert not report.sent and not handler.messages
    assert "security" in report.failed[0].reason and "587" in report.failed[0].reason


def test_a_server_without_starttls_gets_nothing_in_clear_text(tmp_path, ledger, ca_file):
    handler = Recorder()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())  # plain, no TLS on offer
    controller.start()
    try:
        report = send_run(make_run(tmp_path), tls_settings(controller.port, "starttls", ca_file), ledger)
    finally:
        controller.stop()
    assert not handler.messages and "does not offer STARTTLS" in report.failed[0].reason


def test_ca_file_that_is_not_a_certificate_is_a_config_error(tmp_path):
    from pipeline.core.errors import ConfigError

    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="cannot be used as a certificate authority"):
        tls_settings(25, "starttls", bad)


# ------------------------------------------------------------------------------------ the CLI, by hand

def test_send_through_starttls_from_the_cli_with_ca_file_beside_the_config(tmp_path, tls_server, ca_file,
                                                                            monkeypatch):
    handler, login, port = tls_server("starttls")
    run_dir = make_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("reintegrate.toml").write_text(
        f'[email]\ntransport = "smtp"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "starttls"\n'
        f'username = "{USER}"\nsender = "inclusions@havering.gov.uk"\nca_file = "{ca_file.name}"\n'
        'allowed_domains = ["havering.gov.uk", "sch.uk"]\n')
    runner = CliRunner()
    missing = runner.invoke(main, ["send", str(run_dir)], env={PASSWORD_ENV: ""})
    assert missing.exit_code == 2 and "REINTEGRATE_SMTP_PASSWORD" in missing.output
    assert "Set the REINTEGRATE_SMTP_PASSWORD environment variable" in missing.output
    assert "Correct it in" not in missing.output  # the password never belongs in the file
    result = runner.invoke(main, ["send", str(run_dir)], env={PASSWORD_ENV: PASSWORD})
    assert result.exit_code == 0, result.output
    assert "1 sent" in result.output and len(handler.messages) == 1


# ------------------------------------------------------------------------- slow and dropped connections

class SlowData(Recorder):
    """Takes `delay` seconds over every DATA reply (under the client's time-out)."""

    def __init__(self, delay):
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def test_a_slow_server_that_keeps_accepting_is_not_cut_off(tmp_path, ledger, smtp_server):
    """The bound is on progress, not on the whole send: 4 messages of 0.5 s each against a 1.2 s bound."""
    handler, port = smtp_server(SlowData(0.5))
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002", "HAV-0003"))
    settings = smtp_settings(port, timeout=10, retry_deadline=1.2)
    report = send_run(run_dir, settings, ledger)
    assert len(report.sent) == 3 and len(handler.messages) == 3, report.lines()


@pytest.mark.timing
def test_a_slow_server_cannot_hold_send_past_the_bound_and_nothing_is_retried(tmp_path, ledger, smtp_server):
    """Every reply to DATA comes 10 s late, under the 15 s time-out: the send stops at its bound (here 1.5 s),
    and the message that was handed over is reported as may have been sent, never retried."""
    handler, port = smtp_server(SlowData(10))
    run_dir = make_run(tmp_path, ids=("HAV-0001", "HAV-0002", "HAV-0003"))
    settings = smtp_settings(port, timeout=15, max_attempts=5, retry_delay=0.05, retry_deadline=1.5)
    started = time.monotonic()
    report = send_run(run_dir, settings, ledger)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5 + 1.5, elapsed
    assert [r.referral_id for r in report.uncertain] == ["HAV-0001"] and report.exit_code == 1
    assert "may have been sent" in report.uncertain[0].reason
    assert [r.referral_id for r in report.failed] == ["HAV-0002", "HAV-0003"]
    statuses = ledger.db.execute("SELECT referral_id, status FROM sends ORDER BY id").fetchall()
    assert statuses[0] == ("HAV-0001", "uncertain")
    # a later send leaves it alone, and sends the others
    handler.delay = 0
    later = send_run(run_dir, settings, ledger)
    assert [r.referral_id for r in later.sent] == ["HAV-0002", "HAV-0003"]
    assert [r.referral_id for r in later.skipped] == ["HAV-0001"]
    assert "may have been sent" in later.skipped[0].reason and "--resend" in later.skipped[0].reason
    # --resend sends it on purpose
    again = send_run(run_dir, settings, ledger, resend=True)
    assert "HAV-0001" in [r.referral_id for r in again.sent]


class DropAfterData(Recorder):
    """Takes the message, then drops the connection instead of replying 250."""

    async def handle_DATA(self, server, session, envelope):
        await super().handle_DATA(server, session, envelope)
        server.transport.close()
        return "250 too late"


def test_a_connection_dropped_after_the_message_is_never_retried(tmp_path, ledger, smtp_server):
    handler, port = smtp_server(DropAfterData())
    run_dir = make_run(tmp_path, ids=("HAV-0001",))
    settings = smtp_settings(port, timeout=5, max_attempts=5, retry_delay=0.05)
    report = send_run(run_dir, settings, ledger)
    assert len(handler.messages) == 1  # the school has it once, not max_attempts times
    assert [r.referral_id for r in report.uncertain] == ["HAV-0001"] and not report.sent
    assert "MAY HAVE BEEN SENT" in "\n".join(report.lines())


# --------------------------------------------------------------------------------------- display names

def test_display_names_never_carry_an_address_or_an_encoded_word(tmp_path, ledger, smtp_server):
    handler, port = smtp_server()
    run_dir = make_run(tmp_path)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["referrals"][0]["receiving_school_contact"] = '"Evil" <evil@evil.com>'
    manifest["referrals"][0]["inclusions_officer"] = "=?utf-8?q?evil=40evil.com?= Sam <x@y.org>"
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    settings = smtp_settings(port)
    assert len(send_run(run_dir, settings, ledger).sent) == 1
    message = handler.messages[0]["message"]
    for header in ("To", "Cc"):
        (address,) = message[header].addresses
        assert not any(mark in address.display_name for mark in ("@", "<", ">", "=?")), address.display_name
        raw = str(message.get(header))
        assert raw.count("@") == 1 and "=?" not in message.get_all(header)[0]
    assert message["To"].addresses[0].addr_spec == "jpatel@brookfield.sch.uk"
    assert message["Cc"].addresses[0].display_name == "Sam"


# ------------------------------------------------------------------------- each school once, all term

def _cell(sheet, heading: str, row: int):
    for heading_row in range(1, 11):
        for cell in sheet[heading_row]:
            if str(cell.value or "").strip().lower() == heading.lower():
                return sheet.cell(row=row, column=cell.column)
    raise AssertionError(heading)


def _smtp_config(port) -> str:
    return (f'[email]\ntransport = "smtp"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
            'sender = "inclusions@havering.gov.uk"\n'
            'allowed_domains = ["havering.gov.uk", "sch.uk", "drapersacademy.com"]\n')


def _newest_run(outbox: Path) -> Path:
    return sorted(p for p in outbox.iterdir() if (p / "manifest.json").exists())[-1]


def test_fixing_a_row_and_running_again_sends_exactly_the_new_message(tmp_path, smtp_server, monkeypatch):
    handler, port = smtp_server()
    monkeypatch.chdir(tmp_path)
    Path("reintegrate.toml").write_text(_smtp_config(port))
    workbook = tmp_path / "referrals.xlsx"
    shutil.copy(EXAMPLE, workbook)
    runner = CliRunner()
    first = runner.invoke(main, ["run", str(workbook), "--as-of", "2026-11-30", "--send"])
    assert first.exit_code == 1  # the example's deliberate mistakes
    assert len(handler.messages) == 15 and "15 sent" in first.output

    # the officer fixes row 9 (3.1: Returning via FAP said No) and runs the whole workbook again
    book = openpyxl.load_workbook(workbook)
    _cell(book["Referrals"], "Returning via FAP", 9).value = "Yes"
    book.save(workbook)
    second = runner.invoke(main, ["run", str(workbook), "--as-of", "2026-11-30"])
    run_dir = _newest_run(tmp_path / "outbox")
    dry = runner.invoke(main, ["send", str(run_dir), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.count("already sent (run ") == 15 and "HAV-00005: would send" in dry.output
    sent = runner.invoke(main, ["send", str(run_dir)])
    assert sent.exit_code == 0 and "1 sent" in sent.output, second.output + sent.output
    assert len(handler.messages) == 16
    assert handler.messages[-1]["message"]["Subject"].startswith("Reintegration plan HAV-00005")

    # a changed referral goes again, as an update; the rest stay put
    book = openpyxl.load_workbook(workbook)
    _cell(book["Referrals"], "Key worker", 5).value = "Mr D Okafor (Learning Mentor)"
    book.save(workbook)
    runner.invoke(main, ["run", str(workbook), "--as-of", "2026-12-01"])  # another day: not a change
    updated = runner.invoke(main, ["send", str(_newest_run(tmp_path / "outbox"))])
    assert updated.exit_code == 0 and "1 sent" in updated.output, updated.output
    assert len(handler.messages) == 17
    last = handler.messages[-1]["message"]
    assert last["Subject"].startswith("Updated reintegration plan HAV-00001")
    assert "This is an update" in last.get_body(preferencelist=("plain",)).get_content()


def test_referral_ids_differing_only_in_case_are_one_referral_for_send(tmp_path, ledger, smtp_server):
    handler, port = smtp_server()
    settings = smtp_settings(port)
    run_dir = make_run(tmp_path)
    assert len(send_run(run_dir, settings, ledger).sent) == 1
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["referrals"][0]["referral_id"] = "hav-0001"
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    again = send_run(run_dir, settings, ledger)
    assert not again.sent and "already sent" in again.skipped[0].reason


def test_an_officers_word_edit_after_sending_goes_as_an_update(tmp_path, ledger, smtp_server):
    import docx

    handler, port = smtp_server()
    settings = smtp_settings(port)
    run_dir = make_run(tmp_path)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    entry = manifest["referrals"][0]
    import hashlib

    for key in ("plan", "letter"):  # as `run` records them
        entry[f"{key}_sha256"] = hashlib.sha256((run_dir / entry[key]).read_bytes()).hexdigest()
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    assert len(send_run(run_dir, settings, ledger).sent) == 1
    assert send_run(run_dir, settings, ledger).skipped
    plan = run_dir / entry["plan"]
    document = docx.Document(str(plan))
    document.add_paragraph("Agreed at the planning meeting: a quiet room at lunchtime.")
    document.save(str(plan))
    update = send_run(run_dir, settings, ledger)
    assert len(update.sent) == 1 and "as an update" in update.sent[0].reason
    assert BytesParser(policy=policy.default).parsebytes(
        handler.messages[-1]["message"].as_bytes())["Subject"].startswith("Updated")
