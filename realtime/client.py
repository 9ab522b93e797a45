"""The Python peer client: tests, the demo's simulated peers and the device agent use it.

It follows the same rules as the pages' client (frontend/lib/hub-client.js):

- per topic it keeps the last (epoch, seq) applied and sends them in ``hello`` after every
  reconnect, so the hub replays the missed events or sends a snapshot;
- an event with ``seq <= last`` is a duplicate and is dropped; a gap (``seq > last + 1``),
  another epoch or an event without a base asks for a snapshot, and events are dropped until
  it arrives; volatile events (``seq`` None) pass. Asking is ``unsubscribe`` then ``subscribe``
  with a null position: the gateway ignores a subscribe for a topic the peer already has;
- every peer sends a heartbeat when it sent nothing for ``heartbeat_seconds / 3``: the
  gateway closes any peer (4410) that stays silent past ``heartbeat_seconds``;
- a link that carries nothing (no tick, no frame) for 3 × ``tick_seconds`` is dead: it is
  aborted and the client reconnects with exponential backoff and full jitter.

:class:`TopicPositions` and :class:`Backoff` hold those rules without I/O; :class:`PeerClient`
is the asyncio shell around a ``websockets`` connection.

ClientError
├── PeerRejected   the hub closed with 4400/4401/4403/4404: retrying cannot help
└── LinkLost       the link dropped while a command waited for its reply
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Literal

import msgspec
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from realtime.messages import (
    Command,
    DeviceEvent,
    ErrorBody,
    Event,
    Heartbeat,
    Hello,
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
    decode_outbound,
    encode,
)
from realtime.positions import Backoff, TopicPositions, Verdict

__all__ = [
    "Backoff",
    "ClientError",
    "LinkLost",
    "PeerClient",
    "PeerRejected",
    "StateChange",
    "TopicPositions",
    "Verdict",
]

log = structlog.get_logger("realtime.client")

# Close codes after which a retry with the same token and topics cannot succeed.
FATAL_CLOSE_CODES = frozenset({4400, 4401, 4403, 4404})
DEAD_AFTER_TICKS = 3

State = Literal["connecting", "live", "reconnecting", "closed"]


class ClientError(Exception):
    """Root of the client's errors."""


