"""The device pages of issue 5 in headless Chromium against the real hub (tests/e2e/hubserver.py:
HTTP, gateway, PostgreSQL in this process): the hall manager's device monitor
(frontend/devices), the kiosk's e-ticket mode and ID card reads (frontend/kiosk) and the staff
console's card reads (frontend/staff).

The hardware side is played by real device peers (realtime.client.PeerClient with the devices'
own tokens) sending the contract's device events (printer_status, device_info, card_read …),
as the device agent does. Every wait is on a page condition (Playwright's expect) or on a
frame the hub sends; nothing is ordered by a sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from playwright.async_api import ConsoleMessage, Page, expect

from hub.domain.identity import check_character
from realtime.client import PeerClient
from realtime.messages import Event
from realtime.positions import Backoff
from tests.e2e.browser import BrowserSession, chromium
from tests.e2e.device_pages import WAIT_MS, open_hall
from tests.e2e.device_pages import open_device_monitor as open_monitor
from tests.e2e.device_pages import open_kiosk as open_kiosk_page
from tests.e2e.hubserver import HubServer, server_settings
from tests.factories import make_device, make_staff

pytestmark = pytest.mark.e2e

KIOSK_NAME = "1号自助终端"
# The bound: paper out → alert and e-ticket mode, paper back → both clear.
WITHIN_MS = 2_000
CARD_NAME = "李秀英"
CARD_NUMBER_17 = "44030419850615302"
PAPER_OK = {"online": True, "paper": "ok", "cover_open": False, "error": False}
PAPER_LOW = {"online": True, "paper": "low", "cover_open": False, "error": False}
# Paper end takes an ESC/POS printer offline (DLE EOT 2), and so the contract reports it.
PAPER_OUT = {"online": False, "paper": "out", "cover_open": False, "error": False}


def card_number() -> str:
    return CARD_NUMBER_17 + check_character(CARD_NUMBER_17)


def card(request_id: str) -> dict[str, Any]:
    """A card_read event's data, as the ID reader's agent reports a second-generation card."""
    return {
        "request_id": request_id,
        "card": {
            "name": CARD_NAME,
            "sex": "女",
            "nation": "汉",
            "birth_date": "1985-06-15",
            "address": "广东省深圳市福田区福华一路1号",
            "id_number": card_number(),
            "authority": "深圳市公安局福田分局",
            "valid_from": "2015-03-01",
            "valid_to": None,
        },
    }


@dataclass(frozen=True)
class Device:
    device_id: int
    kind: str
    name: str
    token: str

    @property
    def peer_id(self) -> str:
        return f"device:{self.device_id}"


@dataclass(frozen=True)
class Hall:
    hall_id: int
    windows: list[int]
    group_a: int
    manager: str  # a hall manager's session token
    staff_id: int
    staff: str  # window 1's staff member's session token
    kiosk: Device
    printer: Device
    kiosk_reader: Device  # the ID reader of the kiosk
    code_reader: Device  # the QR code reader of the kiosk
    window_reader: Device  # the ID reader at window 1
    evaluator: Device


@pytest.fixture
async def hall(db: asyncpg.Pool) -> Hall:
    """A hall open around the clock with group A at two windows, a kiosk with a printer and an
    ID reader, an ID reader and an evaluator at window 1, a hall manager and window staff.
    Bindings are made later through the API (:func:`bind`)."""
    place, group_a, manager = await open_hall(db, "dev")
    staff_id, staff = await make_staff(db, "W01", [("window_staff", "hall", place.hall_id)], "陈静")

    async def device(kind: str, name: str) -> Device:
        device_id, token = await make_device(db, place.hall_id, kind, name)
        return Device(device_id, kind, name, token)

    return Hall(
        hall_id=place.hall_id,
        windows=place.window_ids,
        group_a=group_a,
        manager=manager,
        staff_id=staff_id,
        staff=staff,
        kiosk=await device("kiosk", KIOSK_NAME),
        printer=await device("printer", "1号自助终端打印机"),
        kiosk_reader=await device("id_reader", "1号自助终端读卡器"),
        code_reader=await device("code_reader", "1号自助终端扫码器"),
        window_reader=await device("id_reader", "1号窗口读卡器"),
        evaluator=await device("evaluator", "1号窗口评价器"),
    )


@pytest.fixture
async def server(db: asyncpg.Pool, database_url: str) -> AsyncIterator[HubServer]:
    async with HubServer(server_settings(database_url)) as running:
        yield running


@pytest.fixture
async def http(server: HubServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        yield client


@pytest.fixture
async def browser(artifacts_dir: str) -> AsyncIterator[BrowserSession]:
    async with chromium(Path(artifacts_dir)) as session:
        yield session


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    """Device links opened by a test, closed after it even when it fails."""
    async with AsyncExitStack() as links:
        yield links


async def bind(http: httpx.AsyncClient, hall: Hall, device: Device, **binding: int) -> None:
    """``PATCH /api/devices/{id}`` as the hall manager: host_id or window_id."""
    response = await http.patch(
        f"/api/devices/{device.device_id}",
        json=binding,
        headers={"Authorization": f"Bearer {hall.manager}"},
    )
    assert response.status_code == 200, response.text


def device_link(server: HubServer, device: Device, *topics: str) -> PeerClient:
    """A device's link to the gateway, as the agent opens it; it retries fast."""
    return PeerClient(
        server.gateway_url,
        device.kind,
        token=device.token,
        topics=topics,
        backoff=Backoff(0.05, 0.5),
    )


