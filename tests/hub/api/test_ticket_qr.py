"""``GET /api/tickets/{token}/qr.svg`` through the real app: the QR code of a ticket's page."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import asyncpg
import pytest
import segno

from hub.api.ticket_qr import BORDER, SCALE, ticket_page_url
from tests.factories import make_hall
from tests.hub.api.conftest import Client, assert_problem, error_fields
from tests.hub.queue.world import add_group

SVG = "{http://www.w3.org/2000/svg}"
# AsyncTestClient's base URL.
BASE = "http://testserver.local"


@pytest.fixture
async def token(db: asyncpg.Pool, client: Client) -> str:
    """The public token of an online ticket of a hall that issues around the clock."""
    hall = await make_hall(db, code="qr")
    await db.execute(
        "UPDATE hall SET opens_minute = 0, closes_minute = 1440 WHERE id = $1", hall.hall_id
    )
    group = await add_group(db, hall.hall_id, "A", "社保业务")
    response = await client.post(f"/api/halls/{hall.hall_id}/tickets", json={"group_id": group})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def dark_modules(svg: ET.Element) -> set[tuple[int, int]]:
    """The (x, y) of every dark module drawn by the SVG's path of ``M x y h n v1 h-n z`` runs."""
    (path,) = svg.iter(f"{SVG}path")
    cells = set()
    for x, y, n in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\3z", path.attrib["d"]):
        cells.update((int(x) + i, int(y)) for i in range(int(n)))
    assert re.sub(r"M(\d+) (\d+)h(\d+)v1h-\3z", "", path.attrib["d"]) == ""
    return cells


def expected_modules(text: str) -> set[tuple[int, int]]:
    code = segno.make(text, error="m", micro=False)
    return {
        (x, y)
        for y, row in enumerate(code.matrix_iter(scale=1, border=BORDER))
        for x, dark in enumerate(row)
        if dark
    }


async def test_the_qr_code_encodes_the_absolute_address_of_the_tickets_page(
    client: Client, token: str
) -> None:
    """The SVG draws exactly the QR code of ``<base>/ticket/?t=<token>``, scalable and sized."""
    response = await client.get(f"/api/tickets/{token}/qr.svg")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.headers["cache-control"] == "private, max-age=86400"
    svg = ET.fromstring(response.content)
    assert svg.tag == f"{SVG}svg"
    _, _, width, height = (int(v) for v in svg.attrib["viewBox"].split())
    assert (int(svg.attrib["width"]), int(svg.attrib["height"])) == (width * SCALE, height * SCALE)
    url = ticket_page_url(BASE, token)
    assert url == f"{BASE}/ticket/?t={token}"
    assert dark_modules(svg) == expected_modules(url)
    assert (width, height) == segno.make(url, error="m").symbol_size(scale=1, border=BORDER)
    assert [t.text for t in svg.iter(f"{SVG}title")] == ["号票 A001"]


async def test_the_qr_code_follows_the_address_the_hub_was_reached_at(
    client: Client, token: str
) -> None:
    """A kiosk that reached the hub under another host name gets that host in the code."""
    response = await client.get(
        f"/api/tickets/{token}/qr.svg", headers={"Host": "hall.example.gov.cn:8080"}
    )
    assert response.status_code == 200, response.text
    svg = ET.fromstring(response.content)
    url = f"http://hall.example.gov.cn:8080/ticket/?t={token}"
    assert dark_modules(svg) == expected_modules(url)


@pytest.mark.parametrize("bad", ["unknown-token", "x" * 65])
async def test_an_unknown_token_is_a_not_found_problem(
    client: Client, token: str, bad: str
) -> None:
    """No code is drawn for a token that is not a ticket's (nor for an overlong one)."""
    problem = assert_problem(await client.get(f"/api/tickets/{bad}/qr.svg"), 404, "not_found")
    assert error_fields(problem) == ["path.ticket_token"]


def test_the_page_address_escapes_the_token() -> None:
    """A token is put in the query as one escaped value, after the base without its slash."""
    assert ticket_page_url("http://h/", "a b&c") == "http://h/ticket/?t=a%20b%26c"
