"""The device's peer session upstream: :class:`realtime.client.PeerClient`, plus what the agent
needs of its buffer.

PeerClient keeps device events in a bounded outbox while the hub is unreachable and re-sends
those the hub has not acknowledged after every reconnect; the hub accepts each idempotency key
once (D6). :class:`AgentPeer` adds, without changing PeerClient:

- **a dropped counter**: the outbox keeps the newest ``max_outbox`` events, so after a long
  outage the oldest go; each loss is counted in :attr:`AgentPeer.dropped` and logged
  (``device_events_dropped``), so a hall manager can tell a quiet device from a lossy one;
- **order**: sending a new event and flushing the outbox after a ``welcome`` take one lock,
  so a new event never overtakes older ones that wait in the outbox (the link just came
  back), and the flush never loses track of the event it is sending when the outbox is full.

:class:`EventKeys` makes the keys: ``<boot>-<n>``, with a boot id drawn at agent start, so keys
are unique per device across restarts and stable across re-sends (an event keeps its key).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import structlog

from realtime.client import PeerClient
from realtime.messages import DeviceEvent, Welcome

__all__ = ["AgentPeer", "EventKeys"]

log = structlog.get_logger("devices.agent.upstream")


class EventKeys:
    """Idempotency keys ``<boot>-<n>`` for one device's events."""

    __slots__ = ("_n", "boot")

    def __init__(self, boot: str | None = None) -> None:
        # Time first, then randomness: distinct across restarts, and sortable by eye.
        self.boot = boot or f"{int(time.time()):x}{secrets.token_hex(3)}"
        self._n = 0

    def next(self) -> str:
        self._n += 1
        return f"{self.boot}-{self._n}"


class AgentPeer(PeerClient):
    """A PeerClient whose outbox losses are counted and whose events never overtake.

    Attributes:
        dropped: device events lost because the buffer was full (oldest first).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dropped = 0
        self._order = asyncio.Lock()

    @property
    def buffered(self) -> int:
        """Device events not yet acknowledged by the hub (waiting or sent)."""
        return len(self._outbox) + len(self._unacked)

    async def send_device_event(self, key: str, name: str, data: dict[str, Any]) -> None:
        """Report a device event: sent now when the link is live and nothing older waits,
        else kept in the bounded outbox (the oldest event is dropped and counted when full)."""
        event = DeviceEvent(key, name, data)
        async with self._order:
            if self._outbox or not self._live.is_set() or not await self._try_send_event(event):
                self._keep(event)

    async def _on_welcome(self, welcome: Welcome) -> None:
        # PeerClient flushes the outbox here; new events wait for the flush (see above).
        async with self._order:
            await super()._on_welcome(welcome)

    def _keep(self, event: DeviceEvent) -> None:
        if len(self._outbox) >= self.max_outbox:
            self._count_dropped(1, self._outbox[0].key)
        self._outbox.append(event)

    async def _try_send_event(self, event: DeviceEvent) -> bool:
        # PeerClient forgets the oldest unacknowledged event beyond max_outbox: a loss too.
        full = len(self._unacked) >= self.max_outbox and event.key not in self._unacked
        oldest = next(iter(self._unacked), "") if full else ""
        sent = await super()._try_send_event(event)
        if sent and full:
            self._count_dropped(1, oldest)
        return sent

    def _end_of_link(self) -> None:
        # Unacknowledged events go back in front of the outbox, which keeps max_outbox.
        overflow = len(self._unacked) + len(self._outbox) - self.max_outbox
        if overflow > 0:
            oldest = next(iter(self._unacked), "")
            self._count_dropped(overflow, oldest)
        super()._end_of_link()

    def _count_dropped(self, n: int, oldest: str) -> None:
        self.dropped += n
        log.warning(
            "device_events_dropped", kind=self.kind, dropped=n, total=self.dropped, oldest=oldest
        )
