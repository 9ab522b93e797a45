"""A Bluetooth LE evaluation pad (评价器, D4/O9) on a bumble device: the GATT service of
docs/devices/evaluator-ble.md, advertised as ``HallEval-<label>``.

It runs on any bumble controller: a virtual one on an in-process ``bumble.link.LocalLink``
(tests), or a real adapter or emulator through a bumble transport (:func:`open_pad`, for
``hallhub simulate``). Scripting:

- ``answer = "manual"`` (default): a prompt is shown until :meth:`EvaluatorPad.press` answers
  it, :meth:`EvaluatorPad.expire` ends it, or its countdown runs out (a timed-out notice);
- ``answer = "auto"``: every prompt is answered at once with :attr:`EvaluatorPad.auto_grade`
  and :attr:`EvaluatorPad.auto_reasons`;
- ``answer = "silent"``: prompts are accepted and never answered, not even by the countdown
  (a pad that froze, or a notification lost on the air).

:meth:`EvaluatorPad.next_prompt` waits for the next accepted prompt, so a test can order
"prompt shown, then press" without sleeping. :meth:`EvaluatorPad.drop_link` disconnects the
agent from the pad's side; :meth:`EvaluatorPad.stop` takes the pad off the air;
:meth:`EvaluatorPad.send_raw` notifies any bytes (a faulty pad).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterable
from contextlib import asynccontextmanager
from typing import Any, Literal

import structlog
from bumble import att, gatt, hci
from bumble.device import Connection, Device
from bumble.transport import open_transport

from devices.codecs.evaluator_gatt import (
    GRADE_UUID,
    INFO_UUID,
    PROMPT_REJECTED,
    PROMPT_UUID,
    SERVICE_UUID,
    DeviceInfo,
    GradeNotice,
    Notice,
    Prompt,
    TimeoutNotice,
    encode_info,
    encode_notice,
    parse_prompt,
)
from devices.errors import FrameError
from hub.domain.rating import Grade, Reason

__all__ = ["AnswerMode", "EvaluatorPad", "advertising_data", "open_pad", "scan_response_data"]

log = structlog.get_logger("devices.simulators.ble_evaluator")

AnswerMode = Literal["manual", "auto", "silent"]

# About 100 ms between advertising events, as docs/devices/evaluator-ble.md says.
ADVERTISING_INTERVAL_MS = 100.0


def advertising_data() -> bytes:
    """The pad's advertising data: «Flags» LE General Discoverable, no BR/EDR, and the
    evaluator service in «Complete List of 128-bit Service UUIDs» (octets little-endian)."""
    return bytes((0x02, 0x01, 0x06, 0x11, 0x07)) + uuid.UUID(SERVICE_UUID).bytes[::-1]


def scan_response_data(name: str) -> bytes:
    """The pad's scan response: «Complete Local Name» ``name`` (at most 29 UTF-8 octets)."""
    encoded = name.encode("utf-8")
    if len(encoded) > 29:
        raise ValueError(f"a local name has at most 29 octets here, got {len(encoded)}")
    return bytes((len(encoded) + 1, 0x09)) + encoded


