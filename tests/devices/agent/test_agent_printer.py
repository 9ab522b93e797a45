"""The device agent end to end: simulated devices on socat ptys, the agent (devices/agent), and
a real hub (tests/realtime/peers.py ``hubs``) on the test database.

The hub side of each device event is recorded by handlers this test installs in
``hub.presence.device_events`` (the hub's own handlers are another part of issue 5), so what is
checked here is what the agent sends: names, data, order, keys, and that the hub's key check
sees no repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec

from devices.agent.config import PrinterConfig
from devices.agent.printer import PrinterRunner, PrintJob
from devices.simulators.printer import PrinterModel
from devices.simulators.printer import serve as serve_printer
from hub.runtime import Hub
from realtime.topics import topic
from tests.devices.agent.helpers import eventually, fast_backoff, running, wait_for
from tests.devices.agent.hubside import (
    Hall,
    HubSide,
    agent,
    agent_config,
    emit,
    register,
    subscribed,
)
from tests.realtime.peers import gateway_url, hubs
from tests.realtime.tcp_proxy import TcpProxy
from tests.support.ptys import pty_pair


@contextlib.asynccontextmanager
async def printer_sim(model: PrinterModel) -> AsyncIterator[str]:
    """A simulated printer on a pty pair; yields the host's end."""
    async with pty_pair() as (host_end, printer_end):
        ready = asyncio.Event()
        async with running(serve_printer(printer_end, model, ready=ready)):
            await wait_for(ready.wait())
            yield host_end


@contextlib.asynccontextmanager
async def printer_agent(
    db: asyncpg.Pool, hall: Hall, hub: Hub, name: str
) -> AsyncIterator[tuple[int, PrinterModel]]:
    """A printer registered in ``hall`` as ``name``, simulated, and an agent running it
    connected to ``hub``; yields the printer's device id and its model."""
    printer_id, token = await register(db, hall.hall_id, "printer", name)
    model = PrinterModel()
    async with printer_sim(model) as port:
        config = agent_config(
            gateway_url(hub),
            {"kind": "printer", "token": token, "port": port, "print_seconds": 0.1},
        )
        async with agent(config):
            yield printer_id, model


def print_ticket(ticket_id: int, number: str) -> dict[str, Any]:
    return {
        "job": f"ticket:{ticket_id}",
        "ticket_id": ticket_id,
        "token": "q3ZtR8bXk2LmN0pA7sWcYg",
        "ticket": {
            "hall_name": "朝阳区政务服务中心",
            "number": number,
            "group_name": "社保业务",
            "people_ahead": 2,
            "issued_at": "2026-11-26 09:30",
            "qr_url": "http://hall.example/ticket/?t=q3ZtR8bXk2LmN0pA7sWcYg",
            "header": "",
            "footer": [],
        },
    }


async def test_a_printer_reports_itself_prints_jobs_once_and_reports_paper_out(
    db: asyncpg.Pool, hall: Hall, hub: Hub
) -> None:
    """device_state, device_info and the first printer_status reach the hub after connect; a
    print_ticket delivered twice is printed once (print_done, key print:<job>); paper out is
    a printer_status change, and the next job is print_failed with paper_out."""
    side = HubSide()
    side.install(hub)
    async with printer_agent(db, hall, hub, "1号取号机打印机") as (printer_id, model):
        state, info, status = await side.next(), await side.next(), await side.next()
        assert (state.name, state.data) == (
            "device_state",
            {"part": "printer", "state": "online", "reason": "connected"},
        )
        assert (info.name, info.data) == (
            "device_info",
            {"model": "ESC/POS", "firmware": "", "parts": ["printer"]},
        )
        assert (status.name, status.data) == (
            "printer_status",
            {"online": True, "paper": "ok", "cover_open": False, "error": False},
        )
        assert state.peer == f"device:{printer_id}"

        await subscribed(hub, f"device:{printer_id}")
        await emit(hub, topic("device", printer_id), "print_ticket", print_ticket(41, "A041"))
        await emit(hub, topic("device", printer_id), "print_ticket", print_ticket(41, "A041"))
        done = await side.next("print_done")
        assert (done.key, done.data) == (
            "print:ticket:41",
            {"job": "ticket:41", "ticket_id": 41},
        )
        assert [t.qr_codes[0].data for t in model.tickets] == [
            "http://hall.example/ticket/?t=q3ZtR8bXk2LmN0pA7sWcYg"
        ]
        assert "A041" in model.tickets[0].text.splitlines()

        model.set_paper("out")
        out = await side.next("printer_status")
        assert out.data == {
            "online": False,
            "paper": "out",
            "cover_open": False,
            "error": False,
        }
        await emit(hub, topic("device", printer_id), "print_ticket", print_ticket(42, "A042"))
        failed = await side.next("print_failed")
        assert (failed.key, failed.data) == (
            "print:ticket:42",
            {"job": "ticket:42", "ticket_id": 42, "reason": "paper_out"},
        )
    assert len(model.tickets) == 1
    assert len(side.of("print_done")) == 1


