"""The schema, as SQLAlchemy Core tables. Alembic migrations are the only way
it reaches a database; a test checks the two agree.

Every row carries `workspace_id` so a query can always be sealed to one
workspace. Secrets are stored hashed (tokens, passwords) or encrypted
(secrets the server must read back, such as a widget's HMAC key).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from server.storage.types import Id, UTCDateTime

# JSON everywhere, jsonb on PostgreSQL (indexable, compared by value).
Json = sa.JSON().with_variant(JSONB(), "postgresql")
# The same for an optional column: Python None is SQL NULL (not JSON null),
# so `IS NULL` finds it.
NullableJson = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _workspace_fk(*, index: bool = True) -> sa.Column[int]:
    """`index=False` where a composite index or unique constraint already
    starts with workspace_id (an extra index only costs writes)."""
    return sa.Column(
        "workspace_id",
        Id,
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
        index=index,
    )


workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("settings", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # The last per-workspace event number handed out (events.ws_seq); the
    # UPDATE that bumps it is what serialises event appends per workspace.
    sa.Column("event_seq", sa.BigInteger, nullable=False, server_default="0"),
    # Events with id <= this were pruned (retention): a client resuming
    # from an older id can't be caught up and is told to resync.
    sa.Column("events_pruned_through", sa.BigInteger, nullable=False, server_default="0"),
)

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("availability", sa.String(16), nullable=False),
    sa.Column("capacity", sa.Integer, nullable=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("password_changed_at", UTCDateTime, nullable=False),
    # Presence as assignment sees it (server.actions.assignment): a live
    # socket open on some process, else when the last one closed.
    sa.Column("connected", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("left_at", UTCDateTime, nullable=True),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column(
        "agent_id", Id, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column(
        "agent_id", Id, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
)

teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.String(2000), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

team_members = sa.Table(
    "team_members",
    metadata,
    sa.Column("team_id", Id, sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "agent_id", Id, sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True, index=True
    ),
    _workspace_fk(),
)

inboxes = sa.Table(
    "inboxes",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    # Public, not a secret: the widget's <script> tag names the inbox by it.
    sa.Column("public_token", sa.String(64), nullable=False, unique=True),
    sa.Column("settings", Json, nullable=False),
    # Encrypted with the server's key (server.storage.secrets); never returned.
    sa.Column("secret_encrypted", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

inbox_members = sa.Table(
    "inbox_members",
    metadata,
    sa.Column("inbox_id", Id, sa.ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "agent_id", Id, sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True, index=True
    ),
    _workspace_fk(),
)

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("attributes", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=True),
    # Set when this contact was merged into another (contact_merges holds
    # what moved); such a contact is hidden and kept only so an undo can
    # bring it back.
    sa.Column(
        "merged_into_id", Id, sa.ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Index("ix_contacts_workspace_created", "workspace_id", "created_at", "id"),
)

contact_identities = sa.Table(
    "contact_identities",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column(
        "contact_id",
        Id,
        sa.ForeignKey("contacts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("value", sa.String(320), nullable=False),
    sa.Column("verified", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "kind", "value"),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column("inbox_id", Id, sa.ForeignKey("inboxes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("contact_id", Id, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("subject", sa.String(500), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("snoozed_until", UTCDateTime, nullable=True),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("assignee_id", Id, sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
    sa.Column("team_id", Id, sa.ForeignKey("teams.id", ondelete="SET NULL"), nullable=True),
    # The highest message seq handed out; bumped under this row's lock.
    sa.Column("last_seq", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("first_reply_at", UTCDateTime, nullable=True),
    sa.Column("waiting_since", UTCDateTime, nullable=True),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Column("last_activity_at", UTCDateTime, nullable=False),
    # Read receipts: the highest seq the contact has seen, and the highest
    # any agent has seen (what the widget shows as "Seen").
    sa.Column("contact_last_read_seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("agent_last_read_seq", sa.Integer, nullable=False, server_default="0"),
    # Set when this conversation was merged into another: its messages
    # moved there and it stays resolved, pointing at where they went.
    sa.Column(
        "merged_into_id",
        Id,
        sa.ForeignKey("conversations.id", ondelete="SET NULL"),
        nullable=True,
    ),
    # The contact it was opened for. A contact merge moves `contact_id`,
    # never this: widget sessions follow only the conversations opened for
    # the contact they proved (PROTOCOLS.md P3), so a merge widens none.
    # NULL once a conversation merge mixed two contacts' messages.
    sa.Column(
        "origin_contact_id",
        Id,
        sa.ForeignKey("contacts.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Index("ix_conversations_inbox_activity", "inbox_id", "last_activity_at"),
    sa.Index("ix_conversations_contact_inbox_status", "contact_id", "inbox_id", "status"),
    sa.Index("ix_conversations_assignee_status", "assignee_id", "status"),
    sa.Index("ix_conversations_team_status", "team_id", "status"),
)

conversation_labels = sa.Table(
    "conversation_labels",
    metadata,
    sa.Column(
        "conversation_id",
        Id,
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("label", sa.String(100), primary_key=True),
    _workspace_fk(index=False),
    sa.Index("ix_conversation_labels_label", "workspace_id", "label"),
)

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column(
        "conversation_id",
        Id,
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # Denormalised from the conversation so the contact timeline is one
    # index range scan rather than a join through every conversation, and
    # so inbound dedupe can be a UNIQUE constraint per inbox.
    sa.Column("contact_id", Id, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("inbox_id", Id, sa.ForeignKey("inboxes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("sender_kind", sa.String(16), nullable=False),
    sa.Column("sender_id", Id, nullable=True),
    sa.Column("private", sa.Boolean, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=True),
    sa.Column("external_id", sa.String(500), nullable=True),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("delivery_status", sa.String(16), nullable=False),
    sa.Column("delivery_error", sa.String(1000), nullable=True),
    # What the message carries, denormalised from `attachments` (id,
    # filename, content_type, size, image) so a thread reads in one query.
    sa.Column("attachments", Json, nullable=False, server_default="[]"),
    # Email only: the Message-ID (normalized, server.domain.email_threading)
    # of the mail this message came in as or went out as, so replies that
    # cite it can be threaded (PROTOCOLS.md P4).
    sa.Column("email_message_id", sa.String(500), nullable=True),
    # Email only: subject, from, to, cc, the threading decision, the stored
    # original (see server.actions.inbound_email). Null for other channels.
    sa.Column("email", NullableJson, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("conversation_id", "seq"),
    sa.Index("ix_messages_inbox_email_message_id", "inbox_id", "email_message_id"),
    sa.UniqueConstraint("conversation_id", "idempotency_key"),
    sa.Index("ix_messages_contact_created", "contact_id", "created_at", "id"),
    # Idempotent ingest (PROTOCOLS.md P1): one message per provider id per
    # inbox, even when two deliveries race. NULLs (agent replies) are distinct.
    sa.UniqueConstraint("inbox_id", "external_id"),
)

# Uploaded files (PROTOCOLS.md P7). The bytes live in the blob store under
# `storage_key` (random, never derived from the file name); the row says
# who may read them. `message_id` is set once a message carries the file.
attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column("inbox_id", Id, sa.ForeignKey("inboxes.id", ondelete="CASCADE"), nullable=True),
    # "agent" (uploader_id = agents.id), "visitor" (visitor_sessions.id)
    # or "canned_response" (canned_responses.id: a file the response holds).
    sa.Column("uploader_kind", sa.String(16), nullable=False, server_default="agent"),
    sa.Column("uploader_id", Id, nullable=True),
    sa.Column(
        "message_id",
        Id,
        sa.ForeignKey("messages.id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
    sa.Column("storage_key", sa.String(100), nullable=False, unique=True),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# The durable event log. `id` is global and increasing. Appends are
# serialised per workspace (server.storage.events), so within a workspace
# ids become visible in increasing order and `ws_seq` is contiguous: a
# live listener can tell a gap from a late message.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column("ws_seq", sa.BigInteger, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("inbox_id", Id, nullable=True),
    sa.Column("conversation_id", Id, nullable=True),
    sa.Column("private", sa.Boolean, nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_events_workspace_cursor", "workspace_id", "id"),
    sa.UniqueConstraint("workspace_id", "ws_seq"),
    # Never reuse an id, even after pruning the newest rows: clients resume
    # from ids. (SQLite otherwise hands out max(rowid)+1 again.)
    sqlite_autoincrement=True,
)

# -- the chat widget (F8, PROTOCOLS.md P3) ----------------------------------

# One browser's chat with one inbox. The token is server-issued (256 random
# bits) and only its SHA-256 is stored. `contact_id` moves to an existing
# contact when the visitor proves (HMAC / JWT) who they are; `verified`
# says whether it ever did.
visitor_sessions = sa.Table(
    "visitor_sessions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column(
        "inbox_id", Id, sa.ForeignKey("inboxes.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column(
        "contact_id",
        Id,
        sa.ForeignKey("contacts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("verified", sa.Boolean, nullable=False),
    # The contact this session proved: the anonymous one made for it, or
    # the one a verified identity led to. A contact merge moves
    # `contact_id` (where its messages go) but not this, so the session
    # keeps following only conversations opened for this contact.
    sa.Column(
        "proven_contact_id",
        Id,
        sa.ForeignKey("contacts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    # The IANA zone the visitor's browser reports: touchpoint quiet hours
    # and local send times use it when the contact has no zone of its own.
    sa.Column("timezone", sa.String(64), nullable=True),
)

# What a contact did on the site (`track(name, properties)`): feeds segments
# and touchpoint goals (F3, F7).
contact_events = sa.Table(
    "contact_events",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column("contact_id", Id, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("properties", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_contact_events_contact_created", "contact_id", "created_at"),
)

# One agent's read position in one conversation (unread counts, receipts).
conversation_reads = sa.Table(
    "conversation_reads",
    metadata,
    sa.Column(
        "conversation_id",
        Id,
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("agent_id", Id, sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    _workspace_fk(),
    sa.Column("last_read_seq", sa.Integer, nullable=False),
    sa.Column("read_at", UTCDateTime, nullable=False),
)

# -- canned responses (F6) ----------------------------------------------------

# A saved reply with a template body (server.domain.templates). Its scope
# says who shares it: the workspace, one team (`team_id`), the members of
# one inbox (`inbox_id`) or one agent (`agent_id`, personal); exactly the
# column its scope names is set (the CHECK). `owner_key` spells that
# audience as one string so shortcuts can be unique per audience
# (server.domain.canned_responses.owner_key). `attachment_ids` lists, in
# order, attachments held by this response (uploader_kind
# "canned_response"). Scope and owner never change after creation.
canned_responses = sa.Table(
    "canned_responses",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column("scope", sa.String(16), nullable=False),
    # Deleting the team (or inbox, or agent) deletes its responses with it.
    sa.Column(
        "team_id", Id, sa.ForeignKey("teams.id", ondelete="CASCADE"), nullable=True, index=True
    ),
    sa.Column(
        "inbox_id", Id, sa.ForeignKey("inboxes.id", ondelete="CASCADE"), nullable=True, index=True
    ),
    sa.Column(
        "agent_id", Id, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=True, index=True
    ),
    sa.Column("owner_key", sa.String(40), nullable=False),
    sa.Column("shortcut", sa.String(50), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("attachment_ids", Json, nullable=False),
    sa.Column("usage_count", sa.Integer, nullable=False),
    sa.Column("created_by", Id, sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "owner_key", "shortcut"),
    # Shortcut-prefix search across every audience the caller can see.
    sa.Index("ix_canned_responses_workspace_shortcut", "workspace_id", "shortcut"),
    sa.CheckConstraint(
        "(scope = 'workspace' AND team_id IS NULL AND inbox_id IS NULL AND agent_id IS NULL)"
        " OR (scope = 'team' AND team_id IS NOT NULL AND inbox_id IS NULL AND agent_id IS NULL)"
        " OR (scope = 'inbox' AND inbox_id IS NOT NULL AND team_id IS NULL AND agent_id IS NULL)"
        " OR (scope = 'personal' AND agent_id IS NOT NULL AND team_id IS NULL"
        " AND inbox_id IS NULL)",
        name="scope_owner",
    ),
)

# -- audit log, merges, macros, saved filters (F3, F4, F6) ---------------------

# The answer to a create made with an `Idempotency-Key` (server.actions.
# idempotency): the row is written in the create's own transaction, so the
# key exists exactly when the object does, and the UNIQUE constraint settles
# two concurrent requests with one key. `status`/`response` are filled in
# right after the commit (NULL meanwhile); `fingerprint` is a hash of the
# request, to refuse the same key with a different request.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column("agent_id", Id, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("route", sa.String(200), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("response", NullableJson, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.UniqueConstraint("workspace_id", "agent_id", "route", "key"),
)

# Who did what that an admin may need to answer for later (merges, undo):
# one row per action, written in the action's transaction. `actor_id` is
# deliberately not a foreign key: the entry outlives the agent.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column("actor_kind", sa.String(16), nullable=False),
    sa.Column("actor_id", Id, nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject_kind", sa.String(32), nullable=False),
    sa.Column("subject_id", Id, nullable=False),
    sa.Column("details", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_audit_log_workspace_created", "workspace_id", "created_at", "id"),
)

# One contact merge: `merged_id` folded into `survivor_id`. `moved` records
# exactly which rows moved and what the survivor looked like before, so an
# undo can put everything back; `undone_at` is set once it was undone.
contact_merges = sa.Table(
    "contact_merges",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column("survivor_id", Id, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "merged_id",
        Id,
        sa.ForeignKey("contacts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("moved", Json, nullable=False),
    sa.Column("merged_by", Id, sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("undone_at", UTCDateTime, nullable=True),
)

# A named list of actions run in one click (F6). Scope `workspace` (shared)
# or `personal` (`agent_id`); `owner_key` spells that audience so names are
# unique per audience, as for canned responses.
macros = sa.Table(
    "macros",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column(
        "agent_id", Id, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=True, index=True
    ),
    sa.Column("owner_key", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("actions", Json, nullable=False),
    sa.Column("usage_count", sa.Integer, nullable=False),
    sa.Column("created_by", Id, sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "owner_key", "name"),
    sa.CheckConstraint(
        "(scope = 'workspace' AND agent_id IS NULL)"
        " OR (scope = 'personal' AND agent_id IS NOT NULL)",
        name="scope_owner",
    ),
)

# An agent's saved conversation filter, shown in the sidebar with a count.
# `query` holds the same filters GET /conversations takes.
saved_filters = sa.Table(
    "saved_filters",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column("agent_id", Id, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("query", Json, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("agent_id", "name"),
)


# -- the email channel (F2, PROTOCOLS.md P4) ----------------------------------

# Every mail that reached an inbox, whatever became of it: the raw bytes
# (blob store, `storage_key`), where it came from, and the outcome —
# `stored` (it became `message_id`), `duplicate` (already stored),
# `bounce` (a delivery report about one of our mails), `quarantined`
# (refused or unparseable: `reason` says why; admins see these). The same
# bytes arriving twice in one inbox are recorded once.
inbound_mails = sa.Table(
    "inbound_mails",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column("inbox_id", Id, sa.ForeignKey("inboxes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(1000), nullable=True),
    sa.Column("storage_key", sa.String(100), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("envelope_from", sa.String(320), nullable=True),
    sa.Column("envelope_to", Json, nullable=False),
    sa.Column("header_message_id", sa.String(500), nullable=True),
    sa.Column("from_address", sa.String(320), nullable=True),
    sa.Column("subject", sa.String(500), nullable=True),
    sa.Column(
        "message_id",
        Id,
        sa.ForeignKey("messages.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    sa.Column(
        "conversation_id", Id, sa.ForeignKey("conversations.id", ondelete="SET NULL"), nullable=True
    ),
    # The threading decision (reason, detail, flags, rejected references).
    sa.Column("thread", NullableJson, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("inbox_id", "sha256"),
    sa.Index("ix_inbound_mails_workspace_status", "workspace_id", "status", "created_at"),
)

# Addresses we must not mail any more. One row per address per workspace;
# `scope` "all" (a permanent 5.x.x bounce: no mail at all) or "automated"
# (a one-click unsubscribe: no automatic mail; agents' replies still go).
email_suppressions = sa.Table(
    "email_suppressions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False, server_default="all"),
    sa.Column(
        "inbound_mail_id",
        Id,
        sa.ForeignKey("inbound_mails.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "address"),
)

# How far IMAP polling of an inbox's mailbox got: the highest UID stored,
# updated in the transaction that stores that mail, so a crash between
# fetching and committing fetches the same mail again, and one after
# committing doesn't.
imap_checkpoints = sa.Table(
    "imap_checkpoints",
    metadata,
    sa.Column("inbox_id", Id, sa.ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True),
    _workspace_fk(),
    sa.Column("uidvalidity", sa.BigInteger, nullable=False),
    sa.Column("last_uid", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# The transactional outbox (PROTOCOLS.md P1): one row per outbound send,
# written in the transaction that wrote the message. A worker claims due
# rows (`locked_until` is its lease: a worker that died loses the row to
# the next one, so delivery is at least once) and records the outcome.
# `stable_id` is what the receiving side dedupes on (the email Message-ID).
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column("inbox_id", Id, sa.ForeignKey("inboxes.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "message_id",
        Id,
        sa.ForeignKey("messages.id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("stable_id", sa.String(500), nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("locked_until", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.String(1000), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("channel", "stable_id"),
    sa.Index("ix_outbox_status_due", "status", "due_at"),
)

# A possible duplicate an agent should look at (F3: merge automatically
# only on a verified identity, otherwise suggest): `contact_id` wrote in
# with an address that `candidate_id` only claimed (an unverified email
# typed into the widget, say). `status`: open, accepted, dismissed.
contact_merge_suggestions = sa.Table(
    "contact_merge_suggestions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column("contact_id", Id, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "candidate_id",
        Id,
        sa.ForeignKey("contacts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("contact_id", "candidate_id"),
)

# Durable due work (ARCHITECTURE.md rule 5): one row per thing to do at a
# time — a snoozed conversation's wake-up, later the touchpoint sends.
# `subject_id` is the row the job is about (its kind says which table).
# `key` is the idempotency key within the kind, so one decision is one row
# however often it is scheduled. `due_at` is the time the work is for and
# never moves; `run_at` is when it may next run (due_at, later after a
# failed attempt's backoff). `status`: scheduled, claimed (leased to
# `claimed_by` until `lease_until`), done, cancelled, failed.
scheduled_jobs = sa.Table(
    "scheduled_jobs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("subject_id", Id, nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("run_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("claimed_by", sa.String(100), nullable=True),
    sa.Column("last_error", sa.String(1000), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("kind", "key"),
    sa.Index("ix_scheduled_jobs_status_run_at", "status", "run_at"),
    sa.Index("ix_scheduled_jobs_kind_subject", "kind", "subject_id"),
)

# --- Touchpoints (FEATURES.md F7, design in TOUCHPOINTS.md) -------------

# A saved filter over contacts (`filter`: server.domain.segments). Used by
# touchpoint entry, broadcasts and reports.
segments = sa.Table(
    "segments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("filter", Json, nullable=False),
    sa.Column("created_by_id", Id, sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

# Who was in a segment when it was last evaluated: entry is the durable
# diff between this and a fresh evaluation, so a contact enters once.
segment_members = sa.Table(
    "segment_members",
    metadata,
    sa.Column("segment_id", Id, sa.ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "contact_id",
        Id,
        sa.ForeignKey("contacts.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    _workspace_fk(),
    sa.Column("entered_at", UTCDateTime, nullable=False),
)

# One automated follow-up rule. `trigger` is its spec (server.domain.
# touchpoints); `trigger_key` is the part the event hook looks up
# ("contact_event:cart_updated", "event:conversation.resolved", "date",
# "segment", "broadcast"), so finding the touchpoints an event starts is
# one indexed read. `version` counts edits: steps are stored per version
# and an episode keeps the version it started under, so editing a live
# touchpoint never changes what was already decided.
touchpoints = sa.Table(
    "touchpoints",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.String(1000), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("trigger", Json, nullable=False),
    sa.Column("trigger_key", sa.String(120), nullable=False),
    sa.Column("episode_key", sa.String(200), nullable=False),
    sa.Column(
        "entry_segment_id",
        Id,
        sa.ForeignKey("segments.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    sa.Column("exit_rules", Json, nullable=False),
    sa.Column("goal", NullableJson, nullable=True),
    sa.Column("reentry", sa.String(16), nullable=False),
    sa.Column("cooldown_seconds", sa.Integer, nullable=True),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("holdout_percent", sa.Integer, nullable=False),
    sa.Column("max_lateness_seconds", sa.Integer, nullable=True),
    sa.Column("quiet_hours", NullableJson, nullable=True),
    sa.Column("inbox_id", Id, sa.ForeignKey("inboxes.id", ondelete="SET NULL"), nullable=True),
    sa.Column("seed", sa.String(40), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_by_id", Id, sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
    sa.Index("ix_touchpoints_workspace_status_trigger", "workspace_id", "status", "trigger_key"),
)

# One step of a touchpoint's sequence, as of one version. `delay` and
# `variants` are parsed by server.domain.touchpoints.
touchpoint_steps = sa.Table(
    "touchpoint_steps",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column(
        "touchpoint_id", Id, sa.ForeignKey("touchpoints.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("delay", Json, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("variants", Json, nullable=False),
    sa.Column("step_filter", NullableJson, nullable=True),
    sa.Column("business_hours", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("touchpoint_id", "version", "position"),
)

# One contact's run through one touchpoint for one business object (the
# cart, the unanswered message, the year's birthday): `key`, UNIQUE with
# the touchpoint and contact, is what makes a replayed trigger harmless.
# `state`: active, goal, exited, done, expired. `arm`: treatment or
# holdout; `bucket` (0..9999) keeps arm and variant sticky.
episodes = sa.Table(
    "episodes",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column(
        "touchpoint_id", Id, sa.ForeignKey("touchpoints.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("contact_id", Id, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("arm", sa.String(16), nullable=False),
    sa.Column("bucket", sa.Integer, nullable=False),
    sa.Column("context", Json, nullable=False),
    sa.Column(
        "conversation_id",
        Id,
        sa.ForeignKey("conversations.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    sa.Column("entered_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("end_reason", sa.String(200), nullable=True),
    sa.UniqueConstraint("touchpoint_id", "contact_id", "key"),
    sa.Index("ix_episodes_contact_state", "contact_id", "state"),
)

# One step's send to one contact, decided once: `idempotency_key` (UNIQUE)
# names the episode and step, so no replay, second worker or retry can
# make another. `due_at` is when it was meant for and never moves;
# `run_at` is when it is next looked at (moved by quiet hours and caps).
# `state`: scheduled, sending, sent, unknown, skipped, deferred,
# cancelled, expired, failed (server.domain.touchpoints.DecisionState),
# `reason` says why for every state but scheduled and sent.
decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column(
        "episode_id",
        Id,
        sa.ForeignKey("episodes.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column(
        "touchpoint_id",
        Id,
        sa.ForeignKey("touchpoints.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column(
        "step_id", Id, sa.ForeignKey("touchpoint_steps.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("contact_id", Id, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("run_at", UTCDateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(200), nullable=True),
    sa.Column("variant", sa.String(40), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("outbox_id", Id, sa.ForeignKey("outbox.id", ondelete="SET NULL"), nullable=True),
    sa.Column("message_id", Id, sa.ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    sa.Column("channel_message_id", sa.String(500), nullable=True),
    sa.Column("rendered", NullableJson, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("settled_at", UTCDateTime, nullable=True),
    sa.Index("ix_decisions_state_run_at", "state", "run_at"),
    sa.Index("ix_decisions_contact_due", "contact_id", "due_at"),
)

# What frequency caps count: one row per touch that went out (or was
# handed to its channel), across all touchpoints and channels.
touch_ledger = sa.Table(
    "touch_ledger",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column("contact_id", Id, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "decision_id",
        Id,
        sa.ForeignKey("decisions.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_touch_ledger_contact_kind_at", "contact_id", "kind", "at"),
)

# Consent history per contact, channel and topic (append-only): the latest
# row says the state, `source` and `at` say who recorded it and when
# (GDPR asks for both). Next to email_suppressions, which block an
# address for every kind of mail.
consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column("contact_id", Id, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("topic", sa.String(40), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_consents_contact_channel_topic_at", "contact_id", "channel", "topic", "at"),
)

# Unique single-use promo codes: a pool uploaded or generated; a code is
# reserved for one decision (`decision_id` UNIQUE: a retry reuses it).
promo_pools = sa.Table(
    "promo_pools",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("valid_days", sa.Integer, nullable=True),
    sa.Column("low_stock", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

promo_codes = sa.Table(
    "promo_codes",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column("pool_id", Id, sa.ForeignKey("promo_pools.id", ondelete="CASCADE"), nullable=False),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column(
        "decision_id",
        Id,
        sa.ForeignKey("decisions.id", ondelete="SET NULL"),
        nullable=True,
        unique=True,
    ),
    sa.Column("contact_id", Id, sa.ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True),
    sa.Column("issued_at", UTCDateTime, nullable=True),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("redeemed_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("workspace_id", "code"),
    sa.Index("ix_promo_codes_pool_state", "pool_id", "state"),
)

# --- Routing (FEATURES.md F5) -------------------------------------------

# One routing rule (server.domain.routing_rules): evaluated in `position`
# order (0 first) when a conversation opens or a customer writes. `on`,
# `conditions` and `actions` are the rule's JSON in its stored form. The
# workspace's mode (first match or all matches) is in
# workspaces.settings["routing"].
routing_rules = sa.Table(
    "routing_rules",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("on", Json, nullable=False),
    sa.Column("match", sa.String(8), nullable=False),
    sa.Column("conditions", Json, nullable=False),
    sa.Column("actions", Json, nullable=False),
    sa.Column("created_by_id", Id, sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
    sa.Index("ix_routing_rules_workspace_position", "workspace_id", "position"),
)

# What routing did to a conversation, one row per rule that changed
# something: the conversation's "routed by rule 'Refunds' → team Billing"
# line. `rule_name` is kept as it was then (the rule may be renamed or
# deleted later); `changes` is {"team": 3, "priority": "high", "labels":
# [...], "assignee": 7}, `skipped` the actions it could not take.
routing_decisions = sa.Table(
    "routing_decisions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column(
        "conversation_id",
        Id,
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("rule_id", Id, sa.ForeignKey("routing_rules.id", ondelete="SET NULL"), nullable=True),
    sa.Column("rule_name", sa.String(200), nullable=False),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("message_id", Id, sa.ForeignKey("messages.id", ondelete="SET NULL"), nullable=True),
    sa.Column("changes", Json, nullable=False),
    sa.Column("skipped", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)


# --- Assignment (FEATURES.md F5) -----------------------------------------

# An assignment policy (server.domain.assignment) of one inbox or one
# team; a conversation with a team follows its team's policy, else its
# inbox's. `policy` is the stored JSON form.
assignment_policies = sa.Table(
    "assignment_policies",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(),
    sa.Column(
        "inbox_id",
        Id,
        sa.ForeignKey("inboxes.id", ondelete="CASCADE"),
        nullable=True,
        unique=True,
    ),
    sa.Column(
        "team_id",
        Id,
        sa.ForeignKey("teams.id", ondelete="CASCADE"),
        nullable=True,
        unique=True,
    ),
    sa.Column("policy", Json, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("(inbox_id IS NULL) <> (team_id IS NULL)", name="one_scope"),
)

# Every automatic assignment (and "take next"): who got which conversation,
# when, and why — the conversation's "assigned to Ann by round robin" line,
# and what round robin counts for fairness over its window.
assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _workspace_fk(index=False),
    sa.Column(
        "conversation_id",
        Id,
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("agent_id", Id, sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "policy_id", Id, sa.ForeignKey("assignment_policies.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_assignments_agent_at", "agent_id", "at"),
    sa.Index("ix_assignments_workspace_at", "workspace_id", "at"),
)
