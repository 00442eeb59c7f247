"""Signed tokens in outbound mail (PROTOCOLS.md P4), pure and stdlib only.

Every message Threadline sends carries the conversation it belongs to,
signed, in two places a reply brings back:

- its `Message-ID`, `<tl.{payload}.{sig}@{domain}>`, which replies quote
  in `In-Reply-To` / `References`;
- its `Reply-To`, `reply+{payload}.{sig}@{reply_domain}`, which a reply is
  addressed to.

`payload` is the lower-case, unpadded base32 of a few bytes: one header
byte (format version in the high nibble, flags in the low one) followed by
the workspace, inbox and conversation ids and, optionally, the message
reference, each as an unsigned LEB128 varint. `sig` is the first
`SIGNATURE_BYTES` of HMAC-SHA256 over a purpose label and those bytes, in
the same base32. Why this shape:

- base32 in one case survives mail systems that lower-case (or upper-case)
  local parts: parsing folds the case back, so `REPLY+ABC…` still verifies;
- the signature covers the purpose (`msgid` or `reply`), so a token lifted
  from a Message-ID is not a valid reply address and the other way round;
- the version nibble lets the format change later without guessing, and
  parsing takes a list of keys (current first, then previous ones) so the
  key can rotate without orphaning threads already in people's mailboxes;
- ids are bounded by `MAX_ID` (2**42 - 1, about 4.4 trillion) so that even
  with all four ids at their largest the reply address's local part stays
  within RFC 5321's 64 characters; every output is plain ASCII from a
  small alphabet (never CR, LF or anything a header could be split on).

Only the token is signed; the domain after `@` is not, so a domain change
does not orphan old threads. A token carries no expiry: a reply to a
years-old mail still belongs to its conversation, and the threading rules
(server.domain.email_threading) decide what a reply may do with it.

The key is bytes the server derives from its secret key; keys shorter than
`MIN_KEY_BYTES` are refused (ValueError), as is a bare `bytes` where a list
of keys is expected.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import re
from collections.abc import Collection, Sequence

TOKEN_VERSION = 1
SIGNATURE_BYTES = 10
MAX_ID = 2**42 - 1
MIN_KEY_BYTES = 16
MAX_LOCAL_PART = 64  # RFC 5321 4.5.3.1.1
MAX_ADDRESS = 254  # RFC 5321 4.5.3.1.3: a 256-octet path less its angle brackets
MAX_DOMAIN = 253
MESSAGE_ID_PREFIX = "tl."
REPLY_PREFIX = "reply+"

# Longest input either parser looks at; anything longer is not ours.
MAX_PARSE_LENGTH = 512

_FLAG_BROADCAST = 0x01
_FLAG_MESSAGE_REF = 0x02
_KNOWN_FLAGS = _FLAG_BROADCAST | _FLAG_MESSAGE_REF
_PURPOSE_MESSAGE_ID = b"msgid"
_PURPOSE_REPLY = b"reply"
_SIG_CHARS = 16  # SIGNATURE_BYTES in unpadded base32
_B32 = re.compile(r"[a-z2-7]+")  # used with fullmatch: `$` would allow a final "\n"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# The payload's longest form: header byte and four varints of 6 bytes each.
_MAX_PAYLOAD_CHARS = 40


@dataclasses.dataclass(frozen=True)
class TokenClaims:
    """What a token says, once its signature checked out.

    `message_ref` is the message's id (or its seq in the conversation);
    a Message-ID needs one so that each outbound message has its own.
    `broadcast` marks mail sent as one mailing to many contacts (a
    newsletter, a campaign): a different person replying to it gets their
    own conversation rather than joining this one.
    """

    workspace_id: int
    inbox_id: int
    conversation_id: int
    message_ref: int | None = None
    broadcast: bool = False

    def __post_init__(self) -> None:
        for name in ("workspace_id", "inbox_id", "conversation_id"):
            _check_id(name, getattr(self, name), minimum=1)
        if self.message_ref is not None:
            _check_id("message_ref", self.message_ref, minimum=0)
        if not isinstance(self.broadcast, bool):
            raise ValueError("broadcast must be a bool")


def _check_id(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int")
    if not minimum <= value <= MAX_ID:
        raise ValueError(f"{name} must be between {minimum} and {MAX_ID}")


# -- encoding ---------------------------------------------------------------


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes | None:
    """The bytes of canonical unpadded lower-case base32, else None. A
    string whose unused trailing bits are not zero decodes to the same bytes
    as the canonical one, so it is refused: one token, one spelling."""
    if not _B32.fullmatch(text) or len(text) % 8 in (1, 3, 6):
        return None
    try:
        raw = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None
    return raw if _b32(raw) == text else None


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(raw: bytes, pos: int) -> tuple[int, int] | None:
    """(value, next position), or None for a truncated, over-long or
    non-minimal varint (a trailing zero byte after a continuation)."""
    value = 0
    for shift in range(0, 7 * 6, 7):
        if pos >= len(raw):
            return None
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and shift:
                return None
            return value, pos
    return None


def _encode(claims: TokenClaims) -> bytes:
    flags = (_FLAG_BROADCAST if claims.broadcast else 0) | (
        _FLAG_MESSAGE_REF if claims.message_ref is not None else 0
    )
    out = bytearray([TOKEN_VERSION << 4 | flags])
    for value in (claims.workspace_id, claims.inbox_id, claims.conversation_id):
        out += _varint(value)
    if claims.message_ref is not None:
        out += _varint(claims.message_ref)
    return bytes(out)


def _decode(raw: bytes) -> TokenClaims | None:
    if not raw or raw[0] >> 4 != TOKEN_VERSION or raw[0] & 0x0F & ~_KNOWN_FLAGS:
        return None
    flags = raw[0] & 0x0F
    count = 4 if flags & _FLAG_MESSAGE_REF else 3
    values: list[int] = []
    pos = 1
    for _ in range(count):
        read = _read_varint(raw, pos)
        if read is None:
            return None
        value, pos = read
        values.append(value)
    if pos != len(raw):
        return None
    try:
        return TokenClaims(
            workspace_id=values[0],
            inbox_id=values[1],
            conversation_id=values[2],
            message_ref=values[3] if count == 4 else None,
            broadcast=bool(flags & _FLAG_BROADCAST),
        )
    except ValueError:
        return None


def _mac(key: bytes, purpose: bytes, raw: bytes) -> bytes:
    signed = b"threadline/email-token/" + purpose + b"/" + raw
    return hmac.new(key, signed, hashlib.sha256).digest()[:SIGNATURE_BYTES]


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a token key must be at least {MIN_KEY_BYTES} bytes")
    return bytes(key)


def _check_keys(keys: Sequence[bytes]) -> list[bytes]:
    if isinstance(keys, bytes | bytearray | str):
        raise TypeError("keys must be a list of keys, current first")
    checked = [_check_key(k) for k in keys]
    if not checked:
        raise ValueError("at least one token key is needed")
    return checked


def _check_domain(domain: str) -> str:
    # ASCII first: str.lower() maps a few other letters (the Kelvin sign)
    # onto ASCII ones.
    value = domain.lower() if isinstance(domain, str) and domain.isascii() else ""
    if len(value) > MAX_DOMAIN or not _DOMAIN.fullmatch(value):
        raise ValueError("domain must be an ASCII host name (letters, digits, '-', '.')")
    return value


def _token(claims: TokenClaims, key: bytes, purpose: bytes) -> str:
    raw = _encode(claims)
    return f"{_b32(raw)}.{_b32(_mac(_check_key(key), purpose, raw))}"


def _verify(token: str, keys: Sequence[bytes], purpose: bytes) -> TokenClaims | None:
    checked = _check_keys(keys)
    payload, _, sig = token.partition(".")
    if not payload or len(payload) > _MAX_PAYLOAD_CHARS or len(sig) != _SIG_CHARS:
        return None
    raw, given = _unb32(payload), _unb32(sig)
    if raw is None or given is None or not raw or raw[0] >> 4 != TOKEN_VERSION:
        return None
    # Every key is tried, so how long this takes says nothing about which
    # one (if any) matched.
    valid = False
    for key in checked:
        valid |= hmac.compare_digest(_mac(key, purpose, raw), given)
    return _decode(raw) if valid else None


# -- Message-ID -------------------------------------------------------------


def make_message_id(claims: TokenClaims, *, key: bytes, domain: str) -> str:
    """The `Message-ID` header value for one outbound message, angle
    brackets included: `<tl.{payload}.{sig}@{domain}>`.

    `claims.message_ref` is required: the conversation id and the message's
    own id (or seq) together make it unique, and sending the same message
    again (a retry) gives the same Message-ID, as it should.
    """
    if claims.message_ref is None:
        raise ValueError("a Message-ID needs message_ref to be unique per message")
    host = _check_domain(domain)
    return f"<{MESSAGE_ID_PREFIX}{_token(claims, key, _PURPOSE_MESSAGE_ID)}@{host}>"


def _message_id_token(msgid: str) -> str | None:
    """The `{payload}.{sig}` part of something shaped like our Message-ID,
    case folded, or None."""
    if not isinstance(msgid, str) or len(msgid) > MAX_PARSE_LENGTH or not msgid.isascii():
        return None
    value = msgid.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    left, at, right = value.lower().rpartition("@")
    if not at or not right or not left.startswith(MESSAGE_ID_PREFIX):
        return None
    token = left[len(MESSAGE_ID_PREFIX) :]
    payload, dot, sig = token.partition(".")
    if not dot or not _B32.fullmatch(payload) or not _B32.fullmatch(sig):
        return None
    return token


def looks_like_message_id_token(msgid: str) -> bool:
    """Whether `msgid` has the shape of one of our Message-IDs, signature
    unchecked: a reference that looks like ours but does not verify is a
    forgery (or made with a key long retired) worth reporting."""
    return _message_id_token(msgid) is not None


def parse_message_id_token(msgid: str, keys: Sequence[bytes]) -> TokenClaims | None:
    """The claims of one of our Message-IDs (with or without its angle
    brackets, in any letter case), or None when it is not ours, is
    malformed, or its signature does not verify with any of `keys`.
    Never raises for bad input; raises only for bad `keys`."""
    token = _message_id_token(msgid)
    if token is None:
        _check_keys(keys)
        return None
    return _verify(token, keys, _PURPOSE_MESSAGE_ID)


# -- reply address ----------------------------------------------------------


def make_reply_address(claims: TokenClaims, *, key: bytes, domain: str) -> str:
    """The `Reply-To` address `reply+{payload}.{sig}@{domain}` (a bare
    addr-spec, no display name). Its local part is at most 64 characters
    and the address at most 254, whatever the ids; a domain so long that
    the address would not fit is refused (ValueError)."""
    host = _check_domain(domain)
    local = REPLY_PREFIX + _token(claims, key, _PURPOSE_REPLY)
    address = f"{local}@{host}"
    if len(local) > MAX_LOCAL_PART or len(address) > MAX_ADDRESS:
        raise ValueError("the reply domain is too long for an address")
    return address


def _addr_spec(address: str) -> str:
    """`local@domain` out of `Name <local@domain>`, `<local@domain>` or a
    bare address, with a quoted local part unquoted; lower-cased."""
    value = address.strip()
    if value.endswith(">") and "<" in value:
        value = value[value.rindex("<") + 1 : -1].strip()
    local, at, domain = value.rpartition("@")
    if at and len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        value = f"{local[1:-1]}@{domain}"
    return value.lower()


def _reply_token(address: str, domains: Collection[str] | None) -> str | None:
    if not isinstance(address, str) or len(address) > MAX_PARSE_LENGTH:
        return None
    if not address.isascii():  # our addresses are; lower() could make some so
        return None
    local, at, domain = _addr_spec(address).rpartition("@")
    if not at or not local.startswith(REPLY_PREFIX):
        return None
    if domains is not None and domain not in {d.lower() for d in domains}:
        return None
    token = local[len(REPLY_PREFIX) :]
    payload, dot, sig = token.partition(".")
    if not dot or not _B32.fullmatch(payload) or not _B32.fullmatch(sig):
        return None
    return token


def looks_like_reply_address(address: str, *, domains: Collection[str] | None = None) -> bool:
    """Whether `address` has the shape of one of our reply addresses
    (on one of `domains`, if given), signature unchecked."""
    return _reply_token(address, domains) is not None


def parse_reply_address(
    address: str, keys: Sequence[bytes], *, domains: Collection[str] | None = None
) -> TokenClaims | None:
    """The claims of one of our reply addresses (bare, in angle brackets or
    with a display name; in any letter case), or None when it is not ours,
    is malformed, is on a domain outside `domains` (when given), or its
    signature does not verify with any of `keys`. Never raises for bad
    input; raises only for bad `keys`."""
    token = _reply_token(address, domains)
    if token is None:
        _check_keys(keys)
        return None
    return _verify(token, keys, _PURPOSE_REPLY)
