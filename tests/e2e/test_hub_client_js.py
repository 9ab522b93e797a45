"""The pages' websocket client (frontend/lib/hub-client.js) in headless Chromium, against the
in-test gateway of tests/realtime/test_client.py; the pages come from a plain static server
that also answers ``GET /api/realtime``."""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest
from playwright.async_api import Page

from realtime.client import TopicPositions
from realtime.messages import (
    Event,
    Position,
    Snapshot,
    Subscribe,
    Subscribed,
    TopicState,
    Unsubscribe,
)
from tests.e2e.browser import BrowserSession, chromium
from tests.realtime.test_client import FakeGateway, FakePeer

pytestmark = pytest.mark.e2e

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
TICK = 0.5
HALL = 12
TOPIC = f"presence:{HALL}"
HALL_TOPIC = f"hall:{HALL}"
BANNER = ".conn-banner .conn-title"


# --- static pages --------------------------------------------------------------------------


class _Pages(SimpleHTTPRequestHandler):
    realtime: ClassVar[dict[str, Any]] = {}

    def do_GET(self) -> None:
        if self.path == "/api/realtime":
            body = json.dumps(self.realtime).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output quiet


@contextlib.contextmanager
def static_pages(realtime: dict[str, Any]) -> Iterator[str]:
    """Serve frontend/ on 127.0.0.1:<free port> in a thread; yields the base URL."""
    handler = type("Pages", (_Pages,), {"realtime": realtime})
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(FRONTEND))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def hub() -> AsyncIterator[tuple[FakeGateway, str]]:
    async with FakeGateway() as gateway:
        with static_pages({"gateway_port": gateway.port, "tick_seconds": TICK}) as base:
            yield gateway, base


@pytest.fixture
async def browser() -> AsyncIterator[BrowserSession]:
    async with chromium() as session:
        yield session


# --- presence data -------------------------------------------------------------------------


def peer(peer_id: str, kind: str, label: str, online: bool, ago: float) -> dict[str, Any]:
    now = time.time()
    return {
        "peer_id": peer_id,
        "peer_kind": kind,
        "label": label,
        "online": online,
        "last_seen": now - ago,
        "changed_at": now - 3600,
    }


def first_peers() -> list[dict[str, Any]]:
    """The first snapshot's peers, seen relative to now (when the test runs, not when the
    module was imported: a long run would age them)."""
    return [
        peer("tm-1", "ticket_machine", "1号取号机", True, 2),
        peer("tm-2", "ticket_machine", "2号取号机", True, 4),
        peer("hd-1", "hall_display", "大厅综合屏", True, 3),
        peer("wd-3", "window_display", "3号窗口显示屏", True, 1),
        peer("ev-3", "evaluator", "3号窗口评价器", False, 300),
        peer("ks-1", "kiosk", "自助服务终端 A", True, 2),
        peer("idr-1", "id_reader", "1号身份证读卡器", True, 6),
        peer("ag-1", "agent", "设备代理（一楼）", True, 1),
    ]


def second_peers() -> list[dict[str, Any]]:
    return [
        *[p for p in first_peers() if p["peer_id"] != "ev-3"],
        peer("ev-3", "evaluator", "3号窗口评价器", True, 1),
        peer("sc-3", "scanner", "3号窗口高拍仪", False, 7200),
    ]


def snapshot(epoch: int, seq: int, peers: list[dict[str, Any]]) -> Snapshot:
    return Snapshot(TOPIC, epoch, seq, {"hall_id": HALL, "peers": peers})


async def rows(page: Page) -> list[list[str]]:
    """The table as text, row by row."""
    cells: list[list[str]] = await page.eval_on_selector_all(
        "#peers tr", "trs => trs.map(tr => [...tr.cells].map(td => td.textContent.trim()))"
    )
    return cells


async def wait_rows(page: Page, count: int, within: float = 3.0) -> None:
    await page.wait_for_function(
        f"document.querySelectorAll('#peers tr').length === {count}", timeout=within * 1000
    )


