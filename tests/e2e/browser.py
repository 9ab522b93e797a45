"""Headless Chromium for the e2e tests: Debian's browser driven by Playwright (no browser
download; TOOLCHAIN.md §3). Screenshots go to ``test-artifacts/``.

Usage::

    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(url)
        await browser.screenshot(page, "status")   # test-artifacts/status.png
        assert browser.page_errors == []
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from playwright.async_api import Browser, ConsoleMessage, Error, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path("test-artifacts")


class BrowserSession:
    """One browser; its pages' uncaught errors and console errors are collected.

    ``console_errors`` includes the browser's own reports (a websocket that failed to
    connect is one), so a test that breaks links on purpose filters it; ``page_errors`` are
    uncaught exceptions of the pages' scripts and should stay empty.
    """

    def __init__(self, browser: Browser, artifacts: Path) -> None:
        self.browser = browser
        self.artifacts = artifacts
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []

    async def new_page(self, width: int = 1920, height: int = 1080) -> Page:
        """A page in its own context, zh-CN, Asia/Shanghai, a wall screen's size."""
        context = await self.browser.new_context(
            viewport={"width": width, "height": height},
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
        )
        page = await context.new_page()
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("console", self._on_console)
        return page

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    async def screenshot(self, page: Page, name: str) -> Path:
        """Save ``<artifacts>/<name>.png`` and return its path."""
        path = self.artifacts / f"{name}.png"
        await page.screenshot(path=str(path))
        return path


@contextlib.asynccontextmanager
async def chromium(
    artifacts: Path | str = ARTIFACTS, extra_args: Sequence[str] = ()
) -> AsyncIterator[BrowserSession]:
    """Launch headless Chromium; closed on exit even when the test fails.

    ``extra_args`` are added to :data:`CHROMIUM_ARGS`, e.g. an ``--autoplay-policy``.
    """
    folder = Path(artifacts)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield BrowserSession(browser, folder)
        finally:
            with contextlib.suppress(Error):
                await browser.close()
