"""Claiming due decisions (TOUCHPOINTS.md rules 2-4): the guards, the
send, the next step, in ONE short transaction per batch.

`do_process_due_decisions` takes the due pending decisions of touchpoints
that are not paused, locking them (FOR UPDATE SKIP LOCKED on PostgreSQL:
two workers never take the same row and never wait on each other; on
SQLite the one writer serialises whole batches). The episodes and the
contacts of those decisions are locked the same way, so an exit that
races the claim either committed before (the claim sees the episode
ended) or waits for the claim to finish, and two workers never count one
contact's caps at the same time. A decision whose episode or contact is
held by another transaction is simply left for the next round.

Each decision then meets the guards in this order, and the first that
holds writes the decision's state, its reason and its event:

  a. the touchpoint archived, the episode no longer active, or an exit
     the trigger hook did not see (a customer reply in the episode's
     conversation, a matching tracked event since the episode began) →
     `cancelled` (the last ends the episode `exited`);
  b. later than the touchpoint's max lateness → `expired`;
  c. the holdout arm → `skipped` "holdout" (the control group walks the
     same sequence, so the next step is scheduled as after a send);
  d. the channel can't reach the contact, or consent forbids it →
     `skipped` with why;
  e. a step that waits for business hours, outside them → `deferred` to
     the next opening;
  f. quiet hours in the contact's zone → `deferred` to their end;
  g. a frequency cap of the touch's kind, counted over the touch ledger
     across every touchpoint and channel → `deferred` until it reopens,
     or `skipped` when that is past the max lateness.

What passes is sent: the variant picked by the episode's bucket (sticky),
a promo code reserved for the decision, the template rendered from the
latest data, a ledger row written (the touch counts against caps from
now on), and the message posted in this same transaction — for email
with its outbox row, which the delivery worker sends with the
Message-ID, signed Reply-To, Auto-Submitted and one-click unsubscribe;
its outcome is recorded by server.actions.touch_outcomes. A widget
message is the send itself: `sent` at once.

Lateness is counted from `run_at`, when the decision was meant to be
looked at: a wait for quiet hours or business hours is not lateness
(the cap guard bounds its own wait by the max lateness from `due_at`).

Within a batch one contact's decisions are taken by priority (higher
first), then due time, so competing touches are settled by what matters,
never by row order.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.actions.messages import append_message
from server.actions.outbound_email import enqueue_touch_email
from server.actions.promo_reservations import release_code, reserve_code
from server.actions.touch_episodes import end_episode
from server.actions.touch_next_steps import NextStep, schedule_steps
from server.actions.touch_sends import FreshSend, write_fresh_sends
from server.domain.business_hours import is_open, next_opening, parse_business_hours
from server.domain.email_headers import EmailHeaders, addressed_to
from server.domain.email_settings import mail_settings_of
from server.domain.errors import InvalidInput
from server.domain.events import (
    DecisionCancelled,
    DecisionDeferred,
    DecisionExpired,
    DecisionFailed,
    DecisionSending,
    DecisionSent,
    DecisionSkipped,
    Event,
)
from server.domain.json_types import JsonValue
from server.domain.touch_guards import cap_reopens_at, pick_variant, quiet_until, too_late
from server.domain.touch_settings import ConsentMode, TouchSettings, touch_settings_of
from server.domain.touch_timing import FrequencyCap, QuietHours, parse_quiet_hours
from server.domain.touchpoints import (
    PENDING,
    Arm,
    Channel,
    DecisionState,
    EpisodeState,
    ExitKind,
    ExitRule,
    TouchKind,
    TouchStatus,
    Variant,
    implied_exits,
    matches,
    parse_exit_rules,
    parse_trigger,
    parse_variants,
    resolve_match,
)
from server.domain.values import (
    ConversationStatus,
    DeliveryStatus,
    Direction,
    IdentityKind,
    InboxKind,
    SenderKind,
)
from server.queries.email_replies import reply_defaults
from server.queries.records import (
    Conversation,
    Decision,
    Episode,
    Inbox,
    Touchpoint,
    TouchpointStep,
    load,
    load_or_none,
)
from server.queries.touch_contacts import ContactTiming, contact_timings, contact_zone
from server.queries.touch_data import (
    POPULAR_WINDOW,
    ContactFacts,
    contacts_facts,
    popular_products,
    touch_data,
)
from server.storage import tables as t
from server.storage.updates import update_by_id
from server.touch_templates import Rendered, TemplateError, TemplateSource, render_template

# The channel's name for an unsubscribe link: (workspace_id, address) →
# URL. The worker makes it from the server's key and public URL; without
# one, templates get no unsubscribe link (the mail still carries its
# List-Unsubscribe header, added when it is sent).
UnsubscribeLink = Callable[[int, str], str]

MAX_REASON = 200
CONSENT_GRANTED = "granted"
CONSENT_WITHDRAWN = "withdrawn"


@dataclasses.dataclass(frozen=True)
class ProcessedBatch:
    """What one claim did: how many due decisions it took (`claimed`) and
    what became of them by outcome — `sending` (email handed to the
    outbox), `sent` (widget), `deferred`, `skipped`, `cancelled`,
    `expired`, `failed`. Decisions left for the next round (their episode
    or contact was held by another transaction) are in `left`."""

    claimed: int
    outcomes: Mapping[str, int]
    left: int = 0

    def count(self, outcome: str) -> int:
        return self.outcomes.get(outcome, 0)


@dataclasses.dataclass(frozen=True)
class _Outcome:
    state: DecisionState
    reason: str | None = None
    run_at: datetime | None = None


def _duration(seconds: float) -> str:
    """ "7 h 12 min", "45 min", "30 s": for reasons people read."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours and minutes:
        return f"{hours} h {minutes} min"
    if hours:
        return f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{seconds} s"


