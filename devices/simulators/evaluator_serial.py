"""A simulated wired evaluation pad (评价器, D4), for tests and the demo.

The pad side of ``docs/devices/evaluator-serial.md``, written from the document and not from
:mod:`devices.codecs.evaluator_serial`: its own CRC (bitwise, where the codec uses a table), its
own frame scanner and its own frame builder, so a mistake in the codec is not mirrored here.

:class:`EvaluatorPadModel` is sans-I/O: :meth:`~EvaluatorPadModel.receive_data` takes host
bytes, :meth:`~EvaluatorPadModel.data_to_send` returns what the pad sends, and
``on_output`` (if set) is called whenever there is something to send. Time comes from the
injected ``clock``; :meth:`~EvaluatorPadModel.tick` applies it (prompt timeouts, resends of
unacknowledged events, heartbeats). :func:`serve` runs a model on a serial port
(:func:`serve_port` on one already open).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection, Sequence

import msgspec
import serialx
import structlog

from devices.simulators.serving import crc16_modbus as _crc
from devices.simulators.serving import open_port
from hub.domain.rating import Grade, Reason

log = structlog.get_logger("devices.simulators.evaluator_serial")

# The wire numbers of doc §4, written out again here on purpose (independent of the codec).
_GRADE_WIRE: dict[Grade, int] = {
    "very_satisfied": 5,
    "satisfied": 4,
    "basically_satisfied": 3,
    "dissatisfied": 2,
    "very_dissatisfied": 1,
}
_REASON_WIRE: dict[Reason, int] = {
    "poor_attitude": 1,
    "slow_service": 2,
    "complex_process": 3,
    "unreasonable_materials": 4,
    "repeated_visits": 5,
    "unclear_policy": 6,
    "other": 7,
}
_OK, _UNKNOWN_REQUEST, _UNSUPPORTED, _BAD_PAYLOAD = 0, 1, 2, 3


def _frame(cmd: int, seq: int, payload: bytes) -> bytes:
    body = bytes([len(payload), cmd, seq]) + payload
    crc = _crc(body)
    return b"\x02" + body + bytes([crc & 0xFF, crc >> 8, 0x03])


class _Malformed(Exception):
    """A request whose frame is intact but whose fields are not (answered ``bad_payload``)."""


def _cut(payload: bytes, at: int, n: int) -> tuple[bytes, int]:
    if at + n > len(payload):
        raise _Malformed
    return payload[at : at + n], at + n


def _text(payload: bytes, at: int) -> tuple[str, int]:
    size, at = _cut(payload, at, 1)
    raw, at = _cut(payload, at, size[0])
    try:
        return raw.decode("gb18030"), at
    except UnicodeDecodeError:
        raise _Malformed from None


class PadPrompt(msgspec.Struct, frozen=True, kw_only=True):
    """The prompt the pad shows, as it understood the host's ``PROMPT``."""

    request_id: int
    window_number: int
    timeout_s: int
    staff_name: str
    staff_no: str
    ticket_number: str
    deadline: float


class _Pending(msgspec.Struct, kw_only=True):
    frame: bytes
    seq: int
    cmd: int
    resends: int
    next_at: float


