"""ID card reads (D2, O3): asked by a page, read by an ID reader, delivered to that page only.

Who asks, and who gets the card
    A reader attached to a host (``device.host_id``: a kiosk, ticket machine or touch terminal)
    serves that host's page: requests come from the host's peer, and reads go to the host's
    own topic ``device:<host_id>``. A reader at a window (``device.window_id``) serves the
    staff member signed in at that window: requests come from that staff member's console,
    reads go to ``staff:<staff_id>``. Both topics are private to their one subscriber.

The request
    The websocket command ``read_card`` {reader_id?} (without ``reader_id``: the asker's own
    reader, the first by id) writes ``read_card`` {request_id, timeout_s} on the reader's topic
    ``device:<reader_id>`` and answers {request_id}. A reader whose peer is not connected gets
    no request: ``card_read_failed`` {request_id, reason: "offline"} goes to the asker at once.
    An agent ignores a ``read_card`` older than its ``timeout_s`` (a replay after a reconnect).

The read
    ``card_read`` {request_id, card} and ``card_read_failed`` {request_id, reason} from the
    reader are VOLATILE (hub/services/events.py ``Tx.emit_volatile``): never stored, never
    replayed, never on a public topic. A card put on a kiosk's reader unasked comes with
    request_id "" and goes to the host all the same. The ID number is logged masked only
    (hub.domain.identity.mask_number); the card's other fields are not logged at all.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

import asyncpg
import msgspec
import structlog

from hub.domain.devices import configured_timeout
from hub.domain.errors import NotFound
from hub.domain.identity import mask_number
from hub.services.devices import DeviceRow, device_id_of, load_device
from hub.services.events import EventWriter, Tx
from realtime.errors import Forbidden, RealtimeError
from realtime.messages import Command
from realtime.peer import PeerConn
from realtime.topics import topic

log = structlog.get_logger("hub.services.card_reads")

EVENT_READ_CARD = "read_card"

Field = Annotated[str, msgspec.Meta(max_length=200)]
RequestId = Annotated[str, msgspec.Meta(max_length=64)]


class Card(msgspec.Struct, frozen=True, kw_only=True):
    """The text fields of a second-generation ID card (docs/devices/id-reader.md); dates as
    ``YYYY-MM-DD``, ``valid_to`` None for a card valid for life (长期). No photo."""

    name: Field
    id_number: Annotated[str, msgspec.Meta(max_length=40)]
    sex: Field = ""
    nation: Field = ""
    birth_date: Field = ""
    address: Field = ""
    authority: Field = ""
    valid_from: Field = ""
    valid_to: Field | None = None


class CardRead(msgspec.Struct, frozen=True, kw_only=True):
    """``card_read`` (VOLATILE), from the reader and to the asker alike."""

    request_id: RequestId
    card: Card


class CardReadFailed(msgspec.Struct, frozen=True, kw_only=True):
    """``card_read_failed`` (VOLATILE), from the reader and to the asker alike."""

    request_id: RequestId
    reason: Literal["no_card", "timeout", "read_failed", "offline"]


class ReadCardArgs(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The arguments of the ``read_card`` command."""

    reader_id: int | None = None


class ReadCard(msgspec.Struct, frozen=True, kw_only=True):
    """``read_card`` on the reader's topic."""

    request_id: str
    timeout_s: int


class ReadCardAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The reply's data: the request's id, which the card events carry."""

    request_id: str


class CommandRefused(RealtimeError):
    """A command refused for a reason of its own (``code``); the reply says so."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


async def requester_topic(conn: asyncpg.Connection, reader: DeviceRow) -> str | None:
    """Where the reads of ``reader`` go (module docstring): its host's topic, or the topic of
    the staff member signed in at its window; None when there is neither."""
    if reader.host_id is not None:
        return topic("device", reader.host_id)
    if reader.window_id is not None:
        staff_id = await conn.fetchval(
            "SELECT staff_id FROM window_state WHERE window_id = $1", reader.window_id
        )
        if staff_id is not None:
            return topic("staff", staff_id)
    return None


