"""Paper tickets (D1, Q7): a ticket issued by a kiosk or ticket machine is printed by a
printer attached to it, or shown as an e-ticket when none can print.

:func:`print_ticket` runs in the issuing transaction: if the issuing device has an attached
printer that can print now (hub.domain.devices.can_print: its peer connected, online, paper
not out, cover closed, no error, its hardware reachable), ``print_ticket`` is written on that
printer's topic ``device:<printer_id>`` together with the ticket, so a ticket is never
announced without its print job nor printed without being issued. The issue's answer says
which happened (``print``: ``queued`` or ``e_ticket``). A print that fails later is reported
by the printer (``print_failed``) and offered on the host page as an e-ticket
(hub/services/device_events.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import msgspec
import structlog

from devices.codecs.escpos import PrintedTicket
from hub.services.devices import local_time, printable_printer
from hub.services.events import Tx
from hub.services.queue_views import AHEAD_SQL
from realtime.topics import topic

log = structlog.get_logger("hub.services.printing")

PrintMode = Literal["queued", "e_ticket"]
EVENT_PRINT_TICKET = "print_ticket"
# Printed under the QR code when the printer's configuration names no footer (D6 ``footer``).
DEFAULT_FOOTER = ["请留意叫号屏幕和语音提示", "过号请到窗口咨询"]
_TEXT_MAX = 200


class PrintJob(msgspec.Struct, frozen=True, kw_only=True):
    """``print_ticket`` on ``device:<printer_id>``: ``job`` (``ticket:<ticket_id>``) is what the
    printer's ``print_done`` / ``print_failed`` name."""

    job: str
    ticket_id: int
    token: str
    ticket: PrintedTicket


def ticket_page_url(base_url: str, token: str) -> str:
    """``http://hall.example/`` and ``abc`` → ``http://hall.example/ticket/?t=abc``: the
    citizen's page of a ticket, as its QR code encodes it (hub/api/ticket_qr.py)."""
    return f"{base_url.rstrip('/')}/ticket/?t={quote(token, safe='')}"


def _text(value: Any) -> str:
    """A configured text as the printer may print it: control characters dropped (the ESC/POS
    encoder refuses them), at most 200 characters."""
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value if ch >= " " and ch != "\x7f")[:_TEXT_MAX]


def _footer(config: dict[str, Any]) -> list[str]:
    lines = config.get("footer")
    if not isinstance(lines, list):
        return list(DEFAULT_FOOTER)
    return [t for t in (_text(line) for line in lines[:5]) if t]


async def print_ticket(
    tx: Tx, host_id: int, ticket_id: int, token: str, base_url: str, now: datetime
) -> PrintMode:
    """Queue the paper ticket of ``ticket_id`` on a printer of ``host_id`` that can print,
    inside the issuing transaction; ``e_ticket`` when there is none.

    Args:
        host_id: the device that issues the ticket (kiosk, ticket machine).
        base_url: the hub's address as the issuing device reached it (the QR code's base).
        now: the issue time.
    """
    printer_id = await printable_printer(tx.conn, host_id)
    if printer_id is None:
        return "e_ticket"
    row = await tx.conn.fetchrow(
        f"""SELECT t.number, h.name AS hall_name, h.timezone, g.name AS group_name,
                  ({AHEAD_SQL}) AS ahead,
                  (SELECT config FROM device WHERE id = $2) AS config
           FROM ticket t JOIN hall h ON h.id = t.hall_id
           JOIN service_group g ON g.id = t.group_id
           WHERE t.id = $1""",
        ticket_id,
        printer_id,
    )
    config: dict[str, Any] = row["config"] or {}
    ticket = PrintedTicket(
        hall_name=row["hall_name"],
        number=row["number"],
        group_name=row["group_name"],
        people_ahead=int(row["ahead"]),
        issued_at=local_time(now, row["timezone"]),
        qr_url=ticket_page_url(base_url, token),
        header=_text(config.get("header")),
        footer=_footer(config),
    )
    job = PrintJob(job=f"ticket:{ticket_id}", ticket_id=ticket_id, token=token, ticket=ticket)
    await tx.emit(topic("device", printer_id), EVENT_PRINT_TICKET, job)
    log.info("print_queued", ticket=row["number"], host=host_id, printer=printer_id)
    return "queued"
