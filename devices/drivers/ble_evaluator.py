"""The agent's driver for a Bluetooth LE evaluation pad (评价器, D4/O9).

Protocol: docs/devices/evaluator-ble.md (payloads in :mod:`devices.codecs.evaluator_gatt`).
Transport: bleak's :class:`~bleak.BleakClient`, connected through
:func:`bleak_retry_connector.establish_connection` (retries with backoff on the transient
failures Bluetooth stacks are known for). Nothing here is platform specific: hall PCs run
Windows, where bleak uses WinRT.

One prompt at a time per pad: :meth:`BleEvaluator.prompt` writes it (with response), then waits
for the notice carrying the same request id. The wait is the pad's own countdown plus a grace
period, so the pad's "timed out" notice normally ends a prompt nobody answers; the grace only
covers a pad that stays silent. A prompt that was written always ends in a
:class:`GradeResult`; one that could not be written raises :class:`DeviceOffline`.

The link is made on demand (first call, or the first call after a disconnection) and watched
by bleak's disconnect callback, which marks the pad offline at once. ``online``/``offline`` are
logged when they change, not on every failed attempt.

Tests run the same code on bumble (tests/support/bumble_bleak.py) by passing bleak's own
``backend=`` arguments; there is no test-only path here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Literal, TypeVar

import msgspec
import structlog
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import BaseBleakScanner
from bleak.exc import BleakError, BleakGATTProtocolError
from bleak_retry_connector import establish_connection

from devices.codecs.evaluator_gatt import (
    GRADE_UUID,
    INFO_UUID,
    PROMPT_UUID,
    SERVICE_UUID,
    DeviceInfo,
    Notice,
    Prompt,
    TimeoutNotice,
    encode_prompt,
    parse_info,
    parse_notice,
)
from devices.errors import CodecError, DeviceOffline, DeviceRefused, DeviceTimeout, DriverError
from hub.domain.rating import Grade, Reason

__all__ = ["BleEvaluator", "DeviceLookup", "GradeResult", "UnratedCause"]

log = structlog.get_logger("devices.drivers.ble_evaluator")

_T = TypeVar("_T")

DeviceLookup = Callable[[], Awaitable[BLEDevice | None]]
"""Finds the pad right now (a fresh :class:`BLEDevice`), or None when it is not around."""

UnratedCause = Literal["timed_out", "no_answer", "disconnected"]
"""Why a prompt ended unrated: the pad's countdown ran out (``timed_out``), no notice came by
the driver's deadline (``no_answer``), or the link dropped while waiting (``disconnected``)."""

# Bluetooth stack failures as bleak and the OS report them; each means "the link is not usable".
_LINK_ERRORS = (BleakError, OSError, EOFError)


class GradeResult(msgspec.Struct, frozen=True):
    """How a prompt ended: a grade (``grade`` set) or unrated (``unrated`` says why)."""

    request_id: int
    grade: Grade | None = None
    reasons: tuple[Reason, ...] = ()
    unrated: UnratedCause | None = None

    @property
    def rated(self) -> bool:
        """Whether the citizen gave a grade."""
        return self.grade is not None


