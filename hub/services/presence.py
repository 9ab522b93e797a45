"""Presence of devices and screens (H2): online/offline, durable before announced.

A device peer that completes hello is marked online in ``peer_presence`` (with this process
and connection) and ``peer_online`` is appended to ``presence:<hall>`` in the same
transaction; when it leaves, ``peer_offline``. A close from an old connection never marks
offline a device that has already reconnected (the row names the connection).

Heartbeat times are not events: each process writes them in one batch per period and sends a
volatile ``peers_seen`` frame per hall. Peers of a process that died (its lease in
``hub_process`` ran out) are marked offline by the leader's reaper job.

Every change of a device's presence (online, offline, reaped) also runs the
``presence_hooks`` in its transaction: device alerts and printer states (issue 5,
hub/services/device_events.py). Device events go to the handlers of ``device_events``.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable

import asyncpg
import msgspec
import structlog

from hub.domain.errors import DomainError
from hub.services.events import EventWriter, Tx
from realtime import outbox
from realtime.errors import Unauthenticated
from realtime.feed import Feed
from realtime.messages import DeviceEvent
from realtime.outbox import volatile_frame
from realtime.peer import PeerConn
from realtime.topics import TopicName, topic

log = structlog.get_logger("hub.presence")


class PeerPresence(msgspec.Struct, frozen=True):
    """One peer's presence, as ``presence:<hall>`` snapshots and events carry it."""

    peer_id: str
    peer_kind: str
    label: str
    online: bool
    last_seen: float
    changed_at: float


class PresenceSnapshot(msgspec.Struct, frozen=True):
    hall_id: int
    peers: list[PeerPresence]


class DeviceEventAck(msgspec.Struct, frozen=True, omit_defaults=True):
    """The ``data`` of the reply to a device event. ``accepted``: a handler took it;
    ``duplicate``: its key was seen before, nothing was done; ``error``: the code of why the
    handler refused it (malformed data, a rule broken: ``invalid_input``, ``not_found``…).
    A refused event is not accepted again either: sending it again cannot help."""

    accepted: bool
    duplicate: bool
    error: str | None = None


DeviceEventHandler = Callable[[Tx, PeerConn, DeviceEvent], Awaitable[None]]
# Called in the transaction that records a device peer online (True) or offline (False),
# with the device's id: device alerts and printer states (hub/services/device_events.py).
PresenceHook = Callable[[Tx, int, bool], Awaitable[None]]


class PeersSeen(msgspec.Struct, frozen=True):
    seen: dict[str, float]


_COLUMNS = """peer_id, peer_kind, label, online,
              extract(epoch FROM last_seen)::float8 AS last_seen,
              extract(epoch FROM changed_at)::float8 AS changed_at"""


def _device_id(peer_id: str) -> int:
    return int(peer_id.removeprefix("device:"))


def _row(row: asyncpg.Record) -> PeerPresence:
    return PeerPresence(
        peer_id=row["peer_id"],
        peer_kind=row["peer_kind"],
        label=row["label"],
        online=row["online"],
        last_seen=row["last_seen"],
        changed_at=row["changed_at"],
    )


async def presence_snapshot(conn: asyncpg.Connection, name: TopicName) -> PresenceSnapshot:
    """Snapshot provider of ``presence:<hall>``."""
    hall_id = int(name.key)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM peer_presence WHERE hall_id = $1 ORDER BY peer_kind, label",
        hall_id,
    )
    return PresenceSnapshot(hall_id=hall_id, peers=[_row(r) for r in rows])


