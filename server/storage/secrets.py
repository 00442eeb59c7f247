"""Hashing and encryption of stored secrets.

Tokens the server only has to recognise (session cookies, API tokens) are
stored as SHA-256: they are long random strings, so a slow hash buys
nothing. Secrets the server must read back (a widget's HMAC key, SMTP
passwords) are encrypted with AES-GCM under a key derived from the server's
secret key. Passwords use argon2.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_hasher = PasswordHasher()
# A valid hash of a random password, verified against when the account does
# not exist so that timing does not reveal which emails are registered.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token(prefix: str) -> str:
    """A random bearer credential (256 bits) with a readable prefix."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SecretBox:
    """Encrypts and decrypts small secrets with the server's key."""

    def __init__(self, secret_key: str) -> None:
        key = hashlib.sha256(b"threadline-secretbox\x00" + secret_key.encode()).digest()
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), None)
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, token: str) -> str:
        raw = base64.urlsafe_b64decode(token.encode())
        return self._aead.decrypt(raw[:12], raw[12:], None).decode()