async def connected(stack: AsyncExitStack, link: PeerClient) -> PeerClient:
    client = await stack.enter_async_context(link)
    await asyncio.wait_for(client.wait_live(), 5)
    return client


_keys = count(1)


async def report(peer: PeerClient, name: str, data: dict[str, Any]) -> None:
    """One device event with a fresh idempotency key, as the agent numbers them."""
    await peer.send_device_event(f"test-{next(_keys)}", name, data)


async def next_event(peer: PeerClient, name: str) -> Event:
    """The next event ``name`` the hub sends the device (other updates are skipped)."""
    async with asyncio.timeout(WAIT_MS / 1000):
        while True:
            update = await peer.updates.get()
            if isinstance(update, Event) and update.name == name:
                return update


async def open_device_monitor(page: Page, server: HubServer, hall: Hall) -> None:
    await open_monitor(page, server.base_url, hall.hall_id, hall.manager)


async def open_kiosk(page: Page, server: HubServer, hall: Hall) -> None:
    await open_kiosk_page(
        page, server.base_url, hall.hall_id, hall.kiosk.token, hall.kiosk.device_id
    )
    await expect(page.locator("body")).to_have_attribute("data-e-ticket", "true", timeout=WAIT_MS)


def device_row(page: Page, device: Device) -> Any:
    return page.locator(f'#devices tr[data-device-id="{device.device_id}"]')


def alert_item(page: Page, device: Device, code: str) -> Any:
    return page.locator(f'#alerts li[data-device-id="{device.device_id}"][data-code="{code}"]')


def console_log(page: Page) -> list[str]:
    """Every console message of ``page`` from now on (personal data must never be in it)."""
    messages: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        messages.append(message.text)

    page.on("console", keep)
    return messages


