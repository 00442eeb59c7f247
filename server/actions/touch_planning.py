"""Starting the touchpoints no event starts: a broadcast to a segment at a
local time, entry into a segment, a date attribute (TOUCHPOINTS.md rule
1: "the timer, or the segment diff"). Each is planned by jobs of the
durable scheduler (server.actions.jobs), so nothing is kept in memory
and a restart resumes where the rows say.

- `plan_touchpoint` is called, in their transaction, by the actions that
  make a touchpoint live (creating it live, setting its status): it
  schedules the first job of the touchpoint's kind. Pausing or archiving
  schedules nothing; the next job sees the status, finishes `cancelled`
  with why and schedules no successor. Going live again plans anew.
- `run_broadcast_plan` (BROADCAST_PLAN, key "<id>:v<version>:after<contact
  id>") walks the segment PAGE contacts per job (a job is one
  transaction) and starts each contact's episode with step 0 anchored at
  the broadcast's local time in the contact's own zone; the next page is
  a new job, due at once.
- `run_segment_scan` (SEGMENT_SCAN, key "<id>:<round due>[:after<contact
  id>]") refreshes the segment's members (the durable diff) and starts an
  episode for each contact that entered, PAGE per job, then schedules the
  next round SEGMENT_SCAN_EVERY later.
- `run_date_scan` (DATE_SCAN, key "<id>:<round due>[:after<contact id>]")
  pages through the contacts with the date attribute and starts an
  episode for each whose next occurrence, in their zone, starts within
  DATE_HORIZON; after the last page it schedules the next round
  DATE_SCAN_EVERY later.

None of them checks whether an episode exists: the episode's UNIQUE
(touchpoint, contact, key) does, inside start_episode, so running a page
twice, a retry after a crash or two overlapping scans start each episode
once. A contact whose time has long passed still gets its decision at the
true due time; the claim expires it by the touchpoint's max lateness.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from server.actions.action_context import ActionContext
from server.actions.jobs import schedule_job
from server.actions.segments import do_refresh_segment_members
from server.actions.touch_episodes import start_episode
from server.domain.jobs import ClaimedJob, JobOutcome, JobStatus
from server.domain.json_types import JsonValue
from server.domain.touch_planning import (
    broadcast_at,
    broadcast_plan_due,
    local_day,
    occurrence_due,
    parse_annual_date,
)
from server.domain.touch_timing import RelativeDelay, parse_delay
from server.domain.touchpoints import TouchStatus, Trigger, TriggerKind, parse_trigger
from server.queries.records import Touchpoint
from server.queries.segments import segment_matches, stored_filter
from server.queries.touch_contacts import contact_zone
from server.queries.touch_planning import (
    contacts_with_attribute,
    first_step_delay,
    job_key,
    last_job_key,
    planning_segment,
    segment_entries_since,
    touchpoint_for_planning,
)

BROADCAST_PLAN = "touchpoint.broadcast_plan"
SEGMENT_SCAN = "touchpoint.segment_scan"
DATE_SCAN = "touchpoint.date_scan"
KINDS = (BROADCAST_PLAN, SEGMENT_SCAN, DATE_SCAN)

# Contacts handled by one job run (one transaction).
PAGE = 1000
SEGMENT_SCAN_EVERY = timedelta(minutes=5)
DATE_SCAN_EVERY = timedelta(hours=1)
# A scan also looks at entries this much before the previous scan: an
# entry another refresh wrote in a transaction that committed late is
# still seen (the episode key makes seeing it twice harmless).
ENTRY_OVERLAP = timedelta(minutes=10)


# -- keys ------------------------------------------------------------------


def broadcast_key(touchpoint_id: int, version: int, after_id: int) -> str:
    """One page of one version's broadcast: the contacts above `after_id`."""
    return f"{touchpoint_id}:v{version}:after{after_id}"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def scan_key(touchpoint_id: int, due_at: datetime, after_id: int | None = None) -> str:
    """One round of a segment or date scan, and its page above `after_id`
    (none: the round's first page)."""
    page = "" if after_id is None else f":after{after_id}"
    return f"{touchpoint_id}:{_iso(due_at)}{page}"


_BROADCAST_KEY = re.compile(r"\d+:v(\d+):after(\d+)")
_SCAN_KEY = re.compile(r"\d+:(.+?)(?::after(\d+))?")


def parse_broadcast_key(key: str) -> tuple[int, int]:
    """(version, after id) of a broadcast page's key."""
    found = _BROADCAST_KEY.fullmatch(key)
    if found is None:
        raise ValueError(f"not a broadcast page key: {key!r}")
    return int(found.group(1)), int(found.group(2))


