"""The new part of a reply: quoted history and signatures removed
(PROTOCOLS.md P4, reply parsing).

Works on plain text (HTML mail is converted first, with blockquotes as
"> " lines). Recognised history:

- a quote header: "On <date>, <name> wrote:" (Gmail, Apple Mail,
  Thunderbird; wrapped over up to three lines), "Am … schrieb …:",
  "Le … a écrit :", and the Spanish, Italian, Dutch, Portuguese and
  Scandinavian forms;
- Outlook: "-----Original Message-----" (and its translations) and the
  "From: / Sent: / To: / Subject:" block, with the "____" rule above it;
- lines quoted with ">".

Signatures: everything after a "-- " line (a bare "--" only when a short
block follows), and trailing mobile lines ("Sent from my iPhone", "Get
Outlook for iOS", "Von meinem iPhone gesendet", "Envoyé de mon iPhone").

A forwarded message is new content to the conversation: nothing below a
"Forwarded message" / "Begin forwarded message:" marker is removed, and
with `subject` given, a forward ("Fwd:", "FW:", "WG:", "TR:") keeps an
Outlook header block (which Outlook also uses for forwards) too.
"""

from __future__ import annotations

import re

_LONGEST_HEADER = 1000  # longer lines are never quote headers (and never regex-scanned)

_QUOTE_HEADERS = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"On\s.{1,400}\swrote\s?:",
        r"Am\s.{1,400}\sschrieb(\s.{0,400})?:",
        r"Le\s.{1,400}\sa\sécrit\s?:",
        r"El\s.{1,400}\sescribió\s?:",
        r"Il\s.{1,400}\sha\sscritto\s?:",
        r"Op\s.{1,400}\sschreef(\s.{0,400})?:",
        r"Em\s.{1,400}\sescreveu\s?:",
        r"(Den|På)\s.{1,400}\sskrev(\s.{0,400})?:",
        # Old Gmail: "2024-03-12 10:15 GMT+01:00 Name <addr>:"
        r"\d{4}-\d{2}-\d{2}\s.{1,300}<[^<>\s]+@[^<>\s]+>\s?:",
    )
)
_OPENERS = re.compile(r"(On|Am|Le|El|Il|Op|Em|Den|På)\s", re.IGNORECASE)
_ORIGINAL_MESSAGE = re.compile(
    r"-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original"
    r"|Messaggio originale|Oorspronkelijk bericht|Originalmeddelande|Mensagem original)\s*-{2,}",
    re.IGNORECASE,
)
_FORWARD_MARKER = re.compile(
    r"-{2,}\s*(Forwarded message|Weitergeleitete Nachricht|Message transféré|Mensaje reenviado"
    r"|Messaggio inoltrato|Doorgestuurd bericht|Vidarebefordrat meddelande)\s*-{2,}"
    r"|(Begin forwarded message|Anfang der weitergeleiteten Nachricht"
    r"|Début du message réexpédié|Comienzo del mensaje reenviado)\s?:",
    re.IGNORECASE,
)
_FROM = re.compile(r"\*?(From|Von|De|Van|Da|Från|Fra)\s?:\*?\s", re.IGNORECASE)
_SENT = re.compile(
    r"\*?(Sent|Date|Gesendet|Datum|Envoyé|Date d'envoi|Enviado|Inviato|Verzonden|Skickat)\s?:",
    re.IGNORECASE,
)
_SUBJECT = re.compile(
    r"\*?(Subject|Betreff|Objet|Asunto|Oggetto|Onderwerp|Ämne|Assunto|Emne)\s?:", re.IGNORECASE
)
_RULE = re.compile(r"_{10,}|-{10,}")
_MOBILE = re.compile(
    r"(Sent from my \S.{0,40}|Sent from (Outlook|Mail for Windows|Yahoo Mail|my mobile)\b.{0,60}"
    r"|Get Outlook for (iOS|Android)\b.{0,60}|Sent with \S.{0,40}|Sent via \S.{0,40}"
    r"|Von meinem \S.{0,40} gesendet\.?|Gesendet von meinem \S.{0,40}|Gesendet mit \S.{0,40}"
    r"|Envoyé de mon \S.{0,40}|Envoyé depuis mon \S.{0,40}|Enviado desde mi \S.{0,40}"
    r"|Inviato da \S.{0,40}|Verzonden vanaf mijn \S.{0,40}|Skickat från min \S.{0,40})",
    re.IGNORECASE,
)
_FORWARD_SUBJECT = re.compile(r"\s*(Fwd?|FW|WG|TR|RV|Doorst)\s?:", re.IGNORECASE)
# The first character of every line the patterns above can match.
_FIRST_CHARS = frozenset("-*0123456789" + "OAELIDPFVSBC" + "oaelidpfvsbc" + "Åå")
_SIGNATURE_LINES = 10  # a bare "--" counts as a delimiter only before this many lines


