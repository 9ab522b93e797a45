"""The agent's evaluation pad (D4, O9): ``rating_requested`` on ``window:<window_id>`` in,
``rating`` / ``rating_unrated`` out.

The pad's window is the one the hub binds it to (the device snapshot's ``window_id``), else
agent.toml's ``window_id``. When a ticket is finished at that window the hub announces
``rating_requested``; the agent prompts the pad (one prompt at a time, in order) and reports
``rating {ticket_id, grade, reasons}`` or ``rating_unrated {ticket_id, reason}`` with the key
``rating:<ticket_id>``: one ticket is rated once (O9), and a request delivered twice is
prompted once. A pad that cannot be reached (or refuses the prompt) gives ``rating_unrated``
with ``disconnected``: the citizen is leaving, the hub records the prompt as unrated.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from typing import Any

import msgspec

from devices.agent.config import AgentConfig, EvaluatorConfig
from devices.agent.runner import (
    BackoffFactory,
    DeviceRunner,
    DeviceSettings,
    DeviceSnapshot,
    Recent,
)
from devices.drivers.ble_pad import BlePad
from devices.drivers.evaluator import Evaluator, RatingPrompt
from devices.drivers.evaluator_serial import SerialEvaluator
from devices.errors import DeviceError
from devices.transport.serial import SerialPort
from realtime.messages import Event, Snapshot

__all__ = ["EvaluatorRunner", "RatingRequested"]


class RatingRequested(msgspec.Struct, frozen=True, kw_only=True):
    """A ``rating_requested`` event's data (hub/services/queue_events.py RatingRequest; the
    display fields are optional so an older hub's events still prompt)."""

    ticket_id: int
    number: str = ""
    window_id: int | None = None
    staff_id: int | None = None
    window_number: int | None = None
    staff_name: str | None = None
    staff_no: str | None = None
    timeout_s: int | None = None


class _WindowInfo(msgspec.Struct, frozen=True):
    number: int


class _WindowSnapshot(msgspec.Struct, frozen=True):
    window: _WindowInfo | None = None


class EvaluatorRunner(DeviceRunner):
    """An evaluator device, wired or Bluetooth LE.

    Args:
        ble_options: passed to :class:`~devices.drivers.ble_pad.BlePad` (tests give bleak
            backends on bumble).
    """

    part = "evaluator"

    def __init__(
        self,
        agent: AgentConfig,
        config: EvaluatorConfig,
        *,
        backoff: BackoffFactory | None = None,
        ble_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(agent, config, backoff=backoff)
        self.driver: Evaluator
        if config.link == "ble":
            self.driver = BlePad(
                config.address, name=self.name, grace=config.grace, **(ble_options or {})
            )
        else:
            assert config.port is not None  # checked by the config
            self.driver = SerialEvaluator(
                SerialPort(config.port, baudrate=config.baudrate),
                name=self.name,
                poll_seconds=config.poll_seconds,
                grace=config.grace,
            )
        self.supervise(self.driver)
        self.window_id = config.window_id
        self.window_number: int | None = None
        self.timeout_s = config.timeout_s
        self.requests: asyncio.Queue[RatingRequested] = asyncio.Queue()
        self._handled = Recent()
        self._request_ids = itertools.count(secrets.randbelow(1 << 31))

    def topics(self) -> list[str]:
        return [] if self.window_id is None else [f"window:{self.window_id}"]

    def workers(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._prompts(), name=f"prompts-{self.name}")]

    async def shutdown(self) -> None:
        if isinstance(self.driver, BlePad):
            await self.driver.shutdown()

    async def apply(self, settings: DeviceSettings) -> None:
        if settings.timeout_s is not None:
            self.timeout_s = settings.timeout_s
        if settings.grace is not None:
            self.driver.grace = settings.grace
        if settings.poll_seconds is not None and isinstance(self.driver, SerialEvaluator):
            self.driver.poll_seconds = settings.poll_seconds

    async def on_device_snapshot(self, snapshot: DeviceSnapshot) -> None:
        if snapshot.window_id is not None and snapshot.window_id != self.window_id:
            self.log.info("evaluator_window", window_id=snapshot.window_id)
            self.window_id = snapshot.window_id
            self.window_number = None
            await self.resubscribe()

    async def on_topic_snapshot(self, snapshot: Snapshot) -> None:
        if snapshot.topic == f"window:{self.window_id}":
            window = msgspec.convert(snapshot.data or {}, _WindowSnapshot).window
            self.window_number = None if window is None else window.number

    async def on_topic_event(self, event: Event) -> None:
        if event.topic != f"window:{self.window_id}" or event.name != "rating_requested":
            return
        request = msgspec.convert(event.data, RatingRequested)
        if request.window_id is not None and request.window_id != self.window_id:
            return
        if request.ticket_id in self._handled:
            self.log.info("rating_request_repeated", ticket_id=request.ticket_id)
            return
        self._handled.add(request.ticket_id)
        self.requests.put_nowait(request)

    async def _prompts(self) -> None:
        while True:
            request = await self.requests.get()
            try:
                await self._prompt(request)
            except Exception:
                self.log.exception("rating_prompt_crashed", ticket_id=request.ticket_id)

    async def _prompt(self, request: RatingRequested) -> None:
        key = f"rating:{request.ticket_id}"
        if self.supervisor is not None and not self.supervisor.up.is_set():
            await self._unrated(request, "disconnected", "pad offline")
            return
        prompt = RatingPrompt(
            request_id=next(self._request_ids) & 0xFFFFFFFF,
            window_number=request.window_number or self.window_number or 0,
            timeout_s=request.timeout_s or self.timeout_s,
            staff_name=request.staff_name or "",
            staff_no=request.staff_no or "",
            ticket_number=request.number,
        )
        try:
            result = await self.driver.prompt(prompt)
        except DeviceError as exc:  # EncodeError included: the prompt was not shown
            await self._unrated(request, "disconnected", str(exc))
            return
        if result.grade is not None:
            self.log.info("rating", ticket_id=request.ticket_id, grade=result.grade)
            data = {
                "ticket_id": request.ticket_id,
                "grade": result.grade,
                "reasons": list(result.reasons),
            }
            await self.emit("rating", data, key)
        else:
            await self._unrated(request, result.unrated or "no_answer", "")

    async def _unrated(self, request: RatingRequested, reason: str, detail: str) -> None:
        self.log.info("rating_unrated", ticket_id=request.ticket_id, reason=reason, detail=detail)
        await self.emit(
            "rating_unrated",
            {"ticket_id": request.ticket_id, "reason": reason},
            f"rating:{request.ticket_id}",
        )
