"""The booking page (frontend/appointment) in headless Chromium against the real hub: choose a
service and a slot on the next working day, book with an identity card, get the check-in
code, cancel. Assertions wait on the page, never on a sleep."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from playwright.async_api import expect

from hub.domain.identity import check_character
from hub.services import calendar
from tests.e2e.browser import BrowserSession, chromium
from tests.e2e.hubserver import HubServer, server_settings
from tests.factories import make_hall
from tests.hub.queue.world import add_group

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def server(db: asyncpg.Pool, database_url: str) -> AsyncIterator[HubServer]:
    settings = server_settings(database_url, tick_seconds=0.5, public_rate_per_minute=10_000)
    async with HubServer(settings) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[BrowserSession]:
    async with chromium() as session:
        yield session


async def test_a_citizen_books_a_slot_gets_a_code_and_cancels(
    db: asyncpg.Pool, server: HubServer, browser: BrowserSession
):
    place = await make_hall(db, code="appt", windows=1)
    group = await add_group(db, place.hall_id, "A", "户籍业务")
    await db.execute(
        "INSERT INTO appointment_slot (group_id, slot_start, slot_end, capacity) "
        "VALUES ($1, '09:00', '10:00', 3), ($1, '10:00', '11:00', 0)",
        group,
    )
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    day = await calendar.next_working_day(db, place.hall_id, today)
    first17 = "11010119850315002"
    number = first17 + check_character(first17)

    page = await browser.new_page(**PHONE)
    await page.goto(f"{server.base_url}/appointment/?hall={place.hall_id}")
    await page.get_by_role("button", name="户籍业务").click()
    await expect(page.locator("body")).to_have_attribute("data-state", "step-slot")
    slot = page.locator(f'button.slot[data-day="{day.isoformat()}"][data-start="09:00:00"]')
    await expect(slot).to_contain_text("余3")
    # A slot of capacity 0 is not offered.
    await expect(page.locator('button.slot[data-start="10:00:00"]')).to_have_count(0)
    await slot.click()
    await page.locator("#name").fill("张三")
    await page.locator("#number").fill(number)
    await page.locator("#phone").fill("13812345678")
    await page.locator("#submit").click()
    await expect(page.locator("body")).to_have_attribute("data-state", "step-done")
    await browser.screenshot(page, "appointment-done")
    row = await db.fetchrow("SELECT code, service_day, status, phone, name_masked FROM appointment")
    await expect(page.locator("#code")).to_have_text(row["code"])
    assert (row["service_day"], row["status"], row["phone"]) == (day, "booked", "13812345678")
    assert row["name_masked"] == "张*"
    assert number not in await page.content()

    await page.locator("#cancel").click()
    await expect(page.locator("body")).to_have_attribute("data-state", "cancelled")
    assert await db.fetchval("SELECT status FROM appointment") == "cancelled"
    assert browser.page_errors == []