class PresenceService:
    """Gateway hooks for presence, plus the periodic heartbeat flush and the reaper."""

    def __init__(
        self,
        events: EventWriter,
        feed: Feed,
        process_id: str,
        lease_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._events = events
        self._feed = feed
        self._process_id = process_id
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._conns: dict[PeerConn, uuid.UUID] = {}
        # Handlers of device events by name (printer_status, rating… — the devices issue).
        self.device_events: dict[str, DeviceEventHandler] = {}
        self.presence_hooks: list[PresenceHook] = []

    @staticmethod
    def _tracked(peer: PeerConn) -> bool:
        ident = peer.identity
        return bool(ident.kind == "device" and ident.hall_id is not None)

    async def connected(self, peer: PeerConn) -> None:
        if not self._tracked(peer):
            return
        ident = peer.identity
        conn_id = self._conns[peer] = uuid.uuid4()
        async with self._events.transaction() as tx:
            row = await tx.conn.fetchrow(
                f"""INSERT INTO peer_presence AS p (peer_id, peer_kind, hall_id, label, online,
                        process_id, conn_id, last_seen, changed_at)
                    VALUES ($1, $2, $3, $4, true, $5, $6, now(), now())
                    ON CONFLICT (peer_id) DO UPDATE SET peer_kind = $2, hall_id = $3,
                        label = $4, online = true, process_id = $5, conn_id = $6,
                        last_seen = now(),
                        changed_at = CASE WHEN p.online THEN p.changed_at ELSE now() END
                    RETURNING {_COLUMNS}""",
                ident.id,
                ident.device_kind or "device",
                ident.hall_id,
                ident.label,
                uuid.UUID(self._process_id),
                conn_id,
            )
            await tx.emit(topic("presence", ident.hall_id), "peer_online", _row(row))
            for hook in self.presence_hooks:
                await hook(tx, _device_id(ident.id), True)
        peer.log.info("peer_online")

    async def disconnected(self, peer: PeerConn, reason: str) -> None:
        conn_id = self._conns.pop(peer, None)
        if conn_id is None:
            return
        ident = peer.identity
        async with self._events.transaction() as tx:
            row = await tx.conn.fetchrow(
                f"""UPDATE peer_presence SET online = false, changed_at = now(),
                        last_seen = GREATEST(last_seen, to_timestamp($3))
                    WHERE peer_id = $1 AND conn_id = $2 AND online
                    RETURNING {_COLUMNS}""",
                ident.id,
                conn_id,
                self._wall(peer.last_rx),
            )
            if row is not None:
                await tx.emit(topic("presence", ident.hall_id), "peer_offline", _row(row))
                for hook in self.presence_hooks:
                    await hook(tx, _device_id(ident.id), False)
        if row is not None:
            peer.log.info("peer_offline", reason=reason)

    async def device_event(self, peer: PeerConn, event: DeviceEvent) -> DeviceEventAck:
        """Accept a device's event once per idempotency key (D6): an agent re-sends what was
        not acknowledged before a reconnect, and the repeat must change nothing.

        The key is recorded in the same transaction as the handler's changes, so an event
        whose handling failed (the database, a bug) is not marked as seen and is accepted
        when sent again. An event the handler refuses (malformed data: msgspec's
        ValidationError; a rule: a DomainError) is undone, marked as seen and answered with
        the error's code: the same event would be refused again."""
        handler = self.device_events.get(event.name)
        async with self._events.transaction() as tx:
            fresh = await tx.conn.fetchval(
                """INSERT INTO peer_event_key (peer_id, key) VALUES ($1, $2)
                   ON CONFLICT DO NOTHING RETURNING true""",
                peer.identity.id,
                event.key,
            )
            if not fresh:
                return DeviceEventAck(accepted=False, duplicate=True)
            if handler is None:
                return DeviceEventAck(accepted=False, duplicate=False)
            events, volatile = len(tx.events), len(tx.volatile)
            try:
                async with tx.conn.transaction():  # a savepoint: a refusal undoes the handler
                    await handler(tx, peer, event)
            except (DomainError, msgspec.ValidationError) as exc:
                del tx.events[events:], tx.volatile[volatile:]
                code = exc.code if isinstance(exc, DomainError) else "invalid_input"
                # The message names fields, never values (device data may be personal).
                peer.log.warning(
                    "device_event_refused",
                    name=event.name,
                    key=event.key[:80],
                    code=code,
                    error=str(exc)[:200],
                )
                return DeviceEventAck(accepted=False, duplicate=False, error=code)
        return DeviceEventAck(accepted=True, duplicate=False)

    def _wall(self, monotonic_at: float) -> float:
        return self._clock() - (time.monotonic() - monotonic_at)

    # --- periodic --------------------------------------------------------------------------

    async def flush_seen(self, conn: asyncpg.Connection) -> None:
        """Write this process's heartbeat times and tell each hall's watchers (volatile)."""
        if not self._conns:
            return
        by_hall: dict[int, dict[str, float]] = defaultdict(dict)
        for peer in self._conns:
            by_hall[peer.identity.hall_id][peer.identity.id] = self._wall(peer.last_rx)
        ids = [pid for seen in by_hall.values() for pid in seen]
        times = [t for seen in by_hall.values() for t in seen.values()]
        await conn.execute(
            """UPDATE peer_presence p SET last_seen = to_timestamp(s.t)
               FROM unnest($1::text[], $2::float8[]) AS s(id, t)
               WHERE p.peer_id = s.id AND p.process_id = $3""",
            ids,
            times,
            uuid.UUID(self._process_id),
        )
        now = self._clock()
        for hall_id, seen in by_hall.items():
            name = topic("presence", hall_id)
            # Sent even without local subscribers: other processes may have some.
            frame = volatile_frame(name, 0, "peers_seen", PeersSeen(seen), ts=now)
            await self._feed.publish_volatile(name, frame)

    async def close_revoked(self, conn: asyncpg.Connection) -> None:
        """Close this process's connections of devices whose token has been revoked since
        their hello (4401): a token is checked at hello only, and a revoked device must not
        stay connected until it happens to reconnect."""
        by_id = {int(p.identity.id.removeprefix("device:")): p for p in self._conns}
        if not by_id:
            return
        revoked = await conn.fetch(
            "SELECT id FROM device WHERE id = any($1::bigint[]) AND revoked_at IS NOT NULL",
            list(by_id),
        )
        for row in revoked:
            peer = by_id[row["id"]]
            peer.log.info("peer_token_revoked")
            await peer.ws.close(Unauthenticated.close_code, "device token revoked")

    async def renew_lease(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            """INSERT INTO hub_process (id, host, pid, lease_until)
               VALUES ($1, $2, $3, now() + make_interval(secs => $4))
               ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until""",
            uuid.UUID(self._process_id),
            socket.gethostname(),
            os.getpid(),
            self._lease_seconds,
        )

    async def reap(self, conn: asyncpg.Connection) -> None:
        """Leader job: peers of processes whose lease ran out go offline, with events."""
        rows = await conn.fetch(
            f"""WITH dead AS (
                    DELETE FROM hub_process WHERE lease_until < now() RETURNING id)
                UPDATE peer_presence p SET online = false, changed_at = now()
                FROM dead WHERE p.process_id = dead.id AND p.online
                RETURNING p.hall_id, {_COLUMNS}"""
        )
        if not rows:
            return
        # Appended inside the job's transaction; published by the feed's reconcile on
        # every process (the job's transaction is not an EventWriter's).
        tx = Tx(conn, self._clock)
        for row in rows:
            await outbox.append(
                conn,
                topic("presence", row["hall_id"]),
                "peer_offline",
                _row(row),
                ts=self._clock(),
            )
            if row["peer_id"].startswith("device:"):
                for hook in self.presence_hooks:
                    await hook(tx, _device_id(row["peer_id"]), False)
        log.info("presence_reaped", peers=len(rows))

    async def leave(self) -> None:
        """On shutdown: this process's peers go offline and its lease is dropped."""
        for peer in list(self._conns):
            await self.disconnected(peer, "hub_stopping")
