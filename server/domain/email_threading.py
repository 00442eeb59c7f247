"""Which conversation an inbound email belongs to (PROTOCOLS.md P4), pure.

The caller gathers the facts first and this module decides:

1. `referenced_ids(in_reply_to, references)` says which Message-IDs to
   look up (normalized, newest first, at most `MAX_REFERENCES`);
2. the caller fetches the stored messages with those ids (`known`), then
   `conversations_to_fetch(...)` says which conversations to load; the
   caller loads them *and*, for any that was merged into another, the one
   it was merged into (`ConversationFacts.merged_into`);
3. `decide_thread(...)` returns a `ThreadDecision` that always says why.

The evidence is tried in P4's order, the first that holds deciding:

a. a signed reply address among the recipients (To, Cc, Delivered-To);
b. a signed Message-ID of ours in In-Reply-To, then in References from
   newest to oldest;
c. a stored Message-ID (of a message we received or sent) in the same
   order, only when the conversation is in this inbox *and* the sender is
   its contact;
d. otherwise a new conversation.

Whatever the evidence, a conversation in another workspace or another
inbox is never joined; each reference refused is listed in
`ThreadDecision.rejected` as `"{code} {source} {value}"`.

When the sender is not the conversation's contact (decided here, the
behaviour P4 leaves open):

- a signed token (a, b) on a *broadcast* (one mailing to many contacts: a
  newsletter, a campaign) does not join: the sender gets a new
  conversation linked to the one they replied into
  (`reason="new_different_sender"`, `linked_conversation_id`), unless a
  later piece of evidence names a conversation whose contact *is* the
  sender; so two people replying to the same newsletter never end up in
  one conversation;
- a signed token on one-to-one mail (a colleague the customer copied in
  replying to all) joins, flagged `different_sender`: the agent sees it
  and nothing is merged silently;
- a stored, unsigned Message-ID proves nothing about the sender, so it
  only ever joins for the contact (P4); for anyone else it is refused
  and, if nothing else matches, the sender gets a new conversation linked
  to that one.

A reply from the contact with another subject stays, flagged
`subject_changed`. Joining a resolved conversation reopens it
(`reopen=True`), except for automatic mail (an out-of-office reply to our
last message), which joins flagged `automatic` and leaves it resolved.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from enum import StrEnum

from server.domain.email_tokens import (
    TokenClaims,
    looks_like_message_id_token,
    looks_like_reply_address,
    parse_message_id_token,
    parse_reply_address,
)
from server.domain.values import ConversationStatus

MAX_REFERENCES = 50
MAX_RECIPIENTS = 50
MAX_MESSAGE_ID_LENGTH = 500  # as long as messages.external_id holds
MAX_MERGE_HOPS = 5
_DETAIL_VALUE = 80  # longest subject or address quoted in a detail sentence


class Reason(StrEnum):
    """`ThreadDecision.reason`: which rule decided."""

    REPLY_ADDRESS = "reply_address"
    SIGNED_MESSAGE_ID = "signed_message_id"
    STORED_MESSAGE_ID = "stored_message_id"
    NEW_DIFFERENT_SENDER = "new_different_sender"
    NEW_REJECTED_REFERENCES = "new_rejected_references"
    NEW_UNKNOWN_REFERENCES = "new_unknown_references"
    NEW_NO_REFERENCES = "new_no_references"


class Flag(StrEnum):
    """`ThreadDecision.flags`: what an agent should notice."""

    DIFFERENT_SENDER = "different_sender"
    SUBJECT_CHANGED = "subject_changed"
    AUTOMATIC = "automatic"


class Rejection(StrEnum):
    """The code that starts each `ThreadDecision.rejected` entry."""

    BAD_SIGNATURE = "bad_signature"
    OTHER_WORKSPACE = "other_workspace"
    OTHER_INBOX = "other_inbox"
    UNKNOWN_CONVERSATION = "unknown_conversation"
    DIFFERENT_SENDER = "different_sender"


@dataclasses.dataclass(frozen=True)
class InboundMail:
    """The facts of one inbound mail that threading looks at. `sender` is
    the From address; `recipients` the To, Cc and Delivered-To addresses;
    `in_reply_to` and `references` the ids in those headers (one id per
    item, or whole header values: ids are picked out of them). `automatic`
    is true for mail that says it was sent by a program (RFC 3834
    Auto-Submitted, an out-of-office reply)."""

    sender: str
    recipients: tuple[str, ...] = ()
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    subject: str = ""
    automatic: bool = False


@dataclasses.dataclass(frozen=True)
class KnownMessage:
    """A stored message whose Message-ID the mail refers to. `broadcast` is
    true when it went out as one mailing to many contacts (not merely with
    a Cc)."""

    conversation_id: int
    workspace_id: int
    inbox_id: int
    broadcast: bool = False


@dataclasses.dataclass(frozen=True)
class ConversationFacts:
    """A conversation the mail may belong to. `contact_addresses` are the
    email addresses of its contact (any case); `broadcast` is true for a
    conversation started by a mailing to many contacts; `merged_into` is
    the conversation it was merged into, if it was."""

    workspace_id: int
    inbox_id: int
    status: ConversationStatus
    contact_addresses: frozenset[str] = frozenset()
    subject: str | None = None
    broadcast: bool = False
    merged_into: int | None = None


@dataclasses.dataclass(frozen=True)
class ThreadDecision:
    """Where the mail goes and why.

    `conversation_id` is the conversation to add it to, or None for a new
    conversation (`linked_conversation_id` then names the conversation the
    sender replied into, when there was one they may not join). `reason`
    is a `Reason` code, `detail` a sentence for the audit trail, `evidence`
    the address or Message-ID that decided (None for a plain new
    conversation). `reopen` asks the caller to reopen the (resolved)
    conversation; `flags` are `Flag` codes; `rejected` lists each reference
    that was not used, as `"{code} {source} {value}"` with a `Rejection`
    code and a source of `recipient`, `in-reply-to` or `references`.
    """

    conversation_id: int | None
    reason: str
    detail: str
    reopen: bool = False
    flags: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    linked_conversation_id: int | None = None
    evidence: str | None = None


# -- normalizing ------------------------------------------------------------

_BRACKETED = re.compile(r"<([^<>]*)>")
# Every leading prefix at once, in one linear match: stripping one at a
# time was quadratic on a hostile "Re:Re:Re:…" subject.
_SUBJECT_PREFIX = re.compile(
    r"^(?:\s*(?:re|fwd?|aw|wg|sv|tr|vs|antw|rif|res|enc)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a])+\s*",
    re.IGNORECASE,
)
MAX_SUBJECT_COMPARED = 2000  # characters; stored subjects are at most 500


def _clean_id(value: str) -> str | None:
    value = value.strip()
    if not value or len(value) > MAX_MESSAGE_ID_LENGTH:
        return None
    if any(ch.isspace() or ch in "<>" or unicodedata.category(ch) == "Cc" for ch in value):
        return None
    left, at, right = value.rpartition("@")
    return f"<{left}@{right.lower()}>" if at and left and right else f"<{value}>"


def normalize_message_id(value: str) -> str | None:
    """One Message-ID as threading compares them: `<left@right>` with the
    right side lower-cased (the left side is kept as sent), or None when
    `value` is not one id. Stored Message-IDs must be normalized the same
    way for `known` lookups to find them."""
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return _clean_id(value)


def split_message_ids(header: str) -> list[str]:
    """The normalized ids in an In-Reply-To or References value, in order:
    every `<…>`; or, from a sender that left out the brackets, every
    whitespace-separated word with an `@`. Comments and junk are dropped."""
    found = _BRACKETED.findall(header)
    words = found if found else [w for w in header.split() if "@" in w]
    return [i for i in (_clean_id(w) for w in words) if i is not None]


def _sourced_ids(in_reply_to: Iterable[str], references: Iterable[str]) -> list[tuple[str, str]]:
    """(source, id) pairs: In-Reply-To in order, then References newest
    first; each id once, at most MAX_REFERENCES."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    irt = [i for value in in_reply_to for i in split_message_ids(value)]
    refs = [i for value in references for i in split_message_ids(value)]
    for source, ids in (("in-reply-to", irt), ("references", reversed(refs))):
        for msgid in ids:
            if msgid not in seen:
                seen.add(msgid)
                out.append((source, msgid))
                if len(out) == MAX_REFERENCES:
                    return out
    return out