async def test_paper_out_raises_an_alert_on_the_device_monitor_and_e_ticket_mode_on_the_kiosk(
    server: HubServer,
    http: httpx.AsyncClient,
    hall: Hall,
    browser: BrowserSession,
    stack: AsyncExitStack,
) -> None:
    """The printer of the kiosk reports paper out: within 2 s the manager's device page shows
    a critical alert and the kiosk switches to e-ticket mode (a ticket issued now is its QR);
    paper back: both clear within 2 s. Paper low is a warning and keeps printing."""
    await bind(http, hall, hall.printer, host_id=hall.kiosk.device_id)
    monitor = await browser.new_page(1600, 1000)
    await open_device_monitor(monitor, server, hall)
    kiosk = await browser.new_page()
    await open_kiosk(kiosk, server, hall)  # no printer online yet: e-ticket mode
    await expect(kiosk.locator("#e-ticket-banner")).to_be_visible()

    printer = await connected(stack, device_link(server, hall.printer, hall.printer.peer_id))
    await report(printer, "device_info", {"model": "TM-T82III", "firmware": "1.03", "parts": []})
    await report(printer, "printer_status", PAPER_OK)
    row = device_row(monitor, hall.printer)
    await expect(row).to_have_attribute("data-status", "online")
    await expect(row.locator(".paper")).to_have_text("充足")
    await expect(row.locator(".model")).to_have_text("TM-T82III / 1.03")
    await expect(row.locator(".binding")).to_have_text(f"自助服务终端 {KIOSK_NAME}")
    await expect(kiosk.locator("body")).to_have_attribute("data-e-ticket", "false")
    await expect(kiosk.locator("#e-ticket-banner")).to_be_hidden()
    await expect(monitor.locator("#no-alerts")).to_be_visible()

    # Paper low: a warning; the kiosk still prints.
    await report(printer, "printer_status", PAPER_LOW)
    low = alert_item(monitor, hall.printer, "paper_low")
    await expect(low).to_have_attribute("data-level", "warning")
    await expect(low.locator(".alert-message")).to_have_text(f"{KIOSK_NAME}打印纸将尽")
    await expect(row.locator(".paper")).to_have_text("将尽")
    await expect(kiosk.locator("body")).to_have_attribute("data-e-ticket", "false")

    # Paper out: critical alert and e-ticket mode, both within 2 s.
    started = time.monotonic()
    await report(printer, "printer_status", PAPER_OUT)
    out = alert_item(monitor, hall.printer, "paper_out")
    await expect(out).to_have_attribute("data-level", "critical", timeout=WITHIN_MS)
    await expect(kiosk.locator("#e-ticket-banner")).to_be_visible(timeout=WITHIN_MS)
    elapsed = time.monotonic() - started
    assert elapsed < WITHIN_MS / 1000, elapsed
    await expect(kiosk.locator("#e-ticket-title")).to_have_text("打印纸不足，请扫码保存电子票")
    await expect(low).to_have_count(0)
    await expect(out.locator(".alert-level")).to_have_text("严重")
    await expect(out.locator(".alert-since")).to_contain_text("已持续")
    await expect(row.locator(".paper")).to_have_text("缺纸")
    await expect(monitor.locator("#count-critical")).to_have_text("1")
    await browser.screenshot(monitor, "devices-monitor-paper-out")
    await browser.screenshot(kiosk, "devices-kiosk-e-ticket-mode")

    # A ticket issued now is an e-ticket: its QR, said so.
    await kiosk.locator("#groups button.group").first.click()
    await expect(kiosk.locator("#result")).to_have_attribute("data-print", "e_ticket")
    await expect(kiosk.locator("#result-title")).to_have_text("电子号票")
    await expect(kiosk.locator("#result-print")).to_contain_text("请用手机扫码保存电子票")
    await kiosk.wait_for_function(
        "document.getElementById('result-qr').complete"
        " && document.getElementById('result-qr').naturalWidth > 0"
    )
    await browser.screenshot(kiosk, "devices-kiosk-e-ticket")
    await kiosk.locator("#done").click()

    # Paper back: both clear within 2 s.
    started = time.monotonic()
    await report(printer, "printer_status", PAPER_OK)
    await expect(out).to_have_count(0, timeout=WITHIN_MS)
    await expect(kiosk.locator("#e-ticket-banner")).to_be_hidden(timeout=WITHIN_MS)
    elapsed = time.monotonic() - started
    assert elapsed < WITHIN_MS / 1000, elapsed
    await expect(monitor.locator("#no-alerts")).to_be_visible()
    await expect(row.locator(".paper")).to_have_text("充足")

    # And a ticket is printed again: the print job reaches the printer.
    await kiosk.locator("#groups button.group").first.click()
    await expect(kiosk.locator("#result")).to_have_attribute("data-print", "queued")
    await expect(kiosk.locator("#result-print")).to_have_text("正在打印号票，请取走号票")
    job = await next_event(printer, "print_ticket")
    assert job.data["ticket"]["number"] == await kiosk.locator("#result-number").inner_text()

    # The print fails after all (the cover was opened mid-print): the ticket on the screen
    # becomes its e-ticket, and the printer's error count goes up on the device page.
    await report(
        printer,
        "print_failed",
        {"job": job.data["job"], "ticket_id": job.data["ticket_id"], "reason": "cover_open"},
    )
    await expect(kiosk.locator("#result")).to_have_attribute("data-print", "e_ticket")
    await expect(kiosk.locator("#result-print")).to_have_text(
        "打印机上盖未关好，未能打印号票，请用手机扫码保存电子票"
    )
    await expect(row.locator(".errors")).to_have_text("1")
    # Not on screen any more: a failed print brings its ticket back as an e-ticket.
    await kiosk.locator("#done").click()
    await kiosk.locator("#groups button.group").first.click()
    await expect(kiosk.locator("#result")).to_have_attribute("data-print", "queued")
    job = await next_event(printer, "print_ticket")
    await kiosk.locator("#done").click()
    await expect(kiosk.locator("#start")).to_be_visible()
    await report(
        printer,
        "print_failed",
        {"job": job.data["job"], "ticket_id": job.data["ticket_id"], "reason": "paper_out"},
    )
    await expect(kiosk.locator("#result")).to_have_attribute("data-print", "e_ticket")
    await expect(kiosk.locator("#result-number")).to_have_text(job.data["ticket"]["number"])
    await expect(kiosk.locator("#result-print")).to_have_text(
        "打印纸用完，未能打印号票，请用手机扫码保存电子票"
    )
    await expect(row.locator(".errors")).to_have_text("2")
    assert browser.page_errors == []


