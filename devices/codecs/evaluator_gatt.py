"""Payloads of the evaluation pad's Bluetooth LE GATT service (D4, O9), sans-I/O.

The service (UUIDs below) has three characteristics:

- **prompt** (write with response, agent → pad)::

      01 | request_id (4, LE) | timeout (2, LE, × 100 ms)
         | window | staff_name | staff_no | ticket_no

  each string a length octet followed by that many octets of UTF-8;
- **grade** (notify, pad → agent)::

      02 | request_id (4) | grade (1: 5 very_satisfied … 1 very_dissatisfied) | n | n reason codes
      03 | request_id (4)                                           the pad's countdown ran out

- **info** (read)::

      protocol (1) | model | firmware

Each characteristic value is one whole message (ATT delivers values whole), so there is no
stream decoder and nothing to resynchronise: a value parses, or it is refused as a whole with
:class:`~devices.errors.FrameError`. The grade and reason codes are fixed here, not derived from
the order of the domain's tuples, so a change in ``hub.domain.rating`` cannot renumber the wire.

Layout, limits and the worked examples (the golden vectors): docs/devices/evaluator-ble.md.
"""

from __future__ import annotations

import struct
from typing import Final

import msgspec

from devices.errors import EncodeError, FrameError
from hub.domain.rating import Grade, Reason

__all__ = [
    "FIRMWARE_MAX",
    "GRADE_CODES",
    "GRADE_UUID",
    "INFO_UUID",
    "MAX_VALUE",
    "MODEL_MAX",
    "PROMPT_REJECTED",
    "PROMPT_UUID",
    "PROTOCOL_VERSION",
    "REASON_CODES",
    "SERVICE_UUID",
    "STAFF_NAME_MAX",
    "STAFF_NO_MAX",
    "TICKET_NO_MAX",
    "TIMEOUT_MAX_MS",
    "TIMEOUT_UNIT_MS",
    "WINDOW_MAX",
    "DeviceInfo",
    "GradeNotice",
    "Notice",
    "Prompt",
    "TimeoutNotice",
    "encode_info",
    "encode_notice",
    "encode_prompt",
    "parse_info",
    "parse_notice",
    "parse_prompt",
]

# One random (v4) UUID with a 16-bit slot in octets 2-3, as Nordic's UART service does.
SERVICE_UUID: Final = "bfcc0001-e774-4298-bc10-57abff871037"
PROMPT_UUID: Final = "bfcc0002-e774-4298-bc10-57abff871037"
GRADE_UUID: Final = "bfcc0003-e774-4298-bc10-57abff871037"
INFO_UUID: Final = "bfcc0004-e774-4298-bc10-57abff871037"

PROTOCOL_VERSION: Final = 1
# The pad's answer to a malformed prompt: the first ATT application error code
# (Core Specification Vol 3, Part F, §3.4.1.1: 0x80-0x9F belong to the application).
PROMPT_REJECTED: Final = 0x80

# ATT_MTU 247 - 3: the largest value one ATT write carries on the MTU pads negotiate.
MAX_VALUE: Final = 244
WINDOW_MAX: Final = 16
STAFF_NAME_MAX: Final = 48
STAFF_NO_MAX: Final = 32
TICKET_NO_MAX: Final = 32
MODEL_MAX: Final = 32
FIRMWARE_MAX: Final = 32
TIMEOUT_UNIT_MS: Final = 100
TIMEOUT_MAX_MS: Final = 0xFFFF * TIMEOUT_UNIT_MS

_PROMPT: Final = 0x01
_GRADE: Final = 0x02
_TIMED_OUT: Final = 0x03
_U32_MAX: Final = 0xFFFF_FFFF

# The grade code is the grade's GB/T 39735 score; reasons are numbered in checklist order.
GRADE_CODES: Final[dict[Grade, int]] = {
    "very_satisfied": 5,
    "satisfied": 4,
    "basically_satisfied": 3,
    "dissatisfied": 2,
    "very_dissatisfied": 1,
}
REASON_CODES: Final[dict[Reason, int]] = {
    "poor_attitude": 1,
    "slow_service": 2,
    "complex_process": 3,
    "unreasonable_materials": 4,
    "repeated_visits": 5,
    "unclear_policy": 6,
    "other": 7,
}
_GRADE_BY_CODE: Final = {code: grade for grade, code in GRADE_CODES.items()}
_REASON_BY_CODE: Final = {code: reason for reason, code in REASON_CODES.items()}


