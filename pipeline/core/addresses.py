"""Email addresses and allowed domains (docs/email.md): what `send` may use, and what `validate` warns about.

Addresses are plain ASCII ``local@domain``; a domain in ``allowed_domains`` allows itself and its subdomains.
"""

from __future__ import annotations

import re
from typing import Mapping

from pipeline.core.errors import ConfigError

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


def split_address(address) -> tuple[str, str] | None:
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
    parts = split_address(address)
    if parts is None or not allowed_domains:
        return False
    domain = parts[1]
    for allowed in allowed_domains:
        allowed = _ascii_domain(str(allowed).strip().lstrip("@").lstrip(".")) if allowed else None
        if allowed and (domain == allowed or domain.endswith("." + allowed)):
            return True
    return False


def domain_of(address: str) -> str:
    parts = split_address(address)
    return parts[1] if parts else "(malformed address)"


def allowed_domains_of(email: Mapping) -> tuple[str, ...]:
    """The ``allowed_domains`` of an ``[email]`` table, checked and normalised (lower case, ASCII)."""
    domains = email.get("allowed_domains", [])
    if isinstance(domains, str) or not isinstance(domains, (list, tuple)):
        raise ConfigError('[email] allowed_domains must be a list in brackets, e.g. '
                          'allowed_domains = ["havering.gov.uk", "sch.uk"].')
    allowed: list[str] = []
    for item in domains:
        cleaned = item.strip().lstrip("@") if isinstance(item, str) else ""
        domain = _ascii_domain(cleaned.lstrip(".")) if cleaned else None
        if domain is None:
            raise ConfigError(f"[email] allowed_domains entry {item!r} is not a domain name with at least two "
                              'parts, e.g. "sch.uk" (which also allows every school under it).')
        if domain not in allowed:
            allowed.append(domain)
    return tuple(allowed)
