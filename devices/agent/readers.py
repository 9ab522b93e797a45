"""The agent's readers: the ID card reader (D2, O3) and the code reader (D5).

ID card reader: ``read_card {request_id, timeout_s}`` on its device topic asks for a card;
the answer is ``card_read {request_id, card}`` or ``card_read_failed {request_id, reason}``
(key ``card:<request_id>``). With ``auto_read`` a card put on the reader unasked is reported
as ``card_read`` with ``request_id`` "". The full card travels only in that event (the hub
routes it, volatile, to the page that asked); logs show the masked card only.

Code reader: each scanned code is ``code_scanned {text}``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from devices.agent.config import AgentConfig, CodeReaderConfig, IdReaderConfig
from devices.agent.runner import BackoffFactory, DeviceRunner, DeviceSettings, Recent
from devices.codecs.code_reader import ScannedCode
from devices.codecs.id_card import IdCard
from devices.drivers.code_reader import CodeReaderDriver
from devices.drivers.id_reader import IdReaderDriver
from devices.transport.serial import SerialPort
from realtime.messages import Event

__all__ = ["CodeReaderRunner", "IdReaderRunner", "ReadRequest", "card_data"]

_SUFFIXES = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n"}
_MAX_READ_S = 120.0


class ReadRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A ``read_card`` event's data."""

    request_id: str
    timeout_s: float = 20.0


def card_data(card: IdCard) -> dict[str, Any]:
    """The ``card`` of a ``card_read`` event (the contract's fields; the photo stays here)."""
    return {
        "name": card.name,
        "sex": card.sex,
        "nation": card.nation or card.nation_code,
        "birth_date": card.birth_date.isoformat(),
        "address": card.address,
        "id_number": card.id_number,
        "authority": card.authority,
        "valid_from": card.valid_from.isoformat(),
        "valid_to": None if card.valid_to is None else card.valid_to.isoformat(),
    }


class IdReaderRunner(DeviceRunner):
    """An ID card reader device."""

    part = "id_reader"

    def __init__(
        self, agent: AgentConfig, config: IdReaderConfig, *, backoff: BackoffFactory | None = None
    ) -> None:
        super().__init__(agent, config, backoff=backoff)
        self.driver = IdReaderDriver(
            SerialPort(config.port, baudrate=config.baudrate),
            name=self.name,
            poll_seconds=config.poll_seconds,
            auto_read=config.auto_read,
            on_card=self._on_card,
        )
        self.supervise(self.driver)
        self.requests: asyncio.Queue[ReadRequest] = asyncio.Queue()
        self._handled = Recent()

    def workers(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._reads(), name=f"reads-{self.name}")]

    async def apply(self, settings: DeviceSettings) -> None:
        if settings.poll_seconds is not None:
            self.driver.poll_seconds = settings.poll_seconds
        if settings.auto_read is not None:
            self.driver.auto_read = settings.auto_read

    async def on_topic_event(self, event: Event) -> None:
        if event.topic != self.device_topic or event.name != "read_card":
            return
        request = msgspec.convert(event.data, ReadRequest)
        if request.request_id in self._handled:
            return
        self._handled.add(request.request_id)
        self.requests.put_nowait(request)

    async def _reads(self) -> None:
        while True:
            request = await self.requests.get()
            try:
                await self._read(request)
            except Exception:
                self.log.exception("card_read_crashed", request_id=request.request_id)

    async def _read(self, request: ReadRequest) -> None:
        key = f"card:{request.request_id}"
        if self.supervisor is not None and not self.supervisor.up.is_set():
            await self.emit(
                "card_read_failed", {"request_id": request.request_id, "reason": "offline"}, key
            )
            return
        result = await self.driver.read_card(min(max(0.0, request.timeout_s), _MAX_READ_S))
        data: dict[str, Any] = {"request_id": request.request_id}
        if result.card is not None:
            await self.emit("card_read", {**data, "card": card_data(result.card)}, key)
        else:
            await self.emit("card_read_failed", {**data, "reason": result.reason}, key)

    async def _on_card(self, card: IdCard) -> None:
        await self.emit("card_read", {"request_id": "", "card": card_data(card)})


class CodeReaderRunner(DeviceRunner):
    """A code reader device."""

    part = "code_reader"

    def __init__(
        self,
        agent: AgentConfig,
        config: CodeReaderConfig,
        *,
        backoff: BackoffFactory | None = None,
    ) -> None:
        super().__init__(agent, config, backoff=backoff)
        self.driver = CodeReaderDriver(
            SerialPort(config.port, baudrate=config.baudrate),
            name=self.name,
            suffix=_SUFFIXES[config.suffix],
            prefix=config.prefix.encode("latin-1", "replace"),
            encoding=config.encoding,
            on_code=self._on_code,
        )
        self.supervise(self.driver)

    async def _on_code(self, code: ScannedCode) -> None:
        await self.emit("code_scanned", {"text": code.text})
