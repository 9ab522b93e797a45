"""What the hub does with each device event (issue 5), and with device peers coming and going.

Handlers run in :meth:`PresenceService.device_event`'s transaction, which records the event's
idempotency key: an event re-sent after a reconnect changes nothing. A handler that refuses
an event (malformed data, an unknown ticket…) raises; the event is undone and acknowledged
with the error's code. docs/devices/hub.md has the whole table.

=====================  ==============  ===================================================
event                  from            effect
=====================  ==============  ===================================================
``device_info``        any device      model and firmware into the device row, parts into
                                       its state
``printer_status``     printer         state; printer alerts raised/cleared on change;
                                       ``printer_state`` on the host's topic on change
``device_state``       any device      the link to one part: ``device_unreachable``
``print_done``         printer         logged
``print_failed``       printer         error count; ``print_failed`` on the host's topic
``card_read``          id_reader       VOLATILE to the asker (hub/services/card_reads.py)
``card_read_failed``   id_reader       VOLATILE to the asker
``code_scanned``       code_reader     classified, VOLATILE ``code_scanned`` to the host
``rating``             evaluator       a rating (source ``evaluator``)
``rating_unrated``     evaluator       a ``rating_unrated`` row
=====================  ==============  ===================================================

A device peer that leaves the hub raises ``device_offline``; coming back clears it. A
printer's coming and going also changes its host's e-ticket mode (``printer_state``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import structlog

from devices.codecs.code_reader import classify
from hub.domain.devices import (
    HOST_KINDS,
    PRINTER_CODES,
    LinkState,
    PrinterStatus,
    printer_alerts,
)
from hub.domain.errors import InvalidInput, NotAllowed, NotFound
from hub.domain.rating import BAD_GRADES, Grade
from hub.services import alerts, ratings
from hub.services.card_reads import CardRead, CardReadFailed, card_route
from hub.services.devices import (
    DeviceRow,
    announce_printer,
    device_id_of,
    load_device,
    printer_before,
)
from hub.services.events import EventWriter, Tx
from hub.services.presence import PresenceService
from realtime.messages import DeviceEvent
from realtime.peer import PeerConn
from realtime.topics import topic

log = structlog.get_logger("hub.services.device_events")

_S = TypeVar("_S")
Text = Annotated[str, msgspec.Meta(max_length=200)]


class DeviceInfo(msgspec.Struct, frozen=True, kw_only=True):
    model: Text
    firmware: Text
    parts: Annotated[list[Text], msgspec.Meta(max_length=20)] = []


class LinkReport(msgspec.Struct, frozen=True, kw_only=True):
    """``device_state``: the agent's link to one part of the device."""

    part: Text
    state: Literal["online", "offline"]
    reason: Text = ""


class PrintDone(msgspec.Struct, frozen=True, kw_only=True):
    job: Text
    ticket_id: int


PrintFailReason = Literal["paper_out", "cover_open", "offline", "error"]


class PrintFailedIn(msgspec.Struct, frozen=True, kw_only=True):
    job: Text
    ticket_id: int
    reason: PrintFailReason


class PrintFailed(msgspec.Struct, frozen=True, kw_only=True):
    """``print_failed`` on the host's topic: the page offers the ticket as an e-ticket."""

    ticket_id: int
    number: str
    token: str
    reason: PrintFailReason


class CodeScannedIn(msgspec.Struct, frozen=True, kw_only=True):
    text: Annotated[str, msgspec.Meta(max_length=4096)]


class CodeScanned(msgspec.Struct, frozen=True, kw_only=True):
    """VOLATILE ``code_scanned`` on the host's topic (devices.codecs.code_reader.classify)."""

    text: str
    kind: Literal["appointment", "ticket", "other"]
    value: str


class RatingIn(msgspec.Struct, frozen=True, kw_only=True):
    ticket_id: int
    grade: Grade
    reasons: Annotated[list[Text], msgspec.Meta(max_length=20)] = []


class UnratedIn(msgspec.Struct, frozen=True, kw_only=True):
    ticket_id: int
    reason: Literal["timed_out", "no_answer", "disconnected"]


def _data(event: DeviceEvent, kind: type[_S]) -> _S:
    """The event's data as ``kind``. Raises msgspec.ValidationError (a refusal)."""
    return msgspec.convert(event.data, kind)


def _require_kind(device: DeviceRow, *kinds: str) -> None:
    if device.kind not in kinds:
        raise NotAllowed(f"a {device.kind} does not report this event")


