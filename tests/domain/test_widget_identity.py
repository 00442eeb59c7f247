"""Widget identity rules (PROTOCOLS.md P3): HMAC identity hashes and HS256
JWTs, built here with real HMACs, checked against a frozen `now`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.domain.errors import Forbidden
from server.domain.widget_identity import (
    identity_hash,
    identity_token,
    origin_allowed,
    verify_identity_hash,
    verify_identity_token,
)

SECRET = "3f1c" * 16
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(
    claims: dict[str, Any],
    *,
    secret: str = SECRET,
    header: dict[str, Any] | None = None,
) -> str:
    head = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "user-42",
        "email": "ann@shop.test",
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
    }
    return {k: v for k, v in {**base, **over}.items() if v is not None}


def test_identity_hash_is_hex_hmac_sha256_of_the_user_id() -> None:
    expected = hmac.new(SECRET.encode(), b"user-42", hashlib.sha256).hexdigest()
    assert identity_hash(SECRET, "user-42") == expected
    assert verify_identity_hash(SECRET, "user-42", expected)
    assert verify_identity_hash(SECRET, "user-42", expected.upper())


@pytest.mark.parametrize(
    "given",
    [
        hmac.new(SECRET.encode(), b"user-43", hashlib.sha256).hexdigest(),  # another user
        hmac.new(b"other", b"user-42", hashlib.sha256).hexdigest(),  # another secret
        "",
        "zz",
        "é" * 64,  # non-ASCII must not crash compare_digest
    ],
)
def test_a_wrong_identity_hash_is_refused(given: str) -> None:
    assert not verify_identity_hash(SECRET, "user-42", given)


def test_a_valid_token_gives_its_claims() -> None:
    got = verify_identity_token(jwt(claims()), SECRET, NOW)
    assert (got.user_id, got.email) == ("user-42", "ann@shop.test")
    assert got.expires_at == NOW + timedelta(minutes=5)


def _none_token() -> str:
    head = b64(json.dumps({"alg": "none"}).encode())
    return f"{head}.{b64(json.dumps(claims()).encode())}."


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        pytest.param(_none_token(), "HS256", id="alg-none"),
        pytest.param(jwt(claims(), header={"alg": "HS512"}), "HS256", id="other-alg"),
        pytest.param(jwt(claims(), header={"typ": "JWT"}), "HS256", id="no-alg"),
        pytest.param(jwt(claims(), secret="not the secret"), "signature", id="forged"),
        pytest.param(
            jwt(claims(exp=int((NOW - timedelta(seconds=1)).timestamp()))), "expired", id="expired"
        ),
        pytest.param(jwt(claims(exp=int(NOW.timestamp()))), "expired", id="expires-now"),
        pytest.param(jwt(claims(exp=None)), "'exp'", id="no-exp"),
        pytest.param(jwt(claims(exp="tomorrow")), "'exp'", id="exp-not-a-number"),
        pytest.param(jwt(claims(exp=True)), "'exp'", id="exp-bool"),
        pytest.param(jwt(claims(exp=float("nan"))), "'exp'", id="exp-nan"),
        pytest.param(jwt(claims(exp=float("inf"))), "'exp'", id="exp-infinite"),
        pytest.param(jwt(claims(sub=None)), "'sub'", id="no-sub"),
        pytest.param(jwt(claims(sub=42)), "'sub'", id="sub-not-a-string"),
        pytest.param(jwt(claims(email=None)), "'email'", id="no-email"),
        pytest.param(
            jwt(claims(nbf=int((NOW + timedelta(minutes=1)).timestamp()))),
            "not valid yet",
            id="nbf",
        ),
        pytest.param(jwt(claims(), header={"alg": "HS256", "crit": ["x"]}), "critical", id="crit"),
        pytest.param("a.b", "JSON web token", id="two-parts"),
        pytest.param("a.b.c.d", "JSON web token", id="four-parts"),
        pytest.param("!!.??.**", "base64url", id="not-base64"),
        pytest.param(b64(b"[1]") + ".e30.", "JSON web token", id="header-not-object"),
        pytest.param("x" * 5000, "too long", id="huge"),
    ],
)
def test_a_bad_token_is_refused_naming_the_field(token: str, reason: str) -> None:
    with pytest.raises(Forbidden) as caught:
        verify_identity_token(token, SECRET, NOW)
    assert caught.value.field == "identity_token"
    assert reason in caught.value.message


def test_a_tampered_payload_breaks_the_signature() -> None:
    head, _body, sig = jwt(claims()).split(".")
    forged_body = b64(json.dumps(claims(sub="admin")).encode())
    with pytest.raises(Forbidden, match="signature"):
        verify_identity_token(f"{head}.{forged_body}.{sig}", SECRET, NOW)


@pytest.mark.parametrize(
    ("origin", "setting", "allowed"),
    [
        ("https://evil.example", None, True),
        ("https://evil.example", [], True),
        (None, ["https://shop.example"], True),
        ("https://shop.example", ["https://shop.example"], True),
        ("HTTPS://Shop.Example", ["https://shop.example/"], True),
        ("https://shop.example", "https://a.example, https://shop.example", True),
        ("https://evil.example", ["https://shop.example"], False),
        ("http://shop.example", ["https://shop.example"], False),
        ("https://shop.example.evil.example", "https://shop.example", False),
    ],
)
def test_allowed_domains(origin: str | None, setting: Any, allowed: bool) -> None:
    assert origin_allowed(origin, setting) is allowed


def test_identity_token_is_what_the_verifier_accepts() -> None:
    token = identity_token(SECRET, "user-42", "ann@shop.test", NOW + timedelta(minutes=5))
    got = verify_identity_token(token, SECRET, NOW)
    assert (got.user_id, got.email) == ("user-42", "ann@shop.test")
    assert got.expires_at == NOW + timedelta(minutes=5)


def test_identity_token_refused_when_tampered_expired_or_signed_with_another_secret() -> None:
    token = identity_token(SECRET, "user-42", "ann@shop.test", NOW + timedelta(minutes=5))
    head, _body, sig = token.split(".")
    forged = b64(json.dumps({**claims(), "email": "eve@shop.test"}).encode())
    with pytest.raises(Forbidden, match="bad signature"):
        verify_identity_token(f"{head}.{forged}.{sig}", SECRET, NOW)
    with pytest.raises(Forbidden, match="bad signature"):
        verify_identity_token(token, "another" + SECRET, NOW)
    with pytest.raises(Forbidden, match="expired"):
        verify_identity_token(token, SECRET, NOW + timedelta(minutes=5))
