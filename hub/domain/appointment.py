"""Appointments (O2, 预约): slots with capacity per service group and working day, booking,
the check-in window around a slot, and the refusals with stable codes. Pure: no I/O, no
asyncio.

Slots
    A group's slots of a day come from its *templates* (times of day with a capacity,
    e.g. 09:00-10:00 for 10 people, the same on every working day) unless the day has
    *explicit* slots, which then replace the templates for that day (an extra session, a
    reduced capacity; capacity 0 takes a slot out). Times are hall-local. A day that is not
    a working day of the hall (hub.domain.calendar: holidays, weekends, closures) has no
    slots at all; a make-up working day (调休上班, a Saturday or Sunday) has the templates'
    slots like any working day.

Booking
    A slot is bookable from today up to ``days_ahead`` days ahead (the hall's setting) until
    it starts. One document holds at most one active (booked or checked-in) appointment per
    group and day. A document with ``no_show_limit`` no-shows in the last ``no_show_days``
    days books no more until they age out.

Check-in (签到)
    From ``early_minutes`` before the slot's start until ``late_minutes`` after it
    (:class:`CheckInPolicy`; defaults 30 and 15, each hall may set its own). Inside the
    window the appointment becomes ``checked_in`` and a ticket with priority
    ``appointment`` is issued (its boost in hub.domain.queue puts it before the normal
    tickets of the last quarter-hour). Before it: :class:`CheckinTooEarly`; after it:
    :class:`CheckinTooLate`. An appointment still ``booked`` when its window has closed
    becomes ``no_show`` (a leader job), and no-shows are counted per document.

States: ``booked`` → ``checked_in`` | ``cancelled`` | ``no_show``; all three are final.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

import msgspec

from hub.domain.errors import Conflict, InvalidInput

AppointmentStatus = Literal["booked", "cancelled", "checked_in", "no_show"]
APPOINTMENT_STATUSES: tuple[AppointmentStatus, ...] = get_args(AppointmentStatus)

CAPACITY_MAX = 1000
SLOTS_PER_DAY_MAX = 48
CODE_DIGITS = 6


class SlotFull(Conflict):
    """Every seat of the slot is taken."""

    code = "slot_full"


class NotAWorkingDay(Conflict):
    """The day is a holiday, a weekend day or a closure of the hall: no appointments."""

    code = "not_a_working_day"


class SlotClosed(Conflict):
    """The slot has started or passed: no booking, and no cancelling, any more."""

    code = "slot_closed"


class AlreadyBooked(Conflict):
    """The document holds an active appointment for this group on this day."""

    code = "already_booked"


class TooManyNoShows(Conflict):
    """The document missed too many appointments lately to book another."""

    code = "too_many_no_shows"


class CheckinTooEarly(Conflict):
    """The check-in window of the appointment has not opened yet."""

    code = "checkin_too_early"


class CheckinTooLate(Conflict):
    """The check-in window of the appointment has closed (a no-show)."""

    code = "checkin_too_late"


class AppointmentCancelled(Conflict):
    """The appointment was cancelled."""

    code = "appointment_cancelled"


class AlreadyCheckedIn(Conflict):
    """The appointment was checked in already (its ticket exists)."""

    code = "already_checked_in"


class SlotDef(msgspec.Struct, frozen=True, kw_only=True):
    """A slot of a day: hall-local start and end, and how many may book it."""

    start: time
    end: time
    capacity: int


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def check_slots(slots: Iterable[SlotDef], field: str = "body") -> list[SlotDef]:
    """Validate a day's slots (templates or explicit); returns them ordered by start.

    Each slot starts before it ends, on whole minutes, with a capacity 0..CAPACITY_MAX;
    slots do not overlap; at most SLOTS_PER_DAY_MAX of them.

    Raises:
        InvalidInput: the first rule broken (``field``, ``field[i].…``).
    """
    ordered = sorted(slots, key=lambda s: s.start)
    if len(ordered) > SLOTS_PER_DAY_MAX:
        raise InvalidInput(f"a day has at most {SLOTS_PER_DAY_MAX} slots", field=field)
    for i, slot in enumerate(ordered):
        where = f"{field}[{i}]"
        if slot.start.tzinfo is not None or slot.end.tzinfo is not None:
            raise InvalidInput("slot times are hall-local, without an offset", field=where)
        if slot.start.second or slot.start.microsecond or slot.end.second or slot.end.microsecond:
            raise InvalidInput("slot times are whole minutes", field=where)
        if slot.start >= slot.end:
            raise InvalidInput("a slot starts before it ends", field=f"{where}.end")
        if not 0 <= slot.capacity <= CAPACITY_MAX:
            raise InvalidInput(
                f"a slot's capacity is 0 to {CAPACITY_MAX}", field=f"{where}.capacity"
            )
        if i and ordered[i - 1].end > slot.start:
            raise InvalidInput(
                f"slots {ordered[i - 1].start:%H:%M} and {slot.start:%H:%M} overlap",
                field=f"{where}.start",
            )
    return ordered


def day_slots(
    working: bool, templates: Sequence[SlotDef], explicit: Sequence[SlotDef]
) -> list[SlotDef]:
    """A group's slots of one day: none on a non-working day, else the day's explicit slots
    if it has any, else the templates (module docstring)."""
    if not working:
        return []
    return sorted(explicit or templates, key=lambda s: s.start)


def find_slot(slots: Iterable[SlotDef], start: time) -> SlotDef | None:
    """The slot that starts at ``start``, if any."""
    return next((s for s in slots if s.start == start), None)


def slot_start_at(day: date, start: time, timezone: str) -> datetime:
    """The aware instant a slot starts (``start`` hall-local on ``day``)."""
    return datetime.combine(day, start, tzinfo=ZoneInfo(timezone))


class CheckInPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How long before and after a slot's start an appointment may check in."""

    early_minutes: int = 30
    late_minutes: int = 15

    def window(self, day: date, start: time, timezone: str) -> tuple[datetime, datetime]:
        """The check-in window ``[opens, closes]`` of a slot, as aware instants."""
        begins = slot_start_at(day, start, timezone)
        return (
            begins - timedelta(minutes=self.early_minutes),
            begins + timedelta(minutes=self.late_minutes),
        )

    def check(self, now: datetime, day: date, start: time, timezone: str) -> None:
        """Nothing if ``now`` lies in the slot's check-in window.

        Raises:
            CheckinTooEarly, CheckinTooLate: before or after it (the detail gives the
                window in hall-local time).
        """
        opens, closes = self.window(day, start, timezone)
        zone = ZoneInfo(timezone)
        span = f"{opens.astimezone(zone):%m-%d %H:%M}-{closes.astimezone(zone):%H:%M}"
        if now < opens:
            raise CheckinTooEarly(f"check-in for this appointment opens at {span} (hall time)")
        if now > closes:
            raise CheckinTooLate(f"check-in for this appointment closed ({span}, hall time)")


