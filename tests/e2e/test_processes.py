"""Several ``hallhub serve`` processes on the test database and Redis: fan-out between them,
leader jobs and their takeover, crash and restart, Redis going silent, graceful stop.

Every hub here is a real subprocess (tests/e2e/processes.py) with fast periods: ticks and
reconcile every 0.5 s, a 2 s process lease, a Redis heartbeat every 0.2 s, deaf after 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from realtime.client import PeerClient
from realtime.messages import Event, Snapshot, Welcome
from realtime.positions import Backoff
from tests.conftest import REDIS_URL
from tests.e2e.processes import (
    HubProcess,
    Processes,
    RecordingClient,
    TopicLog,
    event_names,
    processes,
    until,
)
from tests.factories import make_device, make_hall, make_staff
from tests.realtime.peers import Peer, eventually
from tests.realtime.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

RESTART = 1012


@pytest.fixture
async def procs(
    db: asyncpg.Pool, database_url: str, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[Processes]:
    env = {
        "HALLHUB_DATABASE_URL": database_url,
        "HALLHUB_REDIS_URL": REDIS_URL,
        "HALLHUB_REDIS_PREFIX": redis_prefix,
        # The raw peers here send no heartbeats; the tests last longer than the default 15 s.
        "HALLHUB_HEARTBEAT_TIMEOUT_SECONDS": "60",
    }
    async with processes(env, tmp_path) as started:
        yield started


class Hall:
    """A hall with ``devices`` ticket machines and a hall manager's session token."""

    def __init__(self, hall_id: int, manager: str, devices: list[tuple[int, str]]) -> None:
        self.hall_id = hall_id
        self.manager = manager
        self.devices = devices
        self.topic = f"presence:{hall_id}"

    @property
    def peer_ids(self) -> list[str]:
        return [f"device:{device_id}" for device_id, _ in self.devices]


async def make_presence_hall(db: asyncpg.Pool, devices: int) -> Hall:
    place = await make_hall(db)
    _, manager = await make_staff(db, "M1", [("hall_manager", "hall", place.hall_id)])
    made = [await make_device(db, place.hall_id, name=f"{n}号取号机") for n in range(devices)]
    return Hall(place.hall_id, manager, made)


@contextlib.asynccontextmanager
async def watching(hub: HubProcess, hall: Hall) -> AsyncIterator[tuple[Peer, TopicLog]]:
    """A hall manager's console on ``hub`` subscribed to the hall's presence, past its
    snapshot; the log holds every presence frame it receives."""
    log = TopicLog(hall.topic)
    async with Peer.connect(hub.gateway_url) as watcher:
        welcome = await watcher.hello("console", hall.manager, topics=[{"topic": hall.topic}])
        assert isinstance(welcome, Welcome), welcome
        snapshot = await watcher.recv()
        assert isinstance(snapshot, Snapshot), snapshot
        log.add(snapshot)
        yield watcher, log


@contextlib.asynccontextmanager
async def devices_on(hub: HubProcess, tokens: list[str]) -> AsyncIterator[list[Peer]]:
    """Ticket machines connected to ``hub`` and welcomed (all hellos at once); closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        peers = [await stack.enter_async_context(Peer.connect(hub.gateway_url)) for _ in tokens]
        welcomes = await asyncio.gather(
            *(
                peer.hello("ticket_machine", token)
                for peer, token in zip(peers, tokens, strict=True)
            )
        )
        assert all(isinstance(w, Welcome) for w in welcomes), welcomes
        yield peers


async def read_until(
    peer: Peer, log: TopicLog, done: Callable[[], bool], within: float = 10.0
) -> None:
    """Record the peer's frames until ``done()`` holds."""
    async with asyncio.timeout(within):
        while not done():
            log.add(await peer.recv(timeout=within))


async def read_quietly(peer: Peer, log: TopicLog, ticks: int = 3) -> None:
    """Record frames for ``ticks`` tick periods (each longer than a reconcile period), and
    fail if an event with a seq arrives meanwhile: a late duplicate or an unexpected event."""
    before = len(log.events)
    seen = 0
    while seen < ticks:
        frame = await peer.recv(ticks=True)
        if type(frame).__name__ == "Tick":
            seen += 1
        log.add(frame)
    assert len(log.events) == before, f"unexpected events: {event_names(log)[before:]}"


