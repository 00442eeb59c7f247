"""Promo codes a touchpoint hands out: generated in batches, or uploaded as
a file of codes a shop already issued (TOUCHPOINTS.md, rule 4 reserves one
per send).

Codes are case-insensitive: a customer types them, so every code is kept
and compared in its normal form (surrounding space stripped, ASCII letters
upper-cased). Generated codes use an alphabet without the characters that
read alike (0/O, 1/I), so one read off a phone screen is typed right.

Pure: the randomness is a parameter (callers pass `secrets.randbelow`),
and the uploaded file arrives as text.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from server.domain.errors import InvalidInput

# No 0/O and no 1/I. L stays: codes are shown upper-case, where L and 1
# differ, and 32 characters make exactly 5 bits each.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
MAX_PREFIX = 20
MIN_LENGTH, MAX_LENGTH = 6, 20
MAX_CODES = 100_000
MAX_CODE_LENGTH = 64
_PREFIX = re.compile(rf"[A-Z0-9-]{{0,{MAX_PREFIX}}}")
# Checked before upper-casing: "ß".upper() is "SS", which would pass.
_CODE = re.compile(r"[A-Za-z0-9_-]+")
_HEADER = "CODE"


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def normalize_code(code: str) -> str:
    """The form a code is stored and matched in: stripped, ASCII letters
    upper-cased (and only those, so a look-alike letter never turns into
    a different valid code)."""
    return "".join(c.upper() if "a" <= c <= "z" else c for c in code.strip())


def generate_codes(
    prefix: str, count: int, *, length: int, randbelow: Callable[[int], int]
) -> list[str]:
    """`count` distinct codes, each `prefix` (normalized; A-Z, 0-9 and -,
    at most 20) followed by `length` random characters from ALPHABET.

    With the shortest length, 32**6 is about a billion codes, so a batch
    of 100000 sees a few collisions; those are drawn again. A `randbelow`
    that keeps repeating itself is an error, not an endless loop.
    """
    prefix = normalize_code(prefix)
    if not _PREFIX.fullmatch(prefix):
        raise _fail("prefix", f"must be at most {MAX_PREFIX} of A-Z, 0-9 and -")
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise _fail("length", f"must be between {MIN_LENGTH} and {MAX_LENGTH}")
    if not 1 <= count <= MAX_CODES:
        raise _fail("count", f"must be between 1 and {MAX_CODES}")
    codes: dict[str, None] = {}  # a set that keeps the order drawn
    draws = 0
    while len(codes) < count:
        draws += 1
        if draws > 2 * count + 100:
            raise ValueError("randbelow keeps repeating itself")
        body = "".join(ALPHABET[randbelow(len(ALPHABET))] for _ in range(length))
        codes[prefix + body] = None
    return list(codes)


def parse_code_csv(text: str, field: str = "file") -> list[str]:
    """The codes in an uploaded file, normalized, without duplicates, in
    file order: one per line, or the first column of a CSV whose first row
    may be a header named `code`. Blank lines are skipped; anything else
    wrong names its line (`file: line 7: ...`)."""
    codes: dict[str, None] = {}
    # strict: an unclosed quote is an error, not a code swallowing the rest.
    reader = csv.reader(text.removeprefix("\ufeff").splitlines(), strict=True)
    first = True
    try:
        for row in reader:
            line = reader.line_num
            cell = row[0].strip() if row else ""
            if not cell and not any(c.strip() for c in row):
                continue  # a blank line
            if first and normalize_code(cell) == _HEADER:
                first = False
                continue
            first = False
            codes[_check_code(cell, field, line)] = None
            if len(codes) > MAX_CODES:
                raise _fail(field, f"has more than {MAX_CODES} codes")
    except csv.Error as error:
        raise _fail(field, f"line {reader.line_num}: not valid CSV ({error})") from None
    if not codes:
        raise _fail(field, "has no codes")
    return list(codes)


def _check_code(cell: str, field: str, line: int) -> str:
    where = f"line {line}:"
    if not cell:
        raise _fail(field, f"{where} the first column is empty")
    if len(cell) > MAX_CODE_LENGTH:
        raise _fail(field, f"{where} a code has at most {MAX_CODE_LENGTH} characters")
    if not _CODE.fullmatch(cell):
        raise _fail(field, f"{where} {cell[:20]!r} has characters other than A-Z, 0-9, - and _")
    return normalize_code(cell)


def expiry(sent_at: datetime, valid_days: int | None) -> datetime | None:
    """When a code sent at `sent_at` stops being valid (UTC): `valid_days`
    whole days of 24 h later; None when it does not expire."""
    if sent_at.utcoffset() is None:
        raise ValueError("sent_at must be an aware datetime")
    if valid_days is None:
        return None
    if valid_days < 1:
        raise ValueError("valid_days must be at least 1")
    return sent_at.astimezone(UTC) + timedelta(days=valid_days)
