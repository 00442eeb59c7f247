"""Undoing format=flowed (RFC 3676), which Apple Mail and Thunderbird send.

A line ending in a space continues on the next line; quoted lines carry
their depth as leading ">"; a leading space was added to protect a line
starting with ">" or "From ". Joining the soft breaks gives back paragraph
text, and quote headers wrapped over two lines become one line again.
"""

from __future__ import annotations


def unflow(text: str, *, delsp: bool = False) -> str:
    """Join soft line breaks; quoted lines come back as "> " * depth."""
    out: list[str] = []
    current: list[str] = []
    current_depth = -1
    for raw in text.split("\n"):
        depth = len(raw) - len(raw.lstrip(">"))
        line = raw[depth:]
        if line.startswith(" "):
            line = line[1:]
        if current and depth != current_depth:
            out.append(_quoted(current_depth, "".join(current)))
            current = []
        flowed = line.endswith(" ") and line != "-- "
        if flowed and delsp:
            line = line[:-1]
        current.append(line)
        current_depth = depth
        if not flowed:
            out.append(_quoted(depth, "".join(current)))
            current = []
    if current:
        out.append(_quoted(current_depth, "".join(current)))
    return "\n".join(out)


def _quoted(depth: int, line: str) -> str:
    if depth <= 0:
        return line
    return ">" * depth + (" " + line if line else "")
