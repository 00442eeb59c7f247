"""The planner of the touchpoints no event starts (server.actions.
touch_planning), on both databases, run through the job runner with a
frozen clock: a broadcast at ten on each contact's own clock, page by
page and once per contact; segment entry once per entry day; a birthday
once a year in the contact's zone, Feb 29 included; and a paused
touchpoint's jobs doing nothing.

Setup writes go through actions, but for the 2,500 contacts of the
paging test, which are inserted in one statement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from server.actions.contacts import do_create_contact, do_update_contact
from server.actions.context import perform
from server.actions.segments import do_create_segment, do_delete_segment
from server.actions.touch_planning import (
    BROADCAST_PLAN,
    DATE_SCAN,
    PAGE,
    SEGMENT_SCAN,
)
from server.actions.touchpoints import (
    do_create_touchpoint,
    do_set_touchpoint_status,
    do_update_touchpoint,
)
from server.clock import FrozenClock
from server.domain.json_types import JsonValue
from server.domain.touchpoints import TouchStatus, parse_touchpoint
from server.runtime import Runtime
from server.storage import tables as t
from server.workers.jobs import HANDLERS, JobRunner
from tests.support import Workspace, fetch_all

BERLIN, NEW_YORK, TOKYO = "Europe/Berlin", "America/New_York", "Asia/Tokyo"


def clock(runtime: Runtime) -> FrozenClock:
    assert isinstance(runtime.clock, FrozenClock)
    return runtime.clock


def move_to(runtime: Runtime, at: datetime) -> None:
    now = clock(runtime).now()
    clock(runtime).advance(seconds=(at - now).total_seconds())


async def contact(runtime: Runtime, ws: Workspace, name: str, **attributes: JsonValue) -> int:
    contact_id: int = await perform(
        runtime, ws.admin, do_create_contact, name=name, attributes=attributes
    )
    return contact_id


async def set_attributes(
    runtime: Runtime, ws: Workspace, contact_id: int, **attributes: JsonValue
) -> None:
    await perform(
        runtime, ws.admin, do_update_contact, contact_id=contact_id, attributes=attributes
    )


async def segment(runtime: Runtime, ws: Workspace, attribute: str, value: str) -> int:
    segment_id: int = await perform(
        runtime,
        ws.admin,
        do_create_segment,
        name=f"{attribute}={value}",
        filter={
            "match": "all",
            "conditions": [{"attribute": attribute, "op": "eq", "value": value}],
        },
    )
    return segment_id


STEP: JsonValue = {
    "delay": {"after": 0},
    "variants": [{"subject": "Hi", "body": "Hello {{ contact.name }}"}],
}


async def touchpoint(
    runtime: Runtime,
    ws: Workspace,
    name: str,
    trigger: dict[str, JsonValue],
    *,
    steps: list[JsonValue] | None = None,
    draft_first: bool = False,
) -> int:
    """A live touchpoint with one step (or the steps given): created live,
    or created a draft and then switched live."""
    body: dict[str, JsonValue] = {
        "name": name,
        "kind": "marketing",
        "trigger": trigger,
        "steps": steps or [STEP],
    }
    status = TouchStatus.DRAFT if draft_first else TouchStatus.LIVE
    touchpoint_id: int = await perform(
        runtime, ws.admin, do_create_touchpoint, spec=parse_touchpoint(body), status=status
    )
    if draft_first:
        await set_status(runtime, ws, touchpoint_id, TouchStatus.LIVE)
    return touchpoint_id


async def set_status(
    runtime: Runtime, ws: Workspace, touchpoint_id: int, status: TouchStatus
) -> None:
    await perform(
        runtime, ws.admin, do_set_touchpoint_status, touchpoint_id=touchpoint_id, status=status
    )


async def bulk_contacts(
    runtime: Runtime, ws: Workspace, count: int, attributes: dict[str, JsonValue]
) -> None:
    """`count` contacts in one statement (one action call each would take
    most of the test's time)."""
    now = clock(runtime).now()
    async with runtime.db.write() as conn:
        await conn.execute(
            t.contacts.insert(),
            [
                {
                    "workspace_id": ws.id,
                    "name": f"Bulk {i}",
                    "attributes": attributes,
                    "created_at": now,
                }
                for i in range(count)
            ],
        )


async def run_all(runtime: Runtime) -> int:
    """Run due jobs until none is due; how many ran."""
    runner = JobRunner(runtime, HANDLERS, worker="planner", batch=5)
    total = 0
    while ran := await runner.run_due():
        total += ran
    return total


async def episodes(runtime: Runtime, touchpoint_id: int) -> list[tuple[int, str]]:
    e = t.episodes.c
    rows = await fetch_all(
        runtime,
        sa.select(e.contact_id, e.key)
        .where(e.touchpoint_id == touchpoint_id)
        .order_by(e.contact_id, e.id),
    )
    return [(r.contact_id, r.key) for r in rows]


async def first_decisions(runtime: Runtime, touchpoint_id: int) -> dict[int, datetime]:
    """Each contact's step-0 due time."""
    d = t.decisions.c
    rows = await fetch_all(
        runtime,
        sa.select(d.contact_id, d.due_at).where(d.touchpoint_id == touchpoint_id, d.position == 0),
    )
    return {r.contact_id: r.due_at for r in rows}


async def jobs(runtime: Runtime, kind: str) -> list[tuple[str, str, str | None]]:
    j = t.scheduled_jobs.c
    rows = await fetch_all(
        runtime, sa.select(j.key, j.status, j.last_error).where(j.kind == kind).order_by(j.id)
    )
    return [(r.key, r.status, r.last_error) for r in rows]


# -- broadcasts ------------------------------------------------------------


async def test_a_broadcast_is_due_at_ten_on_each_contacts_clock(
    runtime: Runtime, ws: Workspace
) -> None:
    move_to(runtime, datetime(2026, 12, 1, 9, tzinfo=UTC))
    berlin = await contact(runtime, ws, "Bea", holiday="yes", timezone=BERLIN)
    york = await contact(runtime, ws, "Nora", holiday="yes", timezone=NEW_YORK)
    york2 = await contact(runtime, ws, "Ned", holiday="yes", timezone=NEW_YORK)
    await contact(runtime, ws, "Otto", holiday="no", timezone=BERLIN)
    holiday = await segment(runtime, ws, "holiday", "yes")
    tp = await touchpoint(
        runtime,
        ws,
        "Holiday picks",
        {"kind": "broadcast", "segment_id": holiday, "at_local": "2026-12-20T10:00"},
        draft_first=True,
    )

    # Planned 26 h before ten comes at UTC+14 (2026-12-19T20:00Z), not before.
    assert await run_all(runtime) == 0
    assert await jobs(runtime, BROADCAST_PLAN) == [(f"{tp}:v1:after0", "scheduled", None)]
    move_to(runtime, datetime(2026, 12, 18, 18, tzinfo=UTC))
    assert await run_all(runtime) == 1

    key = "broadcast:2026-12-20T10:00"
    assert await episodes(runtime, tp) == [(berlin, key), (york, key), (york2, key)]
    assert await first_decisions(runtime, tp) == {
        berlin: datetime(2026, 12, 20, 9, tzinfo=UTC),
        york: datetime(2026, 12, 20, 15, tzinfo=UTC),
        york2: datetime(2026, 12, 20, 15, tzinfo=UTC),
    }
    # The page run again (a retry, a second worker) starts nothing twice.
    j = t.scheduled_jobs.c
    async with runtime.db.write() as conn:
        await conn.execute(
            t.scheduled_jobs.update()
            .where(j.kind == BROADCAST_PLAN)
            .values(status="scheduled", run_at=clock(runtime).now(), finished_at=None)
        )
    assert await run_all(runtime) == 1
    assert len(await episodes(runtime, tp)) == 3
    assert len(await first_decisions(runtime, tp)) == 3


async def test_a_late_plan_keeps_each_contacts_true_local_time(
    runtime: Runtime, ws: Workspace
) -> None:
    # Switched live at 12:00Z on the day: ten has passed in Berlin (09:00Z)
    # and is still ahead in New York (15:00Z). Each decision keeps its true
    # time, so the claim's lateness guard judges Berlin's, not the planner.
    move_to(runtime, datetime(2026, 12, 20, 12, tzinfo=UTC))
    berlin = await contact(runtime, ws, "Bea", holiday="yes", timezone=BERLIN)
    york = await contact(runtime, ws, "Nora", holiday="yes", timezone=NEW_YORK)
    holiday = await segment(runtime, ws, "holiday", "yes")
    tp = await touchpoint(
        runtime,
        ws,
        "Holiday picks",
        {"kind": "broadcast", "segment_id": holiday, "at_local": "2026-12-20T10:00"},
    )
    assert await run_all(runtime) == 1
    assert await first_decisions(runtime, tp) == {
        berlin: datetime(2026, 12, 20, 9, tzinfo=UTC),
        york: datetime(2026, 12, 20, 15, tzinfo=UTC),
    }


async def test_a_big_broadcast_walks_the_segment_in_pages(runtime: Runtime, ws: Workspace) -> None:
    move_to(runtime, datetime(2026, 12, 19, 12, tzinfo=UTC))
    now = clock(runtime).now()
    async with runtime.db.write() as conn:
        await conn.execute(
            t.contacts.insert(),
            [
                {
                    "workspace_id": ws.id,
                    "name": f"Bulk {i}",
                    "attributes": {"bulk": "yes", "timezone": BERLIN if i % 2 else NEW_YORK},
                    "created_at": now,
                }
                for i in range(2500)
            ],
        )
    bulk = await segment(runtime, ws, "bulk", "yes")
    tp = await touchpoint(
        runtime,
        ws,
        "Everyone",
        {"kind": "broadcast", "segment_id": bulk, "at_local": "2026-12-20T10:00"},
    )
    # Past the plan's due time already: the first page runs at once, and
    # each page schedules the next.
    assert await run_all(runtime) == 3
    pages = await jobs(runtime, BROADCAST_PLAN)
    assert [status for _, status, _ in pages] == ["done", "done", "done"]
    assert pages[0][0] == f"{tp}:v1:after0"
    assert [note for _, _, note in pages] == [
        f"{PAGE} contacts, {PAGE} episodes started",
        f"{PAGE} contacts, {PAGE} episodes started",
        "500 contacts, 500 episodes started",
    ]
    started = await episodes(runtime, tp)
    assert len(started) == 2500
    assert len({contact_id for contact_id, _ in started}) == 2500


async def test_a_paused_broadcast_does_nothing_and_resumes_when_live(
    runtime: Runtime, ws: Workspace
) -> None:
    move_to(runtime, datetime(2026, 12, 19, 12, tzinfo=UTC))
    first = await contact(runtime, ws, "Bea", holiday="yes", timezone=BERLIN)
    holiday = await segment(runtime, ws, "holiday", "yes")
    tp = await touchpoint(
        runtime,
        ws,
        "Holiday picks",
        {"kind": "broadcast", "segment_id": holiday, "at_local": "2026-12-20T10:00"},
    )
    await set_status(runtime, ws, tp, TouchStatus.PAUSED)
    assert await run_all(runtime) == 1
    assert await jobs(runtime, BROADCAST_PLAN) == [
        (f"{tp}:v1:after0", "cancelled", "the touchpoint is paused")
    ]
    assert await episodes(runtime, tp) == []

    await set_status(runtime, ws, tp, TouchStatus.LIVE)
    assert await run_all(runtime) == 1
    assert await episodes(runtime, tp) == [(first, "broadcast:2026-12-20T10:00")]


async def test_a_live_broadcast_moved_earlier_is_planned_for_its_new_time(
    runtime: Runtime, ws: Workspace
) -> None:
    move_to(runtime, datetime(2026, 12, 15, 12, tzinfo=UTC))
    bea = await contact(runtime, ws, "Bea", holiday="yes", timezone=BERLIN)
    holiday = await segment(runtime, ws, "holiday", "yes")
    planned: dict[str, JsonValue] = {
        "kind": "broadcast",
        "segment_id": holiday,
        "at_local": "2026-12-24T10:00",
    }
    tp = await touchpoint(runtime, ws, "Holiday picks", planned)
    moved = {**planned, "at_local": "2026-12-20T10:00"}
    body: dict[str, JsonValue] = {"name": "Holiday picks", "trigger": moved, "steps": [STEP]}
    await perform(
        runtime, ws.admin, do_update_touchpoint, touchpoint_id=tp, spec=parse_touchpoint(body)
    )
    assert [(key, status) for key, status, _ in await jobs(runtime, BROADCAST_PLAN)] == [
        (f"{tp}:v1:after0", "cancelled"),
        (f"{tp}:v2:after0", "scheduled"),
    ]
    move_to(runtime, datetime(2026, 12, 20, 8, tzinfo=UTC))
    assert await run_all(runtime) == 1
    assert await episodes(runtime, tp) == [(bea, "broadcast:2026-12-20T10:00")]
    # 10:00 in Berlin (CET, UTC+1).
    assert await first_decisions(runtime, tp) == {bea: datetime(2026, 12, 20, 9, tzinfo=UTC)}


# -- segment entry ---------------------------------------------------------


async def test_segment_entry_starts_one_episode_per_entry_day(
    runtime: Runtime, ws: Workspace
) -> None:
    move_to(runtime, datetime(2026, 12, 7, 9, tzinfo=UTC))
    vip = await segment(runtime, ws, "tier", "vip")
    bea = await contact(runtime, ws, "Bea", tier="basic", timezone=BERLIN)
    tp = await touchpoint(runtime, ws, "Welcome, VIP", {"kind": "segment_entry", "segment_id": vip})
    assert await run_all(runtime) == 1
    assert await episodes(runtime, tp) == []

    await set_attributes(runtime, ws, bea, tier="vip")
    clock(runtime).advance(minutes=5)
    assert await run_all(runtime) == 1
    assert await episodes(runtime, tp) == [(bea, "segment:2026-12-07")]
    # Still a member at the next scans: nothing new.
    for _ in range(3):
        clock(runtime).advance(minutes=5)
        assert await run_all(runtime) == 1
    assert await episodes(runtime, tp) == [(bea, "segment:2026-12-07")]

    # She leaves, and comes back the next day (Berlin's): a second episode.
    await set_attributes(runtime, ws, bea, tier="basic")
    clock(runtime).advance(minutes=5)
    assert await run_all(runtime) == 1
    move_to(runtime, datetime(2026, 12, 8, 9, tzinfo=UTC))
    await set_attributes(runtime, ws, bea, tier="vip")
    assert await run_all(runtime) == 1
    assert await episodes(runtime, tp) == [
        (bea, "segment:2026-12-07"),
        (bea, "segment:2026-12-08"),
    ]


async def test_two_touchpoints_on_one_segment_both_see_an_entry(
    runtime: Runtime, ws: Workspace
) -> None:
    move_to(runtime, datetime(2026, 12, 7, 9, tzinfo=UTC))
    vip = await segment(runtime, ws, "tier", "vip")
    bea = await contact(runtime, ws, "Bea", tier="basic", timezone=BERLIN)
    one = await touchpoint(runtime, ws, "One", {"kind": "segment_entry", "segment_id": vip})
    two = await touchpoint(runtime, ws, "Two", {"kind": "segment_entry", "segment_id": vip})
    assert await run_all(runtime) == 2
    await set_attributes(runtime, ws, bea, tier="vip")
    clock(runtime).advance(minutes=5)
    # The first scan's refresh records the entry; the second sees it too.
    assert await run_all(runtime) == 2
    assert await episodes(runtime, one) == [(bea, "segment:2026-12-07")]
    assert await episodes(runtime, two) == [(bea, "segment:2026-12-07")]


async def test_many_entries_are_taken_a_page_per_job(runtime: Runtime, ws: Workspace) -> None:
    move_to(runtime, datetime(2026, 12, 7, 9, tzinfo=UTC))
    vip = await segment(runtime, ws, "tier", "vip")
    await bulk_contacts(runtime, ws, PAGE + 5, {"tier": "vip", "timezone": BERLIN})
    tp = await touchpoint(runtime, ws, "Welcome, VIP", {"kind": "segment_entry", "segment_id": vip})
    assert await run_all(runtime) == 2
    started = await episodes(runtime, tp)
    assert len(started) == PAGE + 5
    assert len({contact_id for contact_id, _ in started}) == PAGE + 5
    scans = await jobs(runtime, SEGMENT_SCAN)
    assert [(status, note) for _, status, note in scans] == [
        ("done", f"{PAGE} entries, {PAGE} episodes started"),
        ("done", "5 entries, 5 episodes started"),
        ("scheduled", None),
    ]
    # The next round looks at the same entries again (its window overlaps
    # the last one's) and starts nobody twice.
    clock(runtime).advance(minutes=5)
    await run_all(runtime)
    assert len(await episodes(runtime, tp)) == PAGE + 5


async def test_a_scan_of_a_deleted_segment_ends_without_a_successor(
    runtime: Runtime, ws: Workspace
) -> None:
    move_to(runtime, datetime(2026, 12, 7, 9, tzinfo=UTC))
    vip = await segment(runtime, ws, "tier", "vip")
    tp = await touchpoint(runtime, ws, "Welcome, VIP", {"kind": "segment_entry", "segment_id": vip})
    # A segment in use can't be deleted; archived, the touchpoint lets it
    # go, and switched live again it finds it gone.
    await set_status(runtime, ws, tp, TouchStatus.ARCHIVED)
    await perform(runtime, ws.admin, do_delete_segment, segment_id=vip)
    await set_status(runtime, ws, tp, TouchStatus.LIVE)
    assert await run_all(runtime) == 1
    scans = await jobs(runtime, SEGMENT_SCAN)
    assert scans == [
        (f"{tp}:{clock(runtime).now().isoformat()}", "cancelled", "the segment no longer exists")
    ]


async def test_a_paused_segment_scan_does_nothing_and_stops(
    runtime: Runtime, ws: Workspace
) -> None:
    move_to(runtime, datetime(2026, 12, 7, 9, tzinfo=UTC))
    vip = await segment(runtime, ws, "tier", "vip")
    await contact(runtime, ws, "Bea", tier="vip", timezone=BERLIN)
    tp = await touchpoint(runtime, ws, "Welcome, VIP", {"kind": "segment_entry", "segment_id": vip})
    await set_status(runtime, ws, tp, TouchStatus.PAUSED)
    assert await run_all(runtime) == 1
    scans = await jobs(runtime, SEGMENT_SCAN)
    assert scans == [(scans[0][0], "cancelled", "the touchpoint is paused")]
    clock(runtime).advance(hours=1)
    assert await run_all(runtime) == 0
    assert await episodes(runtime, tp) == []


# -- date attributes -------------------------------------------------------


async def test_a_birthday_tomorrow_in_tokyo_starts_one_episode(
    runtime: Runtime, ws: Workspace
) -> None:
    # 2027-05-16 12:00Z is 21:00 in Tokyo: the birthday starts in 3 h there.
    move_to(runtime, datetime(2027, 5, 16, 12, tzinfo=UTC))
    kenji = await contact(runtime, ws, "Kenji", birthday="1990-05-17", timezone=TOKYO)
    later = await contact(runtime, ws, "Later", birthday="06-30", timezone=TOKYO)
    await contact(runtime, ws, "Nobirthday", timezone=TOKYO)
    tp = await touchpoint(
        runtime,
        ws,
        "Birthday",
        {"kind": "date", "attribute": "birthday"},
        steps=[
            {
                "delay": {"relative_to": "birthday", "offset_days": 0, "at_local": "09:00"},
                "variants": [{"subject": "Happy birthday", "body": "Hi"}],
            }
        ],
    )
    assert await run_all(runtime) == 1
    assert await episodes(runtime, tp) == [(kenji, "birthday:2027")]
    assert await first_decisions(runtime, tp) == {kenji: datetime(2027, 5, 17, 0, tzinfo=UTC)}
    # The hourly scans that follow start nothing again.
    for _ in range(3):
        clock(runtime).advance(hours=1)
        assert await run_all(runtime) == 1
    assert await episodes(runtime, tp) == [(kenji, "birthday:2027")]
    assert later not in {contact_id for contact_id, _ in await episodes(runtime, tp)}


async def test_a_feb_29_birthday_is_kept_on_feb_28_in_a_common_year(
    runtime: Runtime, ws: Workspace
) -> None:
    move_to(runtime, datetime(2027, 2, 27, 12, tzinfo=UTC))
    leap = await contact(runtime, ws, "Leap", birthday="2000-02-29", timezone=BERLIN)
    tp = await touchpoint(runtime, ws, "Birthday", {"kind": "date", "attribute": "birthday"})
    assert await run_all(runtime) == 1
    assert await episodes(runtime, tp) == [(leap, "birthday:2027")]
    # The episode is anchored at the start of Feb 28 in Berlin.
    assert await first_decisions(runtime, tp) == {leap: datetime(2027, 2, 27, 23, tzinfo=UTC)}
    # A leap year later, Feb 29 itself.
    move_to(runtime, datetime(2028, 2, 28, 12, tzinfo=UTC))
    await run_all(runtime)
    assert await episodes(runtime, tp) == [(leap, "birthday:2027"), (leap, "birthday:2028")]
    assert (await first_decisions_by_key(runtime, tp))["birthday:2028"] == datetime(
        2028, 2, 28, 23, tzinfo=UTC
    )


async def first_decisions_by_key(runtime: Runtime, touchpoint_id: int) -> dict[str, datetime]:
    d, e = t.decisions.c, t.episodes.c
    rows = await fetch_all(
        runtime,
        sa.select(e.key, d.due_at)
        .join(t.episodes, e.id == d.episode_id)
        .where(d.touchpoint_id == touchpoint_id, d.position == 0),
    )
    return {r.key: r.due_at for r in rows}


async def test_a_paused_date_scan_does_nothing(runtime: Runtime, ws: Workspace) -> None:
    move_to(runtime, datetime(2027, 5, 16, 12, tzinfo=UTC))
    await contact(runtime, ws, "Kenji", birthday="1990-05-17", timezone=TOKYO)
    tp = await touchpoint(runtime, ws, "Birthday", {"kind": "date", "attribute": "birthday"})
    await set_status(runtime, ws, tp, TouchStatus.ARCHIVED)
    assert await run_all(runtime) == 1
    scans = await jobs(runtime, DATE_SCAN)
    assert scans == [(scans[0][0], "cancelled", "the touchpoint is archived")]
    assert await episodes(runtime, tp) == []
    clock(runtime).advance(hours=2)
    assert await run_all(runtime) == 0


async def test_the_date_scan_pages_and_plans_the_next_round(
    runtime: Runtime, ws: Workspace
) -> None:
    move_to(runtime, datetime(2027, 5, 16, 12, tzinfo=UTC))
    now = clock(runtime).now()
    async with runtime.db.write() as conn:
        await conn.execute(
            t.contacts.insert(),
            [
                {
                    "workspace_id": ws.id,
                    "name": f"Bulk {i}",
                    "attributes": {"birthday": "05-17" if i % 2 else "11-01", "timezone": TOKYO},
                    "created_at": now,
                }
                for i in range(PAGE + 10)
            ],
        )
    tp = await touchpoint(runtime, ws, "Birthday", {"kind": "date", "attribute": "birthday"})
    assert await run_all(runtime) == 2
    assert len(await episodes(runtime, tp)) == (PAGE + 10) // 2
    scans = await jobs(runtime, DATE_SCAN)
    assert [status for _, status, _ in scans] == ["done", "done", "scheduled"]
    assert scans[1][0].startswith(scans[0][0] + ":after")
    next_round = now + timedelta(hours=1)
    assert scans[2][0] == f"{tp}:{next_round.isoformat()}"
