"""Wired evaluation pad (评价器, SPEC D4/O9): the serial frame protocol of
``docs/devices/evaluator-serial.md``, host side. Sans-I/O: bytes in, Structs out.

Frame: ``STX(02) LEN CMD SEQ PAYLOAD CRC(lo,hi) ETX(03)``; LEN is the payload length, the CRC is
CRC-16/MODBUS over ``LEN..PAYLOAD``. Length-checked, not byte-stuffed: payload bytes are free.
Integers are big-endian; texts are a length byte plus GB18030 (doc §2).

Every frame of the protocol, either direction, is one Struct; :func:`parse_frame` and
:func:`encode_frame` are inverses. :class:`EvaluatorDecoder` finds frames in a stream.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

import msgspec

from devices.codecs.wire import FrameScanner, Garbage, Reader, check_int, crc16_modbus, str8
from devices.errors import ChecksumError, EncodeError, FrameError

# The hub's grade and reason vocabularies (GLOSSARY); the wire numbers are defined here (doc §4).
from hub.domain.rating import Grade, Reason

__all__ = [
    "GRADE_BY_WIRE",
    "MAX_FRAME",
    "REASON_BY_WIRE",
    "Ack",
    "AckResult",
    "Cancel",
    "EvaluatorDecoder",
    "EvaluatorFrame",
    "EvaluatorItem",
    "Garbage",
    "GradePressed",
    "Heartbeat",
    "PadState",
    "PadStatus",
    "Prompt",
    "PromptTimeout",
    "ShowIdle",
    "StatusQuery",
    "encode_frame",
    "parse_frame",
]

STX: Final = 0x02
ETX: Final = 0x03
MAX_FRAME: Final = 255 + 7

CMD_PROMPT: Final = 0x01
CMD_CANCEL: Final = 0x02
CMD_IDLE: Final = 0x03
CMD_STATUS_QUERY: Final = 0x04
CMD_ACK: Final = 0x06
CMD_GRADE: Final = 0x81
CMD_TIMEOUT: Final = 0x82
CMD_STATUS: Final = 0x84
CMD_HEARTBEAT: Final = 0x85

# Doc §4 "Grades and reasons": the grade byte is the GB/T 39735 score.
GRADE_BY_WIRE: Final[dict[int, Grade]] = {
    5: "very_satisfied",
    4: "satisfied",
    3: "basically_satisfied",
    2: "dissatisfied",
    1: "very_dissatisfied",
}
WIRE_BY_GRADE: Final[dict[Grade, int]] = {g: n for n, g in GRADE_BY_WIRE.items()}
REASON_BY_WIRE: Final[dict[int, Reason]] = {
    1: "poor_attitude",
    2: "slow_service",
    3: "complex_process",
    4: "unreasonable_materials",
    5: "repeated_visits",
    6: "unclear_policy",
    7: "other",
}
WIRE_BY_REASON: Final[dict[Reason, int]] = {r: n for n, r in REASON_BY_WIRE.items()}

AckResult: TypeAlias = Literal["ok", "unknown_request", "unsupported", "bad_payload"]
_ACK_RESULTS: Final[tuple[AckResult, ...]] = ("ok", "unknown_request", "unsupported", "bad_payload")
PadState: TypeAlias = Literal["idle", "prompting"]
_PAD_STATES: Final[tuple[PadState, ...]] = ("idle", "prompting")

# Encoder limits per text field, in bytes (doc §4).
_NAME_MAX: Final = 32
_CODE_MAX: Final = 16
_IDLE_MAX: Final = 64
_INFO_MAX: Final = 32


class Prompt(msgspec.Struct, frozen=True, kw_only=True):
    """Host → pad ``PROMPT`` (0x01): ask the citizen to rate; ``timeout_s`` 1–600 on encode."""

    seq: int
    request_id: int
    window_number: int
    timeout_s: int
    staff_name: str
    staff_no: str
    ticket_number: str


class Cancel(msgspec.Struct, frozen=True, kw_only=True):
    """Host → pad ``CANCEL`` (0x02): close the open prompt ``request_id``."""

    seq: int
    request_id: int


class ShowIdle(msgspec.Struct, frozen=True, kw_only=True):
    """Host → pad ``IDLE`` (0x03): the welcome screen; empty text = the pad's own."""

    seq: int
    text: str = ""


class StatusQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Host → pad ``STATUS_QUERY`` (0x04); answered by :class:`PadStatus`."""

    seq: int


class Ack(msgspec.Struct, frozen=True, kw_only=True):
    """``ACK`` (0x06), both directions: ``command`` acknowledged with ``result``."""

    seq: int
    command: int
    result: AckResult = "ok"


class GradePressed(msgspec.Struct, frozen=True, kw_only=True):
    """Pad → host ``GRADE`` (0x81): the answer to prompt ``request_id``.

    ``reasons`` are as sent, mapped to the hub's codes (an unknown code is ``other``); the
    driver, not the codec, drops a good grade's reasons (doc §6).
    """

    seq: int
    request_id: int
    grade: Grade
    reasons: tuple[Reason, ...] = ()


class PromptTimeout(msgspec.Struct, frozen=True, kw_only=True):
    """Pad → host ``TIMEOUT`` (0x82): prompt ``request_id`` got no press in time."""

    seq: int
    request_id: int


class PadStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Pad → host ``STATUS`` (0x84). ``faulty_buttons``: grades whose button does not work."""

    seq: int
    state: PadState
    model: str
    firmware: str
    faulty_buttons: tuple[Grade, ...] = ()

    @property
    def buttons_ok(self) -> bool:
        """Whether all five buttons work."""
        return not self.faulty_buttons


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """Pad → host ``HEARTBEAT`` (0x85), every 10 s, not acknowledged."""

    seq: int
    state: PadState


