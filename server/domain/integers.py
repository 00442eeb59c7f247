"""The one reading of a whole number a caller typed as text: a path id, a
query parameter, a websocket parameter, a header.

Python's own `int()` is too lenient for this: it takes surrounding
whitespace (`" 1"`, `"1\\n"`), a `+`, underscores (`"1_0"`) and any Unicode
decimal digit (full-width "12" is 12), while `str.isdigit()` says yes to digits
`int()` then refuses (`"²"`), which is how a check-then-convert pair ends
in a 500. Here a number is ASCII digits with an optional leading '-',
nothing else, within signed 64 bits and the field's own bounds.
"""

from __future__ import annotations

import re

from server.domain.errors import InvalidInput

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# [0-9] is ASCII only whatever the flags; 19 digits hold every int64, and
# the length cap keeps int() from ever seeing a long string.
_WHOLE = re.compile(r"-?[0-9]{1,19}")


def parse_int(raw: str, field: str, *, minimum: int = INT64_MIN, maximum: int = INT64_MAX) -> int:
    """`raw` as an int, or an InvalidInput naming `field`."""
    if not _WHOLE.fullmatch(raw):
        raise InvalidInput(
            f"{field}: must be a whole number written with the digits 0-9", field=field
        )
    value = int(raw)
    low, high = max(minimum, INT64_MIN), min(maximum, INT64_MAX)
    if not low <= value <= high:
        raise InvalidInput(f"{field}: must be between {low} and {high}", field=field)
    return value
