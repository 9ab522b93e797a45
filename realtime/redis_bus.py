"""The Redis backend of the bus: pub/sub on one channel, with a heartbeat (Scale-out, DESIGN.md).

Every event is one PUBLISH of :func:`realtime.bus.pack` bytes on ``{prefix}:events``; every
bus SUBSCRIBEs to that channel on a dedicated connection and hands messages of other origins
to ``on_message`` in the order Redis delivered them.

Liveness does not rely on TCP: a route or middlebox that silently drops packets keeps the
socket open, and pub/sub then just goes quiet. So each bus PUBLISHes a heartbeat (a
:class:`BusMessage` with topic ``""``, which no topic name can be) every
``heartbeat_seconds`` on the same channel. Anything received proves the subscription alive;
nothing for ``deaf_seconds`` means it is deaf: the connection is closed without waiting and a
new one subscribes, with backoff and jitter, until it works.

Health: the bus is healthy from the moment one of its *own* heartbeats made the whole round
trip (PUBLISH, channel, subscription) after the last failure, until the next failure: a deaf or
lost subscription, or a failed PUBLISH. Each flip is logged once (a warning going down, an info
line coming back) and reported through ``on_health``, so that receivers reconcile with
PostgreSQL after a recovery (H3: the bus may lose messages, never the truth).

Limits: a PUBLISH on a silent network waits up to ``command_timeout_seconds`` before giving up,
so a publisher can be held that long per message while the bus is unhealthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import Awaitable
from typing import Any, TypeVar

import msgspec
import structlog
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from realtime.bus import Bus, BusMessage, pack, unpack
from realtime.metrics import BUS_HEALTHY

log = structlog.get_logger("realtime.redis_bus")

HEARTBEAT_TOPIC = ""
"""Topic of heartbeat messages; topic names are ``kind:key`` (realtime/topics.py), never empty."""

_BACKOFF_BASE_SECONDS = 0.1
_CLIENT_NAME = "hallhub-bus:{origin}"
_T = TypeVar("_T")


class RedisBus(Bus):
    """Cross-process fan-out through Redis pub/sub, with its own liveness check.

    Args:
        origin: this process's id; messages of this origin are not passed to ``on_message``.
        url: a redis-py URL (``redis://host:port/db``, ``rediss://``, ``unix://``).
        prefix: key prefix; the channel is ``{prefix}:events``.
        heartbeat_seconds: period of this bus's heartbeat PUBLISH.
        deaf_seconds: silence after which the subscription is declared deaf and replaced;
            also the cap of the re-subscribe backoff. Must exceed ``heartbeat_seconds``.
        command_timeout_seconds: bound of one connect, PUBLISH or SUBSCRIBE, so a dead or
            silent Redis cannot hold a publisher for longer.

    Raises:
        ValueError: a period is not positive or ``deaf_seconds <= heartbeat_seconds``.
    """

    def __init__(
        self,
        origin: str,
        url: str,
        prefix: str,
        heartbeat_seconds: float = 1.0,
        deaf_seconds: float = 5.0,
        *,
        command_timeout_seconds: float = 1.0,
    ) -> None:
        if heartbeat_seconds <= 0 or command_timeout_seconds <= 0:
            raise ValueError("heartbeat_seconds and command_timeout_seconds must be positive")
        if deaf_seconds <= heartbeat_seconds:
            raise ValueError("deaf_seconds must be greater than heartbeat_seconds")
        super().__init__(origin)
        self.channel = f"{prefix}:events"
        self._url = url
        self._heartbeat_seconds = heartbeat_seconds
        self._deaf_seconds = deaf_seconds
        self._command_timeout = command_timeout_seconds
        self._client: Redis | None = None
        self._subscription: AbstractConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: asyncio.Task[None] | None = None
        # Heartbeats are numbered; one numbered _proof_from or later, received back, proves
        # both directions work again after the failure that set it.
        self._beat = 0
        self._proof_from = 0
        self._beat_now = asyncio.Event()
        self._down_since = 0.0
        self._log = log.bind(origin=origin, channel=self.channel)

    async def start(self) -> None:
        """Subscribe, then start the listener and the heartbeat.

        Does not raise if Redis is down or silent (returns within about
        ``command_timeout_seconds``): the bus starts unhealthy and keeps trying.

        Raises:
            RuntimeError: called twice, or after :meth:`stop`.
            ValueError: the URL cannot be parsed.
        """
        if self._client is not None or self._closing is not None:
            raise RuntimeError("RedisBus.start() runs once")
        self._client = Redis.from_url(
            self._url,
            # RESP2: pub/sub messages stay plain replies read by our listener; with RESP3
            # redis-py routes them through push handlers behind the listener's back.
            protocol=2,
            socket_timeout=self._command_timeout,
            socket_connect_timeout=self._command_timeout,
            # No retries inside redis-py: they would multiply a publisher's worst-case wait,
            # and its PubSub retry reconnects and re-subscribes silently, hiding a gap that
            # receivers must fill. This class does its own retrying.
            retry=Retry(NoBackoff(), 0),
            # Names this process in CLIENT LIST; Redis refuses spaces and control characters.
            client_name=_CLIENT_NAME.format(origin=re.sub(r"[^!-~]", "_", self.origin)),
        )
        try:
            self._subscription = await self._subscribe()
        except (RedisError, OSError) as exc:
            self._mark_unhealthy("unreachable", exc)
        else:
            BUS_HEALTHY.set(1 if self.healthy else 0)
        if self._closing is not None:
            # stop() ran while we subscribed: it found nothing to close but the client.
            if self._subscription is not None:
                await _close_hard(self._subscription)
                self._subscription = None
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen(), name=f"redis-bus-listen-{self.origin}"),
            loop.create_task(self._heartbeat(), name=f"redis-bus-heartbeat-{self.origin}"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._task_done)

    async def publish(self, message: BusMessage) -> None:
        """PUBLISH one message; never raises for a Redis failure (marks the bus unhealthy).

        After :meth:`stop` this does nothing: the process is shutting down.

        Raises:
            RuntimeError: :meth:`start` has not run.
        """
        if self._client is None:
            raise RuntimeError("RedisBus.start() has not run")
        if self._closing is not None:
            return
        if not self.healthy:
            # Degraded: the receivers fill the gap from PostgreSQL (reconcile), so a state
            # change must not wait a command timeout per event on a dead Redis. The
            # heartbeat task keeps probing and restores health.
            return
        await self._send(pack(message))

    async def stop(self) -> None:
        """Cancel the listener and the heartbeat and close the connections; idempotent.

        If the caller is cancelled meanwhile, the close still completes in the background.
        """
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        # Shielded, as asyncpg's Pool.release: a cancelled shutdown must not leave a
        # subscribed connection or a heartbeat task behind.
        await asyncio.shield(self._closing)

    def _set_health(self, healthy: bool) -> None:
        try:
            super()._set_health(healthy)
        except Exception:
            # The receiver's callback failing must not kill the listener or the heartbeat.
            self._log.exception("bus_health_handler_failed", healthy=healthy)
        BUS_HEALTHY.set(1 if self.healthy else 0)

    async def _subscribe(self) -> AbstractConnection:
        """A new connection, SUBSCRIBEd and confirmed; each step bounded by the timeout."""
        assert self._client is not None
        pool = self._client.connection_pool
        # A connection outside the pool: it is never handed to a command, and closing it
        # does not touch the publishers' connections.
        conn: AbstractConnection = pool.connection_class(**pool.connection_kwargs)
        try:
            await _honouring_cancel(self._subscribe_on(conn))
        except BaseException:
            await _close_hard(conn)
            raise
        return conn

    async def _subscribe_on(self, conn: AbstractConnection) -> None:
        await conn.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        await conn.send_command("SUBSCRIBE", self.channel)
        reply = await conn.read_response()
        if not (isinstance(reply, list) and reply and reply[0] == b"subscribe"):
            raise RedisError(f"unexpected reply to SUBSCRIBE: {reply!r:.80}")

    async def _listen(self) -> None:
        """Read the subscription until it is deaf or lost, replace it, forever."""
        attempt = 0
        while True:
            if self._subscription is None:
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                try:
                    self._subscription = await self._subscribe()
                except (RedisError, OSError) as exc:
                    self._log.debug("bus_subscribe_failed", attempt=attempt, error=str(exc))
                    continue
                except Exception:
                    # Not a network failure, yet the bus must keep trying rather than die.
                    self._log.exception("bus_subscribe_error", attempt=attempt)
                    continue
                attempt = 0
                self._log.debug("bus_subscribed")
                # Prove the new subscription now rather than at the next period.
                self._beat_now.set()
            reason, error = await self._receive_until_lost(self._subscription)
            self._mark_unhealthy(reason, error)
            # Closed before it is forgotten: if stop() cancels us here, it closes it again.
            await _close_hard(self._subscription)
            self._subscription = None

    async def _receive_until_lost(
        self, conn: AbstractConnection
    ) -> tuple[str, BaseException | None]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deaf_seconds
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return "deaf", None
            try:
                # An explicit timeout returns None when it expires, leaving the connection
                # as it was (redis-py Connection.read_response).
                reply = await conn.read_response(timeout=remaining, disconnect_on_error=False)
            except (RedisError, OSError) as exc:
                return "connection_lost", exc
            except Exception as exc:
                self._log.exception("bus_listen_error")
                return "listen_error", exc
            if reply is None:
                continue
            deadline = loop.time() + self._deaf_seconds
            self._receive(reply)

    def _receive(self, reply: Any) -> None:
        # RESP2 pub/sub delivery: [b"message", channel, payload]; other replies
        # (subscribe confirmations) carry nothing for us but count as liveness.
        if not (isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message"):
            return
        try:
            message = unpack(reply[2])
        except msgspec.DecodeError:
            self._log.warning("bus_message_invalid", size=len(reply[2]))
            return
        if message.topic == HEARTBEAT_TOPIC:
            if message.origin == self.origin and (message.seq or 0) >= self._proof_from:
                self._recover()
            return
        if message.origin == self.origin:
            return
        try:
            self._on_message(message)
        except Exception:
            self._log.exception("bus_handler_failed", topic=message.topic)

    async def _heartbeat(self) -> None:
        while True:
            self._beat += 1
            await self._send(pack(BusMessage(self.origin, HEARTBEAT_TOPIC, 0, self._beat, b"")))
            try:
                async with asyncio.timeout(self._heartbeat_seconds):
                    await self._beat_now.wait()
            except TimeoutError:
                pass
            self._beat_now.clear()

    async def _send(self, payload: bytes) -> None:
        assert self._client is not None
        try:
            await _honouring_cancel(self._client.publish(self.channel, payload))
        except (RedisError, OSError) as exc:
            self._mark_unhealthy("publish_failed", exc)

    def _mark_unhealthy(self, reason: str, error: BaseException | None = None) -> None:
        if self._closing is not None:
            return
        self._proof_from = self._beat + 1
        detail = None if error is None else f"{type(error).__name__}: {error}"
        if not self.healthy:
            # Logged once per outage (Home Assistant's update_coordinator does the same).
            self._log.debug("bus_still_unhealthy", reason=reason, error=detail)
            return
        self._down_since = asyncio.get_running_loop().time()
        if reason == "deaf":
            self._log.warning("bus_unhealthy", reason=reason, silent_seconds=self._deaf_seconds)
        else:
            self._log.warning("bus_unhealthy", reason=reason, error=detail)
        self._set_health(False)

    def _recover(self) -> None:
        if self.healthy:
            return
        down = asyncio.get_running_loop().time() - self._down_since
        self._log.info("bus_recovered", down_seconds=round(down, 3))
        self._set_health(True)

    def _backoff(self, attempt: int) -> float:
        # Equal jitter: processes that lost Redis together do not come back in step.
        delay = min(self._deaf_seconds, _BACKOFF_BASE_SECONDS * 2.0**attempt)
        return delay / 2 + random.uniform(0, delay / 2)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._log.error("bus_task_failed", task=task.get_name(), exc_info=task.exception())

    async def _close(self) -> None:
        pending = set(self._tasks)
        while pending:
            # Cancel again if a cancellation was swallowed where _honouring_cancel cannot see.
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=self._command_timeout)
        if self._subscription is not None:
            await _close_hard(self._subscription)
            self._subscription = None
        if self._client is not None:
            try:
                await self._client.aclose()
            except (RedisError, OSError) as exc:
                self._log.debug("bus_close_failed", error=str(exc))
        self._log.debug("bus_stopped")


async def _honouring_cancel(call: Awaitable[_T]) -> _T:
    """Await a redis-py call; raise CancelledError if it swallowed a cancellation.

    redis-py bounds socket writes with asyncio.wait_for, which on Python 3.11 returns the
    result instead of raising when the cancellation arrives as the write completes (CPython
    bpo-42130, fixed in 3.12). A cancelled publisher or stop() must stop all the same.
    """
    task = asyncio.current_task()
    before = 0 if task is None else task.cancelling()
    result = await call
    if task is not None and task.cancelling() > before:
        raise asyncio.CancelledError
    return result


async def _close_hard(conn: AbstractConnection) -> None:
    # nowait: a graceful close waits for the peer, which on a silent network never answers.
    with contextlib.suppress(RedisError, OSError):
        await conn.disconnect(nowait=True)
