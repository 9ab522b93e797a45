"""The status page (frontend/status/) in headless Chromium against the real hub: HTTP, gateway,
PostgreSQL and the MemoryBus in this process (tests/e2e/hubserver.py), devices as real peers.

The page reaches the gateway through a :class:`TcpProxy` (``gateway_public_port`` is the
proxy's port), so a test can cut the network silently; devices connect to the gateway itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Page, expect

from realtime.client import PeerClient
from realtime.messages import Event
from realtime.positions import Backoff
from tests.e2e.browser import BrowserSession, chromium
from tests.e2e.hubserver import HOST, HubServer, free_port, server_settings
from tests.factories import make_device, make_hall, make_staff
from tests.realtime.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

TICK = 0.5
HALL_NAME = "滨江区政务服务中心"
BANNER = ".conn-banner .conn-title"
RECONNECTING = "重新连接中…"
# The page is back within its backoff window (0.5 s doubling, full jitter) after a few failed
# attempts; never a sleep, only the longest wait allowed.
CONVERGE_MS = 20_000


@dataclass(frozen=True)
class Device:
    peer_id: str
    kind: str
    name: str
    token: str


@dataclass(frozen=True)
class Hall:
    hall_id: int
    manager_token: str
    display: Device
    ticket_machine: Device
    evaluator: Device


@dataclass(frozen=True)
class Served:
    server: HubServer
    proxy: TcpProxy


@pytest.fixture
async def hall(db: asyncpg.Pool) -> Hall:
    """A hall with three registered devices and a hall manager's session."""
    place = await make_hall(db, windows=3)
    await db.execute("UPDATE hall SET name = $2 WHERE id = $1", place.hall_id, HALL_NAME)

    async def device(kind: str, name: str) -> Device:
        device_id, token = await make_device(db, place.hall_id, kind, name)
        return Device(f"device:{device_id}", kind, name, token)

    _, manager = await make_staff(db, "M1", [("hall_manager", "hall", place.hall_id)])
    return Hall(
        hall_id=place.hall_id,
        manager_token=manager,
        display=await device("hall_display", "大厅综合屏"),
        ticket_machine=await device("ticket_machine", "1号取号机"),
        evaluator=await device("evaluator", "3号窗口评价器"),
    )


@pytest.fixture
async def served(db: asyncpg.Pool, database_url: str) -> AsyncIterator[Served]:
    """The hub on fixed ports; pages are told to open the gateway through the proxy."""
    gateway_port = free_port()
    async with TcpProxy(HOST, gateway_port) as proxy:
        settings = server_settings(
            database_url,
            gateway_port=gateway_port,
            gateway_public_port=proxy.port,
            tick_seconds=TICK,
        )
        async with HubServer(settings) as server:
            yield Served(server, proxy)


@pytest.fixture
async def browser() -> AsyncIterator[BrowserSession]:
    async with chromium() as session:
        yield session


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    """Device links opened by a test, closed after it even when it fails."""
    async with AsyncExitStack() as links:
        yield links


def device_client(server: HubServer, device: Device) -> PeerClient:
    """A device's link to the gateway; it retries fast, so a restarted hub sees it soon."""
    return PeerClient(
        server.gateway_url, device.kind, token=device.token, backoff=Backoff(0.05, 0.5)
    )


async def connected(stack: AsyncExitStack, server: HubServer, device: Device) -> PeerClient:
    """The device's link, live; closed when ``stack`` closes (or earlier, by the test)."""
    client = await stack.enter_async_context(device_client(server, device))
    await asyncio.wait_for(client.wait_live(), 5)
    return client


async def recorded_offline(watcher: PeerClient, device: Device) -> None:
    """Wait until the hub announces ``device`` offline to a watcher of the hall's presence."""
    async with asyncio.timeout(5):
        while True:
            update = await watcher.updates.get()
            if (
                isinstance(update, Event)
                and update.name == "peer_offline"
                and update.data["peer_id"] == device.peer_id
            ):
                return


