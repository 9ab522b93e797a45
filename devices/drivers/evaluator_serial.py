"""The agent's driver for a wired evaluation pad (评价器, D4/O9) on a serial port.

Protocol: docs/devices/evaluator-serial.md (frames in :mod:`devices.codecs.evaluator_serial`).
What the driver does, by the document's §5:

- requests (``PROMPT``, ``CANCEL``, ``IDLE``, ``STATUS_QUERY``) are numbered 0–255 and sent one
  at a time; a request not answered within ``reply_timeout`` (500 ms) is sent again, the same
  bytes, at most ``retries`` (2) times, then fails with DeviceTimeout. The pad executes a
  repeated ``SEQ`` once, so a retried ``PROMPT`` never opens two prompts;
- events (``GRADE``, ``TIMEOUT``) are acknowledged at once, each with its own ``SEQ``; the pad
  resends an event until acknowledged, so the driver keeps the first and acknowledges and
  drops the repeats by ``request_id``: one press is one rating;
- a partial frame followed by ``silence`` (100 ms) is discarded;
- health: ``STATUS_QUERY`` every ``poll_seconds``; it also gives model, firmware and broken
  buttons for the device page (D6).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict
from collections.abc import Callable
from contextlib import suppress

import structlog

from devices.codecs.evaluator_serial import (
    Ack,
    Cancel,
    EvaluatorFrame,
    GradePressed,
    Heartbeat,
    PadStatus,
    Prompt,
    PromptTimeout,
    StatusQuery,
    encode_frame,
)
from devices.codecs.evaluator_serial import EvaluatorDecoder as _Decoder
from devices.codecs.wire import Garbage
from devices.drivers.ble_evaluator import GradeResult
from devices.drivers.evaluator import RatingPrompt, fit_text
from devices.drivers.link import HardwareInfo, PortDriver, await_reply, exchange
from devices.errors import DeviceError, DeviceOffline, DeviceRefused, DeviceTimeout
from devices.transport.serial import ByteTransport

__all__ = ["SerialEvaluator"]

log = structlog.get_logger("devices.drivers.evaluator_serial")

_CMD_PROMPT, _CMD_CANCEL, _CMD_STATUS_QUERY = 0x01, 0x02, 0x04
_CMD_GRADE, _CMD_TIMEOUT = 0x81, 0x82
_COMMANDS: dict[type, int] = {Prompt: _CMD_PROMPT, Cancel: _CMD_CANCEL, StatusQuery: 0x04}
_MAX_TIMEOUT_S = 600
_NAME_MAX, _CODE_MAX = 32, 16  # bytes of GB18030 (doc §4)


def _fit(text: str, limit: int) -> str:
    # A lone surrogate is left out: nothing a pad could show.
    return fit_text(text, limit, "gb18030")


class SerialEvaluator(PortDriver):
    """One wired pad on ``transport``.

    Args:
        transport: the pad's port (9600 8N1).
        name: how logs name it.
        poll_seconds: ``STATUS_QUERY`` interval.
        reply_timeout: seconds for the pad's ``ACK``/``STATUS`` (doc §5: 500 ms).
        retries: resends of an unanswered request (doc §5: 2).
        grace: seconds past a prompt's own timeout before it counts as unanswered (the pad's
            ``TIMEOUT`` normally ends it first).
        silence: seconds of quiet that end a partial frame (doc §5: 100 ms).
        remember: answered request ids kept to drop the pad's resends.
    """

    def __init__(
        self,
        transport: ByteTransport,
        *,
        name: str = "evaluator",
        poll_seconds: float = 10.0,
        reply_timeout: float = 0.5,
        retries: int = 2,
        grace: float = 2.0,
        silence: float = 0.1,
        remember: int = 256,
    ) -> None:
        super().__init__(transport, name, on_silence=self._on_silence, silence=silence)
        self.poll_seconds = poll_seconds
        self.reply_timeout = reply_timeout
        self.retries = retries
        self.grace = grace
        self.status: PadStatus | None = None
        self.acks_sent = 0
        self._decoder = _Decoder()
        self._lock = asyncio.Lock()
        self._prompt_lock = asyncio.Lock()
        # The pad drops a request that repeats its last (SEQ, CMD): start anywhere, so a
        # restarted agent's first request is not taken for a repeat.
        self._seq = secrets.randbelow(256)
        self._request: tuple[int, int, asyncio.Future[EvaluatorFrame]] | None = None
        self._pending: tuple[int, asyncio.Future[GradePressed | PromptTimeout]] | None = None
        self._answered: OrderedDict[int, None] = OrderedDict()
        self._remember = remember

    async def connect(self) -> HardwareInfo:
        """Open the port and ask the pad's status.

        Raises:
            DeviceOffline: the port cannot be opened.
            DeviceTimeout: the pad did not answer.
        """
        status = await self._connect(self.query_status)
        return HardwareInfo(model=status.model, firmware=status.firmware, parts=["evaluator"])

    def _fresh_link(self) -> None:
        self._decoder = _Decoder()

    async def watch(self) -> None:
        """Ask the pad's status every ``poll_seconds`` until the link is lost.

        Raises:
            DeviceOffline: the port hung up, or a status query went unanswered (with its
                retries).
        """
        await self._poll_until_lost(
            self.query_status, lambda: self.poll_seconds, max_missed=1, silent="pad silent"
        )

    async def query_status(self) -> PadStatus:
        """``STATUS_QUERY``: state, working buttons, model, firmware.

        Raises:
            DeviceOffline, DeviceTimeout: as requests do.
        """
        reply = await self._send(lambda seq: StatusQuery(seq=seq))
        if not isinstance(reply, PadStatus):
            raise DeviceRefused(f"{self._name}: status query answered by {reply!r}")
        if reply.faulty_buttons and (self.status is None or not self.status.faulty_buttons):
            log.warning("evaluator_buttons_faulty", pad=self._name, faulty=reply.faulty_buttons)
        self.status = reply
        return reply

    async def prompt(self, prompt: RatingPrompt) -> GradeResult:
        """Show ``prompt`` on the pad and wait for the citizen's grade.

        Returns:
            The grade, or unrated: ``timed_out`` (the pad's countdown ended), ``no_answer``
            (nothing by ``timeout_s`` + ``grace``; the prompt is then cancelled on the pad),
            ``disconnected`` (the link dropped while waiting).

        Raises:
            EncodeError: a field does not fit the frame (doc §4 limits).
            DeviceOffline, DeviceTimeout, DeviceRefused: the prompt was not shown.
        """
        timeout_s = min(max(1, prompt.timeout_s), _MAX_TIMEOUT_S)
        request_id = prompt.request_id
        async with self._prompt_lock:
            waiter: asyncio.Future[GradePressed | PromptTimeout]
            waiter = asyncio.get_running_loop().create_future()
            # Registered before the write: a quick press may come right behind the ACK.
            self._pending = (request_id, waiter)
            try:
                await self._send(
                    lambda seq: Prompt(
                        seq=seq,
                        request_id=request_id,
                        window_number=prompt.window_number,
                        timeout_s=timeout_s,
                        staff_name=_fit(prompt.staff_name, _NAME_MAX),
                        staff_no=_fit(prompt.staff_no, _CODE_MAX),
                        ticket_number=_fit(prompt.ticket_number, _CODE_MAX),
                    )
                )
                try:
                    notice = await await_reply(
                        self._pump, waiter, timeout_s + self.grace, f"{self._name}: grade"
                    )
                except DeviceOffline:
                    return GradeResult(request_id, unrated="disconnected")
                except DeviceTimeout:
                    log.info("evaluator_no_answer", pad=self._name, request_id=request_id)
                    with suppress(DeviceError):
                        await self._send(lambda seq: Cancel(seq=seq, request_id=request_id))
                    return GradeResult(request_id, unrated="no_answer")
            finally:
                self._pending = None
        if isinstance(notice, PromptTimeout):
            return GradeResult(request_id, unrated="timed_out")
        return GradeResult(request_id, grade=notice.grade, reasons=notice.reasons)

    # --- requests ---------------------------------------------------------------------------

    async def _send(self, make: Callable[[int], EvaluatorFrame]) -> EvaluatorFrame:
        """Send one request, resending the same bytes on silence; its answer.

        Raises:
            DeviceOffline: the link is down.
            DeviceTimeout: no answer after the retries.
            DeviceRefused: the pad answered ``ACK`` with a failure (not for ``CANCEL``, whose
                ``unknown_request`` is a normal answer).
        """
        async with self._lock:
            self._seq = (self._seq + 1) & 0xFF
            frame = make(self._seq)
            command = _COMMANDS[type(frame)]
            data = encode_frame(frame)
            waiter: asyncio.Future[EvaluatorFrame] = asyncio.get_running_loop().create_future()
            self._request = (self._seq, command, waiter)
            try:
                reply = await exchange(
                    self._pump,
                    data,
                    waiter,
                    self.reply_timeout,
                    f"{self._name}: {command:#04x}",
                    retries=self.retries,
                    on_timeout=self._resending,
                )
            finally:
                self._request = None
        if isinstance(reply, Ack) and reply.result != "ok" and command != _CMD_CANCEL:
            raise DeviceRefused(f"{self._name}: command {command:#04x} {reply.result}")
        return reply

    def _resending(self, again: bool) -> None:
        if again:
            log.debug("evaluator_resend", pad=self._name, seq=self._seq)

    # --- what the pad sends -----------------------------------------------------------------

    async def _on_data(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            await self._dispatch(item)

    async def _on_silence(self) -> None:
        for item in self._decoder.flush():
            await self._dispatch(item)

    async def _dispatch(self, item: EvaluatorFrame | Garbage) -> None:
        if isinstance(item, Garbage):
            self.garbage += item.skipped
            log.debug("evaluator_garbage", pad=self._name, skipped=item.skipped, code=item.code)
        elif isinstance(item, GradePressed | PromptTimeout):
            await self._on_event(item)
        elif isinstance(item, Ack | PadStatus):
            request = self._request
            command = _CMD_STATUS_QUERY if isinstance(item, PadStatus) else item.command
            if request is not None and request[:2] == (item.seq, command):
                if not request[2].done():
                    request[2].set_result(item)
            else:
                log.debug("evaluator_stray_reply", pad=self._name, seq=item.seq)
        elif not isinstance(item, Heartbeat):
            log.debug("evaluator_unexpected_frame", pad=self._name, frame=type(item).__name__)

    async def _on_event(self, event: GradePressed | PromptTimeout) -> None:
        command = _CMD_GRADE if isinstance(event, GradePressed) else _CMD_TIMEOUT
        # Acknowledged every time, repeats included: the pad resends until it hears one.
        await self.transport.write(encode_frame(Ack(seq=event.seq, command=command)))
        self.acks_sent += 1
        if event.request_id in self._answered:
            return  # a resend of an event already taken
        self._answered[event.request_id] = None
        if len(self._answered) > self._remember:
            self._answered.popitem(last=False)
        pending = self._pending
        if pending is not None and pending[0] == event.request_id and not pending[1].done():
            pending[1].set_result(event)
        else:
            # An answer after the deadline, or to a prompt of an earlier link: too late.
            log.info("evaluator_late_answer", pad=self._name, request_id=event.request_id)
