"""Issue 4: twenty windows calling at once on real PostgreSQL for 2000 tickets, within one
process and across two ``hallhub serve`` processes: every ticket called exactly once, every
number unique and gap-free per group, no ticket left waiting.

Tickets are issued by several kiosks *while* the windows call, so calls race both each other
and the issuing transactions. A window stops once issuing is over and a call finds nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from hub.domain.queue import parse_ticket_number, ticket_number
from hub.services.queue import TicketRequest
from tests.conftest import REDIS_URL
from tests.e2e.processes import Processes, processes
from tests.factories import make_device, make_hall, make_staff
from tests.hub.queue.world import Clock, add_group, build_world, serve
from tests.realtime.peers import hubs

TICKETS = 2000
WINDOWS = 20
KIOSKS = 8


@dataclass
class Tally:
    """What the windows and kiosks saw: every number issued and every call made."""

    issued: list[str] = field(default_factory=list)
    calls: list[tuple[int, str]] = field(default_factory=list)  # (window_id, number)
    issuing_done: bool = False
    # One token per ticket issued, and one per window when issuing ends. While tickets are
    # being issued a window calls once per token it takes: no busy polling, no herd.
    tokens: asyncio.Queue[None] = field(default_factory=asyncio.Queue)
    empty_calls: int = 0

    def add(self, number: str) -> None:
        self.issued.append(number)
        self.tokens.put_nowait(None)

    def end(self) -> None:
        self.issuing_done = True
        for _ in range(WINDOWS):
            self.tokens.put_nowait(None)


def _shares(total: int, parts: int) -> list[int]:
    share, extra = divmod(total, parts)
    return [share + (1 if i < extra else 0) for i in range(parts)]


async def _issue_all(issuers: list[Callable[[int], Awaitable[str]]], tally: Tally) -> None:
    """Each issuer issues its share of the tickets (alternating groups), all at once."""

    async def run(issue: Callable[[int], Awaitable[str]], count: int) -> None:
        for i in range(count):
            tally.add(await issue(i))

    try:
        await asyncio.gather(
            *(
                run(issue, n)
                for issue, n in zip(issuers, _shares(TICKETS, len(issuers)), strict=True)
            )
        )
    finally:
        tally.end()


async def _work(
    window_id: int,
    call: Callable[[], Awaitable[str | None]],
    finish: Callable[[], Awaitable[None]],
    tally: Tally,
) -> None:
    """Call and finish until issuing is over and a call finds nobody.

    No ticket is left behind: a token is put after its ticket committed, so the call that
    takes it sees the ticket, unless another window's call has it (taken, or locked and
    skipped: that call takes it)."""
    while True:
        if not tally.issuing_done:
            await tally.tokens.get()
        done = tally.issuing_done
        number = await call()
        if number is None:
            tally.empty_calls += 1
            if done:
                return
            continue
        tally.calls.append((window_id, number))
        await finish()


async def assert_each_ticket_called_once(
    db: asyncpg.Pool, hall_id: int, groups: dict[str, int], tally: Tally
) -> None:
    # What the clients saw: 2000 distinct numbers issued, each called exactly once.
    assert len(tally.issued) == TICKETS
    assert len(set(tally.issued)) == TICKETS, "a number was issued twice"
    called = Counter(number for _, number in tally.calls)
    assert [n for n, c in called.items() if c > 1] == [], "called more than once"
    assert set(called) == set(tally.issued), "issued but never called"
    # Every window took part.
    assert len({window for window, _ in tally.calls}) == WINDOWS

    # What PostgreSQL holds: every ticket done after exactly one call, nothing waiting.
    rows = await db.fetch(
        "SELECT id, group_id, seq, number, status, call_count, window_id FROM ticket "
        "WHERE hall_id = $1",
        hall_id,
    )
    assert len(rows) == TICKETS
    assert Counter(r["status"] for r in rows) == {"done": TICKETS}
    assert Counter(r["call_count"] for r in rows) == {1: TICKETS}
    assert {r["number"] for r in rows} == set(tally.issued)
    by_number = {r["number"]: r["window_id"] for r in rows}
    assert all(by_number[number] == window for window, number in tally.calls)
    # One audit row per call, one call per ticket.
    audited = Counter(
        r["target_id"]
        for r in await db.fetch("SELECT target_id FROM audit_log WHERE action = 'ticket.call'")
    )
    assert len(audited) == TICKETS and set(audited.values()) == {1}
    assert set(audited) == {str(r["id"]) for r in rows}
    # Numbers per group run A001, A002 … without a gap or a repeat.
    prefixes = {group_id: prefix for prefix, group_id in groups.items()}
    for group_id, prefix in prefixes.items():
        seqs = sorted(r["seq"] for r in rows if r["group_id"] == group_id)
        assert seqs == list(range(1, len(seqs) + 1)), f"group {prefix} has gaps or repeats"
        numbers = {r["number"] for r in rows if r["group_id"] == group_id}
        assert numbers == {ticket_number(prefix, s) for s in seqs}
    # Each kiosk alternates A, B, A …
    expected_a = sum((n + 1) // 2 for n in _shares(TICKETS, KIOSKS))
    assert sum(1 for n in tally.issued if parse_ticket_number(n)[0] == "A") == expected_a
    # No window still holds a ticket.
    assert not await db.fetchval(
        "SELECT count(*) FROM window_state WHERE hall_id = $1 AND current_ticket_id IS NOT NULL",
        hall_id,
    )


async def test_twenty_windows_in_one_process_call_each_of_2000_tickets_once(
    db: asyncpg.Pool, database_url: str
) -> None:
    clock = Clock()
    async with hubs(database_url) as start:
        # Enough connections for every window and kiosk to be in a transaction at once.
        hub = await start(db_pool_max=WINDOWS + KIOSKS)
        hub.clock = clock
        w = await build_world(db, hub, clock, windows=WINDOWS, code="conc")
        kiosks = [
            (await make_device(db, w.hall_id, "kiosk", f"kiosk-{k}"))[0] for k in range(KIOSKS)
        ]
        await asyncio.gather(
            *(w.queue.sign_in(a, w.place, win) for a, win in zip(w.actors, w.windows, strict=True))
        )
        tally = Tally()

        def kiosk(device_id: int) -> Callable[[int], Awaitable[str]]:
            async def issue(i: int) -> str:
                group = w.groups["A" if i % 2 == 0 else "B"]
                issued = await w.queue.issue(
                    w.hall_id,
                    TicketRequest(group_id=group),
                    source="kiosk",
                    caller="device",
                    device_id=device_id,
                )
                return issued.ticket.number

            return issue

        def window(i: int) -> Awaitable[None]:
            actor, window_id = w.actors[i], w.windows[i]

            async def call() -> str | None:
                return (await w.queue.call_next(actor, w.place, window_id)).called

            async def finish() -> None:
                await w.queue.finish(actor, w.place, window_id)

            return _work(window_id, call, finish, tally)

        await asyncio.gather(
            _issue_all([kiosk(d) for d in kiosks], tally), *(window(i) for i in range(WINDOWS))
        )
    await assert_each_ticket_called_once(db, w.hall_id, w.groups, tally)
    # Every change was announced once on hall:<id>, numbered without a gap: 20 sign-ins,
    # 2000 issues, 2000 calls, 2000 finishes.
    seq = await db.fetchval("SELECT seq FROM topic WHERE name = $1", f"hall:{w.hall_id}")
    assert seq == WINDOWS + 3 * TICKETS


@pytest.fixture
async def two_hubs(
    db: asyncpg.Pool, database_url: str, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[Processes]:
    env = {
        "HALLHUB_DATABASE_URL": database_url,
        "HALLHUB_REDIS_URL": REDIS_URL,
        "HALLHUB_REDIS_PREFIX": redis_prefix,
        # Every kiosk here connects from 127.0.0.1: one address for the per-IP guard.
        "HALLHUB_PUBLIC_RATE_PER_MINUTE": "1000000",
    }
    async with processes(env, tmp_path) as started:
        yield started


@pytest.mark.e2e
async def test_twenty_windows_across_two_processes_call_each_of_2000_tickets_once(
    db: asyncpg.Pool, two_hubs: Processes
) -> None:
    """Ten windows and half the kiosks on each of two ``hallhub serve`` processes, all
    through the HTTP API."""
    hall = await make_hall(db, code="conc2", windows=WINDOWS)
    # Open around the clock: the processes run on the real clock.
    await db.execute(
        "UPDATE hall SET opens_minute = 0, closes_minute = 1440 WHERE id = $1", hall.hall_id
    )
    groups = {
        "A": await add_group(db, hall.hall_id, "A", "社保业务"),
        "B": await add_group(db, hall.hall_id, "B", "不动产登记"),
    }
    for window_id in hall.window_ids:
        await serve(db, window_id, groups["A"], groups["B"])
    staff_tokens = [
        (await make_staff(db, f"conc2-W{i + 1}", [("window_staff", "hall", hall.hall_id)]))[1]
        for i in range(WINDOWS)
    ]
    kiosk_tokens = [
        (await make_device(db, hall.hall_id, "kiosk", f"kiosk-{k}"))[1] for k in range(KIOSKS)
    ]
    a, b = await two_hubs.start_all("a", "b")
    tally = Tally()
    base = f"/api/halls/{hall.hall_id}"

    async with contextlib.AsyncExitStack() as stack:
        # Every kiosk and window has its own client (one keep-alive connection), as real
        # terminals do; even ones talk to process a, odd ones to process b.
        async def client(i: int, token: str) -> httpx.AsyncClient:
            return await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=(a if i % 2 == 0 else b).http_url,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                    trust_env=False,
                )
            )

        kiosks = [await client(k, token) for k, token in enumerate(kiosk_tokens)]
        windows = [await client(i, token) for i, token in enumerate(staff_tokens)]

        def kiosk(http: httpx.AsyncClient) -> Callable[[int], Awaitable[str]]:
            async def issue(i: int) -> str:
                group = groups["A" if i % 2 == 0 else "B"]
                response = await http.post(f"{base}/tickets", json={"group_id": group})
                assert response.status_code == 201, response.text
                return str(response.json()["ticket"]["number"])

            return issue

        async def window(i: int) -> None:
            http, path = windows[i], f"{base}/windows/{hall.window_ids[i]}"

            async def post(action: str) -> dict[str, object]:
                response = await http.post(f"{path}/{action}")
                assert response.status_code == 200, response.text
                body: dict[str, object] = response.json()
                return body

            async def call() -> str | None:
                called = (await post("call"))["called"]
                return None if called is None else str(called)

            async def finish() -> None:
                await post("finish")

            await post("sign-in")
            await _work(hall.window_ids[i], call, finish, tally)

        await asyncio.gather(
            _issue_all([kiosk(http) for http in kiosks], tally),
            *(window(i) for i in range(WINDOWS)),
        )
    await assert_each_ticket_called_once(db, hall.hall_id, groups, tally)
    # Both processes served calls.
    assert a.proc is not None and a.proc.poll() is None
    assert b.proc is not None and b.proc.poll() is None