def referenced_ids(in_reply_to: Iterable[str], references: Iterable[str]) -> list[str]:
    """The Message-IDs the caller should look up in the store, normalized,
    in the order threading tries them (In-Reply-To, then References newest
    first), each once, at most `MAX_REFERENCES`."""
    return [msgid for _, msgid in _sourced_ids(in_reply_to, references)]


def normalize_address(address: str) -> str:
    """An email address as threading compares them: the addr-spec out of
    `Name <addr>`, trimmed and lower-cased."""
    value = address.strip()
    if value.endswith(">") and "<" in value:
        value = value[value.rindex("<") + 1 : -1]
    return value.strip().lower()


def normalize_subject(subject: str | None) -> str:
    """A subject without its reply and forward prefixes (Re:, Fwd:, FW:,
    AW:, WG:, SV:, TR:, VS:, Antw:, also `Re[2]:`, repeated or mixed),
    with whitespace collapsed and case folded; "" for none."""
    value = unicodedata.normalize("NFKC", (subject or "")[:MAX_SUBJECT_COMPARED])
    value = _SUBJECT_PREFIX.sub("", value, count=1)
    return " ".join(value.split()).casefold()


# -- evidence ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Evidence:
    reason: Reason
    source: str
    value: str
    workspace_id: int
    inbox_id: int
    conversation_id: int
    broadcast: bool
    signed: bool


