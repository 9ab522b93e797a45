"""Rules of a hall's queue configuration (Q1, Q2, Q6): issuing hours, prefixes, honours.

Pure: no I/O. The services (hub/services/queue_config.py) load the facts and call these.

Issuing hours
    Hall-local minutes of the day, ``opens_minute`` in 0..1439 and ``closes_minute`` in
    1..1440 with ``opens < closes`` (a hall open round the clock is 0..1440). Tickets are
    issued in ``[opens, closes)`` (hub.domain.queue.within_hours). Hall files write them as
    ``"08:30"`` and ``"24:00"`` (:func:`minute_of_day`).

Prefixes
    A group's prefix is part of every ticket number it ever issued (A001): once a ticket
    exists, the prefix cannot change, or the day's numbers would no longer name their group
    (:class:`PrefixInUse`). Before the first ticket it may be corrected freely.
"""

from __future__ import annotations

import re

from hub.domain.errors import Conflict, InvalidInput

MINUTES_PER_DAY = 1440
_CLOCK = re.compile(r"^([0-9]{2}):([0-9]{2})$")


class PrefixInUse(Conflict):
    """The group already issued tickets under its prefix: the prefix stays."""

    code = "prefix_in_use"


def check_hours(opens_minute: int, closes_minute: int, field: str = "body.closes_minute") -> None:
    """Issuing hours must open before they close, within one day.

    Raises:
        InvalidInput: out of 0..1440, or ``opens_minute >= closes_minute`` (``field``).
    """
    for value in (opens_minute, closes_minute):
        if not 0 <= value <= MINUTES_PER_DAY:
            raise InvalidInput(f"{value} is not a minute of the day (0..1440)", field=field)
    if opens_minute >= closes_minute:
        raise InvalidInput(
            f"the hall must open before it closes ({clock_text(opens_minute)} is not before "
            f"{clock_text(closes_minute)})",
            field=field,
        )


def minute_of_day(text: str, field: str) -> int:
    """``"08:30"`` → 510; ``"24:00"`` → 1440 (the end of the day, for closing hours).

    Raises:
        InvalidInput: not ``HH:MM``, or past 24:00 (``field``).
    """
    match = _CLOCK.match(text)
    if match is None:
        raise InvalidInput(f"{text[:20]!r} is not a time of day like 08:30", field=field)
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours * 60 + minutes > MINUTES_PER_DAY:
        raise InvalidInput(f"{text!r} is not a time of day (00:00..24:00)", field=field)
    return hours * 60 + minutes


def clock_text(minute: int) -> str:
    """510 → ``"08:30"``; 1440 → ``"24:00"``."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def check_prefix_change(current: str, new: str, tickets_issued: bool) -> None:
    """A prefix may change only while the group has no ticket.

    Raises:
        PrefixInUse: ``new`` differs and tickets exist (field ``body.prefix``).
    """
    if new != current and tickets_issued:
        raise PrefixInUse(
            f"group {current} already issued tickets: its prefix cannot change",
            field="body.prefix",
        )
