"""Queue rules (Q1–Q3): ticket numbers, service days, the priority order, and which action
is legal in which state. Pure: no I/O, no asyncio.

Ticket numbers (Q1)
    ``<prefix><seq>``: the service group's prefix letter(s) and the group's daily sequence,
    zero-padded to three digits (A001 … A999, then A1000). The sequence restarts on every
    *service day*, the calendar date in the hall's time zone (:func:`service_day`), so a
    hall in Ürümqi (Asia/Urumqi) resets at its own midnight, not the server's.

Priority order (Q3)
    One linear key per waiting ticket, smaller first::

        key = queued_at − boost(priority) + (rank − 1) × rank_delay,   ties by ticket id

    ``boost`` is a time credit per priority class (:class:`PriorityPolicy`): a green-channel
    ticket (elderly, disabled, pregnant, military) is served as if it had arrived
    ``green_channel`` seconds earlier; appointment check-ins and VIP tickets likewise with
    their own credits. ``rank`` is the window's order of preference for the ticket's group
    (1 = its main group): a window serves a secondary group as if those tickets had arrived
    ``rank_delay`` seconds later per rank.

    Starvation protection follows from the key being fixed at queueing time: a ticket
    queued at t can only be overtaken by tickets queued before ``t + max_boost`` (plus the
    rank delay), a finite set, so every ticket is called after a bounded number of calls.
    A normal ticket waits at most ``max_boost`` longer than it would in a plain FIFO.

    The part that does not depend on the window, ``order_at = queued_at − boost(priority)``
    (:func:`order_at`), is stored on the ticket when it is queued and indexed per group, so
    the SQL that applies the order (hub/services/queue_pick.py) reads the first few tickets
    of each group the window serves from the index and adds the rank delay, instead of
    sorting the hall's whole queue. The two are property-tested against each other. A
    change of the policy applies to tickets queued after it.

States (Q2)
    ``waiting`` → ``called`` (at a window; recall keeps it there) → ``done`` (finish);
    ``called`` → ``held`` (parked at the window) → ``called`` (return);
    ``called`` → ``waiting`` (transfer to another window or group; skip while re-queues
    remain) or ``no_show`` (skip without re-queue); ``waiting`` → ``expired`` when its
    service day is over.

Transfer keeps the ticket's number, priority and ``queued_at``: the citizen already waited,
so in the new queue they take the place their arrival time gives them. A skip that
re-queues sets ``queued_at`` to the time of the skip: behind those waiting now.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from hub.domain.errors import Conflict, InvalidInput

TicketStatus = Literal["waiting", "called", "held", "done", "no_show", "expired"]
Priority = Literal["normal", "appointment", "green_channel", "vip"]
TicketSource = Literal["ticket_machine", "kiosk", "id_card", "appointment", "online", "staff"]
WindowStatus = Literal["closed", "open", "paused"]

TICKET_STATUSES: tuple[TicketStatus, ...] = get_args(TicketStatus)
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
TICKET_SOURCES: tuple[TicketSource, ...] = get_args(TicketSource)

PREFIX = re.compile(r"^[A-Z]{1,2}$")
TICKET_NUMBER = re.compile(r"^([A-Z]{1,2})([0-9]{3,4})$")


class IllegalState(Conflict):
    """An action the ticket's or window's current state does not allow."""

    code = "illegal_state"


class WindowNotOpen(IllegalState):
    """The window is closed or paused: no calls."""

    code = "window_not_open"


class WindowBusy(IllegalState):
    """The window is serving a ticket: finish, skip, hold or transfer it first."""

    code = "window_busy"


class NoCurrentTicket(IllegalState):
    """The action needs a ticket at the window and there is none (e.g. finish twice)."""

    code = "no_current_ticket"


class WindowClosed(IllegalState):
    """A transfer target window is not staffed."""

    code = "window_closed"


class WindowTaken(IllegalState):
    """Someone else works the window."""

    code = "window_taken"


class AlreadySignedIn(IllegalState):
    """The staff member already works another window."""

    code = "already_signed_in"


class WindowNotSignedIn(IllegalState):
    """Nobody works the window."""

    code = "window_not_signed_in"


class TicketLimitReached(Conflict):
    """Q4: the document already holds as many tickets today as the hall or group allows."""

    code = "ticket_limit_reached"


class GroupClosed(Conflict):
    """The service group takes no tickets now (inactive, or its daily quota is used up)."""

    code = "group_closed"


class HallClosed(Conflict):
    """Tickets are issued only within the hall's issuing hours (hall-local)."""

    code = "hall_closed"


