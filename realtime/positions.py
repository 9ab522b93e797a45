"""The resume rules of a peer, without I/O: backoff, and per-topic positions.

The pages' client (frontend/lib/hub-client.js) applies the same rules; a test runs the same
frames through both and compares. realtime/client.py is the asyncio shell around these.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Iterable

from realtime.messages import Event, Position, Snapshot, TopicState


class Backoff:
    """Exponential backoff with full jitter: the n-th delay (from 0) is uniform in
    ``[0, min(cap, base * 2**n)]``. Full jitter spreads a reconnect storm (a hub restart
    drops every peer of the process at once) over the whole window instead of in waves.
    """

    __slots__ = ("attempt", "base", "cap", "rand")

    def __init__(
        self, base: float = 0.5, cap: float = 10.0, rand: Callable[[], float] = random.random
    ) -> None:
        self.base = base
        self.cap = cap
        self.rand = rand
        self.attempt = 0

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the window up to ``cap``."""
        window = min(self.cap, self.base * (1 << min(self.attempt, 32)))
        self.attempt += 1
        return window * self.rand()

    def reset(self) -> None:
        """Call once a connection is live again."""
        self.attempt = 0


class Verdict(enum.Enum):
    """What to do with one event frame."""

    APPLY = "apply"  # the next in sequence: apply it
    VOLATILE = "volatile"  # seq None: apply it, positions unchanged
    DUPLICATE = "duplicate"  # already applied: drop
    WAITING = "waiting"  # a snapshot is on its way: drop
    GAP = "gap"  # events are missing: drop, ask for a snapshot
    EPOCH = "epoch"  # the topic's history was reset: drop, ask for a snapshot
    NO_BASE = "no_base"  # nothing applied yet on this topic: drop, ask for a snapshot
    UNSUBSCRIBED = "unsubscribed"  # not a topic of ours: drop

    @property
    def needs_snapshot(self) -> bool:
        return self in (Verdict.GAP, Verdict.EPOCH, Verdict.NO_BASE)


class TopicPositions:
    """Per-topic (epoch, seq) and the dedupe and gap rules; no I/O.

    A topic whose position is unknown, or that waits for a snapshot, reports a null position:
    in ``hello`` or ``subscribe`` that asks the hub for a snapshot.
    """

    __slots__ = ("_awaiting", "_positions")

    def __init__(self, topics: Iterable[str] = ()) -> None:
        self._positions: dict[str, tuple[int, int] | None] = {}
        self._awaiting: set[str] = set()
        for name in topics:
            self.add(name)

    @property
    def topics(self) -> list[str]:
        return list(self._positions)

    def add(self, topic: str) -> bool:
        """Track a topic; False if it was tracked already."""
        if topic in self._positions:
            return False
        self._positions[topic] = None
        return True

    def remove(self, topic: str) -> None:
        self._positions.pop(topic, None)
        self._awaiting.discard(topic)

    def awaiting(self, topic: str) -> bool:
        return topic in self._awaiting

    def position(self, topic: str) -> Position:
        pos = self._positions.get(topic)
        if pos is None or topic in self._awaiting:
            return Position(topic)
        return Position(topic, pos[0], pos[1])

    def positions(self) -> list[Position]:
        return [self.position(name) for name in self._positions]

    def request_snapshot(self, topic: str) -> None:
        """Forget the position and drop events until a snapshot comes."""
        self._positions[topic] = None
        self._awaiting.add(topic)

    def on_topic_state(self, state: TopicState) -> bool:
        """Apply one entry of ``welcome``/``subscribed``; True if the caller must ask for a
        snapshot (the hub says "current" but our position differs from its)."""
        if state.topic not in self._positions:
            return False
        if state.resume == "snapshot":
            self._awaiting.add(state.topic)
            return False
        self._awaiting.discard(state.topic)
        if state.resume == "events":
            # The missed events follow; an event without a base asks for a snapshot then.
            return False
        pos = self._positions[state.topic]
        if pos is None:
            # Nothing to catch up on and nothing known: adopt the hub's position.
            self._positions[state.topic] = (state.epoch, state.seq)
            return False
        if pos != (state.epoch, state.seq):
            self.request_snapshot(state.topic)
            return True
        return False

    def on_event(self, event: Event) -> Verdict:
        """Classify one event and advance the position when it applies."""
        if event.topic not in self._positions:
            return Verdict.UNSUBSCRIBED
        if event.seq is None:
            return Verdict.VOLATILE
        if event.topic in self._awaiting:
            return Verdict.WAITING
        pos = self._positions[event.topic]
        if pos is None:
            verdict = Verdict.NO_BASE
        elif pos[0] != event.epoch:
            verdict = Verdict.EPOCH
        elif event.seq <= pos[1]:
            return Verdict.DUPLICATE
        elif event.seq > pos[1] + 1:
            verdict = Verdict.GAP
        else:
            self._positions[event.topic] = (event.epoch, event.seq)
            return Verdict.APPLY
        self.request_snapshot(event.topic)
        return verdict

    def on_snapshot(self, snapshot: Snapshot) -> bool:
        """A snapshot replaces the state and the position; False for a topic not tracked."""
        if snapshot.topic not in self._positions:
            return False
        self._positions[snapshot.topic] = (snapshot.epoch, snapshot.seq)
        self._awaiting.discard(snapshot.topic)
        return True

    def on_resync(self, topics: Iterable[str]) -> None:
        """The hub skipped events for us; its snapshots follow."""
        for name in topics:
            if name in self._positions:
                self.request_snapshot(name)
