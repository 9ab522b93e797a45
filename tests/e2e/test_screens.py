"""The public screens (frontend/hall, window, ticket, kiosk) in headless Chromium against the
real hub (tests/e2e/hubserver.py: HTTP, gateway, PostgreSQL, espeak-ng in this process). The
queue is driven through the HTTP API as staff, devices and citizens drive it; every assertion
waits on the page (Playwright's expect), never on a sleep.

Chromium runs with ``--autoplay-policy=no-user-gesture-required``, as hall PCs do (see
frontend/lib/announcer.js), so the hall display plays its announcements without a click.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Error, Page, Request, Route, async_playwright, expect

from hub.domain.identity import check_character
from realtime.client import PeerClient
from realtime.messages import Event, Snapshot
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, BrowserSession
from tests.e2e.hubserver import HubServer, server_settings
from tests.factories import make_device, make_hall, make_staff
from tests.hub.queue.world import add_group, serve

pytestmark = pytest.mark.e2e

HALL_NAME = "滨江区政务服务中心"
DEPARTMENT = "区人力资源和社会保障局"
BANNER = ".conn-banner .conn-title"
RECONNECTING = "重新连接中…"
# The pages are back within their backoff window (0.5 s doubling, full jitter, 10 s cap).
CONVERGE_MS = 20_000
PHONE = {"width": 390, "height": 844}
DEVICE_WAIT_S = 10


@dataclass(frozen=True)
class Hall:
    hall_id: int
    windows: list[int]  # window ids, numbers 1, 2, 3
    groups: dict[str, int]  # prefix -> group id
    staff: list[str]  # session tokens of the staff of windows 1, 2, 3
    manager: str
    kiosk: str  # the kiosk's device token


class Api:
    """The hub's HTTP API as the test's staff, devices and citizens use it."""

    def __init__(self, http: httpx.AsyncClient, hall: Hall) -> None:
        self.http = http
        self.hall = hall

    async def issue(self, prefix: str, device: str | None = None, **body: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {device}"} if device else {}
        response = await self.http.post(
            f"/api/halls/{self.hall.hall_id}/tickets",
            json={"group_id": self.hall.groups[prefix], **body},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        issued: dict[str, Any] = response.json()
        return issued

    async def window(self, number: int, action: str) -> dict[str, Any]:
        """``action`` (sign-in, call, finish, pause …) at window ``number`` by its staff."""
        response = await self.http.post(
            f"/api/halls/{self.hall.hall_id}/windows/{self.hall.windows[number - 1]}/{action}",
            headers={"Authorization": f"Bearer {self.hall.staff[number - 1]}"},
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def call(self, number: int) -> str:
        called = (await self.window(number, "call"))["called"]
        assert called, "nobody waits for this window"
        return str(called)

    async def serve(self, number: int, *prefixes: str) -> None:
        """Window ``number`` serves these groups from now on (the hall manager's change)."""
        response = await self.http.put(
            f"/api/halls/{self.hall.hall_id}/windows/{self.hall.windows[number - 1]}/groups",
            json=[
                {"group_id": self.hall.groups[p], "rank": rank}
                for rank, p in enumerate(prefixes, start=1)
            ],
            headers={"Authorization": f"Bearer {self.hall.manager}"},
        )
        assert response.status_code == 200, response.text

    async def notice(self, text: str, ttl_seconds: int | None = None) -> None:
        response = await self.http.post(
            f"/api/halls/{self.hall.hall_id}/notices",
            json={"text": text, "ttl_seconds": ttl_seconds},
            headers={"Authorization": f"Bearer {self.hall.manager}"},
        )
        assert response.status_code == 201, response.text


@pytest.fixture
async def hall(db: asyncpg.Pool) -> Hall:
    """Three windows (1: groups A and B, red-flag window; 2: B; 3: A), an inactive group C,
    window staff (window 1's a star staff member), a hall manager and a kiosk. Tickets are
    issued around the clock, so the test passes at any hour."""
    place = await make_hall(db, code="scr", windows=3)
    department = await db.fetchval(
        "INSERT INTO department (region_id, code, name) VALUES ($1, 'rsj', $2) RETURNING id",
        place.city_id,
        DEPARTMENT,
    )
    await db.execute(
        "UPDATE hall SET name = $2, opens_minute = 0, closes_minute = 1440 WHERE id = $1",
        place.hall_id,
        HALL_NAME,
    )
    await db.execute(
        'UPDATE "window" SET department_id = $2, name = $3, red_flag = number = 1 '
        "WHERE hall_id = $1",
        place.hall_id,
        department,
        "社保综合受理",
    )
    groups = {
        "A": await add_group(db, place.hall_id, "A", "社保业务"),
        "B": await add_group(db, place.hall_id, "B", "不动产登记"),
        "C": await add_group(db, place.hall_id, "C", "公积金", active=False),
    }
    w1, w2, w3 = place.window_ids
    await serve(db, w1, groups["A"], groups["B"])
    await serve(db, w2, groups["B"])
    await serve(db, w3, groups["A"])
    staff = []
    for n, name in enumerate(["李娜", "王磊", "陈静"], start=1):
        staff_id, token = await make_staff(
            db, f"W00{n}", [("window_staff", "hall", place.hall_id)], name=name
        )
        await db.execute("UPDATE staff SET star_staff = $2 WHERE id = $1", staff_id, n == 1)
        staff.append(token)
    _, manager = await make_staff(db, "M001", [("hall_manager", "hall", place.hall_id)])
    _, kiosk = await make_device(db, place.hall_id, "kiosk", "1号自助终端")
    return Hall(place.hall_id, place.window_ids, groups, staff, manager, kiosk)


@pytest.fixture
async def server(db: asyncpg.Pool, database_url: str) -> AsyncIterator[HubServer]:
    # Fast speech: the hall display plays each announcement to its end before the next.
    settings = server_settings(
        database_url, tick_seconds=0.5, public_rate_per_minute=10_000, speech_speed=450
    )
    async with HubServer(settings) as running:
        yield running


@pytest.fixture
async def api(server: HubServer, hall: Hall) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False, timeout=10) as http:
        yield Api(http, hall)


