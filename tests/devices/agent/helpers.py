"""Helpers of the agent tests: background simulators, recorded callbacks, fast backoff."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

from devices.agent.supervisor import Supervisor
from devices.drivers.link import Driver, HardwareInfo
from devices.errors import DeviceTimeout
from realtime.positions import Backoff

T = TypeVar("T")
TIMEOUT = 10.0


@contextlib.asynccontextmanager
async def running(coro: Coroutine[Any, Any, Any]) -> AsyncIterator[asyncio.Task[Any]]:
    """Run ``coro`` as a task for the block; cancel it (and swallow its end) afterwards."""
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def fast_backoff(base: float = 0.01, cap: float = 0.08) -> Backoff:
    """A deterministic backoff: the window itself each time (rand = 1)."""
    return Backoff(base=base, cap=cap, rand=lambda: 1.0)


class Recorder(Generic[T]):
    """An async callback that queues what it is called with."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._queue: asyncio.Queue[T] = asyncio.Queue()

    async def __call__(self, item: T) -> None:
        self.items.append(item)
        self._queue.put_nowait(item)

    async def next(self, timeout: float = TIMEOUT) -> T:
        """The next item recorded (already recorded ones first)."""
        async with asyncio.timeout(timeout):
            return await self._queue.get()

    async def until(self, predicate: Callable[[T], bool], timeout: float = TIMEOUT) -> T:
        """Skip items until one matches."""
        async with asyncio.timeout(timeout):
            while True:
                item = await self._queue.get()
                if predicate(item):
                    return item


def supervised(
    driver: Driver, part: str, backoff: Backoff
) -> tuple[Supervisor, Recorder[tuple[bool, str]], Recorder[HardwareInfo]]:
    """A supervisor of ``driver`` whose reports are recorded: its (online, reason) changes and
    the hardware of each connect."""
    changes: Recorder[tuple[bool, str]] = Recorder()
    infos: Recorder[HardwareInfo] = Recorder()

    async def on_change(online: bool, reason: str) -> None:
        await changes((online, reason))

    supervisor = Supervisor(
        driver, part=part, backoff=backoff, on_change=on_change, on_connected=infos
    )
    return supervisor, changes, infos


async def eventually(
    predicate: Callable[[], bool], within: float = TIMEOUT, what: str = ""
) -> None:
    """Wait until ``predicate()`` holds (for states no callback announces)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.005)


async def wait_for(awaitable: Awaitable[T], timeout: float = TIMEOUT) -> T:
    async with asyncio.timeout(timeout):
        return await awaitable


async def connect_when_ready(driver: Driver, attempts: int = 50) -> HardwareInfo:
    """Connect once the simulator at the other end has its port open. The ID reader, pad and
    panel simulators' ``serve`` have no ready signal, and opening a port discards what is
    pending, so a first request may be lost, as with a device still powering up."""
    for _ in range(attempts - 1):
        try:
            return await driver.connect()
        except DeviceTimeout:
            continue
    return await driver.connect()
