"""The SMTP transport: `SmtpBatch`, one connection for a whole `send` command, with bounded retries.

The connection is ``starttls`` or ``ssl`` (the certificate and host name verified, `pipeline.deliver.tls`;
never a clear-text fallback) or ``none`` for a local relay, with a login when a username is set. Each
message is one SMTP transaction (MAIL, RCPT for every recipient, DATA): a recipient refused means nothing is
delivered to anyone. What can go wrong is sorted four ways:

- before the message is handed over (refused connections, timeouts, 4xx replies): retried, with exponential
  backoff, ``max_attempts`` a message (`_Retry`);
- a 5xx reply: that message fails at once, the others still go (`_Permanent`);
- a wrong password or a TLS failure: they all fail at once, with no retry storm that locks the account
  (`_Fatal`);
- a connection lost *after* the content was handed over: ``uncertain`` ("may have been sent"), never
  retried (`_Uncertain`).

The bound is on progress: once no message has been accepted for ``retry_deadline`` seconds (at most 55), the
rest are left for a later send, however slowly the server answers (every wait is cut to the time left, and a
watchdog shuts the socket).
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import threading
import time
from email import policy
from email.message import EmailMessage
from typing import Callable

from pipeline.core.addresses import domain_of
from pipeline.deliver.settings import PASSWORD_ENV, EmailSettings
from pipeline.deliver.tls import tls_context, tls_failure

Log = Callable[[str], None]


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


class SmtpBatch:
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
            raise _Fatal(tls_failure(exc, self.where)) from None
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