async def card_route(
    tx: Tx, reader: DeviceRow, name: str, data: CardRead | CardReadFailed, request_id: str
) -> str | None:
    """Send ``name`` (``card_read`` or ``card_read_failed``) VOLATILE to whoever the reader
    serves; the topic, or None when nobody is there (the read is dropped, logged)."""
    target = await requester_topic(tx.conn, reader)
    masked = mask_number(data.card.id_number) if isinstance(data, CardRead) else None
    if target is None:
        log.warning("card_read_unrouted", reader=reader.id, name=name, id_number=masked)
        return None
    tx.emit_volatile(target, name, data)
    log.info(name, reader=reader.id, to=target, request=request_id, id_number=masked)
    return target


class CardReads:
    """The ``read_card`` command of the gateway (hub/runtime.py)."""

    def __init__(self, events: EventWriter) -> None:
        self._events = events

    async def read_card(self, peer: PeerConn, command: Command) -> ReadCardAccepted:
        """Ask a reader for a card on behalf of the peer (module docstring).

        Raises:
            CommandRefused: ``invalid_input`` (bad arguments), ``not_found`` (no such
                reader), ``no_reader`` (the asker has none).
            Forbidden: the reader serves another page or window.
        """
        try:
            args = msgspec.convert(command.args, ReadCardArgs)
        except msgspec.ValidationError as exc:
            raise CommandRefused("invalid_input", str(exc)) from None
        ident = peer.identity
        async with self._events.transaction() as tx:
            reader_id = args.reader_id
            if reader_id is None:
                reader_id = await self._own_reader(tx.conn, ident)
            try:
                reader = await load_device(tx.conn, reader_id)
            except NotFound:
                raise CommandRefused("not_found", f"no reader {reader_id}") from None
            if reader.kind != "id_reader" or reader.revoked:
                raise CommandRefused("not_found", f"device {reader_id} is no ID reader")
            asker = await self._asker_topic(tx.conn, ident, reader)
            request_id = secrets.token_urlsafe(12)
            present = await tx.conn.fetchval(
                "SELECT online FROM peer_presence WHERE peer_id = $1", f"device:{reader.id}"
            )
            if present:
                request = ReadCard(
                    request_id=request_id,
                    timeout_s=configured_timeout("id_reader", reader.config.get("timeout_s")),
                )
                await tx.emit(reader.topic, EVENT_READ_CARD, request)
            else:
                tx.emit_volatile(
                    asker,
                    "card_read_failed",
                    CardReadFailed(request_id=request_id, reason="offline"),
                )
        log.info(
            "card_read_requested",
            reader=reader.id,
            by=ident.id,
            request=request_id,
            reader_online=bool(present),
        )
        return ReadCardAccepted(request_id=request_id)

    async def _own_reader(self, conn: asyncpg.Connection, ident: Any) -> int:
        if ident.kind == "device":
            reader_id = await conn.fetchval(
                """SELECT id FROM device WHERE host_id = $1 AND kind = 'id_reader'
                     AND revoked_at IS NULL ORDER BY id LIMIT 1""",
                device_id_of(ident.id),
            )
        elif ident.kind == "staff":
            reader_id = await conn.fetchval(
                """SELECT d.id FROM window_state ws JOIN device d ON d.window_id = ws.window_id
                   WHERE ws.staff_id = $1 AND d.kind = 'id_reader' AND d.revoked_at IS NULL
                   ORDER BY d.id LIMIT 1""",
                ident.staff_id,
            )
        else:
            raise Forbidden("card reads are for kiosks and staff consoles")
        if reader_id is None:
            raise CommandRefused("no_reader", "no ID reader serves you")
        return int(reader_id)

    async def _asker_topic(self, conn: asyncpg.Connection, ident: Any, reader: DeviceRow) -> str:
        """The asker's own topic, if the reader serves it.

        Raises:
            Forbidden: the reader belongs to another host, or stands at a window where the
                asker is not signed in.
        """
        if ident.kind == "device" and reader.host_id == device_id_of(ident.id):
            return topic("device", reader.host_id)
        if ident.kind == "staff" and reader.window_id is not None:
            staff_id = await conn.fetchval(
                "SELECT staff_id FROM window_state WHERE window_id = $1", reader.window_id
            )
            if staff_id is not None and staff_id == ident.staff_id:
                return topic("staff", staff_id)
        raise Forbidden(f"reader {reader.id} serves another page or window")
