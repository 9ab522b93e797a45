"""The window display's view of its hall: a small reducer of the ``hall:<hall_id>`` queue state
(frontend/lib/queue-state.js is the pages' one; same rules) reduced to what one window's LED
panel shows.

The state is the ``queue`` of the hall snapshot (hub/services/queue_views.py QueueState);
queue events (``ticket_called``, ``window_changed`` … with a QueueEvent) replace the window of
the same id and set every group's waiting count; ``queue_configured`` carries a whole new
state. Only the fields a panel needs are decoded; the rest is ignored.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["QUEUE_EVENTS", "PanelContent", "WindowBoard"]

QUEUE_EVENTS = frozenset(
    {
        "ticket_issued",
        "ticket_called",
        "ticket_skipped",
        "ticket_held",
        "ticket_transferred",
        "ticket_finished",
        "window_changed",
    }
)
QUEUE_CONFIGURED = "queue_configured"


class BoardWindow(msgspec.Struct, frozen=True, kw_only=True):
    """A window of the queue state (WindowView, the fields a panel shows)."""

    window_id: int
    number: int
    name: str = ""
    status: str = "closed"
    staff_name: str | None = None
    staff_no: str | None = None
    current: str | None = None
    group_ids: list[int] = []


class BoardGroup(msgspec.Struct, frozen=True, kw_only=True):
    group_id: int
    waiting: int = 0


class BoardQueue(msgspec.Struct, frozen=True, kw_only=True):
    windows: list[BoardWindow] = []
    groups: list[BoardGroup] = []


class _HallSnapshot(msgspec.Struct, frozen=True):
    queue: BoardQueue | None = None


class _QueueEvent(msgspec.Struct, frozen=True):
    window: BoardWindow | None = None
    waiting: list[tuple[int, int]] = []


class PanelContent(msgspec.Struct, frozen=True, kw_only=True):
    """What one window's panel shows (the arguments of ``render_window_lines``);
    ``open`` False: the window is closed, the panel is cleared."""

    window_number: int
    window_name: str
    serving: str | None
    staff_name: str | None
    staff_no: str | None
    waiting: int
    open: bool


class WindowBoard:
    """The queue state of one hall, seen from ``window_id``."""

    __slots__ = ("_groups", "_windows", "window_id")

    def __init__(self, window_id: int | None) -> None:
        self.window_id = window_id
        self._windows: dict[int, BoardWindow] = {}
        self._groups: dict[int, int] = {}

    def on_snapshot(self, data: Any) -> None:
        """Replace the state with a hall snapshot's ``queue``.

        Raises:
            msgspec.ValidationError: the snapshot is not a hall snapshot.
        """
        self._load(msgspec.convert(data or {}, _HallSnapshot).queue)

    def on_event(self, name: str, data: Any) -> bool:
        """Apply one ``hall:`` event; whether it was a queue event.

        Raises:
            msgspec.ValidationError: a queue event whose data is not a QueueEvent.
        """
        if name == QUEUE_CONFIGURED:
            self._load(msgspec.convert(data or {}, BoardQueue))
            return True
        if name not in QUEUE_EVENTS:
            return False
        event = msgspec.convert(data or {}, _QueueEvent)
        if event.window is not None:
            self._windows[event.window.window_id] = event.window
        for group_id, waiting in event.waiting:
            if group_id in self._groups:
                self._groups[group_id] = waiting
        return True

    def content(self) -> PanelContent | None:
        """What the window's panel shows now; None while the window is unknown."""
        window = self._windows.get(self.window_id) if self.window_id is not None else None
        if window is None:
            return None
        return PanelContent(
            window_number=window.number,
            window_name=window.name,
            serving=window.current,
            staff_name=window.staff_name,
            staff_no=window.staff_no,
            waiting=sum(self._groups.get(g, 0) for g in window.group_ids),
            open=window.status != "closed",
        )

    def _load(self, queue: BoardQueue | None) -> None:
        queue = queue or BoardQueue()
        self._windows = {w.window_id: w for w in queue.windows}
        self._groups = {g.group_id: g.waiting for g in queue.groups}