async def test_events_made_while_the_hub_is_down_arrive_after_reconnect_in_order_once(
    database_url: str, db: asyncpg.Pool, hall: Hall
) -> None:
    """The hub stops; the printer's paper goes low, out and back meanwhile (and a print is
    done and reported); a new hub on the same database gets those events after the agent
    reconnects, in the order they happened, none lost, none twice (the hub's key table has
    one row per key)."""
    printer_id, token = await register(db, hall.hall_id, "printer", "2号取号机打印机")
    model = PrinterModel()
    async with hubs(database_url) as start:
        first = await start()
        before = HubSide()
        before.install(first)
        assert first.gateway is not None
        port = first.gateway.port
        async with TcpProxy("127.0.0.1", port) as proxy, printer_sim(model) as tty:
            config = agent_config(
                f"ws://127.0.0.1:{proxy.port}/",
                {"kind": "printer", "token": token, "port": tty, "print_seconds": 0.1},
            )
            (device,) = config.device
            assert isinstance(device, PrinterConfig)
            runner = PrinterRunner(config, device, backoff=lambda: fast_backoff(0.02, 0.2))
            async with running(runner.run()):
                await before.next("printer_status")
                await eventually(lambda: runner.peer.buffered == 0, what="first events acked")
                await first.stop()
                await eventually(lambda: runner.peer.state != "live", what="link down")

                model.set_paper("low")
                model.set_paper("out")
                model.set_paper("ok")
                runner.jobs.put_nowait(msgspec.convert(print_ticket(43, "A043"), PrintJob))
                await eventually(lambda: runner.peer.buffered == 4, what="four events buffered")

                proxy.blackhole()  # hold the reconnect until the new hub's recorder is in
                second = await start(gateway_port=port)
                after = HubSide()
                after.install(second)
                proxy.restore()
                for _ in range(4):
                    await after.next()
                await eventually(lambda: runner.peer.buffered == 0, what="all acknowledged")
    assert [(e.name, e.data.get("paper")) for e in after.events] == [
        ("printer_status", "low"),
        ("printer_status", "out"),
        ("printer_status", "ok"),
        ("print_done", None),
    ]
    keys = [e.key for e in before.events + after.events]
    assert len(keys) == len(set(keys))
    stored = await db.fetchval(
        "SELECT count(*) FROM peer_event_key WHERE peer_id = $1", f"device:{printer_id}"
    )
    assert stored == len(keys)
    assert runner.peer.dropped == 0


async def test_configure_sets_the_header_and_poll_interval_live(
    db: asyncpg.Pool, hall: Hall, hub: Hub
) -> None:
    """configure {settings} on the device topic changes the printer's header (printed on the
    next ticket that brings none) and its polling interval, without a restart (D6)."""
    side = HubSide()
    side.install(hub)
    async with printer_agent(db, hall, hub, "3号取号机打印机") as (printer_id, model):
        await side.next("printer_status")
        await subscribed(hub, f"device:{printer_id}")
        settings = {"header": "欢迎光临朝阳区政务服务中心", "poll_seconds": 0.5}
        await emit(hub, topic("device", printer_id), "configure", {"settings": settings})
        await emit(hub, topic("device", printer_id), "print_ticket", print_ticket(44, "A044"))
        await side.next("print_done")
    (ticket,) = model.tickets
    assert ticket.text.splitlines()[0] == "欢迎光临朝阳区政务服务中心"


async def test_an_agent_whose_every_token_is_rejected_ends_with_exit_code_1(
    hall: Hall, hub: Hub
) -> None:
    """A token the hub does not know: the device is rejected (logged), the agent ends by
    itself with 1; no port is held."""
    async with pty_pair() as (port, _printer_end):
        config = agent_config(
            gateway_url(hub), {"kind": "printer", "token": "not-a-token", "port": port}
        )
        async with agent(config) as task:
            assert await wait_for(task) == 1