def within_hours(now: datetime, timezone: str, opens_minute: int, closes_minute: int) -> bool:
    """Whether hall-local ``now`` lies in ``[opens_minute, closes_minute)`` of its day."""
    local = now.astimezone(zone(timezone))
    minute = local.hour * 60 + local.minute
    return opens_minute <= minute < closes_minute


def service_day(now: datetime, timezone: str) -> date:
    """The hall-local calendar date of ``now`` (an aware datetime)."""
    if now.tzinfo is None:
        raise ValueError("service_day needs an aware datetime")
    return now.astimezone(zone(timezone)).date()


def zone(timezone: str) -> ZoneInfo:
    """The IANA zone ``timezone``.

    Raises:
        InvalidInput: unknown zone name (field ``body.timezone``).
    """
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {timezone!r}", field="body.timezone") from exc


def ticket_number(prefix: str, seq: int) -> str:
    """``A`` and 7 → ``A007``; four digits from 1000 on."""
    if not PREFIX.match(prefix):
        raise InvalidInput(f"bad ticket prefix {prefix!r}", field="body.prefix")
    if seq < 1 or seq > 9999:
        raise InvalidInput(f"daily sequence {seq} out of range 1..9999", field="seq")
    return f"{prefix}{seq:03d}"


def parse_ticket_number(number: str, field: str = "number") -> tuple[str, int]:
    """``A007`` → (``A``, 7)."""
    match = TICKET_NUMBER.match(number)
    if match is None:
        raise InvalidInput(f"{number[:20]!r} is not a ticket number like A001", field=field)
    return match.group(1), int(match.group(2))


class PriorityPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Time credits (seconds) per priority class and the delay per window-preference rank."""

    green_channel: int = 1800
    vip: int = 1200
    appointment: int = 900
    rank_delay: int = 600

    def boost(self, priority: Priority) -> int:
        if priority == "normal":
            return 0
        value: int = getattr(self, priority)
        return value

    @property
    def max_boost(self) -> int:
        return max(self.green_channel, self.vip, self.appointment)


DEFAULT_POLICY = PriorityPolicy()


def order_at(queued_at: datetime, priority: Priority, policy: PriorityPolicy) -> datetime:
    """The window-independent part of the order key, stored on the ticket: ``queued_at``
    moved earlier by the priority's time credit."""
    return queued_at - timedelta(seconds=policy.boost(priority))


class Candidate(msgspec.Struct, frozen=True):
    """A waiting ticket as a window sees it: its order inputs and the group's rank there.

    ``queued_at`` is in microseconds since the epoch (exact integer arithmetic, as SQL's
    timestamps are microseconds).
    """

    ticket_id: int
    queued_at: int
    priority: Priority
    rank: int


def order_key(candidate: Candidate, policy: PriorityPolicy = DEFAULT_POLICY) -> tuple[int, int]:
    """The sort key of the priority order (module docstring), in microseconds, then id."""
    offset = (candidate.rank - 1) * policy.rank_delay - policy.boost(candidate.priority)
    return candidate.queued_at + offset * 1_000_000, candidate.ticket_id


def order(
    candidates: Iterable[Candidate], policy: PriorityPolicy = DEFAULT_POLICY
) -> list[Candidate]:
    """The candidates in calling order."""
    return sorted(candidates, key=lambda c: order_key(c, policy))


def pick_next(
    candidates: Sequence[Candidate], policy: PriorityPolicy = DEFAULT_POLICY
) -> Candidate | None:
    """The ticket a window calls next, or None when nobody is waiting for it."""
    if not candidates:
        return None
    return min(candidates, key=lambda c: order_key(c, policy))


class SkipPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How often a skipped (no-show) ticket goes back into the queue before it is dropped."""

    requeue_limit: int = 1

    def requeues(self, skips_so_far: int) -> bool:
        """Whether a ticket skipped ``skips_so_far`` times before re-queues on this skip."""
        return skips_so_far < self.requeue_limit


def require_window_open(status: WindowStatus) -> None:
    if status != "open":
        word = "paused" if status == "paused" else "closed"
        raise WindowNotOpen(f"the window is {word}: resume or sign in first")


def require_idle(current: str | None) -> None:
    if current is not None:
        raise WindowBusy(f"ticket {current} is at the window: finish, skip, hold or transfer it")


def require_current(current: str | None) -> str:
    if current is None:
        raise NoCurrentTicket("no ticket is at the window")
    return current


def ahead_estimate_seconds(ahead: int, service_seconds: float, open_windows: int) -> int:
    """Q8: expected wait for a ticket with ``ahead`` tickets before it, given the recent mean
    service time of its group and the open windows serving it."""
    if ahead <= 0:
        return 0
    return round(ahead * service_seconds / max(open_windows, 1))