@pytest.fixture(scope="module")
async def wall_chromium() -> AsyncIterator[Browser]:
    """Chromium as a hall PC runs it: announcements may play without a click. One launch for
    the module; each test's pages live in contexts closed after it."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            yield launched
        finally:
            with contextlib.suppress(Error):
                await launched.close()


@pytest.fixture
async def browser(wall_chromium: Browser, artifacts_dir: str) -> AsyncIterator[BrowserSession]:
    yield BrowserSession(wall_chromium, Path(artifacts_dir))
    for context in wall_chromium.contexts:
        with contextlib.suppress(Error):
            await context.close()


async def open_live(page: Page, url: str) -> None:
    """Open a page and wait until its link is live and its first state is drawn."""
    await page.goto(url)
    await expect(page.locator("body")).to_have_attribute("data-link", "live", timeout=10_000)
    await page.evaluate("window.__sameDocument = true")


async def settled(page: Page) -> None:
    """Live, no banner, no longer dimmed (main fades over 0.4 s): ready for a screenshot."""
    await expect(page.locator("body")).to_have_attribute("data-link", "live", timeout=CONVERGE_MS)
    await page.wait_for_selector(".conn-banner", state="hidden")
    await page.wait_for_function("getComputedStyle(document.querySelector('main')).opacity === '1'")


def speech_of(ticket: str, window: int, kind: str | None = None) -> str:
    url = f"/api/speech/call.wav?ticket={ticket}&window={window}"
    return f"{url}&kind={kind}" if kind else url


def group_row(page: Page, prefix: str) -> Any:
    return page.locator(f'#groups tr[data-prefix="{prefix}"]')


def window_tile(page: Page, hall: Hall, number: int) -> Any:
    return page.locator(f'#windows li[data-window-id="{hall.windows[number - 1]}"]')


async def booked_now(db: asyncpg.Pool, hall: Hall, prefix: str, code: str) -> None:
    """An appointment booked for a slot that starts this minute (hall-local), so that it can
    be checked in now (from 30 min before to 15 min after the start); written with SQL, as
    booking itself refuses a slot that has started."""
    now = datetime.now(ZoneInfo("Asia/Shanghai")).replace(second=0, microsecond=0)
    end = now + timedelta(minutes=30)
    await db.execute(
        """INSERT INTO appointment (hall_id, group_id, service_day, slot_start, slot_end, code,
                                    id_kind, id_key, id_masked, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, 'resident_id', 'key', '110***********0018', now())""",
        hall.hall_id,
        hall.groups[prefix],
        now.date(),
        now.time(),
        end.time() if end.date() == now.date() else time(23, 59, 59),
        code,
    )


def resident_id(first17: str) -> str:
    return first17 + check_character(first17)


async def test_hall_display_shows_calls_waiting_windows_and_notices_and_speaks_live_calls(
    server: HubServer, api: Api, hall: Hall, browser: BrowserSession
) -> None:
    """State from the snapshot (not announced), then live calls: big, listed, spoken in order;
    waiting counts and estimates, window states, notices scrolling until they expire."""
    await api.window(1, "sign-in")
    for prefix in "AAAB":
        await api.issue(prefix)
    assert await api.call(1) == "A001"  # before the page opens: shown, never spoken
    await api.notice("今日办理社保卡业务请携带身份证原件")

    page = await browser.new_page()
    speech: list[str] = []
    page.on("request", lambda r: speech.append(r.url) if "/api/speech/" in r.url else None)
    await open_live(page, f"{server.base_url}/hall/?hall={hall.hall_id}")
    await expect(page.locator("#hall-name")).to_have_text(HALL_NAME)
    await expect(page.locator("#latest-number")).to_have_text("A001")
    await expect(page.locator("#latest-window")).to_have_text("1")
    await expect(group_row(page, "A").locator(".count")).to_have_text("2人")
    # A: 2 waiting, 300 s each, windows 1 open (3 closed) → 10 minutes.
    await expect(group_row(page, "A").locator(".estimate")).to_have_text("约 10 分钟")
    await expect(group_row(page, "B").locator(".count")).to_have_text("1人")
    await expect(group_row(page, "C").locator(".estimate")).to_have_text("暂停取号")
    await expect(window_tile(page, hall, 1)).to_have_attribute("data-status", "open")
    await expect(window_tile(page, hall, 1).locator(".current")).to_have_text("A001")
    await expect(window_tile(page, hall, 2).locator(".status")).to_have_text("关闭")
    await expect(page.locator("#ticker-text")).to_have_text("今日办理社保卡业务请携带身份证原件")

    await api.window(1, "finish")
    async with page.expect_request(lambda r: r.url.endswith(speech_of("A002", 1))):
        assert await api.call(1) == "A002"
    await expect(page.locator("#latest-number")).to_have_text("A002")
    await expect(page.locator("#latest-text")).to_have_text("请 A002 号到 1 号窗口办理")
    await expect(page.locator("#recent li").first).to_have_attribute("data-number", "A001")
    await expect(group_row(page, "A").locator(".count")).to_have_text("1人")
    await expect(window_tile(page, hall, 1).locator(".current")).to_have_text("A002")

    async with page.expect_request(lambda r: r.url.endswith(speech_of("A002", 1, "recall"))):
        await api.window(1, "recall")
    await expect(page.locator("#latest-text")).to_have_text("请 A002 号再次到 1 号窗口办理")
    await expect(page.locator("#recent li").first).to_have_attribute("data-number", "A002")

    await api.window(2, "sign-in")
    async with page.expect_request(lambda r: r.url.endswith(speech_of("B001", 2))):
        assert await api.call(2) == "B001"
    await expect(window_tile(page, hall, 2).locator(".current")).to_have_text("B001")
    await expect(page.locator("#recent li").first.locator(".tag")).to_have_text("重呼")
    await expect(group_row(page, "B").locator(".count")).to_have_text("0人")
    await expect(group_row(page, "B").locator(".estimate")).to_have_text("无需等待")
    await api.window(1, "pause")
    await expect(window_tile(page, hall, 1)).to_have_attribute("data-status", "paused")
    await expect(window_tile(page, hall, 1).locator(".status")).to_have_text("暂停")
    # Window 1 paused: no open window serves A any more.
    await expect(group_row(page, "A").locator(".estimate")).to_have_text("暂无窗口")

    await api.notice("系统将于今晚22:00维护", ttl_seconds=2)
    await expect(page.locator("#ticker-text")).to_contain_text("系统将于今晚22:00维护")
    await expect(page.locator("#ticker-text")).to_contain_text("今日办理社保卡业务")
    await browser.screenshot(page, "screens-hall-display")
    # Expired notices leave the ticker.
    await expect(page.locator("#ticker-text")).to_have_text(
        "今日办理社保卡业务请携带身份证原件", timeout=5000
    )

    # A call a resume replays from long ago changes the list but is not spoken.
    stale_queued = await page.evaluate(
        """() => {
            const {client, display, announcer} = window.hallhub;
            const call = {number: "B099", window_id: 0, window_number: 2,
                          called_at: "2026-01-01T01:00:00Z", recall: false};
            const before = announcer.pending;
            display.onEvent({name: "ticket_called", ts: client.serverNow() - 120,
                             data: {action: "call", call, waiting: []}});
            return announcer.pending - before;
        }"""
    )
    assert stale_queued == 0
    await expect(page.locator("#latest-number")).to_have_text("B099")

    # Past the hall's midnight a screen's state is of another service day: a fresh snapshot
    # replaces it (here the state is made yesterday's; the hub's answer is today's).
    await page.evaluate(
        """() => {
            const {display} = window.hallhub;
            display.queue = {...display.queue, service_day: "2000-01-01"};
        }"""
    )
    await page.wait_for_function("window.hallhub.display.queue.service_day !== '2000-01-01'")
    await expect(page.locator("#latest-number")).to_have_text("B001")  # B099 was never real

    # Spoken: each live call once, in order; the snapshot's A001 and the stale B099 never.
    assert [re.sub(r"^https?://[^/]+", "", url) for url in speech] == [
        speech_of("A002", 1),
        speech_of("A002", 1, "recall"),
        speech_of("B001", 2),
    ]
    assert browser.page_errors == []


async def test_window_display_shows_its_window_staff_honours_ticket_and_queue(
    server: HubServer, api: Api, hall: Hall, browser: BrowserSession
) -> None:
    """Closed, then signed in (name, 工号, 先进个人), serving, paused: each shown in words."""
    page = await browser.new_page()
    await open_live(page, f"{server.base_url}/window/?hall={hall.hall_id}&number=1")
    screen = page.locator("#screen")
    await expect(page.locator("#number")).to_have_text("1")
    await expect(page.locator("#window-name")).to_have_text("社保综合受理")
    await expect(page.locator("#department")).to_have_text(DEPARTMENT)
    await expect(page.locator("#red-flag")).to_be_visible()
    await expect(page.locator("#red-flag")).to_have_text("红旗窗口")
    await expect(page.locator("#services li")).to_have_text(["A社保业务", "B不动产登记"])
    await expect(screen).to_have_attribute("data-status", "closed")
    await expect(page.locator("#state-label")).to_have_text("本窗口暂停服务")
    await expect(page.locator("#staff-name")).to_have_text("—")
    await expect(page.locator("#star-staff")).to_be_hidden()

    await api.window(1, "sign-in")
    await expect(page.locator("#staff-name")).to_have_text("李娜")
    await expect(page.locator("#staff-no")).to_have_text("W001")
    await expect(page.locator("#star-staff")).to_have_text("★先进个人")
    await expect(page.locator("#state-label")).to_have_text("等候叫号")
    await api.issue("A")
    await api.issue("B")
    await api.issue("A")
    await expect(page.locator("#queue-length")).to_have_text("3")
    assert await api.call(1) == "A001"
    await expect(page.locator("#state-label")).to_have_text("正在办理")
    await expect(page.locator("#current")).to_have_text("A001")
    await expect(page.locator("#queue-length")).to_have_text("2")
    await settled(page)
    await browser.screenshot(page, "screens-window-display")

    await api.window(1, "pause")
    await expect(screen).to_have_attribute("data-status", "paused")
    await expect(page.locator("#state-label")).to_have_text("暂停办理")
    # Reconfigured (queue_configured replaces the whole state): now B only, where B001 waits.
    await api.serve(1, "B")
    await expect(page.locator("#services li")).to_have_text(["B不动产登记"])
    await expect(page.locator("#queue-length")).to_have_text("1")

    # Window 3 by its id, closed: its staff is not shown, nor window 1's honours.
    other = await browser.new_page()
    await open_live(
        other, f"{server.base_url}/window/?hall={hall.hall_id}&window={hall.windows[2]}"
    )
    await expect(other.locator("#number")).to_have_text("3")
    await expect(other.locator("#state-label")).to_have_text("本窗口暂停服务")
    await expect(other.locator("#red-flag")).to_be_hidden()
    await expect(other.locator("#services li")).to_have_text(["A社保业务"])
    await expect(other.locator("#queue-length")).to_have_text("1")  # A002 waits for A
    await settled(other)
    await browser.screenshot(other, "screens-window-display-closed")
    assert browser.page_errors == []


async def test_kiosk_issues_a_ticket_with_its_qr_and_the_ticket_page_follows_it_to_the_call(
    db: asyncpg.Pool, server: HubServer, api: Api, hall: Hall, browser: BrowserSession
) -> None:
    """The kiosk refuses a bad document and a document over its limit in words, issues by a
    click and shows number, QR and position; the citizen's page counts down to the call; an
    appointment is checked in by its code."""
    await api.window(1, "sign-in")
    for _ in range(3):
        await api.issue("A")
    document = resident_id("11010519491231002")
    await api.issue("A", device=hall.kiosk, id_document={"kind": "resident_id", "number": document})

    kiosk = await browser.new_page()
    await open_live(
        kiosk, f"{server.base_url}/kiosk/?hall={hall.hall_id}&device_token={hall.kiosk}"
    )
    assert "device_token" not in kiosk.url  # kept in localStorage, not on screen
    buttons = kiosk.locator("#groups button.group")
    await expect(buttons).to_have_count(2)  # C is inactive
    button_a = kiosk.locator('#groups button[data-prefix="A"]')
    await expect(button_a.locator(".waiting")).to_have_text("等候 4 人")
    await expect(kiosk.locator("#green")).to_be_visible()  # a device may issue green-channel

    await kiosk.locator("#use-id").click()
    await kiosk.locator("#id-number").fill(document[:-1] + ("0" if document[-1] != "0" else "1"))
    await button_a.click()
    await expect(kiosk.locator("#error")).to_have_text(
        "证件号码有误，请核对证件类型和号码后重新输入"
    )
    await kiosk.locator("#id-number").fill("")
    for key in document:
        await kiosk.locator(f'#keypad button[data-key="{key}"]').click()
    await expect(kiosk.locator("#id-number")).to_have_value(document)
    await button_a.click()
    await expect(kiosk.locator("#error")).to_have_text(
        "该证件今日取号次数已达上限，如有疑问请咨询工作人员"
    )
    await browser.screenshot(kiosk, "screens-kiosk-start")
    await kiosk.locator("#use-id").click()  # without a document
    await button_a.click()

    await expect(kiosk.locator("#result")).to_be_visible()
    await expect(kiosk.locator("#result-number")).to_have_text("A005")
    await expect(kiosk.locator("#result-group")).to_have_text("社保业务")
    await expect(kiosk.locator("#result-ahead")).to_have_text("前面还有 4 人")
    await expect(kiosk.locator("#result-estimate")).to_have_text("预计等待约 20 分钟")
    token = await kiosk.locator("#result").get_attribute("data-token")
    assert token
    await expect(kiosk.locator("#result-qr")).to_have_attribute(
        "src", f"/api/tickets/{token}/qr.svg"
    )
    await kiosk.wait_for_function(
        "document.getElementById('result-qr').complete"
        " && document.getElementById('result-qr').naturalWidth > 0"
    )
    await expect(kiosk.locator("#id-number")).to_have_value("")  # the document left the screen
    await settled(kiosk)
    await browser.screenshot(kiosk, "screens-kiosk-ticket")
    await kiosk.locator("#done").click()
    await expect(kiosk.locator("#start")).to_be_visible()
    await expect(button_a.locator(".waiting")).to_have_text("等候 5 人")

    phone = await browser.new_page(**PHONE)
    await phone.goto(f"{server.base_url}/ticket/?t={token}")
    await expect(phone.locator("#number")).to_have_text("A005")
    await expect(phone.locator("body")).to_have_attribute("data-link", "live", timeout=10_000)
    await expect(phone.locator("#hall-name")).to_have_text(HALL_NAME)
    await expect(phone.locator("#group-name")).to_have_text("社保业务")
    await expect(phone.locator("#status")).to_have_text("排队中")
    await expect(phone.locator("#ahead")).to_have_text("前面还有 4 人")
    await expect(phone.locator("#estimate")).to_have_text("预计等待约 20 分钟")
    await expect(phone.locator("#near")).to_be_hidden()

    assert await api.call(1) == "A001"
    await expect(phone.locator("#ahead")).to_have_text("前面还有 3 人")
    await expect(phone.locator("#near")).to_have_text("快到您了，请回到大厅留意叫号")
    await settled(phone)
    await browser.screenshot(phone, "screens-ticket-waiting")
    for expected_ahead in ("前面还有 2 人", "前面还有 1 人", "下一位就是您"):
        await api.window(1, "finish")
        await api.call(1)
        await expect(phone.locator("#ahead")).to_have_text(expected_ahead)
    await expect(phone.locator("#called")).to_be_hidden()
    await api.window(1, "finish")
    assert await api.call(1) == "A005"
    await expect(phone.locator("#called")).to_be_visible()
    await expect(phone.locator("#called .called-text")).to_have_text("请到 1 号窗口办理")
    await expect(phone.locator("#status")).to_have_text("已叫号")
    await expect(phone.locator("#near")).to_be_hidden()
    await settled(phone)
    await browser.screenshot(phone, "screens-ticket-called")

    await api.window(1, "finish")
    await expect(phone.locator("#status")).to_have_text("已办结")
    await expect(phone.locator("#called")).to_be_hidden()
    await expect(phone.locator("#hint")).to_have_text("本号票已结束，页面不再更新。")

    # An appointment (O2) is checked in by its code at the kiosk: its ticket, shown the same.
    await booked_now(db, hall, "B", code="246810")
    await kiosk.locator("#appointment").click()
    await expect(kiosk.locator("#choose")).to_be_hidden()
    await kiosk.locator("#appointment-code").fill("135790")
    await kiosk.locator("#check-in").click()
    await expect(kiosk.locator("#error")).to_have_text("未找到该预约，请核对预约码")
    await kiosk.locator("#appointment-code").fill("")
    for key in "246810":
        await kiosk.locator(f'#code-keypad button[data-key="{key}"]').click()
    await kiosk.locator("#check-in").click()
    await expect(kiosk.locator("#result-number")).to_have_text("B001")
    await expect(kiosk.locator("#result-ahead")).to_have_text("前面没有人等候")
    await kiosk.locator("#done").click()
    await expect(kiosk.locator("#choose")).to_be_visible()
    await expect(kiosk.locator('#groups button[data-prefix="B"] .waiting')).to_have_text(
        "等候 1 人"
    )
    assert browser.page_errors == []


async def test_after_a_hub_restart_every_screen_shows_the_current_state_without_reload(
    server: HubServer, api: Api, hall: Hall, browser: BrowserSession
) -> None:
    """The hub stops: "重新连接中…" on every screen. It starts again, and changes are made
    while the screens cannot reach it yet; once they can, each shows them, same document."""
    await api.window(1, "sign-in")
    await api.issue("A")
    mine = await api.issue("A")
    base = server.base_url
    display = await browser.new_page()
    await open_live(display, f"{base}/hall/?hall={hall.hall_id}")
    window = await browser.new_page()
    await open_live(window, f"{base}/window/?hall={hall.hall_id}&number=1")
    phone = await browser.new_page(**PHONE)
    await open_live(phone, f"{base}/ticket/?t={mine['token']}")
    await expect(phone.locator("#ahead")).to_have_text("前面还有 1 人")
    pages = [display, window, phone]

    # Until the test opens the gate, no page can find the gateway again: their requests for
    # it wait (one attempt each, so that their backoff stays short; a request that times out
    # meanwhile is simply retried by the page).
    gate = asyncio.Event()

    async def held(route: Route, request: Request) -> None:
        await gate.wait()
        with contextlib.suppress(Error):
            await route.continue_()

    for page in pages:
        await page.route("**/api/realtime", held)
    await server.stop()
    for page in pages:
        await expect(page.locator(BANNER)).to_have_text(RECONNECTING)
    await server.start()
    assert await api.call(1) == "A001"
    await api.issue("B")
    await expect(display.locator("#latest")).to_have_attribute("data-empty", "")  # stale
    await browser.screenshot(display, "screens-hall-display-reconnecting")

    gate.set()
    for page in pages:
        await settled(page)
    await expect(display.locator("#latest-number")).to_have_text("A001")
    await expect(group_row(display, "B").locator(".count")).to_have_text("1人")
    await expect(window.locator("#current")).to_have_text("A001")
    await expect(window.locator("#queue-length")).to_have_text("2")
    await expect(phone.locator("#ahead")).to_have_text("下一位就是您")
    await expect(phone.locator("#near")).to_be_visible()
    await browser.screenshot(display, "screens-hall-display-reconnected")
    for page in pages:
        assert await page.evaluate("window.__sameDocument") is True
    assert browser.page_errors == []


# --- the displays as registered devices ------------------------------------------------------


@pytest.fixture
async def presence(server: HubServer, hall: Hall) -> AsyncIterator[PeerClient]:
    """The hall manager's watch on presence:<hall>, as the device page follows it."""
    async with PeerClient(
        server.gateway_url, "console", token=hall.manager, topics=[f"presence:{hall.hall_id}"]
    ) as watcher:
        await asyncio.wait_for(watcher.wait_live(), DEVICE_WAIT_S)
        yield watcher