async def test_the_device_monitor_shows_a_device_going_offline_and_coming_back(
    server: HubServer,
    http: httpx.AsyncClient,
    hall: Hall,
    browser: BrowserSession,
    stack: AsyncExitStack,
) -> None:
    """An evaluator bound to window 1 connects (online, its heartbeat), leaves (offline and a
    critical device_offline alert) and reconnects (online, the alert cleared)."""
    await bind(http, hall, hall.evaluator, window_id=hall.windows[0])
    page = await browser.new_page(1600, 1000)
    await open_device_monitor(page, server, hall)
    row = device_row(page, hall.evaluator)
    await expect(row).to_have_attribute("data-status", "never")
    await expect(row.locator(".status")).to_have_text("未连接")
    await expect(row.locator(".binding")).to_contain_text("1号窗口")

    evaluator = await connected(stack, device_link(server, hall.evaluator))
    await expect(row).to_have_attribute("data-status", "online")
    await expect(row.locator(".status")).to_have_text("在线")
    await expect(row.locator(".seen")).not_to_have_text("从未")
    await expect(page.locator("#count-online")).to_have_text("1")

    await evaluator.close()
    await expect(row).to_have_attribute("data-status", "offline")
    await expect(row.locator(".status")).to_have_text("离线")
    offline = alert_item(page, hall.evaluator, "device_offline")
    await expect(offline).to_have_attribute("data-level", "critical")
    await expect(offline.locator(".alert-device")).to_have_text(f"评价器 · {hall.evaluator.name}")
    await expect(row).to_have_attribute("data-level", "critical")
    await browser.screenshot(page, "devices-monitor-offline")

    await connected(stack, device_link(server, hall.evaluator))
    await expect(row).to_have_attribute("data-status", "online")
    await expect(offline).to_have_count(0)
    await expect(page.locator("#no-alerts")).to_be_visible()
    assert browser.page_errors == []


async def test_a_manager_binds_a_device_and_sends_it_settings_from_the_device_monitor(
    server: HubServer,
    hall: Hall,
    browser: BrowserSession,
    stack: AsyncExitStack,
) -> None:
    """设置: the printer is attached to the kiosk and given a poll interval and a header; the
    printer's peer receives them as `configure`, and the row shows the binding."""
    printer = await connected(stack, device_link(server, hall.printer, hall.printer.peer_id))
    page = await browser.new_page(1600, 1000)
    await open_device_monitor(page, server, hall)
    row = device_row(page, hall.printer)
    await expect(row.locator(".binding")).to_have_text("未绑定")
    await row.locator("button.edit").click()
    dialog = page.locator("#device-dialog")
    await expect(dialog).to_be_visible()
    await dialog.locator("[name=host_id]").select_option(str(hall.kiosk.device_id))
    await expect(dialog.locator("#window-field")).to_be_hidden()  # a printer has no window
    await dialog.locator('[name="config.poll_seconds"]').fill("3")
    await dialog.locator('[name="config.header"]').fill("欢迎来到滨江区政务服务中心")
    await browser.screenshot(page, "devices-monitor-settings")
    await dialog.locator("button[value=save]").click()
    await expect(page.locator("#ok")).to_have_text("已保存，配置已下发到设备")
    configure = await next_event(printer, "configure")
    assert configure.data["settings"] == {"poll_seconds": 3, "header": "欢迎来到滨江区政务服务中心"}
    await expect(row.locator(".binding")).to_have_text(f"自助服务终端 {KIOSK_NAME}")
    assert browser.page_errors == []