async def do_process_due_decisions(
    ctx: ActionContext, *, limit: int = 100, unsubscribe_link: UnsubscribeLink | None = None
) -> ProcessedBatch:
    """Claim up to `limit` due decisions and take each through the guards
    and, if it passes, the send; all in this one transaction."""
    d, tp = t.decisions.c, t.touchpoints.c
    rows = (
        await ctx.conn.execute(
            sa.select(t.decisions)
            .join(t.touchpoints, tp.id == d.touchpoint_id)
            .where(
                d.state.in_([s.value for s in PENDING]),
                d.run_at <= ctx.now,
                tp.status != TouchStatus.PAUSED.value,
            )
            .order_by(d.run_at, d.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=t.decisions)
        )
    ).all()
    decisions = [load(Decision, row) for row in rows]
    if not decisions:
        return ProcessedBatch(0, {})
    batch = await _Batch.load(ctx, decisions, unsubscribe_link)
    outcomes: Counter[str] = Counter()
    left = 0
    # One contact's competing decisions by priority, then due time.
    ordered = sorted(decisions, key=lambda x: (x.contact_id, -x.priority, x.due_at, x.id))
    for decision in ordered:
        if decision.episode_id not in batch.episodes or decision.contact_id not in batch.contacts:
            left += 1  # held by another transaction: the next round takes it
            continue
        outcomes[await batch.process(decision)] += 1
    await batch.write()
    return ProcessedBatch(len(decisions) - left, dict(outcomes), left)


