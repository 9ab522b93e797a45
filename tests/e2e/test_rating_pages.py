"""The rating pages (frontend/evaluator, frontend/rate) in headless Chromium against the real
hub (tests/e2e/hubserver.py). The queue is driven through the HTTP API as window staff drive
it; every assertion waits on the page (Playwright's expect), never on a sleep."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import expect

from tests.e2e.browser import BrowserSession, chromium
from tests.e2e.hubserver import HubServer, server_settings
from tests.factories import make_device, make_hall, make_staff
from tests.hub.queue.world import add_group, serve

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


@dataclass(frozen=True)
class Hall:
    hall_id: int
    window_id: int
    group_id: int
    staff_id: int
    staff_token: str
    pad_token: str


@pytest.fixture
async def hall(db: asyncpg.Pool) -> Hall:
    """One window serving group A, its staff member and its evaluation pad; tickets around
    the clock, so the test passes at any hour."""
    place = await make_hall(db, code="rate", windows=1)
    await db.execute(
        "UPDATE hall SET opens_minute = 0, closes_minute = 1440 WHERE id = $1", place.hall_id
    )
    group = await add_group(db, place.hall_id, "A", "社保业务")
    await serve(db, place.window_ids[0], group)
    staff_id, token = await make_staff(
        db, "W001", [("window_staff", "hall", place.hall_id)], name="李娜"
    )
    _, pad = await make_device(db, place.hall_id, "evaluator", "1号窗口评价器")
    return Hall(place.hall_id, place.window_ids[0], group, staff_id, token, pad)


@pytest.fixture
async def server(db: asyncpg.Pool, database_url: str) -> AsyncIterator[HubServer]:
    settings = server_settings(database_url, tick_seconds=0.5, public_rate_per_minute=10_000)
    async with HubServer(settings) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[BrowserSession]:
    async with chromium() as session:
        yield session


async def _issue(http: httpx.AsyncClient, hall: Hall) -> dict[str, Any]:
    issued = await http.post(f"/api/halls/{hall.hall_id}/tickets", json={"group_id": hall.group_id})
    assert issued.status_code == 201, issued.text
    ticket: dict[str, Any] = issued.json()
    return ticket


async def _finish_next(http: httpx.AsyncClient, hall: Hall) -> None:
    """The window's staff member signs in, calls the next ticket and finishes it."""
    window = f"/api/halls/{hall.hall_id}/windows/{hall.window_id}"
    for action in ("sign-in", "call", "finish"):
        done = await http.post(
            f"{window}/{action}", headers={"Authorization": f"Bearer {hall.staff_token}"}
        )
        assert done.status_code == 200, done.text


async def _serve_one(http: httpx.AsyncClient, hall: Hall) -> dict[str, Any]:
    """Issue a ticket and serve it at the window to the end; the issued ticket."""
    ticket = await _issue(http, hall)
    await _finish_next(http, hall)
    return ticket


async def test_the_evaluation_pad_asks_after_a_finish_and_stores_the_rating(
    db: asyncpg.Pool, hall: Hall, server: HubServer, browser: BrowserSession
):
    page = await browser.new_page(width=1024, height=600)
    await page.goto(
        f"{server.base_url}/evaluator/?hall={hall.hall_id}&window={hall.window_id}"
        f"&token={hall.pad_token}"
    )
    await expect(page.locator("body")).to_have_attribute("data-link", "live", timeout=10_000)
    await expect(page.locator("#idle .welcome")).to_have_text("欢迎评价")
    await expect(page.locator("#window-name")).to_have_text("1号窗口")
    assert "token=" not in page.url  # kept in localStorage, not left in the address bar

    async with httpx.AsyncClient(base_url=server.base_url) as http:
        ticket = await _serve_one(http, hall)
        await expect(page.locator("body")).to_have_attribute("data-state", "prompt")
        await expect(page.locator("#prompt .prompt-title")).to_have_text("请对本次服务进行评价")
        await expect(page.locator("#prompt-number")).to_have_text(ticket["ticket"]["number"])
        await browser.screenshot(page, "evaluator-prompt")
        await page.get_by_role("button", name="满意", exact=True).click()
        await expect(page.locator("body")).to_have_attribute("data-state", "thanks")
        await expect(page.locator("#thanks-detail")).to_have_text("您的评价：满意")
        row = await db.fetchrow("SELECT * FROM rating WHERE ticket_id = $1", ticket["ticket_id"])
        assert row is not None
        assert (row["grade"], row["source"]) == ("satisfied", "evaluator")
        assert (row["window_id"], row["staff_id"]) == (hall.window_id, hall.staff_id)
        # Back to idle after the thanks screen.
        await expect(page.locator("body")).to_have_attribute("data-state", "idle", timeout=10_000)

        # A bad grade asks for its reasons before it is sent.
        second = await _serve_one(http, hall)
        await expect(page.locator("#prompt-number")).to_have_text(second["ticket"]["number"])
        await page.get_by_role("button", name="非常不满意", exact=True).click()
        await expect(page.locator("body")).to_have_attribute("data-state", "reasons")
        await expect(page.locator("#send")).to_be_disabled()
        await page.get_by_role("button", name="多次跑动").click()
        await page.locator("#send").click()
        await expect(page.locator("body")).to_have_attribute("data-state", "thanks")
    row = await db.fetchrow(
        "SELECT grade, reasons FROM rating WHERE ticket_id = $1", second["ticket_id"]
    )
    assert (row["grade"], row["reasons"]) == ("very_dissatisfied", ["repeated_visits"])
    assert browser.page_errors == []


async def test_the_citizen_rates_on_the_phone_once(
    db: asyncpg.Pool, hall: Hall, server: HubServer, browser: BrowserSession
):
    page = await browser.new_page(**PHONE)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        ticket = await _issue(http, hall)
        url = f"{server.base_url}/rate/?t={ticket['token']}"
        await page.goto(url)
        await expect(page.locator("#notice")).to_contain_text("尚未办结")
        await _finish_next(http, hall)
    await page.goto(f"{url}&via=sms")  # the link of the SMS sent after service
    await expect(page.locator("body")).to_have_attribute("data-state", "form")
    await page.get_by_role("radio", name="不满意", exact=True).click()
    await expect(page.locator("#submit")).to_be_disabled()
    await page.get_by_text("政策解释不清").click()
    await page.locator("#comment").fill("窗口解释得不清楚")
    await browser.screenshot(page, "rate-form")
    await page.locator("#submit").click()
    await expect(page.locator("body")).to_have_attribute("data-state", "thanks")
    row = await db.fetchrow(
        "SELECT grade, reasons, comment, source FROM rating WHERE ticket_id = $1",
        ticket["ticket_id"],
    )
    assert dict(row) == {
        "grade": "dissatisfied",
        "reasons": ["unclear_policy"],
        "comment": "窗口解释得不清楚",
        "source": "sms",
    }
    # Opened again: already rated.
    await page.reload()
    await expect(page.locator("#thanks-detail")).to_contain_text("已对")
    assert browser.page_errors == []
