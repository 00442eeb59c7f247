"""Widget visitors (F8, PROTOCOLS.md P3): sessions, identification, what
they tell us about themselves and what they do.

These actions run as the system actor of the inbox's workspace; the caller
has resolved the visitor's session token first and passes its id. Trust
rules: the session token is ours (random, stored hashed); an identity is
*verified* only when the server checked an HMAC or a signed JWT with the
inbox's secret. Only a verified identity moves a session onto an existing
contact (whose history the visitor then sees); an unverified one is kept
as claims (attributes) on the visitor's own contact, never as an identity,
so that nobody can squat an email or user id ahead of its real owner.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from server.actions.agents import check_email
from server.actions.attachments import Uploader
from server.actions.contact_suggestions import suggest_claimed_owner
from server.actions.contacts import (
    IdentityInput,
    add_identity,
    do_update_contact,
    find_or_create_contact,
)
from server.actions.context import ActionContext
from server.actions.conversations import do_change_conversation_labels
from server.actions.messages import MessageResult, do_receive_message
from server.actions.promo_codes import redeem_tracked_code
from server.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.domain.events import ContactEventTracked, VisitorIdentified, VisitorSessionStarted
from server.domain.json_types import JsonValue
from server.domain.values import (
    IdentityKind,
    InboxKind,
    UploaderKind,
    normalize_identity,
    widget_external_id,
)
from server.domain.widget_identity import (
    origin_allowed,
    verify_identity_hash,
    verify_identity_token,
)
from server.queries.access import access_inbox
from server.queries.records import VisitorSession, load
from server.queries.visitor_live import ANONYMOUS_NAME_PREFIX
from server.storage import tables as t
from server.storage.secrets import SecretBox, hash_token, new_token

# Conversations started from the offline form carry this label.
OFFLINE_LABEL = "offline"


@dataclasses.dataclass(frozen=True)
class NewVisitorSession:
    """`token` is shown once: the widget keeps it, the server keeps its hash."""

    session_id: int
    token: str
    contact_id: int
    inbox_id: int


@dataclasses.dataclass(frozen=True)
class Identified:
    contact_id: int
    verified: bool


async def do_start_visitor_session(
    ctx: ActionContext, *, inbox_id: int, origin: str | None
) -> NewVisitorSession:
    """A new anonymous contact (with a random `visitor` identity) and a
    session for it. `origin` is the page the request came from (None for
    Threadline's own iframe or a non-browser); it must be one of the
    inbox's `allowed_domains`, if it has any."""
    inbox = await access_inbox(ctx.conn, ctx.actor, inbox_id)
    if inbox.kind != InboxKind.WIDGET.value:
        raise NotFound("inbox not found", field="inbox_token")
    check_widget_origin(inbox.settings, origin)
    visitor_id = secrets.token_hex(16)
    contact_id, _ = await find_or_create_contact(
        ctx,
        identity=IdentityInput(IdentityKind.VISITOR, visitor_id),
        name=f"{ANONYMOUS_NAME_PREFIX}{visitor_id[:6]}",
    )
    token = new_token("tlw")
    session_id: int = (
        await ctx.conn.execute(
            t.visitor_sessions.insert()
            .values(
                workspace_id=inbox.workspace_id,
                inbox_id=inbox_id,
                contact_id=contact_id,
                proven_contact_id=contact_id,
                token_hash=hash_token(token),
                verified=False,
                created_at=ctx.now,
                last_seen_at=ctx.now,
            )
            .returning(t.visitor_sessions.c.id)
        )
    ).scalar_one()
    await ctx.emit(
        VisitorSessionStarted(
            workspace_id=inbox.workspace_id,
            session_id=session_id,
            inbox_id=inbox_id,
            contact_id=contact_id,
        )
    )
    return NewVisitorSession(session_id, token, contact_id, inbox_id)


def check_widget_origin(inbox_settings: Mapping[str, JsonValue], origin: str | None) -> None:
    if not origin_allowed(origin, inbox_settings.get("allowed_domains")):
        raise Forbidden("this site may not use this inbox's widget", field="Origin")


async def _session(ctx: ActionContext, session_id: int) -> VisitorSession:
    row = (
        await ctx.conn.execute(
            sa.select(t.visitor_sessions)
            .where(
                t.visitor_sessions.c.id == session_id,
                t.visitor_sessions.c.workspace_id == ctx.actor.workspace_id,
            )
            .with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound("visitor session not found")
    return load(VisitorSession, row)


async def _owner(ctx: ActionContext, kind: IdentityKind, value: str) -> int | None:
    owner: int | None = await ctx.conn.scalar(
        sa.select(t.contact_identities.c.contact_id).where(
            t.contact_identities.c.workspace_id == ctx.actor.workspace_id,
            t.contact_identities.c.kind == kind.value,
            t.contact_identities.c.value == normalize_identity(kind, value),
        )
    )
    return owner


async def do_identify_visitor(
    ctx: ActionContext,
    *,
    session_id: int,
    box: SecretBox,
    user_id: str | None = None,
    email: str | None = None,
    name: str | None = None,
    identity_hash: str | None = None,
    identity_token: str | None = None,
) -> Identified:
    """The widget's `setUser`. With `identity_hash` (HMAC of `user_id`) or
    `identity_token` (HS256 JWT: `sub`, `email`, `exp`) checked against the
    inbox's secret, the identity is verified: the session moves onto the
    contact already holding that user id (or, for a JWT, that email), or
    the visitor's contact gains those identities. Otherwise the claims are
    recorded as attributes of the visitor's own contact only — or refused
    when the inbox sets `require_verification`."""
    session = await _session(ctx, session_id)
    inbox = await access_inbox(ctx.conn, ctx.actor, session.inbox_id)
    if identity_hash is not None and identity_token is not None:
        raise InvalidInput("send identity_hash or identity_token, not both", field="identity_token")
    verified_email: str | None = None
    if identity_token is not None or identity_hash is not None:
        secret = box.decrypt(inbox.secret_encrypted) if inbox.secret_encrypted else None
        field = "identity_token" if identity_token is not None else "identity_hash"
        if secret is None:
            raise Forbidden(f"{field}: this inbox has no identity secret", field=field)
        if identity_token is not None:
            claims = verify_identity_token(identity_token, secret, ctx.now)
            if user_id is not None and user_id != claims.user_id:
                raise InvalidInput("user_id: differs from the token's 'sub'", field="user_id")
            user_id = claims.user_id
            verified_email = email = check_email(claims.email, field="identity_token")
        else:
            if user_id is None:
                raise InvalidInput("user_id: is required with identity_hash", field="user_id")
            if not verify_identity_hash(secret, user_id, identity_hash or ""):
                raise Forbidden("identity_hash: does not match user_id", field="identity_hash")
    elif inbox.settings.get("require_verification"):
        raise Forbidden(
            "identity_hash: this inbox requires a verified identity", field="identity_hash"
        )
    elif session.verified:
        raise Forbidden(
            "identity_hash: this session is verified; an unverified identity can't change it",
            field="identity_hash",
        )
    if user_id is not None and (identity_hash is not None or identity_token is not None):
        contact_id = await _verified_contact(ctx, session, user_id, verified_email)
        # With an HMAC only the user id is proven; an email sent with it is
        # a claim, kept as an attribute of the (proven) user's contact.
        claimed = {"email": email} if email is not None and verified_email is None else None
        await do_update_contact(ctx, contact_id=contact_id, name=name, attributes=claimed)
        verified = True
    else:
        contact_id, verified = session.contact_id, False
        claims_attrs = {"user_id": user_id, "email": email}
        await do_update_contact(
            ctx,
            contact_id=contact_id,
            name=name,
            attributes={k: v for k, v in claims_attrs.items() if v is not None},
        )
    await _offer_merge(ctx, contact_id, email if verified_email is None else None)
    # Only a verified identity proves a contact; claims leave the session
    # following what it followed (a session a merge moved stays narrowed).
    proven = contact_id if verified else session.proven_contact_id
    await ctx.conn.execute(
        t.visitor_sessions.update()
        .where(t.visitor_sessions.c.id == session.id)
        .values(
            contact_id=contact_id,
            proven_contact_id=proven,
            verified=verified,
            last_seen_at=ctx.now,
        )
    )
    await ctx.emit(
        VisitorIdentified(
            workspace_id=session.workspace_id,
            session_id=session.id,
            inbox_id=session.inbox_id,
            contact_id=contact_id,
            previous_contact_id=session.contact_id,
            verified=verified,
        )
    )
    return Identified(contact_id, verified)


async def _offer_merge(ctx: ActionContext, contact_id: int, claimed_email: str | None) -> None:
    """An address given without proof may be another contact's: the agents
    are offered the merge; nothing merges by itself (F3)."""
    if claimed_email is not None:
        await suggest_claimed_owner(ctx, claimant_id=contact_id, address=claimed_email)


async def _verified_contact(
    ctx: ActionContext, session: VisitorSession, user_id: str, email: str | None
) -> int:
    """The contact a verified identity belongs to: the holder of the user
    id, else of the (signed) email, else the visitor's own anonymous
    contact (a session already verified as someone else gets a new
    contact instead). The chosen contact gains whichever of the two
    identities nobody holds."""
    external = IdentityInput(IdentityKind.EXTERNAL, user_id, verified=True)
    by_id = await _owner(ctx, IdentityKind.EXTERNAL, user_id)
    by_email = await _owner(ctx, IdentityKind.EMAIL, email) if email is not None else None
    if by_id is None and by_email is None and session.verified:
        contact_id, _ = await find_or_create_contact(ctx, identity=external, name=user_id)
    else:
        contact_id = by_id or by_email or session.contact_id
        if by_id is None:
            await add_identity(ctx, contact_id, external)
    if email is not None and by_email is None:
        await add_identity(ctx, contact_id, IdentityInput(IdentityKind.EMAIL, email, verified=True))
    return contact_id


async def do_set_visitor_attributes(
    ctx: ActionContext, *, session_id: int, attributes: Mapping[str, JsonValue]
) -> None:
    """The widget's `setAttributes`: merged into the session's contact (a
    key set to null is removed)."""
    session = await _session(ctx, session_id)
    await do_update_contact(ctx, contact_id=session.contact_id, attributes=attributes)


async def do_track_contact_event(
    ctx: ActionContext, *, contact_id: int, name: str, properties: dict[str, JsonValue]
) -> int:
    """Record that a contact did `name` (the widget's `track`)."""
    if not name.strip():
        raise InvalidInput("an event needs a name", field="name")
    workspace_id = ctx.actor.workspace_id
    exists = await ctx.conn.scalar(
        sa.select(t.contacts.c.id).where(
            t.contacts.c.id == contact_id, t.contacts.c.workspace_id == workspace_id
        )
    )
    if exists is None:
        raise NotFound("contact not found")
    event_id: int = (
        await ctx.conn.execute(
            t.contact_events.insert()
            .values(
                workspace_id=workspace_id,
                contact_id=contact_id,
                name=name,
                properties=properties,
                created_at=ctx.now,
            )
            .returning(t.contact_events.c.id)
        )
    ).scalar_one()
    await ctx.emit(
        ContactEventTracked(
            workspace_id=workspace_id,
            contact_id=contact_id,
            contact_event_id=event_id,
            name=name,
            properties=properties,
        )
    )
    # An order carrying a promo code redeems it (the code's goal), here,
    # in the order's own transaction.
    await redeem_tracked_code(ctx, contact_id=contact_id, name=name, properties=properties)
    return event_id


async def do_send_visitor_message(
    ctx: ActionContext,
    *,
    session_id: int,
    text: str,
    client_id: str,
    attachment_ids: Sequence[int] = (),
) -> MessageResult:
    """A message typed in the widget, carrying files this session uploaded
    (`attachment_ids`; text may then be empty). `client_id` is the widget's
    own key for it: the same key from the same session is stored exactly
    once (`external_id = widget:<session>:<client_id>`)."""
    if not text.strip() and not attachment_ids:
        raise InvalidInput("a message needs text or an attachment", field="text")
    session = await _session(ctx, session_id)
    identity = (
        await ctx.conn.execute(
            sa.select(t.contact_identities.c.kind, t.contact_identities.c.value)
            .where(t.contact_identities.c.contact_id == session.contact_id)
            .order_by(t.contact_identities.c.id)
            .limit(1)
        )
    ).first()
    if identity is None:
        raise Conflict("the visitor's contact has no identity to receive messages through")
    await ctx.conn.execute(
        t.visitor_sessions.update()
        .where(t.visitor_sessions.c.id == session.id)
        .values(last_seen_at=ctx.now)
    )
    return await do_receive_message(
        ctx,
        inbox_id=session.inbox_id,
        identity=IdentityInput(IdentityKind(identity.kind), identity.value),
        name="",
        text=text,
        external_id=widget_external_id(session.id, client_id),
        attachment_ids=attachment_ids,
        uploader=Uploader(UploaderKind.VISITOR, session.id),
        origin_contact_id=session.proven_contact_id,
    )


async def do_leave_offline_message(
    ctx: ActionContext, *, session_id: int, email: str, name: str | None, text: str, client_id: str
) -> MessageResult:
    """The widget's offline form (no agent online): the message opens or
    continues the visitor's conversation, labelled `offline`, and the email
    to answer by is recorded on the visitor's contact. It is a claim, kept
    as an attribute like any unverified identity (PROTOCOLS.md P3): it
    never merges the visitor into the contact that owns that address."""
    session = await _session(ctx, session_id)
    await do_update_contact(
        ctx, contact_id=session.contact_id, name=name, attributes={"email": email}
    )
    await _offer_merge(ctx, session.contact_id, email)
    result = await do_send_visitor_message(
        ctx, session_id=session_id, text=text, client_id=client_id
    )
    if not result.replayed:
        await do_change_conversation_labels(
            ctx, conversation_id=result.conversation_id, add=[OFFLINE_LABEL]
        )
    return result