def assert_events(log: TopicLog, expected: list[tuple[str, str]], first_seq: int = 1) -> None:
    """The log's events are exactly ``expected`` (name, peer id) in some order that keeps each
    peer's own events in order, numbered ``first_seq``, ``first_seq + 1``… without a gap."""
    log.assert_gap_free()
    got = event_names(log)
    assert [seq for seq, _, _ in got] == list(range(first_seq, first_seq + len(expected)))
    assert sorted((n, p) for _, n, p in got) == sorted(expected)
    for peer_id in {p for _, p in expected}:
        assert [n for _, n, p in got if p == peer_id] == [n for n, p in expected if p == peer_id]


async def reaper_state(db: asyncpg.Pool) -> tuple[str, int] | None:
    row = await db.fetchrow("SELECT process_id, runs FROM job_state WHERE job = 'presence_reaper'")
    return None if row is None else (str(row["process_id"]), int(row["runs"]))


async def topic_head(db: asyncpg.Pool, topic: str) -> tuple[int, int]:
    row = await db.fetchrow("SELECT epoch, seq FROM topic WHERE name = $1", topic)
    assert row is not None, topic
    return int(row["epoch"]), int(row["seq"])


async def test_presence_events_cross_processes_in_order_without_gaps_or_repeats(
    db: asyncpg.Pool, procs: Processes
) -> None:
    """Ten devices connecting to and leaving process A reach a watcher on B as seq 1..20."""
    a, b = await procs.start_all("a", "b")
    hall = await make_presence_hall(db, devices=10)
    async with watching(b, hall) as (watcher, log):
        async with devices_on(a, [token for _, token in hall.devices]):
            await read_until(watcher, log, lambda: len(log.events) >= 10)
        await read_until(watcher, log, lambda: len(log.events) >= 20)
        await read_quietly(watcher, log)
    assert_events(
        log,
        [("peer_online", p) for p in hall.peer_ids] + [("peer_offline", p) for p in hall.peer_ids],
    )


async def test_the_reaper_runs_in_one_process_and_the_survivor_takes_over_after_a_kill(
    db: asyncpg.Pool, procs: Processes
) -> None:
    """presence_reaper runs in one process only; SIGKILL it and the other process leads and
    marks the dead process's devices offline once its lease ran out."""
    a, b = await procs.start_all("a", "b")
    hub_ids = {str(r["id"]) for r in await db.fetch("SELECT id FROM hub_process")}
    assert hub_ids == {a.process_id, b.process_id}

    runs: list[tuple[str, int]] = []

    async def reaper_ran(times: int) -> bool:
        state = await reaper_state(db)
        if state is not None and (not runs or runs[-1] != state):
            runs.append(state)
        return state is not None and state[1] >= times

    await until(lambda: reaper_ran(1), what="a first presence_reaper run")
    leader, survivor = (a, b) if runs[-1][0] == a.process_id else (b, a)
    assert runs[-1][0] == leader.process_id

    hall = await make_presence_hall(db, devices=3)
    async with watching(survivor, hall) as (watcher, log):
        async with devices_on(leader, [token for _, token in hall.devices]):
            await read_until(watcher, log, lambda: len(log.events) >= 3)
            target = runs[-1][1] + 2
            await until(lambda: reaper_ran(target), what="two more reaper runs")
            assert {pid for pid, _ in runs} == {leader.process_id}
            assert [line["job"] for line in leader.logs("job_leader")].count("presence_reaper") == 1
            assert "presence_reaper" not in [line["job"] for line in survivor.logs("job_leader")]

            await leader.kill()

            async def survivor_leads() -> bool:
                return await reaper_ran(0) and runs[-1][0] == survivor.process_id

            await until(survivor_leads, within=10, what="the survivor running presence_reaper")
            await read_until(watcher, log, lambda: len(log.events) >= 6, within=15)
        await read_quietly(watcher, log)

    assert_events(
        log,
        [("peer_online", p) for p in hall.peer_ids] + [("peer_offline", p) for p in hall.peer_ids],
    )
    assert [line["peers"] for line in survivor.logs("presence_reaped")] == [3]
    assert [str(r["id"]) for r in await db.fetch("SELECT id FROM hub_process")] == [
        survivor.process_id
    ]
    assert not await db.fetchval("SELECT bool_or(online) FROM peer_presence")