def _claimed(reason: Reason, source: str, value: str, claims: TokenClaims) -> _Evidence:
    return _Evidence(
        reason,
        source,
        value,
        claims.workspace_id,
        claims.inbox_id,
        claims.conversation_id,
        claims.broadcast,
        signed=True,
    )


def _recipients(mail: InboundMail) -> list[str]:
    out: list[str] = []
    for raw in mail.recipients:
        address = normalize_address(raw)
        if address and address not in out:
            out.append(address)
            if len(out) == MAX_RECIPIENTS:
                break
    return out


def _gather(
    mail: InboundMail,
    keys: Sequence[bytes],
    known: Mapping[str, KnownMessage],
    reply_domains: Collection[str] | None,
    rejected: list[str],
) -> tuple[list[_Evidence], bool]:
    """Every piece of evidence in the order it is tried, and whether the
    mail referred to anything at all. Forged tokens go to `rejected`."""
    evidence: list[_Evidence] = []
    referred = False
    for address in _recipients(mail):
        if not looks_like_reply_address(address, domains=reply_domains):
            continue
        referred = True
        claims = parse_reply_address(address, keys, domains=reply_domains)
        if claims is None:
            rejected.append(f"{Rejection.BAD_SIGNATURE} recipient {address}")
        else:
            evidence.append(_claimed(Reason.REPLY_ADDRESS, "recipient", address, claims))
    refs = _sourced_ids(mail.in_reply_to, mail.references)
    referred = referred or bool(refs)
    signed: set[str] = set()
    for source, msgid in refs:
        if not looks_like_message_id_token(msgid):
            continue
        claims = parse_message_id_token(msgid, keys)
        if claims is None:
            rejected.append(f"{Rejection.BAD_SIGNATURE} {source} {msgid}")
            continue
        signed.add(msgid)
        stored = known.get(msgid)
        ev = _claimed(Reason.SIGNED_MESSAGE_ID, source, msgid, claims)
        if stored is not None and stored.broadcast:
            ev = dataclasses.replace(ev, broadcast=True)
        evidence.append(ev)
    for source, msgid in refs:
        stored = known.get(msgid)
        if stored is None or msgid in signed:
            continue
        evidence.append(
            _Evidence(
                Reason.STORED_MESSAGE_ID,
                source,
                msgid,
                stored.workspace_id,
                stored.inbox_id,
                stored.conversation_id,
                stored.broadcast,
                signed=False,
            )
        )
    return evidence, referred