class PeerRejected(ClientError):
    """The hub closed the link with a code that a retry cannot fix (bad token, forbidden topic)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"hub closed the link with {code}: {reason}")
        self.code = code
        self.reason = reason


class LinkLost(ClientError):
    """The link dropped before the reply came; the command may or may not have run."""


class StateChange(msgspec.Struct, frozen=True):
    """Put on :attr:`PeerClient.updates` when the link state changes. ``retry_in``: seconds
    until the next attempt, for ``reconnecting``."""

    state: State
    reason: str = ""
    retry_in: float | None = None


Update = Event | Snapshot | Command | StateChange


class _LinkDead(Exception):
    pass


class PeerClient:
    """One peer's link to the hub, kept up until :meth:`close`.

    Usage::

        async with PeerClient(url, "ticket_machine", token=t, topics=["hall:12"]) as peer:
            await peer.wait_live()
            update = await peer.updates.get()       # Event | Snapshot | Command | StateChange
            await peer.send_device_event("k-1", "paper_low", {"left_mm": 40})
            reply = await peer.command("ping", {})

    Args:
        url: the gateway, ``ws://host:port/``.
        kind: the peer kind sent in ``hello``; a device's must be its registered kind.
        token: device or staff session token; None for public topics only.
        topics: topics to subscribe to from the first ``hello``.
        heartbeat: send a heartbeat after ``heartbeat_seconds / 3`` without any frame sent.
        backoff: reconnect delays; pass ``Backoff(rand=...)`` for deterministic tests.
        first_frame_timeout: how long to wait for ``welcome`` while no tick period is known.
        max_outbox: device events kept while offline or unacknowledged; the oldest go first.

    Device events are acknowledged by a ``reply`` whose id is the event's key; those not
    acknowledged when a link ends are sent again after the next ``welcome`` (the hub accepts
    each key once, D6). :attr:`updates` is unbounded: a consumer must keep reading it.
    """

    def __init__(
        self,
        url: str,
        kind: str,
        *,
        token: str | None = None,
        topics: Iterable[str] = (),
        client: str = "hallhub-python",
        heartbeat: bool = True,
        backoff: Backoff | None = None,
        first_frame_timeout: float = 10.0,
        open_timeout: float = 10.0,
        max_outbox: int = 1000,
    ) -> None:
        self.url = url
        self.kind = kind
        self.token = token
        self.client = client
        self.heartbeat = heartbeat
        self.backoff = backoff or Backoff()
        self.first_frame_timeout = first_frame_timeout
        self.open_timeout = open_timeout
        self.max_outbox = max_outbox
        self.tracker = TopicPositions(topics)
        self.updates: asyncio.Queue[Update] = asyncio.Queue()
        self.state: State = "connecting"
        self.welcome: Welcome | None = None
        self.tick_seconds: float | None = None
        self._ws: ClientConnection | None = None
        self._live = asyncio.Event()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._ids = (f"{secrets.token_hex(4)}-{n}" for n in itertools.count(1))
        self._outbox: deque[DeviceEvent] = deque(maxlen=max_outbox)
        self._unacked: dict[str, DeviceEvent] = {}
        self._last_sent = 0.0
        self._log = log.bind(kind=kind, url=url)

    @property
    def positions(self) -> dict[str, Position]:
        return {p.topic: p for p in self.tracker.positions()}

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> PeerClient:
        self._task = asyncio.create_task(self.run(), name=f"peer-client-{self.kind}")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        task = self._task
        await self.close()
        # A rejection ends run() early; report it unless something else is on its way out.
        if task is not None and et is None and not task.cancelled():
            exc = task.exception()
            if exc is not None:
                raise exc

    async def run(self) -> None:
        """Connect and keep connected until :meth:`close`.

        Raises:
            PeerRejected: the hub closed with a code in :data:`FATAL_CLOSE_CODES`.
        """
        try:
            while not self._closing:
                reason = await self._connect_once()
                if self._closing:
                    break
                delay = self.backoff.next()
                self._log.info("reconnect_scheduled", reason=reason, retry_in=round(delay, 3))
                self._set_state("reconnecting", reason, delay)
                self._wake.clear()
                # close() sets _wake so a long backoff does not delay shutdown.
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        except PeerRejected as exc:
            self._set_state("closed", f"rejected {exc.code}")
            raise
        finally:
            self._set_state("closed", "closed")

    async def close(self) -> None:
        """Close the link and stop reconnecting; waits for :meth:`run` if it was started by
        ``async with``. Idempotent."""
        self._closing = True
        self._wake.set()
        ws = self._ws
        if ws is not None:
            await ws.close()
        task = self._task
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait([task])

    async def wait_live(self) -> None:
        """Return once the link is live (``welcome`` received)."""
        await self._live.wait()

    # --- sending ---------------------------------------------------------------------------

    async def subscribe(self, topics: Iterable[str]) -> None:
        """Add topics; sent now when live, else in the next ``hello``."""
        new = [name for name in topics if self.tracker.add(name)]
        if new and self._live.is_set():
            await self._send(Subscribe([self.tracker.position(name) for name in new]))

    async def unsubscribe(self, topics: Iterable[str]) -> None:
        names = list(topics)
        for name in names:
            self.tracker.remove(name)
        if names and self._live.is_set():
            await self._send(Unsubscribe(names))

    async def send_device_event(self, key: str, name: str, data: dict[str, Any]) -> None:
        """Report a device event. While the link is down it waits in a bounded outbox and is
        sent after the next ``welcome``; until the hub acknowledges it, it is sent again after
        every reconnect (``key`` makes a re-send harmless)."""
        event = DeviceEvent(key, name, data)
        if not self._live.is_set() or not await self._try_send_event(event):
            self._outbox.append(event)

    async def command(self, name: str, args: dict[str, Any]) -> Reply:
        """Send a command once the link is live and wait for its reply (also when ``ok`` is
        False). Bound the wait with ``asyncio.timeout``.

        Raises:
            LinkLost: the link dropped before the reply.
        """
        request_id = next(self._ids)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        await self._live.wait()
        self._pending[request_id] = future
        try:
            await self._send(Command(request_id, name, args))
            return await future
        except ConnectionClosed as exc:
            raise LinkLost(f"link dropped while sending {name}") from exc
        finally:
            self._pending.pop(request_id, None)

    async def reply(
        self, request_id: str, ok: bool, data: Any = None, error: ErrorBody | None = None
    ) -> None:
        """Answer a :class:`Command` the hub sent (print_ticket, prompt_rating…)."""
        await self._send(Reply(request_id, ok, data, error))

    async def _send(self, message: msgspec.Struct) -> None:
        ws = self._ws
        if ws is None:
            raise ConnectionClosed(None, None)
        await ws.send(encode(message), text=True)
        self._last_sent = asyncio.get_running_loop().time()

    async def _try_send_event(self, event: DeviceEvent) -> bool:
        try:
            await self._send(event)
        except ConnectionClosed:
            return False
        self._unacked[event.key] = event
        if len(self._unacked) > self.max_outbox:
            oldest = next(iter(self._unacked))
            self._log.warning("device_event_dropped", key=oldest)
            del self._unacked[oldest]
        return True

    async def _request_snapshot(self, topic: str) -> None:
        # The gateway skips a subscribe for a topic the peer already has, so leave it first;
        # a null position then always gets a snapshot.
        await self._send(Unsubscribe([topic]))
        await self._send(Subscribe([Position(topic)]))

    # --- one connection --------------------------------------------------------------------

    async def _connect_once(self) -> str:
        """One connection from open to end; returns why it ended."""
        try:
            # proxy=None: halls are intranets, an HTTP(S)_PROXY from the environment is
            # for the internet. ping_interval=None: the hub's ticks are the liveness check.
            ws = await connect(
                self.url, proxy=None, ping_interval=None, open_timeout=self.open_timeout
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            return f"connect failed: {exc!r}"[:200]
        self._ws = ws
        dead = False
        try:
            await self._session(ws)
            return "ended"
        except _LinkDead as exc:
            dead = True
            return str(exc)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            reason = exc.rcvd.reason if exc.rcvd is not None else ""
            if code in FATAL_CLOSE_CODES and not self._closing:
                raise PeerRejected(code, reason) from exc
            return f"closed {code} {reason}".strip()
        finally:
            self._ws = None
            self._live.clear()
            self._end_of_link()
            if dead:
                # A silent link may never answer a closing handshake: do not wait for one.
                ws.transport.abort()
            else:
                await ws.close()

    async def _session(self, ws: ClientConnection) -> None:
        hello = Hello(self.kind, self.token, self.tracker.positions(), client=self.client)
        await ws.send(encode(hello), text=True)
        heartbeats: asyncio.Task[None] | None = None
        try:
            while True:
                limit = (
                    DEAD_AFTER_TICKS * self.tick_seconds
                    if self.tick_seconds
                    else self.first_frame_timeout
                )
                try:
                    async with asyncio.timeout(limit):
                        raw = await ws.recv()
                except TimeoutError:
                    self._log.warning("link_silent", silent_for=limit)
                    raise _LinkDead(f"silent for {limit:g} s") from None
                try:
                    frame = decode_outbound(raw)
                except msgspec.DecodeError as exc:
                    self._log.warning("bad_frame", error=str(exc), frame=str(raw)[:200])
                    continue
                if isinstance(frame, Welcome):
                    await self._on_welcome(frame)
                    if self.heartbeat and heartbeats is None:
                        heartbeats = asyncio.create_task(self._heartbeats(frame))
                else:
                    await self._on_frame(frame)
        finally:
            if heartbeats is not None:
                heartbeats.cancel()

    async def _on_welcome(self, welcome: Welcome) -> None:
        self.welcome = welcome
        self.tick_seconds = welcome.tick_seconds
        await self._on_topic_states(welcome.topics)
        self.backoff.reset()
        self._live.set()
        self._set_state("live")
        self._log.info("live", peer=welcome.peer.id)
        while self._outbox:
            if not await self._try_send_event(self._outbox[0]):
                return
            self._outbox.popleft()

    async def _on_frame(self, frame: Any) -> None:
        if isinstance(frame, Event):
            verdict = self.tracker.on_event(frame)
            if verdict in (Verdict.APPLY, Verdict.VOLATILE):
                self.updates.put_nowait(frame)
            elif verdict.needs_snapshot:
                self._log.info("snapshot_requested", topic=frame.topic, why=verdict.value)
                await self._request_snapshot(frame.topic)
        elif isinstance(frame, Snapshot):
            if self.tracker.on_snapshot(frame):
                self.updates.put_nowait(frame)
        elif isinstance(frame, Subscribed):
            await self._on_topic_states(frame.topics)
        elif isinstance(frame, Resync):
            self._log.info("resync", topics=frame.topics, reason=frame.reason)
            self.tracker.on_resync(frame.topics)
        elif isinstance(frame, Reply):
            if self._unacked.pop(frame.id, None) is not None:
                return  # the hub took a device event (reply id = event key)
            future = self._pending.get(frame.id)
            if future is not None and not future.done():
                future.set_result(frame)
        elif isinstance(frame, Command):
            self.updates.put_nowait(frame)
        elif not isinstance(frame, Tick):
            self._log.warning("unexpected_frame", type=type(frame).__name__)

    async def _on_topic_states(self, states: list[TopicState]) -> None:
        for state in states:
            if self.tracker.on_topic_state(state):
                await self._request_snapshot(state.topic)

    async def _heartbeats(self, welcome: Welcome) -> None:
        # The gateway closes a peer (4410) and marks a device offline after heartbeat_seconds
        # of silence; any frame counts, so a heartbeat goes only after a third of that idle.
        interval = welcome.heartbeat_seconds / 3
        loop = asyncio.get_running_loop()
        try:
            while True:
                idle = loop.time() - self._last_sent
                if idle >= interval:
                    await self._send(Heartbeat())
                    idle = 0.0
                await asyncio.sleep(interval - idle)
        except ConnectionClosed:
            return  # the receive loop sees the close and reconnects

    def _end_of_link(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(LinkLost("link dropped before the reply"))
        self._pending.clear()
        # Unacknowledged events may not have reached the hub: they go first after the next
        # welcome; the hub accepts each idempotency key once.
        self._outbox = deque([*self._unacked.values(), *self._outbox], maxlen=self.max_outbox)
        self._unacked.clear()

    def _set_state(self, state: State, reason: str = "", retry_in: float | None = None) -> None:
        if state == self.state and state != "reconnecting":
            return
        self.state = state
        self.updates.put_nowait(StateChange(state, reason, retry_in))
