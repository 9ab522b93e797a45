"""The agent end to end with a real hub, for the devices other than the printer: the pad
prompted by ``rating_requested`` on its window's topic, the LED panel fed by the hall topic,
the ID card and code readers, and the bounded upstream buffer with its dropped counter."""

from __future__ import annotations

from datetime import date

import asyncpg

from devices.agent.config import CodeReaderConfig
from devices.agent.readers import CodeReaderRunner
from devices.simulators.code_reader import open_code_reader
from devices.simulators.evaluator_serial import EvaluatorPadModel
from devices.simulators.evaluator_serial import serve as serve_pad
from devices.simulators.id_reader import IdReaderModel
from devices.simulators.id_reader import serve as serve_reader
from devices.simulators.led_panel import LedPanelModel
from devices.simulators.led_panel import serve as serve_panels
from hub.runtime import Hub
from realtime.topics import topic
from tests.devices.agent.helpers import eventually, fast_backoff, running
from tests.devices.agent.hubside import (
    Hall,
    HubSide,
    agent,
    agent_config,
    emit,
    register,
    subscribed,
)
from tests.devices.samples import CARD
from tests.realtime.peers import gateway_url
from tests.realtime.tcp_proxy import TcpProxy
from tests.support.ptys import pty_pair


def rating_requested(ticket_id: int, window_id: int) -> dict[str, object]:
    return {
        "ticket_id": ticket_id,
        "number": f"A{ticket_id:03d}",
        "window_id": window_id,
        "staff_id": None,
        "window_number": 1,
        "staff_name": "张三",
        "staff_no": "1024",
        "timeout_s": 30,
    }


async def test_a_rating_request_prompts_the_pad_once_and_the_grade_reaches_the_hub(
    db: asyncpg.Pool, hall: Hall, hub: Hub
) -> None:
    """rating_requested on window:<id> shows the prompt on the wired pad; the citizen's
    grade is a rating event keyed rating:<ticket>; the same request delivered again is not
    prompted again."""
    side = HubSide()
    side.install(hub)
    window_id = hall.window_ids[0]
    _, token = await register(db, hall.hall_id, "evaluator", "1号窗口评价器")
    pad = EvaluatorPadModel(auto_grade="very_satisfied", heartbeat_interval=None)
    async with pty_pair() as (host_end, pad_end), running(serve_pad(pad_end, pad)):
        config = agent_config(
            gateway_url(hub),
            {"kind": "evaluator", "token": token, "port": host_end, "window_id": window_id},
        )
        async with agent(config):
            info = await side.next("device_info")
            assert info.data == {"model": "HH-EV5", "firmware": "1.2.0", "parts": ["evaluator"]}
            await subscribed(hub, f"window:{window_id}")
            await emit(
                hub, topic("window", window_id), "rating_requested", rating_requested(7, window_id)
            )
            await emit(
                hub, topic("window", window_id), "rating_requested", rating_requested(7, window_id)
            )
            rating = await side.next("rating")
            assert (rating.key, rating.data) == (
                "rating:7",
                {"ticket_id": 7, "grade": "very_satisfied", "reasons": []},
            )
    assert pad.prompts_seen == 1
    assert pad.prompt is None


async def test_the_panel_shows_its_window_from_the_hall_topic(
    db: asyncpg.Pool, hall: Hall, hub: Hub
) -> None:
    """The LED panel subscribes to hall:<id>; a window_changed event opening its window with
    a ticket called makes the panel show the header, the number and the staff."""
    window_id = hall.window_ids[0]
    _, token = await register(db, hall.hall_id, "window_display", "1号窗口屏")
    panel = LedPanelModel(1)
    async with pty_pair() as (host_end, line_end), running(serve_panels(line_end, {1: panel})):
        config = agent_config(
            gateway_url(hub),
            {
                "kind": "window_display",
                "token": token,
                "port": host_end,
                "address": 1,
                "window_id": window_id,
                "hall_id": hall.hall_id,
            },
        )
        async with agent(config):
            await subscribed(hub, f"hall:{hall.hall_id}")
            await eventually(lambda: panel.requests > 0, what="panel asked")
            view = {
                "window_id": window_id,
                "number": 1,
                "name": "综合受理",
                "department": None,
                "status": "open",
                "staff_name": "张三",
                "staff_no": "1024",
                "star_staff": False,
                "red_flag": False,
                "current": "A005",
                "group_ids": [],
            }
            event = {"action": "opened", "at": "2026-11-26T09:30:00+08:00", "window": view}
            await emit(hub, topic("hall", hall.hall_id), "window_changed", event)
            await eventually(lambda: panel.lines[:1] == ("正在办理 A005",), what="panel text")
    assert panel.header_text == "1号窗口 综合受理"
    assert panel.lines == ("正在办理 A005", "张三 工号1024", "等候 0 人")