def _fast_backoff() -> Backoff:
    # Full jitter as in production, on a window that fits a test: 0.2 s doubling to 2 s.
    return Backoff(base=0.2, cap=2.0)


async def test_after_a_kill_and_restart_every_client_resumes_without_loss_gap_or_repeat(
    db: asyncpg.Pool, procs: Processes
) -> None:
    """PeerClients of a SIGKILLed process reconnect to its restart by themselves; the watcher
    ends at the topic's head in PostgreSQL, having seen every committed event once."""
    hub = await procs.start("solo")
    hall = await make_presence_hall(db, devices=5)
    watcher = RecordingClient(
        hub.gateway_url, "console", token=hall.manager, topics=[hall.topic], backoff=_fast_backoff()
    )
    devices = [
        PeerClient(hub.gateway_url, "ticket_machine", token=token, backoff=_fast_backoff())
        for _, token in hall.devices
    ]
    clients: list[PeerClient] = [watcher, *devices]
    wire = watcher.wire[hall.topic]
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(watcher)
        await eventually(lambda: watcher.state == "live", 10, "the watcher live")
        for client in devices:
            await stack.enter_async_context(client)
        await eventually(lambda: all(c.state == "live" for c in clients), 10, "clients live")
        await eventually(lambda: wire.position == 5, 10, "five peer_online events")
        committed = await db.fetch(
            "SELECT seq, frame FROM topic_event WHERE topic = $1 ORDER BY seq", hall.topic
        )
        assert [r["seq"] for r in committed] == [1, 2, 3, 4, 5]
        old_id = hub.process_id

        await hub.kill()
        await eventually(
            lambda: all(c.state != "live" for c in clients), 10, "clients saw the link drop"
        )
        await hub.start()
        await eventually(lambda: all(c.state == "live" for c in clients), 15, "clients back")
        new_id = hub.process_id

        async def converged() -> bool:
            # The old process's lease ran out and was reaped, every device is online through
            # the new process, and the watcher stands at the head in PostgreSQL.
            if await db.fetchval(
                "SELECT count(*) FROM hub_process WHERE id = $1", uuid.UUID(old_id)
            ):
                return False
            if await db.fetchval(
                "SELECT count(*) FROM peer_presence WHERE online AND process_id = $1",
                uuid.UUID(new_id),
            ) != len(devices):
                return False
            position = watcher.positions[hall.topic]
            return (position.epoch, position.seq) == await topic_head(db, hall.topic)

        await until(converged, within=15, what="the watcher at the topic's head")

    # Resumed from its position (history is kept), not by a snapshot.
    resumes = [[t.resume for t in w.topics] for w in watcher.welcomes]
    assert resumes in ([["snapshot"], ["events"]], [["snapshot"], ["current"]]), resumes
    wire.assert_gap_free()
    applied = [u.seq for u in watcher.drain() if isinstance(u, Event) and u.seq is not None]
    assert applied == [e.seq for e in wire.events], "the client dropped a repeated event"
    after = await db.fetch(
        "SELECT seq, frame FROM topic_event WHERE topic = $1 AND seq <= 5 ORDER BY seq", hall.topic
    )
    assert [(r["seq"], r["frame"]) for r in after] == [(r["seq"], r["frame"]) for r in committed]
    assert {1, 2, 3, 4, 5} <= wire.seen()
    # Every device announced itself again through the new process.
    again = [(n, p) for seq, n, p in event_names(wire) if seq is not None and seq > 5]
    assert sorted(p for n, p in again if n == "peer_online") == sorted(hall.peer_ids)


async def test_a_killed_hub_leaves_no_worker_process_behind(procs: Processes) -> None:
    """The worker pool's processes end by themselves when their hub is SIGKILLed."""
    hub = await procs.start("solo")

    def children_now() -> list[int]:
        return [pid for pid in hub.session_members() if pid != hub.pid]

    # The pool comes up in the background after start (HALLHUB_WORKER_PRESTART, default).
    await eventually(lambda: bool(children_now()), 15, "the hub's worker pool")
    children = children_now()
    await hub.kill()
    await eventually(lambda: not hub.session_members(), 10, f"{children} gone")


