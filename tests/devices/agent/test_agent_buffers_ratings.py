"""The agent keeps ratings and printer alerts while the hub is unreachable and delivers them
after the reconnect: in order, none lost, none twice (issue: "Hub unreachable for a while").

Everything on the hub side is real: two hubs in turn on the test database with their own
device event handlers (hub/services/device_events.py), a queue world whose window finishes
tickets (``rating_requested`` on ``window:<id>``), a wired pad and a printer simulated on socat
ptys, both run by ``run_agent``. The agent reaches the hubs through a TCP proxy, so the link
can be cut at a chosen moment.

The story, and what each step shows:

1. Hub 1 up. Ticket 1 is finished, the pad shows its prompt; tickets 2 and 3 are finished
   too, so the agent holds their requests (one prompt at a time).
2. The citizen grades ticket 1. Hub 1 stores the rating, but its acknowledgement is lost
   (the proxy holds it, then the link is cut): the agent still has that event to send. The
   pad shows ticket 2's prompt meanwhile.
3. Hub 1 stops. Ticket 2 is graded, then ticket 3 (prompted by the agent with no hub); the
   printer's paper goes low, then out. All of it waits in the agent's buffers.
4. Hub 2 starts on the same database (its clock one minute on, so what it stores is told
   apart by time). The agent re-sends rating 1 (a duplicate: accepted once), then 2, 3, and
   the printer's two statuses.

Order is checked per device: each device has its own peer session and buffer, and after a
reconnect the devices' links come back independently, so events of two devices are not
ordered among themselves (docs/devices/agent.md §4, "hub unreachable").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

import devices.agent.main as agent_main
from devices.agent.evaluator import EvaluatorRunner
from devices.agent.printer import PrinterRunner
from devices.agent.runner import DeviceRunner
from devices.simulators.evaluator_serial import EvaluatorPadModel
from devices.simulators.evaluator_serial import serve as serve_pad
from devices.simulators.printer import PrinterModel
from devices.simulators.printer import serve as serve_printer
from hub.services import device_admin
from hub.services.audit import Actor
from hub.services.queue import TicketRequest
from tests.devices.agent.helpers import TIMEOUT, eventually, running, wait_for
from tests.devices.agent.hubside import agent, agent_config, register, subscribed
from tests.hub.queue.world import Clock, QueueWorld, build_world
from tests.realtime.peers import hubs
from tests.realtime.tcp_proxy import TcpProxy
from tests.support.ptys import pty_pair


async def db_until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll the database until ``check()`` holds, for at most TIMEOUT seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {TIMEOUT} s: {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def simulated(
    serve: Callable[..., Coroutine[Any, Any, None]], model: object
) -> AsyncIterator[str]:
    """A simulator serving ``model`` on one end of a pty pair; yields the host's end."""
    async with pty_pair() as (host_end, device_end):
        ready = asyncio.Event()
        async with running(serve(device_end, model, ready=ready)):
            await wait_for(ready.wait())
            yield host_end


@pytest.fixture
def runners(monkeypatch: pytest.MonkeyPatch) -> list[DeviceRunner]:
    """The runners ``run_agent`` builds, to watch their buffers (nothing else changes)."""
    built: list[DeviceRunner] = []
    original = agent_main.build_runners

    def spy(*args: Any, **kwargs: Any) -> Any:
        made, buses = original(*args, **kwargs)
        built.extend(made)
        return made, buses

    monkeypatch.setattr(agent_main, "build_runners", spy)
    return built


def shown(pad: EvaluatorPadModel, number: str) -> bool:
    return pad.prompt is not None and pad.prompt.ticket_number == number


async def issue_tickets(w: QueueWorld, count: int) -> list[tuple[int, str]]:
    """Issue ``count`` tickets of group A (the window's first); (id, number) of each."""
    issued = []
    for _ in range(count):
        ticket = await w.queue.issue(
            w.hall_id, TicketRequest(group_id=w.groups["A"]), source="kiosk", caller="device"
        )
        issued.append((ticket.ticket_id, ticket.ticket.number))
    return issued


