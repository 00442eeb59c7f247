"""Promo codes: generated batches are distinct, drawn from the unambiguous
alphabet with the randomness given; uploaded files are read leniently
(header, extra columns, case, duplicates) and refused by line otherwise."""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.domain.errors import InvalidInput
from server.domain.promo_codes import (
    ALPHABET,
    expiry,
    generate_codes,
    normalize_code,
    parse_code_csv,
)


def seeded(seed: int = 7) -> random.Random:
    return random.Random(seed)


# -- generating -------------------------------------------------------------


def test_the_alphabet_has_no_look_alikes() -> None:
    assert len(ALPHABET) == len(set(ALPHABET)) == 32
    assert not set("0O1I") & set(ALPHABET)


def test_codes_are_the_prefix_and_random_characters() -> None:
    codes = generate_codes("BDAY-", 500, length=8, randbelow=seeded().randrange)
    assert len(codes) == len(set(codes)) == 500
    for code in codes:
        assert code.startswith("BDAY-")
        assert len(code) == 13
        assert set(code[5:]) <= set(ALPHABET)
    # Every character of the alphabet turns up, not just a corner of it.
    assert set("".join(c[5:] for c in codes)) == set(ALPHABET)


def test_the_randomness_is_the_callers() -> None:
    first = generate_codes("", 20, length=6, randbelow=seeded(1).randrange)
    assert first == generate_codes("", 20, length=6, randbelow=seeded(1).randrange)
    assert first != generate_codes("", 20, length=6, randbelow=seeded(2).randrange)
    assert len(generate_codes("X", 3, length=20, randbelow=secrets.randbelow)[0]) == 21


def test_a_lower_case_prefix_is_normalized() -> None:
    assert generate_codes(" vip-", 1, length=6, randbelow=lambda n: 0) == ["VIP-AAAAAA"]


def test_collisions_are_drawn_again() -> None:
    # Draws repeat the first code twice before moving on.
    script: Iterator[int] = iter([0] * 6 + [0] * 6 + [0] * 6 + [1] * 6 + [2] * 6)
    codes = generate_codes("", 3, length=6, randbelow=lambda n: next(script))
    assert codes == ["AAAAAA", "BBBBBB", "CCCCCC"]


def test_a_full_batch_at_the_shortest_length() -> None:
    codes = generate_codes("", 100_000, length=6, randbelow=seeded(3).randrange)
    assert len(set(codes)) == 100_000


def test_a_randomness_that_repeats_itself_is_an_error() -> None:
    with pytest.raises(ValueError, match="repeating"):
        generate_codes("", 2, length=6, randbelow=lambda n: 0)


@pytest.mark.parametrize(
    ("prefix", "count", "length", "field"),
    [
        ("BDAY_", 1, 8, "prefix"),
        ("BDAY!", 1, 8, "prefix"),
        ("ÄRGER", 1, 8, "prefix"),
        ("P" * 21, 1, 8, "prefix"),
        ("", 0, 8, "count"),
        ("", 100_001, 8, "count"),
        ("", 1, 5, "length"),
        ("", 1, 21, "length"),
    ],
)
def test_bad_batches_name_the_field(prefix: str, count: int, length: int, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        generate_codes(prefix, count, length=length, randbelow=seeded().randrange)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ")


def test_the_longest_prefix_is_fine() -> None:
    assert generate_codes("P" * 20, 1, length=6, randbelow=lambda n: 0) == ["P" * 20 + "AAAAAA"]


# -- normalizing ------------------------------------------------------------


def test_codes_are_case_insensitive() -> None:
    assert normalize_code("  summer-25\t") == "SUMMER-25"
    assert normalize_code("Vip_2026") == "VIP_2026"
    # Only ASCII letters change: "ß" must not become the valid "SS".
    assert normalize_code("straße") == "STRAßE"


# -- uploading --------------------------------------------------------------


def test_one_code_per_line() -> None:
    assert parse_code_csv("abc123\nDEF-456\n\n  ghi_789  \r\n") == ["ABC123", "DEF-456", "GHI_789"]


def test_the_first_column_of_a_csv_with_a_header() -> None:
    text = '\ufeffCode,discount,notes\nSAVE10,10%,"first, best"\nsave20,20%,\n'
    assert parse_code_csv(text) == ["SAVE10", "SAVE20"]
    assert parse_code_csv("code\nA1\n") == ["A1"]
    assert parse_code_csv('"code"\n"A1"\n') == ["A1"]


def test_only_the_first_row_can_be_a_header() -> None:
    assert parse_code_csv("A1\ncode\n") == ["A1", "CODE"]
    assert parse_code_csv("\n\ncode\nA1\n") == ["A1"]


def test_duplicates_are_dropped_in_file_order() -> None:
    assert parse_code_csv("B2\na1\nb2\nA1\nC3\n") == ["B2", "A1", "C3"]


def test_a_code_of_64_characters_and_the_most_codes() -> None:
    assert parse_code_csv("x" * 64) == ["X" * 64]
    text = "\n".join(f"C{n}" for n in range(100_000))
    assert len(parse_code_csv(text)) == 100_000
    # Duplicates do not count against the limit.
    assert len(parse_code_csv(text + "\nC0\nc1\n")) == 100_000


def refused(text: str, field: str = "file") -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_code_csv(text, field)
    assert caught.value.field == field
    return caught.value.message


def test_bad_files_name_the_line() -> None:
    assert (
        refused("A1\nB2\nC 3\n")
        == "file: line 3: 'C 3' has characters other than A-Z, 0-9, - and _"
    )
    assert refused("code\nA1\n\n\n\n\nstraße\n") == (
        "file: line 7: 'straße' has characters other than A-Z, 0-9, - and _"
    )
    assert refused("A1\n" + "x" * 65) == "file: line 2: a code has at most 64 characters"
    assert refused("A1\n,10%\n") == "file: line 2: the first column is empty"
    assert refused("A1;10%\n") == (
        "file: line 1: 'A1;10%' has characters other than A-Z, 0-9, - and _"
    )
    assert refused('A1\n"B2\n', "upload.codes").startswith("upload.codes: line 2: not valid CSV")


@pytest.mark.parametrize("text", ["", "\n\n", "code\n", "\ufeff", "  \n\t\n", "code,discount\n\n"])
def test_a_file_without_codes_is_refused(text: str) -> None:
    assert refused(text) == "file: has no codes"


def test_too_many_codes_are_refused() -> None:
    text = "\n".join(f"C{n}" for n in range(100_001))
    assert refused(text) == "file: has more than 100000 codes"


# -- expiry -----------------------------------------------------------------


def test_expiry() -> None:
    sent = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    assert expiry(sent, None) is None
    assert expiry(sent, 1) == sent + timedelta(days=1)
    assert expiry(sent, 30) == datetime(2026, 4, 27, 12, 0, tzinfo=UTC)
    berlin = expiry(sent.astimezone(ZoneInfo("Europe/Berlin")), 1)
    assert berlin == sent + timedelta(days=1)
    assert berlin is not None and berlin.tzinfo is UTC
    for bad in (0, -1):
        with pytest.raises(ValueError):
            expiry(sent, bad)
    with pytest.raises(ValueError, match="aware"):
        expiry(datetime(2026, 1, 1), 7)
