"""The staff console (frontend/staff) and the hall manager console (frontend/manage) in
headless Chromium against the real hub (tests/e2e/hubserver.py: HTTP, gateway, PostgreSQL in
this process). Staff sign in with their staff number and password as at a counter; tickets
come from the QueueService as a kiosk issues them; assertions wait on the page or on a real
subscriber of ``hall:<id>``, never on a sleep."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Page, expect

from hub.domain.identity import check_character
from hub.services import auth
from hub.services import staff as staff_service
from hub.services.queue import IdDocumentIn, QueueService, TicketRequest
from realtime.messages import Event, Snapshot
from tests.e2e.browser import BrowserSession, chromium
from tests.e2e.hubserver import HubServer, server_settings
from tests.factories import make_hall
from tests.hub.conftest import SYSTEM
from tests.hub.queue.world import add_group, serve
from tests.realtime.peers import Peer

pytestmark = pytest.mark.e2e

PASSWORD = "counter-pass-1"
HALL_NAME = "滨江区政务服务中心"
WAIT_MS = 10_000


@dataclass(frozen=True)
class Hall:
    hall_id: int
    windows: list[int]
    groups: dict[str, int]
    manager_token: str


@pytest.fixture
async def hall(db: asyncpg.Pool) -> Hall:
    """Two windows serving A then B, a window staff member (W01, password PASSWORD) and a
    hall manager with a session; tickets are issued around the clock."""
    place = await make_hall(db, code="con", windows=2)
    await db.execute(
        "UPDATE hall SET name = $2, opens_minute = 0, closes_minute = 1440 WHERE id = $1",
        place.hall_id,
        HALL_NAME,
    )
    await db.execute('UPDATE "window" SET name = $2 WHERE id = $1', place.window_ids[0], "社保综合")
    groups = {
        "A": await add_group(db, place.hall_id, "A", "社保业务"),
        "B": await add_group(db, place.hall_id, "B", "不动产登记"),
    }
    for window in place.window_ids:
        await serve(db, window, groups["A"], groups["B"])
    for staff_no, name, role in (("W01", "陈静", "window_staff"), ("M01", "王芳", "hall_manager")):
        member = await staff_service.create_staff(
            db,
            SYSTEM,
            staff_service.StaffNew(
                staff_no=staff_no, name=name, password=PASSWORD, hall_id=place.hall_id
            ),
        )
        await staff_service.create_grant(
            db,
            SYSTEM,
            staff_service.GrantNew(
                staff_id=member.id, role=role, scope_kind="hall", scope_id=place.hall_id
            ),
        )
    manager = await auth.sign_in(db, "M01", PASSWORD, hours=1)
    return Hall(place.hall_id, place.window_ids, groups, manager.token)


@pytest.fixture
async def server(db: asyncpg.Pool, database_url: str) -> AsyncIterator[HubServer]:
    async with HubServer(server_settings(database_url)) as running:
        yield running


@pytest.fixture
async def browser(artifacts_dir: str) -> AsyncIterator[BrowserSession]:
    async with chromium(Path(artifacts_dir)) as session:
        yield session


def _queue(server: HubServer) -> QueueService:
    queue = server.running_hub().queue
    assert queue is not None
    return queue


async def _issue(server: HubServer, hall: Hall, prefix: str, **body: object) -> str:
    issued = await _queue(server).issue(
        hall.hall_id,
        TicketRequest(group_id=hall.groups[prefix], **body),  # type: ignore[arg-type]
        source="kiosk",
        caller="device",
    )
    return issued.ticket.number


def _resident_id(first17: str = "11010519491231002") -> str:
    return first17 + check_character(first17)


async def test_the_staff_console_signs_in_and_calls_by_click_and_by_keyboard(
    server: HubServer, hall: Hall, browser: BrowserSession
) -> None:
    """Sign in with staff number and password, open window 1 from the address, call the
    first ticket with the 叫号 button (masked applicant shown), finish with F, call the next
    with Space and F1; a ticket issued meanwhile joins the queue live; an action the window's
    state refuses shows the problem in words."""
    first = await _issue(
        server, hall, "A", id_document=IdDocumentIn(kind="resident_id", number=_resident_id()),
        name="张伟",
    )  # fmt: skip
    second = await _issue(server, hall, "B")
    page = await browser.new_page(1600, 900)
    await page.goto(f"{server.base_url}/staff/?hall={hall.hall_id}&window={hall.windows[0]}")

    await page.fill("#signin-staff-no", "W01")
    await page.fill("#signin-password", "wrong password")
    await page.click("#signin-form button[type=submit]")
    await expect(page.locator("#signin-form .form-error")).to_have_text("工号或密码错误")
    await page.fill("#signin-password", PASSWORD)
    await page.click("#signin-form button[type=submit]")

    await expect(page.locator("body")).to_have_attribute("data-view", "console", timeout=WAIT_MS)
    await expect(page.locator("body")).to_have_attribute("data-link", "live", timeout=WAIT_MS)
    await expect(page.locator("#window-title")).to_have_text("1号窗口 社保综合")
    await expect(page.locator("#staff-name")).to_have_text("陈静")
    await expect(page.locator("#queue-list li")).to_have_count(2)
    await expect(page.locator("#current-number")).to_have_text("—")

    await page.click("#btn-call")
    await expect(page.locator("#current-number")).to_have_text(first)
    await expect(page.locator("#current-group")).to_have_text("A 社保业务")
    await expect(page.locator("#current-calls")).to_have_text("1 次")
    await expect(page.locator("#current-name")).to_have_text("张*")
    await expect(page.locator("#current-id")).to_contain_text("居民身份证 110")
    assert "张伟" not in await page.locator("#current").inner_text()
    assert _resident_id() not in await page.content()
    await browser.screenshot(page, "staff-console-serving")

    # Live: a ticket taken at the kiosk now joins this window's queue.
    third = await _issue(server, hall, "A")
    await expect(page.locator("#queue-list li")).to_have_count(2)
    await expect(page.locator("#queue-list li").first).to_have_attribute("data-number", third)

    await page.keyboard.press("f")
    await expect(page.locator("#current-number")).to_have_text("—")
    await page.keyboard.press("Space")
    await expect(page.locator("#current-number")).to_have_text(third)  # A before B (rank 1)
    await page.keyboard.press("Enter")
    await expect(page.locator("#current-number")).to_have_text("—")
    await page.keyboard.press("F1")
    await expect(page.locator("#current-number")).to_have_text(second)
    await expect(page.locator("#queue-list li")).to_have_count(0)

    # Hold, then bring it back with its button.
    await page.keyboard.press("h")
    await expect(page.locator("#held-list li")).to_have_count(1)
    await expect(page.locator("#current-number")).to_have_text("—")
    await page.click(f'#held-list li[data-number="{second}"] button')
    await expect(page.locator("#current-number")).to_have_text(second)
    await expect(page.locator("#current-calls")).to_have_text("2 次")

    # Pause: no calls; the refusal is shown in words.
    await page.keyboard.press("f")
    await expect(page.locator("#current-number")).to_have_text("—")
    await page.keyboard.press("p")
    await expect(page.locator("#window-status")).to_have_text("暂停")
    await page.keyboard.press("Space")
    await expect(page.locator("#error")).to_contain_text("窗口未开放")
    await browser.screenshot(page, "staff-console-paused")
    assert browser.page_errors == []


async def test_the_staff_console_transfers_to_another_window(
    server: HubServer, hall: Hall, browser: BrowserSession, db: asyncpg.Pool
) -> None:
    """T opens the transfer dialog; choosing the other open window sends the ticket there."""
    number = await _issue(server, hall, "A")
    other = await auth.sign_in(db, "M01", PASSWORD, hours=1)
    page = await browser.new_page(1600, 900)
    # The manager works window 2 (hall managers may operate windows too).
    response = await page.request.post(
        f"{server.base_url}/api/halls/{hall.hall_id}/windows/{hall.windows[1]}/sign-in",
        headers={"Authorization": f"Bearer {other.token}"},
    )
    assert response.ok, await response.text()
    await page.goto(f"{server.base_url}/staff/?hall={hall.hall_id}")
    await page.fill("#signin-staff-no", "W01")
    await page.fill("#signin-password", PASSWORD)
    await page.click("#signin-form button[type=submit]")
    # No window in the address: choose one; window 2 is taken.
    await expect(page.locator("body")).to_have_attribute("data-view", "choose", timeout=WAIT_MS)
    await expect(page.locator(f'[data-window-id="{hall.windows[1]}"]')).to_be_disabled()
    await page.click(f'[data-window-id="{hall.windows[0]}"]')
    await expect(page.locator("body")).to_have_attribute("data-view", "console")
    await page.click("#btn-call")
    await expect(page.locator("#current-number")).to_have_text(number)
    await page.keyboard.press("t")
    dialog = page.locator("#transfer-dialog")
    await expect(dialog).to_be_visible()
    await dialog.locator(f'[data-window-id="{hall.windows[1]}"]').click()
    await expect(page.locator("#current-number")).to_have_text("—")
    row = await db.fetchrow("SELECT status, target_window_id FROM ticket WHERE number = $1", number)
    assert tuple(row) == ("waiting", hall.windows[1])
    assert browser.page_errors == []


async def _configured(peer: Peer) -> dict[str, Any]:
    """The data of the next queue_configured event: the hall's whole QueueState."""
    while True:
        frame = await peer.recv(timeout=WAIT_MS / 1000)
        if isinstance(frame, Event) and frame.name == "queue_configured":
            return dict(frame.data)


