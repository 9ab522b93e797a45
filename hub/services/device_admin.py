"""Managing a hall's devices (D6): bindings, remote settings, and the manager's device page.

``update`` binds a device to a host or a window and renames it; ``configure`` replaces its
remote settings and pushes them as ``configure`` on ``device:<id>``; ``hall_devices`` is the
device page's list. Each change is one transaction with its audit row (``device.update``,
``device.configure``) and its events:

- the device's own topic gets ``device_changed`` (its new :class:`DeviceSnapshot`) after a
  binding or name change, ``configure`` {settings} after new settings;
- a printer that changes host is announced to both hosts (``printer_state``: their e-ticket
  mode may change), as when it is revoked (:func:`revoked`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import asyncpg
import msgspec
import structlog

from hub.domain.access import Place
from hub.domain.devices import DeviceState, check_binding, check_settings
from hub.domain.errors import Conflict, InvalidInput, NotFound
from hub.services import alerts, audit
from hub.services.alerts import DeviceAlert
from hub.services.devices import (
    EVENT_DEVICE_CHANGED,
    announce_printer,
    device_snapshot,
    load_device,
    printer_before,
)
from hub.services.events import EventWriter
from realtime.topics import topic

log = structlog.get_logger("hub.services.device_admin")

EVENT_CONFIGURE = "configure"

Id = Annotated[int, msgspec.Meta(ge=1)]


class DeviceChange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /api/devices/{id}``: what is given changes; ``null`` unbinds."""

    host_id: Id | msgspec.UnsetType | None = msgspec.UNSET
    window_id: Id | msgspec.UnsetType | None = msgspec.UNSET
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | msgspec.UnsetType = (
        msgspec.UNSET
    )


class DeviceSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``PUT /api/devices/{id}/config``: the device's whole remote configuration (D6)."""

    settings: dict[str, Any]


class Configure(msgspec.Struct, frozen=True):
    """``configure`` on ``device:<id>``."""

    settings: dict[str, Any]


class DeviceBinding(msgspec.Struct, frozen=True, kw_only=True):
    """A device's binding and settings, as a change leaves them."""

    id: int
    hall_id: int
    kind: str
    name: str
    host_id: int | None
    window_id: int | None
    config: dict[str, Any]


