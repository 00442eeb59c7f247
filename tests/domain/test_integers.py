"""The one reading of an integer a caller typed (server.domain.integers)."""

from __future__ import annotations

import pytest

from server.domain.errors import InvalidInput
from server.domain.integers import INT64_MAX, INT64_MIN, parse_int


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0),
        ("12", 12),
        ("007", 7),
        ("-3", -3),
        (str(INT64_MAX), INT64_MAX),
        (str(INT64_MIN), INT64_MIN),
    ],
)
def test_ascii_digits_with_an_optional_minus_are_read(raw: str, expected: int) -> None:
    assert parse_int(raw, "n") == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "-",
        "²",  # str.isdigit() says yes, int() refuses: this was a 500
        "\uff11\uff12",  # full-width: int() reads 12
        "١٢",  # Arabic-Indic: int() reads 12
        "1\n",
        "\n1",
        " 1",
        "1 ",
        "+1",
        "--1",
        "1_000",
        "0x10",
        "1e3",
        "1.0",
        str(INT64_MAX + 1),
        str(INT64_MIN - 1),
        "9" * 30,
        "0" * 30 + "1",
    ],
)
def test_anything_else_is_invalid_input_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_int(raw, "limit")
    assert info.value.field == "limit"


def test_the_fields_bounds_apply_within_64_bits() -> None:
    assert parse_int("5", "limit", minimum=1, maximum=5) == 5
    for raw in ("0", "6", "-1"):
        with pytest.raises(InvalidInput, match="between 1 and 5"):
            parse_int(raw, "limit", minimum=1, maximum=5)
    # Bounds wider than 64 bits are narrowed to them.
    with pytest.raises(InvalidInput):
        parse_int(str(INT64_MAX + 1), "n", maximum=2**70)