async def _open_manager(page: Page, server: HubServer, hall: Hall) -> None:
    await page.goto(f"{server.base_url}/manage/?hall={hall.hall_id}&token={hall.manager_token}")
    await expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=WAIT_MS)
    await expect(page.locator("body")).to_have_attribute("data-link", "live", timeout=WAIT_MS)


async def test_a_group_created_in_the_manager_console_reaches_the_hall_display(
    server: HubServer, hall: Hall, browser: BrowserSession
) -> None:
    """The new group is announced to a subscriber of hall:<id> and listed on the page; a red
    flag set on a window reaches the display too."""
    page = await browser.new_page(1600, 1000)
    await _open_manager(page, server, hall)
    await expect(page.locator("#hall-name")).to_have_text(HALL_NAME)
    await expect(page.locator("#groups-body tr")).to_have_count(2)
    async with Peer.connect(server.gateway_url) as display:
        await display.hello("hall_display", topics=[{"topic": f"hall:{hall.hall_id}"}])
        assert isinstance(await display.recv(), Snapshot)

        form = page.locator("#group-new")
        await form.locator("[name=prefix]").fill("F")
        await form.locator("[name=name]").fill("公积金")
        await form.locator("[name=daily_quota]").fill("80")
        await form.locator("button[type=submit]").click()
        state = await _configured(display)
        groups = {g["prefix"]: g for g in state["groups"]}
        assert groups["F"]["name"] == "公积金" and groups["F"]["active"] is True
        await expect(page.locator('#groups-body tr[data-prefix="F"] td.name')).to_have_text(
            "公积金"
        )

        flag = page.locator(f'#windows-body tr[data-window-id="{hall.windows[0]}"] button.flag')
        await flag.click()
        state = await _configured(display)
        [window] = [w for w in state["windows"] if w["window_id"] == hall.windows[0]]
        assert window["red_flag"] is True
        await expect(flag).to_have_text("★ 红旗窗口")
    await browser.screenshot(page, "manager-console")
    assert browser.page_errors == []


