"""What an email address is, for mail in and mail out (PROTOCOLS.md P4).

One rule for both directions: inbound mail whose From is not an address by
this rule is quarantined (it would become a contact nobody can write to,
and every sender of `From: Evil` would land on the same one), and a reply
goes out only to addresses that pass it. `connectors.email.render` writes
headers and SMTP commands with `envelope_address`, the recipient check of
a reply answers with its reasons, and the inbound parser asks
`address_problem` about the From address.

An address is `local@domain`: the local part a dot-atom (RFC 5322 atext,
plus, as RFC 6531 allows, non-ASCII letters, marks, digits, punctuation
and symbols: never spaces, controls or invisible format characters), the
domain a host name (IDNA-encoded when not ASCII). Quoted local parts and
address literals (`"j d"@x`, `j@[192.0.2.1]`) are not taken: no real
customer needs them and they are how header and command injection starts.
Sending to a non-ASCII local part would need SMTPUTF8, which the sender
does not do, so `envelope_address` refuses one; receiving from one is fine.
"""

from __future__ import annotations

import re
import unicodedata

# RFC 5321 4.5.3.1: the local part in octets, the domain, the whole path.
from server.domain.email_tokens import MAX_ADDRESS, MAX_DOMAIN, MAX_LOCAL_PART

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_ATOM = re.compile(rf"[{_ATEXT}]+")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# Characters that IDNA 2003 (the stdlib codec) maps to something else than
# IDNA 2008 does ("straße" -> "strasse"): mail would go to another domain.
_IDNA_DEVIATIONS = frozenset("\u00df\u03c2\u200c\u200d")


def _atom_char(ch: str) -> bool:
    if ch.isascii():
        return _ATOM.fullmatch(ch) is not None
    return unicodedata.category(ch)[0] in "LMNPS"


def _local_problem(local: str) -> str | None:
    if not local:
        return "invalid address"
    if any(not atom or not all(_atom_char(ch) for ch in atom) for atom in local.split(".")):
        return "invalid address"
    if len(local.encode("utf-8", "surrogatepass")) > MAX_LOCAL_PART:
        return "address too long"
    return None


def ascii_domain(domain: str) -> str:
    """`domain` lower-cased and IDNA-encoded; raises ValueError with the
    reason ("invalid domain", or "domain is ambiguous ...")."""
    if domain.isascii():
        host = domain.lower()
    else:
        if _IDNA_DEVIATIONS & set(domain.lower()):
            raise ValueError("domain is ambiguous between IDNA 2003 and 2008")
        try:
            host = domain.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise ValueError("invalid domain") from None
    if len(host) > MAX_DOMAIN or not _HOST.fullmatch(host):
        raise ValueError("invalid domain")
    return host


def address_problem(address: str) -> str | None:
    """Why `address` (a bare `local@domain`, nothing around it) is not an
    email address, or None when it is one."""
    if not isinstance(address, str):
        return "invalid address"
    local, at, domain = address.rpartition("@")
    if not at:
        return "invalid address"
    problem = _local_problem(local)
    if problem:
        return problem
    try:
        host = ascii_domain(domain)
    except ValueError as exc:
        return str(exc)
    if len(local.encode("utf-8", "surrogatepass")) + 1 + len(host) > MAX_ADDRESS:
        return "address too long"
    return None


def envelope_address(address: str, *, field: str = "address") -> str:
    """`local@domain` as it goes in the headers and in SMTP MAIL FROM /
    RCPT TO: the domain IDNA-encoded and lower-cased, the local part as
    given. Raises ValueError ("{field}: {reason}") for anything
    `address_problem` refuses and for a non-ASCII local part (that would
    need SMTPUTF8, which is not supported)."""
    problem = address_problem(address)
    if problem:
        raise ValueError(f"{field}: {problem}")
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise ValueError(f"{field}: non-ASCII local part (SMTPUTF8 is not supported)")
    return f"{local}@{ascii_domain(domain)}"