class Prompt(msgspec.Struct, frozen=True):
    """A rating prompt for the pad to show.

    ``timeout_ms`` is the pad's countdown: a multiple of 100 ms, from 100 to 6 553 500. The
    strings are display text; the hub links the rating through ``request_id``.
    """

    request_id: int
    window: str
    staff_name: str
    staff_no: str
    ticket_no: str
    timeout_ms: int


class GradeNotice(msgspec.Struct, frozen=True):
    """The citizen's grade for the prompt ``request_id``, with the reasons as the pad sent them."""

    request_id: int
    grade: Grade
    reasons: tuple[Reason, ...] = ()


class TimeoutNotice(msgspec.Struct, frozen=True):
    """Nobody pressed a grade before the pad's countdown for ``request_id`` ran out."""

    request_id: int


Notice = GradeNotice | TimeoutNotice


class DeviceInfo(msgspec.Struct, frozen=True):
    """What the pad says it is: model and firmware strings, and its protocol version."""

    model: str
    firmware: str
    protocol: int = PROTOCOL_VERSION


# --- encoding ---------------------------------------------------------------------------------


def encode_prompt(prompt: Prompt) -> bytes:
    """The prompt characteristic value for ``prompt``.

    Raises:
        EncodeError: a request id outside 0..2³²-1, a timeout that is not a multiple of 100 ms
            in 100..6 553 500, or a string over its limit in UTF-8 octets (window 16,
            staff_name 48, staff_no 32, ticket_no 32) or not encodable.
    """
    request_id = _request_id(prompt.request_id)
    timeout = prompt.timeout_ms
    if (
        not _is_int(timeout)
        or not TIMEOUT_UNIT_MS <= timeout <= TIMEOUT_MAX_MS
        or timeout % TIMEOUT_UNIT_MS
    ):
        raise EncodeError(
            f"timeout_ms must be a multiple of {TIMEOUT_UNIT_MS} in "
            f"{TIMEOUT_UNIT_MS}..{TIMEOUT_MAX_MS}, got {timeout!r}"
        )
    return b"".join(
        (
            struct.pack("<BIH", _PROMPT, request_id, timeout // TIMEOUT_UNIT_MS),
            _string("window", prompt.window, WINDOW_MAX),
            _string("staff_name", prompt.staff_name, STAFF_NAME_MAX),
            _string("staff_no", prompt.staff_no, STAFF_NO_MAX),
            _string("ticket_no", prompt.ticket_no, TICKET_NO_MAX),
        )
    )


def encode_notice(notice: Notice) -> bytes:
    """The grade characteristic value (a notification) for ``notice``.

    Raises:
        EncodeError: a request id outside 0..2³²-1, an unknown grade or reason, or a reason
            given twice.
    """
    request_id = _request_id(notice.request_id)
    if isinstance(notice, TimeoutNotice):
        return struct.pack("<BI", _TIMED_OUT, request_id)
    grade = GRADE_CODES.get(notice.grade) if isinstance(notice.grade, str) else None
    if grade is None:
        raise EncodeError(f"unknown grade {notice.grade!r}")
    if not isinstance(notice.reasons, tuple):
        raise EncodeError("reasons must be a tuple")
    codes = [REASON_CODES.get(r) if isinstance(r, str) else None for r in notice.reasons]
    if None in codes:
        raise EncodeError(f"unknown reason in {notice.reasons!r}")
    if len(set(codes)) != len(codes):
        raise EncodeError(f"a reason is given twice in {notice.reasons!r}")
    return struct.pack("<BIBB", _GRADE, request_id, grade, len(codes)) + bytes(
        c for c in codes if c is not None
    )


def encode_info(info: DeviceInfo) -> bytes:
    """The info characteristic value for ``info``.

    Raises:
        EncodeError: a protocol version outside 1..255, or a model or firmware string over
            32 UTF-8 octets or not encodable.
    """
    if not _is_int(info.protocol) or not 1 <= info.protocol <= 0xFF:
        raise EncodeError(f"protocol must be in 1..255, got {info.protocol!r}")
    return (
        bytes((info.protocol,))
        + _string("model", info.model, MODEL_MAX)
        + _string("firmware", info.firmware, FIRMWARE_MAX)
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _request_id(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _U32_MAX:
        return value
    raise EncodeError(f"request_id must be in 0..{_U32_MAX}, got {value!r}")


def _string(field: str, value: object, limit: int) -> bytes:
    if not isinstance(value, str):
        raise EncodeError(f"{field} must be a string, got {type(value).__name__}")
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"{field} is not encodable as UTF-8") from exc
    if len(data) > limit:
        raise EncodeError(f"{field} is {len(data)} UTF-8 octets; at most {limit}")
    return bytes((len(data),)) + data


# --- decoding ---------------------------------------------------------------------------------


def parse_prompt(value: bytes) -> Prompt:
    """Parse one prompt characteristic value (what the pad does with a write).

    Raises:
        FrameError: the value is not exactly one well-formed prompt.
    """
    reader = _Reader(value)
    kind = reader.u8("type")
    if kind != _PROMPT:
        raise FrameError(f"not a prompt: type 0x{kind:02x}")
    request_id = reader.u32("request_id")
    timeout = reader.u16("timeout")
    if timeout == 0:
        raise FrameError("timeout 0")
    prompt = Prompt(
        request_id=request_id,
        window=reader.string("window", WINDOW_MAX),
        staff_name=reader.string("staff_name", STAFF_NAME_MAX),
        staff_no=reader.string("staff_no", STAFF_NO_MAX),
        ticket_no=reader.string("ticket_no", TICKET_NO_MAX),
        timeout_ms=timeout * TIMEOUT_UNIT_MS,
    )
    reader.end()
    return prompt


def parse_notice(value: bytes) -> Notice:
    """Parse one grade characteristic value (a notification from the pad).

    Raises:
        FrameError: the value is not exactly one well-formed grade or timed-out notice
            (unknown type, grade or reason code, a reason twice, too short, bytes left over).
    """
    reader = _Reader(value)
    kind = reader.u8("type")
    if kind not in (_GRADE, _TIMED_OUT):
        raise FrameError(f"not a notice: type 0x{kind:02x}")
    request_id = reader.u32("request_id")
    if kind == _TIMED_OUT:
        reader.end()
        return TimeoutNotice(request_id=request_id)
    code = reader.u8("grade")
    grade = _GRADE_BY_CODE.get(code)
    if grade is None:
        raise FrameError(f"unknown grade code {code}")
    count = reader.u8("reason count")
    reasons: list[Reason] = []
    for code in reader.take("reasons", count):
        reason = _REASON_BY_CODE.get(code)
        if reason is None:
            raise FrameError(f"unknown reason code {code}")
        if reason in reasons:
            raise FrameError(f"reason code {code} twice")
        reasons.append(reason)
    reader.end()
    return GradeNotice(request_id=request_id, grade=grade, reasons=tuple(reasons))


def parse_info(value: bytes) -> DeviceInfo:
    """Parse the info characteristic value.

    A pad of a later protocol version may append fields after ``firmware``; they are ignored.

    Raises:
        FrameError: protocol 0, a string cut short, over its limit or not UTF-8, or (protocol 1)
            bytes left over.
    """
    reader = _Reader(value)
    protocol = reader.u8("protocol")
    if protocol == 0:
        raise FrameError("protocol 0")
    info = DeviceInfo(
        protocol=protocol,
        model=reader.string("model", MODEL_MAX),
        firmware=reader.string("firmware", FIRMWARE_MAX),
    )
    if protocol == PROTOCOL_VERSION:
        reader.end()
    return info


class _Reader:
    """Reads fields off one value front to back; every shortfall is a FrameError."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0

    def take(self, field: str, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise FrameError(f"value ends inside {field}")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def u8(self, field: str) -> int:
        return self.take(field, 1)[0]

    def u16(self, field: str) -> int:
        (number,) = struct.unpack("<H", self.take(field, 2))
        return int(number)

    def u32(self, field: str) -> int:
        (number,) = struct.unpack("<I", self.take(field, 4))
        return int(number)

    def string(self, field: str, limit: int) -> str:
        size = self.u8(field)
        if size > limit:
            raise FrameError(f"{field} is {size} octets; at most {limit}")
        try:
            return self.take(field, size).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FrameError(f"{field} is not UTF-8") from exc

    def end(self) -> None:
        if self._pos != len(self._data):
            raise FrameError(f"{len(self._data) - self._pos} octets left over")
