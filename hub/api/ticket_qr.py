"""The QR code of a ticket (Q1, Q8): ``GET /api/tickets/{ticket_token}/qr.svg``.

The code encodes the absolute address of the citizen's page, ``<base>/ticket/?t=<token>``,
where ``<base>`` is the request's own base URL: the kiosk that shows the code reached the hub
at the address a phone in the hall reaches too. Public, like the ticket's page: the token is
the secret, and the image says nothing else. Unknown tokens get a 404 problem, so the
endpoint cannot be used to draw codes for arbitrary text.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import segno
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from hub.api.ratelimit import public_rate_guard
from hub.domain.errors import NotFound
from hub.services.printing import ticket_page_url
from hub.services.queue_views import ticket_status

__all__ = ["qr_svg", "ticket_page_url", "ticket_qr"]

MEDIA_TYPE = "image/svg+xml"
# A token never changes its code; "private": the token is a secret, keep it out of shared caches.
CACHE_CONTROL = "private, max-age=86400"
TOKEN_MAX = 64
# Pixels per module and the quiet zone (ISO/IEC 18004 asks for four modules).
SCALE = 8
BORDER = 4


def qr_svg(text: str, title: str = "") -> bytes:
    """``text`` as a QR code (error correction M) in a standalone SVG with a white quiet zone.

    The SVG has both a ``viewBox`` and a pixel size, so it scales in an ``<img>`` of any size
    and still has an intrinsic one; each row's dark runs are one path segment, drawn with
    ``crispEdges`` so that scaled modules do not blur into each other.
    """
    code = segno.make(text, error="m", micro=False)
    width, height = code.symbol_size(scale=1, border=BORDER)
    runs: list[str] = []
    for y, row in enumerate(code.matrix_iter(scale=1, border=BORDER)):
        x = 0
        cells = list(row)
        while x < len(cells):
            if not cells[x]:
                x += 1
                continue
            start = x
            while x < len(cells) and cells[x]:
                x += 1
            runs.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
    label = f"<title>{_xml_text(title)}</title>" if title else ""
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width * SCALE}" height="{height * SCALE}" shape-rendering="crispEdges">'
        f'{label}<rect width="{width}" height="{height}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>'
    )
    return svg.encode()


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@get(
    "/api/tickets/{ticket_token:str}/qr.svg",
    guards=[public_rate_guard],
    tags=["queue"],
    media_type=MEDIA_TYPE,
)
async def ticket_qr(
    request: Request[Any, Any, Any],
    ticket_token: FromPath[str],
    pool: NamedDependency[asyncpg.Pool],
) -> Response[bytes]:
    """The QR code of the ticket whose public token is ``ticket_token``: the address of its
    page ``/ticket/?t=<token>`` on this hub. 404 problem for an unknown token."""
    # (Not ``token``: that name is the bearer-token dependency; as in hub/api/queue.py.)
    if len(ticket_token) > TOKEN_MAX:
        raise NotFound("no ticket has this code", field="path.ticket_token")
    ticket = await ticket_status(pool, ticket_token)  # NotFound for an unknown token
    url = ticket_page_url(str(request.base_url), ticket_token)
    svg = qr_svg(url, title=f"号票 {ticket.number}")
    return Response(content=svg, media_type=MEDIA_TYPE, headers={"Cache-Control": CACHE_CONTROL})