def row(page: Page, device: Device) -> Any:
    return page.locator(f'#peers tr[data-peer-id="{device.peer_id}"]')


async def open_status(page: Page, server: HubServer, hall: Hall) -> None:
    """Open the page, wait until it is live with its snapshot, and start recording its link
    states (with the browser's wall clock) in ``window.__states``; that list also tells that
    the document was never reloaded."""
    await page.goto(f"{server.base_url}/status/?hall={hall.hall_id}&token={hall.manager_token}")
    await expect(page.locator("body")).to_have_attribute("data-link", "live", timeout=5000)
    await expect(page.locator("#hall-name")).to_have_text(HALL_NAME)
    await page.evaluate(
        """() => {
            window.__states = [];
            window.hallhub.client.addEventListener("state", (e) =>
                window.__states.push([e.detail.state, Date.now() / 1000]));
        }"""
    )


async def states(page: Page) -> list[tuple[str, float]]:
    got: list[list[Any]] = await page.evaluate("window.__states")
    return [(str(s), float(t)) for s, t in got]


async def settled(page: Page) -> None:
    """Live again and no longer dimmed (main fades over 0.4 s), ready for a screenshot."""
    await page.wait_for_selector(".conn-banner", state="hidden", timeout=CONVERGE_MS)
    await page.wait_for_function("getComputedStyle(document.querySelector('main')).opacity === '1'")


async def test_devices_going_online_and_offline_show_within_a_second(
    served: Served, hall: Hall, browser: BrowserSession, stack: AsyncExitStack
) -> None:
    """The hall's name from ``hall:<id>``; a device that connects is 在线 within 1 s, and 离线
    within 1 s of leaving."""
    server = served.server
    await connected(stack, server, hall.display)
    await (await connected(stack, server, hall.evaluator)).close()
    page = await browser.new_page()
    await open_status(page, server, hall)
    assert await page.title() == f"设备在线状态 · {HALL_NAME}"
    await expect(page.locator("#peers tr")).to_have_count(2)
    await expect(row(page, hall.evaluator)).to_have_attribute("data-status", "offline")

    ticket_machine = await connected(stack, server, hall.ticket_machine)
    live_at = time.monotonic()
    await expect(row(page, hall.ticket_machine)).to_have_attribute(
        "data-status", "online", timeout=1000
    )
    assert time.monotonic() - live_at < 1.0
    await expect(row(page, hall.ticket_machine).locator(".status")).to_have_text("在线")
    await expect(page.locator("#count-online")).to_have_text("2")
    await expect(page.locator("#count-offline")).to_have_text("1")
    await expect(page.locator("#count-total")).to_have_text("3")
    await browser.screenshot(page, "status-live")

    left_at = time.monotonic()
    await ticket_machine.close()
    await expect(row(page, hall.ticket_machine)).to_have_attribute(
        "data-status", "offline", timeout=1000
    )
    assert time.monotonic() - left_at < 1.0
    await expect(row(page, hall.ticket_machine).locator(".status")).to_have_text("离线")
    await expect(page.locator("#count-online")).to_have_text("1")
    assert await states(page) == []  # live throughout
    assert browser.page_errors == []


