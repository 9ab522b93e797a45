"""A Bluetooth LE evaluation pad under the agent's supervisor: the existing
:class:`~devices.drivers.ble_evaluator.BleEvaluator` seen through the
:class:`~devices.drivers.evaluator.Evaluator` interface.

The BLE driver connects on demand and watches the link itself (bleak's disconnect callback);
this adapter turns that into the supervisor's connect / watch / close: :meth:`BlePad.watch`
returns when the driver reports the pad offline, and the supervisor reconnects with backoff.
"""

from __future__ import annotations

import asyncio
from typing import Any

from devices.codecs.evaluator_gatt import TIMEOUT_MAX_MS, TIMEOUT_UNIT_MS, Prompt
from devices.drivers.ble_evaluator import BleEvaluator, GradeResult
from devices.drivers.evaluator import RatingPrompt, fit_text
from devices.drivers.link import HardwareInfo
from devices.errors import DeviceOffline

__all__ = ["BlePad"]

# Byte limits of the GATT prompt's strings (docs/devices/evaluator-ble.md, "prompt").
_LIMITS = {"window": 16, "staff_name": 48, "staff_no": 32, "ticket_no": 32}


def _fit(text: str, limit: int) -> str:
    return fit_text(text, limit, "utf-8", "replace")


class BlePad:
    """One BLE pad by address.

    Args:
        address: the pad's Bluetooth address (or what :class:`BleEvaluator` accepts).
        name: how logs name it.
        grace: seconds past a prompt's timeout before it is unanswered.
        options: passed to :class:`BleEvaluator` (timeouts; ``backend`` and
            ``scanner_backend`` in tests).
    """

    def __init__(
        self, address: Any, *, name: str = "evaluator", grace: float = 2.0, **options: Any
    ) -> None:
        self._name = name
        self._offline = asyncio.Event()
        self._options = options
        self.driver = BleEvaluator(
            address, name=name, grace=grace, on_presence=self._presence, **options
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def grace(self) -> float:
        return self.driver.grace

    @grace.setter
    def grace(self, value: float) -> None:
        self.driver.grace = value

    def _presence(self, online: bool) -> None:
        if online:
            self._offline.clear()
        else:
            self._offline.set()

    async def connect(self) -> HardwareInfo:
        """Connect and read the pad's info.

        Raises:
            DeviceOffline, DeviceTimeout, DeviceRefused, DriverError: as the BLE driver.
        """
        self._offline.clear()
        await self.driver.connect()
        info = await self.driver.info()
        return HardwareInfo(model=info.model, firmware=info.firmware, parts=["evaluator"])

    async def watch(self) -> None:
        """Wait until the pad drops the link.

        Raises:
            DeviceOffline: always, once it did.
        """
        await self._offline.wait()
        raise DeviceOffline(f"{self._name}: link lost")

    async def close(self) -> None:
        """Nothing to release between attempts: the BLE driver reconnects on demand."""

    async def shutdown(self) -> None:
        """Disconnect for good (the agent stops)."""
        await self.driver.close()

    async def prompt(self, prompt: RatingPrompt) -> GradeResult:
        """Show ``prompt`` and wait for the grade (:meth:`BleEvaluator.prompt`)."""
        timeout_ms = min(max(1, prompt.timeout_s) * 1000, TIMEOUT_MAX_MS)
        timeout_ms -= timeout_ms % TIMEOUT_UNIT_MS
        return await self.driver.prompt(
            Prompt(
                request_id=prompt.request_id,
                window=_fit(str(prompt.window_number), _LIMITS["window"]),
                staff_name=_fit(prompt.staff_name, _LIMITS["staff_name"]),
                staff_no=_fit(prompt.staff_no, _LIMITS["staff_no"]),
                ticket_no=_fit(prompt.ticket_number, _LIMITS["ticket_no"]),
                timeout_ms=timeout_ms,
            )
        )
