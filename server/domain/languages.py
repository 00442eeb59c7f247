"""Which language a message is written in, roughly: a small detector by
stopwords, pure and dependency-free.

It knows a handful of languages (LANGUAGES, ISO 639-1 codes) and counts
how many of a text's first words are among each one's commonest
function words. The language with the most wins when it has at least
MIN_HITS of them and clearly more than the runner-up; otherwise the
answer is None ("unknown"). That is right for ordinary sentences in
these languages and says "unknown" for one-word messages, mixed text
and languages it does not know, rather than guessing. A routing rule on
language therefore means "detected as", and a rule for "unknown" catches
the rest. A real model (CLD3, fastText) can replace `detect_language`
without changing its callers.
"""

from __future__ import annotations

import re

# How many words are read: enough for a verdict, cheap on a long mail.
MAX_WORDS = 200
MIN_HITS = 2
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words that are frequent in one language. A spelling listed
# for two languages ("de", "is", "que") says nothing and is dropped below.
_LISTED: dict[str, frozenset[str]] = {
    "en": _words(
        "the and is are was were you your my i it this that with have has not "
        "for what can please thanks thank will would there from they we our "
        "hello hi me of to on be do does did"
    ),
    "de": _words(
        "der die das und ist nicht ich sie wir ihr mein meine ein eine mit "
        "auf für bitte danke haben habe wurde noch auch aber oder wie was"
    ),
    "fr": _words(
        "le la les et est je vous nous mon ma mes une pas pour avec sur "
        "merci bonjour avez suis mais ou qui que dans ce cette"
    ),
    "es": _words(
        "el los las y es yo usted mi mis una no por para con gracias hola "
        "tengo pero como qué que del está estoy muy"
    ),
    "it": _words(
        "il lo gli della sono io mio mia una non per con grazie ciao ho "
        "ma come che è sono questo questa anche"
    ),
    "nl": _words(
        "de het een en is ik niet mijn wij jij u met voor op bedankt "
        "hallo heb maar hoe wat ook nog van"
    ),
    "pt": _words(
        "o os as e é eu você meu minha uma não por para com obrigado "
        "olá tenho mas como que do da está estou muito"
    ),
}
_SHARED = frozenset(
    w
    for code, words in _LISTED.items()
    for w in words
    for other in _LISTED
    if other != code and w in _LISTED[other]
)
STOPWORDS = {code: words - _SHARED for code, words in _LISTED.items()}
LANGUAGES = tuple(sorted(STOPWORDS))
UNKNOWN = "unknown"


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code of the language `text` is most likely in, among
    LANGUAGES, or None when it can't tell (see the module docstring)."""
    words = [
        m.group().lower() for _, m in zip(range(MAX_WORDS), _WORD.finditer(text), strict=False)
    ]
    if not words:
        return None
    scores = sorted(
        ((sum(w in stop for w in words), code) for code, stop in STOPWORDS.items()),
        reverse=True,
    )
    (best, code), (second, _) = scores[0], scores[1]
    # "Clearly more": half again the runner-up, so two close languages
    # (nl/de, es/pt) with similar counts stay unknown.
    if best < MIN_HITS or best * 2 < second * 3:
        return None
    return code