async def test_a_silently_dead_network_shows_reconnecting_then_converges_without_reload(
    served: Served, hall: Hall, browser: BrowserSession, stack: AsyncExitStack
) -> None:
    """Blackholed: "重新连接中…" within 3 tick periods, stale rows kept; a device leaves
    meanwhile; restored: the page shows it offline, live again, same document."""
    server, proxy = served.server, served.proxy
    await connected(stack, server, hall.display)
    ticket_machine = await connected(stack, server, hall.ticket_machine)
    page = await browser.new_page()
    await open_status(page, server, hall)
    await expect(page.locator('#peers tr[data-status="online"]')).to_have_count(2)

    proxy.blackhole()
    cut_at = time.time()
    await expect(page.locator(BANNER)).to_have_text(RECONNECTING, timeout=4 * TICK * 1000)
    first_state, noticed_at = (await states(page))[0]
    assert first_state == "reconnecting"
    # The last tick came at most one period before the cut; three periods of silence after it
    # the link is given up (0.2 s for timers and the two clocks' reads).
    assert 2 * TICK - 0.2 <= noticed_at - cut_at <= 3 * TICK + 0.2, noticed_at - cut_at

    watcher = await stack.enter_async_context(
        PeerClient(
            server.gateway_url,
            "console",
            token=hall.manager_token,
            topics=[f"presence:{hall.hall_id}"],
        )
    )
    await watcher.wait_live()
    await ticket_machine.close()
    await recorded_offline(watcher, hall.ticket_machine)
    # The hub knows; the page cannot: it keeps the last rows it had, dimmed.
    await page.wait_for_function(
        "getComputedStyle(document.querySelector('main')).opacity === '0.55'"
    )
    await expect(row(page, hall.ticket_machine)).to_have_attribute("data-status", "online")
    await browser.screenshot(page, "status-reconnecting")

    proxy.restore()
    await expect(row(page, hall.ticket_machine)).to_have_attribute(
        "data-status", "offline", timeout=CONVERGE_MS
    )
    await expect(page.locator("body")).to_have_attribute("data-link", "live")
    await settled(page)
    await expect(row(page, hall.display)).to_have_attribute("data-status", "online")
    await expect(page.locator("#count-online")).to_have_text("1")
    await expect(page.locator("#count-offline")).to_have_text("1")
    await browser.screenshot(page, "status-converged")
    assert (await states(page))[-1][0] == "live"  # window.__states survived: no reload
    assert browser.page_errors == []


async def test_after_a_hub_restart_the_page_shows_the_current_state_without_reload(
    db: asyncpg.Pool,
    served: Served,
    hall: Hall,
    browser: BrowserSession,
    stack: AsyncExitStack,
) -> None:
    """The hub stops (1012) and starts again on the same ports: a device that came back is
    online, one that did not is offline, on the same document."""
    server = served.server
    display = await connected(stack, server, hall.display)
    ticket_machine = await connected(stack, server, hall.ticket_machine)
    page = await browser.new_page()
    await open_status(page, server, hall)
    await expect(page.locator('#peers tr[data-status="online"]')).to_have_count(2)

    await server.stop()
    await expect(page.locator(BANNER)).to_have_text(RECONNECTING)
    await display.close()  # the display does not come back; the ticket machine retries
    await server.start()

    await asyncio.wait_for(ticket_machine.wait_live(), 10)
    # The ticket machine was online before the restart too: wait for the page to hold the
    # online record the new hub wrote, not the old one.
    back_at = await db.fetchval(
        "SELECT extract(epoch FROM changed_at)::float8 FROM peer_presence "
        "WHERE peer_id = $1 AND online",
        hall.ticket_machine.peer_id,
    )
    assert back_at is not None
    await page.wait_for_function(
        """([id, at]) => {
            const peer = window.hallhub.board.peers.get(id);
            return peer !== undefined && peer.online && peer.changed_at >= at;
        }""",
        arg=[hall.ticket_machine.peer_id, back_at],
        timeout=CONVERGE_MS,
    )
    await expect(row(page, hall.ticket_machine)).to_have_attribute("data-status", "online")
    await expect(row(page, hall.display)).to_have_attribute("data-status", "offline")
    await settled(page)
    await expect(page.locator("#hall-name")).to_have_text(HALL_NAME)
    await expect(page.locator("#count-online")).to_have_text("1")
    await browser.screenshot(page, "status-restarted")
    seen = [state for state, _ in await states(page)]
    assert seen[0] == "reconnecting" and seen[-1] == "live", seen
    assert browser.page_errors == []