# --- tests ---------------------------------------------------------------------------------


async def test_status_page_follows_presence_through_a_silent_hub(
    hub: tuple[FakeGateway, str], browser: BrowserSession
) -> None:
    """Snapshot in Chinese, live updates, dedupe and gap handling, "重新连接中…" within 3 ticks
    of silence, and convergence on the hub's new snapshot after it comes back."""
    gateway, base = hub
    page = await browser.new_page()
    await page.goto(f"{base}/status/?hall={HALL}&token=t0k")

    first = await gateway.next_peer()
    assert (first.hello.kind, first.hello.token) == ("console", "t0k")
    # The page follows presence, and the hall topic for the hall's name.
    assert first.hello.topics == [Position(TOPIC), Position(HALL_TOPIC)]
    await first.welcome(TopicState(TOPIC, 1, 10, "snapshot"), tick_seconds=TICK)
    await first.send(snapshot(1, 10, first_peers()))
    first.start_ticks(TICK)

    await wait_rows(page, 8)
    table = await rows(page)
    assert table[0][:3] == ["评价器", "3号窗口评价器", "离线"]  # offline first
    assert ["取号机", "1号取号机", "在线"] in [r[:3] for r in table]
    assert {r[0] for r in table} >= {"取号机", "综合屏", "窗口显示屏", "身份证读卡器", "设备代理"}
    assert table[0][3] == "5 分钟前"
    assert await page.text_content("#count-online") == "7"
    assert await page.text_content("#count-total") == "8"
    assert await page.is_hidden(".conn-banner")
    assert "t0k" not in page.url  # the token left the address bar

    # A peer goes offline: its row changes within 1 s.
    offline = {**first_peers()[1], "online": False, "changed_at": time.time()}
    await first.send(Event(TOPIC, 1, 11, time.time(), "peer_offline", offline))
    await page.wait_for_selector('tr[data-peer-id="tm-2"][data-status="offline"]', timeout=1000)
    assert await page.text_content("#count-online") == "6"

    # A repeated seq is dropped; a gap makes the page ask for a snapshot.
    online_again = {**first_peers()[1], "online": True}
    await first.send(Event(TOPIC, 1, 11, time.time(), "peer_online", online_again))
    await first.send(Event(TOPIC, 1, 13, time.time(), "peer_online", online_again))
    assert [await first.recv(), await first.recv()] == [
        Unsubscribe([TOPIC]),
        Subscribe([Position(TOPIC)]),
    ]
    assert await page.get_attribute('tr[data-peer-id="tm-2"]', "data-status") == "offline"
    await first.send(
        Subscribed([TopicState(TOPIC, 1, 13, "snapshot")]),
        snapshot(1, 13, [*first_peers()[:1], offline, *first_peers()[2:]]),
    )
    await first.send(
        Event(
            TOPIC, 1, None, time.time(), "peers_seen", {"seen": {"tm-1": time.time() - 3 * 86400}}
        )
    )
    await page.wait_for_function(
        "document.querySelector('tr[data-peer-id=\"tm-1\"] .seen').textContent.includes('天前')"
    )
    await page.wait_for_function("getComputedStyle(document.querySelector('main')).opacity === '1'")
    await browser.screenshot(page, "status")

    # The hub goes silent (no close): the banner shows within 3 tick periods.
    first.stop_ticks()
    silent_since = await first.ticks_sent.get()
    while not first.ticks_sent.empty():
        silent_since = first.ticks_sent.get_nowait()
    await page.wait_for_selector(f"{BANNER}:text('重新连接中…')", timeout=4 * TICK * 1000)
    assert time.monotonic() - silent_since <= 3 * TICK + 0.5
    await browser.screenshot(page, "status-fake-reconnecting")

    # The page reconnects with its last position; the hub is back with a new epoch.
    async def come_back(peer: FakePeer) -> None:
        await peer.welcome(TopicState(TOPIC, 2, 3, "snapshot"), tick_seconds=TICK)
        await peer.send(snapshot(2, 3, second_peers()))
        peer.start_ticks(TICK)

    second = await gateway.next_peer()
    assert second.hello.topics == [Position(TOPIC, 1, 13), Position(HALL_TOPIC)]
    gateway.responder = come_back  # later attempts, if this one is given up
    await come_back(second)
    await wait_rows(page, 9, within=4 * TICK + 10)
    await page.wait_for_selector(".conn-banner", state="hidden")
    await page.wait_for_function("getComputedStyle(document.querySelector('main')).opacity === '1'")
    table = await rows(page)
    assert table[0][:4] == ["高拍仪", "3号窗口高拍仪", "离线", "2 小时前"]
    assert ["评价器", "3号窗口评价器", "在线"] in [r[:3] for r in table]
    assert await page.text_content("#count-online") == "8"
    await browser.screenshot(page, "status-after")
    assert browser.page_errors == []


