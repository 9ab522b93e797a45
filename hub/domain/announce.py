"""Voice announcements of calls (Q5): the sentence the hall display speaks for a call.

``call_text("A001", 3)`` is ``请A001号到3号窗口办理``; a recall (重呼) says ``再次``:
``请A001号再次到3号窗口办理``. Only these fixed sentences are ever built, from a checked
ticket number and window number, so the public speech endpoint cannot be used to make the
hub say arbitrary text.

frontend/lib/announcer.js builds the same sentences for the screen (``callText``); the e2e
test compares the two.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from hub.domain.errors import InvalidInput

AnnouncementKind = Literal["call", "recall"]
KINDS: tuple[str, ...] = get_args(AnnouncementKind)

# A ticket number is the service group's prefix (1-2 upper-case ASCII letters) and its daily
# sequence (3-4 digits): A001, VB1024 (the same form as hub/domain/queue.py issues).
TICKET_NUMBER = re.compile(r"[A-Z]{1,2}[0-9]{3,4}")
WINDOW_MAX = 999
# A window's spoken name: a few Chinese characters ("综合受理"), never digits, Latin letters or
# punctuation, which the voice would read out or stumble over.
WINDOW_NAME = re.compile(r"[\u4e00-\u9fff]{1,12}")
_WINDOW_SUFFIX = "窗口"


def call_text(
    ticket_no: str,
    window_number: int,
    window_name: str | None = None,
    *,
    kind: AnnouncementKind = "call",
    ticket_field: str = "ticket_no",
    window_field: str = "window_number",
    name_field: str = "window_name",
) -> str:
    """The sentence announcing that ticket ``ticket_no`` is called to a window.

    Args:
        ticket_no: the ticket number, e.g. ``A001`` or ``VB1024``.
        window_number: the window's number in its hall, 1 to 999.
        window_name: the window's name, spoken between number and ``窗口``
            (``请A001号到3号综合受理窗口办理``); a trailing ``窗口`` is not repeated. None or
            blank: the plain form.
        kind: ``"call"`` or ``"recall"`` (重呼: ``请A001号再次到3号窗口办理``).
        ticket_field, window_field, name_field: the field paths named in errors
            (``query.ticket`` for the speech endpoint).

    Returns:
        The sentence, e.g. ``请A001号到3号窗口办理``.

    Raises:
        InvalidInput: a malformed ticket number, a window number out of range, a window name
            that is not 1-12 Chinese characters, or an unknown kind.
    """
    if not isinstance(ticket_no, str) or not TICKET_NUMBER.fullmatch(ticket_no):
        raise InvalidInput(
            "a ticket number is 1-2 upper-case letters and 3-4 digits, e.g. A001",
            field=ticket_field,
        )
    if (
        isinstance(window_number, bool)
        or not isinstance(window_number, int)
        or not 1 <= window_number <= WINDOW_MAX
    ):
        raise InvalidInput(f"a window number is 1 to {WINDOW_MAX}", field=window_field)
    if kind not in KINDS:
        raise InvalidInput(f"kind is one of {', '.join(KINDS)}", field="kind")
    name = _spoken_name(window_name, name_field)
    again = "再次" if kind == "recall" else ""
    return f"请{ticket_no}号{again}到{window_number}号{name}{_WINDOW_SUFFIX}办理"


def _spoken_name(window_name: str | None, field: str) -> str:
    if window_name is None or not window_name.strip():
        return ""
    name = window_name.strip()
    if name.endswith(_WINDOW_SUFFIX):
        name = name[: -len(_WINDOW_SUFFIX)]
    if not WINDOW_NAME.fullmatch(name):
        raise InvalidInput("a spoken window name is 1-12 Chinese characters", field=field)
    return name
