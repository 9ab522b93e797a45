"""Devices of a hub process that died: the leader's reaper marks them offline and raises
device_offline for each (hub/services/presence.py reap + the device presence hook)."""

from __future__ import annotations

import uuid

import asyncpg

from tests.factories import make_device, make_hall
from tests.realtime.peers import hubs


async def test_the_reaper_raises_device_offline_for_the_devices_of_a_dead_process(
    db: asyncpg.Pool, database_url: str
) -> None:
    """A device left online by a process whose lease ran out is marked offline with its
    alert; the events are in the outbox (published by the feeds' reconcile)."""
    place = await make_hall(db)
    device_id, _ = await make_device(db, place.hall_id, "evaluator", "1窗评价器")
    dead = uuid.uuid4()
    await db.execute(
        "INSERT INTO hub_process (id, host, pid, lease_until) "
        "VALUES ($1, 'gone', 1, now() - interval '1 minute')",
        dead,
    )
    await db.execute(
        """INSERT INTO peer_presence (peer_id, peer_kind, hall_id, label, online, process_id,
                                      conn_id, last_seen, changed_at)
           VALUES ($1, 'evaluator', $2, '1窗评价器', true, $3, $4, now(), now())""",
        f"device:{device_id}",
        place.hall_id,
        dead,
        uuid.uuid4(),
    )
    async with hubs(database_url) as start:
        hub = await start()
        assert hub.presence is not None
        async with hub.pool.acquire() as conn, conn.transaction():
            await hub.presence.reap(conn)
    alert = await db.fetchrow("SELECT code, level, message FROM device_alert")
    assert dict(alert) == {
        "code": "device_offline",
        "level": "critical",
        "message": "1窗评价器已离线",
    }
    types = await db.fetch(
        "SELECT type FROM topic_event WHERE topic = $1 ORDER BY seq", f"alerts:{place.hall_id}"
    )
    assert [r["type"] for r in types] == ["alert_raised"]