class DeviceView(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the manager's device page (``GET /api/halls/{hall_id}/devices``).

    ``online``/``last_seen`` are the peer's presence when the list was read (live:
    ``presence:<hall>``); ``state``, ``errors``, ``model``, ``firmware`` what the device last
    reported (live: ``device_status`` on ``alerts:<hall>``); ``alerts`` its live alerts
    (live: ``alerts:<hall>``).
    """

    id: int
    hall_id: int
    kind: str
    name: str
    host_id: int | None
    host_name: str | None
    window_id: int | None
    window_number: int | None
    config: dict[str, Any]
    online: bool
    last_seen: float | None
    state: DeviceState
    state_at: datetime | None
    errors: int
    model: str
    firmware: str
    created_at: datetime
    alerts: list[DeviceAlert]


def _binding(device: Any) -> DeviceBinding:
    return DeviceBinding(
        id=device.id,
        hall_id=device.hall_id,
        kind=device.kind,
        name=device.name,
        host_id=device.host_id,
        window_id=device.window_id,
        config=device.config,
    )


async def update(
    events: EventWriter, actor: audit.Actor, place: Place, device_id: int, change: DeviceChange
) -> DeviceBinding:
    """Bind, unbind or rename a device (hub.domain.devices.check_binding).

    Raises:
        NotFound: the device, the host (``body.host_id``: of this hall) or the window
            (``body.window_id``: of this hall) does not exist.
        Conflict: the device is revoked.
        InvalidInput: a binding the device's kind does not take.
    """
    async with events.transaction() as tx:
        device = await load_device(tx.conn, device_id, lock=True)
        if device.revoked:
            raise Conflict(f"device {device_id} is revoked")
        host_id = device.host_id if change.host_id is msgspec.UNSET else change.host_id
        window_id = device.window_id if change.window_id is msgspec.UNSET else change.window_id
        name = device.name if change.name is msgspec.UNSET else change.name.strip()
        if not name:
            raise InvalidInput("a device has a name", field="body.name")
        host_kind = None
        if host_id is not None:
            host = await tx.conn.fetchrow(
                "SELECT kind, revoked_at FROM device WHERE id = $1 AND hall_id = $2",
                host_id,
                device.hall_id,
            )
            if host is None or host["revoked_at"] is not None:
                raise NotFound(f"no device {host_id} in this hall", field="body.host_id")
            host_kind = host["kind"]
        if window_id is not None:
            found = await tx.conn.fetchval(
                'SELECT 1 FROM "window" WHERE id = $1 AND hall_id = $2', window_id, device.hall_id
            )
            if found is None:
                raise NotFound(f"this hall has no window {window_id}", field="body.window_id")
        check_binding(
            device.kind,
            host_kind=host_kind,
            host_is_self=host_id == device.id,
            has_window=window_id is not None,
        )
        old_host = await printer_before(tx.conn, device.id, device.host_id)
        await tx.conn.execute(
            "UPDATE device SET host_id = $2, window_id = $3, name = $4 WHERE id = $1",
            device.id,
            host_id,
            window_id,
            name,
        )
        after = await load_device(tx.conn, device.id)
        await audit.record(
            tx.conn,
            actor,
            "device.update",
            "device",
            device.id,
            place=place,
            before=_binding(device),
            after=_binding(after),
        )
        if device.kind == "printer" and host_id != device.host_id:
            await announce_printer(tx, device.id, device.host_id, old_host)
            await announce_printer(tx, device.id, host_id, None)
        await tx.emit(
            topic("device", device.id),
            EVENT_DEVICE_CHANGED,
            await device_snapshot(tx.conn, device.id),
        )
    log.info("device_updated", device=device.id, host=host_id, window=window_id)
    return _binding(after)


async def configure(
    events: EventWriter, actor: audit.Actor, place: Place, device_id: int, new: DeviceSettings
) -> DeviceBinding:
    """Replace a device's remote settings and push them (``configure`` on its topic).

    Raises:
        NotFound: no such device. Conflict: it is revoked.
        InvalidInput: settings too large, or a known setting out of its bounds
            (hub.domain.devices.check_settings).
    """
    async with events.transaction() as tx:
        device = await load_device(tx.conn, device_id, lock=True)
        if device.revoked:
            raise Conflict(f"device {device_id} is revoked")
        check_settings(new.settings, len(msgspec.json.encode(new.settings)), device.kind)
        await tx.conn.execute(
            "UPDATE device SET config = $2 WHERE id = $1", device.id, new.settings
        )
        await audit.record(
            tx.conn,
            actor,
            "device.configure",
            "device",
            device.id,
            place=place,
            before={"settings": device.config},
            after={"settings": new.settings},
        )
        await tx.emit(topic("device", device.id), EVENT_CONFIGURE, Configure(new.settings))
    log.info("device_configured", device=device.id, keys=sorted(new.settings)[:20])
    return msgspec.structs.replace(_binding(device), config=new.settings)


async def revoked(events: EventWriter, device_id: int) -> None:
    """After a device's token was revoked: its alerts end, and a printer's host learns
    that it is gone."""
    async with events.transaction() as tx:
        device = await load_device(tx.conn, device_id, lock=True)
        for alert in await alerts.device_alerts(tx.conn, device.id):
            await alerts.clear_alert(tx, device, alert.code)
        if device.kind == "printer" and device.host_id is not None:
            await announce_printer(tx, device.id, device.host_id, None)


async def hall_devices(db: asyncpg.Pool | asyncpg.Connection, hall_id: int) -> list[DeviceView]:
    """The unrevoked devices of a hall with bindings, presence, state and alerts, by kind
    and name."""
    rows = await db.fetch(
        """SELECT d.id, d.hall_id, d.kind, d.name, d.host_id, h.name AS host_name, d.window_id,
                  w.number AS window_number, d.config, coalesce(p.online, false) AS online,
                  extract(epoch FROM p.last_seen)::float8 AS last_seen, d.state, d.state_at,
                  d.errors, d.model, d.firmware, d.created_at
           FROM device d
           LEFT JOIN device h ON h.id = d.host_id
           LEFT JOIN "window" w ON w.id = d.window_id
           LEFT JOIN peer_presence p ON p.peer_id = 'device:' || d.id
           WHERE d.hall_id = $1 AND d.revoked_at IS NULL
           ORDER BY d.kind, d.name, d.id""",
        hall_id,
    )
    by_device: dict[int, list[DeviceAlert]] = {}
    for alert in await alerts.hall_alerts(db, hall_id):
        by_device.setdefault(alert.device_id, []).append(alert)
    return [
        msgspec.convert({**dict(r), "alerts": by_device.get(r["id"], [])}, DeviceView) for r in rows
    ]