EvaluatorFrame: TypeAlias = (
    Prompt
    | Cancel
    | ShowIdle
    | StatusQuery
    | Ack
    | GradePressed
    | PromptTimeout
    | PadStatus
    | Heartbeat
)
EvaluatorItem: TypeAlias = EvaluatorFrame | Garbage


# --- encoding ---------------------------------------------------------------------------------


def _text(value: str, field: str, limit: int) -> bytes:
    try:
        data = value.encode("gb18030")
    except UnicodeEncodeError as exc:  # lone surrogates: the only thing GB18030 cannot hold
        raise EncodeError(f"{field} cannot be encoded in GB18030") from exc
    return str8(data, field, limit)


def _ascii(value: str, field: str, limit: int) -> bytes:
    if not value.isascii() or not value.isprintable():
        raise EncodeError(f"{field} must be printable ASCII")
    return str8(value.encode("ascii"), field, limit)


def _payload(frame: EvaluatorFrame) -> tuple[int, bytes]:
    if isinstance(frame, Prompt):
        return CMD_PROMPT, (
            check_int(frame.request_id, 0, 0xFFFFFFFF, "request_id").to_bytes(4, "big")
            + check_int(frame.window_number, 0, 0xFFFF, "window_number").to_bytes(2, "big")
            + check_int(frame.timeout_s, 1, 600, "timeout_s").to_bytes(2, "big")
            + _text(frame.staff_name, "staff_name", _NAME_MAX)
            + _text(frame.staff_no, "staff_no", _CODE_MAX)
            + _text(frame.ticket_number, "ticket_number", _CODE_MAX)
        )
    if isinstance(frame, Cancel | PromptTimeout):
        cmd = CMD_CANCEL if isinstance(frame, Cancel) else CMD_TIMEOUT
        return cmd, check_int(frame.request_id, 0, 0xFFFFFFFF, "request_id").to_bytes(4, "big")
    if isinstance(frame, ShowIdle):
        return CMD_IDLE, _text(frame.text, "text", _IDLE_MAX)
    if isinstance(frame, StatusQuery):
        return CMD_STATUS_QUERY, b""
    if isinstance(frame, Ack):
        command = check_int(frame.command, 0, 0xFF, "command")
        return CMD_ACK, bytes((command, _ACK_RESULTS.index(frame.result)))
    if isinstance(frame, GradePressed):
        reasons = bytes(WIRE_BY_REASON[r] for r in frame.reasons)
        return CMD_GRADE, (
            check_int(frame.request_id, 0, 0xFFFFFFFF, "request_id").to_bytes(4, "big")
            + bytes((WIRE_BY_GRADE[frame.grade], len(reasons)))
            + reasons
        )
    if isinstance(frame, PadStatus):
        working = 0x1F & ~sum(1 << (WIRE_BY_GRADE[g] - 1) for g in set(frame.faulty_buttons))
        return CMD_STATUS, (
            bytes((_PAD_STATES.index(frame.state), working))
            + _ascii(frame.model, "model", _INFO_MAX)
            + _ascii(frame.firmware, "firmware", _INFO_MAX)
        )
    return CMD_HEARTBEAT, bytes((_PAD_STATES.index(frame.state),))


def encode_frame(frame: EvaluatorFrame) -> bytes:
    """The bytes of ``frame`` on the wire, STX to ETX.

    Raises:
        EncodeError: a number out of its range (``seq`` 0–255, ``request_id`` u32,
            ``window_number`` u16, ``timeout_s`` 1–600), a text over its byte limit (staff name
            32, staff_no and ticket 16, idle text 64, model/firmware 32 printable ASCII), more
            than 255 payload bytes, or an unknown grade, reason or state.
    """
    seq = check_int(frame.seq, 0, 0xFF, "seq")
    try:
        cmd, payload = _payload(frame)
    except (KeyError, ValueError) as exc:  # a value outside a Literal (unchecked at runtime)
        raise EncodeError(f"not encodable: {exc}") from exc
    if len(payload) > 255:
        raise EncodeError(f"payload is {len(payload)} bytes, at most 255")
    body = bytes((len(payload), cmd, seq)) + payload
    crc = crc16_modbus(body)
    return bytes((STX,)) + body + bytes((crc & 0xFF, crc >> 8, ETX))


# --- decoding ---------------------------------------------------------------------------------