async def test_status_page_without_a_hall_says_how_to_open_it(
    hub: tuple[FakeGateway, str], browser: BrowserSession
) -> None:
    """No ?hall=: a notice in Chinese, no connection attempt."""
    _, base = hub
    page = await browser.new_page()
    await page.goto(f"{base}/status/")
    assert "缺少大厅编号" in (await page.text_content("#notice") or "")
    assert await page.is_hidden(".conn-banner")


SCENARIOS: list[list[Any]] = [
    [Snapshot(TOPIC, 1, 5, None), *[Event(TOPIC, 1, s, 0, "x", None) for s in (6, 6, 5, 7)]],
    [Snapshot(TOPIC, 1, 5, None), Event(TOPIC, 1, 8, 0, "x", None), Event(TOPIC, 1, 6, 0, "x", 0)],
    [Snapshot(TOPIC, 1, 5, None), Event(TOPIC, 2, 1, 0, "x", None), Snapshot(TOPIC, 2, 1, 0)],
    [Event(TOPIC, 1, 1, 0, "x", None), Event(TOPIC, 1, None, 0, "x", None)],
    [TopicState(TOPIC, 1, 5, "current"), Event(TOPIC, 1, 6, 0, "x", None)],
    [Snapshot(TOPIC, 1, 5, None), TopicState(TOPIC, 1, 9, "current")],
    [Snapshot(TOPIC, 1, 5, None), Event("hall:99", 1, 6, 0, "x", None)],
]


def python_verdicts(frames: list[Any]) -> list[Any]:
    positions = TopicPositions([TOPIC])
    out: list[Any] = []
    for frame in frames:
        if isinstance(frame, Snapshot):
            out.append(positions.on_snapshot(frame))
        elif isinstance(frame, TopicState):
            out.append(positions.on_topic_state(frame))
        else:
            out.append(positions.on_event(frame).value)
    out.append(msgspec.to_builtins(positions.positions()))
    return out


async def test_js_positions_follow_the_python_rules(
    hub: tuple[FakeGateway, str], browser: BrowserSession
) -> None:
    """hub-client.js and realtime/client.py classify the same frames the same way."""
    _, base = hub
    page = await browser.new_page()
    await page.goto(f"{base}/index.html")
    assert await page.title() == "政务服务大厅 · 实时中心"
    await browser.screenshot(page, "index")
    scenarios = [
        [{"kind": type(f).__name__, **msgspec.to_builtins(f)} for f in frames]
        for frames in SCENARIOS
    ]
    got = await page.evaluate(
        """async ([topic, scenarios]) => {
            const { TopicPositions } = await import("/lib/hub-client.js");
            return scenarios.map((frames) => {
                const positions = new TopicPositions([topic]);
                const out = frames.map((f) =>
                    f.kind === "Snapshot" ? positions.onSnapshot(f)
                    : f.kind === "TopicState" ? positions.onTopicState(f)
                    : positions.onEvent(f));
                out.push(positions.positions());
                return out;
            });
        }""",
        [TOPIC, scenarios],
    )
    assert got == [python_verdicts(frames) for frames in SCENARIOS]