class EvaluatorPad:
    """The pad's GATT server and scriptable buttons on ``device``.

    Args:
        device: a bumble device, not yet powered on; the pad adds its service to it.
        label: the pad's label; it advertises as ``HallEval-<label>``.
        model, firmware: what the info characteristic says.
        answer: how prompts are answered (see the module docstring).
    """

    def __init__(
        self,
        device: Device,
        *,
        label: str = "03",
        model: str = "HallEval-SIM",
        firmware: str = "sim-1.0",
        answer: AnswerMode = "manual",
    ) -> None:
        self.device = device
        self.name = f"HallEval-{label}"
        self.answer: AnswerMode = answer
        self.auto_grade: Grade = "very_satisfied"
        self.auto_reasons: tuple[Reason, ...] = ()
        self.prompts: list[Prompt] = []
        """Every prompt the pad accepted, oldest first."""
        self.notices: list[Notice] = []
        """Every notice the pad sent, oldest first."""
        self.shown: Prompt | None = None
        self._accepted: asyncio.Queue[Prompt] = asyncio.Queue()
        self._countdown: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._grade = gatt.Characteristic(
            GRADE_UUID,
            gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.Permissions.READABLE,
            b"",
        )
        prompt: gatt.Characteristic[bytes] = gatt.Characteristic(
            PROMPT_UUID,
            gatt.Characteristic.Properties.WRITE,
            gatt.Characteristic.Permissions.WRITEABLE,
            gatt.CharacteristicValue[bytes](write=self._on_prompt_written),
        )
        info = gatt.Characteristic(
            INFO_UUID,
            gatt.Characteristic.Properties.READ,
            gatt.Characteristic.Permissions.READABLE,
            encode_info(DeviceInfo(model=model, firmware=firmware)),
        )
        device.add_service(gatt.Service(SERVICE_UUID, [prompt, self._grade, info]))
        device.on(device.EVENT_CONNECTION, self._on_connection)

    @property
    def connected(self) -> bool:
        """Whether a central (the agent) is connected."""
        return bool(self.device.connections)

    async def start(self) -> None:
        """Power the device on (once) and advertise; advertising restarts after each
        disconnection until :meth:`stop`."""
        if not self.device.powered_on:
            await self.device.power_on()
        await self.device.start_advertising(
            auto_restart=True,
            advertising_data=advertising_data(),
            scan_response_data=scan_response_data(self.name),
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )
        log.info("ble_pad_advertising", name=self.name, address=str(self.device.random_address))

    async def stop(self) -> None:
        """Go off the air: stop advertising and drop every connection."""
        await self.device.stop_advertising()
        await self.drop_link()

    async def drop_link(self) -> None:
        """Disconnect every central from the pad's side (as a pad switched off or out of range
        would); the shown prompt is dropped without a notice."""
        for connection in list(self.device.connections.values()):
            await connection.disconnect(hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR)

    async def next_prompt(self) -> Prompt:
        """Wait for the next prompt the pad accepts (or return one accepted and not yet taken)."""
        return await self._accepted.get()

    async def press(self, grade: Grade, reasons: Iterable[Reason] = ()) -> GradeNotice | None:
        """The citizen presses ``grade`` (and ``reasons``) for the shown prompt.

        Returns the notice sent, or None when no prompt is shown: like a real pad, a press
        without a prompt does nothing.
        """
        shown = self._take_shown()
        if shown is None:
            log.info("ble_pad_press_ignored", grade=grade)
            return None
        notice = GradeNotice(request_id=shown.request_id, grade=grade, reasons=tuple(reasons))
        await self._notify(notice)
        return notice

    async def expire(self) -> TimeoutNotice | None:
        """End the shown prompt's countdown now: the pad sends a timed-out notice.

        Returns the notice sent, or None when no prompt is shown.
        """
        shown = self._take_shown()
        if shown is None:
            return None
        notice = TimeoutNotice(request_id=shown.request_id)
        await self._notify(notice)
        return notice

    async def send_raw(self, value: bytes) -> None:
        """Notify ``value`` as it is on the grade characteristic, shown prompt or not (a pad
        with a firmware bug, or a notice for another request)."""
        await self.device.notify_subscribers(self._grade, value)

    def _on_connection(self, connection: Connection) -> None:
        log.info("ble_pad_connected", name=self.name, peer=str(connection.peer_address))
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)

    def _on_disconnection(self, reason: int) -> None:
        log.info("ble_pad_disconnected", name=self.name, reason=reason)
        self._take_shown()

    def _on_prompt_written(self, connection: Connection, value: bytes) -> None:
        try:
            prompt = parse_prompt(value)
        except FrameError as exc:
            log.warning("ble_pad_prompt_rejected", name=self.name, error=str(exc))
            raise att.ATT_Error(PROMPT_REJECTED, message=str(exc)) from exc
        self._take_shown()
        self.shown = prompt
        self.prompts.append(prompt)
        self._accepted.put_nowait(prompt)
        if self.answer == "auto":
            # In a task of its own, as a press is: never inside the write handler.
            self._spawn(self.press(self.auto_grade, self.auto_reasons))
        elif self.answer == "manual":
            self._countdown = asyncio.get_running_loop().call_later(
                prompt.timeout_ms / 1000, lambda: self._spawn(self.expire())
            )

    def _take_shown(self) -> Prompt | None:
        shown, self.shown = self.shown, None
        if self._countdown is not None:
            self._countdown.cancel()
            self._countdown = None
        return shown

    async def _notify(self, notice: Notice) -> None:
        self.notices.append(notice)
        await self.device.notify_subscribers(self._grade, encode_notice(notice))

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


@asynccontextmanager
async def open_pad(
    transport: str,
    *,
    label: str = "03",
    address: str = "F1:F1:F1:F1:F1:03",
    answer: AnswerMode = "manual",
) -> AsyncIterator[EvaluatorPad]:
    """A started pad on a bumble transport (``usb:0``, ``tcp-client:127.0.0.1:6402``,
    ``android-netsim``, …; see ``bumble.transport.open_transport``); stopped and closed on exit.
    """
    async with await open_transport(transport) as hci_transport:
        device = Device.with_hci(
            f"HallEval-{label}", hci.Address(address), hci_transport.source, hci_transport.sink
        )
        pad = EvaluatorPad(device, label=label, answer=answer)
        await pad.start()
        try:
            yield pad
        finally:
            await pad.stop()
