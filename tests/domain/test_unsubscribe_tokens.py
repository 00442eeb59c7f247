"""Unsubscribe tokens are read only in the one spelling we wrote: a link
with other characters, or other padding bits, is not ours."""

from __future__ import annotations

import string

from server.domain.unsubscribe import make_unsubscribe_token, parse_unsubscribe_token

KEY = b"k" * 32


def test_the_token_we_wrote_reads_back() -> None:
    token = make_unsubscribe_token(7, " Pat@Customer.Test ", key=KEY)
    assert parse_unsubscribe_token(token, [b"old key", KEY]) == (7, "pat@customer.test")


def test_other_spellings_of_the_same_bytes_are_refused() -> None:
    token = make_unsubscribe_token(7, "pat@customer.test", key=KEY)
    body, sig = token.split(".")
    # The last character of 16 bytes in base64 carries 4 unused bits:
    # flipping its lowest one spells the same signature.
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    padded_differently = sig[:-1] + alphabet[alphabet.index(sig[-1]) ^ 1]
    spellings = [
        f"{body}.{padded_differently}",
        f"{body}.{sig}==",
        f"{body[:4]}!{body[4:]}.{sig}",  # a character the decoder would skip
        f"{body}.{sig[:8]}\n{sig[8:]}",
        f"{body}={'.'}{sig}",
    ]
    for spelling in spellings:
        assert parse_unsubscribe_token(spelling, [KEY]) is None, spelling
