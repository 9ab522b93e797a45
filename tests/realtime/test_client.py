"""PeerClient against a small in-test gateway that speaks the protocol's bytes.

:class:`FakeGateway` is also used by tests/e2e/test_hub_client_js.py to drive the pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import msgspec
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from realtime.client import (
    Backoff,
    LinkLost,
    PeerClient,
    PeerRejected,
    StateChange,
    TopicPositions,
    Update,
    Verdict,
)
from realtime.messages import (
    Command,
    DeviceEvent,
    Event,
    Heartbeat,
    Hello,
    Inbound,
    PeerInfo,
    Position,
    Reply,
    Resync,
    Snapshot,
    Subscribe,
    Subscribed,
    Tick,
    TopicState,
    Unsubscribe,
    Welcome,
    decode_inbound,
    encode,
)

TOPIC = "hall:12"
WAIT = 5.0  # upper bound for anything that should happen "now"; never a sleep

T = TypeVar("T")


# --- the fake gateway ----------------------------------------------------------------------


class FakePeer:
    """One accepted connection, after its ``hello``; the test sends the hub's frames."""

    def __init__(self, ws: ServerConnection, hello: Hello) -> None:
        self.ws = ws
        self.hello = hello
        self.inbox: asyncio.Queue[Inbound] = asyncio.Queue()
        self.ticks_sent = asyncio.Queue[float]()
        self._ticks: asyncio.Task[None] | None = None
        self._ticking = False

    async def send(self, *messages: msgspec.Struct) -> None:
        for message in messages:
            await self.ws.send(encode(message), text=True)

    async def welcome(
        self,
        *topics: TopicState,
        tick_seconds: float = 5.0,
        heartbeat_seconds: float = 15.0,
        kind: str = "staff",
    ) -> None:
        peer = PeerInfo("peer-1", kind, 12)
        await self.send(Welcome(peer, tick_seconds, heartbeat_seconds, time.time(), list(topics)))

    async def recv(self, *, heartbeats: bool = False) -> Inbound:
        """The next frame from the client (heartbeats skipped unless asked for)."""
        async with asyncio.timeout(WAIT):
            while True:
                frame = await self.inbox.get()
                if heartbeats or not isinstance(frame, Heartbeat):
                    return frame

    def start_ticks(self, period: float) -> None:
        """Send a tick every ``period``; each send time goes to ``ticks_sent``."""

        async def ticks() -> None:
            with contextlib.suppress(ConnectionClosed):
                while self._ticking:
                    await self.send(Tick(time.time()))
                    self.ticks_sent.put_nowait(time.monotonic())
                    await asyncio.sleep(period)

        self._ticking = True
        self._ticks = asyncio.create_task(ticks())

    def stop_ticks(self) -> None:
        """Stop after the tick being sent, so ``ticks_sent`` ends with the last one sent."""
        self._ticking = False

    async def close(self, code: int = 1012, reason: str = "restarting") -> None:
        self.stop_ticks()
        await self.ws.close(code, reason)


Responder = Callable[[FakePeer], Awaitable[None]]


class FakeGateway:
    """A websockets server on port 0; each connection's ``hello`` yields a :class:`FakePeer`
    on :meth:`next_peer`, or goes to ``responder`` when one is set."""

    def __init__(self) -> None:
        self.peers: asyncio.Queue[FakePeer] = asyncio.Queue()
        self.responder: Responder | None = None
        self.all_peers: list[FakePeer] = []
        self._server: Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def __aenter__(self) -> FakeGateway:
        self._server = await serve(self._handler, "127.0.0.1", 0, ping_interval=None)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for peer in self.all_peers:
            peer.stop_ticks()
            if peer._ticks is not None:
                peer._ticks.cancel()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def next_peer(self) -> FakePeer:
        async with asyncio.timeout(WAIT):
            return await self.peers.get()

    async def _handler(self, ws: ServerConnection) -> None:
        try:
            hello = decode_inbound(await ws.recv())
            assert isinstance(hello, Hello), hello
            peer = FakePeer(ws, hello)
            self.all_peers.append(peer)
            if self.responder is not None:
                await self.responder(peer)
            else:
                self.peers.put_nowait(peer)
            async for raw in ws:
                peer.inbox.put_nowait(decode_inbound(raw))
        except ConnectionClosed:
            pass
        finally:
            for peer in self.all_peers:
                if peer.ws is ws:
                    peer.stop_ticks()


# --- helpers -------------------------------------------------------------------------------


def event(seq: int | None, *, epoch: int = 1, name: str = "called", topic: str = TOPIC) -> Event:
    return Event(topic, epoch, seq, 1.0, name, {"seq": seq})


