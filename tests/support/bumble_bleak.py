"""Bleak on bumble, for tests only (TOOLCHAIN.md item 8: bleak cannot reach a radio here).

Two bumble controllers on one in-process :class:`bumble.link.LocalLink` form a small air:
a **central** device for the code under test and a **peripheral** device for a simulator.
:func:`bleak_backends` makes a bleak client backend and a bleak scanner backend that run on the
central device, so production code that takes bleak's ``backend=`` arguments does a real GATT
exchange (advertising, scanning, connection, MTU exchange, discovery, reads, writes with
response, notifications, disconnection) without D-Bus or a radio.

:func:`bumble_air` is the fixture builder: it powers the central on, yields the devices and
the backends, and takes everything down afterwards.

The backends implement bleak 3.1's :class:`bleak.backends.client.BaseBleakClient` and
:class:`bleak.backends.scanner.BaseBleakScanner` (the abstract methods, plus ``name``); the
pattern of two controllers on one link is bumble's own (``bumble/testing/test_utils.py``,
``TwoDevices``). Not supported: pairing, indications, reading from bleak's cache.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CHARACTERISTIC_PROPERTIES, CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.controller import Controller
from bumble.core import AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

_T = TypeVar("_T")

# The MTU the backend asks for, as Windows does: values up to 244 octets fit one ATT PDU.
REQUESTED_MTU = 247

_UUID_LISTS = (
    (AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, 2),
    (AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, 2),
    (AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS, 4),
    (AdvertisingData.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS, 4),
    (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, 16),
    (AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, 16),
)


def bleak_uuid(value: core.UUID) -> str:
    """A bumble UUID as bleak spells UUIDs: 128-bit, lower case."""
    return str(uuid.UUID(bytes=value.to_bytes(force_128=True)[::-1]))


def _property_names(flags: int) -> list[CharacteristicPropertyName]:
    return [name for bit, name in CHARACTERISTIC_PROPERTIES.items() if bit <= 0x80 and flags & bit]


class BumbleClient(BaseBleakClient):
    """A bleak client backend on a bumble central device (set by :func:`bleak_backends`)."""

    central: ClassVar[Device]

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Any = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        if isinstance(address_or_ble_device, BLEDevice):
            details = address_or_ble_device.details
            self._target = (
                details if isinstance(details, hci.Address) else hci.Address(self.address)
            )
            self._name = address_or_ble_device.name or self.address
        else:
            self._target = hci.Address(address_or_ble_device)
            self._name = address_or_ble_device
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._leaving = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else att.ATT_DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        timeout = float(kwargs.get("timeout", self._timeout))
        try:
            connection = await self.central.connect(self._target, timeout=timeout)
        except core.TimeoutError as exc:
            raise TimeoutError(f"no connection to {self.address} within {timeout} s") from exc
        except core.BaseBumbleError as exc:
            raise BleakError(f"connection to {self.address} failed: {exc}") from exc
        self._connection = connection
        self._leaving = False
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        peer = Peer(connection)
        self._peer = peer
        try:
            await self._gatt(peer.request_mtu(REQUESTED_MTU))
            await self._gatt(peer.discover_services())
            for service in peer.services:
                await self._gatt(service.discover_characteristics())
                for characteristic in service.characteristics:
                    await self._gatt(characteristic.discover_descriptors())
        except BaseException:
            await self.disconnect()
            raise
        self.services = self._collect(peer)

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._leaving = True
        # Already gone (the peer left first): nothing to undo.
        with suppress(core.BaseBumbleError, asyncio.CancelledError):
            await connection.disconnect()
        self._forget()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise BleakError("the bumble test backend does not pair")

    async def unpair(self) -> None:
        raise BleakError("the bumble test backend does not pair")

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return bytearray(await self._gatt(self._require().read_value(characteristic.handle)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return bytearray(await self._gatt(self._require().read_value(descriptor.handle)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._require()
        await self._gatt(peer.write_value(characteristic.handle, bytes(data), response))

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        peer = self._require()
        await self._gatt(peer.write_value(descriptor.handle, bytes(data), with_response=True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        self._require()
        await self._gatt(proxy.subscribe(lambda value: callback(bytearray(value))))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        self._require()
        await self._gatt(proxy.unsubscribe())

    def _require(self) -> Peer:
        if self._peer is None:
            raise BleakError("not connected")
        return self._peer

    async def _gatt(self, work: Awaitable[_T]) -> _T:
        """Run one GATT procedure; bumble's errors become bleak's."""
        connection = self._connection
        if connection is None:
            if asyncio.iscoroutine(work):
                work.close()  # never started: no "never awaited" warning
            raise BleakError("not connected")
        try:
            return await connection.cancel_on_disconnection(work)
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # our caller was cancelled
            # bumble cancels a procedure in flight when the link drops.
            raise BleakError("disconnected during a GATT procedure") from None
        except core.BaseBumbleError as exc:
            raise BleakError(str(exc)) from exc

    def _collect(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for proxy in peer.services:
            service = BleakGATTService(proxy, proxy.handle, bleak_uuid(proxy.uuid))
            collection.add_service(service)
            for char_proxy in proxy.characteristics:
                characteristic = BleakGATTCharacteristic(
                    char_proxy,
                    char_proxy.handle,
                    bleak_uuid(char_proxy.uuid),
                    _property_names(int(char_proxy.properties)),
                    lambda: self.mtu_size - 3,
                    service,
                )
                collection.add_characteristic(characteristic)
                for descriptor in char_proxy.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor,
                            descriptor.handle,
                            bleak_uuid(descriptor.type),
                            characteristic,
                        )
                    )
        return collection

    def _on_disconnection(self, reason: int) -> None:
        leaving = self._leaving
        self._forget()
        # bleak calls the callback only for a disconnection it did not ask for.
        if not leaving and self._disconnected_callback is not None:
            self._disconnected_callback()

    def _forget(self) -> None:
        self._connection = None
        self._peer = None
        self.services = None


class BumbleScanner(BaseBleakScanner):
    """A bleak scanner backend on a bumble central device (set by :func:`bleak_backends`)."""

    central: ClassVar[Device]

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode == "active"

    async def start(self) -> None:
        self.seen_devices = {}
        self.central.on(self.central.EVENT_ADVERTISEMENT, self._on_advertisement)
        await self.central.start_scanning(active=self._active, filter_duplicates=False)

    async def stop(self) -> None:
        self.central.remove_listener(self.central.EVENT_ADVERTISEMENT, self._on_advertisement)
        await self.central.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        data = advertisement.data
        raw_name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME, raw=True) or data.get(
            AdvertisingData.SHORTENED_LOCAL_NAME, raw=True
        )
        local_name = raw_name.decode("utf-8", "replace") if raw_name else None
        service_uuids = [
            bleak_uuid(core.UUID.from_bytes(raw[i : i + size]))
            for ad_type, size in _UUID_LISTS
            for raw in data.get_all(ad_type, raw=True)
            for i in range(0, len(raw) - size + 1, size)
        ]
        if not self.is_allowed_uuid(service_uuids):
            return
        manufacturer_data = {
            int.from_bytes(raw[:2], "little"): bytes(raw[2:])
            for raw in data.get_all(AdvertisingData.MANUFACTURER_SPECIFIC_DATA, raw=True)
            if len(raw) >= 2
        }
        advertisement_data = AdvertisementData(
            local_name=local_name,
            manufacturer_data=manufacturer_data,
            service_data={},
            service_uuids=service_uuids,
            tx_power=None,
            rssi=advertisement.rssi,
            platform_data=(advertisement,),
        )
        address = advertisement.address.to_string(with_type_qualifier=False)
        device = self.create_or_update_device(
            str(advertisement.address),
            address,
            local_name,
            advertisement.address,
            advertisement_data,
        )
        self.call_detection_callbacks(device, advertisement_data)


def bleak_backends(central: Device) -> tuple[type[BumbleClient], type[BumbleScanner]]:
    """A client backend and a scanner backend bound to ``central`` (a powered-on device)."""
    client = type("BumbleClientOnLink", (BumbleClient,), {"central": central})
    scanner = type("BumbleScannerOnLink", (BumbleScanner,), {"central": central})
    return client, scanner


@dataclass(frozen=True)
class BumbleAir:
    """Two devices on one in-process link, and bleak backends on the central."""

    link: LocalLink
    central: Device
    peripheral: Device
    client_backend: type[BumbleClient]
    scanner_backend: type[BumbleScanner]


@asynccontextmanager
async def bumble_air(
    *,
    peripheral_name: str = "HallEval-03",
    central_address: str = "F0:F0:F0:F0:F0:01",
    peripheral_address: str = "F1:F1:F1:F1:F1:03",
) -> AsyncIterator[BumbleAir]:
    """Build two bumble controllers on one ``LocalLink``: a powered-on central (the hall PC)
    and a peripheral device left off, for a simulator to set up and power on.

    On exit every connection is dropped, advertising and scanning stop, both devices power off.
    """
    link = LocalLink()  # type: ignore[no-untyped-call]
    central_controller = Controller("hall-pc", link=link)
    peripheral_controller = Controller("pad", link=link)
    central = Device(
        name="hall-pc",
        address=hci.Address(central_address),
        host=Host(central_controller, AsyncPipeSink(central_controller)),
    )
    peripheral = Device(
        name=peripheral_name,
        address=hci.Address(peripheral_address),
        host=Host(peripheral_controller, AsyncPipeSink(peripheral_controller)),
    )
    await central.power_on()
    client_backend, scanner_backend = bleak_backends(central)
    try:
        yield BumbleAir(link, central, peripheral, client_backend, scanner_backend)
    finally:
        for device in (peripheral, central):
            if device.powered_on:
                with suppress(core.BaseBumbleError):
                    await device.stop_advertising()
                if device.is_scanning:
                    await device.stop_scanning()
                for connection in list(device.connections.values()):
                    with suppress(core.BaseBumbleError, asyncio.CancelledError):
                        await connection.disconnect()
                await device.power_off()
