"""The agent's driver for a second-generation ID card reader (SAM module, D2, O3) on a serial
port.

Protocol: docs/devices/id-reader.md (frames in :mod:`devices.codecs.sam`). One command is
outstanding at a time; each reply must come within ``reply_timeout``. A card is read by find
→ select → read base info (GA 467 §7), repeated until ``timeout_s`` passes: the citizen may put
the card down after the kiosk asked. Health: the SAM status command every ``poll_seconds``;
a module that fails its self-test (``60``) or is not authorised (``66``) is offline.

ID numbers and names never reach a log line: only :meth:`IdCard.masked` is logged (O3).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeAlias

import msgspec
import structlog

from devices.codecs.sam import (
    IdCard,
    SamDecoder,
    SamReply,
    encode_find_card,
    encode_read_base_info,
    encode_reset,
    encode_sam_status,
    encode_select_card,
    parse_base_info,
)
from devices.codecs.wire import Garbage
from devices.drivers.link import HardwareInfo, PortDriver, exchange
from devices.errors import CodecError, DeviceOffline, DeviceRefused, DeviceTimeout
from devices.transport.serial import ByteTransport

__all__ = ["CardRead", "IdReaderDriver", "ReadFailure"]

log = structlog.get_logger("devices.drivers.id_reader")

ReadFailure: TypeAlias = Literal["no_card", "timeout", "read_failed", "offline"]
"""Why no card was read (the contract's ``card_read_failed`` reasons): no card was put on the
reader in time, the reader did not answer, the card could not be read, or the reader is
unreachable."""

_CARD_FOUND = 0x9F
_FRAME_ERRORS = frozenset({"checksum_error", "length_error"})
_DEAD = frozenset({"self_test_failed", "not_authorised"})


class CardRead(msgspec.Struct, frozen=True, repr_omit_defaults=True):
    """The end of a read: the ``card``, or the ``reason`` there is none."""

    card: IdCard | None = None
    reason: ReadFailure | None = None


class IdReaderDriver(PortDriver):
    """One SAM ID card reader on ``transport``.

    Args:
        transport: the reader's port (115200 baud by default, docs/devices/id-reader.md).
        name: how logs name it.
        poll_seconds: health polling interval; also how often a reader in ``auto_read``
            mode looks for a card.
        reply_timeout: seconds for one reply (the 1295-byte read reply takes 0.11 s at
            115200 baud, several at 9600: raise it for slow lines).
        find_interval: seconds between two "find card" attempts while a read waits.
        auto_read: read every card put on the reader, unasked (a kiosk's reader), and hand
            it to ``on_card``; the same card is read again only after it was taken away.
        on_card: awaited with each card read in ``auto_read`` mode.
    """

    def __init__(
        self,
        transport: ByteTransport,
        *,
        name: str = "id_reader",
        poll_seconds: float = 2.0,
        reply_timeout: float = 1.0,
        find_interval: float = 0.3,
        auto_read: bool = False,
        on_card: Callable[[IdCard], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(transport, name)
        self.poll_seconds = poll_seconds
        self.reply_timeout = reply_timeout
        self.find_interval = find_interval
        self.auto_read = auto_read
        self.on_card = on_card
        self._decoder = SamDecoder()
        self._lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._waiter: asyncio.Future[SamReply] | None = None
        self._card_present = False

    async def connect(self) -> HardwareInfo:
        """Open the port, reset the SAM module, check its status.

        Raises:
            DeviceOffline: the port cannot be opened, or the module failed its self-test.
            DeviceTimeout: the reader did not answer.
        """
        await self._connect(self._reset_module)
        self._card_present = False
        return HardwareInfo(model="SAM (GA 467)", firmware="", parts=["id_reader"])

    async def watch(self) -> None:
        """Check the module every ``poll_seconds`` (and read cards in ``auto_read`` mode)
        until the link is lost.

        Raises:
            DeviceOffline: the port hung up, the module stopped answering twice in a row, or
                it reports a self-test failure.
        """
        await self._poll_until_lost(
            lambda: self._auto_read() if self.auto_read else self._check_status(),
            lambda: self.find_interval if self.auto_read else self.poll_seconds,
            max_missed=2,
            silent="no reply",
        )

    def _fresh_link(self) -> None:
        self._decoder.clear()

    async def _reset_module(self) -> None:
        await self._command(encode_reset(), "reset")
        await self._check_status()

    async def read_card(self, timeout_s: float) -> CardRead:
        """Read the card put on the reader within ``timeout_s`` seconds.

        Never raises for device trouble: a failure is a :class:`CardRead` with a reason.
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        failure: ReadFailure = "no_card"
        async with self._read_lock:
            while True:
                try:
                    card = await self._read_once()
                except DeviceOffline:
                    return CardRead(reason="offline")
                except DeviceTimeout:
                    return CardRead(reason="timeout")
                except DeviceRefused as exc:
                    log.info("id_reader_read_failed", reader=self._name, status=str(exc))
                    failure = "read_failed"
                    card = None
                if card is not None:
                    log.info("id_reader_card_read", reader=self._name, card=card.masked())
                    return CardRead(card=card)
                left = deadline - time.monotonic()
                if left <= 0:
                    return CardRead(reason=failure)
                await asyncio.sleep(min(self.find_interval, left))

    async def _read_once(self) -> IdCard | None:
        """One find → select → read. None when no card is on the reader.

        Raises:
            DeviceRefused: a card is there but could not be selected or read.
            DeviceOffline, DeviceTimeout: as :meth:`_command`.
        """
        found = await self._command(encode_find_card(), "find card", check=False)
        if found.sw3 != _CARD_FOUND:
            return None
        return await self._read_selected()

    async def _read_selected(self) -> IdCard:
        """Select the card found and read its base information.

        Raises:
            DeviceRefused: the card could not be selected or read, or its text is unreadable.
        """
        await self._command(encode_select_card(), "select card")
        reply = await self._command(encode_read_base_info(), "read base info")
        try:
            return parse_base_info(reply.data)
        except CodecError as exc:
            raise DeviceRefused(f"{self._name}: base info unreadable: {exc}") from exc

    async def _auto_read(self) -> None:
        async with self._read_lock:
            found = await self._command(encode_find_card(), "find card", check=False)
            if found.sw3 != _CARD_FOUND:
                self._card_present = False
                return
            if self._card_present:
                return  # the same card still lies there: read once per placing
            try:
                card = await self._read_selected()
            except DeviceRefused:
                return  # a card half in the field; the next look tries again
            self._card_present = True
        log.info("id_reader_card_read", reader=self._name, card=card.masked(), unasked=True)
        if self.on_card is not None:
            try:
                await self.on_card(card)
            except Exception:  # the reader goes on whatever the listener does
                log.exception("id_reader_listener_failed", reader=self._name)

    async def _check_status(self) -> None:
        reply = await self._command(encode_sam_status(), "SAM status", check=False)
        if reply.status in _DEAD:
            raise DeviceOffline(f"{self._name}: SAM module {reply.status}")

    async def _command(self, frame: bytes, what: str, *, check: bool = True) -> SamReply:
        """Send one command and wait for its reply; a reply reporting a garbled frame is
        answered by sending the command once more (docs/devices/id-reader.md, SW3 10/11).

        Raises:
            DeviceOffline: the link is down, or the module is dead (60, 66).
            DeviceTimeout: no reply within ``reply_timeout``.
            DeviceRefused: with ``check``, a reply whose status is not a success.
        """
        async with self._lock:
            reply = await self._exchange(frame, what)
            if reply.status in _FRAME_ERRORS:
                reply = await self._exchange(frame, what)
        if reply.status in _DEAD:
            raise DeviceOffline(f"{self._name}: SAM module {reply.status}")
        if check and not reply.ok:
            raise DeviceRefused(f"{what}: {reply.status}")
        return reply

    async def _exchange(self, frame: bytes, what: str) -> SamReply:
        waiter: asyncio.Future[SamReply] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            return await exchange(
                self._pump,
                frame,
                waiter,
                self.reply_timeout,
                f"{self._name}: {what}",
                on_timeout=self._drop_partial,
            )
        finally:
            self._waiter = None

    def _drop_partial(self, again: bool) -> None:
        self._decoder.clear()  # a partial reply must not prefix the next one

    async def _on_data(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, Garbage):
                self.garbage += item.skipped
                log.debug("id_reader_garbage", reader=self._name, skipped=item.skipped)
                continue
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(item)
            else:
                log.debug("id_reader_unexpected_reply", reader=self._name, status=item.status)
