"""TLS for the SMTP transport: which certificate authorities a connection trusts, and what a TLS failure
tells the officer.

The server's certificate and host name are always verified, against the system's CAs plus ``ca_file`` (a
council's private CA) when it is set; there is never a clear-text fallback.
"""

from __future__ import annotations

import ssl

from pipeline.core.errors import ConfigError


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


def tls_failure(exc: ssl.SSLError, where: str) -> str:
    """Why a secure connection to `where` (host:port) failed, and what to change: one sentence."""
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