def parse_scan_key(key: str) -> tuple[datetime, int]:
    """(round due time, after id — 0 on a round's first page) of a scan's key."""
    found = _SCAN_KEY.fullmatch(key)
    if found is None:
        raise ValueError(f"not a scan key: {key!r}")
    return datetime.fromisoformat(found.group(1)), int(found.group(2) or 0)


# -- going live ------------------------------------------------------------


async def plan_touchpoint(ctx: ActionContext, *, touchpoint_id: int) -> None:
    """Schedule the first planning job of a touchpoint that is now live
    (nothing for other statuses or for event-started kinds). The caller
    holds the touchpoint's lock and has written its new status."""
    row = await touchpoint_for_planning(ctx.conn, touchpoint_id)
    if row is None or row.status != TouchStatus.LIVE.value:
        return
    trigger = parse_trigger(row.trigger)
    if trigger.kind is TriggerKind.BROADCAST:
        assert trigger.at_local is not None
        # Resume this version's walk at the page it stopped at (a paused
        # broadcast's last job was cancelled and is scheduled again); a
        # finished walk is not rerun, a new version walks from the start.
        prefix = f"{row.id}:v{row.version}:"
        key = await last_job_key(ctx.conn, BROADCAST_PLAN, row.id, prefix)
        await schedule_job(
            ctx,
            workspace_id=row.workspace_id,
            kind=BROADCAST_PLAN,
            subject_id=row.id,
            key=key or broadcast_key(row.id, row.version, 0),
            due_at=broadcast_plan_due(trigger.at_local, ctx.now),
        )
    elif trigger.kind in (TriggerKind.SEGMENT_ENTRY, TriggerKind.DATE):
        kind = SEGMENT_SCAN if trigger.kind is TriggerKind.SEGMENT_ENTRY else DATE_SCAN
        await schedule_job(
            ctx,
            workspace_id=row.workspace_id,
            kind=kind,
            subject_id=row.id,
            key=scan_key(row.id, ctx.now),
            due_at=ctx.now,
        )


async def _live(
    ctx: ActionContext, job: ClaimedJob, kind: TriggerKind
) -> tuple[Touchpoint, Trigger] | JobOutcome:
    """The job's touchpoint and trigger if it is still live and still of
    `kind`, else the outcome that ends the job without a successor."""
    row = await touchpoint_for_planning(ctx.conn, job.subject_id)
    if row is None:
        return JobOutcome(JobStatus.CANCELLED, "the touchpoint no longer exists")
    if row.status != TouchStatus.LIVE.value:
        return JobOutcome(JobStatus.CANCELLED, f"the touchpoint is {row.status}")
    trigger = parse_trigger(row.trigger)
    if trigger.kind is not kind:
        return JobOutcome(JobStatus.CANCELLED, f"the touchpoint's trigger is now {trigger.kind}")
    return row, trigger


async def _next_job(
    ctx: ActionContext, row: Touchpoint, *, kind: str, key: str, due_at: datetime
) -> None:
    """Schedule the job after this one (it must not supersede the running
    job: that would cancel the row this run is about to settle)."""
    await schedule_job(
        ctx,
        workspace_id=row.workspace_id,
        kind=kind,
        subject_id=row.id,
        key=key,
        due_at=due_at,
        supersede=False,
    )


async def _start(
    ctx: ActionContext,
    row: Touchpoint,
    contact_id: int,
    facts: Mapping[str, JsonValue],
    anchor: datetime | None = None,
) -> bool:
    episode = await start_episode(
        ctx, touchpoint=row, contact_id=contact_id, facts=dict(facts), anchor=anchor
    )
    return episode is not None


# -- broadcasts ------------------------------------------------------------


async def run_broadcast_plan(ctx: ActionContext, job: ClaimedJob) -> JobOutcome:
    """The scheduler's handler for BROADCAST_PLAN: one page of the segment."""
    live = await _live(ctx, job, TriggerKind.BROADCAST)
    if isinstance(live, JobOutcome):
        return live
    row, trigger = live
    assert trigger.segment_id is not None and trigger.at_local is not None
    version, after = parse_broadcast_key(await job_key(ctx.conn, job.id))
    segment = await planning_segment(ctx.conn, row.workspace_id, trigger.segment_id)
    if segment is None:
        return JobOutcome(JobStatus.CANCELLED, "the segment no longer exists")
    contacts = await segment_matches(
        ctx.conn, row.workspace_id, stored_filter(segment), ctx.now, after_id=after, limit=PAGE
    )
    facts: dict[str, JsonValue] = {"segment_id": segment.id, "at_local": trigger.at_local}
    started = 0
    for contact_id in contacts:
        zone = await contact_zone(ctx.conn, row.workspace_id, contact_id)
        at = broadcast_at(trigger.at_local, zone)
        started += await _start(ctx, row, contact_id, facts, anchor=at)
    if len(contacts) == PAGE:
        await _next_job(
            ctx,
            row,
            kind=BROADCAST_PLAN,
            key=broadcast_key(row.id, version, contacts[-1]),
            due_at=ctx.now,
        )
    return JobOutcome(JobStatus.DONE, f"{len(contacts)} contacts, {started} episodes started")


