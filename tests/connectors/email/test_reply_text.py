"""extract_reply: the new part of a reply, in the shapes clients send."""

from __future__ import annotations

import pytest

from connectors.email.reply_text import extract_reply

QUOTE = "> Hello,\n> your order shipped.\n"

CASES = {
    "gmail": (
        "Thanks!\n\nOn Mon, Mar 11, 2024 at 4:02 PM Acme Support <support@acme.example> wrote:\n\n"
        + QUOTE,
        "Thanks!",
    ),
    "gmail wrapped over two lines": (
        "Thanks!\n\nOn Mon, Mar 11, 2024 at 4:02 PM Acme Support <\nsupport@acme.example> wrote:\n"
        + QUOTE,
        "Thanks!",
    ),
    "wrapped over three lines": (
        "Thanks!\n\nOn Monday, 11 March 2024 at 16:02,\nAcme Support Team\n<support@acme.example> wrote:\n"
        + QUOTE,
        "Thanks!",
    ),
    "apple mail": (
        "Great.\n\n> On 11 Mar 2024, at 16:02, Acme Support <support@acme.example> wrote:\n> \n"
        + QUOTE,
        "Great.",
    ),
    "thunderbird": ("Fine.\n\nOn 3/11/24 16:02, Acme Support wrote:\n" + QUOTE, "Fine."),
    "german": (
        "Danke!\n\nAm 11.03.2024 um 16:02 schrieb Acme Support <support@acme.example>:\n\n" + QUOTE,
        "Danke!",
    ),
    "german without a name after schrieb": (
        "Danke!\n\nAm Mo., 11. März 2024 um 16:02 Uhr schrieb Acme Support:\n" + QUOTE,
        "Danke!",
    ),
    "french with no-break spaces": (
        "Merci !\n\nLe lun. 11 mars 2024 à 16:02, Acme Support <support@acme.example> "
        "a\u00a0écrit\u00a0:\n" + QUOTE,
        "Merci !",
    ),
    "spanish": (
        "Gracias.\n\nEl lun, 11 mar 2024 a las 16:02, Acme Support (<support@acme.example>) "
        "escribió:\n" + QUOTE,
        "Gracias.",
    ),
    "italian": ("Grazie.\n\nIl giorno lun 11 mar 2024, Acme ha scritto:\n" + QUOTE, "Grazie."),
    "dutch": (
        "Dank je.\n\nOp ma 11 mrt 2024 om 16:02 schreef Acme Support <support@acme.example>:\n"
        + QUOTE,
        "Dank je.",
    ),
    "portuguese": (
        "Obrigado.\n\nEm seg., 11 de mar. de 2024, Acme escreveu:\n" + QUOTE,
        "Obrigado.",
    ),
    "swedish": (
        "Tack.\n\nDen 11 mars 2024 kl. 16:02 skrev Acme Support <s@acme.example>:\n" + QUOTE,
        "Tack.",
    ),
    "old gmail date form": (
        "Ok.\n\n2024-03-11 16:02 GMT+01:00 Acme Support <support@acme.example>:\n" + QUOTE,
        "Ok.",
    ),
    "outlook block with rule": (
        "See below.\n\nTom\n\n________________________________\nFrom: Acme Support <support@acme.example>\n"
        "Sent: Monday, March 11, 2024 4:02 PM\nTo: Tom <tom@example.com>\nSubject: Re: Address\n\n"
        "Hello Tom,\nwe updated it.\n",
        "See below.\n\nTom",
    ),
    "outlook html converted to text, bold labels": (
        "Yes.\n\n*From:* Acme Support <support@acme.example>\n*Sent:* Monday, March 11, 2024\n"
        "*To:* Tom\n*Subject:* Re: Address\n\nHello Tom\n",
        "Yes.",
    ),
    "outlook in german": (
        "Passt.\n\nVon: Acme Support <support@acme.example>\nGesendet: Montag, 11. März 2024 16:02\n"
        "An: Jonas\nBetreff: Lieferung\n\nHallo Jonas\n",
        "Passt.",
    ),
    "outlook in french": (
        "D'accord.\n\nDe : Acme Support <support@acme.example>\nEnvoyé : lundi 11 mars 2024 16:02\n"
        "À : Amélie\nObjet : Livraison\n\nBonjour\n",
        "D'accord.",
    ),
    "original message separator": (
        "Thursday works.\n\n-----Original Message-----\nFrom: Acme\nSent: Tuesday\n\nWhich slot?\n",
        "Thursday works.",
    ),
    "original message in german": (
        "Donnerstag.\n\n-----Ursprüngliche Nachricht-----\nVon: Acme\n\nWelcher Termin?\n",
        "Donnerstag.",
    ),
    "trailing quote under an unknown header": (
        "Kiitos!\n\nti 11. maalisk. 2024 klo 16.02 Acme Support kirjoitti:\n" + QUOTE,
        "Kiitos!",
    ),
    "quoted lines only": ("Agreed.\n\n" + QUOTE, "Agreed."),
    "bottom posting": (
        "On Mon, Mar 11, 2024 at 4:02 PM Acme Support <support@acme.example> wrote:\n"
        + QUOTE
        + "\nMy answer is below the quote.\n",
        "My answer is below the quote.",
    ),
    "interleaved answers": (
        "> Which size?\nM please.\n> Which colour?\nBlue.\n",
        "M please.\nBlue.",
    ),
    "dash dash space signature": ("Hello.\n\n-- \nJane Doe\nACME Corp\n", "Hello."),
    "bare dash dash before a short block": ("Hello.\n\n--\nJane Doe\n", "Hello."),
    "sent from my iphone": ("Ok!\n\nSent from my iPhone\n", "Ok!"),
    "sent from my galaxy": ("Ok!\n\nSent from my Samsung Galaxy smartphone.\n", "Ok!"),
    "get outlook for android with a link": (
        "Ok!\n\nGet Outlook for Android<https://aka.ms/AAb9ysg>\n",
        "Ok!",
    ),
    "von meinem iphone gesendet": ("Gut.\n\nVon meinem iPhone gesendet\n", "Gut."),
    "envoyé de mon iphone": ("Bien.\n\nEnvoyé de mon iPhone\n", "Bien."),
    "signature then quote": (
        "Done.\n\n-- \nJane\n\nOn Mon, Mar 11, 2024 at 4:02 PM Acme wrote:\n" + QUOTE,
        "Done.",
    ),
    "crlf line endings": ("Fine.\r\n\r\nOn Mon, Acme wrote:\r\n> x\r\n", "Fine."),
    "gmail forward markers are content": (
        "FYI\n\n---------- Forwarded message ---------\nFrom: Shop <s@example.com>\n"
        "Date: Mon\nSubject: Receipt\nTo: me\n\nTotal 10 EUR\n",
        "FYI\n\n---------- Forwarded message ---------\nFrom: Shop <s@example.com>\n"
        "Date: Mon\nSubject: Receipt\nTo: me\n\nTotal 10 EUR",
    ),
    "apple forward marker is content": (
        "FYI\n\nBegin forwarded message:\n\nFrom: Shop <s@example.com>\nSubject: Receipt\n\nTotal\n",
        "FYI\n\nBegin forwarded message:\n\nFrom: Shop <s@example.com>\nSubject: Receipt\n\nTotal",
    ),
}


