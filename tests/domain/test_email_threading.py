"""Which conversation an inbound email joins (PROTOCOLS.md P4): the signed
reply address, then signed Message-IDs (In-Reply-To, then References newest
first), then stored Message-IDs from the contact in the same inbox, then a
new conversation; never another inbox or workspace; a different sender is
flagged or split off, never silently merged; every decision says why."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.email_threading import (
    MAX_REFERENCES,
    ConversationFacts,
    Flag,
    InboundMail,
    KnownMessage,
    Reason,
    Rejection,
    ThreadDecision,
    conversations_to_fetch,
    decide_thread,
    normalize_message_id,
    normalize_subject,
    referenced_ids,
    split_message_ids,
)
from server.domain.email_tokens import TokenClaims, make_message_id, make_reply_address
from server.domain.values import ConversationStatus

KEY = b"current-key-0123456789abcdef"
OLD_KEY = b"previous-key-0123456789abcdef"
FORGER_KEY = b"not-our-key-0123456789abcdef"
WS, INBOX = 1, 10
ANN, BEA, CARL = "ann@customer.test", "bea@other.test", "carl@customer.test"
OPEN, RESOLVED = ConversationStatus.OPEN, ConversationStatus.RESOLVED


def conv(
    contact: str | None,
    *,
    ws: int = WS,
    inbox: int = INBOX,
    status: ConversationStatus = OPEN,
    subject: str = "Order 12 arrived broken",
    broadcast: bool = False,
    merged_into: int | None = None,
) -> ConversationFacts:
    return ConversationFacts(
        workspace_id=ws,
        inbox_id=inbox,
        status=status,
        contact_addresses=frozenset({contact} if contact else ()),
        subject=subject,
        broadcast=broadcast,
        merged_into=merged_into,
    )


CONVERSATIONS = {
    100: conv("Ann@Customer.test"),  # ann, one-to-one, open
    101: conv(ANN, status=RESOLVED),
    102: conv(BEA),
    103: conv(ANN, status=RESOLVED, merged_into=100),
    200: conv(ANN, inbox=11),  # same workspace, another inbox
    300: conv(ANN, ws=2, inbox=20),  # another workspace
    401: conv(ANN, subject="Our spring news", broadcast=True),  # ann's newsletter copy
    402: conv(None, subject="Our spring news", broadcast=True),  # a contact-less mailing
}

ANN_FIRST = "<CAF-ann-first@mail.customer.test>"
BEA_FIRST = "<bea-1@other.test>"
ANN_OTHER_INBOX = "<ann-in-11@mail.customer.test>"
ANN_OTHER_WS = "<ann-in-ws2@mail.customer.test>"
OUTLOOK = "<AM0PR01MB1234ABCD@AM0PR01MB1234.eurprd01.prod.outlook.com>"
KNOWN = {
    ANN_FIRST: KnownMessage(conversation_id=100, workspace_id=WS, inbox_id=INBOX),
    BEA_FIRST: KnownMessage(conversation_id=102, workspace_id=WS, inbox_id=INBOX),
    ANN_OTHER_INBOX: KnownMessage(conversation_id=200, workspace_id=WS, inbox_id=11),
    ANN_OTHER_WS: KnownMessage(conversation_id=300, workspace_id=2, inbox_id=20),
}


def tok(
    conversation_id: int,
    *,
    ws: int = WS,
    inbox: int = INBOX,
    ref: int = 1,
    broadcast: bool = False,
    key: bytes = KEY,
) -> str:
    claims = TokenClaims(ws, inbox, conversation_id, message_ref=ref, broadcast=broadcast)
    return make_message_id(claims, key=key, domain="mail.threadline.test")


def reply_to(conversation_id: int, *, ws: int = WS, inbox: int = INBOX, key: bytes = KEY) -> str:
    claims = TokenClaims(ws, inbox, conversation_id)
    return make_reply_address(claims, key=key, domain="reply.threadline.test")


def mail(sender: str = ANN, **fields: Any) -> InboundMail:
    fields.setdefault("subject", "Re: Order 12 arrived broken")
    fields.setdefault("recipients", ("support@shop.test",))
    return InboundMail(sender=sender, **fields)


def decide(
    m: InboundMail,
    *,
    known: dict[str, KnownMessage] | None = None,
    conversations: dict[int, ConversationFacts] | None = None,
) -> ThreadDecision:
    return decide_thread(
        m,
        workspace_id=WS,
        inbox_id=INBOX,
        keys=[KEY, OLD_KEY],
        known=KNOWN if known is None else known,
        conversations=CONVERSATIONS if conversations is None else conversations,
    )


def codes(decision: ThreadDecision) -> list[str]:
    return [r.split(" ", 1)[0] for r in decision.rejected]


@dataclasses.dataclass(frozen=True)
class Case:
    mail: InboundMail
    conversation_id: int | None
    reason: Reason
    flags: tuple[str, ...] = ()
    reopen: bool = False
    rejected: tuple[str, ...] = ()
    linked: int | None = None
    known: dict[str, KnownMessage] = dataclasses.field(default_factory=lambda: KNOWN)


BROADCAST_REF = tok(100, ref=9)
CASES = {
    "reply via the signed reply address": Case(
        mail(recipients=(f"Shop Support <{reply_to(100)}>",)), 100, Reason.REPLY_ADDRESS
    ),
    "reply address in Delivered-To, upper-cased by an MTA": Case(
        mail(recipients=("support@shop.test", reply_to(100).upper())), 100, Reason.REPLY_ADDRESS
    ),
    "reply address signed with the previous key": Case(
        mail(recipients=(reply_to(100, key=OLD_KEY),)), 100, Reason.REPLY_ADDRESS
    ),
    "Outlook rewrote In-Reply-To but kept References": Case(
        mail(in_reply_to=(OUTLOOK,), references=(ANN_FIRST, tok(100, ref=2))),
        100,
        Reason.SIGNED_MESSAGE_ID,
    ),
    "only References, newest last": Case(
        mail(references=(tok(101, ref=1), tok(100, ref=2))), 100, Reason.SIGNED_MESSAGE_ID
    ),
    "In-Reply-To is tried before References": Case(
        mail(in_reply_to=(tok(101),), references=(tok(100),)),
        101,
        Reason.SIGNED_MESSAGE_ID,
        reopen=True,
    ),
    "the reply address is tried before Message-IDs": Case(
        mail(recipients=(reply_to(100),), in_reply_to=(tok(101),)), 100, Reason.REPLY_ADDRESS
    ),
    "a signed token is tried before a stored id": Case(
        mail(in_reply_to=(BEA_FIRST,), references=(tok(100),)), 100, Reason.SIGNED_MESSAGE_ID
    ),
    "whole header values are split into ids": Case(
        mail(references=(f"{ANN_FIRST}\r\n {tok(100)} (comment)",)), 100, Reason.SIGNED_MESSAGE_ID
    ),
    "a forged reference (bad signature)": Case(
        mail(in_reply_to=(tok(100, key=FORGER_KEY),)),
        None,
        Reason.NEW_REJECTED_REFERENCES,
        rejected=(Rejection.BAD_SIGNATURE,),
    ),
    "a forged reply address": Case(
        mail(recipients=(reply_to(100, key=FORGER_KEY),)),
        None,
        Reason.NEW_REJECTED_REFERENCES,
        rejected=(Rejection.BAD_SIGNATURE,),
    ),
    "a valid token for another inbox": Case(
        mail(in_reply_to=(tok(200, inbox=11),)),
        None,
        Reason.NEW_REJECTED_REFERENCES,
        rejected=(Rejection.OTHER_INBOX,),
    ),
    "a valid reply address for another inbox": Case(
        mail(recipients=(reply_to(200, inbox=11),)),
        None,
        Reason.NEW_REJECTED_REFERENCES,
        rejected=(Rejection.OTHER_INBOX,),
    ),
    "a valid token for another workspace": Case(
        mail(references=(tok(300, ws=2, inbox=20),)),
        None,
        Reason.NEW_REJECTED_REFERENCES,
        rejected=(Rejection.OTHER_WORKSPACE,),
    ),
    "a token claiming this inbox for a conversation that is elsewhere": Case(
        mail(references=(tok(200),)),
        None,
        Reason.NEW_REJECTED_REFERENCES,
        rejected=(Rejection.OTHER_INBOX,),
    ),
    "a foreign token is skipped, a later valid one used": Case(
        mail(in_reply_to=(tok(300, ws=2, inbox=20),), references=(tok(100),)),
        100,
        Reason.SIGNED_MESSAGE_ID,
        rejected=(Rejection.OTHER_WORKSPACE,),
    ),
    "a newsletter reply from its recipient": Case(
        mail(references=(tok(401, broadcast=True),), subject="Re: Our spring news"),
        401,
        Reason.SIGNED_MESSAGE_ID,
    ),
    "a newsletter reply from someone it was forwarded to": Case(
        mail(CARL, references=(tok(401, broadcast=True),), subject="Re: Our spring news"),
        None,
        Reason.NEW_DIFFERENT_SENDER,
        flags=(Flag.DIFFERENT_SENDER,),
        rejected=(Rejection.DIFFERENT_SENDER,),
        linked=401,
    ),
    "a reply to a contact-less mailing": Case(
        mail(references=(tok(402, broadcast=True),), subject="Re: Our spring news"),
        None,
        Reason.NEW_DIFFERENT_SENDER,
        flags=(Flag.DIFFERENT_SENDER,),
        rejected=(Rejection.DIFFERENT_SENDER,),
        linked=402,
    ),
    "a broadcast marked on the stored message, not in the token": Case(
        mail(CARL, references=(BROADCAST_REF,)),
        None,
        Reason.NEW_DIFFERENT_SENDER,
        flags=(Flag.DIFFERENT_SENDER,),
        rejected=(Rejection.DIFFERENT_SENDER,),
        linked=100,
        known={
            **KNOWN,
            BROADCAST_REF: KnownMessage(
                conversation_id=100, workspace_id=WS, inbox_id=INBOX, broadcast=True
            ),
        },
    ),
    "a colleague copied in replies to one-to-one mail": Case(
        mail(CARL, recipients=(reply_to(100), ANN), references=(tok(100),)),
        100,
        Reason.REPLY_ADDRESS,
        flags=(Flag.DIFFERENT_SENDER,),
    ),
    "a changed subject from the same person": Case(
        mail(references=(tok(100),), subject="RE: AW: New address for invoices"),
        100,
        Reason.SIGNED_MESSAGE_ID,
        flags=(Flag.SUBJECT_CHANGED,),
    ),
    "the same subject behind other prefixes": Case(
        mail(references=(tok(100),), subject="  WG: re[2]:  order 12  ARRIVED broken "),
        100,
        Reason.SIGNED_MESSAGE_ID,
    ),
    "a reply after the conversation was resolved": Case(
        mail(references=(tok(101),)), 101, Reason.SIGNED_MESSAGE_ID, reopen=True
    ),
    "an out-of-office reply to a resolved conversation": Case(
        mail(references=(tok(101),), automatic=True),
        101,
        Reason.SIGNED_MESSAGE_ID,
        flags=(Flag.AUTOMATIC,),
    ),
    "a token for a conversation merged into another": Case(
        mail(references=(tok(103),)), 100, Reason.SIGNED_MESSAGE_ID
    ),
    "a token for a conversation the caller did not load": Case(
        mail(references=(tok(999),)),
        None,
        Reason.NEW_REJECTED_REFERENCES,
        rejected=(Rejection.UNKNOWN_CONVERSATION,),
    ),
    "a stored Message-ID from the same contact in the same inbox": Case(
        mail(in_reply_to=("<CAF-ann-first@MAIL.Customer.TEST>",)), 100, Reason.STORED_MESSAGE_ID
    ),
    "a stored Message-ID of another contact": Case(
        mail(in_reply_to=(BEA_FIRST,)),
        None,
        Reason.NEW_DIFFERENT_SENDER,
        flags=(Flag.DIFFERENT_SENDER,),
        rejected=(Rejection.DIFFERENT_SENDER,),
        linked=102,
    ),
    "a stored Message-ID of another contact, then one of the sender's": Case(
        mail(in_reply_to=(BEA_FIRST,), references=(ANN_FIRST,)),
        100,
        Reason.STORED_MESSAGE_ID,
        rejected=(Rejection.DIFFERENT_SENDER,),
    ),
    "a stored Message-ID in another inbox": Case(
        mail(in_reply_to=(ANN_OTHER_INBOX,)),
        None,
        Reason.NEW_REJECTED_REFERENCES,
        rejected=(Rejection.OTHER_INBOX,),
    ),
    "a stored Message-ID in another workspace": Case(
        mail(in_reply_to=(ANN_OTHER_WS,)),
        None,
        Reason.NEW_REJECTED_REFERENCES,
        rejected=(Rejection.OTHER_WORKSPACE,),
    ),
    "references nobody knows": Case(
        mail(in_reply_to=(OUTLOOK,), references=("<x@y.test>",)),
        None,
        Reason.NEW_UNKNOWN_REFERENCES,
    ),
    "no references": Case(mail(subject="Hello"), None, Reason.NEW_NO_REFERENCES),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_threading_table(case: Case) -> None:
    decision = decide(case.mail, known=case.known)
    assert (decision.conversation_id, decision.reason) == (case.conversation_id, case.reason)
    assert decision.flags == case.flags
    assert decision.reopen is case.reopen
    assert codes(decision) == list(case.rejected)
    assert decision.linked_conversation_id == case.linked
    assert decision.detail.endswith(".") and len(decision.detail) > 20
    if case.conversation_id is not None or case.linked is not None:
        assert decision.evidence is not None
        assert decision.evidence in decision.detail


def test_two_people_replying_to_one_newsletter_never_share_a_conversation() -> None:
    newsletter = tok(401, ref=7, broadcast=True)
    headers = {"in_reply_to": (newsletter,), "references": (newsletter,)}
    ann = decide(mail(ANN, recipients=(reply_to(401),), **headers))
    carl = decide(mail(CARL, recipients=(reply_to(401),), **headers))
    bea = decide(mail(BEA, **headers))
    assert ann.conversation_id == 401
    assert carl.conversation_id is None and bea.conversation_id is None
    assert carl.linked_conversation_id == bea.linked_conversation_id == 401
    # A mailing with no contact of its own: every replier gets their own.
    mailing = tok(402, broadcast=True)
    for sender in (ANN, BEA, CARL):
        decision = decide(mail(sender, in_reply_to=(mailing,)))
        assert decision.conversation_id is None
        assert decision.reason == Reason.NEW_DIFFERENT_SENDER


def test_a_newsletter_replier_joins_their_own_conversation_named_later() -> None:
    # Carl replied to the newsletter before and we answered him in conversation
    # 500; his next mail quotes both the newsletter and our answer.
    conversations = {**CONVERSATIONS, 500: conv(CARL, subject="Our spring news")}
    m = mail(
        CARL,
        subject="Re: Our spring news",
        in_reply_to=(tok(401, broadcast=True),),
        references=(tok(500), tok(401, broadcast=True)),
    )
    decision = decide(m, conversations=conversations)
    assert decision.conversation_id == 500
    assert codes(decision) == [Rejection.DIFFERENT_SENDER]
    # But a one-to-one conversation of someone else named after the
    # newsletter is not joined either: once split off, only the sender's own.
    conversations[500] = conv(BEA)
    decision = decide(m, conversations=conversations)
    assert decision.conversation_id is None
    assert decision.linked_conversation_id == 401


def test_the_detail_names_the_evidence_and_what_changed() -> None:
    decision = decide(mail(CARL, references=(tok(101),), subject="Fwd: Something else entirely"))
    assert decision.conversation_id == 101
    assert decision.flags == (Flag.DIFFERENT_SENDER, Flag.SUBJECT_CHANGED)
    assert decision.reopen
    assert "carl@customer.test" in decision.detail
    assert "'Fwd: Something else entirely'" in decision.detail
    assert "reopened" in decision.detail


def test_rejected_entries_name_code_source_and_value() -> None:
    forged = tok(100, key=FORGER_KEY)
    other = reply_to(200, inbox=11)
    decision = decide(mail(recipients=(other,), in_reply_to=(forged,)))
    assert decision.rejected == (
        f"bad_signature in-reply-to {normalize_message_id(forged)}",
        f"other_inbox recipient {other}",
    )
    assert "bad_signature" in decision.detail and "other_inbox" in decision.detail


def test_reply_domains_keep_a_customers_own_plus_address_out() -> None:
    lookalike = "reply+abcdefgh.abcdefghijklmnop@gmail.test"
    m = mail(recipients=(lookalike, "support@shop.test"), references=(tok(100),))
    assert codes(decide(m)) == [Rejection.BAD_SIGNATURE]
    decision = decide_thread(
        m,
        workspace_id=WS,
        inbox_id=INBOX,
        keys=[KEY],
        known=KNOWN,
        conversations=CONVERSATIONS,
        reply_domains=["Reply.Threadline.test"],
    )
    assert (decision.conversation_id, decision.rejected) == (100, ())
    only_ours = mail(recipients=(reply_to(100),))
    assert (
        decide_thread(
            only_ours,
            workspace_id=WS,
            inbox_id=INBOX,
            keys=[KEY],
            known=KNOWN,
            conversations=CONVERSATIONS,
            reply_domains=["reply.threadline.test"],
        ).reason
        == Reason.REPLY_ADDRESS
    )


def test_a_sender_with_no_address_is_never_the_contact() -> None:
    decision = decide(mail("", references=(tok(401, broadcast=True),)))
    assert decision.conversation_id is None
    assert decision.reason == Reason.NEW_DIFFERENT_SENDER


def test_the_sender_is_compared_as_an_address() -> None:
    m = mail(
        "Ann Example <ANN@customer.TEST>",
        references=(tok(401, broadcast=True),),
        subject="Re: Our spring news",
    )
    decision = decide(m)
    assert decision.conversation_id == 401
    assert decision.flags == ()


def test_a_merge_chain_that_loops_is_treated_as_gone() -> None:
    conversations = {
        **CONVERSATIONS,
        600: conv(ANN, merged_into=601),
        601: conv(ANN, merged_into=600),
    }
    decision = decide(mail(references=(tok(600),)), conversations=conversations)
    assert decision.conversation_id is None
    assert codes(decision) == [Rejection.UNKNOWN_CONVERSATION]


def test_a_merge_into_another_inbox_is_not_followed_there() -> None:
    conversations = {**CONVERSATIONS, 600: conv(ANN, merged_into=200)}
    decision = decide(mail(references=(tok(600),)), conversations=conversations)
    assert decision.conversation_id is None
    assert codes(decision) == [Rejection.OTHER_INBOX]


# -- the caller's look-ups ----------------------------------------------------------


def test_referenced_ids_are_in_reply_to_then_references_newest_first() -> None:
    assert referenced_ids(["<c@x.test>"], ["<a@x.test> <b@x.test>", "<c@x.test>"]) == [
        "<c@x.test>",
        "<b@x.test>",
        "<a@x.test>",
    ]


def test_referenced_ids_are_bounded_and_keep_the_newest() -> None:
    refs = [f"<id{i}@x.test>" for i in range(500)]
    ids = referenced_ids(["<irt@x.test>"], refs)
    assert len(ids) == MAX_REFERENCES
    assert ids[:3] == ["<irt@x.test>", "<id499@x.test>", "<id498@x.test>"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<Abc@Mail.Example.TEST>", "<Abc@mail.example.test>"),
        ("  abc@x.test ", "<abc@x.test>"),
        ("<no-at-sign>", "<no-at-sign>"),
        ("<a b@x.test>", None),
        ("<>", None),
        ("", None),
        ("<a@x\x00.test>", None),
        ("<" + "a" * 600 + "@x.test>", None),
    ],
)
def test_normalize_message_id(value: str, expected: str | None) -> None:
    assert normalize_message_id(value) == expected


def test_split_message_ids_tolerates_junk_and_missing_brackets() -> None:
    assert split_message_ids("<a@x.test> (Ann's message of Monday) <b@x.test>") == [
        "<a@x.test>",
        "<b@x.test>",
    ]
    assert split_message_ids("a@x.test b@X.TEST junk") == ["<a@x.test>", "<b@x.test>"]
    assert split_message_ids("") == []


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: Order 12", "order 12"),
        ("RE: Fwd: AW: WG: SV: TR: FW: Order 12", "order 12"),
        ("Re[3]:  Order\t12 ", "order 12"),
        ("Re:Re:Re:", ""),
        ("Antw: Order 12", "order 12"),
        ("Reorder 12", "reorder 12"),
        ("Order 12 re: shipping", "order 12 re: shipping"),
        ("", ""),
        # A hostile pile of prefixes is stripped in one pass, not one by one.
        ("Re: " * 400 + "Order 12", "order 12"),
        ("Re:" * 100_000 + "Order 12", "re"),  # cut at MAX_SUBJECT_COMPARED first
    ],
)
def test_normalize_subject(subject: str, expected: str) -> None:
    assert normalize_subject(subject) == expected


def test_conversations_to_fetch_lists_this_inbox_only() -> None:
    m = mail(
        recipients=(reply_to(100), reply_to(200, inbox=11)),
        in_reply_to=(tok(300, ws=2, inbox=20), tok(101, key=FORGER_KEY)),
        references=(ANN_FIRST, BEA_FIRST, ANN_OTHER_INBOX, tok(401)),
    )
    fetch = conversations_to_fetch(m, workspace_id=WS, inbox_id=INBOX, keys=[KEY], known=KNOWN)
    assert fetch == [100, 401, 102]


# -- properties --------------------------------------------------------------------

SENDERS = [ANN, BEA, CARL, ""]
places = st.sampled_from([(1, 10), (1, 11), (2, 20), (2, 10)])
conversation_facts = st.builds(
    lambda place, status, contact, broadcast, subject, merged: ConversationFacts(
        workspace_id=place[0],
        inbox_id=place[1],
        status=status,
        contact_addresses=frozenset(contact),
        subject=subject,
        broadcast=broadcast,
        merged_into=merged,
    ),
    places,
    st.sampled_from(list(ConversationStatus)),
    st.sets(st.sampled_from(SENDERS[:3]), max_size=2),
    st.booleans(),
    st.sampled_from(["Order 12", "Re: order 12", "Invoice", None]),
    st.none() | st.integers(1, 6),
)
tokens = st.builds(
    lambda place, cid, broadcast, key: tok(
        cid, ws=place[0], inbox=place[1], broadcast=broadcast, key=key
    ),
    places,
    st.integers(1, 6),
    st.booleans(),
    st.sampled_from([KEY, OLD_KEY, FORGER_KEY]),
)
replies = st.builds(
    lambda place, cid, key: reply_to(cid, ws=place[0], inbox=place[1], key=key),
    places,
    st.integers(1, 6),
    st.sampled_from([KEY, FORGER_KEY]),
)
stored_ids = st.sampled_from([f"<m{i}@mail.test>" for i in range(6)])
known_messages = st.builds(
    lambda place, cid, broadcast: KnownMessage(cid, place[0], place[1], broadcast),
    places,
    st.integers(1, 6),
    st.booleans(),
)
references = st.lists(tokens | stored_ids | st.just(OUTLOOK), max_size=6)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(st.integers(1, 6), conversation_facts, max_size=6),
    st.dictionaries(stored_ids, known_messages, max_size=6),
    st.sampled_from(SENDERS),
    st.lists(replies | st.just("support@shop.test"), max_size=3),
    references,
    references,
    st.booleans(),
)
def test_no_mail_ever_joins_another_inbox_or_workspace(
    conversations: dict[int, ConversationFacts],
    known: dict[str, KnownMessage],
    sender: str,
    recipients: list[str],
    in_reply_to: list[str],
    refs: list[str],
    automatic: bool,
) -> None:
    m = InboundMail(
        sender=sender,
        recipients=tuple(recipients),
        in_reply_to=tuple(in_reply_to),
        references=tuple(refs),
        subject="Re: Order 12",
        automatic=automatic,
    )
    decision = decide(m, known=known, conversations=conversations)
    assert decision == decide(m, known=known, conversations=conversations)
    assert decision.reason in set(Reason)
    assert decision.detail
    assert all(r.split(" ", 1)[0] in set(Rejection) for r in decision.rejected)
    for cid in (decision.conversation_id, decision.linked_conversation_id):
        if cid is not None:
            facts = conversations[cid]
            assert (facts.workspace_id, facts.inbox_id) == (WS, INBOX)
            assert facts.merged_into is None
    if decision.conversation_id is None:
        assert not decision.reopen
        assert decision.reason.startswith("new_")
        return
    facts = conversations[decision.conversation_id]
    assert decision.reopen == (facts.status is RESOLVED and not automatic)
    if sender not in facts.contact_addresses:
        # Someone else only ever joins one-to-one mail by a signed token, flagged.
        assert Flag.DIFFERENT_SENDER in decision.flags
        assert decision.reason in (Reason.REPLY_ADDRESS, Reason.SIGNED_MESSAGE_ID)
        assert not facts.broadcast
    else:
        assert Flag.DIFFERENT_SENDER not in decision.flags
    if decision.reason == Reason.STORED_MESSAGE_ID:
        assert sender in facts.contact_addresses


@settings(max_examples=200, deadline=None)
@given(st.lists(tokens, max_size=5), st.lists(replies, max_size=3))
def test_tokens_under_a_key_we_do_not_hold_never_attach(
    ids: list[str], addresses: list[str]
) -> None:
    m = mail(recipients=tuple(addresses), references=tuple(ids))
    decision = decide_thread(
        m,
        workspace_id=WS,
        inbox_id=INBOX,
        keys=[b"z" * 32],
        known={},
        conversations={i: conv(ANN) for i in range(1, 7)},
    )
    assert decision.conversation_id is None
    assert decision.linked_conversation_id is None
    assert set(codes(decision)) <= {Rejection.BAD_SIGNATURE}
    assert len(decision.rejected) == len(set(ids)) + len(set(addresses))