# -- segment entry ---------------------------------------------------------


async def run_segment_scan(ctx: ActionContext, job: ClaimedJob) -> JobOutcome:
    """The scheduler's handler for SEGMENT_SCAN: who entered since the
    last scan starts an episode keyed by the local day of entry. A round's
    first page refreshes the segment (the durable diff, in this
    transaction); each page then takes up to PAGE entries since the
    previous round, whoever's refresh recorded them, and a full page
    leaves the rest to a next page of the same round, due at once."""
    live = await _live(ctx, job, TriggerKind.SEGMENT_ENTRY)
    if isinstance(live, JobOutcome):
        return live
    row, trigger = live
    assert trigger.segment_id is not None
    round_due, after = parse_scan_key(await job_key(ctx.conn, job.id))
    if await planning_segment(ctx.conn, row.workspace_id, trigger.segment_id) is None:
        return JobOutcome(JobStatus.CANCELLED, "the segment no longer exists")
    if after == 0:
        await do_refresh_segment_members(ctx, segment_id=trigger.segment_id)
    since = round_due - SEGMENT_SCAN_EVERY - ENTRY_OVERLAP
    entries = await segment_entries_since(
        ctx.conn, trigger.segment_id, since, after_id=after, limit=PAGE
    )
    started = 0
    for contact_id, entered_at in entries:
        zone = await contact_zone(ctx.conn, row.workspace_id, contact_id)
        facts: dict[str, JsonValue] = {
            "segment_id": trigger.segment_id,
            "entered_on": local_day(entered_at, zone).isoformat(),
        }
        started += await _start(ctx, row, contact_id, facts)
    if len(entries) == PAGE:
        key = scan_key(row.id, round_due, after_id=entries[-1][0])
        await _next_job(ctx, row, kind=SEGMENT_SCAN, key=key, due_at=ctx.now)
    else:
        due = ctx.now + SEGMENT_SCAN_EVERY
        await _next_job(ctx, row, kind=SEGMENT_SCAN, key=scan_key(row.id, due), due_at=due)
    return JobOutcome(JobStatus.DONE, f"{len(entries)} entries, {started} episodes started")


# -- date attributes -------------------------------------------------------


async def _lead_days(ctx: ActionContext, row: Touchpoint, attribute: str) -> int:
    """How many days from the date the first step is due ("3 days before
    the birthday": -3), so the episode is planned ahead of that day and
    its anchor falls on it; 0 for any other first step."""
    raw = await first_step_delay(ctx.conn, row)
    if raw is None:
        return 0
    delay = parse_delay(raw, "delay")
    if isinstance(delay, RelativeDelay) and delay.attribute == attribute:
        return delay.offset_days
    return 0


async def run_date_scan(ctx: ActionContext, job: ClaimedJob) -> JobOutcome:
    """The scheduler's handler for DATE_SCAN: one page of the contacts
    with the date attribute; an occurrence starting within the horizon in
    the contact's zone starts that year's episode."""
    live = await _live(ctx, job, TriggerKind.DATE)
    if isinstance(live, JobOutcome):
        return live
    row, trigger = live
    assert trigger.attribute is not None
    round_due, after = parse_scan_key(await job_key(ctx.conn, job.id))
    lead_days = await _lead_days(ctx, row, trigger.attribute)
    contacts = await contacts_with_attribute(
        ctx.conn, row.workspace_id, trigger.attribute, after, PAGE
    )
    started = 0
    for contact_id, value in contacts:
        annual = parse_annual_date(value)
        if annual is None:
            continue
        zone = await contact_zone(ctx.conn, row.workspace_id, contact_id)
        occurrence = occurrence_due(annual, zone, ctx.now, lead_days)
        if occurrence is None:
            continue
        facts: dict[str, JsonValue] = {
            "year": occurrence.year,
            "date": occurrence.day.isoformat(),
            "attribute": trigger.attribute,
        }
        started += await _start(ctx, row, contact_id, facts, anchor=occurrence.starts_at)
    if len(contacts) == PAGE:
        key = scan_key(row.id, round_due, after_id=contacts[-1][0])
        await _next_job(ctx, row, kind=DATE_SCAN, key=key, due_at=ctx.now)
    else:
        due = ctx.now + DATE_SCAN_EVERY
        await _next_job(ctx, row, kind=DATE_SCAN, key=scan_key(row.id, due), due_at=due)
    return JobOutcome(JobStatus.DONE, f"{len(contacts)} contacts, {started} episodes started")