class _Batch:
    """The rows a batch needs, read once, and the processing of each
    decision against them."""

    def __init__(self, ctx: ActionContext, unsubscribe_link: UnsubscribeLink | None) -> None:
        self.ctx = ctx
        self.unsubscribe_link = unsubscribe_link
        self.touchpoints: dict[int, Touchpoint] = {}
        self.episodes: dict[int, Episode] = {}
        self.steps: dict[int, TouchpointStep] = {}
        # Every step of the batch's touchpoint versions, for the next step.
        self.positions: dict[tuple[int, int, int], TouchpointStep] = {}
        self.contacts: set[int] = set()
        self.settings: dict[int, TouchSettings] = {}
        self.workspace_names: dict[int, str] = {}
        self.timings: dict[int, ContactTiming] = {}
        self.facts: dict[int, ContactFacts] = {}
        # The batch's contacts' touches within the longest cap window, by
        # contact and kind; a send in this batch adds its own, so a cap
        # counts what the batch sent before (TOUCHPOINTS.md rule 3).
        self.ledger: dict[tuple[int, str], list[datetime]] = {}
        self.inboxes: dict[int, Inbox] = {}
        self.addresses: dict[int, str | None] = {}
        self.suppressions: dict[tuple[int, str], tuple[str, str]] = {}
        self.consents: dict[tuple[int, str, str], str] = {}
        self.popular: dict[int, list[dict[str, JsonValue]]] = {}
        # What the batch writes together once every decision is decided
        # (see `write`).
        self.fresh: list[FreshSend] = []
        self.settled: list[tuple[int, dict[str, Any]]] = []
        self.next_steps: list[NextStep] = []

    @classmethod
    async def load(
        cls,
        ctx: ActionContext,
        decisions: Sequence[Decision],
        unsubscribe_link: UnsubscribeLink | None,
    ) -> _Batch:
        batch = cls(ctx, unsubscribe_link)
        conn = ctx.conn
        tp_ids = {x.touchpoint_id for x in decisions}
        for row in await conn.execute(
            sa.select(t.touchpoints).where(t.touchpoints.c.id.in_(tp_ids))
        ):
            batch.touchpoints[row.id] = load(Touchpoint, row)
        # Locked: an exit ending the episode meanwhile either committed
        # (we see it ended) or waits for us; held ones are left for later.
        e = t.episodes.c
        for row in await conn.execute(
            sa.select(t.episodes)
            .where(e.id.in_({x.episode_id for x in decisions}))
            .with_for_update(skip_locked=True)
        ):
            batch.episodes[row.id] = load(Episode, row)
        # The contact row serialises cap counting between workers.
        c = t.contacts.c
        batch.contacts = set(
            (
                await conn.execute(
                    sa.select(c.id)
                    .where(c.id.in_({x.contact_id for x in decisions}))
                    .with_for_update(skip_locked=True, key_share=True)
                )
            ).scalars()
        )
        versions = {(x.touchpoint_id, x.version) for x in batch.episodes.values()}
        for row in await conn.execute(
            sa.select(t.touchpoint_steps).where(t.touchpoint_steps.c.touchpoint_id.in_(tp_ids))
        ):
            step = load(TouchpointStep, row)
            batch.steps[step.id] = step
            if (step.touchpoint_id, step.version) in versions:
                batch.positions[(step.touchpoint_id, step.version, step.position)] = step
        contact_ids = {x.contact_id for x in decisions}
        await batch._prefetch_reachability(contact_ids)
        w = t.workspaces.c
        for ws_id, name, settings in await conn.execute(
            sa.select(w.id, w.name, w.settings).where(w.id.in_({x.workspace_id for x in decisions}))
        ):
            batch.settings[ws_id] = touch_settings_of(settings)
            batch.workspace_names[ws_id] = name
        for ws_id in batch.settings:
            batch.timings.update(
                await contact_timings(
                    conn, ws_id, {x.contact_id for x in decisions if x.workspace_id == ws_id}
                )
            )
        batch.facts = await contacts_facts(conn, contact_ids)
        await batch._prefetch_ledger(decisions)
        return batch

    async def _prefetch_ledger(self, decisions: Sequence[Decision]) -> None:
        """The touches that caps count, for the whole batch in one read:
        within the longest window of any cap a decision here meets."""
        windows = [
            cap.window_seconds
            for x in decisions
            for cap in self.settings[x.workspace_id].caps_for(x.kind)
        ]
        if not windows:
            return
        lg = t.touch_ledger.c
        since = self.ctx.now - timedelta(seconds=max(windows))
        for contact_id, kind, at in await self.ctx.conn.execute(
            sa.select(lg.contact_id, lg.kind, lg.at).where(
                lg.contact_id.in_({x.contact_id for x in decisions}),
                lg.kind.in_({x.kind for x in decisions}),
                lg.at > since,
            )
        ):
            self.ledger.setdefault((contact_id, kind), []).append(at)

    async def _prefetch_reachability(self, contact_ids: set[int]) -> None:
        """The batch's contacts' email addresses, suppressions and latest
        consents, in three reads rather than three per decision."""
        conn = self.ctx.conn
        i = t.contact_identities.c
        self.addresses = dict.fromkeys(contact_ids)
        for contact_id, value in await conn.execute(
            sa.select(i.contact_id, i.value)
            .where(i.contact_id.in_(contact_ids), i.kind == IdentityKind.EMAIL.value)
            .order_by(i.verified, i.id.desc())
        ):
            # The last one read wins: a verified address, the oldest first.
            self.addresses[contact_id] = value
        wanted = {a for a in self.addresses.values() if a is not None}
        if wanted:
            s = t.email_suppressions.c
            for workspace_id, address, scope, reason in await conn.execute(
                sa.select(s.workspace_id, s.address, s.scope, s.reason).where(s.address.in_(wanted))
            ):
                self.suppressions[(workspace_id, address)] = (scope, reason)
        c = t.consents.c
        for contact_id, channel, topic, state in await conn.execute(
            sa.select(c.contact_id, c.channel, c.topic, c.state)
            .where(c.contact_id.in_(contact_ids))
            .order_by(c.at, c.id)
        ):
            self.consents[(contact_id, channel, topic)] = state  # the latest wins

    # -- one decision ------------------------------------------------------

    async def process(self, decision: Decision) -> str:
        touchpoint = self.touchpoints[decision.touchpoint_id]
        episode = self.episodes[decision.episode_id]
        settings = self.settings[decision.workspace_id]
        outcome = await self._guards(decision, touchpoint, episode, settings)
        if outcome is None:
            outcome = await self._send(decision, touchpoint, episode)
        if outcome.state is DecisionState.CANCELLED and outcome.reason is None:
            return DecisionState.CANCELLED.value  # end_episode cancelled it already
        if outcome.state is not DecisionState.SENDING and outcome.state is not DecisionState.SENT:
            await self._settle(decision, outcome)
        if outcome.state not in (DecisionState.DEFERRED, DecisionState.CANCELLED):
            # The next step follows whatever this one became, so the
            # holdout walks the same sequence as the treatment.
            self.next_steps.append(
                NextStep(
                    episode=self.episodes[episode.id],
                    touchpoint=touchpoint,
                    position=decision.position + 1,
                    anchor=self.ctx.now,
                    timing=self.timings.get(decision.contact_id),
                )
            )
        return outcome.state.value

    async def write(self) -> None:
        """The batch's writes that wait for all of it to be decided, each
        kind in one or two statements: the touches in new conversations,
        the guards' outcomes, then the next steps (whose episode ends
        cancel what is still pending — so the states are written first)."""
        opened = await write_fresh_sends(self.ctx, self.fresh)
        for episode_id, conversation_id in opened.items():
            self.episodes[episode_id] = dataclasses.replace(
                self.episodes[episode_id], conversation_id=conversation_id
            )
        await update_by_id(self.ctx.conn, t.decisions, self.settled)
        await schedule_steps(self.ctx, self.next_steps, self.positions)

    async def _guards(
        self,
        decision: Decision,
        touchpoint: Touchpoint,
        episode: Episode,
        settings: TouchSettings,
    ) -> _Outcome | None:
        """The first guard that holds, in the module's order, or None."""
        now = self.ctx.now
        # a. still wanted
        outcome = await self._still_wanted(touchpoint, episode)
        if outcome is not None:
            return outcome
        # b. not out of its moment
        lateness = touchpoint.max_lateness_seconds
        if lateness is not None and too_late(decision.run_at, now, lateness):
            late = (now - decision.run_at).total_seconds()
            return _Outcome(
                DecisionState.EXPIRED,
                f"late by {_duration(late)}; at most {_duration(lateness)}",
            )
        # c. the control group
        if episode.arm == Arm.HOLDOUT.value:
            return _Outcome(DecisionState.SKIPPED, "holdout")
        # d. reachable, and allowed to
        channel = Channel(decision.channel)
        inbox, _ = await self._sending_place(decision, touchpoint, episode)
        if inbox is None:
            return _Outcome(DecisionState.SKIPPED, f"no {channel.value} inbox to send from")
        unreachable = await self._unreachable(decision, channel, inbox, settings)
        if unreachable is not None:
            return _Outcome(DecisionState.SKIPPED, unreachable)
        # e. business hours, where the step asks for them
        if self.steps[decision.step_id].business_hours:
            outcome = _business_hours(inbox, now)
            if outcome is not None:
                return outcome
        # f. quiet hours, in the contact's zone (a receipt is never held)
        if decision.kind != TouchKind.TRANSACTIONAL.value:
            quiet = _quiet_hours(touchpoint) or settings.quiet_hours
            timing = self.timings.get(decision.contact_id)
            zone = (
                timing.zone
                if timing is not None
                else await contact_zone(self.ctx.conn, decision.workspace_id, decision.contact_id)
            )
            until = quiet_until(now, quiet, zone, jitter_key=decision.idempotency_key)
            if until is not None and until > now:
                return _Outcome(DecisionState.DEFERRED, "quiet hours", until)
        # g. frequency caps, across every touchpoint and channel
        return await self._capped(decision, settings.caps_for(decision.kind), lateness)

    async def _still_wanted(self, touchpoint: Touchpoint, episode: Episode) -> _Outcome | None:
        if touchpoint.status == TouchStatus.ARCHIVED.value:
            return _Outcome(DecisionState.CANCELLED, "touchpoint archived")
        if episode.state != EpisodeState.ACTIVE.value:
            why = episode.end_reason or episode.state
            return _Outcome(DecisionState.CANCELLED, f"episode ended: {why}")
        exit_reason = await self._exit_reached(touchpoint, episode)
        if exit_reason is None:
            return None
        await end_episode(
            self.ctx, episode_id=episode.id, state=EpisodeState.EXITED, reason=exit_reason
        )
        self.episodes[episode.id] = dataclasses.replace(
            episode, state=EpisodeState.EXITED.value, end_reason=exit_reason
        )
        return _Outcome(DecisionState.CANCELLED)  # end_episode wrote it, with its event

    async def _capped(
        self, decision: Decision, caps: Sequence[FrequencyCap], lateness: int | None
    ) -> _Outcome | None:
        """Deferred until the contact's caps of this kind reopen (counted
        over the ledger: every touchpoint, every channel), or skipped when
        that is past the max lateness."""
        if not caps:
            return None
        now = self.ctx.now
        longest = timedelta(seconds=max(cap.window_seconds for cap in caps))
        touches = self.ledger.get((decision.contact_id, decision.kind), [])
        sent = [at for at in touches if at > now - longest]
        reopens = cap_reopens_at(sent, now=now, caps=caps)
        if reopens is None or reopens <= now:
            return None
        if lateness is not None and reopens > decision.due_at + timedelta(seconds=lateness):
            return _Outcome(DecisionState.SKIPPED, "frequency cap")
        return _Outcome(DecisionState.DEFERRED, "frequency cap", reopens)

    async def _exit_reached(self, touchpoint: Touchpoint, episode: Episode) -> str | None:
        """An exit the trigger hook may have missed, checked in the claim:
        the reason to end the episode with, or None."""
        try:
            rules: tuple[ExitRule, ...] = (
                *implied_exits(parse_trigger(touchpoint.trigger)),
                *parse_exit_rules(touchpoint.exit_rules or []),
            )
        except InvalidInput:
            return None
        for rule in rules:
            if rule.kind is ExitKind.CONTACT_EVENT:
                reason = await self._event_exit(rule, episode)
            elif episode.conversation_id is None:
                reason = None
            elif rule.kind is ExitKind.CONVERSATION_RESOLVED:
                cv = t.conversations.c
                status = await self.ctx.conn.scalar(
                    sa.select(cv.status).where(cv.id == episode.conversation_id)
                )
                resolved = status == ConversationStatus.RESOLVED.value
                reason = "conversation resolved" if resolved else None
            else:
                reason = await self._reply_exit(rule, episode)
            if reason is not None:
                return reason
        return None

    async def _event_exit(self, rule: ExitRule, episode: Episode) -> str | None:
        """A tracked event of the rule's name since the episode began whose
        properties carry the episode's values (the order of this cart)."""
        if rule.name is None:
            return None
        wanted = resolve_match(rule.match, episode.context or {})
        ev = t.contact_events.c
        for props in (
            await self.ctx.conn.execute(
                sa.select(ev.properties)
                .where(
                    ev.contact_id == episode.contact_id,
                    ev.name == rule.name,
                    ev.created_at >= episode.entered_at,
                )
                .order_by(ev.id)
                .limit(100)
            )
        ).scalars():
            if not wanted or matches(wanted, props if isinstance(props, dict) else {}):
                return rule.name
        return None

    async def _reply_exit(self, rule: ExitRule, episode: Episode) -> str | None:
        """A customer's (or an agent's) public message in the episode's
        conversation after the one the episode waits on."""
        m = t.messages.c
        since = await self._awaited_since(episode, episode.context or {})
        if rule.kind is ExitKind.CUSTOMER_REPLY:
            who = sa.and_(
                m.direction == Direction.INBOUND.value, m.sender_kind == SenderKind.CONTACT.value
            )
            reason = "customer replied"
        else:
            who = sa.and_(
                m.direction == Direction.OUTBOUND.value, m.sender_kind == SenderKind.AGENT.value
            )
            reason = "agent replied"
        replied = await self.ctx.conn.scalar(
            sa.select(m.id)
            .where(m.conversation_id == episode.conversation_id, m.private.is_(False), who, since)
            .limit(1)
        )
        return None if replied is None else reason

    async def _awaited_since(
        self, episode: Episode, context: Mapping[str, Any]
    ) -> sa.ColumnElement[bool]:
        """Messages after the one the episode waits on (its seq), else
        after the episode began."""
        m = t.messages.c
        awaited = context.get("message_id")
        if isinstance(awaited, int):
            seq = await self.ctx.conn.scalar(sa.select(m.seq).where(m.id == awaited))
            if seq is not None:
                after: sa.ColumnElement[bool] = m.seq > int(seq)
                return after
        return m.created_at >= episode.entered_at

    async def _inbox(self, inbox_id: int) -> Inbox | None:
        if inbox_id not in self.inboxes:
            found = load_or_none(
                Inbox,
                (
                    await self.ctx.conn.execute(
                        sa.select(t.inboxes).where(t.inboxes.c.id == inbox_id)
                    )
                ).first(),
            )
            if found is None:
                return None
            self.inboxes[inbox_id] = found
        return self.inboxes[inbox_id]

    async def _sending_place(
        self, decision: Decision, touchpoint: Touchpoint, episode: Episode
    ) -> tuple[Inbox | None, Conversation | None]:
        """Where the touch goes: the episode's conversation when its inbox
        is of the step's channel (a no-reply chase continues its thread),
        else a new conversation in the touchpoint's inbox, else in the
        workspace's first inbox of that channel."""
        kind = InboxKind(decision.channel).value
        conn = self.ctx.conn
        if episode.conversation_id is not None:
            conv = load_or_none(
                Conversation,
                (
                    await conn.execute(
                        sa.select(t.conversations).where(
                            t.conversations.c.id == episode.conversation_id
                        )
                    )
                ).first(),
            )
            if conv is not None and conv.merged_into_id is None:
                inbox = await self._inbox(conv.inbox_id)
                if inbox is not None and inbox.kind == kind:
                    return inbox, conv
        if touchpoint.inbox_id is not None:
            inbox = await self._inbox(touchpoint.inbox_id)
            if inbox is not None and inbox.kind == kind:
                return inbox, None
        first = await conn.scalar(
            sa.select(t.inboxes.c.id)
            .where(t.inboxes.c.workspace_id == decision.workspace_id, t.inboxes.c.kind == kind)
            .order_by(t.inboxes.c.id)
            .limit(1)
        )
        return (None, None) if first is None else (await self._inbox(first), None)

    async def _email_address(self, contact_id: int) -> str | None:
        """The contact's address (a verified one first), read with the batch."""
        return self.addresses.get(contact_id)

    async def _unreachable(
        self, decision: Decision, channel: Channel, inbox: Inbox, settings: TouchSettings
    ) -> str | None:
        """Why the contact can't be sent this touch on its channel, or None."""
        conn = self.ctx.conn
        if channel is Channel.EMAIL:
            address = await self._email_address(decision.contact_id)
            if address is None:
                return "no email address"
            blocked = self.suppressions.get((decision.workspace_id, address))
            if blocked is not None:
                scope, why = blocked
                if scope == "all":
                    return f"suppressed: {why}"[:MAX_REASON]
                # An unsubscribe stops automatic mail; a receipt the
                # customer asked for still goes.
                if decision.kind != TouchKind.TRANSACTIONAL.value:
                    return "unsubscribed"
        else:
            v = t.visitor_sessions.c
            session = await conn.scalar(
                sa.select(v.id)
                .where(v.contact_id == decision.contact_id, v.inbox_id == inbox.id)
                .limit(1)
            )
            if session is None:
                return "no widget session"
        return await self._consent_refused(decision, settings)

    async def _consent_refused(self, decision: Decision, settings: TouchSettings) -> str | None:
        if decision.kind == TouchKind.TRANSACTIONAL.value:
            return None
        state = self.consents.get((decision.contact_id, decision.channel, decision.kind))
        if state == CONSENT_WITHDRAWN:
            return "unsubscribed"
        if (
            decision.kind == TouchKind.MARKETING.value
            and settings.consent is ConsentMode.OPT_IN
            and state != CONSENT_GRANTED
        ):
            return "no marketing consent"
        return None

    # -- the send ----------------------------------------------------------

    async def _send(self, decision: Decision, touchpoint: Touchpoint, episode: Episode) -> _Outcome:
        made = await self._render(decision, touchpoint, episode)
        if isinstance(made, _Outcome):
            return made
        variant, rendered = made
        channel = Channel(decision.channel)
        address = await self._email_address(decision.contact_id)
        inbox, thread = await self._sending_place(decision, touchpoint, episode)
        assert inbox is not None  # the reachability guard found it
        values: dict[str, Any] = {
            "variant": variant.id,
            "rendered": {
                "subject": rendered.subject,
                "text": rendered.text,
                "html": rendered.html,
            },
            "attempts": decision.attempts + 1,
            "reason": None,
        }
        html = rendered.html if channel is Channel.EMAIL or variant.html else None
        self.ledger.setdefault((decision.contact_id, decision.kind), []).append(self.ctx.now)
        headers = None
        if channel is Channel.EMAIL:
            assert address is not None
            headers = EmailHeaders(subject=rendered.subject, to=addressed_to([address]))
        if thread is not None:
            return await self._send_in_thread(
                decision,
                thread=thread,
                inbox=inbox,
                headers=headers,
                rendered=rendered,
                html=html,
                values=values,
            )
        self.fresh.append(
            FreshSend(
                decision=decision,
                inbox_id=inbox.id,
                status=_new_status(touchpoint, decision),
                subject=(rendered.subject or touchpoint.name)[:500],
                text=rendered.text,
                html=html,
                email=None if headers is None else headers.stored(),
                decision_values=values,
            )
        )
        return _Outcome(DecisionState.SENDING if headers is not None else DecisionState.SENT)

    async def _render(
        self, decision: Decision, touchpoint: Touchpoint, episode: Episode
    ) -> tuple[Variant, Rendered] | _Outcome:
        """The episode's variant rendered with its promo code, or why not."""
        ctx = self.ctx
        channel = Channel(decision.channel)
        step = self.steps[decision.step_id]
        try:
            variants = parse_variants(step.variants, "variants", channel)
        except InvalidInput as exc:
            return _Outcome(DecisionState.FAILED, f"step: {exc}"[:MAX_REASON])
        chosen = pick_variant([(v.id, v.weight) for v in variants], episode.bucket)
        variant: Variant = next(v for v in variants if v.id == chosen)
        promo = None
        if variant.promo_pool_id is not None:
            code = await reserve_code(
                ctx,
                decision_id=decision.id,
                pool_id=variant.promo_pool_id,
                contact_id=decision.contact_id,
            )
            if code is None:
                name = await ctx.conn.scalar(
                    sa.select(t.promo_pools.c.name).where(
                        t.promo_pools.c.id == variant.promo_pool_id
                    )
                )
                return _Outcome(
                    DecisionState.FAILED, f"promo pool {name or variant.promo_pool_id} is empty"
                )
            promo = {
                "code": code.code,
                "expires_at": None if code.expires_at is None else code.expires_at.isoformat(),
            }
        address = await self._email_address(decision.contact_id)
        links: dict[str, Any] = {"unsubscribe": None}
        if channel is Channel.EMAIL and address is not None and self.unsubscribe_link:
            links["unsubscribe"] = self.unsubscribe_link(decision.workspace_id, address)
        if decision.workspace_id not in self.popular:
            self.popular[decision.workspace_id] = await popular_products(
                ctx.conn, decision.workspace_id, ctx.now - POPULAR_WINDOW
            )
        data = await touch_data(
            ctx.conn,
            workspace_id=decision.workspace_id,
            contact_id=decision.contact_id,
            episode_context=episode.context or {},
            promo=promo,
            links=links,
            touchpoint_name=touchpoint.name,
            now=ctx.now,
            popular=self.popular[decision.workspace_id],
            facts=self.facts.get(decision.contact_id),
            workspace_name=self.workspace_names.get(decision.workspace_id),
        )
        try:
            rendered = render_template(
                TemplateSource(subject=variant.subject, body=variant.body, html=variant.html), data
            )
        except TemplateError as exc:
            await release_code(ctx, decision_id=decision.id)
            return _Outcome(DecisionState.FAILED, f"template: {exc}"[:MAX_REASON])

        return variant, rendered

    async def _send_in_thread(
        self,
        decision: Decision,
        *,
        thread: Conversation,
        inbox: Inbox,
        headers: EmailHeaders | None,
        rendered: Rendered,
        html: str | None,
        values: dict[str, Any],
    ) -> _Outcome:
        """A touch continuing the episode's conversation (and its mail
        thread), written at once: it takes the conversation's next seq."""
        ctx = self.ctx
        conv = await self._locked(thread.id)
        if headers is not None:
            headers = await self._in_thread(headers, conv, inbox)
        await ctx.conn.execute(
            t.touch_ledger.insert().values(
                workspace_id=decision.workspace_id,
                contact_id=decision.contact_id,
                decision_id=decision.id,
                channel=decision.channel,
                kind=decision.kind,
                at=ctx.now,
            )
        )
        result = await append_message(
            ctx,
            conv,
            direction=Direction.OUTBOUND,
            sender_kind=SenderKind.SYSTEM,
            sender_id=None,
            private=False,
            text=rendered.text,
            html=html,
            delivery_status=DeliveryStatus.SENT if headers is None else DeliveryStatus.PENDING,
            idempotency_key=decision.idempotency_key,
            email=None if headers is None else headers.stored(),
        )
        values["message_id"] = result.message_id
        facts = _facts(decision, None)
        if headers is not None:
            outbox_id = await enqueue_touch_email(
                ctx,
                message_id=result.message_id,
                workspace_id=decision.workspace_id,
                inbox_id=inbox.id,
                decision_id=decision.id,
            )
            await self._update(decision, state=DecisionState.SENDING, outbox_id=outbox_id, **values)
            await ctx.emit(DecisionSending(**facts))
            return _Outcome(DecisionState.SENDING)
        channel_id = str(result.message_id)
        await self._update(
            decision,
            state=DecisionState.SENT,
            channel_message_id=channel_id,
            settled_at=ctx.now,
            **values,
        )
        await ctx.emit(DecisionSent(**facts, channel_message_id=channel_id))
        return _Outcome(DecisionState.SENT)

    async def _locked(self, conversation_id: int) -> Conversation:
        """The episode's conversation a chase continues, locked for its seq."""
        cv = t.conversations.c
        row = (
            await self.ctx.conn.execute(
                sa.select(t.conversations).where(cv.id == conversation_id).with_for_update()
            )
        ).one()
        return load(Conversation, row)

    async def _in_thread(
        self, headers: EmailHeaders, conv: Conversation, inbox: Inbox
    ) -> EmailHeaders:
        """A touch in an existing conversation (a chase) continues its
        mail thread: In-Reply-To, References, and its subject when the
        template rendered none."""
        own = [mail_settings_of(inbox.settings).address or ""]
        defaults = await reply_defaults(self.ctx.conn, conv, own_addresses=own)
        return dataclasses.replace(
            headers,
            subject=headers.subject or defaults.subject,
            in_reply_to=defaults.in_reply_to,
            references=tuple(defaults.references[-20:]),
        )

    # -- writing states ----------------------------------------------------

    async def _update(self, decision: Decision, *, state: DecisionState, **values: Any) -> None:
        await self.ctx.conn.execute(
            t.decisions.update()
            .where(t.decisions.c.id == decision.id)
            .values(state=state.value, **values)
        )

    async def _settle(self, decision: Decision, outcome: _Outcome) -> None:
        """Emit the guard's outcome; its state is written with the batch's."""
        ctx = self.ctx
        facts = _facts(decision, outcome.reason)
        reason = None if outcome.reason is None else outcome.reason[:MAX_REASON]
        if outcome.state is DecisionState.DEFERRED:
            assert outcome.run_at is not None
            self.settled.append(
                (
                    decision.id,
                    {"state": outcome.state.value, "run_at": outcome.run_at, "reason": reason},
                )
            )
            await ctx.emit(DecisionDeferred(**facts, run_at=outcome.run_at))
            return
        self.settled.append(
            (decision.id, {"state": outcome.state.value, "reason": reason, "settled_at": ctx.now})
        )
        event = _SETTLED_EVENTS[outcome.state]
        await ctx.emit(event(**facts))


