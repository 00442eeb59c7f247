"""Regular expressions an admin may give a routing rule, bounded so one
can't stall the transaction that routes a message.

Python's `re` has no timeout, and the work it may do grows with how much
it can backtrack: `(a+)+b` is exponential in the text's length, and even
`\\d+\\D+\\d+z` is polynomial (each unbounded repeat multiplies the work
by the text's length). A thread can't be interrupted and a subprocess is
I/O, so instead of a clock the bound is on the pattern and the text:

- the pattern is at most MAX_PATTERN characters, and compiles;
- only the first MAX_TEXT characters of a message are searched (a
  routing rule reads how a message starts, not a pasted log);
- no backreferences (`\\1`, `(?P=name)`): matching with them is NP-hard;
- no repeated group that itself holds a repeat with a choice or an
  alternation (`(a+)+`, `(a|ab)*`, `(\\w+\\s?){2,5}`): the classic
  catastrophic shapes;
- the product of every repeat's number of choices (`?` is 2, `{2,5}` is
  4, an unbounded one is MAX_TEXT) is at most MAX_CHOICES: one unbounded
  repeat and a little more (`https?://\\S+`), or bounded ones only.

Together these keep a search near MAX_TEXT * MAX_CHOICES steps of the
regex engine's inner loop: the worst patterns these rules let through
(`\\w*a?a?x`, `a{0,89}a{0,89}x` over 2,000 "a"s) took 30-70 ms. The scanner
below reads the pattern the way `re` does for everything that matters to
these rules (escapes, classes, groups, repeats); anything it does not
understand is left for `re.compile` to accept or refuse.
"""

from __future__ import annotations

import dataclasses
import re

from server.domain.errors import InvalidInput

MAX_PATTERN = 200
# Measured on CPython 3.11: one unbounded repeat that fails at every start
# (`\w*x` over "aaa...") costs 0.2 s over 10,000 characters and 7 ms over
# 2,000, and the cost grows with the square of the length; so 2,000.
MAX_TEXT = 2_000
MAX_CHOICES = 4 * MAX_TEXT
_BRACES = re.compile(r"\{(\d*)(,?)(\d*)\}")


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def _repeat_at(pattern: str, i: int) -> tuple[int, int | None, int] | None:
    """The repeat starting at `i` as (min, max or None for unbounded, its
    length), None when there is none (a `{` that is not a repeat is a
    literal in Python)."""
    ch = pattern[i]
    low: int
    high: int | None
    if ch in "*+?":
        low, high, length = {"*": (0, None, 1), "+": (1, None, 1), "?": (0, 1, 1)}[ch]
    else:
        m = _BRACES.match(pattern, i) if ch == "{" else None
        if m is None or (not m[1] and not (m[2] and m[3])):
            return None
        low = int(m[1] or 0)
        high = None if m[2] and not m[3] else int(m[3] or m[1])
        length = m.end() - i
    # A lazy (`*?`) or possessive (`*+`) marker belongs to the repeat.
    if i + length < len(pattern) and pattern[i + length] in "?+":
        length += 1
    return low, high, length


@dataclasses.dataclass
class _Scanner:
    """One left-to-right reading of a pattern. `risky` has an entry per
    open group (the whole pattern first): whether it holds a repeat with
    a choice, or an alternation."""

    pattern: str
    field: str
    risky: list[bool] = dataclasses.field(default_factory=lambda: [False])
    choices: int = 1
    # Whether the atom just read can take a repeat, and whether it was a
    # risky group.
    atom: bool = False
    atom_risky: bool = False

    def run(self) -> None:
        i = 0
        while i < len(self.pattern):
            repeat = _repeat_at(self.pattern, i) if self.atom else None
            i = self.repeat(i, *repeat) if repeat is not None else self.token(i)

    def repeat(self, i: int, low: int, high: int | None, length: int) -> int:
        if self.atom_risky and (high is None or high > 1):
            raise _fail(self.field, "a repeated group must not hold a repeat or an alternation")
        if high != low:
            self.choices *= MAX_TEXT if high is None else high - low + 1
            self.risky[-1] = True
        if self.choices > MAX_CHOICES:
            raise _fail(
                self.field,
                "too many repeats with a choice: use at most one *, + or {n,}, "
                "and few, small {m,n} and ? beside it",
            )
        self.atom = self.atom_risky = False
        return i + length

    def token(self, i: int) -> int:
        """Read the token at `i`; the index after it."""
        p, ch = self.pattern, self.pattern[i]
        self.atom, self.atom_risky = True, False
        if ch == "\\":
            nxt = p[i + 1 : i + 2]
            if (nxt.isdigit() and nxt != "0") or nxt == "g":
                raise _fail(self.field, "backreferences are not allowed")
            return i + 2
        if ch == "[":
            return _class_end(p, i)
        if p.startswith("(?P=", i):
            raise _fail(self.field, "backreferences are not allowed")
        if p.startswith("(?#", i):
            self.atom = False
            end = p.find(")", i)
            return len(p) if end < 0 else end + 1
        if ch == "(":
            self.risky.append(False)
            self.atom = False
        elif ch == ")" and len(self.risky) > 1:
            inner = self.risky.pop()
            self.atom_risky = inner
            self.risky[-1] = self.risky[-1] or inner
        elif ch == "|":
            self.risky[-1] = True
            self.atom = False
        elif ch in "^$":
            self.atom = False
        return i + 1


def check_pattern(pattern: str, field: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """`pattern` compiled, or InvalidInput naming `field` with the rule it
    breaks (see the module docstring)."""
    if not 1 <= len(pattern) <= MAX_PATTERN or "\x00" in pattern:
        raise _fail(field, f"must be a pattern of 1 to {MAX_PATTERN} characters")
    _Scanner(pattern, field).run()
    try:
        return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except (re.error, RecursionError, OverflowError) as exc:
        raise _fail(field, f"is not a valid regular expression ({exc})") from None


def _class_end(pattern: str, i: int) -> int:
    """The index just past the character class opening at `i`."""
    j = i + 1
    if pattern[j : j + 1] == "^":
        j += 1
    if pattern[j : j + 1] == "]":
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 2 if pattern[j] == "\\" else 1
    return j + 1


def search(compiled: re.Pattern[str], text: str) -> bool:
    """Whether a pattern checked by `check_pattern` occurs in the first
    MAX_TEXT characters of `text`."""
    return compiled.search(text[:MAX_TEXT]) is not None
