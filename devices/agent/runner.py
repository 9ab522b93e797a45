"""One configured device in the agent: its peer session upstream, its supervisor, and the
handling of what the hub sends it.

:class:`DeviceRunner` is the part every kind shares:

- one :class:`~devices.agent.upstream.AgentPeer` (peer kind = the device kind, its token);
- after the first ``welcome`` it subscribes to its own topic ``device:<id>`` (the id is in the
  welcome's PeerInfo) plus the kind's topics (:meth:`DeviceRunner.topics`);
- the hardware runs under a :class:`~devices.agent.supervisor.Supervisor`, whose changes
  become ``device_state`` events and whose connects become ``device_info`` events;
- ``configure`` events and the ``config`` of the device snapshot are applied live (D6);
- every update is handled in its own ``try``: a bad event is logged, never fatal. Work that
  takes time (a print, a card read, a rating prompt) goes to the kind's worker so the update
  loop keeps reading.

Device events get keys from :class:`~devices.agent.upstream.EventKeys` unless they have a
natural one (``print:<job>``): unique per device, stable across re-sends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Annotated, Any

import msgspec
import structlog

from devices.agent.config import AgentConfig, DeviceConfig
from devices.agent.supervisor import Supervisor
from devices.agent.upstream import AgentPeer, EventKeys
from devices.drivers.link import HardwareInfo
from realtime.client import PeerRejected, StateChange
from realtime.messages import Command, ErrorBody, Event, Snapshot
from realtime.positions import Backoff

__all__ = ["DeviceRunner", "DeviceSettings", "DeviceSnapshot", "Recent"]

log = structlog.get_logger("devices.agent")

BackoffFactory = Callable[[], Backoff]
_TEXT_MAX = 200  # the hub refuses longer texts in device events


class DeviceSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Remote settings a ``configure`` event (or the device snapshot's ``config``) may carry
    (D6). Absent means unchanged; keys of other kinds are ignored."""

    poll_seconds: Annotated[float, msgspec.Meta(gt=0)] | None = None
    header: str | None = None
    footer: list[str] | None = None
    width_chars: Annotated[int, msgspec.Meta(ge=16, le=96)] | None = None
    timeout_s: Annotated[int, msgspec.Meta(ge=1, le=600)] | None = None
    grace: Annotated[float, msgspec.Meta(ge=0)] | None = None
    brightness: Annotated[int, msgspec.Meta(ge=0, le=15)] | None = None
    auto_read: bool | None = None


class DeviceSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The parts of the ``device:<id>`` snapshot the agent uses (unknown fields ignored)."""

    device_id: int | None = None
    hall_id: int | None = None
    window_id: int | None = None
    config: dict[str, Any] = {}


class Recent:
    """The last ``size`` keys seen, to drop repeats (a job delivered twice)."""

    __slots__ = ("_keys", "_size")

    def __init__(self, size: int = 1024) -> None:
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._size = size

    def __contains__(self, key: Hashable) -> bool:
        return key in self._keys

    def add(self, key: Hashable) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)


class DeviceRunner:
    """One device of agent.toml, from its peer session to its hardware.

    Subclasses set :attr:`supervisor` (or leave None for a device without hardware to
    watch) and override the ``on_*`` hooks.

    Args:
        agent: the whole configuration (hub URL, buffer).
        config: this device's table.
        backoff: makes the backoff of the peer link and of the supervisor (tests pass a fast
            deterministic one).
    """

    part = "device"

    def __init__(
        self,
        agent: AgentConfig,
        config: DeviceConfig,
        *,
        backoff: BackoffFactory | None = None,
    ) -> None:
        self.agent = agent
        self.config = config
        self.name = config.name
        self.make_backoff = backoff or (lambda: Backoff(base=0.5, cap=30.0))
        self.keys = EventKeys()
        self.peer = AgentPeer(
            agent.hub,
            config.kind,
            token=config.token,
            topics=(),
            client="hallhub-agent",
            backoff=self.make_backoff(),
            max_outbox=agent.buffer,
        )
        self.supervisor: Supervisor | None = None
        self.device_topic: str | None = None
        self.hall_id: int | None = None
        self.rejected = False
        self._tasks: list[asyncio.Task[None]] = []
        self.log = log.bind(device=self.name, kind=config.kind)

    # --- lifecycle --------------------------------------------------------------------------

    def supervise(self, driver: Any) -> Supervisor:
        """A supervisor for ``driver`` reporting to this device's peer."""
        self.supervisor = Supervisor(
            driver,
            part=self.part,
            backoff=self.make_backoff(),
            on_change=self._on_availability,
            on_connected=self._on_connected,
        )
        return self.supervisor

    async def run(self) -> None:
        """Run until cancelled, or until the hub rejects the device's token (logged; the
        hardware is then released too). Never raises but cancellation."""
        peer_task = asyncio.create_task(self.peer.run(), name=f"peer-{self.name}")
        self._tasks = [asyncio.create_task(self._updates(), name=f"updates-{self.name}")]
        if self.supervisor is not None:
            self._tasks.append(asyncio.create_task(self.supervisor.run(), name=f"sup-{self.name}"))
        self._tasks.extend(self.workers())
        try:
            await peer_task
        except PeerRejected as exc:
            self.rejected = True
            self.log.error("device_rejected", code=exc.code, reason=exc.reason)
        except Exception:
            self.log.exception("device_peer_failed")
        finally:
            await self._stop(peer_task)

    async def _stop(self, peer_task: asyncio.Task[None]) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.shield(self.peer.close())
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await peer_task
        await asyncio.shield(self.shutdown())
        if self.peer.dropped:
            self.log.warning("device_events_dropped_total", dropped=self.peer.dropped)

    def workers(self) -> list[asyncio.Task[None]]:
        """The kind's own tasks (started with the runner, cancelled with it)."""
        return []

    async def shutdown(self) -> None:
        """Release what the kind holds beyond its supervisor's driver (closed already)."""

    # --- upstream ---------------------------------------------------------------------------

    async def emit(self, name: str, data: dict[str, Any], key: str | None = None) -> None:
        """Report a device event; buffered while the hub is unreachable."""
        await self.peer.send_device_event(key or self.keys.next(), name, data)

    def topics(self) -> list[str]:
        """Topics beyond ``device:<id>`` (the kind's)."""
        return []

    async def resubscribe(self) -> None:
        """Subscribe to topics that :meth:`topics` now names and the peer does not have."""
        wanted = self.topics()
        current = {p.topic for p in self.peer.tracker.positions()}
        stale = [t for t in current if t != self.device_topic and t not in wanted]
        if stale:
            await self.peer.unsubscribe(stale)
        new = [t for t in wanted if t not in current]
        if new:
            await self.peer.subscribe(new)

    async def _updates(self) -> None:
        while True:
            update = await self.peer.updates.get()
            try:
                if isinstance(update, StateChange):
                    if update.state == "live":
                        await self._on_live()
                elif isinstance(update, Snapshot):
                    await self._on_snapshot(update)
                elif isinstance(update, Event):
                    await self._on_event(update)
                elif isinstance(update, Command):
                    # The contract sends devices events, not commands: say so, do not hang.
                    await self.peer.reply(
                        update.id,
                        False,
                        error=ErrorBody("unknown_command", f"no command {update.name!r}"),
                    )
            except Exception:
                self.log.exception("device_update_failed", update=type(update).__name__)

    async def _on_live(self) -> None:
        welcome = self.peer.welcome
        if welcome is None:
            return
        if self.hall_id is None:
            self.hall_id = welcome.peer.hall_id
        if self.device_topic is None:
            # The peer id of a device is "device:<id>", which is also its own topic's name.
            self.device_topic = welcome.peer.id
            self.log = self.log.bind(peer=welcome.peer.id)
            await self.peer.subscribe([self.device_topic])
        await self.resubscribe()

    async def _on_snapshot(self, snapshot: Snapshot) -> None:
        if snapshot.topic == self.device_topic:
            device = msgspec.convert(snapshot.data or {}, DeviceSnapshot)
            await self.on_device_snapshot(device)
            if device.config:
                await self._apply(device.config)
        else:
            await self.on_topic_snapshot(snapshot)

    async def _on_event(self, event: Event) -> None:
        if event.topic == self.device_topic and event.name == "configure":
            settings = (event.data or {}).get("settings", {})
            await self._apply(settings if isinstance(settings, dict) else {})
        else:
            await self.on_topic_event(event)

    async def _apply(self, raw: dict[str, Any]) -> None:
        try:
            settings = msgspec.convert(raw, DeviceSettings)
        except msgspec.ValidationError as exc:
            self.log.warning("device_settings_refused", error=str(exc))
            return
        self.log.info("device_configured", settings=msgspec.to_builtins(settings))
        await self.apply(settings)

    # --- hooks of the kinds -----------------------------------------------------------------

    async def apply(self, settings: DeviceSettings) -> None:
        """Apply remote settings (the fields the kind knows)."""

    async def on_device_snapshot(self, snapshot: DeviceSnapshot) -> None:
        """The device's own snapshot (its binding: window, hall)."""

    async def on_topic_snapshot(self, snapshot: Snapshot) -> None:
        """A snapshot of one of :meth:`topics`."""

    async def on_topic_event(self, event: Event) -> None:
        """An event on the device topic (but ``configure``) or one of :meth:`topics`."""

    async def on_hardware(self, info: HardwareInfo) -> None:
        """Called after ``device_info`` went out for a new connect."""

    async def on_hardware_lost(self) -> None:
        """Called after ``device_state`` offline went out."""

    # --- supervisor -------------------------------------------------------------------------

    async def _on_availability(self, online: bool, reason: str) -> None:
        await self.emit(
            "device_state",
            {
                "part": self.part,
                "state": "online" if online else "offline",
                "reason": reason[:_TEXT_MAX],
            },
        )
        if not online:
            await self.on_hardware_lost()

    async def _on_connected(self, info: HardwareInfo) -> None:
        await self.emit(
            "device_info",
            {
                "model": info.model[:_TEXT_MAX],
                "firmware": info.firmware[:_TEXT_MAX],
                "parts": info.parts,
            },
        )
        await self.on_hardware(info)