@pytest.mark.parametrize(("text", "expected"), list(CASES.values()), ids=list(CASES))
def test_extract_reply(text: str, expected: str) -> None:
    assert extract_reply(text) == expected


def test_an_outlook_forward_keeps_its_header_block_when_the_subject_says_forward() -> None:
    text = (
        "Please check this.\n\n________________________________\nFrom: Shop <s@example.com>\n"
        "Sent: Monday\nTo: me\nSubject: Receipt\n\nTotal 10 EUR\n"
    )
    assert extract_reply(text, subject="FW: Receipt") == text.strip()
    assert extract_reply(text, subject="Re: Receipt") == "Please check this."
    assert extract_reply(text) == "Please check this."


def test_a_message_that_is_all_quote_falls_back_to_the_whole_text() -> None:
    text = "On Mon, Mar 11, 2024 at 4:02 PM Acme wrote:\n> only the quote\n"
    assert extract_reply(text) == text.strip()


def test_empty_text_stays_empty() -> None:
    assert extract_reply("") == ""
    assert extract_reply("\n \n") == ""


def test_ordinary_sentences_are_not_quote_headers() -> None:
    text = (
        "On Monday I wrote you about the order.\n"
        "From: the warehouse, it seems, the parcel left on time.\n"
        "Am I right?\n"
        "--- notes ---\n"
        "Sent from the office, not from a phone: please call.\n"
    )
    assert extract_reply(text) == text.strip()


def test_a_bare_dash_dash_before_a_long_block_is_not_a_signature() -> None:
    body = "\n".join(f"line {i}" for i in range(15))
    text = f"Intro\n--\n{body}"
    assert extract_reply(text) == text


def test_a_mobile_line_in_the_middle_is_kept() -> None:
    text = "Sent from my iPhone\nbut I am at my desk now, details below.\nOrder 1234"
    assert extract_reply(text) == text


def test_very_long_lines_are_not_quote_headers() -> None:
    long_line = "On " + "x" * 5000 + " wrote:"
    text = f"Answer\n{long_line}\nmore"
    assert extract_reply(text) == text


def test_quoted_history_inside_a_forward_is_content() -> None:
    text = (
        "FYI\n\n-------- Forwarded Message --------\nSubject: Re: x\n\nSure.\n\n"
        "On Mon, Ann wrote:\n> ok?\n"
    )
    assert extract_reply(text) == text.strip()
