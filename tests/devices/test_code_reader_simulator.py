"""Code reader simulator (devices/simulators/code_reader.py) over a real serial link."""

from __future__ import annotations

import asyncio

import serialx

from devices.codecs.code_reader import CodeReaderDecoder, Garbage, ScannedCode
from devices.simulators.code_reader import open_code_reader, record
from tests.support.ptys import pty_pair


def test_record_is_prefix_code_and_suffix() -> None:
    """A record is the prefix, the encoded code and the suffix (docs example 6)."""
    assert record("AB12", prefix=b"\x02") == bytes.fromhex("02 41 42 31 32 0D")


async def test_code_reader_simulator_scans_over_a_socat_pty_pair() -> None:
    """A GB18030 reader's scans arrive as codes at the host's decoder."""
    async with (
        pty_pair() as (reader_end, host_end),
        serialx.async_serial_for_url(host_end, baudrate=9600) as host,
        open_code_reader(reader_end, encoding="gb18030") as reader,
    ):
        await reader.scan("123456")
        await reader.scan("张三")
        decoder, items = CodeReaderDecoder(), []
        async with asyncio.timeout(5):
            while len(items) < 2:
                items += decoder.feed(await host.read(256))
    assert items == [ScannedCode("123456"), ScannedCode("张三")]


async def test_line_noise_from_the_reader_is_garbage_and_the_next_scan_arrives() -> None:
    """Raw noise ending in CR is one Garbage item; the scan after it decodes."""
    async with (
        pty_pair() as (reader_end, host_end),
        serialx.async_serial_for_url(host_end, baudrate=9600) as host,
        open_code_reader(reader_end) as reader,
    ):
        await reader.send_raw(b"\xff\xfe\r")
        await reader.scan("http://hall.example/ticket/?t=q3ZtR8bXk2LmN0pA7sWcYg")
        decoder, items = CodeReaderDecoder(), []
        async with asyncio.timeout(5):
            while len(items) < 2:
                items += decoder.feed(await host.read(256))
    assert items == [
        Garbage(3, "bad_encoding"),
        ScannedCode("http://hall.example/ticket/?t=q3ZtR8bXk2LmN0pA7sWcYg"),
    ]
