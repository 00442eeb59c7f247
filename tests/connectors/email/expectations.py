"""What each file in `corpus/` must parse to.

One entry per file. Keys are `ParsedEmail` fields, compared exactly, plus:

- `raises`: (exception class, text the reason must contain); nothing else
  is checked;
- `text_contains`, `html_contains`, `html_excludes`: substrings;
- `attachments`: one dict per attachment, in order, with any of
  `filename`, `content_type`, `content_id`, `inline`, `data`,
  `data_prefix`, `size`;
- `auto`: (AutoKind, reason).

Unless an entry says otherwise, a file must have no attachments, no bounce,
no HTML, no warnings, a usable From address (`from_problem` None) and
classify as `AutoKind.NONE` with no reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from connectors.email import Address, AutoKind, Bounce, MailRefused, MailUnparseable

CET = timezone(timedelta(hours=1))
PNG_PREFIX = b"\x89PNG\r\n\x1a\n"
PNG_SIZE = 70

EXPECTATIONS: dict[str, dict[str, Any]] = {
    # --- Gmail: multipart/alternative, wrapped quote header, gmail_quote HTML
    "gmail_reply_alternative.eml": {
        "message_id": "CAJx7Ky1uXc2Zb8=pQ4rT0vN-3mHfWq_9dE@mail.gmail.example",
        "in_reply_to": ("tl.c42.m9f3e.8b1c2d@acme.example",),
        "references": ("tl.c42.m9f3e.8b1c2d@acme.example",),
        "from_name": "Lena Fischer",
        "from_address": "lena.fischer@gmail.example",
        "to": (Address("Acme Support", "reply+c42.AbC123xyz@reply.acme.example"),),
        "subject": "Re: Your order #1234 has shipped",
        "date": datetime(2024, 3, 12, 10, 15, 42, tzinfo=CET),
        "text_contains": ["> your order #1234 has shipped"],
        "reply_text": "Thanks, that works! I'll pick it up tomorrow.\n\nLena",
        "html_contains": [
            "Thanks, that works!",
            "<blockquote>",
            'rel="noopener noreferrer nofollow"',
        ],
        "html_excludes": ["style="],
    },
    # --- iOS Mail: text/plain QP, "Sent from my iPhone", quote header inside
    # the quote (unwrapped by QP soft breaks), a BOM in the quoted text
    "iphone_plain_reply.eml": {
        "message_id": "7E1A2C4B-55D0-4F1B-9C3E-0A8D6B2F1E77@icloud.example",
        "in_reply_to": ("tl.c77.a1b2.ffee01@acme.example",),
        "from_address": "m.rossi@icloud.example",
        "subject": "Re: Which colour would you like?",
        "text_contains": ["Sent from my iPhone", "> On 12 Mar 2024, at 09:40"],
        "reply_text": "Yes please, the blue one.",
    },
    # --- Apple Mail (macOS): folded Content-Type parameters, blockquote type=cite
    "apple_mail_html_reply.eml": {
        "message_id": "5F0D0E61-2C33-4B8C-A4F4-6E0E2A7C9D10@berg.example",
        "from_name": "Anna Berg",
        "subject": "Re: Refund for order #1201",
        "text_contains": ["> Your refund of 49,00 € has been issued."],
        "reply_text": "Perfect, thank you!\n\nAnna",
        "html_contains": ["<blockquote>", "49,00 €"],
        "html_excludes": ["<head", "<meta", "Apple-interchange-newline"],
    },
    # --- Thunderbird: format=flowed paragraph, "-- " signature above the quote
    "thunderbird_flowed_signature.eml": {
        "message_id": "b3c1f0e2-8d4a-4c7e-9a51-2f6e0d9c7b11@nowak-design.example",
        "from_address": "marta@nowak-design.example",
        "in_reply_to": ("tl.c88.k2.77aa@acme.example",),
        "text_contains": ["-- \nMarta Nowak", "On 3/12/24 10:15, Acme Support wrote:"],
        "reply_text": (
            "Hello, the VAT number on the invoice is missing. Could you send a corrected "
            "invoice with our VAT number PL5260001246 to this address? We need it before "
            "the end of the month."
        ),
    },
    # --- Outlook via Exchange: In-Reply-To rewritten to an Exchange id, our id
    # kept in References; folded Message-ID; windows-1252 QP; From/Sent/To/Subject block
    "outlook_reply_rewritten_in_reply_to.eml": {
        "message_id": (
            "BN8PR12MB3456A1B2C3D4E5F60718293AB1C2D@BN8PR12MB3456.namprd12.prod.outlook.example"
        ),
        "in_reply_to": (
            "BN8PR12MB34561F2E3D4C5B6A7980AB12C3D4E@BN8PR12MB3456.namprd12.prod.outlook.example",
        ),
        "references": (
            "tl.c31.p4.5e5e@acme.example",
            "BN8PR12MB34561F2E3D4C5B6A7980AB12C3D4E@BN8PR12MB3456.namprd12.prod.outlook.example",
        ),
        "from_name": "Tom Becker",
        "subject": "RE: Address change",
        "date": datetime(2024, 3, 12, 10, 41, 7, tzinfo=UTC),
        "text_contains": ["Königstraße 5"],
        "reply_text": "Hi,\n\nthe invoice still shows our old address. Can you fix it?\n\nThanks\nTom",
        "html_contains": ["<b>From:</b>", "Königstraße"],
        "html_excludes": ["MsoNormal", "<style", "p.MsoNormal"],
    },
    # --- older Outlook: "-----Original Message-----"; X-Auto-Response-Suppress
    # on an ordinary message is not an automatic sender
    "outlook_original_message.eml": {
        "message_id": "000001da7512$4c1e8a30$e45b9e90$@logistics.example",
        "from_name": "Kowalski, Piotr",
        "to": (Address("support@acme.example", "support@acme.example"),),
        "reply_text": "Thursday 8:00-10:00 works for us.\n\nPiotr",
        "auto": (AutoKind.NONE, "X-Auto-Response-Suppress asks for no automatic answer"),
    },
    # --- Outlook for iOS: CRLF line endings, base64 body, "Get Outlook for iOS<url>"
    "outlook_mobile_reply.eml": {
        "from_address": "sam.okafor@outlook.example",
        "subject": "Re: Callback request",
        "text_contains": ["________________________________\nFrom: Acme Support"],
        "reply_text": "Running late, I'll call you at 3.",
    },
    # --- HTML only: text derived from HTML, blockquote quoted as "> "
    "html_only_gmail_quote.eml": {
        "message_id": "20240312105000.GA1234@shah.example",
        "in_reply_to": ("tl.c61.w3.9c9c@acme.example",),
        "date": datetime(2024, 3, 12, 16, 20, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        "text": (
            "The serial number is SN-88231.\nIt stopped charging last week.\n\n"
            "On Tue, Mar 12, 2024 at 9:00 AM Acme Support <support@acme.example> wrote:\n\n"
            "> Could you send us the serial number of your device?"
        ),
        "reply_text": "The serial number is SN-88231.\nIt stopped charging last week.",
        "html_contains": ["<b>SN-88231</b>", "<blockquote>"],
        "html_excludes": ["<title", "Re: Warranty question"],
    },
    # --- multipart/related (Outlook): alternative + inline cid image
    "related_inline_image.eml": {
        "subject": "Damaged packaging",
        "text": "The box arrived like this:\n\n[cid:image001.png@01DA7528.5A8E6F10]\n\nJonas",
        "html_contains": ['src="cid:image001.png@01DA7528.5A8E6F10"'],
        "attachments": [
            {
                "filename": "image001.png",
                "content_type": "image/png",
                "content_id": "image001.png@01DA7528.5A8E6F10",
                "inline": True,
                "data_prefix": PNG_PREFIX,
                "size": PNG_SIZE,
            }
        ],
    },
    # --- RFC 2231 filenames (extended value, continuations) and an
    # RFC 2047-encoded filename
    "attachment_rfc2231.eml": {
        "text": "Here are the invoice, the quote and the list of items.",
        "attachments": [
            {
                "filename": "Rechnung März 2024.pdf",
                "content_type": "application/pdf",
                "inline": False,
                "data_prefix": b"%PDF-1.4",
            },
            {
                "filename": "見積書 v2.xlsx",
                "content_type": (
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                ),
                "data_prefix": b"PK",
                "size": 32,
            },
            {
                "filename": "Übersicht Q1.csv",
                "content_type": "text/csv",
                "data": b"item,qty\njacket,1\n",
            },
        ],
    },
    # --- hostile attachment names: paths, RTL override, control characters,
    # Windows device name, nothing usable
    "attachment_unsafe_names.eml": {
        "text": "See attached.",
        "attachments": [
            {"filename": "passwd", "content_type": "text/plain"},
            {"filename": "run.bat", "content_type": "application/octet-stream"},
            {"filename": "invoicefdp.exe", "data": b"MZ\n"},
            {"filename": "bell name.txt"},
            {"filename": "_CON.txt"},
            {"filename": "attachment.png", "content_type": "image/png", "size": PNG_SIZE},
        ],
    },
    # --- UTF-8 subject split inside an emoji across two encoded words; Q-encoded
    # names; an empty group in To; a quoted name with a comma in Cc
    "subject_utf8_split_words.eml": {
        "from_name": "José Álvarez",
        "to": (),
        "cc": (Address("Zoë", "zoe@correo.example"), Address("Ops, Team", "ops@acme.example")),
        "subject": "Re: Lieferung 📦 \u2013 wann kommt sie?",
        "date": datetime(2024, 3, 13, 11, 11, 11, tzinfo=timezone(timedelta(hours=-3))),
        "text": "¿Cuándo llega mi paquete?",
    },
    # --- ISO-8859-1 encoded words and a Latin-1 quoted-printable body
    "latin1_quoted_printable.eml": {
        "from_name": "Jürgen Müller",
        "subject": "Grüße aus München",
        "text_contains": ["Größe 42", "Mit freundlichen Grüßen\nJürgen Müller"],
    },
    # --- Shift_JIS subject and body, ISO-2022-JP name
    "shift_jis.eml": {
        "from_name": "山田太郎",
        "subject": "ご注文について",
        "text": "お世話になっております。\n注文番号1234の配送状況を教えてください。\n\n山田太郎",
    },
    # --- raw UTF-8 in headers (RFC 6532), in a filename parameter too
    "raw_utf8_headers.eml": {
        "from_name": "Zoë Müller",
        "subject": "Bestellung für Zoë \u2013 Frage",
        "text": "Ist die Jacke auch in Größe M verfügbar?",
        "attachments": [{"filename": "Maße.pdf", "content_type": "application/pdf"}],
    },
    # --- a charset nobody knows, in the body and in an encoded word
    "unknown_charset.eml": {
        "subject": "Caf\ufffd order",
        "text": "Order for Café Müller confirmed.",
        "warnings": (
            "header: unknown charset 'x-bogus' decoded as UTF-8 with replacement",
            "unknown charset 'x-unknown' decoded as UTF-8",
        ),
    },
    # --- declared UTF-8 over windows-1252 bytes; declared us-ascii over UTF-8
    "mislabelled_charset.eml": {
        "text": "Café \u2013 20 € bezahlt.\n\nDanke für Ihren Einkauf!",
        "warnings": ("charset utf-8 does not match; decoded as windows-1252",),
    },
    # --- base64 with junk characters, and a truncated last group
    "bad_base64.eml": {
        "text": "Hello, the attachment is the receipt.",
        "attachments": [{"filename": "receipt.bin", "data": b"receipt data 01234567"}],
        "warnings": (
            "base64 with invalid characters",
            "broken base64 decoded as far as possible",
        ),
    },
    # --- no Message-ID, no Date, no MIME headers at all
    "missing_message_id.eml": {
        "message_id": None,
        "date": None,
        "from_name": "",
        "from_address": "webform@shop.example",
        "subject": "Contact form: delivery address",
        "reply_text": "Name: Ola Nordmann\nMessage: Please deliver to the back door.",
    },
    # --- duplicate From / Subject / Message-ID: the first wins, with a warning;
    # To headers are merged without repeats
    "duplicate_headers.eml": {
        "message_id": "first-id@dup.example",
        "from_address": "first@dup.example",
        "subject": "The first subject",
        "to": (Address("", "alpha@acme.example"), Address("", "beta@acme.example")),
        "warnings": (
            "duplicate from header; the first is used",
            "duplicate subject header; the first is used",
            "duplicate message-id header; the first is used",
        ),
    },
    # --- CR/LF encoded into names and the subject; an encoded "<" and ","
    "header_injection.eml": {
        "from_name": "Eve X-Injected: 1",
        "from_address": "eve@evil.example",
        "reply_to": (Address("Mallory <mallory@evil.example>, x", "eve@evil.example"),),
        "to": (Address("Support Bcc: victim@example.com", "support@acme.example"),),
        "subject": "Refund Bcc: attacker@evil.example Content-Type: text/html",
    },
    # --- script, event handlers, javascript:/vbscript:/data: URLs, frames, forms
    "html_xss.eml": {
        "text": "Hello support,\n\nclick click2 click3 click4 a safe link mail Send\nhover",
        "html_contains": [
            '<a href="https://ok.example/page" rel="noopener noreferrer nofollow">a safe link</a>',
            'href="mailto:someone@ok.example"',
            'src="cid:part1.abc@evil.example"',
        ],
        "html_excludes": [
            "<script",
            "alert",
            "javascript",
            "vbscript",
            "data:",
            "<iframe",
            "<object",
            "<form",
            "<input",
            "<svg",
            "<style",
            "<meta",
            "<base",
            "<link",
            "onerror",
            "onload",
            "onclick",
            "onmouseover",
            "evil.example/",
        ],
    },
    # --- Postfix DSN: 5.1.1 failed, the original message attached
    "dsn_bounce_5_1_1.eml": {
        "from_address": "MAILER-DAEMON@mx.acme.example",
        "from_name": "Mail Delivery System",
        "subject": "Undelivered Mail Returned to Sender",
        "text_contains": ["Recipient address rejected: User unknown"],
        "auto": (AutoKind.BOUNCE, "delivery status notification (multipart/report)"),
        "may_auto_respond": False,
        "bounce": Bounce(
            status="5.1.1",
            action="failed",
            recipient="nobody@customer.example",
            original_message_id="tl.c42.m7a1.0badc0de@acme.example",
            permanent=True,
            diagnostic=(
                "550 5.1.1 <nobody@customer.example>: Recipient address rejected: User unknown"
            ),
        ),
        "attachments": [
            {
                "filename": "delivery-status.txt",
                "content_type": "message/delivery-status",
                "data_prefix": b"Reporting-MTA: dns; mx.acme.example",
            },
            {
                "filename": "Your order #1299.eml",
                "content_type": "message/rfc822",
                "data_prefix": b"Return-Path: <bounces+c42@reply.acme.example>",
            },
        ],
    },
    # --- Gmail-style delayed DSN: 4.4.7, only the original headers attached
    "dsn_delayed_4_4_7.eml": {
        "from_address": "mailer-daemon@googlemail.example",
        "auto": (AutoKind.BOUNCE, "delivery status notification (multipart/report)"),
        "bounce": Bounce(
            status="4.4.7",
            action="delayed",
            recipient="slow@far-away.example",
            original_message_id="tl.c43.t9.abcdef01@acme.example",
            permanent=False,
            diagnostic="The recipient server did not accept our requests to connect.",
        ),
        "attachments": [
            {"filename": "delivery-status.txt", "content_type": "message/delivery-status"},
            {"filename": "original-headers.txt", "content_type": "text/rfc822-headers"},
        ],
    },
    # --- Exchange out-of-office
    "out_of_office_exchange.eml": {
        "subject": "Automatic reply: Your order #1300",
        "in_reply_to": ("tl.c44.o1.1300@acme.example",),
        "text_contains": ["nicht im Büro"],
        "auto": (AutoKind.AUTO_REPLY, "Auto-Submitted: auto-replied"),
        "may_auto_respond": False,
    },
    # --- vacation program with only X-Autoreply
    "vacation_x_autoreply.eml": {
        "auto": (AutoKind.AUTO_REPLY, "X-Autoreply header"),
        "may_auto_respond": False,
    },
    # --- Mailman list mail
    "list_mail.eml": {
        "subject": "[project-users] Release 2.4 is out",
        "auto": (AutoKind.LIST, "Precedence: list"),
        "may_auto_respond": False,
    },
    # --- a person's reply to our newsletter is a person, not list mail
    "newsletter_reply.eml": {
        "in_reply_to": ("tl.news.s24.0001@acme.example",),
        "reply_text": "Does the discount also apply to the rain jackets?",
        "may_auto_respond": True,
    },
    # --- 12 nested multiparts
    "mime_bomb_depth.eml": {"raises": (MailRefused, "nesting deeper than 10")},
    # --- German quote header and mobile signature
    "german_reply.eml": {
        "subject": "AW: Ihre Bestellung #1402",
        "text_contains": ["Am 14.03.2024 um 10:15 schrieb Acme Support"],
        "reply_text": "Hallo,\n\nvielen Dank, das Paket ist angekommen.\n\nViele Grüße\nJonas",
    },
    # --- French quote header (no-break spaces before the colon), mobile signature
    "french_reply.eml": {
        "from_name": "Amélie Laurent",
        "text_contains": ["a\u00a0écrit\u00a0:"],
        "reply_text": (
            "Bonjour,\n\nje n'ai pas encore reçu le colis. Pouvez-vous vérifier ?"
            "\n\nCordialement,\nAmélie"
        ),
    },
    # --- a new message with a "-- " signature
    "signature_dashdash.eml": {
        "date": datetime(2024, 3, 15, 15, 0, tzinfo=timezone(timedelta(hours=3))),
        "text_contains": ["-- \nDr. Rahel Haile", "confidential information."],
        "reply_text": (
            "Hello,\n\nwe would like to order 40 units for our clinic. Do you offer a\n"
            "volume discount?\n\nBest,\nRahel"
        ),
    },
    # --- Gmail inline forward: the forwarded message is content, kept
    "forwarded_inline_gmail.eml": {
        "subject": "Fwd: Your invoice INV-2024-0311",
        "reply_text": (
            "This invoice is charged twice, see below.\n\n"
            "---------- Forwarded message ---------\n"
            "From: Acme Billing <billing@acme.example>\n"
            "Date: Mon, Mar 11, 2024 at 9:00 AM\n"
            "Subject: Your invoice INV-2024-0311\n"
            "To: <lena.fischer@gmail.example>\n\n"
            "Your invoice INV-2024-0311 over 120.00 EUR has been charged."
        ),
    },
    # --- Thunderbird "forward as attachment": message/rfc822 named from its subject
    "forwarded_as_attachment.eml": {
        "text": "The confirmation you asked for is attached.",
        "attachments": [
            {
                "filename": "Order confirmation #1234.eml",
                "content_type": "message/rfc822",
                "inline": False,
                "data_prefix": b"From: Acme Shop <shop@acme.example>",
            }
        ],
    },
    # --- read receipt (MDN)
    "read_receipt_mdn.eml": {
        "auto": (AutoKind.AUTO_REPLY, "read receipt (multipart/report)"),
        "attachments": [
            {
                "filename": "disposition-notification.txt",
                "content_type": "message/disposition-notification",
            }
        ],
    },
    # --- plain-text bounce from a mailer daemon: a bounce without a report
    "qmail_plain_bounce.eml": {
        "message_id": None,
        "from_address": "MAILER-DAEMON@mail.oldisp.example",
        "date": datetime(2024, 3, 15, 19, 0, tzinfo=UTC),
        "auto": (AutoKind.BOUNCE, "sender mailer-daemon"),
        "bounce": None,
    },
    # --- not a mail message: a PNG
    "garbage_not_mail.eml": {"raises": (MailUnparseable, "no header fields")},
    # --- an empty Return-Path marks an automatic sender
    "empty_return_path_notification.eml": {
        "from_address": "noreply@shop.example",
        "auto": (AutoKind.AUTO_REPLY, "empty Return-Path"),
    },
    # --- an mbox "From " line before the headers
    "mbox_from_line.eml": {
        "message_id": "mbox-export-1@costa.example",
        "from_name": "Ines Costa",
        "header_count": 7,
        "text": "This message was saved from an mbox file.",
    },
    # --- Apple Mail: text, inline image without Content-ID, text
    "apple_mail_mixed_inline.eml": {
        "text": "Here is the scratch:\n\nAnd the box was fine.",
        "attachments": [
            {
                "filename": "IMG_0042.png",
                "content_type": "image/png",
                "content_id": None,
                "inline": True,
                "data_prefix": PNG_PREFIX,
            }
        ],
    },
    # --- From fields without an address a reply could go to: no From
    # address, and the reason the mail is quarantined for
    "from_bare_word.eml": {
        "from_name": "",
        "from_address": None,
        "from_problem": "From: 'Evil' is not a usable address (invalid address)",
        "subject": "Please call me",
        "text": "Call me back about my account.",
    },
    "from_dotted_word.eml": {
        "from_address": None,
        "from_problem": "From: 'jane.doe' is not a usable address (invalid address)",
    },
    "from_quoted_name_only.eml": {
        "from_address": None,
        "from_problem": "From: '\"Jane Doe\"' is not a usable address (invalid address)",
    },
    "from_address_without_domain.eml": {
        "from_name": "Jane",
        "from_address": None,
        "from_problem": "From: 'Jane <jane>' is not a usable address (invalid address)",
    },
    # --- a raw CR ends the From line early (the parser splits lines on it):
    # what is left is a bare word, and the rest of the line is body text
    "from_raw_cr_in_name.eml": {
        "from_address": None,
        "from_problem": "From: 'Jane' is not a usable address (invalid address)",
        "message_id": "raw-cr-1@spoof.example",
        "subject": "Order question",
        "text": "Doe <jane.doe@customer.example>\n\nWhere is my order?",
    },
    # --- javascript:, data: and vbscript: spelled with invisible characters
    # (zero-width space and joiners, soft hyphen, BOM, word joiner, a bidi
    # override, a control; raw and as character references): every such
    # URL goes, links with those characters only in their path stay
    "html_invisible_schemes.eml": {
        "from_address": "hacker@evil.example",
        "html": (
            "<p>Hello support,</p>\n"
            + "".join(
                f'<a rel="noopener noreferrer nofollow">{name}</a>\n'
                for name in (
                    "zwsp",
                    "zwsp-ref",
                    "shy",
                    "shy-ref",
                    "zwnj",
                    "zwj-ref",
                    "bom",
                    "wj-ref",
                    "rlo",
                    "ctl",
                )
            )
            + '<img alt="svg">\n<blockquote>quoted</blockquote>\n'
            '<a href="https://shop.example/orders/10\u200b42" rel="noopener noreferrer nofollow">'
            "my order</a>\n"
            '<a href="mailto:help\u00ad@shop.example" rel="noopener noreferrer nofollow">'
            "write</a>\n"
        ),
    },
}
