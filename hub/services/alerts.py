"""Device alerts of a hall (D1, D6): ``alerts:<hall_id>``, live for its managers and supervisors.

An alert is a row of ``device_alert`` (one per device and code) while it lasts. Raising an
alert that is already up, or clearing one that is not, changes nothing and announces nothing,
so alerts are raised and cleared only on change however often a device repeats its status.
The codes, levels and texts are in hub/domain/devices.py.

Events on ``alerts:<hall_id>`` (access: ``presence.watch``, hub/services/access.py):
``alert_raised`` {alert: :class:`DeviceAlert`}, ``alert_cleared`` {device_id, code}, and
``device_status`` (:class:`DeviceStatus`: a device's reported state and error count changed,
for the manager's device page).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import structlog

from hub.domain.devices import (
    ALERT_LEVELS,
    AlertCode,
    AlertLevel,
    DeviceState,
    alert_message,
)
from hub.services.devices import DeviceRow
from hub.services.events import Tx
from realtime.topics import TopicName, topic

log = structlog.get_logger("hub.services.alerts")

EVENT_RAISED = "alert_raised"
EVENT_CLEARED = "alert_cleared"
EVENT_STATUS = "device_status"


class DeviceAlert(msgspec.Struct, frozen=True, kw_only=True):
    """One live alert. ``message`` is zh-CN (``3号取号机打印纸将尽``), ``since`` epoch seconds."""

    device_id: int
    device_name: str
    device_kind: str
    code: AlertCode
    level: AlertLevel
    message: str
    since: float


class AlertRaised(msgspec.Struct, frozen=True):
    alert: DeviceAlert


class AlertCleared(msgspec.Struct, frozen=True):
    device_id: int
    code: AlertCode


class AlertsSnapshot(msgspec.Struct, frozen=True):
    hall_id: int
    alerts: list[DeviceAlert]


class DeviceStatus(msgspec.Struct, frozen=True, kw_only=True):
    """``device_status`` on ``alerts:<hall>``: what the device page shows of a device besides
    presence (``presence:<hall>``) and alerts."""

    device_id: int
    state: DeviceState
    state_at: datetime | None
    errors: int
    model: str
    firmware: str


_ALERT_COLUMNS = """a.device_id, d.name AS device_name, d.kind AS device_kind, a.code, a.level,
                    a.message, extract(epoch FROM a.since)::float8 AS since"""


def _alert(row: asyncpg.Record) -> DeviceAlert:
    return msgspec.convert(dict(row), DeviceAlert)


async def raise_alert(
    tx: Tx, device: DeviceRow, code: AlertCode, now: datetime, *, part: str = ""
) -> DeviceAlert | None:
    """Raise ``code`` on ``device`` unless it is up already; the new alert, or None."""
    # A printer's own alerts name the machine people see (its host); a link or a peer
    # lost names the device itself.
    own = code in ("device_offline", "device_unreachable")
    message = alert_message(code, device.name if own else device.shown_name, part)
    row = await tx.conn.fetchrow(
        f"""WITH a AS (
                INSERT INTO device_alert (device_id, code, hall_id, level, message, since)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (device_id, code) DO NOTHING
                RETURNING *)
            SELECT {_ALERT_COLUMNS} FROM a JOIN device d ON d.id = a.device_id""",
        device.id,
        code,
        device.hall_id,
        ALERT_LEVELS[code],
        message,
        now,
    )
    if row is None:
        return None
    alert = _alert(row)
    await tx.emit(topic("alerts", device.hall_id), EVENT_RAISED, AlertRaised(alert))
    log.info("alert_raised", device=device.id, hall=device.hall_id, code=code)
    return alert


async def clear_alert(tx: Tx, device: DeviceRow, code: AlertCode) -> bool:
    """Clear ``code`` on ``device`` if it is up; whether it was."""
    cleared = await tx.conn.fetchval(
        "DELETE FROM device_alert WHERE device_id = $1 AND code = $2 RETURNING true",
        device.id,
        code,
    )
    if not cleared:
        return False
    await tx.emit(topic("alerts", device.hall_id), EVENT_CLEARED, AlertCleared(device.id, code))
    log.info("alert_cleared", device=device.id, hall=device.hall_id, code=code)
    return True


async def set_alerts(
    tx: Tx,
    device: DeviceRow,
    wanted: Iterable[AlertCode],
    among: Iterable[AlertCode],
    now: datetime,
) -> None:
    """Make the alerts of ``among`` that are up on ``device`` exactly ``wanted``."""
    want = set(wanted)
    for code in sorted(set(among)):
        if code in want:
            await raise_alert(tx, device, code, now)
        else:
            await clear_alert(tx, device, code)


async def hall_alerts(db: asyncpg.Connection | asyncpg.Pool, hall_id: int) -> list[DeviceAlert]:
    """The live alerts of a hall, oldest first."""
    rows = await db.fetch(
        f"""SELECT {_ALERT_COLUMNS} FROM device_alert a JOIN device d ON d.id = a.device_id
            WHERE a.hall_id = $1 ORDER BY a.since, a.device_id, a.code""",
        hall_id,
    )
    return [_alert(r) for r in rows]


async def device_alerts(db: asyncpg.Connection | asyncpg.Pool, device_id: int) -> list[DeviceAlert]:
    """The live alerts of one device."""
    rows = await db.fetch(
        f"""SELECT {_ALERT_COLUMNS} FROM device_alert a JOIN device d ON d.id = a.device_id
            WHERE a.device_id = $1 ORDER BY a.since, a.code""",
        device_id,
    )
    return [_alert(r) for r in rows]


async def alerts_snapshot(conn: asyncpg.Connection, name: TopicName) -> AlertsSnapshot:
    """Snapshot provider of ``alerts:<hall_id>``."""
    hall_id = int(name.key)
    return AlertsSnapshot(hall_id=hall_id, alerts=await hall_alerts(conn, hall_id))


async def announce_status(tx: Tx, device_id: int) -> None:
    """Emit ``device_status`` of ``device_id`` on its hall's alerts topic."""
    row = await tx.conn.fetchrow(
        """SELECT id AS device_id, hall_id, state, state_at, errors, model, firmware
           FROM device WHERE id = $1""",
        device_id,
    )
    data: dict[str, Any] = dict(row)
    hall_id = data.pop("hall_id")
    await tx.emit(topic("alerts", hall_id), EVENT_STATUS, msgspec.convert(data, DeviceStatus))