async def next_update(client: PeerClient, of: type[T]) -> T:
    """The next update of the given type; state changes in between are skipped."""
    async with asyncio.timeout(WAIT):
        while True:
            update: Update = await client.updates.get()
            if isinstance(update, of):
                return update
            assert isinstance(update, StateChange), f"expected {of.__name__}, got {update}"


async def next_state(client: PeerClient, state: str) -> StateChange:
    async with asyncio.timeout(WAIT):
        while True:
            update = await client.updates.get()
            if isinstance(update, StateChange) and update.state == state:
                return update


async def events_until(client: PeerClient, last_seq: int) -> list[int | None]:
    """Seqs of the events delivered up to and including ``last_seq``."""
    seqs: list[int | None] = []
    while not seqs or seqs[-1] != last_seq:
        seqs.append((await next_update(client, Event)).seq)
    return seqs


async def live_at(peer: FakePeer, client: PeerClient, seq: int, **welcome: Any) -> None:
    """Welcome ``peer`` with a snapshot of TOPIC at (1, seq) and wait until it is applied."""
    await peer.welcome(TopicState(TOPIC, 1, seq, "snapshot"), **welcome)
    await peer.send(Snapshot(TOPIC, 1, seq, {"upto": seq}))
    assert await next_update(client, Snapshot) == Snapshot(TOPIC, 1, seq, {"upto": seq})


async def snapshot_requested(peer: FakePeer, topic: str = TOPIC) -> None:
    """The client asks for a snapshot: it leaves the topic and subscribes from nothing."""
    assert [await peer.recv(), await peer.recv()] == [
        Unsubscribe([topic]),
        Subscribe([Position(topic)]),
    ]


def fast_backoff() -> Backoff:
    return Backoff(base=0.05, cap=0.2, rand=lambda: 1.0)


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    async with FakeGateway() as gw:
        yield gw


@contextlib.asynccontextmanager
async def peer_client(
    gateway: FakeGateway, kind: str = "staff", **kwargs: Any
) -> AsyncIterator[PeerClient]:
    kwargs.setdefault("topics", [TOPIC])
    kwargs.setdefault("backoff", fast_backoff())
    async with PeerClient(gateway.url, kind, token="t0k", **kwargs) as client:
        yield client


# --- the rules without I/O -----------------------------------------------------------------


def test_backoff_doubles_its_window_up_to_the_cap_and_resets() -> None:
    """Each delay is rand() times a window that doubles from base up to cap."""
    backoff = Backoff(base=0.5, cap=3.0, rand=lambda: 0.5)
    assert [backoff.next() for _ in range(5)] == [0.25, 0.5, 1.0, 1.5, 1.5]
    backoff.reset()
    assert backoff.next() == 0.25


@pytest.mark.parametrize(
    ("frames", "verdicts"),
    [
        ([event(6), event(6), event(5), event(7)], ["apply", "duplicate", "duplicate", "apply"]),
        ([event(8), event(6)], ["gap", "waiting"]),
        ([event(1, epoch=2), event(6)], ["epoch", "waiting"]),
        ([event(None), event(6)], ["volatile", "apply"]),
        ([event(6, topic="hall:99")], ["unsubscribed"]),
    ],
)
def test_positions_classify_events(frames: list[Event], verdicts: list[str]) -> None:
    """From (1, 5): duplicates drop, a gap or a new epoch waits for a snapshot."""
    positions = TopicPositions([TOPIC])
    positions.on_snapshot(Snapshot(TOPIC, 1, 5, None))
    assert [positions.on_event(f).value for f in frames] == verdicts


def test_current_with_another_position_asks_for_a_snapshot() -> None:
    """A hub that says "current" at a position other than ours gets a snapshot request."""
    positions = TopicPositions([TOPIC])
    positions.on_snapshot(Snapshot(TOPIC, 1, 5, None))
    assert positions.on_topic_state(TopicState(TOPIC, 1, 5, "current")) is False
    assert positions.on_topic_state(TopicState(TOPIC, 1, 9, "current")) is True
    assert positions.position(TOPIC) == Position(TOPIC)
    assert positions.on_event(event(10)) is Verdict.WAITING


# --- the client against the fake gateway ---------------------------------------------------


async def test_first_hello_carries_kind_token_and_null_positions(gateway: FakeGateway) -> None:
    """A fresh client asks for every topic from nothing, then applies the snapshot."""
    async with peer_client(gateway, client="test") as client:
        peer = await gateway.next_peer()
        assert peer.hello == Hello("staff", "t0k", [Position(TOPIC)], client="test")
        await live_at(peer, client, 5)
        assert client.state == "live"
        assert client.positions == {TOPIC: Position(TOPIC, 1, 5)}