async def test_the_manager_console_registers_a_device_and_shows_its_token_once(
    server: HubServer, hall: Hall, browser: BrowserSession, db: asyncpg.Pool
) -> None:
    """The dialog shows a token that works for the new device; closed, the token is gone
    from the page."""
    page = await browser.new_page(1600, 1000)
    await _open_manager(page, server, hall)
    form = page.locator("#device-new")
    await form.locator("[name=kind]").select_option("ticket_machine")
    await form.locator("[name=name]").fill("三楼取号机")
    await form.locator("button[type=submit]").click()
    dialog = page.locator("#token-dialog")
    await expect(dialog).to_be_visible()
    await expect(page.locator("#token-device")).to_have_text("三楼取号机")
    token = await page.locator("#token-value").inner_text()
    principal = await auth.device_by_token(db, token)
    assert principal is not None and principal.hall_id == hall.hall_id
    assert principal.device_kind == "ticket_machine"
    await browser.screenshot(page, "manager-console-device-token")
    await dialog.locator("button.primary").click()
    await expect(dialog).to_be_hidden()
    assert token not in await page.content()
    await expect(page.locator("#devices-body tr")).to_have_count(1)
    assert browser.page_errors == []


async def test_the_manager_console_changes_hours_and_marks_a_closure_day(
    server: HubServer, hall: Hall, browser: BrowserSession, db: asyncpg.Pool
) -> None:
    """Hours are saved as hall-local minutes; a closure day is listed, then removed."""
    page = await browser.new_page(1600, 1000)
    await _open_manager(page, server, hall)
    form = page.locator("#settings-form")
    await expect(form.locator("[name=closes]")).to_have_value("24:00")
    await form.locator("[name=opens]").fill("08:30")
    await form.locator("[name=closes]").fill("17:30")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#ok")).to_have_text("已保存")
    hours = await db.fetchrow(
        "SELECT opens_minute, closes_minute FROM hall WHERE id = $1", hall.hall_id
    )
    assert tuple(hours) == (510, 1050)

    day = await db.fetchval("SELECT (now() + interval '10 days')::date")
    closure = page.locator("#closure-new")
    await closure.locator("[name=day]").fill(day.isoformat())
    await closure.locator("[name=reason]").fill("设备检修")
    await closure.locator("button[type=submit]").click()
    item = page.locator(f'#closures-list li[data-day="{day.isoformat()}"]')
    await expect(item).to_contain_text("设备检修")
    await item.locator("button").click()
    await expect(item).to_have_count(0)
    assert browser.page_errors == []