async def test_readers_report_cards_and_codes_to_the_hub(
    db: asyncpg.Pool, hall: Hall, hub: Hub
) -> None:
    """read_card gets the whole card back as card_read (key card:<request>), or
    card_read_failed no_card when nobody puts one down; scanned codes are code_scanned in
    the order scanned."""
    side = HubSide()
    side.install(hub)
    reader_id, reader_token = await register(db, hall.hall_id, "id_reader", "1号读卡器")
    _, code_token = await register(db, hall.hall_id, "code_reader", "1号扫码器")
    model = IdReaderModel()
    async with (
        pty_pair() as (reader_host, reader_end),
        pty_pair() as (code_host, code_end),
        running(serve_reader(reader_end, model)),
    ):
        config = agent_config(
            gateway_url(hub),
            {"kind": "id_reader", "token": reader_token, "port": reader_host},
            {"kind": "code_reader", "token": code_token, "port": code_host},
        )
        async with agent(config):
            await subscribed(hub, f"device:{reader_id}")
            await eventually(
                lambda: (
                    len([e for e in side.of("device_state") if e.data["state"] == "online"]) == 2
                ),
                what="both readers online",
            )
            model.insert(CARD)
            await emit(
                hub, topic("device", reader_id), "read_card", {"request_id": "r1", "timeout_s": 5}
            )
            read = await side.next("card_read")
            assert read.key == "card:r1"
            assert read.data == {
                "request_id": "r1",
                "card": {
                    "name": "王测试",
                    "sex": "女",
                    "nation": "汉",
                    "birth_date": date(1949, 12, 31).isoformat(),
                    "address": "北京市朝阳区测试街道示例路1号",
                    "id_number": "11010519491231002X",
                    "authority": "北京市公安局朝阳分局",
                    "valid_from": "2020-01-01",
                    "valid_to": None,
                },
            }
            model.remove()
            await emit(
                hub,
                topic("device", reader_id),
                "read_card",
                {"request_id": "r2", "timeout_s": 0.2},
            )
            failed = await side.next("card_read_failed")
            assert failed.data == {"request_id": "r2", "reason": "no_card"}

            async with open_code_reader(code_end) as scanner:
                for text in ("123456", "q3ZtR8bXk2LmN0pA7sWcYg", "办事指南"):
                    await scanner.scan(text)
                codes = [await side.next("code_scanned") for _ in range(3)]
    assert [c.data["text"] for c in codes] == ["123456", "q3ZtR8bXk2LmN0pA7sWcYg", "办事指南"]


async def test_a_full_buffer_drops_the_oldest_events_and_counts_them(
    db: asyncpg.Pool, hall: Hall, hub: Hub
) -> None:
    """Hub unreachable, buffer of 2: device_state, device_info and four scans make six
    events; the four oldest are dropped and counted; once the hub is back the two newest
    scans arrive, in order."""
    side = HubSide()
    side.install(hub)
    _, token = await register(db, hall.hall_id, "code_reader", "2号扫码器")
    assert hub.gateway is not None
    async with (
        TcpProxy("127.0.0.1", hub.gateway.port) as proxy,
        pty_pair() as (host_end, code_end),
    ):
        proxy.blackhole()
        config = agent_config(
            f"ws://127.0.0.1:{proxy.port}/",
            {"kind": "code_reader", "token": token, "port": host_end},
            buffer=2,
        )
        (device,) = config.device
        assert isinstance(device, CodeReaderConfig)
        runner = CodeReaderRunner(config, device, backoff=lambda: fast_backoff(0.02, 0.2))
        async with running(runner.run()):
            await eventually(lambda: runner.peer.buffered == 2, what="state and info kept")
            async with open_code_reader(code_end) as scanner:
                for n in range(1, 5):
                    await scanner.scan(f"code-{n}")
                await eventually(lambda: runner.driver.scanned == 4, what="four scans")
            assert runner.peer.dropped == 4
            proxy.restore()
            first, second = await side.next(), await side.next()
            await eventually(lambda: runner.peer.buffered == 0, what="acknowledged")
    assert [first.data, second.data] == [{"text": "code-3"}, {"text": "code-4"}]
    assert [e.name for e in side.events] == ["code_scanned", "code_scanned"]