async def call_and_finish(w: QueueWorld, number: str) -> None:
    w.clock.advance(seconds=30)
    called = await w.queue.call_next(w.actors[0], w.place, w.windows[0])
    assert called.called == number
    w.clock.advance(seconds=30)
    await w.queue.finish(w.actors[0], w.place, w.windows[0])


async def keys_in_acceptance_order(db: asyncpg.Pool, device_id: int) -> list[str]:
    """The device's event keys as the hub accepted them (one row per key, PRIMARY KEY)."""
    rows = await db.fetch(
        "SELECT key, at FROM peer_event_key WHERE peer_id = $1 ORDER BY at",
        f"device:{device_id}",
    )
    times = [r["at"] for r in rows]
    assert times == sorted(set(times)), "each event is its own transaction"
    return [r["key"] for r in rows]


async def test_ratings_and_alerts_made_while_the_hub_is_down_arrive_in_order_once(
    database_url: str, db: asyncpg.Pool, runners: list[DeviceRunner]
) -> None:
    clock = Clock()
    pad = EvaluatorPadModel(heartbeat_interval=None)
    paper = PrinterModel()
    async with hubs(database_url) as start, contextlib.AsyncExitStack() as stack:
        first = await start()
        first.clock = clock
        assert first.gateway is not None and first.events is not None
        hub_port = first.gateway.port
        w = await build_world(db, first, clock, windows=1, code="buf")
        window, staff = w.windows[0], w.staff[0]
        pad_id, pad_token = await register(db, w.hall_id, "evaluator", "1号窗口评价器")
        printer_id, printer_token = await register(db, w.hall_id, "printer", "1号取号机打印机")
        await device_admin.update(
            first.events,
            Actor.system("test"),
            w.place,
            pad_id,
            device_admin.DeviceChange(window_id=window),
        )

        link = TcpProxy("127.0.0.1", hub_port)
        await link.start()
        stack.push_async_callback(link.aclose)
        relink = TcpProxy("127.0.0.1", hub_port, port=link.port)  # started for hub 2
        stack.push_async_callback(relink.aclose)
        pad_port = await stack.enter_async_context(simulated(serve_pad, pad))
        printer_port = await stack.enter_async_context(simulated(serve_printer, paper))
        config = agent_config(
            f"ws://127.0.0.1:{link.port}/",
            {"kind": "evaluator", "token": pad_token, "port": pad_port, "window_id": window},
            {"kind": "printer", "token": printer_token, "port": printer_port},
        )
        await stack.enter_async_context(agent(config))
        await eventually(lambda: len(runners) == 2, what="the agent's runners built")
        (evaluator,) = [r for r in runners if isinstance(r, EvaluatorRunner)]
        (printer,) = [r for r in runners if isinstance(r, PrinterRunner)]

        async def rated(ticket_id: int) -> bool:
            n = await db.fetchval("SELECT count(*) FROM rating WHERE ticket_id = $1", ticket_id)
            return bool(n)

        async def paper_reported() -> bool:
            state = await db.fetchval(
                "SELECT state->>'paper' FROM device WHERE id = $1", printer_id
            )
            return bool(state == "ok")

        # 1. Hub 1 up: the pad follows its window, the printer has reported its paper.
        await subscribed(first, f"window:{window}")
        await db_until(paper_reported, "the printer's first printer_status stored")
        await eventually(lambda: printer.peer.buffered == 0, what="printer events acknowledged")
        await w.queue.sign_in(w.actors[0], w.place, window)
        (t1, n1), (t2, n2), (t3, n3) = await issue_tickets(w, 3)
        await call_and_finish(w, n1)
        await eventually(lambda: shown(pad, n1), what="ticket 1 prompted")
        await call_and_finish(w, n2)
        await call_and_finish(w, n3)
        await eventually(lambda: evaluator.requests.qsize() == 2, what="requests 2, 3 held")
        assert evaluator.peer.buffered == 0

        # 2. Rating 1 is stored by hub 1, its acknowledgement never reaches the agent: the
        # hub's insert waits on a lock until the link holds everything back.
        async with db.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE rating IN SHARE MODE")
            assert pad.press("very_satisfied")
            await db_until(
                lambda: db.fetchval(
                    "SELECT count(*) > 0 FROM pg_locks "
                    "WHERE relation = 'rating'::regclass AND NOT granted"
                ),
                "the hub inserting rating 1",
            )
            link.blackhole()
        await db_until(lambda: rated(t1), "rating 1 stored by hub 1")
        await eventually(lambda: shown(pad, n2), what="ticket 2 prompted while hub 1 is up")
        assert evaluator.peer.buffered == 1  # rating 1 sent, not acknowledged
        await link.aclose()  # the held acknowledgement is lost with the connection
        await first.stop()
        await eventually(
            lambda: evaluator.peer.state != "live" and printer.peer.state != "live",
            what="both links down",
        )
        pad_keys_before = await keys_in_acceptance_order(db, pad_id)
        printer_keys_before = await keys_in_acceptance_order(db, printer_id)

        # 3. No hub: the citizens answer the prompts the agent had; the paper runs out.
        assert pad.press("satisfied")
        await eventually(lambda: shown(pad, n3), what="ticket 3 prompted with no hub")
        assert pad.press("dissatisfied", ["slow_service"])
        await eventually(lambda: evaluator.peer.buffered == 3, what="ratings 1-3 buffered")
        paper.set_paper("low")
        paper.set_paper("out")
        await eventually(lambda: printer.peer.buffered == 2, what="two statuses buffered")
        assert await db.fetchval("SELECT count(*) FROM rating") == 1

        # 4. Hub 2 on the same database; the agent's link comes back through a new proxy.
        later = clock.advance(minutes=1)
        second = await start(gateway_port=hub_port)
        second.clock = clock
        await relink.start()
        await eventually(
            lambda: evaluator.peer.buffered == 0 and printer.peer.buffered == 0,
            what="everything acknowledged by hub 2",
        )
        assert evaluator.peer.dropped == printer.peer.dropped == 0

        ratings = await db.fetch(
            """SELECT ticket_id, window_id, staff_id, device_id, source, grade, reasons,
                      created_at
               FROM rating ORDER BY id"""
        )
        unrated = await db.fetchval("SELECT count(*) FROM rating_unrated")
        pad_keys = await keys_in_acceptance_order(db, pad_id)
        printer_keys = await keys_in_acceptance_order(db, printer_id)
        alerts = await db.fetch(
            "SELECT code, since FROM device_alert WHERE device_id = $1 ORDER BY code", printer_id
        )
        printer_paper = await db.fetchval(
            "SELECT state->>'paper' FROM device WHERE id = $1", printer_id
        )

    # Ratings: one row per ticket, in the order graded, linked to the window, its staff
    # member and the pad; rating 1 from hub 1, 2 and 3 from hub 2 (a minute later).
    assert [tuple(r.values())[:7] for r in ratings] == [
        (t1, window, staff, pad_id, "evaluator", "very_satisfied", []),
        (t2, window, staff, pad_id, "evaluator", "satisfied", []),
        (t3, window, staff, pad_id, "evaluator", "dissatisfied", ["slow_service"]),
    ]
    assert [r["created_at"] for r in ratings] == [later - timedelta(minutes=1), later, later]
    assert unrated == 0
    # The pad's keys: rating 1 accepted once (its re-send to hub 2 was a duplicate), the
    # outage's ratings after it, in the order graded; nothing else new.
    ratings_keys = [k for k in pad_keys if k.startswith("rating:")]
    assert ratings_keys == [f"rating:{t1}", f"rating:{t2}", f"rating:{t3}"]
    assert pad_keys == [*pad_keys_before, f"rating:{t2}", f"rating:{t3}"]
    # The printer's keys <boot>-<n>: accepted in the order made (n = 1, 2, …), none
    # missing, none twice; the outage's two statuses last.
    numbers = [int(k.rsplit("-", 1)[1]) for k in printer_keys]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(printer_keys) == len(printer_keys_before) + 2
    # Low, then out: paper_out is up (raised by hub 2), paper_low cleared by the later one.
    codes = {a["code"]: a["since"] for a in alerts}
    assert codes.get("paper_out") == later
    assert "paper_low" not in codes
    assert printer_paper == "out"