DEFAULT_CHECKIN = CheckInPolicy()


class BookingPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How far ahead a slot may be booked, and when no-shows stop a document booking."""

    days_ahead: int = 14
    no_show_limit: int = 3
    no_show_days: int = 90

    def check_day(self, day: date, today: date) -> None:
        """Nothing if ``day`` may be booked ``today``.

        Raises:
            InvalidInput: a past day, or beyond ``days_ahead`` (``body.service_day``).
        """
        if day < today:
            raise InvalidInput("that day has passed", field="body.service_day")
        if day > today + timedelta(days=self.days_ahead):
            raise InvalidInput(
                f"appointments open {self.days_ahead} days ahead", field="body.service_day"
            )

    def check_no_shows(self, no_shows: int) -> None:
        """Raises TooManyNoShows when ``no_shows`` (in the last ``no_show_days``) reach the
        limit."""
        if no_shows >= self.no_show_limit:
            raise TooManyNoShows(
                f"{no_shows} missed appointments in {self.no_show_days} days: "
                "book again once they are older, or take a ticket at the hall"
            )


def require_bookable(now: datetime, day: date, start: time, timezone: str) -> None:
    """A slot may be booked until it starts.

    Raises:
        SlotClosed: the slot has started.
    """
    if now >= slot_start_at(day, start, timezone):
        raise SlotClosed("this slot has started: choose a later one")


def require_booked(status: AppointmentStatus) -> None:
    """An appointment to check in or cancel is ``booked``.

    Raises:
        AppointmentCancelled, AlreadyCheckedIn: for those states; CheckinTooLate for a
            ``no_show`` (its window has closed).
    """
    if status == "cancelled":
        raise AppointmentCancelled("this appointment was cancelled")
    if status == "checked_in":
        raise AlreadyCheckedIn("this appointment has checked in already: see its ticket")
    if status == "no_show":
        raise CheckinTooLate("the check-in window of this appointment has closed")


def check_code(code: str, field: str = "path.code") -> str:
    """A check-in code: :data:`CODE_DIGITS` ASCII digits.

    Raises:
        InvalidInput: another form.
    """
    if len(code) != CODE_DIGITS or not code.isascii() or not code.isdigit():
        raise InvalidInput(f"a check-in code has {CODE_DIGITS} digits", field=field)
    return code


def make_code(random_below: int) -> str:
    """A check-in code from a random number in ``[0, 10**CODE_DIGITS)``."""
    if not 0 <= random_below < 10**CODE_DIGITS:
        raise ValueError("random_below out of range")
    return f"{random_below:0{CODE_DIGITS}d}"