async def test_repeated_seq_is_applied_once(gateway: FakeGateway) -> None:
    """Events at or below the last applied seq are dropped."""
    async with peer_client(gateway) as client:
        peer = await gateway.next_peer()
        await live_at(peer, client, 5)
        await peer.send(event(6), event(6), event(5), event(7), event(7), event(8))
        assert await events_until(client, 8) == [6, 7, 8]
        assert client.positions[TOPIC] == Position(TOPIC, 1, 8)


async def test_gap_asks_for_a_snapshot_and_drops_events_until_it_comes(
    gateway: FakeGateway,
) -> None:
    """After a gap the client asks for a snapshot and drops events until it comes."""
    async with peer_client(gateway) as client:
        peer = await gateway.next_peer()
        await live_at(peer, client, 5)
        await peer.send(event(7))
        await snapshot_requested(peer)
        await peer.send(event(8))  # arrives while the snapshot is awaited: dropped
        await peer.send(
            Subscribed([TopicState(TOPIC, 1, 8, "snapshot")]), Snapshot(TOPIC, 1, 8, "s8")
        )
        await peer.send(event(9))
        assert await next_update(client, Snapshot) == Snapshot(TOPIC, 1, 8, "s8")
        assert await events_until(client, 9) == [9]


async def test_new_epoch_asks_for_a_snapshot(gateway: FakeGateway) -> None:
    """An event of another epoch means the history was reset: snapshot first."""
    async with peer_client(gateway) as client:
        peer = await gateway.next_peer()
        await live_at(peer, client, 5)
        await peer.send(event(1, epoch=2))
        await snapshot_requested(peer)
        await peer.send(
            Subscribed([TopicState(TOPIC, 2, 1, "snapshot")]),
            Snapshot(TOPIC, 2, 1, "e2"),
            event(2, epoch=2),
        )
        assert await next_update(client, Snapshot) == Snapshot(TOPIC, 2, 1, "e2")
        assert (await next_update(client, Event)) == event(2, epoch=2)
        assert client.positions[TOPIC] == Position(TOPIC, 2, 2)


async def test_volatile_events_pass_without_moving_the_position(gateway: FakeGateway) -> None:
    """seq None is delivered as is and leaves dedupe and gap detection alone."""
    async with peer_client(gateway) as client:
        peer = await gateway.next_peer()
        await live_at(peer, client, 5)
        await peer.send(event(None, name="peers_seen"), event(6))
        assert await events_until(client, 6) == [None, 6]
        assert client.positions[TOPIC] == Position(TOPIC, 1, 6)


async def test_resync_drops_events_until_the_snapshot(gateway: FakeGateway) -> None:
    """After resync the hub's snapshot replaces the state; events before it are dropped."""
    async with peer_client(gateway) as client:
        peer = await gateway.next_peer()
        await live_at(peer, client, 5)
        await peer.send(Resync([TOPIC], "too_slow"), event(6), Snapshot(TOPIC, 1, 9, "s9"))
        await peer.send(event(10))
        assert await next_update(client, Snapshot) == Snapshot(TOPIC, 1, 9, "s9")
        assert await events_until(client, 10) == [10]


async def test_reconnects_with_growing_backoff_and_resumes_from_its_position(
    gateway: FakeGateway,
) -> None:
    """A hub-side close leads to a reconnect whose hello carries the last position; the
    backoff window doubles while attempts fail and starts over once live."""
    async with peer_client(gateway) as client:
        peer = await gateway.next_peer()
        await live_at(peer, client, 5)
        await peer.send(event(6))
        await events_until(client, 6)

        await peer.close(1012)
        assert await next_state(client, "reconnecting") == StateChange(
            "reconnecting", "closed 1012 restarting", 0.05
        )
        second = await gateway.next_peer()
        assert second.hello.topics == [Position(TOPIC, 1, 6)]
        await second.close(1012)
        assert (await next_state(client, "reconnecting")).retry_in == 0.1

        third = await gateway.next_peer()
        assert third.hello.topics == [Position(TOPIC, 1, 6)]
        await third.welcome(TopicState(TOPIC, 1, 8, "events"))
        await third.send(event(7), event(8))
        assert await events_until(client, 8) == [7, 8]
        await third.close(1012)
        assert (await next_state(client, "reconnecting")).retry_in == 0.05


async def test_silent_link_is_declared_dead_within_three_ticks(gateway: FakeGateway) -> None:
    """No close, no frames: after 3 tick periods the client aborts and reconnects."""
    tick = 0.2
    async with peer_client(gateway) as client:
        peer = await gateway.next_peer()
        await live_at(peer, client, 5, tick_seconds=tick)
        peer.start_ticks(tick)
        for _ in range(3):
            last_tick = await peer.ticks_sent.get()
        peer.stop_ticks()
        change = await next_state(client, "reconnecting")
        while not peer.ticks_sent.empty():
            last_tick = peer.ticks_sent.get_nowait()
        silent_for = time.monotonic() - last_tick
        assert change.reason == "silent for 0.6 s"
        assert 3 * tick - 0.05 <= silent_for <= 3 * tick + 0.3
        again = await gateway.next_peer()
        assert again.hello.topics == [Position(TOPIC, 1, 5)]


