"""The supervisor: keeps one device driver connected, for as long as the agent runs.

Connect; while connected, let the driver watch the device's health; when the link is lost,
close, wait, and connect again. The waits are exponential backoff with full jitter
(:class:`realtime.positions.Backoff`, the same as the peer link's), reset by a successful
connect, so a hall full of agents whose printers come back after a power cut do not all retry
in step.

Availability is reported only when it changes: ``on_change(online, reason)`` is awaited on the
first result and on every flip, and the log has one ``device_offline`` warning when a device
becomes unavailable and one ``device_online`` line when it recovers, not a line per failed
attempt (the rule of Home Assistant's ``DataUpdateCoordinator``, which logs a failure once
when availability flips and once on recovery). Attempts in between are logged at debug.

Nothing escapes :meth:`Supervisor.run` but cancellation: a failing device, or a driver or
listener with a bug, must never take the agent (and the other devices on it) down.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import structlog

from devices.drivers.link import Driver, HardwareInfo
from realtime.positions import Backoff

__all__ = ["Supervisor"]

log = structlog.get_logger("devices.agent.supervisor")

OnChange = Callable[[bool, str], Awaitable[None]]
OnConnected = Callable[[HardwareInfo], Awaitable[None]]


class Supervisor:
    """Runs ``driver`` with reconnects until cancelled.

    Args:
        driver: the device.
        part: what the device is, in logs and events (``printer``, ``panel:3``).
        backoff: delays between attempts; pass ``Backoff(rand=...)`` for deterministic tests.
            Defaults to 0.5 s doubling up to 30 s.
        on_change: awaited with ``(online, reason)`` when availability changes.
        on_connected: awaited with the device's identity after every successful connect.

    Attributes:
        online: None until the first attempt ends, then whether the device is connected.
        info: what the device said it is at the last connect.
        delays: the latest backoff delays waited (newest last), for tests and diagnostics.
        attempts: connect attempts so far.
    """

    def __init__(
        self,
        driver: Driver,
        *,
        part: str,
        backoff: Backoff | None = None,
        on_change: OnChange | None = None,
        on_connected: OnConnected | None = None,
    ) -> None:
        self.driver = driver
        self.part = part
        self.backoff = backoff or Backoff(base=0.5, cap=30.0)
        self.on_change = on_change
        self.on_connected = on_connected
        self.online: bool | None = None
        self.reason = ""
        self.info: HardwareInfo | None = None
        self.delays: deque[float] = deque(maxlen=64)
        self.attempts = 0
        self.up = asyncio.Event()
        """Set while the device is connected."""
        self._log = log.bind(device=driver.name, part=part)

    async def run(self) -> None:
        """Connect, watch, reconnect, until cancelled; the driver is closed on the way out.
        Never raises anything but :class:`asyncio.CancelledError`."""
        try:
            while True:
                self.attempts += 1
                try:
                    info = await self.driver.connect()
                except Exception as exc:
                    await self._lost(_describe(exc))
                    continue
                self.backoff.reset()
                self.info = info
                await self._set(True, "connected")
                await self._call(self.on_connected, info)
                try:
                    await self.driver.watch()
                    reason = "link ended"
                except Exception as exc:
                    reason = _describe(exc)
                await self._lost(reason)
        finally:
            self.up.clear()
            # Shielded: a cancelled agent must still release the port.
            await asyncio.shield(self._close())

    async def _lost(self, reason: str) -> None:
        await self._set(False, reason)
        await self._close()
        delay = self.backoff.next()
        self.delays.append(delay)
        self._log.debug("device_retry", reason=reason, retry_in=round(delay, 3))
        await asyncio.sleep(delay)

    async def _close(self) -> None:
        try:
            await self.driver.close()
        except Exception:
            self._log.exception("device_close_failed")

    async def _set(self, online: bool, reason: str) -> None:
        if online == self.online:
            return
        recovered = self.online is False
        self.online = online
        self.reason = reason
        if online:
            self.up.set()
            self._log.info("device_online", recovered=recovered)
        else:
            self.up.clear()
            self._log.warning("device_offline", reason=reason)
        await self._call(self.on_change, online, reason)

    async def _call(self, callback: Callable[..., Awaitable[None]] | None, *args: object) -> None:
        if callback is None:
            return
        try:
            await callback(*args)
        except Exception:  # a listener's bug must not stop the supervision
            self._log.exception("device_listener_failed")


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    code = getattr(exc, "code", None)
    return f"{code}: {text}" if isinstance(code, str) else text
