"""Running a macro on a conversation (F6).

Every step runs, in order, in ONE transaction, through the very actions
PATCH /conversations and sending a canned response use: each step emits
its usual event (`conversation.labels_changed`, `message.created` with
`canned_response.used`, ...), then `macro.used` closes the run and the
macro's `usage_count` goes up. When any step is refused, the whole run
rolls back: nothing applied, nothing emitted, nothing counted. The error
names the step (`actions[2].agent_id`); a step whose canned response is
gone answers 409, since 404 means the macro or the conversation.

Replies carry copies of their response's files: `run_macro` makes them
before the transaction, as `send_canned_response` does, and removes them
again when the run is refused or replayed.

Retries (an `Idempotency-Key`). The replies a keyed run sends carry
message idempotency keys derived from it (`macro-run:<hash of the
key>:<macro id>:<step>`), written in the run's transaction. Before
applying anything, a keyed run looks for those messages in the
conversation, under the conversation's row lock (so two retries racing
run one after the other): found, the run already happened and is
answered again (same message ids, `replayed`) without applying or
counting anything; found for another macro or other steps, the key was
reused for a different run, a conflict. A macro that sends no reply
leaves nothing to find: its retry applies its steps again, which changes
nothing (labels, assignment, priority and status are set, not toggled;
an unchanged value emits no event) except a snooze's end time, and it
counts the use again.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from server.actions.attachments import FileWriter
from server.actions.canned_replies import (
    CopiedFile,
    copy_canned_files,
    do_send_canned_response,
    forget_copies,
)
from server.actions.context import ActionContext, perform
from server.actions.conversations import (
    do_assign_conversation,
    do_change_conversation_labels,
    do_change_conversation_status,
    do_set_conversation_priority,
)
from server.domain.actors import Actor
from server.domain.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from server.domain.events import MacroUsed
from server.domain.macros import ME, StepType, parse_actions, step_field
from server.domain.values import ConversationStatus, Priority
from server.queries.access import access_canned_response, access_conversation
from server.queries.macros import access_macro, run_plan
from server.queries.reading import read
from server.queries.records import Macro
from server.storage import tables as t
from server.storage.blobs import BlobStore

Copies = Mapping[int, Sequence[CopiedFile]]


@dataclasses.dataclass(frozen=True)
class MacroRun:
    macro_id: int
    conversation_id: int
    # The replies sent, in step order.
    message_ids: list[int]
    usage_count: int
    # True when an Idempotency-Key matched an earlier run: nothing was applied.
    replayed: bool = False


async def run_macro(
    writer: FileWriter,
    actor: Actor,
    *,
    macro_id: int,
    conversation_id: int,
    idempotency_key: str | None = None,
) -> MacroRun:
    """Copy the files of the replies the macro sends, then `do_run_macro`
    in its own transaction; the copies are removed if it refuses or
    replays (after any other failure they stay, as in
    `send_canned_response`: the commit may have happened)."""
    steps = await read(writer, run_plan, actor, macro_id, conversation_id)
    copies: dict[int, list[CopiedFile]] = {}
    try:
        for i, step in enumerate(steps):
            if step["type"] == StepType.SEND_CANNED_RESPONSE.value:
                copies[i] = await _copies(writer, actor, i, step)
        result = await perform(
            writer,
            actor,
            do_run_macro,
            macro_id=macro_id,
            conversation_id=conversation_id,
            idempotency_key=idempotency_key,
            copies=copies,
        )
    except DomainError:
        await _forget(writer.blobs, copies)
        raise
    if result.replayed:
        await _forget(writer.blobs, copies)
    return result


async def _copies(
    writer: FileWriter, actor: Actor, i: int, step: dict[str, Any]
) -> list[CopiedFile]:
    try:
        return await copy_canned_files(writer, actor, step["canned_response_id"])
    except NotFound:
        return []  # the run itself refuses this step, naming it
    except DomainError as exc:
        raise in_step(exc, i, step) from None


async def _forget(blobs: BlobStore, copies: Copies) -> None:
    for files in copies.values():
        await forget_copies(blobs, files)


async def do_run_macro(
    ctx: ActionContext,
    *,
    macro_id: int,
    conversation_id: int,
    idempotency_key: str | None = None,
    copies: Copies | None = None,
) -> MacroRun:
    """Apply the macro's steps to the conversation, all or none. `copies`
    are the files of each reply step (by step index), made by `run_macro`;
    a reply whose response holds files needs them."""
    macro = await access_macro(ctx.conn, ctx.actor, macro_id, for_update=True)
    await access_conversation(ctx.conn, ctx.actor, conversation_id)
    steps = _steps(macro)
    sends = [i for i, s in enumerate(steps) if s["type"] == StepType.SEND_CANNED_RESPONSE.value]
    # Lock in the order a canned send locks (response, then conversation),
    # so a run and a send racing in one conversation can't deadlock.
    for i in sends:
        try:
            await access_canned_response(
                ctx.conn, ctx.actor, steps[i]["canned_response_id"], for_update=True
            )
        except DomainError as exc:
            raise in_step(exc, i, steps[i]) from None
    await access_conversation(ctx.conn, ctx.actor, conversation_id, for_update=True)
    if idempotency_key is not None:
        earlier = await _earlier_run(ctx, macro, conversation_id, idempotency_key, sends)
        if earlier is not None:
            return earlier
    message_ids: list[int] = []
    for i, step in enumerate(steps):
        key = _message_key(idempotency_key, macro.id, i) if idempotency_key is not None else None
        try:
            message_id = await _apply(ctx, conversation_id, step, (copies or {}).get(i, ()), key)
        except DomainError as exc:
            raise in_step(exc, i, step) from None
        if message_id is not None:
            message_ids.append(message_id)
    return await _count(ctx, macro, conversation_id, message_ids)


def _steps(macro: Macro) -> list[dict[str, Any]]:
    """The stored steps, checked again: saved under older rules, a macro
    must be edited before it runs, never half-run."""
    try:
        return parse_actions(macro.actions)
    except InvalidInput as exc:
        raise Conflict(f"{exc.message}; edit the macro", field=exc.field) from None


async def _apply(
    ctx: ActionContext,
    conversation_id: int,
    step: dict[str, Any],
    copies: Sequence[CopiedFile],
    message_key: str | None,
) -> int | None:
    """Carry out one step; the id of the reply it sent, if it sent one."""
    kind = StepType(step["type"])
    if kind is StepType.SEND_CANNED_RESPONSE:
        sent = await do_send_canned_response(
            ctx,
            conversation_id=conversation_id,
            canned_response_id=step["canned_response_id"],
            copies=copies,
            idempotency_key=message_key,
        )
        return sent.message_id
    if kind in (StepType.ADD_LABEL, StepType.REMOVE_LABEL):
        change = "add" if kind is StepType.ADD_LABEL else "remove"
        await do_change_conversation_labels(
            ctx, conversation_id=conversation_id, **{change: [step["label"]]}
        )
    elif kind is StepType.ASSIGN_TEAM:
        await do_assign_conversation(ctx, conversation_id=conversation_id, team_id=step["team_id"])
    elif kind is StepType.ASSIGN_AGENT:
        agent_id = step["agent_id"]
        if agent_id == ME:
            if ctx.actor.agent_id is None:
                raise InvalidInput(f'"{ME}" is the agent running the macro; there is none')
            agent_id = ctx.actor.agent_id
        await do_assign_conversation(ctx, conversation_id=conversation_id, assignee_id=agent_id)
    elif kind is StepType.SET_PRIORITY:
        await do_set_conversation_priority(
            ctx, conversation_id=conversation_id, priority=Priority(step["priority"])
        )
    elif kind is StepType.SNOOZE:
        await do_change_conversation_status(
            ctx,
            conversation_id=conversation_id,
            status=ConversationStatus.SNOOZED,
            snoozed_until=ctx.now + timedelta(minutes=step["minutes"]),
        )
    else:
        status = {
            StepType.RESOLVE: ConversationStatus.RESOLVED,
            StepType.REOPEN: ConversationStatus.OPEN,
        }[kind]
        await do_change_conversation_status(ctx, conversation_id=conversation_id, status=status)
    return None


def in_step(exc: DomainError, i: int, step: dict[str, Any]) -> DomainError:
    """`exc` restated as the failure of step `i`, naming the step's field.
    A missing object is a conflict with the macro, not a 404 (which would
    say the macro or the conversation is missing)."""
    field = step_field(step, f"actions[{i}]")
    message = f"actions[{i}] ({step['type']}): {exc.message}"
    if isinstance(exc, NotFound):
        return Conflict(message, field=field)
    if type(exc) in (InvalidInput, Forbidden, Conflict):
        return type(exc)(message, field=field)
    return exc


def _message_key(idempotency_key: str, macro_id: int, step: int) -> str:
    return f"{_key_prefix(idempotency_key)}{macro_id}:{step}"


def _key_prefix(idempotency_key: str) -> str:
    # Hashed: a client's key may be 200 characters, the column holds 200.
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"macro-run:{digest}:"


async def _earlier_run(
    ctx: ActionContext,
    macro: Macro,
    conversation_id: int,
    idempotency_key: str,
    sends: list[int],
) -> MacroRun | None:
    """The run this keyed run repeats, found by the replies it sent."""
    m = t.messages.c
    rows = await ctx.conn.execute(
        sa.select(m.id, m.idempotency_key).where(
            m.conversation_id == conversation_id,
            m.idempotency_key.startswith(_key_prefix(idempotency_key), autoescape=True),
        )
    )
    found: dict[tuple[int, int], int] = {}
    for row in rows:
        _, macro_id, step = row.idempotency_key.rsplit(":", 2)
        # Anything else under this prefix was not written by a run.
        plain = all(part.isascii() and part.isdigit() for part in (macro_id, step))
        found[(int(macro_id), int(step)) if plain else (0, -1)] = row.id
    if not found:
        return None
    if sorted(found) != [(macro.id, i) for i in sends]:
        raise Conflict(
            "this idempotency key was used for a different macro run", field="Idempotency-Key"
        )
    return MacroRun(
        macro.id,
        conversation_id,
        [found[(macro.id, i)] for i in sends],
        macro.usage_count,
        replayed=True,
    )


async def _count(
    ctx: ActionContext, macro: Macro, conversation_id: int, message_ids: list[int]
) -> MacroRun:
    usage_count: int = (
        await ctx.conn.execute(
            t.macros.update()
            .where(t.macros.c.id == macro.id)
            .values(usage_count=t.macros.c.usage_count + 1)
            .returning(t.macros.c.usage_count)
        )
    ).scalar_one()
    inbox_id: int = (
        await ctx.conn.execute(
            sa.select(t.conversations.c.inbox_id).where(t.conversations.c.id == conversation_id)
        )
    ).scalar_one()
    await ctx.emit(
        MacroUsed(
            workspace_id=macro.workspace_id,
            macro_id=macro.id,
            scope=macro.scope,
            agent_id=macro.agent_id,
            conversation_id=conversation_id,
            inbox_id=inbox_id,
            message_ids=message_ids,
            usage_count=usage_count,
        )
    )
    return MacroRun(macro.id, conversation_id, message_ids, usage_count)