class DeviceEvents:
    """The device event handlers and presence hook of the hub.

    Args:
        events: the hub's event writer (its clock stamps events).
        clock: the hub's now (aware), for state times, alerts and ratings.
    """

    def __init__(self, events: EventWriter, clock: Callable[[], datetime]) -> None:
        self._events = events
        self._clock = clock

    def install(self, presence: PresenceService) -> None:
        """Register every handler in ``presence.device_events`` and the presence hook."""
        presence.device_events.update(
            {
                "device_info": self.device_info,
                "printer_status": self.printer_status,
                "device_state": self.device_state,
                "print_done": self.print_done,
                "print_failed": self.print_failed,
                "card_read": self.card_read,
                "card_read_failed": self.card_read_failed,
                "code_scanned": self.code_scanned,
                "rating": self.rating,
                "rating_unrated": self.rating_unrated,
            }
        )
        presence.presence_hooks.append(self.presence_changed)

    # --- presence --------------------------------------------------------------------------

    async def presence_changed(self, tx: Tx, device_id: int, online: bool) -> None:
        """``device_offline`` raised when the peer left, cleared when it is back; a
        printer's host told (its e-ticket mode may change)."""
        device = await load_device(tx.conn, device_id)
        if online:
            await alerts.clear_alert(tx, device, "device_offline")
        elif not device.revoked:  # a revoked device's leaving is no failure
            await alerts.raise_alert(tx, device, "device_offline", self._clock())
        if device.kind == "printer":
            await announce_printer(tx, device.id, device.host_id, None)

    # --- status ----------------------------------------------------------------------------

    async def device_info(self, tx: Tx, peer: PeerConn, event: DeviceEvent) -> None:
        info = _data(event, DeviceInfo)
        device_id = device_id_of(peer.identity.id)
        await tx.conn.execute(
            """UPDATE device SET model = $2, firmware = $3, state = state || $4,
                      state_at = $5
               WHERE id = $1""",
            device_id,
            info.model,
            info.firmware,
            {"parts": info.parts},
            self._clock(),
        )
        await alerts.announce_status(tx, device_id)

    async def printer_status(self, tx: Tx, peer: PeerConn, event: DeviceEvent) -> None:
        status = _data(event, PrinterStatus)
        device = await load_device(tx.conn, device_id_of(peer.identity.id), lock=True)
        _require_kind(device, "printer")
        now = self._clock()
        before = await printer_before(tx.conn, device.id, device.host_id)
        await self._merge_state(tx, device.id, msgspec.to_builtins(status), now)
        await alerts.set_alerts(tx, device, printer_alerts(status), PRINTER_CODES, now)
        await announce_printer(tx, device.id, device.host_id, before)
        if device.state.printer_status() != status:
            log.info("printer_status", printer=device.id, paper=status.paper, online=status.online)
            await alerts.announce_status(tx, device.id)

    async def device_state(self, tx: Tx, peer: PeerConn, event: DeviceEvent) -> None:
        report = _data(event, LinkReport)
        device = await load_device(tx.conn, device_id_of(peer.identity.id), lock=True)
        now = self._clock()
        printer = device.kind == "printer"
        before = await printer_before(tx.conn, device.id, device.host_id) if printer else None
        links = dict(device.state.links)
        links[report.part] = LinkState(state=report.state, reason=report.reason)
        await self._merge_state(tx, device.id, {"links": msgspec.to_builtins(links)}, now)
        state = msgspec.structs.replace(device.state, links=links)
        if state.reachable:
            await alerts.clear_alert(tx, device, "device_unreachable")
        else:
            down = sorted(part for part, link in links.items() if link.state == "offline")
            await alerts.raise_alert(tx, device, "device_unreachable", now, part=down[0])
        if printer:
            await announce_printer(tx, device.id, device.host_id, before)
        if links != device.state.links:
            log.info("device_link", device=device.id, part=report.part, state=report.state)
            await alerts.announce_status(tx, device.id)

    async def _merge_state(
        self, tx: Tx, device_id: int, changes: dict[str, Any], now: datetime
    ) -> None:
        await tx.conn.execute(
            "UPDATE device SET state = state || $2, state_at = $3 WHERE id = $1",
            device_id,
            changes,
            now,
        )

    # --- printing --------------------------------------------------------------------------

    async def print_done(self, tx: Tx, peer: PeerConn, event: DeviceEvent) -> None:
        done = _data(event, PrintDone)
        log.info("print_done", printer=peer.identity.id, job=done.job, ticket=done.ticket_id)

    async def print_failed(self, tx: Tx, peer: PeerConn, event: DeviceEvent) -> None:
        failed = _data(event, PrintFailedIn)
        device = await load_device(tx.conn, device_id_of(peer.identity.id))
        _require_kind(device, "printer")
        ticket = await tx.conn.fetchrow(
            """SELECT t.number, t.public_token, i.id AS issuer, i.kind AS issuer_kind
               FROM ticket t LEFT JOIN device i ON i.id = t.device_id
               WHERE t.id = $1 AND t.hall_id = $2""",
            failed.ticket_id,
            device.hall_id,
        )
        if ticket is None:
            raise NotFound(f"no ticket {failed.ticket_id} in this hall", field="ticket_id")
        await tx.conn.execute("UPDATE device SET errors = errors + 1 WHERE id = $1", device.id)
        # The page that issued the ticket offers it as an e-ticket: the issuing kiosk or
        # ticket machine, else (a ticket from elsewhere printed again) the printer's host.
        host_id = ticket["issuer"] if ticket["issuer_kind"] in HOST_KINDS else device.host_id
        if host_id is not None:
            await tx.emit(
                topic("device", host_id),
                "print_failed",
                PrintFailed(
                    ticket_id=failed.ticket_id,
                    number=ticket["number"],
                    token=ticket["public_token"],
                    reason=failed.reason,
                ),
            )
        log.warning(
            "print_failed",
            printer=device.id,
            ticket=ticket["number"],
            reason=failed.reason,
            host=host_id,
        )
        await alerts.announce_status(tx, device.id)

    # --- readers ---------------------------------------------------------------------------

    async def card_read(self, tx: Tx, peer: PeerConn, event: DeviceEvent) -> None:
        try:
            read = _data(event, CardRead)
        except msgspec.ValidationError:
            # msgspec's message names the field only, but say nothing of personal data at all.
            raise InvalidInput("card_read: malformed card data", field="card") from None
        device = await load_device(tx.conn, device_id_of(peer.identity.id))
        _require_kind(device, "id_reader")
        await card_route(tx, device, "card_read", read, read.request_id)

    async def card_read_failed(self, tx: Tx, peer: PeerConn, event: DeviceEvent) -> None:
        failed = _data(event, CardReadFailed)
        device = await load_device(tx.conn, device_id_of(peer.identity.id))
        _require_kind(device, "id_reader")
        await card_route(tx, device, "card_read_failed", failed, failed.request_id)

    async def code_scanned(self, tx: Tx, peer: PeerConn, event: DeviceEvent) -> None:
        scanned = _data(event, CodeScannedIn)
        device = await load_device(tx.conn, device_id_of(peer.identity.id))
        _require_kind(device, "code_reader")
        code = classify(scanned.text)
        if device.host_id is None:
            log.warning("code_scanned_unrouted", reader=device.id, kind=code.kind)
            return
        # VOLATILE: a code may stand for a person (an appointment); the host's page only.
        tx.emit_volatile(
            topic("device", device.host_id),
            "code_scanned",
            CodeScanned(text=scanned.text, kind=code.kind, value=code.value),
        )
        log.info("code_scanned", reader=device.id, host=device.host_id, kind=code.kind)

    # --- ratings ---------------------------------------------------------------------------

    async def rating(self, tx: Tx, peer: PeerConn, event: DeviceEvent) -> None:
        given = _data(event, RatingIn)
        device = await load_device(tx.conn, device_id_of(peer.identity.id))
        _require_kind(device, "evaluator")
        reasons = list(given.reasons)
        if given.grade in BAD_GRADES and not reasons:
            # O9: a pad without a reason checklist still records the bad grade.
            log.warning("rating_without_reasons", evaluator=device.id, ticket=given.ticket_id)
            reasons = ["other"]
        elif given.grade not in BAD_GRADES and reasons:
            log.warning("rating_reasons_dropped", evaluator=device.id, ticket=given.ticket_id)
            reasons = []
        window_id = device.window_id
        if window_id is None:
            # A pad bound to no window rates the ticket where it was served.
            window_id = await tx.conn.fetchval(
                "SELECT window_id FROM ticket WHERE id = $1 AND hall_id = $2",
                given.ticket_id,
                device.hall_id,
            )
            if window_id is None:
                raise NotFound(f"ticket {given.ticket_id} was served at no window here")
        new = msgspec.convert(
            {"ticket_id": given.ticket_id, "grade": given.grade, "reasons": reasons},
            ratings.WindowRatingNew,
        )
        await ratings.rate_at_window_in(
            tx, self._clock(), device.hall_id, window_id, new, device_id=device.id
        )

    async def rating_unrated(self, tx: Tx, peer: PeerConn, event: DeviceEvent) -> None:
        unrated = _data(event, UnratedIn)
        device = await load_device(tx.conn, device_id_of(peer.identity.id))
        _require_kind(device, "evaluator")
        inserted = await tx.conn.fetchval(
            """INSERT INTO rating_unrated (ticket_id, hall_id, window_id, staff_id, device_id,
                                           reason, created_at)
               SELECT t.id, t.hall_id, t.window_id, t.staff_id, $3, $4, $5
               FROM ticket t WHERE t.id = $1 AND t.hall_id = $2
               ON CONFLICT (ticket_id) DO NOTHING
               RETURNING true""",
            unrated.ticket_id,
            device.hall_id,
            device.id,
            unrated.reason,
            self._clock(),
        )
        if inserted is None:
            exists = await tx.conn.fetchval(
                "SELECT true FROM ticket WHERE id = $1 AND hall_id = $2",
                unrated.ticket_id,
                device.hall_id,
            )
            if not exists:
                raise NotFound(f"no ticket {unrated.ticket_id} in this hall", field="ticket_id")
        log.info(
            "rating_unrated", evaluator=device.id, ticket=unrated.ticket_id, reason=unrated.reason
        )