async def test_the_kiosk_fills_the_id_form_from_a_card_read_and_never_logs_it(
    server: HubServer,
    http: httpx.AsyncClient,
    hall: Hall,
    browser: BrowserSession,
    stack: AsyncExitStack,
    db: asyncpg.Pool,
) -> None:
    """读取身份证 asks the kiosk's reader (read_card); the card it reports fills the document
    kind, number and name, nothing of it reaches the console; the ticket is issued with the
    document. A card put on the reader unasked (request_id "") fills the form too."""
    await bind(http, hall, hall.kiosk_reader, host_id=hall.kiosk.device_id)
    reader = await connected(
        stack, device_link(server, hall.kiosk_reader, hall.kiosk_reader.peer_id)
    )
    page = await browser.new_page()
    logged = console_log(page)
    await open_kiosk(page, server, hall)
    await expect(page.locator("#read-card")).to_be_visible()

    await page.locator("#read-card").click()
    await expect(page.locator("#id-entry")).to_be_visible()
    await expect(page.locator("#card-status")).to_have_text("正在读取身份证，请将身份证放在读卡区…")
    request = await next_event(reader, "read_card")
    request_id = request.data["request_id"]
    assert request_id
    await report(reader, "card_read", card(request_id))

    await expect(page.locator("#id-number")).to_have_value(card_number())
    await expect(page.locator("#id-name")).to_have_value(CARD_NAME)
    await expect(page.locator("#id-kind")).to_have_value("resident_id")
    await expect(page.locator("#card-status")).to_have_text("已读取身份证，请选择办理的业务")
    await expect(page.locator("#read-card")).to_be_enabled()
    await browser.screenshot(page, "devices-kiosk-card-read")

    await page.locator("#groups button.group").first.click()
    await expect(page.locator("#result")).to_be_visible()
    await expect(page.locator("#id-number")).to_have_value("")  # left the screen
    await expect(page.locator("#id-name")).to_have_value("")
    number = await page.locator("#result-number").inner_text()
    masked = await db.fetchval("SELECT id_masked FROM ticket WHERE number = $1", number)
    assert masked == card_number()[:3] + "*" * 11 + card_number()[-4:]

    # A card put on the reader without a request.
    await page.locator("#done").click()
    await report(reader, "card_read", card(""))
    await expect(page.locator("#id-number")).to_have_value(card_number())
    await expect(page.locator("#id-name")).to_have_value(CARD_NAME)

    # A read that fails says why in words.
    await page.locator("#read-card").click()
    request = await next_event(reader, "read_card")
    await report(
        reader, "card_read_failed", {"request_id": request.data["request_id"], "reason": "no_card"}
    )
    await expect(page.locator("#card-status")).to_have_text("未检测到身份证，请将身份证放在读卡区")

    everything = "\n".join(logged)
    assert card_number() not in everything and CARD_NAME not in everything
    assert browser.page_errors == []


async def test_the_staff_console_reads_the_card_at_its_window_and_shows_it_masked(
    server: HubServer,
    http: httpx.AsyncClient,
    hall: Hall,
    browser: BrowserSession,
    stack: AsyncExitStack,
) -> None:
    """读身份证 at window 1 asks the window's reader; the card arrives on the staff member's own
    topic and is shown masked (name 李**, number 440***********XXXX), never in full, and
    checked against the document the ticket being served was taken with."""
    await bind(http, hall, hall.window_reader, window_id=hall.windows[0])
    reader = await connected(
        stack, device_link(server, hall.window_reader, hall.window_reader.peer_id)
    )
    issued = await http.post(
        f"/api/halls/{hall.hall_id}/tickets",
        json={
            "group_id": hall.group_a,
            "id_document": {"kind": "resident_id", "number": card_number()},
            "name": CARD_NAME,
        },
        headers={"Authorization": f"Bearer {hall.kiosk.token}"},
    )
    assert issued.status_code == 201, issued.text
    page = await browser.new_page(1600, 900)
    logged = console_log(page)
    await page.goto(
        f"{server.base_url}/staff/?hall={hall.hall_id}&window={hall.windows[0]}&token={hall.staff}"
    )
    await expect(page.locator("body")).to_have_attribute("data-view", "console", timeout=WAIT_MS)
    await expect(page.locator("body")).to_have_attribute("data-link", "live", timeout=WAIT_MS)
    await expect(page.locator("#card-panel")).to_be_visible()
    await page.locator("#btn-call").click()
    await expect(page.locator("#current-number")).to_have_text("A001")

    await page.keyboard.press("i")
    await expect(page.locator("#card-status")).to_have_text("正在读卡，请将身份证放在读卡器上…")
    request = await next_event(reader, "read_card")
    await report(reader, "card_read", card(request.data["request_id"]))
    await expect(page.locator("#card-facts")).to_be_visible()
    await expect(page.locator("#card-name")).to_have_text("李**")
    await expect(page.locator("#card-id")).to_have_text(
        card_number()[:3] + "*" * 11 + card_number()[-4:]
    )
    await expect(page.locator("#card-valid")).to_have_text("2015.03.01–长期")
    await expect(page.locator("#card-match")).to_have_text("与号票登记的证件一致")
    content = await page.content()
    assert card_number() not in content and CARD_NAME not in content
    await browser.screenshot(page, "devices-staff-card-read")

    # The next citizen: the card of the one before leaves the screen.
    await page.locator("#btn-finish").click()
    await expect(page.locator("#current-number")).to_have_text("—")
    await expect(page.locator("#card-facts")).to_be_hidden()
    everything = "\n".join(logged)
    assert card_number() not in everything and CARD_NAME not in everything
    assert browser.page_errors == []