# The event of each state a guard settles a decision in.
_SETTLED_EVENTS: dict[DecisionState, Callable[..., Event]] = {
    DecisionState.CANCELLED: DecisionCancelled,
    DecisionState.EXPIRED: DecisionExpired,
    DecisionState.SKIPPED: DecisionSkipped,
    DecisionState.FAILED: DecisionFailed,
}


def _new_status(touchpoint: Touchpoint, decision: Decision) -> ConversationStatus:
    """A new conversation for a marketing touch stays out of the agents'
    queue until the customer answers: an email one starts resolved (the
    reply, signed Reply-To or In-Reply-To, reopens it like any reply to a
    resolved thread); a widget one starts pending, because a visitor's
    message continues the contact's unresolved conversation of the inbox
    and wakes a pending one (server.actions.messages), so the answer
    lands next to the touch instead of in a conversation of its own."""
    if touchpoint.kind != TouchKind.MARKETING.value:
        return ConversationStatus.OPEN
    if decision.channel == Channel.WIDGET.value:
        return ConversationStatus.PENDING
    return ConversationStatus.RESOLVED


def _business_hours(inbox: Inbox, now: datetime) -> _Outcome | None:
    """Deferred to the sending inbox's next opening when it is closed (an
    inbox without business hours is always open)."""
    raw = (inbox.settings or {}).get("business_hours")
    if raw is None:
        return None
    try:
        hours = parse_business_hours(raw)
    except InvalidInput:
        return None
    if is_open(hours, now):
        return None
    opening = next_opening(hours, now)
    if opening is None:
        return _Outcome(DecisionState.SKIPPED, "no business hours ahead")
    return _Outcome(DecisionState.DEFERRED, "business hours", opening)


def _quiet_hours(touchpoint: Touchpoint) -> QuietHours | None:
    try:
        return parse_quiet_hours(touchpoint.quiet_hours, "quiet_hours")
    except InvalidInput:
        return None


def _facts(decision: Decision, reason: str | None) -> dict[str, Any]:
    return {
        "workspace_id": decision.workspace_id,
        "decision_id": decision.id,
        "episode_id": decision.episode_id,
        "touchpoint_id": decision.touchpoint_id,
        "contact_id": decision.contact_id,
        "position": decision.position,
        "channel": decision.channel,
        "reason": None if reason is None else reason[:MAX_REASON],
    }