async def presence_of(watcher: PeerClient, device_id: int, online: bool) -> None:
    """Wait until presence:<hall> says device ``device_id`` is ``online`` (a snapshot's row,
    or peer_online / peer_offline)."""
    peer_id = f"device:{device_id}"
    async with asyncio.timeout(DEVICE_WAIT_S):
        while True:
            update = await watcher.updates.get()
            if isinstance(update, Snapshot):
                peers = {p["peer_id"]: p["online"] for p in update.data["peers"]}
                if peers.get(peer_id) is online:
                    return
            elif (
                isinstance(update, Event)
                and update.name == ("peer_online" if online else "peer_offline")
                and update.data["peer_id"] == peer_id
            ):
                return


async def listed(api: Api, device_id: int) -> dict[str, Any]:
    """The device's row on the manager's device page (GET /api/halls/{id}/devices)."""
    response = await api.http.get(
        f"/api/halls/{api.hall.hall_id}/devices",
        headers={"Authorization": f"Bearer {api.hall.manager}"},
    )
    assert response.status_code == 200, response.text
    rows: dict[int, dict[str, Any]] = {row["id"]: row for row in response.json()}
    return rows[device_id]


async def bind_window(api: Api, device_id: int, number: int | None) -> None:
    """The hall manager binds a device to window ``number`` (None: unbinds)."""
    window_id = None if number is None else api.hall.windows[number - 1]
    response = await api.http.patch(
        f"/api/devices/{device_id}",
        json={"window_id": window_id},
        headers={"Authorization": f"Bearer {api.hall.manager}"},
    )
    assert response.status_code == 200, response.text