async def book_now(db: asyncpg.Pool, hall: Hall, code: str) -> None:
    """An appointment of group A for the slot starting this minute (hall-local): it can be
    checked in now. Written with SQL: booking refuses a slot that has started."""
    now = datetime.now(ZoneInfo("Asia/Shanghai")).replace(second=0, microsecond=0)
    end = min(now + timedelta(minutes=30), now.replace(hour=23, minute=59, second=59))
    await db.execute(
        """INSERT INTO appointment (hall_id, group_id, service_day, slot_start, slot_end, code,
                                    id_kind, id_key, id_masked, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, 'resident_id', 'key', '110***********0018', now())""",
        hall.hall_id,
        hall.group_a,
        now.date(),
        now.time(),
        end.time(),
        code,
    )


async def test_the_kiosk_checks_in_a_scanned_appointment_and_shows_a_scanned_ticket(
    server: HubServer,
    http: httpx.AsyncClient,
    hall: Hall,
    browser: BrowserSession,
    stack: AsyncExitStack,
    db: asyncpg.Pool,
) -> None:
    """The kiosk's code reader scans an appointment code: checked in, its ticket shown; then the
    QR of that ticket (its page's address): the ticket's status; then something else: said."""
    await bind(http, hall, hall.code_reader, host_id=hall.kiosk.device_id)
    reader = await connected(stack, device_link(server, hall.code_reader))
    await book_now(db, hall, "246810")
    page = await browser.new_page()
    await open_kiosk(page, server, hall)

    await report(reader, "code_scanned", {"text": "246810"})
    await expect(page.locator("#result")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#result-number")).to_have_text("A001")
    token = await page.locator("#result").get_attribute("data-token")
    assert token
    await page.locator("#done").click()

    await report(reader, "code_scanned", {"text": f"{server.base_url}/ticket/?t={token}"})
    await expect(page.locator("#scanned")).to_be_visible()
    await expect(page.locator("#scanned-number")).to_have_text("A001")
    await expect(page.locator("#scanned-status")).to_have_text("排队中")
    await expect(page.locator("#scanned-detail")).to_have_text("下一位就是您")
    await browser.screenshot(page, "devices-kiosk-scanned-ticket")
    await page.locator("#scanned-done").click()

    await report(reader, "code_scanned", {"text": "WIFI:S:hall;T:WPA;P:secret;;"})
    await expect(page.locator("#error")).to_have_text("无法识别该二维码：请出示预约码或号票二维码")
    assert browser.page_errors == []


async def test_a_ticket_machine_token_links_the_kiosk_page_as_the_ticket_machine(
    server: HubServer, hall: Hall, browser: BrowserSession, db: asyncpg.Pool
) -> None:
    """The page says "kiosk" in hello unless told; the hub refuses another kind's token and
    names it, and the page links again as that kind, without a reload."""
    machine_id, token = await make_device(db, hall.hall_id, "ticket_machine", "2号取号机")
    page = await browser.new_page()
    await page.goto(f"{server.base_url}/kiosk/?hall={hall.hall_id}&device_token={token}")
    await expect(page.locator("body")).to_have_attribute(
        "data-device-id", str(machine_id), timeout=WAIT_MS
    )
    await expect(page.locator("body")).to_have_attribute("data-link", "live")
    await expect(page.locator("body")).to_have_attribute("data-e-ticket", "true")
    assert await page.evaluate("localStorage.getItem('hallhub.device_kind')") == "ticket_machine"
    await expect(page.locator("#groups button.group")).to_have_count(1)
    assert browser.page_errors == []
