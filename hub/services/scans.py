"""Scanner uploads (D3): a document camera's images, attached to the ticket being served at
its window.

``POST /api/devices/scans`` with the scanner's device token, the file as the body,
``Content-Type: image/jpeg | image/png | application/pdf`` and ``X-Scan-Name``. The hub does
not decode images (CPU-light, D3): the type is the declared one if the first bytes agree
(hub.domain.devices.scan_type); the bytes stream into the blob store (at most
:data:`SCAN_MAX_BYTES`, checked from ``Content-Length`` first and while streaming). Then,
in one transaction, the window's current ticket is read again, the ``ticket_attachment``
row written, audited as the device's action (``ticket.attach_scan``), and ``scan_attached``
emitted on the staff member's topic (their console shows it).

Refusals: 409 ``no_current_ticket`` when nobody is served at the window (checked before the
body is read, and again at the end), 415 ``unsupported_media_type``, 413 ``too_large``.
"""

from __future__ import annotations

import posixpath
from collections.abc import AsyncIterator
from urllib.parse import unquote

import msgspec
import structlog

from hub.domain.access import Principal
from hub.domain.devices import MAGIC_BYTES, scan_type
from hub.domain.errors import Conflict, InvalidInput, NotAllowed, TooLarge, UnsupportedType
from hub.services import audit
from hub.services.access import hall_place
from hub.services.blobs import BlobStore, BlobTooLarge
from hub.services.devices import device_id_of
from hub.services.events import EventWriter
from realtime.topics import topic

log = structlog.get_logger("hub.services.scans")

SCAN_MAX_BYTES = 20 * 1024 * 1024
NAME_MAX = 255


class NoCurrentTicket(Conflict):
    """Nobody is being served at the scanner's window: a scan has nothing to belong to."""

    code = "no_current_ticket"


class ScanAttached(msgspec.Struct, frozen=True, kw_only=True):
    """The answer (201), and ``scan_attached`` on ``staff:<id>`` with the file's facts."""

    attachment_id: int
    ticket_id: int


class StaffScan(msgspec.Struct, frozen=True, kw_only=True):
    """``scan_attached`` on the staff member's topic."""

    attachment_id: int
    ticket_id: int
    number: str
    name: str
    content_type: str
    size: int


def scan_name(header: str | None) -> str:
    """The file name of ``X-Scan-Name`` (percent-encoded UTF-8 allowed): its last path
    segment, without control characters, at most 255 characters; ``scan`` when empty."""
    text = unquote(header or "").replace("\\", "/")
    base = posixpath.basename(text)
    clean = "".join(ch for ch in base if ch >= " " and ch != "\x7f").strip()
    return clean[:NAME_MAX] or "scan"


async def _head(chunks: AsyncIterator[bytes]) -> tuple[bytes, bool]:
    """The first bytes of the stream (at least :data:`MAGIC_BYTES` unless it is shorter), and
    whether the stream ended."""
    head = b""
    async for chunk in chunks:
        head += chunk
        if len(head) >= MAGIC_BYTES:
            return head, False
    return head, True


async def _chained(head: bytes, rest: AsyncIterator[bytes], ended: bool) -> AsyncIterator[bytes]:
    yield head
    if not ended:
        async for chunk in rest:
            yield chunk


async def upload_scan(
    events: EventWriter,
    blobs: BlobStore,
    device: Principal,
    *,
    content_type: str,
    name_header: str | None,
    content_length: int | None,
    body: AsyncIterator[bytes],
) -> ScanAttached:
    """Store a scan and attach it to the current ticket of the scanner's window.

    Args:
        device: the calling device (a scanner of its hall).
        content_type, name_header, content_length: the request's headers.
        body: the request body, in chunks.

    Raises:
        NotAllowed: the caller is no scanner.
        NoCurrentTicket: nobody is served at its window, or it stands at none.
        TooLarge: over :data:`SCAN_MAX_BYTES`.
        UnsupportedType: not a JPEG, PNG or PDF as declared and as its first bytes say.
        InvalidInput: an empty body.
    """
    if device.kind != "device" or device.device_kind != "scanner" or device.hall_id is None:
        raise NotAllowed("only a scanner uploads scans")
    device_id = device_id_of(device.id)
    pool = events.pool
    window_id = await pool.fetchval("SELECT window_id FROM device WHERE id = $1", device_id)
    if window_id is None:
        raise NoCurrentTicket("this scanner stands at no window: bind it to one first")
    if not await pool.fetchval(
        "SELECT current_ticket_id FROM window_state WHERE window_id = $1", window_id
    ):
        raise NoCurrentTicket("nobody is being served at this scanner's window")
    if content_length is not None and content_length > SCAN_MAX_BYTES:
        raise TooLarge(f"a scan is at most {SCAN_MAX_BYTES} bytes")
    head, ended = await _head(body)
    if not head:
        raise InvalidInput("the scan is empty", field="body")
    kind = scan_type(content_type, head)
    if kind is None:
        raise UnsupportedType("a scan is a JPEG, PNG or PDF file, declared as such")
    name = scan_name(name_header)
    try:
        ref = await blobs.put(_chained(head, body, ended), kind, max_size=SCAN_MAX_BYTES)
    except BlobTooLarge:
        raise TooLarge(f"a scan is at most {SCAN_MAX_BYTES} bytes") from None
    async with events.transaction() as tx:
        ticket = await tx.conn.fetchrow(
            """SELECT t.id, t.number, ws.staff_id
               FROM window_state ws JOIN ticket t ON t.id = ws.current_ticket_id
               WHERE ws.window_id = $1
               FOR SHARE OF ws""",
            window_id,
        )
        if ticket is None:
            # The citizen left while the file was on its way; the blob stays unreferenced.
            raise NoCurrentTicket("nobody is being served at this scanner's window")
        attachment_id = await tx.conn.fetchval(
            """INSERT INTO ticket_attachment (ticket_id, blob, name, content_type, size,
                                              device_id)
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
            ticket["id"],
            ref.sha256,
            name,
            kind,
            ref.size,
            device_id,
        )
        actor = audit.Actor(
            staff_id=None,
            label=device.label,
            role="device",
            scope_kind="device",
            scope_id=device_id,
        )
        await audit.record(
            tx.conn,
            actor,
            "ticket.attach_scan",
            "ticket",
            ticket["id"],
            place=await hall_place(tx.conn, device.hall_id),
            after={
                "attachment_id": attachment_id,
                "name": name,
                "content_type": kind,
                "size": ref.size,
                "blob": ref.sha256,
            },
        )
        if ticket["staff_id"] is not None:
            await tx.emit(
                topic("staff", ticket["staff_id"]),
                "scan_attached",
                StaffScan(
                    attachment_id=attachment_id,
                    ticket_id=ticket["id"],
                    number=ticket["number"],
                    name=name,
                    content_type=kind,
                    size=ref.size,
                ),
            )
    log.info(
        "scan_attached",
        scanner=device_id,
        ticket=ticket["number"],
        size=ref.size,
        content_type=kind,
    )
    return ScanAttached(attachment_id=attachment_id, ticket_id=ticket["id"])