def conversations_to_fetch(
    mail: InboundMail,
    *,
    workspace_id: int,
    inbox_id: int,
    keys: Sequence[bytes],
    known: Mapping[str, KnownMessage],
    reply_domains: Collection[str] | None = None,
) -> list[int]:
    """The conversations `decide_thread` needs facts about, given the
    stored messages found for `referenced_ids(...)`: those that the mail's
    valid tokens and stored ids name in this inbox, each once. The caller
    also loads, for each that was merged, the conversation it was merged
    into (following the chain)."""
    evidence, _ = _gather(mail, keys, known, reply_domains, [])
    out: list[int] = []
    for ev in evidence:
        same = ev.workspace_id == workspace_id and ev.inbox_id == inbox_id
        if same and ev.conversation_id not in out:
            out.append(ev.conversation_id)
    return out


# -- the decision -----------------------------------------------------------


def _quote(value: str | None) -> str:
    text = " ".join((value or "").split())
    return repr(text if len(text) <= _DETAIL_VALUE else text[: _DETAIL_VALUE - 1] + "…")


def _resolve(
    conversation_id: int, conversations: Mapping[int, ConversationFacts]
) -> tuple[int, ConversationFacts] | None:
    """The conversation, or the one it was merged into (a few hops at
    most); None when the caller did not load it."""
    for _ in range(MAX_MERGE_HOPS + 1):
        facts = conversations.get(conversation_id)
        if facts is None:
            return None
        if facts.merged_into is None:
            return conversation_id, facts
        conversation_id = facts.merged_into
    return None


_HOW = {
    Reason.REPLY_ADDRESS: "the signed reply address",
    Reason.SIGNED_MESSAGE_ID: "the signed Message-ID",
    Reason.STORED_MESSAGE_ID: "the stored Message-ID",
}


def _attach(
    mail: InboundMail,
    ev: _Evidence,
    conversation_id: int,
    facts: ConversationFacts,
    *,
    different_sender: bool,
    rejected: list[str],
) -> ThreadDecision:
    flags: list[str] = []
    where = f"in {ev.source}" if ev.source != "recipient" else "among the recipients"
    parts = [f"{_HOW[ev.reason]} {ev.value} {where} names conversation {conversation_id}"]
    if conversation_id != ev.conversation_id:
        parts.append(f"conversation {ev.conversation_id} was merged into it")
    if different_sender:
        flags.append(Flag.DIFFERENT_SENDER)
        parts.append(
            f"the sender {_quote(normalize_address(mail.sender))} is not its contact"
            " (one-to-one mail: joined, flagged)"
        )
    theirs, ours = normalize_subject(facts.subject), normalize_subject(mail.subject)
    if theirs and ours and theirs != ours:
        flags.append(Flag.SUBJECT_CHANGED)
        parts.append(f"the subject changed from {_quote(facts.subject)} to {_quote(mail.subject)}")
    reopen = facts.status is ConversationStatus.RESOLVED
    if reopen and mail.automatic:
        reopen = False
        parts.append("it stays resolved: the mail is automatic")
    elif reopen:
        parts.append("it was resolved and is reopened")
    if mail.automatic:
        flags.append(Flag.AUTOMATIC)
    if rejected:
        parts.append(f"{len(rejected)} other reference(s) not used")
    return ThreadDecision(
        conversation_id=conversation_id,
        reason=ev.reason,
        detail="; ".join(parts) + ".",
        reopen=reopen,
        flags=tuple(flags),
        rejected=tuple(rejected),
        evidence=ev.value,
    )


