"""Notification rules (H6, Q8): phone numbers, message texts, keys and the retry schedule.

Pure functions, no I/O. The outbox that stores and sends notifications is
hub/services/notify.py; the SMS gateway adapter is hub/services/sms.py.

- Phone numbers: mainland mobile numbers only (``1[3-9]`` + 9 digits, ASCII digits), given
  bare or with ``+86`` / ``0086`` and spaces or hyphens; kept as the bare 11 digits and shown
  in logs and to staff masked (``138****1234``).
- Texts are zh-CN. The signature (``【政务服务中心】``) is not part of a stored body: the
  dispatcher puts the configured ``sms_sign`` in front when it sends.
- Keys are the idempotency keys of the outbox and of the gateway: one notification per cause
  (``turn_near:<ticket_id>``, ``appointment_reminder:<appointment_id>:<day>``).
- Retries: exponential backoff from :data:`RETRY_BASE_SECONDS`, capped at
  :data:`RETRY_CAP_SECONDS`; after :data:`MAX_ATTEMPTS` attempts a notification has failed.
"""

from __future__ import annotations

import re
from datetime import date, time

from hub.domain.errors import InvalidInput

DEFAULT_SIGN = "【政务服务中心】"

# A concatenated SMS of Chinese text carries 67 characters per part; 500 is about 8 parts,
# far more than any template needs, and bounds what a caller can put in the outbox.
BODY_MAX = 500
KEY_MAX = 200

KIND_TURN_NEAR = "turn_near"
KIND_APPOINTMENT_REMINDER = "appointment_reminder"

MAX_ATTEMPTS = 8
RETRY_BASE_SECONDS = 10.0
RETRY_CAP_SECONDS = 600.0

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_SEPARATORS = re.compile(r"[ \-]")
# Keys travel in an HTTP header (Idempotency-Key): a safe ASCII subset only.
_KEY = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{KEY_MAX}}}")
_KIND = re.compile(r"[a-z][a-z0-9_]{0,39}")


def normalize_phone(raw: str, *, field: str = "phone") -> str:
    """A mainland mobile number as its bare 11 digits.

    Accepts ``13812341234``, ``138 1234 1234``, ``138-1234-1234``, ``+86 13812341234``,
    ``008613812341234``. Only ASCII digits count.

    Raises:
        InvalidInput: anything else (``field`` names the input); the message never repeats
            the number.
    """
    text = _SEPARATORS.sub("", raw.strip())
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    if not _MOBILE.fullmatch(text):
        raise InvalidInput(
            "a mainland mobile number has 11 digits and starts with 13 to 19", field=field
        )
    return text


def mask_phone(phone: str) -> str:
    """The form for logs and staff screens: ``13812341234`` → ``138****1234``."""
    if len(phone) < 8:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def check_key(key: str, *, field: str = "key") -> str:
    """An idempotency key: 1-200 characters of ``A-Z a-z 0-9 _ . : -``.

    Raises:
        InvalidInput: another character, empty or too long.
    """
    if not _KEY.fullmatch(key):
        raise InvalidInput(
            f"a notification key has 1 to {KEY_MAX} characters of A-Z a-z 0-9 _ . : -",
            field=field,
        )
    return key


def check_kind(kind: str, *, field: str = "kind") -> str:
    """A notification kind: lower-case snake case, at most 40 characters (``turn_near``).

    Raises:
        InvalidInput: another shape.
    """
    if not _KIND.fullmatch(kind):
        raise InvalidInput("a notification kind is lower-case snake_case", field=field)
    return kind


def check_body(body: str, *, field: str = "body") -> str:
    """A message body: some visible text, at most :data:`BODY_MAX` characters.

    Raises:
        InvalidInput: empty, only white space, or too long.
    """
    if not body.strip():
        raise InvalidInput("a message needs some visible text", field=field)
    if len(body) > BODY_MAX:
        raise InvalidInput(f"a message has at most {BODY_MAX} characters", field=field)
    return body


def turn_near_key(ticket_id: int) -> str:
    """One "your turn is near" message per ticket."""
    return f"{KIND_TURN_NEAR}:{ticket_id}"


def appointment_reminder_key(appointment_id: int, day: date) -> str:
    """One reminder per appointment and day of the appointment (a rescheduled appointment
    gets a new reminder)."""
    return f"{KIND_APPOINTMENT_REMINDER}:{appointment_id}:{day.isoformat()}"


def turn_near_text(ticket_number: str, ahead: int) -> str:
    """``您的A001号前面还有2位，请到大厅等候叫号。`` (no signature).

    Args:
        ticket_number: the ticket's number as printed (``A001``).
        ahead: tickets still before it; 0 says it is called next.
    """
    if ahead < 0:
        raise ValueError("ahead is a count of tickets")
    if ahead == 0:
        return f"您的{ticket_number}号即将被叫号，请到大厅等候叫号。"
    return f"您的{ticket_number}号前面还有{ahead}位，请到大厅等候叫号。"


def appointment_reminder_text(group_name: str, day: date, start: time, hall_name: str) -> str:
    """``您预约的户籍业务将于2026年5月20日 09:30开始，请按时到城东政务服务中心签到取号。``

    Args:
        group_name: the service group booked (shown as the applicant chose it).
        day: the appointment's date, in the hall's time zone.
        start: the start of the booked period, in the hall's time zone.
        hall_name: where to check in.
    """
    when = f"{day.year}年{day.month}月{day.day}日 {start:%H:%M}"
    return f"您预约的{group_name}业务将于{when}开始，请按时到{hall_name}签到取号。"


def signed(sign: str, body: str) -> str:
    """The text as sent: the signature, then the body."""
    return f"{sign}{body}"


def retry_delay(attempts: int) -> float | None:
    """Seconds to wait after the ``attempts``-th failed attempt, or ``None``: give up.

    10, 20, 40, 80, 160, 320, 600 s (about 20 minutes in all), then failed after the 8th.
    """
    if attempts < 1:
        raise ValueError("attempts counts the attempts made, from 1")
    if attempts >= MAX_ATTEMPTS:
        return None
    return min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * float(2 ** (attempts - 1)))