async def test_rejected_token_ends_run(gateway: FakeGateway) -> None:
    """A 4401 close is final: run() raises instead of retrying."""
    client = PeerClient(gateway.url, "staff", token="bad", backoff=fast_backoff())

    async def reject() -> None:
        peer = await gateway.next_peer()
        await peer.close(4401, "unknown token")

    rejecting = asyncio.create_task(reject())
    with pytest.raises(PeerRejected) as caught:
        async with asyncio.timeout(WAIT):
            await client.run()
    await rejecting
    assert (caught.value.code, client.state) == (4401, "closed")


async def test_peer_sends_heartbeats_when_idle(gateway: FakeGateway) -> None:
    """Something goes out at least every heartbeat_seconds / 3 (the gateway closes silent
    peers of any kind)."""
    async with peer_client(gateway, "ticket_machine", topics=[]) as client:
        peer = await gateway.next_peer()
        await peer.welcome(heartbeat_seconds=0.15, kind="ticket_machine")
        await client.wait_live()
        assert await peer.recv(heartbeats=True) == Heartbeat()
        assert await peer.recv(heartbeats=True) == Heartbeat()


async def test_command_returns_the_reply_with_its_id(gateway: FakeGateway) -> None:
    """command() sends a request id and returns the Reply that carries it."""
    async with peer_client(gateway) as client:
        peer = await gateway.next_peer()
        await live_at(peer, client, 5)
        asking = asyncio.create_task(client.command("call_next", {"window": 3}))
        sent = await peer.recv()
        assert isinstance(sent, Command)
        assert (sent.name, sent.args) == ("call_next", {"window": 3})
        await peer.send(Reply("other", True), Reply(sent.id, True, {"ticket": "A001"}))
        assert await asking == Reply(sent.id, True, {"ticket": "A001"})


async def test_link_loss_fails_the_waiting_command(gateway: FakeGateway) -> None:
    """A reply cannot come on another connection: the caller gets LinkLost."""
    async with peer_client(gateway) as client:
        peer = await gateway.next_peer()
        await live_at(peer, client, 5)
        asking = asyncio.create_task(client.command("call_next", {}))
        await peer.recv()
        await peer.close(1012)
        with pytest.raises(LinkLost):
            await asking


async def test_hub_command_reaches_updates_and_the_reply_goes_back(
    gateway: FakeGateway,
) -> None:
    """A device gets the hub's commands on updates and answers by request id."""
    async with peer_client(gateway, "ticket_machine", topics=[]) as client:
        peer = await gateway.next_peer()
        await peer.welcome(kind="ticket_machine")
        await peer.send(Command("r-1", "print_ticket", {"number": "A001"}))
        command = await next_update(client, Command)
        await client.reply(command.id, True, {"printed": True})
        assert await peer.recv() == Reply("r-1", True, {"printed": True})


async def test_device_events_wait_for_the_link_and_unacked_ones_are_resent(
    gateway: FakeGateway,
) -> None:
    """Sent offline: queued until welcome. Not acknowledged (reply id = key) when the link
    died: sent again after the reconnect, since the hub accepts each key once."""
    async with peer_client(gateway, "evaluator", topics=[]) as client:
        await client.send_device_event("k-1", "rating", {"grade": "satisfied"})
        peer = await gateway.next_peer()
        await peer.welcome(kind="evaluator")
        assert await peer.recv() == DeviceEvent("k-1", "rating", {"grade": "satisfied"})
        await peer.send(Reply("k-1", True))
        await client.send_device_event("k-2", "paper_low", {})
        assert await peer.recv() == DeviceEvent("k-2", "paper_low", {})
        await peer.close(1012)
        again = await gateway.next_peer()
        await again.welcome(kind="evaluator")
        assert await again.recv() == DeviceEvent("k-2", "paper_low", {})
        await again.send(Reply("k-2", True))
        await client.send_device_event("k-3", "paper_out", {})
        assert await again.recv() == DeviceEvent("k-3", "paper_out", {})


async def test_close_stops_reconnecting(gateway: FakeGateway) -> None:
    """close() during a backoff wait ends run() at once with state closed."""
    client = PeerClient(gateway.url, "staff", backoff=Backoff(base=60, cap=60, rand=lambda: 1))
    async with client:
        peer = await gateway.next_peer()
        await peer.close(1012)
        assert (await next_state(client, "reconnecting")).retry_in == 60
    assert client.state == "closed"