def _check_envelope(frame: bytes) -> None:
    if len(frame) < 7 or frame[0] != STX:
        raise FrameError("a frame starts with STX and has at least 7 bytes")
    if len(frame) != frame[1] + 7:
        raise FrameError(f"LEN {frame[1]} does not match a {len(frame)}-byte frame")
    if frame[-1] != ETX:
        raise FrameError("no ETX where LEN puts the end of the frame")
    sent = frame[-3] | frame[-2] << 8
    if crc16_modbus(frame[1:-3]) != sent:
        raise ChecksumError(f"CRC {sent:04X} does not match {crc16_modbus(frame[1:-3]):04X}")


def _decode_text(data: bytes, field: str) -> str:
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise FrameError(f"{field} is not GB18030") from exc


def _state(value: int) -> PadState:
    if value >= len(_PAD_STATES):
        raise FrameError(f"unknown pad state {value}")
    return _PAD_STATES[value]


def _decode_body(frame: bytes) -> EvaluatorFrame:
    cmd, seq = frame[2], frame[3]
    r = Reader(frame[4:-3])
    item: EvaluatorFrame
    if cmd == CMD_PROMPT:
        request_id, window, timeout = r.u32(), r.u16(), r.u16()
        if timeout == 0:
            raise FrameError("a prompt's timeout is at least 1 s")
        item = Prompt(
            seq=seq,
            request_id=request_id,
            window_number=window,
            timeout_s=timeout,
            staff_name=_decode_text(r.str8(), "staff_name"),
            staff_no=_decode_text(r.str8(), "staff_no"),
            ticket_number=_decode_text(r.str8(), "ticket_number"),
        )
    elif cmd == CMD_CANCEL:
        item = Cancel(seq=seq, request_id=r.u32())
    elif cmd == CMD_IDLE:
        item = ShowIdle(seq=seq, text=_decode_text(r.str8(), "text"))
    elif cmd == CMD_STATUS_QUERY:
        item = StatusQuery(seq=seq)
    elif cmd == CMD_ACK:
        command, result = r.u8(), r.u8()
        if result >= len(_ACK_RESULTS):
            raise FrameError(f"unknown ACK result {result}")
        item = Ack(seq=seq, command=command, result=_ACK_RESULTS[result])
    elif cmd == CMD_GRADE:
        request_id, wire_grade = r.u32(), r.u8()
        grade = GRADE_BY_WIRE.get(wire_grade)
        if grade is None:
            raise FrameError(f"grade {wire_grade} is not 1..5")
        # Doc §4: an unknown reason code (a newer checklist) is "other", never a lost rating.
        reasons = tuple(REASON_BY_WIRE.get(code, "other") for code in r.take(r.u8()))
        item = GradePressed(seq=seq, request_id=request_id, grade=grade, reasons=reasons)
    elif cmd == CMD_TIMEOUT:
        item = PromptTimeout(seq=seq, request_id=r.u32())
    elif cmd == CMD_STATUS:
        state, working = _state(r.u8()), r.u8()
        model, firmware = r.str8(), r.str8()
        if not (model + firmware).isascii():
            raise FrameError("model and firmware are ASCII")
        item = PadStatus(
            seq=seq,
            state=state,
            model=model.decode("ascii"),
            firmware=firmware.decode("ascii"),
            faulty_buttons=tuple(
                g
                for n, g in sorted(GRADE_BY_WIRE.items(), reverse=True)
                if not working >> (n - 1) & 1
            ),
        )
    elif cmd == CMD_HEARTBEAT:
        item = Heartbeat(seq=seq, state=_state(r.u8()))
    else:
        raise FrameError(f"unknown command 0x{cmd:02X}")
    r.end()
    return item


def parse_frame(frame: bytes) -> EvaluatorFrame:
    """Decode one complete frame, STX to ETX.

    Raises:
        FrameError: no STX/ETX where they belong, LEN not matching, an unknown command, or
            invalid fields (short payload, bytes left over, grade not 1–5, zero timeout, text
            not GB18030, unknown state or ACK result).
        ChecksumError: the CRC does not match.
    """
    _check_envelope(frame)
    return _decode_body(frame)


class EvaluatorDecoder:
    """Finds frames in the byte stream from the pad (or, for the pad, from the host)."""

    __slots__ = ("_scanner",)

    def __init__(self, *, max_frame: int = MAX_FRAME) -> None:
        """``max_frame`` bounds the buffer: a frame claiming more bytes is garbage.

        Raises:
            ValueError: ``max_frame`` under 7 (no frame would fit).
        """
        self._scanner: FrameScanner[EvaluatorFrame] = FrameScanner(
            header=bytes((STX,)),
            len_at=1,
            overhead=7,
            max_frame=max_frame,
            check=_check_envelope,
            decode=_decode_body,
        )

    def feed(self, data: bytes) -> list[EvaluatorItem]:
        """Append bytes; return every complete item now available, in order. Never raises:
        garbage becomes a :class:`Garbage` item and the decoder resynchronises on the next STX.
        """
        return self._scanner.feed(data)

    def flush(self) -> list[EvaluatorItem]:
        """Call after 100 ms of silence (or a reply timeout): a partial frame in the buffer
        becomes ``Garbage(code="truncated")``, frames after it are decoded."""
        return self._scanner.flush()