async def test_the_hall_display_runs_as_its_device_online_until_closed(
    db: asyncpg.Pool,
    server: HubServer,
    api: Api,
    hall: Hall,
    browser: BrowserSession,
    presence: PeerClient,
) -> None:
    """Opened with a hall_display token: the token leaves the address bar for its own key in
    localStorage, the page says hello as the device (online in presence and on the device
    page) and shows the hall as before; closed, the device is offline."""
    device_id, token = await make_device(db, hall.hall_id, "hall_display", "大厅综合屏")
    await api.window(1, "sign-in")
    await api.issue("A")
    assert await api.call(1) == "A001"

    page = await browser.new_page()
    await open_live(page, f"{server.base_url}/hall/?hall={hall.hall_id}&device_token={token}")
    assert "device_token" not in page.url
    stored = "localStorage.getItem('hallhub.hall_display.device_token')"
    assert await page.evaluate(stored) == token
    assert await page.evaluate("localStorage.getItem('hallhub.device_token')") is None
    await expect(page.locator("body")).to_have_attribute("data-device-id", str(device_id))
    await expect(page.locator("body")).to_have_attribute("data-device", "linked")
    await presence_of(presence, device_id, online=True)
    row = await listed(api, device_id)
    assert row["online"] is True
    assert row["kind"] == "hall_display"
    await expect(page.locator("#hall-name")).to_have_text(HALL_NAME)
    await expect(page.locator("#latest-number")).to_have_text("A001")
    await expect(page.locator("#device-notice")).to_be_hidden()
    await api.issue("B")
    await expect(group_row(page, "B").locator(".count")).to_have_text("1人")

    # A reload (the wall PC restarting) finds the kept token: the device again.
    await page.goto(f"{server.base_url}/hall/?hall={hall.hall_id}")
    await expect(page.locator("body")).to_have_attribute(
        "data-device-id", str(device_id), timeout=DEVICE_WAIT_S * 1000
    )
    await expect(page.locator("body")).to_have_attribute("data-link", "live")
    await presence_of(presence, device_id, online=True)
    assert (await listed(api, device_id))["online"] is True

    await page.context.close()
    await presence_of(presence, device_id, online=False)
    assert (await listed(api, device_id))["online"] is False
    assert browser.page_errors == []


