"""What the codec tests share: hypothesis settings, hex vectors, and the properties every framed
codec (a frame type, ``encode_frame``, ``parse_frame`` and a stream decoder) must have.

A test module takes the properties as its own tests::

    (
        test_any_frame_survives_encode_then_parse,
        ...
    ) = framed_codec_properties(frames, encode_frame, parse_frame, EvaluatorDecoder)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.errors import CodecError

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None)

F = TypeVar("F")


def h(text: str) -> bytes:
    """Bytes from hex as a document writes them (``"02 17 01"``)."""
    return bytes.fromhex(text)


class StreamDecoder(Protocol):
    def feed(self, data: bytes) -> Sequence[Any]: ...

    def flush(self) -> Sequence[Any]: ...


def framed_codec_properties(
    frames: st.SearchStrategy[F],
    encode: Callable[[F], bytes],
    parse: Callable[[bytes], F],
    new_decoder: Callable[[], StreamDecoder],
) -> tuple[Callable[..., None], ...]:
    """The five properties of a framed codec, as test functions (in this order): round trip,
    random bytes, truncated or bit-flipped frames, random chunks to the decoder, and
    resynchronisation after garbage."""

    @FUZZ
    @given(frame=frames)
    def test_any_frame_survives_encode_then_parse(frame: F) -> None:
        """parse_frame(encode_frame(f)) == f for every encodable frame."""
        assert parse(encode(frame)) == frame

    @FUZZ
    @given(data=st.binary(max_size=300))
    def test_random_bytes_make_parse_raise_only_codec_errors(data: bytes) -> None:
        """parse_frame on arbitrary bytes returns a frame or raises a CodecError, nothing
        else."""
        with contextlib.suppress(CodecError):
            parse(data)

    @FUZZ
    @given(frame=frames, data=st.data())
    def test_truncated_or_bit_flipped_frames_raise_codec_errors(
        frame: F, data: st.DataObject
    ) -> None:
        """A valid frame cut short, or with one bit flipped, is refused with a CodecError."""
        raw = encode(frame)
        cut = data.draw(st.integers(0, len(raw) - 1))
        with pytest.raises(CodecError):
            parse(raw[:cut])
        bit = data.draw(st.integers(0, len(raw) * 8 - 1))
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(CodecError):
            parse(bytes(flipped))

    @FUZZ
    @given(chunks=st.lists(st.binary(max_size=40), max_size=12))
    def test_feed_never_raises_on_random_chunks(chunks: list[bytes]) -> None:
        """feed() and flush() accept any bytes in any chunking without raising."""
        decoder = new_decoder()
        for chunk in chunks:
            decoder.feed(chunk)
        decoder.flush()

    @FUZZ
    @given(noise=st.binary(max_size=300), frame=frames)
    def test_after_garbage_the_next_valid_frame_is_decoded(noise: bytes, frame: F) -> None:
        """Whatever garbage came first, a valid frame sent next is decoded (after a flush at
        most)."""
        decoder = new_decoder()
        items = [*decoder.feed(noise), *decoder.feed(encode(frame)), *decoder.flush()]
        assert items[-1] == frame

    return (
        test_any_frame_survives_encode_then_parse,
        test_random_bytes_make_parse_raise_only_codec_errors,
        test_truncated_or_bit_flipped_frames_raise_codec_errors,
        test_feed_never_raises_on_random_chunks,
        test_after_garbage_the_next_valid_frame_is_decoded,
    )