class BleEvaluator:
    """One Bluetooth LE evaluation pad, seen from the agent.

    Args:
        device: the pad as a :class:`BLEDevice`, as a Bluetooth address to scan for
            (``"F1:F1:F1:F1:F1:03"``; bleak's device UUID on macOS), or a :data:`DeviceLookup`
            (called before each connect).
        name: how logs name the pad.
        grace: seconds the driver waits past a prompt's own timeout before it gives up on a
            notice (radio and pad latency). Configurable from the hub (D6).
        lookup_timeout: seconds a scan for the address may take.
        connect_timeout: seconds one connect (lookup, retries, discovery, notifications on)
            may take in all.
        op_timeout: seconds one GATT read or write may take.
        connect_attempts: attempts ``establish_connection`` makes per connect.
        backend, scanner_backend: bleak backends to use instead of the platform's.
        on_presence: called with True/False when the pad goes online/offline.
    """

    def __init__(
        self,
        device: BLEDevice | str | DeviceLookup,
        *,
        name: str = "evaluator",
        grace: float = 2.0,
        lookup_timeout: float = 10.0,
        connect_timeout: float = 60.0,
        op_timeout: float = 10.0,
        connect_attempts: int = 3,
        backend: type[BaseBleakClient] | None = None,
        scanner_backend: type[BaseBleakScanner] | None = None,
        on_presence: Callable[[bool], None] | None = None,
    ) -> None:
        self._device = device
        self._name = name
        self._grace = grace
        self._lookup_timeout = lookup_timeout
        self._connect_timeout = connect_timeout
        self._op_timeout = op_timeout
        self._connect_attempts = connect_attempts
        self._backend = backend
        self._scanner_backend = scanner_backend
        self._on_presence = on_presence
        self._client: BleakClient | None = None
        self._online = False
        self._closed = False
        self._connect_lock = asyncio.Lock()
        self._prompt_lock = asyncio.Lock()
        self._pending: tuple[int, asyncio.Future[Notice | None]] | None = None
        self.bad_notices = 0
        """Notifications that did not parse (shown as the pad's error count)."""

    @property
    def online(self) -> bool:
        """Whether the pad is connected with notifications on."""
        return self._online

    @property
    def grace(self) -> float:
        """Seconds waited past a prompt's own timeout; may be changed live (D6)."""
        return self._grace

    @grace.setter
    def grace(self, value: float) -> None:
        self._grace = value

    async def connect(self) -> None:
        """Connect now if not connected: find the pad, connect with retries, discover the
        service, turn grade notifications on.

        Raises:
            DeviceOffline: the pad was not found, every attempt failed, or the driver is closed.
            DriverError: the device has no evaluator service (not a pad).
        """
        await self._connected()

    async def info(self) -> DeviceInfo:
        """Read the pad's info: protocol version, model, firmware (D6 device page).

        Raises:
            DeviceOffline: not reachable, or the link failed during the read.
            DeviceTimeout: the read took longer than ``op_timeout`` (the link is then dropped).
            DeviceRefused: the pad answered the read with an ATT error.
            DriverError: the value is not a valid info value.
        """
        client = await self._connected()
        value = await self._gatt(client, "info", client.read_gatt_char(INFO_UUID))
        try:
            return parse_info(bytes(value))
        except CodecError as exc:
            raise DriverError(f"{self._name}: bad info value {bytes(value).hex()}: {exc}") from exc

    async def prompt(self, prompt: Prompt) -> GradeResult:
        """Show ``prompt`` on the pad and wait for the citizen's grade.

        Waits ``prompt.timeout_ms`` plus ``grace``; prompts to one pad are sent one at a time.

        Returns:
            The grade, or unrated with the cause (``timed_out``, ``no_answer``,
            ``disconnected``) once the prompt was written.

        Raises:
            EncodeError: the prompt cannot be encoded (a string too long, a bad timeout).
            DeviceOffline: the pad is not reachable; the prompt was not shown.
            DeviceRefused: the pad refused the prompt (ATT error ``0x80``).
            DeviceTimeout: the write was not answered within ``op_timeout``.
        """
        value = encode_prompt(prompt)
        async with self._prompt_lock:
            client = await self._connected()
            # Registered before the write: a quick pad may notify before the write response.
            waiter: asyncio.Future[Notice | None] = asyncio.get_running_loop().create_future()
            self._pending = (prompt.request_id, waiter)
            try:
                await self._gatt(
                    client, "prompt", client.write_gatt_char(PROMPT_UUID, value, response=True)
                )
                try:
                    async with asyncio.timeout(prompt.timeout_ms / 1000 + self._grace):
                        notice = await waiter
                except TimeoutError:
                    log.info(
                        "ble_evaluator_no_answer", pad=self._name, request_id=prompt.request_id
                    )
                    return GradeResult(prompt.request_id, unrated="no_answer")
            finally:
                self._pending = None
        if notice is None:
            return GradeResult(prompt.request_id, unrated="disconnected")
        if isinstance(notice, TimeoutNotice):
            return GradeResult(prompt.request_id, unrated="timed_out")
        return GradeResult(prompt.request_id, grade=notice.grade, reasons=notice.reasons)

    async def close(self) -> None:
        """Disconnect and stay disconnected: later calls raise :class:`DeviceOffline`; a prompt
        still waiting ends unrated (``disconnected``)."""
        self._closed = True
        self._release_waiter()
        async with self._connect_lock:
            client, self._client = self._client, None
            self._set_online(False, "closed")
            if client is not None:
                # Shielded: a cancelled close must still release the link.
                await asyncio.shield(self._disconnect(client))

    # --- connection -------------------------------------------------------------------------

    async def _connected(self) -> BleakClient:
        async with self._connect_lock:
            if self._closed:
                raise DeviceOffline(f"{self._name}: driver closed")
            client = self._client
            if client is not None and client.is_connected:
                return client
            try:
                async with asyncio.timeout(self._connect_timeout):
                    client = await self._open()
            except TimeoutError as exc:
                self._set_online(False, "connect timed out")
                raise DeviceOffline(f"{self._name}: no connection in time") from exc
            except (DeviceOffline, DriverError) as exc:
                self._set_online(False, str(exc))
                raise
            except _LINK_ERRORS as exc:
                self._set_online(False, str(exc) or type(exc).__name__)
                raise DeviceOffline(f"{self._name}: cannot connect: {exc}") from exc
            if not client.is_connected:
                # Lost between discovery and now; its disconnect callback was ignored.
                self._set_online(False, "link lost while connecting")
                raise DeviceOffline(f"{self._name}: link lost while connecting")
            self._client = client
            self._set_online(True, "connected")
            return client

    async def _open(self) -> BleakClient:
        device = await self._lookup()
        if device is None:
            raise DeviceOffline(f"{self._name}: not found")
        client = await establish_connection(
            BleakClient,
            device,
            self._name,
            disconnected_callback=self._on_disconnected,
            max_attempts=self._connect_attempts,
            backend=self._backend,
        )
        try:
            if client.services.get_characteristic(GRADE_UUID) is None:
                raise DriverError(f"{self._name}: no evaluator service {SERVICE_UUID}")
            await client.start_notify(GRADE_UUID, self._on_notice)
        except BaseException:
            await asyncio.shield(self._disconnect(client))
            raise
        return client

    async def _lookup(self) -> BLEDevice | None:
        target = self._device
        if isinstance(target, BLEDevice):
            return target
        if callable(target):
            return await target()
        address = target.lower()
        # Filtered on the advertised service: macOS 12.0-12.2 scan only with a filter.
        async with BleakScanner(
            service_uuids=[SERVICE_UUID], backend=self._scanner_backend
        ) as scanner:
            with suppress(TimeoutError):
                async with asyncio.timeout(self._lookup_timeout):
                    async for found, _ in scanner.advertisement_data():
                        if found.address.lower() == address:
                            return found
        return None

    def _on_disconnected(self, client: BleakClient) -> None:
        if client is not self._client:
            return  # a client we dropped or replaced
        self._client = None
        self._set_online(False, "link lost")
        self._release_waiter()

    def _release_waiter(self) -> None:
        """End a waiting prompt as unrated, disconnected (None stands for "no notice")."""
        if self._pending is not None and not self._pending[1].done():
            self._pending[1].set_result(None)

    def _on_notice(self, _: BleakGATTCharacteristic, data: bytearray) -> None:
        try:
            notice = parse_notice(bytes(data))
        except CodecError as exc:
            self.bad_notices += 1
            log.warning(
                "ble_evaluator_bad_notice", pad=self._name, value=data.hex(), error=str(exc)
            )
            return
        pending = self._pending
        if pending is None or pending[0] != notice.request_id or pending[1].done():
            # An answer after the deadline, or to a prompt of an earlier connection.
            log.info("ble_evaluator_stale_notice", pad=self._name, request_id=notice.request_id)
            return
        pending[1].set_result(notice)

    async def _gatt(self, client: BleakClient, what: str, operation: Awaitable[_T]) -> _T:
        """One GATT read or write, bounded by ``op_timeout``; a failed link is dropped."""
        try:
            async with asyncio.timeout(self._op_timeout):
                return await operation
        except BleakGATTProtocolError as exc:
            raise DeviceRefused(f"{self._name}: {what} refused: {exc}") from exc
        except TimeoutError as exc:
            await self._drop(client, f"{what} timed out")
            raise DeviceTimeout(f"{self._name}: {what} not answered in time") from exc
        except _LINK_ERRORS as exc:
            await self._drop(client, f"{what} failed: {exc}")
            raise DeviceOffline(f"{self._name}: {what} failed: {exc}") from exc

    async def _drop(self, client: BleakClient, reason: str) -> None:
        if self._client is client:
            self._client = None
            self._set_online(False, reason)
        await asyncio.shield(self._disconnect(client))

    async def _disconnect(self, client: BleakClient) -> None:
        # Already gone, or the stack is in trouble: either way there is nothing left to release.
        with suppress(*_LINK_ERRORS, TimeoutError):
            async with asyncio.timeout(self._op_timeout):
                await client.disconnect()

    def _set_online(self, online: bool, reason: str) -> None:
        if online == self._online:
            return
        self._online = online
        log.info(
            "ble_evaluator_online" if online else "ble_evaluator_offline",
            pad=self._name,
            reason=reason,
        )
        if self._on_presence is not None:
            self._on_presence(online)
