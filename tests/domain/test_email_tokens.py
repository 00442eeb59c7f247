"""Signed Message-IDs and reply addresses (PROTOCOLS.md P4): they round-trip,
refuse any change to the token, a wrong key and the other kind of token,
survive case-folding MTAs, rotate keys, and stay header-safe and within
RFC 5321/5322 lengths whatever the ids."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.email_tokens import (
    MAX_ADDRESS,
    MAX_ID,
    MAX_LOCAL_PART,
    TokenClaims,
    looks_like_message_id_token,
    looks_like_reply_address,
    make_message_id,
    make_reply_address,
    parse_message_id_token,
    parse_reply_address,
)

KEY = b"k" * 32
OLD_KEY = b"o" * 32
OTHER_KEY = b"x" * 32
CLAIMS = TokenClaims(workspace_id=3, inbox_id=7, conversation_id=1234, message_ref=56)
B32 = "abcdefghijklmnopqrstuvwxyz234567"


def msgid(claims: TokenClaims = CLAIMS, key: bytes = KEY) -> str:
    return make_message_id(claims, key=key, domain="mail.example.test")


def reply(claims: TokenClaims = CLAIMS, key: bytes = KEY) -> str:
    return make_reply_address(claims, key=key, domain="reply.example.test")


# -- shape and round trip -----------------------------------------------------


def test_message_id_has_the_documented_shape_and_round_trips() -> None:
    value = msgid()
    assert re.fullmatch(r"<tl\.[a-z2-7]+\.[a-z2-7]{16}@mail\.example\.test>", value)
    assert parse_message_id_token(value, [KEY]) == CLAIMS
    assert parse_message_id_token(value[1:-1], [KEY]) == CLAIMS  # without brackets
    assert parse_message_id_token(f"  {value}\t", [KEY]) == CLAIMS


def test_reply_address_has_the_documented_shape_and_round_trips() -> None:
    value = reply()
    assert re.fullmatch(r"reply\+[a-z2-7]+\.[a-z2-7]{16}@reply\.example\.test", value)
    assert parse_reply_address(value, [KEY]) == CLAIMS
    assert parse_reply_address(f"Support <{value}>", [KEY]) == CLAIMS
    assert parse_reply_address(f"<{value}>", [KEY]) == CLAIMS


def test_conversation_level_reply_address_and_broadcast_flag_round_trip() -> None:
    claims = TokenClaims(workspace_id=1, inbox_id=1, conversation_id=1, broadcast=True)
    assert parse_reply_address(reply(claims), [KEY]) == claims


def test_tokens_are_deterministic_so_a_retry_keeps_its_message_id() -> None:
    assert msgid() == msgid()
    other = TokenClaims(workspace_id=3, inbox_id=7, conversation_id=1234, message_ref=57)
    assert msgid(other) != msgid()


def test_a_message_id_needs_a_message_ref() -> None:
    with pytest.raises(ValueError, match="message_ref"):
        msgid(TokenClaims(workspace_id=1, inbox_id=1, conversation_id=1))


# -- tampering, keys, purposes --------------------------------------------------


def tampered(value: str, start: int, end: int) -> list[str]:
    """`value` with each character in [start, end) replaced by every other
    base32 character."""
    return [
        value[:i] + c + value[i + 1 :]
        for i in range(start, end)
        for c in B32
        if c != value[i].lower()
    ]


def test_changing_any_character_of_a_message_id_token_is_refused() -> None:
    value = msgid()
    start, end = len("<tl."), value.index("@")
    variants = [v for v in tampered(value, start, end) if v[start:end].count(".") == 1]
    assert len(variants) > 500
    assert all(parse_message_id_token(v, [KEY]) is None for v in variants)


def test_changing_any_character_of_a_reply_token_is_refused() -> None:
    value = reply()
    start, end = len("reply+"), value.index("@")
    variants = [v for v in tampered(value, start, end) if v[start:end].count(".") == 1]
    assert len(variants) > 500
    assert all(parse_reply_address(v, [KEY]) is None for v in variants)


def test_dropping_or_adding_characters_is_refused() -> None:
    value = reply()
    at = value.index("@")
    for broken in (
        value[: at - 1] + value[at:],  # signature one short
        value[:at] + "a" + value[at:],  # signature one long
        value.replace("reply+", "reply+a", 1),
        value.replace(".", "", 1),
        value.replace(".", "..", 1),
    ):
        assert parse_reply_address(broken, [KEY]) is None, broken


def test_a_wrong_key_is_refused() -> None:
    assert parse_message_id_token(msgid(), [OTHER_KEY]) is None
    assert parse_reply_address(reply(), [OTHER_KEY]) is None


def test_keys_rotate_current_first_then_previous() -> None:
    old_msgid, old_reply = msgid(key=OLD_KEY), reply(key=OLD_KEY)
    assert parse_message_id_token(old_msgid, [KEY, OLD_KEY]) == CLAIMS
    assert parse_reply_address(old_reply, [KEY, OLD_KEY]) == CLAIMS
    assert parse_reply_address(reply(), [KEY, OLD_KEY]) == CLAIMS
    # Once the old key is retired, its tokens stop verifying.
    assert parse_message_id_token(old_msgid, [KEY]) is None
    assert parse_reply_address(old_reply, [KEY]) is None


def test_a_message_id_token_is_not_a_reply_token_nor_the_other_way() -> None:
    token = msgid()[len("<tl.") : msgid().index("@")]
    assert parse_reply_address(f"reply+{token}@reply.example.test", [KEY]) is None
    token = reply()[len("reply+") : reply().index("@")]
    assert parse_message_id_token(f"<tl.{token}@mail.example.test>", [KEY]) is None


def hand_made_reply(raw: bytes, key: bytes = KEY) -> str:
    """A reply address built by hand from payload bytes, signed as the
    format says: HMAC-SHA256 over the purpose label and the bytes."""
    sig = hmac.new(key, b"threadline/email-token/reply/" + raw, hashlib.sha256).digest()[:10]

    def b32(b: bytes) -> str:
        return base64.b32encode(b).decode().rstrip("=").lower()

    return f"reply+{b32(raw)}.{b32(sig)}@r.test"


def test_the_payload_is_the_documented_bytes() -> None:
    # Version 1, no flags; ids 3, 7 and 1234 as LEB128 varints.
    raw = bytes([0x10, 3, 7, 0x80 | (1234 & 0x7F), 1234 >> 7])
    assert parse_reply_address(hand_made_reply(raw), [KEY]) == TokenClaims(3, 7, 1234)
    assert hand_made_reply(raw) == make_reply_address(
        TokenClaims(3, 7, 1234), key=KEY, domain="r.test"
    )


@pytest.mark.parametrize(
    "raw",
    [
        bytes([0x20, 3, 7, 0x80 | (1234 & 0x7F), 1234 >> 7]),  # version 2
        bytes([0x00, 3, 7, 0x80 | (1234 & 0x7F), 1234 >> 7]),  # version 0
        bytes([0x14, 3, 7, 5]),  # an unknown flag
        bytes([0x10, 0x83, 0x00, 7, 5]),  # a non-minimal varint: another spelling of 3
        bytes([0x10, 3, 7]),  # a missing id
        bytes([0x10, 3, 7, 5, 9]),  # a trailing byte
        bytes([0x12, 3, 7, 5]),  # the message ref flag without the ref
        bytes([0x10, 0, 7, 5]),  # workspace 0
        bytes([0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 7, 5]),  # beyond MAX_ID
        b"",
    ],
)
def test_signed_but_malformed_payloads_are_refused(raw: bytes) -> None:
    assert parse_reply_address(hand_made_reply(raw), [KEY]) is None


# -- case folding ---------------------------------------------------------------


def test_a_case_folded_reply_address_still_verifies() -> None:
    value = reply()
    local, domain = value.split("@")
    assert parse_reply_address(value.upper(), [KEY]) == CLAIMS
    assert parse_reply_address(f"{local.upper()}@{domain}", [KEY]) == CLAIMS
    assert parse_reply_address(f"{local.title()}@{domain.upper()}", [KEY]) == CLAIMS


def test_a_case_folded_message_id_still_verifies() -> None:
    assert parse_message_id_token(msgid().upper(), [KEY]) == CLAIMS


def test_non_ascii_look_alikes_are_not_folded_into_a_token() -> None:
    # The Kelvin sign lower-cases to an ASCII "k": a token spelled with it
    # would verify if parsing lower-cased before checking for ASCII.
    value = next(
        v
        for n in range(1, 100)
        if "k" in (v := reply(TokenClaims(workspace_id=1, inbox_id=1, conversation_id=n)))
    )
    assert parse_reply_address(value, [KEY]) is not None
    assert parse_reply_address(value.replace("k", "\u212a"), [KEY]) is None
    value = next(
        v
        for n in range(1, 100)
        if "k"
        in (v := msgid(TokenClaims(workspace_id=1, inbox_id=1, conversation_id=1, message_ref=n)))
    )
    assert parse_message_id_token(value, [KEY]) is not None
    assert parse_message_id_token(value.replace("k", "\u212a"), [KEY]) is None


def test_a_quoted_local_part_still_verifies() -> None:
    local, domain = reply().split("@")
    assert parse_reply_address(f'"{local}"@{domain}', [KEY]) == CLAIMS


def test_reply_address_domains_can_be_required() -> None:
    value = reply()
    assert parse_reply_address(value, [KEY], domains=["REPLY.example.test"]) == CLAIMS
    assert parse_reply_address(value, [KEY], domains=["other.test"]) is None
    assert looks_like_reply_address(value, domains=["reply.example.test"])
    assert not looks_like_reply_address(value, domains=["other.test"])


# -- header safety and lengths ----------------------------------------------------


@pytest.mark.parametrize(
    "domain",
    [
        "",
        "mail.test\r\nBcc: x@evil.test",
        "mail.test\n",
        "mail test",
        "mail.test>",
        "-mail.test",
        "mail..test",
        "bücher.test",
        "mail.\u212aelvin.test",  # the Kelvin sign lower-cases to an ASCII k
        "a" * 64 + ".test",
        ".".join(["a" * 60] * 5),
    ],
)
def test_a_domain_that_is_not_a_plain_host_name_is_refused(domain: str) -> None:
    with pytest.raises(ValueError, match="domain"):
        make_message_id(CLAIMS, key=KEY, domain=domain)
    with pytest.raises(ValueError, match="domain"):
        make_reply_address(CLAIMS, key=KEY, domain=domain)


def test_the_domain_is_lower_cased() -> None:
    assert make_reply_address(CLAIMS, key=KEY, domain="Reply.Example.TEST").endswith(
        "@reply.example.test"
    )


def test_a_reply_domain_too_long_for_an_address_is_refused() -> None:
    long_domain = ".".join(["d" * 63] * 3) + "." + "e" * 61  # 253: a valid host name
    with pytest.raises(ValueError, match="too long"):
        make_reply_address(CLAIMS, key=KEY, domain=long_domain)
    assert len(make_message_id(CLAIMS, key=KEY, domain=long_domain)) < 998


def test_the_largest_ids_still_fit_the_rfc_5321_local_part() -> None:
    claims = TokenClaims(MAX_ID, MAX_ID, MAX_ID, message_ref=MAX_ID, broadcast=True)
    address = reply(claims)
    local = address.split("@")[0]
    assert len(local) <= MAX_LOCAL_PART
    assert len(address) <= MAX_ADDRESS
    assert parse_reply_address(address, [KEY]) == claims
    assert parse_message_id_token(msgid(claims), [KEY]) == claims


@pytest.mark.parametrize(
    "fields",
    [
        {"workspace_id": 0},
        {"inbox_id": -1},
        {"conversation_id": MAX_ID + 1},
        {"message_ref": -1},
        {"message_ref": MAX_ID + 1},
        {"workspace_id": True},
        {"conversation_id": 1.0},
        {"broadcast": 1},
    ],
)
def test_claims_out_of_range_are_refused(fields: dict[str, object]) -> None:
    base: dict[str, object] = {"workspace_id": 1, "inbox_id": 1, "conversation_id": 1}
    with pytest.raises(ValueError):
        TokenClaims(**{**base, **fields})  # type: ignore[arg-type]


def test_bad_keys_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        make_reply_address(CLAIMS, key=b"short", domain="r.test")
    with pytest.raises(TypeError, match="list of keys"):
        parse_reply_address(reply(), KEY)  # type: ignore[arg-type]  # a bare key, not a list
    with pytest.raises(ValueError, match="at least one"):
        parse_message_id_token(msgid(), [])
    with pytest.raises(ValueError, match="16 bytes"):
        parse_message_id_token("<abc@x.test>", [b""])


@pytest.mark.parametrize(
    "value",
    [
        "",
        "reply@x.test",
        "reply+@x.test",
        "reply+abc@x.test",
        "reply+abc.def",
        "reply+a.b.c@x.test",
        "reply+ABC.DEF0@x.test",
        "reply+" + "a" * 600 + ".b@x.test",
        "someone@example.test",
        "<tl.@x.test>",
        "<tl.a.b>",
        "<CAF1234@mail.gmail.com>",
        "\x00",
    ],
)
def test_malformed_input_is_none_never_an_error(value: str) -> None:
    assert parse_reply_address(value, [KEY]) is None
    assert parse_message_id_token(value, [KEY]) is None


def test_looks_like_tells_our_shape_without_the_key() -> None:
    assert looks_like_message_id_token(msgid())
    assert looks_like_reply_address(reply())
    assert not looks_like_message_id_token("<CAF1234@mail.gmail.com>")
    assert not looks_like_reply_address("ann@example.test")


# -- properties ---------------------------------------------------------------------

ids = st.integers(min_value=1, max_value=MAX_ID)
claims_strategy = st.builds(
    TokenClaims,
    workspace_id=ids,
    inbox_id=ids,
    conversation_id=ids,
    message_ref=st.none() | st.integers(min_value=0, max_value=MAX_ID),
    broadcast=st.booleans(),
)
SAFE = set(string.ascii_lowercase + string.digits + ".+-@<>")


@settings(max_examples=300)
@given(claims_strategy, st.binary(min_size=16, max_size=64))
def test_reply_addresses_round_trip_and_are_safe(claims: TokenClaims, key: bytes) -> None:
    address = make_reply_address(claims, key=key, domain="reply.example.test")
    assert set(address) <= SAFE
    assert len(address.split("@")[0]) <= MAX_LOCAL_PART
    assert parse_reply_address(address, [key]) == claims
    assert parse_reply_address(address.upper(), [OTHER_KEY, key]) == claims


@settings(max_examples=300)
@given(
    claims_strategy.filter(lambda c: c.message_ref is not None), st.binary(min_size=16, max_size=64)
)
def test_message_ids_round_trip_and_are_safe(claims: TokenClaims, key: bytes) -> None:
    value = make_message_id(claims, key=key, domain="mail.example.test")
    assert set(value) <= SAFE
    assert len(value) <= 120
    assert parse_message_id_token(value, [key]) == claims
    assert parse_message_id_token(value, [OTHER_KEY]) is None or key == OTHER_KEY


@settings(max_examples=300)
@given(claims_strategy, st.integers(min_value=0, max_value=200), st.sampled_from(B32))
def test_any_one_character_change_is_refused(claims: TokenClaims, pos: int, char: str) -> None:
    address = make_reply_address(claims, key=KEY, domain="r.test")
    start, end = len("reply+"), address.index("@")
    i = start + pos % (end - start)
    if address[i] in (".", char):
        return
    assert parse_reply_address(address[:i] + char + address[i + 1 :], [KEY]) is None


@given(st.text(max_size=300))
def test_parsers_never_raise_on_any_text(value: str) -> None:
    assert parse_reply_address(value, [KEY]) is None
    assert parse_message_id_token(value, [KEY]) is None
    assert parse_reply_address("reply+" + value + "@r.test", [KEY]) is None
    assert parse_message_id_token("<tl." + value + "@m.test>", [KEY]) is None