async def test_a_silent_redis_degrades_fan_out_to_postgresql_and_recovers_by_itself(
    db: asyncpg.Pool, procs: Processes
) -> None:
    """Both processes' Redis link blackholed: each logs one bus_unhealthy and is not ready,
    yet serves its peers, and events cross via PostgreSQL; restored, all is well again."""
    hall = await make_presence_hall(db, devices=5)
    tokens = [token for _, token in hall.devices]
    redis = urlsplit(REDIS_URL)
    async with TcpProxy(redis.hostname or "127.0.0.1", redis.port or 6379) as proxy:
        a, b = await procs.start_all(
            "a", "b", HALLHUB_REDIS_URL=f"redis://127.0.0.1:{proxy.port}{redis.path}"
        )
        for hub in (a, b):
            assert await hub.ready() == (200, {"database": True, "bus": True, "bus_kind": "redis"})
        async with watching(a, hall) as (on_a, log_a), watching(b, hall) as (on_b, log_b):
            watchers = [(on_a, log_a), (on_b, log_b)]

            async def all_see(n: int) -> None:
                for peer, log in watchers:
                    await read_until(peer, log, functools.partial(_has_events, log, n))

            async with devices_on(a, tokens[:1]):
                await all_see(1)

                proxy.blackhole()
                await eventually(
                    lambda: all(h.logs("bus_unhealthy") for h in (a, b)), 10, "bus_unhealthy"
                )
                for hub in (a, b):
                    status, body = await hub.ready()
                    assert (status, body["database"], body["bus"]) == (503, True, False)

                # A serves its own peers; B learns of A's events from PostgreSQL.
                async with devices_on(a, tokens[1:3]):
                    await all_see(3)
                await all_see(5)
                for peer, log in watchers:
                    await read_quietly(peer, log)
                for hub in (a, b):
                    assert [line["level"] for line in hub.logs("bus_unhealthy")] == ["warning"]
                    assert (await hub.ready())[0] == 503

                proxy.restore()
                for hub in (a, b):
                    await until(
                        functools.partial(_ready, hub), within=10, what=f"{hub.name} ready again"
                    )
                    assert [line["level"] for line in hub.logs("bus_recovered")] == ["info"]
                    assert len(hub.logs("bus_unhealthy")) == 1
                # Events flow both ways again.
                async with devices_on(a, tokens[3:4]), devices_on(b, tokens[4:5]):
                    await all_see(7)
                await all_see(9)
            await all_see(10)
            for peer, log in watchers:
                await read_quietly(peer, log)

    p = hall.peer_ids
    for log in (log_a, log_b):
        assert_events(
            log,
            [
                ("peer_online", p[0]),
                *[("peer_online", p[1]), ("peer_online", p[2])],
                *[("peer_offline", p[1]), ("peer_offline", p[2])],
                *[("peer_online", p[3]), ("peer_online", p[4])],
                *[("peer_offline", p[3]), ("peer_offline", p[4])],
                ("peer_offline", p[0]),
            ],
        )
        assert event_names(log) == event_names(log_a)


def _has_events(log: TopicLog, n: int) -> bool:
    return len(log.events) >= n


async def _ready(hub: HubProcess) -> bool:
    return (await hub.ready())[0] == 200


async def test_sigterm_closes_peers_with_1012_and_marks_them_offline(
    db: asyncpg.Pool, procs: Processes
) -> None:
    """A stopping process closes its peers with 1012 (restart) and announces them offline."""
    a, b = await procs.start_all("a", "b")
    hall = await make_presence_hall(db, devices=3)
    async with watching(b, hall) as (watcher, log):
        async with (
            devices_on(a, [token for _, token in hall.devices]) as peers,
            watching(a, hall) as (console, _),
        ):
            await read_until(watcher, log, lambda: len(log.events) >= 3)
            a.signal(signal.SIGTERM)
            codes = await asyncio.gather(*(p.close_code() for p in [*peers, console]))
        assert [code for code, _ in codes] == [RESTART] * 4
        await read_until(watcher, log, lambda: len(log.events) >= 6)
        assert await a.exited() in (0, -signal.SIGTERM)
        await read_quietly(watcher, log)
    assert_events(
        log,
        [("peer_online", p) for p in hall.peer_ids] + [("peer_offline", p) for p in hall.peer_ids],
    )
    assert a.logs("hub_stopped")
    assert not await db.fetchval(
        "SELECT count(*) FROM hub_process WHERE id = $1", uuid.UUID(a.process_id)
    )
    assert not await db.fetchval("SELECT bool_or(online) FROM peer_presence")
