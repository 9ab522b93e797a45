"""A device as the hub's services see it: its row, its topic's snapshot, and for a host
(kiosk, ticket machine, touch terminal) the state of its printers (D1, D6).

``device:<id>`` is the device's own topic (only that device subscribes). Its snapshot is a
:class:`DeviceSnapshot`; for a host it tells whether the page shows e-tickets
(:func:`hub.domain.devices.can_print` over its attached printers). Whatever changes that
answer emits ``printer_state`` on the host's topic: a printer's status, its link to the
hardware, its peer coming and going, its binding (:func:`announce_printer`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from hub.domain.devices import HOST_KINDS, DeviceState, Paper, can_print
from hub.domain.errors import NotFound
from hub.services.events import Tx
from realtime.topics import TopicName, topic

EVENT_PRINTER_STATE = "printer_state"
EVENT_DEVICE_CHANGED = "device_changed"


class DeviceRow(msgspec.Struct, frozen=True, kw_only=True):
    """One device with what the services need of it."""

    id: int
    hall_id: int
    kind: str
    name: str
    host_id: int | None
    host_name: str | None
    host_kind: str | None
    window_id: int | None
    config: dict[str, Any]
    state: DeviceState
    revoked: bool

    @property
    def topic(self) -> str:
        return topic("device", self.id)

    @property
    def shown_name(self) -> str:
        """The name people know the machine by: a printer's host (``3号取号机``), else its own."""
        return self.host_name or self.name


class PrinterState(msgspec.Struct, frozen=True, kw_only=True):
    """``printer_state`` on a host's topic, and each of a host's printers in its snapshot.

    ``online``: the printer's peer is connected and the printer reports itself online;
    ``e_ticket``: the host has no printer that can print now (whole host, not this printer).
    """

    printer_id: int
    online: bool
    paper: Paper
    cover_open: bool
    error: bool
    e_ticket: bool


class DeviceSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The snapshot of ``device:<id>`` (docs/devices/hub.md). ``e_ticket`` and ``printers``
    mean something for hosts only (False and empty for the others)."""

    device_id: int
    kind: str
    name: str
    hall_id: int
    window_id: int | None
    host_id: int | None
    config: dict[str, Any]
    e_ticket: bool
    printers: list[PrinterState]


_DEVICE_SQL = """
    SELECT d.id, d.hall_id, d.kind, d.name, d.host_id, h.name AS host_name,
           h.kind AS host_kind, d.window_id, d.config, d.state,
           d.revoked_at IS NOT NULL AS revoked
    FROM device d LEFT JOIN device h ON h.id = d.host_id
    WHERE d.id = $1"""


def device_id_of(peer_id: str) -> int:
    """``device:12`` → 12."""
    return int(peer_id.removeprefix("device:"))


def _device(row: asyncpg.Record) -> DeviceRow:
    return msgspec.convert(dict(row), DeviceRow)


async def load_device(
    db: asyncpg.Connection | asyncpg.Pool, device_id: int, *, lock: bool = False
) -> DeviceRow:
    """The device ``device_id``; with ``lock``, its row stays locked until commit (reports of
    one device are applied one at a time, so "on change" compares with the true last state).

    Raises:
        NotFound: no such device (``path.device_id``).
    """
    sql = _DEVICE_SQL + (" FOR UPDATE OF d" if lock else "")
    row = await db.fetchrow(sql, device_id)
    if row is None:
        raise NotFound(f"device {device_id} does not exist", field="path.device_id")
    return _device(row)


class _Printer(msgspec.Struct, frozen=True):
    id: int
    state: DeviceState
    present: bool


async def _printers(db: asyncpg.Connection | asyncpg.Pool, host_id: int) -> list[_Printer]:
    rows = await db.fetch(
        """SELECT d.id, d.state, coalesce(p.online, false) AS present
           FROM device d LEFT JOIN peer_presence p ON p.peer_id = 'device:' || d.id
           WHERE d.host_id = $1 AND d.kind = 'printer' AND d.revoked_at IS NULL
           ORDER BY d.id""",
        host_id,
    )
    return [msgspec.convert(dict(r), _Printer) for r in rows]


def _states(printers: list[_Printer]) -> list[PrinterState]:
    e_ticket = not any(can_print(p.state, p.present) for p in printers)
    states = []
    for p in printers:
        status = p.state.printer_status()
        states.append(
            PrinterState(
                printer_id=p.id,
                online=p.present and status is not None and status.online,
                paper=status.paper if status is not None else "ok",
                cover_open=status is not None and status.cover_open,
                error=status is not None and status.error,
                e_ticket=e_ticket,
            )
        )
    return states


async def host_printers(db: asyncpg.Connection | asyncpg.Pool, host_id: int) -> list[PrinterState]:
    """The printers attached to ``host_id``, each with the host's ``e_ticket``."""
    return _states(await _printers(db, host_id))


async def printable_printer(conn: asyncpg.Connection, host_id: int) -> int | None:
    """The first printer of ``host_id`` that can print now (lowest id), or None."""
    for p in await _printers(conn, host_id):
        if can_print(p.state, p.present):
            return p.id
    return None


def printer_state_of(printers: list[PrinterState], printer_id: int) -> PrinterState | None:
    """The state of ``printer_id`` among a host's ``printers``, if it is one of them."""
    return next((p for p in printers if p.printer_id == printer_id), None)


async def announce_printer(
    tx: Tx, printer_id: int, host_id: int | None, before: PrinterState | None
) -> None:
    """Emit ``printer_state`` of ``printer_id`` on its host's topic if it differs from
    ``before`` (its state read earlier in the transaction). A printer no longer attached to
    the host is announced offline, with the host's new ``e_ticket``."""
    if host_id is None:
        return
    printers = await host_printers(tx.conn, host_id)
    after = printer_state_of(printers, printer_id)
    if after is None:
        e_ticket = printers[0].e_ticket if printers else True
        after = PrinterState(
            printer_id=printer_id,
            online=False,
            paper=before.paper if before else "ok",
            cover_open=False,
            error=False,
            e_ticket=e_ticket,
        )
    if after != before:
        await tx.emit(topic("device", host_id), EVENT_PRINTER_STATE, after)


async def printer_before(
    conn: asyncpg.Connection, printer_id: int, host_id: int | None
) -> PrinterState | None:
    """``printer_id``'s state as its host sees it now (None without a host)."""
    if host_id is None:
        return None
    return printer_state_of(await host_printers(conn, host_id), printer_id)


async def device_snapshot(
    db: asyncpg.Connection | asyncpg.Pool, device_id: int
) -> DeviceSnapshot | None:
    """The snapshot of ``device:<device_id>``; None for an unknown device."""
    row = await db.fetchrow(_DEVICE_SQL, device_id)
    if row is None:
        return None
    device = _device(row)
    printers: list[PrinterState] = []
    e_ticket = False
    if device.kind in HOST_KINDS:
        printers = await host_printers(db, device.id)
        e_ticket = printers[0].e_ticket if printers else True
    return DeviceSnapshot(
        device_id=device.id,
        kind=device.kind,
        name=device.name,
        hall_id=device.hall_id,
        window_id=device.window_id,
        host_id=device.host_id,
        config=device.config,
        e_ticket=e_ticket,
        printers=printers,
    )


async def device_topic_snapshot(conn: asyncpg.Connection, name: TopicName) -> DeviceSnapshot | None:
    """Snapshot provider of ``device:<id>``."""
    return await device_snapshot(conn, int(name.key))


def local_time(at: datetime, timezone: str) -> str:
    """``2026-11-26 09:30`` in the hall's time zone (the printed ticket's time)."""
    return at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