async def test_a_window_display_runs_as_its_device_and_shows_the_window_it_is_bound_to(
    db: asyncpg.Pool,
    server: HubServer,
    api: Api,
    hall: Hall,
    browser: BrowserSession,
    presence: PeerClient,
) -> None:
    """Opened with a window_display token bound to window 2 and no window in the address: the
    device (online in presence and on the device page) shows window 2, follows a new binding
    to window 3 and says when it has none; a window in the address comes first. Closed, the
    device is offline."""
    device_id, token = await make_device(db, hall.hall_id, "window_display", "2号窗口显示屏")
    await bind_window(api, device_id, 2)
    await api.window(2, "sign-in")

    page = await browser.new_page()
    await open_live(page, f"{server.base_url}/window/?hall={hall.hall_id}&device_token={token}")
    assert "device_token" not in page.url
    stored = "localStorage.getItem('hallhub.window_display.device_token')"
    assert await page.evaluate(stored) == token
    await expect(page.locator("body")).to_have_attribute("data-device-id", str(device_id))
    await presence_of(presence, device_id, online=True)
    row = await listed(api, device_id)
    assert row["online"] is True
    assert row["window_number"] == 2
    screen = page.locator("#screen")
    await expect(screen).to_have_attribute("data-window-id", str(hall.windows[1]))
    await expect(page.locator("#number")).to_have_text("2")
    await expect(page.locator("#staff-name")).to_have_text("王磊")
    await expect(page.locator("#services li")).to_have_text(["B不动产登记"])
    await expect(page.locator("#notice")).to_be_hidden()
    await expect(page.locator("#device-notice")).to_be_hidden()
    await api.issue("B")
    assert await api.call(2) == "B001"
    await expect(page.locator("#current")).to_have_text("B001")
    await settled(page)
    await browser.screenshot(page, "screens-window-display-device")

    # Rebound to window 3 (device_changed on its own topic): the screen follows, same link.
    await bind_window(api, device_id, 3)
    await expect(screen).to_have_attribute("data-window-id", str(hall.windows[2]))
    await expect(page.locator("#number")).to_have_text("3")
    await expect(page.locator("#services li")).to_have_text(["A社保业务"])
    await bind_window(api, device_id, None)
    await expect(page.locator("#notice")).to_contain_text("本显示屏尚未绑定窗口")
    await page.wait_for_function("!document.getElementById('screen').dataset.windowId")

    # A window in the address comes before the binding; the kept token links it still.
    await bind_window(api, device_id, 2)
    await page.goto(f"{server.base_url}/window/?hall={hall.hall_id}&number=1")
    await expect(page.locator("body")).to_have_attribute(
        "data-device-id", str(device_id), timeout=DEVICE_WAIT_S * 1000
    )
    await expect(page.locator("#number")).to_have_text("1")
    await expect(page.locator("#window-name")).to_have_text("社保综合受理")
    await presence_of(presence, device_id, online=True)

    await page.context.close()
    await presence_of(presence, device_id, online=False)
    assert (await listed(api, device_id))["online"] is False
    assert browser.page_errors == []