def extract_reply(text: str, *, subject: str | None = None) -> str:
    """The text the sender wrote in this message, with line ends
    normalised, trailing spaces and leading/trailing blank lines removed.
    Falls back to all of `text` (trimmed the same way) when removing
    history would leave nothing, so a message that is all quote is still
    shown."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    everything = lines
    forwarded: list[str] = []
    marker = _forward_marker(lines)
    if marker is not None:
        lines, forwarded = lines[:marker], lines[marker:]
    forward = subject is not None and _FORWARD_SUBJECT.match(subject) is not None
    cut = _history_start(lines, outlook=not forward)
    if cut is not None:
        start, header_end = cut
        before = lines[:start]
        if _blank(before):
            # Bottom-posted or interleaved: the answer is below the header.
            before = [line for line in lines[header_end:] if not _quoted(line)]
        lines = before
    lines = _drop_trailing_quote(lines)
    lines = _drop_signature(lines)
    if forwarded:
        lines = [*lines, "", *forwarded]
    return _trim(lines) or _trim(everything)


def _trim(lines: list[str]) -> str:
    """Lines right-stripped, without leading or trailing blank lines and
    with runs of blank lines collapsed to one; indentation is kept."""
    out: list[str] = []
    for line in (line.rstrip() for line in lines):
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _forward_marker(lines: list[str]) -> int | None:
    """The line where a forwarded message starts: all content from there."""
    for i, raw in enumerate(lines):
        line = raw.strip()
        if line and line[0] in "-BADCbadc" and len(line) <= 100 and _FORWARD_MARKER.fullmatch(line):
            return i
    return None


def _history_start(lines: list[str], *, outlook: bool) -> tuple[int, int] | None:
    """(first line of the history, first line after its header) or None."""
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line[0] not in _FIRST_CHARS or len(line) > _LONGEST_HEADER:
            continue  # most lines: one set lookup
        if line[0] == "-":
            if _ORIGINAL_MESSAGE.fullmatch(line):
                return i, i + 1
            continue
        if _OPENERS.match(line) or line[0].isdigit():
            for span in (1, 2, 3):
                joined = " ".join(part.strip() for part in lines[i : i + span])
                if len(joined) <= _LONGEST_HEADER and _is_quote_header(joined):
                    return i, i + span
        if outlook and _FROM.match(line + " ") and _outlook_block(lines, i):
            return _rule_above(lines, i), i + 1
    return None


def _is_quote_header(line: str) -> bool:
    return any(pattern.fullmatch(line) for pattern in _QUOTE_HEADERS)


def _outlook_block(lines: list[str], start: int) -> bool:
    """A "From:" line followed, within a few lines, by "Sent:"/"Date:" and
    "Subject:" lines: the header Outlook puts above the quoted message."""
    window = [line.strip() for line in lines[start + 1 : start + 7]]
    return any(_SENT.match(line) for line in window) and any(
        _SUBJECT.match(line) for line in window
    )


def _rule_above(lines: list[str], i: int) -> int:
    """Include the "______" rule (and blank lines) Outlook draws above."""
    j = i
    while j > 0 and not lines[j - 1].strip():
        j -= 1
    if j > 0 and _RULE.fullmatch(lines[j - 1].strip()):
        return j - 1
    return i


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _blank(lines: list[str]) -> bool:
    return all(not line.strip() for line in lines)


def _drop_trailing_quote(lines: list[str]) -> list[str]:
    """Remove quoted lines; a trailing quoted block also takes the unknown
    quote header ("... kirjoitti:") right above it."""
    end = len(lines)
    while end and (not lines[end - 1].strip() or _quoted(lines[end - 1])):
        end -= 1
    if end < len(lines) and any(_quoted(line) for line in lines[end:]):
        if end and lines[end - 1].rstrip().endswith(":"):
            end -= 1
        lines = lines[:end]
    return [line for line in lines if not _quoted(line)]


def _drop_signature(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        if line == "-- " or (
            line.strip() == "--"
            and sum(1 for rest in lines[i + 1 :] if rest.strip()) <= _SIGNATURE_LINES
        ):
            lines = lines[:i]
            break
    end = len(lines)
    while end and (not lines[end - 1].strip() or _is_mobile(lines[end - 1])):
        end -= 1
    return lines[:end]


def _is_mobile(line: str) -> bool:
    stripped = re.sub(r"\s*<[^<>]*>\s*$", "", line.strip())
    return len(stripped) <= 100 and _MOBILE.fullmatch(stripped) is not None