class EvaluatorPadModel:
    """One pad. Scriptable: :meth:`press` answers the open prompt; ``auto_grade`` answers every
    prompt at once; ``faulty_buttons`` are reported in ``STATUS`` and ignore presses.

    Args:
        model, firmware: what ``STATUS`` reports.
        auto_grade, auto_reasons: if set, each prompt is graded so right after its ``ACK``.
        faulty_buttons: grades whose button is broken.
        clock: seconds, monotonic; :meth:`tick` compares deadlines with it.
        heartbeat_interval: seconds between ``HEARTBEAT`` frames; None sends none.
        resend_interval, resend_limit: an unacknowledged ``GRADE``/``TIMEOUT`` is sent again
            every ``resend_interval`` seconds, at most ``resend_limit`` times (doc §5).
    """

    def __init__(
        self,
        *,
        model: str = "HH-EV5",
        firmware: str = "1.2.0",
        auto_grade: Grade | None = None,
        auto_reasons: Sequence[Reason] = (),
        faulty_buttons: Collection[Grade] = (),
        clock: Callable[[], float] = time.monotonic,
        heartbeat_interval: float | None = 10.0,
        resend_interval: float = 1.0,
        resend_limit: int = 3,
    ) -> None:
        self.model = model
        self.firmware = firmware
        self.auto_grade = auto_grade
        self.auto_reasons = tuple(auto_reasons)
        self.faulty_buttons = set(faulty_buttons)
        self.clock = clock
        self.heartbeat_interval = heartbeat_interval
        self.resend_interval = resend_interval
        self.resend_limit = resend_limit
        self.on_output: Callable[[], None] | None = None
        self.prompt: PadPrompt | None = None
        self.idle_text = ""
        self.prompts_seen = 0
        self.bad_frames = 0
        self.pending: list[_Pending] = []
        self._buf = bytearray()
        self._out = bytearray()
        self._seq = 0
        self._last: tuple[int, int, bytes] | None = None  # (seq, cmd, reply) of the last request
        self._next_heartbeat = None if heartbeat_interval is None else clock() + heartbeat_interval

    # --- bytes in, bytes out ---

    def receive_data(self, data: bytes) -> None:
        """Take bytes from the host; replies become available through :meth:`data_to_send`."""
        self._buf += data
        buf = self._buf
        while True:
            start = buf.find(0x02)
            if start < 0:
                buf.clear()
                return
            del buf[:start]
            if len(buf) < 2 or len(buf) < buf[1] + 7:
                return
            size = buf[1] + 7
            frame = bytes(buf[:size])
            if frame[-1] != 0x03 or _crc(frame[1:-3]) != frame[-3] | frame[-2] << 8:
                self.bad_frames += 1
                del buf[:1]
                continue
            del buf[:size]
            self._request(frame[2], frame[3], frame[4:-3])

    def data_to_send(self) -> bytes:
        """Everything the pad has sent since the last call."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def _send(self, frame: bytes) -> None:
        self._out += frame
        if self.on_output is not None:
            self.on_output()

    # --- the host's requests ---

    def _request(self, cmd: int, seq: int, payload: bytes) -> None:
        if cmd == 0x06:  # the host acknowledges one of our events: no reply
            if len(payload) == 2:
                self.pending = [p for p in self.pending if (p.seq, p.cmd) != (seq, payload[0])]
            return
        if self._last is not None and self._last[:2] == (seq, cmd):
            self._send(self._last[2])  # a retry: answer again, do not execute twice (doc §5)
            return
        try:
            reply = self._execute(cmd, seq, payload)
        except _Malformed:
            reply = _frame(0x06, seq, bytes([cmd, _BAD_PAYLOAD]))
        self._last = (seq, cmd, reply)
        self._send(reply)
        if cmd == 0x01 and self.auto_grade is not None and self.prompt is not None:
            self.press(self.auto_grade, self.auto_reasons)

    def _execute(self, cmd: int, seq: int, payload: bytes) -> bytes:
        ack = _frame(0x06, seq, bytes([cmd, _OK]))
        if cmd == 0x01:
            head, at = _cut(payload, 0, 8)
            staff_name, at = _text(payload, at)
            staff_no, at = _text(payload, at)
            ticket, at = _text(payload, at)
            timeout = int.from_bytes(head[6:8], "big")
            if at != len(payload) or timeout == 0:
                raise _Malformed
            self.prompts_seen += 1
            self.prompt = PadPrompt(
                request_id=int.from_bytes(head[0:4], "big"),
                window_number=int.from_bytes(head[4:6], "big"),
                timeout_s=timeout,
                staff_name=staff_name,
                staff_no=staff_no,
                ticket_number=ticket,
                deadline=self.clock() + timeout,
            )
            return ack
        if cmd == 0x02:
            if len(payload) != 4:
                raise _Malformed
            if self.prompt is None or self.prompt.request_id != int.from_bytes(payload, "big"):
                return _frame(0x06, seq, bytes([cmd, _UNKNOWN_REQUEST]))
            self.prompt = None
            return ack
        if cmd == 0x03:
            text, at = _text(payload, 0)
            if at != len(payload):
                raise _Malformed
            self.prompt = None
            self.idle_text = text
            return ack
        if cmd == 0x04:
            if payload:
                raise _Malformed
            working = 0x1F & ~sum(1 << (_GRADE_WIRE[g] - 1) for g in self.faulty_buttons)
            model, firmware = self.model.encode("ascii"), self.firmware.encode("ascii")
            return _frame(
                0x84,
                seq,
                bytes([self._state, working, len(model)])
                + model
                + bytes([len(firmware)])
                + firmware,
            )
        return _frame(0x06, seq, bytes([cmd, _UNSUPPORTED]))

    @property
    def _state(self) -> int:
        return 1 if self.prompt is not None else 0

    # --- the citizen and the clock ---

    def press(self, grade: Grade, reasons: Sequence[Reason] = ()) -> bool:
        """Press the ``grade`` button (after ticking ``reasons`` on the checklist).

        Returns:
            True if it answered the open prompt; False if no prompt was open or the button is
            faulty (the press does nothing, as on a real pad).
        """
        if self.prompt is None or grade in self.faulty_buttons:
            return False
        codes = bytes(_REASON_WIRE[r] for r in reasons)
        payload = (
            self.prompt.request_id.to_bytes(4, "big")
            + bytes([_GRADE_WIRE[grade], len(codes)])
            + codes
        )
        self.prompt = None
        self._event(0x81, payload)
        return True

    def tick(self) -> None:
        """Apply the clock: time out the open prompt, resend unacknowledged events, send a
        heartbeat when one is due."""
        now = self.clock()
        if self.prompt is not None and now >= self.prompt.deadline:
            request_id = self.prompt.request_id
            self.prompt = None
            self._event(0x82, request_id.to_bytes(4, "big"))
        for pending in list(self.pending):
            if now < pending.next_at:
                continue
            if pending.resends >= self.resend_limit:
                self.pending.remove(pending)  # given up: the host will see the pad's silence
                continue
            pending.resends += 1
            pending.next_at = now + self.resend_interval
            self._send(pending.frame)
        if self._next_heartbeat is not None and now >= self._next_heartbeat:
            assert self.heartbeat_interval is not None
            self._next_heartbeat = now + self.heartbeat_interval
            self._send(_frame(0x85, self._next_seq(), bytes([self._state])))

    def _event(self, cmd: int, payload: bytes) -> None:
        seq = self._next_seq()
        frame = _frame(cmd, seq, payload)
        next_at = self.clock() + self.resend_interval
        self.pending.append(_Pending(frame=frame, seq=seq, cmd=cmd, resends=0, next_at=next_at))
        self._send(frame)

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq


async def serve(
    path: str,
    model: EvaluatorPadModel,
    baudrate: int = 9600,
    *,
    tick_interval: float = 0.1,
    ready: asyncio.Event | None = None,
) -> None:
    """Be the pad on the serial port ``path`` until cancelled or the port reaches EOF.

    Host bytes go to ``model``; whatever the pad sends (replies, presses scripted from a test
    or the demo, timeouts) is written as it happens. ``model.tick()`` runs every
    ``tick_interval`` seconds. ``ready`` is set once the port is open; bytes sent before
    that are lost.

    Raises:
        serialx.SerialException, OSError: the port cannot be opened or fails.
    """
    async with open_port(path, baudrate, ready) as port:
        log.info("evaluator_sim.serving", path=path)
        await serve_port(port, model, tick_interval=tick_interval)


async def serve_port(
    port: serialx.AsyncSerial, model: EvaluatorPadModel, *, tick_interval: float = 0.1
) -> None:
    """Be the pad on the open ``port`` until it reaches EOF: as :func:`serve`, from the bytes
    the pad had to send before.

    Raises:
        serialx.SerialException, OSError: the port fails.
    """
    model.on_output = lambda: port.write_nowait(model.data_to_send())
    ticker = asyncio.create_task(_tick(model, tick_interval))
    try:
        pending = model.data_to_send()
        if pending:
            await port.write(pending)
        while data := await port.read(4096):
            model.receive_data(data)
            await port.drain()
    finally:
        model.on_output = None
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker


async def _tick(model: EvaluatorPadModel, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        model.tick()
