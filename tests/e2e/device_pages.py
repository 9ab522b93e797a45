"""What the device page tests share: a hall open round the clock with group A served at
both windows, and opening the device monitor and the kiosk as a device (test_device_pages.py
plays the devices with PeerClients, test_device_chain.py runs the real agent)."""

from __future__ import annotations

import asyncpg
from playwright.async_api import Page, expect

from tests.factories import Place, make_hall, make_staff
from tests.hub.queue.world import add_group, serve

HALL_NAME = "滨江区政务服务中心"
WAIT_MS = 10_000


async def open_hall(db: asyncpg.Pool, code: str) -> tuple[Place, int, str]:
    """The hall (named HALL_NAME, open 00:00–24:00, group A 社保业务 at every window), group
    A's id and the session token of its manager 王芳 (M01)."""
    place = await make_hall(db, code=code, windows=2)
    await db.execute(
        "UPDATE hall SET name = $2, opens_minute = 0, closes_minute = 1440 WHERE id = $1",
        place.hall_id,
        HALL_NAME,
    )
    group = await add_group(db, place.hall_id, "A", "社保业务")
    for window in place.window_ids:
        await serve(db, window, group)
    _, manager = await make_staff(db, "M01", [("hall_manager", "hall", place.hall_id)], "王芳")
    return place, group, manager


async def open_device_monitor(page: Page, base_url: str, hall_id: int, token: str) -> None:
    """The device page, loaded, live, with the hall's alerts."""
    await page.goto(f"{base_url}/devices/?hall={hall_id}&token={token}")
    body = page.locator("body")
    await expect(body).to_have_attribute("data-loaded", "true", timeout=WAIT_MS)
    await expect(body).to_have_attribute("data-link", "live", timeout=WAIT_MS)
    await expect(body).to_have_attribute("data-alerts", "loaded", timeout=WAIT_MS)


async def open_kiosk(page: Page, base_url: str, hall_id: int, token: str, device_id: int) -> None:
    """The kiosk page linked as the kiosk device: live, and its own topic's snapshot come."""
    await page.goto(f"{base_url}/kiosk/?hall={hall_id}&device_token={token}")
    body = page.locator("body")
    await expect(body).to_have_attribute("data-link", "live", timeout=WAIT_MS)
    await expect(body).to_have_attribute("data-device-id", str(device_id), timeout=WAIT_MS)
