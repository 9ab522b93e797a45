"""ID card reader simulator (devices/simulators/id_reader.py).

The model's replies are checked against the published reply frames (docs/devices/id-reader.md,
worked examples 6-12, sources in brackets), so the simulator is held to the same vectors as
the codec rather than to the codec itself.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import serialx

from devices.codecs.id_card import IdCard
from devices.codecs.sam import (
    SamDecoder,
    SamReply,
    encode_command,
    encode_find_card,
    encode_read_base_info,
    encode_reset,
    encode_sam_status,
    encode_select_card,
    parse_base_info,
    parse_reply,
)
from devices.simulators.id_reader import IdReaderModel, serve
from tests.devices.samples import CARD
from tests.support.ptys import pty_pair

# Published replies (docs/devices/id-reader.md "Worked examples").
STATUS_OK = bytes.fromhex("AA AA AA 96 69 00 04 00 00 90 94")  # [7]
SELF_TEST_FAILED = bytes.fromhex("AA AA AA 96 69 00 04 00 00 60 64")  # [7]
FOUND = bytes.fromhex("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97")  # [3][7][8]
NOT_FOUND = bytes.fromhex("AA AA AA 96 69 00 04 00 00 80 84")  # [7][8]
SELECTED = bytes.fromhex("AA AA AA 96 69 00 0C 00 00 90 00 00 00 00 00 00 00 00 9C")  # [3][7]
NOT_SELECTED = bytes.fromhex("AA AA AA 96 69 00 04 00 00 81 85")  # [7]
READ_FAILED = bytes.fromhex("AA AA AA 96 69 00 04 00 00 41 45")  # [7]
READ_HEADER = bytes.fromhex("AA AA AA 96 69 05 08 00 00 90 01 00 04 00")  # [2][3]


def test_find_without_a_card_answers_find_failed() -> None:
    """No card on the reader: find answers the published 0x80 reply."""
    assert IdReaderModel().feed(encode_find_card()) == NOT_FOUND


def test_find_select_read_with_a_card_answers_the_published_frames() -> None:
    """With a card: 9F, then the select reply, then a 1295-byte read with the GA 467 header."""
    model = IdReaderModel()
    model.insert(CARD)
    assert model.feed(encode_find_card()) == FOUND
    assert model.feed(encode_select_card()) == SELECTED
    read = model.feed(encode_read_base_info())
    assert len(read) == 1295
    assert read.startswith(READ_HEADER)
    assert parse_base_info(parse_reply(read).data) == CARD


def test_select_and_read_out_of_order_fail_as_the_module_does() -> None:
    """Select before find answers 0x81; read before select answers 0x41."""
    model = IdReaderModel()
    model.insert(CARD)
    assert model.feed(encode_select_card()) == NOT_SELECTED
    assert model.feed(encode_read_base_info()) == READ_FAILED
    assert model.feed(encode_find_card()) == FOUND
    assert model.feed(encode_read_base_info()) == READ_FAILED


def test_removing_the_card_makes_find_and_read_fail() -> None:
    """After remove(), find answers 0x80 and a read after an earlier select answers 0x41."""
    model = IdReaderModel()
    model.insert(CARD)
    model.feed(encode_find_card() + encode_select_card())
    model.remove()
    assert model.feed(encode_read_base_info()) == READ_FAILED
    assert model.feed(encode_find_card()) == NOT_FOUND


def test_reset_forgets_the_selection() -> None:
    """Reset answers 0x90 and the card must be found and selected again before a read."""
    model = IdReaderModel()
    model.insert(CARD)
    model.feed(encode_find_card() + encode_select_card())
    assert model.feed(encode_reset()) == STATUS_OK
    assert model.feed(encode_read_base_info()) == READ_FAILED


def test_status_answers_ok_and_a_fault_answers_self_test_failed_to_everything() -> None:
    """A healthy module answers status with 0x90; a faulty one 0x60 to every command."""
    model = IdReaderModel()
    model.insert(CARD)
    assert model.feed(encode_sam_status()) == STATUS_OK
    model.set_fault(True)
    for command in (encode_sam_status(), encode_find_card(), encode_reset()):
        assert model.feed(command) == SELF_TEST_FAILED
    model.set_fault(False)
    assert model.feed(encode_find_card()) == FOUND


def test_a_bad_check_byte_and_an_unknown_command_get_their_statuses() -> None:
    """A command with a wrong check byte gets 0x10; a command the model lacks gets 0x21."""
    model = IdReaderModel()
    bad = bytearray(encode_find_card())
    bad[-1] ^= 0xFF
    assert parse_reply(model.feed(bytes(bad))) == SamReply(0, 0, 0x10)
    assert parse_reply(model.feed(encode_command(0x12, 0xFF))) == SamReply(0, 0, 0x21)


def test_a_command_split_across_feeds_is_answered_once_complete() -> None:
    """Host bytes arriving in pieces are answered when the command frame is complete."""
    model = IdReaderModel()
    command = encode_find_card()
    assert model.feed(command[:4]) == b""
    assert model.feed(command[4:]) == NOT_FOUND
    assert model.commands == [(0x20, 0x01)]


def test_inserting_a_card_whose_fields_do_not_fit_is_refused() -> None:
    """A name longer than 15 characters cannot be on a card."""
    fields = {name: getattr(CARD, name) for name in CARD.__struct_fields__}
    with pytest.raises(ValueError):
        IdReaderModel().insert(IdCard(**{**fields, "name": "测" * 16}))


async def _replies(port: serialx.AsyncSerial, decoder: SamDecoder, count: int) -> list[SamReply]:
    replies: list[SamReply] = []
    async with asyncio.timeout(5):
        while len(replies) < count:
            for item in decoder.feed(await port.read(4096)):
                assert isinstance(item, SamReply), item
                replies.append(item)
    return replies


async def test_find_select_read_over_a_socat_pty_pair_gives_the_card() -> None:
    """Over a real serial link: no card → 0x80; card inserted → find, select, read → the card."""
    model = IdReaderModel()
    async with pty_pair() as (reader_end, host_end):
        ready = asyncio.Event()
        server = asyncio.create_task(serve(reader_end, model, ready=ready))
        try:
            await ready.wait()
            async with serialx.async_serial_for_url(host_end, baudrate=115200) as host:
                decoder = SamDecoder()
                await host.write(encode_find_card())
                assert [r.status for r in await _replies(host, decoder, 1)] == ["find_failed"]

                model.insert(CARD)
                await host.write(encode_find_card())
                await host.write(encode_select_card())
                await host.write(encode_read_base_info())
                found, selected, read = await _replies(host, decoder, 3)
        finally:
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server
    assert (found.status, selected.status, read.status) == ("card_found", "ok", "ok")
    card = parse_base_info(read.data)
    assert card == CARD
    assert (card.name, card.address) == ("王测试", "北京市朝阳区测试街道示例路1号")
