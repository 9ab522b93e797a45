"""One call end to end, through a real ``hallhub serve`` process and four pages in headless
Chromium: a click on 叫号 in the staff console shows the call on the hall display, the window
display and the citizen's page, and the hall display asks the hub for the announcement's
audio. Then the hub process is killed (SIGKILL, as a crash) and started again: every page
shows "重新连接中…", comes back by itself (no reload) and shows the state after the restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import structlog
from playwright.async_api import Page, Request, expect

from tests.e2e.browser import BrowserSession
from tests.e2e.processes import HubProcess, processes
from tests.e2e.test_screens import RECONNECTING, Api, Hall, browser, hall, wall_chromium
from tests.realtime.peers import eventually

pytestmark = pytest.mark.e2e

__all__ = ["browser", "hall", "wall_chromium"]  # fixtures shared with test_screens

log = structlog.get_logger("tests.e2e.calling")

# The issue's bound for a call to reach every screen.
CALL_TO_SCREENS_MS = 1000
BACK_MS = 30_000


@pytest.fixture
async def hub_process(
    db: asyncpg.Pool, database_url: str, tmp_path: Path
) -> AsyncIterator[HubProcess]:
    env = {
        "HALLHUB_DATABASE_URL": database_url,
        "HALLHUB_PUBLIC_RATE_PER_MINUTE": "10000",
        "HALLHUB_SPEECH_SPEED": "450",
    }
    async with processes(env, tmp_path) as procs:
        yield await procs.start("hub")


async def _live(page: Page, url: str) -> None:
    await page.goto(url)
    await expect(page.locator("body")).to_have_attribute("data-link", "live", timeout=10_000)
    # A mark that a reload would wipe: the pages must come back without one.
    await page.evaluate("window.__sameDocument = true")


async def test_a_click_on_call_reaches_every_screen_and_survives_a_hub_crash(
    hub_process: HubProcess, hall: Hall, browser: BrowserSession
) -> None:
    base = hub_process.http_url
    async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=10) as http:
        api = Api(http, hall)
        await api.issue("A")  # A001: a first call, so the measured one finds pages warm
        citizen = await api.issue("A")  # A002: the citizen whose page we watch
        await api.issue("A")
        await api.window(1, "sign-in")

        display = await browser.new_page(1920, 1080)
        speech: list[str] = []

        def heard(request: Request) -> None:
            if "/api/speech/call.wav" in request.url:
                speech.append(request.url.split("?", 1)[1])

        display.on("request", heard)
        window_screen = await browser.new_page(1280, 720)
        phone = await browser.new_page(390, 844)
        console = await browser.new_page(1600, 900)
        await _live(display, f"{base}/hall/?hall={hall.hall_id}")
        await _live(window_screen, f"{base}/window/?hall={hall.hall_id}&window={hall.windows[0]}")
        await _live(phone, f"{base}/ticket/?t={citizen['token']}")
        await console.goto(
            f"{base}/staff/?hall={hall.hall_id}&window={hall.windows[0]}&token={hall.staff[0]}"
        )
        await expect(console.locator("body")).to_have_attribute("data-view", "console")
        await expect(console.locator("body")).to_have_attribute("data-link", "live")
        await console.evaluate("window.__sameDocument = true")
        await console.locator("#btn-call").click()
        await expect(display.locator("#latest-number")).to_have_text("A001")
        await expect(window_screen.locator("#current")).to_have_text("A001")
        await console.locator("#btn-finish").click()
        await expect(console.locator("#current-number")).to_have_text("—")
        await expect(window_screen.locator("#current")).not_to_have_text("A001")

        started = time.monotonic()
        await console.locator("#btn-call").click()
        await asyncio.gather(
            expect(display.locator("#latest-number")).to_have_text(
                "A002", timeout=CALL_TO_SCREENS_MS
            ),
            expect(window_screen.locator("#current")).to_have_text(
                "A002", timeout=CALL_TO_SCREENS_MS
            ),
            expect(phone.locator("#called .called-text")).to_have_text(
                "请到 1 号窗口办理", timeout=CALL_TO_SCREENS_MS
            ),
        )
        log.info("call_on_every_screen", ms=round((time.monotonic() - started) * 1000))
        await expect(console.locator("#current-number")).to_have_text("A002")
        await eventually(lambda: "ticket=A002&window=1" in speech, what="A002 announced")
        for name, page in [("hall", display), ("window", window_screen), ("ticket", phone),
                           ("staff", console)]:  # fmt: skip
            await browser.screenshot(page, f"calling-{name}")

        # The hub crashes; the pages say so, and come back to the state after the restart.
        await hub_process.kill()
        pages = [display, window_screen, phone, console]
        for page in pages:
            await expect(page.locator(".conn-banner .conn-title")).to_have_text(
                RECONNECTING, timeout=BACK_MS
            )
        await hub_process.start()
        await api.window(1, "finish")
        assert await api.call(1) == "A003"
        await expect(display.locator("#latest-number")).to_have_text("A003", timeout=BACK_MS)
        await expect(window_screen.locator("#current")).to_have_text("A003", timeout=BACK_MS)
        await expect(phone.locator("#status")).to_have_text("已办结", timeout=BACK_MS)
        await expect(console.locator("#current-number")).to_have_text("A003", timeout=BACK_MS)
        for page in pages:
            # The citizen's page leaves the feed once its ticket has ended ("stopped").
            link = "stopped" if page is phone else "live"
            await expect(page.locator("body")).to_have_attribute("data-link", link, timeout=BACK_MS)
            assert await page.evaluate("window.__sameDocument === true"), "the page reloaded"
        await eventually(lambda: "ticket=A003&window=1" in speech, what="A003 announced")
        await browser.screenshot(display, "calling-hall-after-restart")