def decide_thread(
    mail: InboundMail,
    *,
    workspace_id: int,
    inbox_id: int,
    keys: Sequence[bytes],
    known: Mapping[str, KnownMessage],
    conversations: Mapping[int, ConversationFacts],
    reply_domains: Collection[str] | None = None,
) -> ThreadDecision:
    """The conversation `mail`, received by inbox `inbox_id` of workspace
    `workspace_id`, belongs to (see the module docstring for the rules).

    `keys` verify our tokens (current key first, then previous ones);
    `known` maps normalized Message-IDs (from `referenced_ids`) to the
    stored messages that have them; `conversations` holds the facts for
    `conversations_to_fetch(...)` and the conversations they were merged
    into. A conversation missing from it is treated as gone.
    `reply_domains`, when given, are the only domains whose `reply+…`
    addresses are read as ours (so a customer's own plus-address that
    happens to look like a token is not reported as a forgery).
    """
    rejected: list[str] = []
    evidence, referred = _gather(mail, keys, known, reply_domains, rejected)
    sender = normalize_address(mail.sender)
    linked: tuple[int, _Evidence] | None = None

    for ev in evidence:
        entry = f"{ev.source} {ev.value}"
        if ev.workspace_id != workspace_id:
            rejected.append(f"{Rejection.OTHER_WORKSPACE} {entry}")
            continue
        if ev.inbox_id != inbox_id:
            rejected.append(f"{Rejection.OTHER_INBOX} {entry}")
            continue
        resolved = _resolve(ev.conversation_id, conversations)
        if resolved is None:
            rejected.append(f"{Rejection.UNKNOWN_CONVERSATION} {entry}")
            continue
        conversation_id, facts = resolved
        if facts.workspace_id != workspace_id:
            rejected.append(f"{Rejection.OTHER_WORKSPACE} {entry}")
            continue
        if facts.inbox_id != inbox_id:
            rejected.append(f"{Rejection.OTHER_INBOX} {entry}")
            continue
        contact = {normalize_address(a) for a in facts.contact_addresses}
        if sender and sender in contact:
            return _attach(
                mail, ev, conversation_id, facts, different_sender=False, rejected=rejected
            )
        # Someone other than the contact replied into this conversation.
        one_to_one = ev.signed and not (ev.broadcast or facts.broadcast)
        if one_to_one and linked is None:
            return _attach(
                mail, ev, conversation_id, facts, different_sender=True, rejected=rejected
            )
        rejected.append(f"{Rejection.DIFFERENT_SENDER} {entry}")
        if linked is None:
            linked = (conversation_id, ev)

    if linked is not None:
        conversation_id, ev = linked
        kind = "a broadcast" if ev.signed else "an unsigned stored Message-ID"
        return ThreadDecision(
            conversation_id=None,
            reason=Reason.NEW_DIFFERENT_SENDER,
            detail=(
                f"{_HOW[ev.reason]} {ev.value} names conversation {conversation_id}, but the"
                f" sender {_quote(sender)} is not its contact and it is {kind}: a new"
                f" conversation linked to {conversation_id}."
            ),
            flags=(Flag.DIFFERENT_SENDER,),
            rejected=tuple(rejected),
            linked_conversation_id=conversation_id,
            evidence=ev.value,
        )
    if rejected:
        codes = sorted({r.split(" ", 1)[0] for r in rejected})
        return ThreadDecision(
            conversation_id=None,
            reason=Reason.NEW_REJECTED_REFERENCES,
            detail=(
                f"new conversation: {len(rejected)} reference(s) refused"
                f" ({', '.join(codes)}), none usable."
            ),
            rejected=tuple(rejected),
        )
    if referred:
        return ThreadDecision(
            conversation_id=None,
            reason=Reason.NEW_UNKNOWN_REFERENCES,
            detail="new conversation: the mail refers to no message Threadline knows.",
        )
    return ThreadDecision(
        conversation_id=None,
        reason=Reason.NEW_NO_REFERENCES,
        detail="new conversation: the mail is not a reply to anything.",
    )
