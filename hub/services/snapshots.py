"""Snapshot providers: the full state of a topic, read in the feed's snapshot transaction.

One provider per topic kind. The queue issue extends ``hall:`` and ``window:`` with calls and
waiting counts; today they carry the hall's and window's public facts. Public topics carry
no personal data (staff appear under their name and staff number only, by policy).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg
import msgspec

from hub.services.alerts import alerts_snapshot
from hub.services.devices import device_topic_snapshot
from hub.services.notices import NoticePosted, current_notices, public_notice
from hub.services.presence import presence_snapshot
from hub.services.queue_views import QueueState, queue_state
from realtime.feed import SnapshotProvider
from realtime.topics import TopicName


class WindowInfo(msgspec.Struct, frozen=True):
    window_id: int
    number: int
    name: str
    department: str | None


class HallSnapshot(msgspec.Struct, frozen=True):
    hall_id: int
    name: str
    timezone: str
    windows: list[WindowInfo]
    # Q5: a display that resumes by snapshot must show the notices still current.
    notices: list[NoticePosted]
    # Q5, Q6: windows with their staff and current ticket, groups with waiting counts, and
    # the latest calls of the hall's service day.
    queue: QueueState


class WindowSnapshot(msgspec.Struct, frozen=True):
    window: WindowInfo | None
    hall_id: int | None


class EmptySnapshot(msgspec.Struct, frozen=True):
    """For topics whose state is their events only (personal feeds of staff)."""


async def hall_snapshot(
    conn: asyncpg.Connection, name: TopicName, now: datetime
) -> HallSnapshot | None:
    hall = await conn.fetchrow("SELECT id, name, timezone FROM hall WHERE id = $1", int(name.key))
    if hall is None:
        return None
    rows = await conn.fetch(
        """SELECT w.id, w.number, w.name, d.name AS department
           FROM "window" w LEFT JOIN department d ON d.id = w.department_id
           WHERE w.hall_id = $1 ORDER BY w.number""",
        hall["id"],
    )
    return HallSnapshot(
        hall_id=hall["id"],
        name=hall["name"],
        timezone=hall["timezone"],
        windows=[WindowInfo(r["id"], r["number"], r["name"], r["department"]) for r in rows],
        notices=[public_notice(n) for n in await current_notices(conn, hall["id"])],
        queue=await queue_state(conn, hall["id"], now),
    )


async def window_snapshot(conn: asyncpg.Connection, name: TopicName) -> WindowSnapshot:
    row = await conn.fetchrow(
        """SELECT w.id, w.number, w.name, w.hall_id, d.name AS department
           FROM "window" w LEFT JOIN department d ON d.id = w.department_id
           WHERE w.id = $1""",
        int(name.key),
    )
    if row is None:
        return WindowSnapshot(window=None, hall_id=None)
    info = WindowInfo(row["id"], row["number"], row["name"], row["department"])
    return WindowSnapshot(window=info, hall_id=row["hall_id"])


async def empty_snapshot(conn: asyncpg.Connection, name: TopicName) -> EmptySnapshot:
    return EmptySnapshot()


def providers(clock: Callable[[], datetime]) -> dict[str, SnapshotProvider]:
    """The snapshot provider of every topic kind the hub serves; ``clock`` tells the hall
    snapshot which service day it shows."""

    async def hall(conn: asyncpg.Connection, name: TopicName) -> HallSnapshot | None:
        return await hall_snapshot(conn, name, clock())

    return {
        "hall": hall,
        "window": window_snapshot,
        "presence": presence_snapshot,
        "staff": empty_snapshot,
        "device": device_topic_snapshot,
        "alerts": alerts_snapshot,
    }