async def test_a_refused_device_token_leaves_the_screens_public_with_a_notice_for_the_admin(
    db: asyncpg.Pool,
    server: HubServer,
    api: Api,
    hall: Hall,
    browser: BrowserSession,
) -> None:
    """A revoked hall_display token: the hall display is the public one, with a small notice
    (zh-CN) for the IT admin; a hall_display token on a window display (another kind's): the
    window in public, its notice names the kind; no page error either way."""
    revoked_id, revoked = await make_device(db, hall.hall_id, "hall_display", "旧综合屏")
    response = await api.http.post(
        f"/api/devices/{revoked_id}/revoke", headers={"Authorization": f"Bearer {hall.manager}"}
    )
    assert response.status_code == 200, response.text
    await api.window(1, "sign-in")
    await api.issue("A")
    assert await api.call(1) == "A001"

    display = await browser.new_page()
    await display.goto(f"{server.base_url}/hall/?hall={hall.hall_id}&device_token={revoked}")
    notice = display.locator("#device-notice")
    await expect(notice).to_be_visible(timeout=DEVICE_WAIT_S * 1000)
    await expect(notice).to_have_text(
        "设备凭证无效或已停用；本屏以公开方式显示，请管理员重新登记本综合屏"
    )
    await expect(display.locator("body")).to_have_attribute("data-device", "refused")
    await expect(display.locator("body")).to_have_attribute("data-link", "live")
    assert "device_token" not in display.url
    await expect(display.locator("#hall-name")).to_have_text(HALL_NAME)
    await expect(display.locator("#latest-number")).to_have_text("A001")
    await expect(group_row(display, "A").locator(".count")).to_have_text("0人")
    await api.issue("A")  # and it stays live
    await expect(group_row(display, "A").locator(".count")).to_have_text("1人")
    assert await display.evaluate("document.body.dataset.deviceId") is None
    await settled(display)
    await browser.screenshot(display, "screens-hall-display-refused-token")

    _, hall_token = await make_device(db, hall.hall_id, "hall_display", "大厅综合屏")
    window = await browser.new_page()
    await window.goto(
        f"{server.base_url}/window/?hall={hall.hall_id}&number=1&device_token={hall_token}"
    )
    notice = window.locator("#device-notice")
    await expect(notice).to_be_visible(timeout=DEVICE_WAIT_S * 1000)
    await expect(notice).to_have_text(
        "设备凭证属于“综合屏”，不能用于窗口显示屏；本屏以公开方式显示，请管理员核对设备登记"
    )
    await expect(window.locator("body")).to_have_attribute("data-link", "live")
    await expect(window.locator("#number")).to_have_text("1")
    await expect(window.locator("#staff-name")).to_have_text("李娜")
    await expect(window.locator("#current")).to_have_text("A001")
    await expect(window.locator("#notice")).to_be_hidden()
    for page in (display, window):  # words for the admin, nothing of the refusal itself
        text = await page.locator("body").inner_text()
        assert "Error" not in text and "4401" not in text and "token" not in text
    assert browser.page_errors == []
