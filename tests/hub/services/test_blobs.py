"""FolderBlobStore on a temporary folder: addressing, atomic and idempotent writes, limits."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.services.blob_folder import FolderBlobStore
from hub.services.blobs import (
    BlobError,
    BlobIOError,
    BlobNotFound,
    BlobRef,
    BlobTooLarge,
    InvalidBlobId,
)

SCAN = b"%PDF-1.7 a scanned licence " * 1000
SCAN_SHA = hashlib.sha256(SCAN).hexdigest()
MISSING = "0" * 64


@pytest.fixture
def store(tmp_path: Path) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "blobs", max_size=1024 * 1024)


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def assert_no_temp_files(store: FolderBlobStore) -> None:
    temp = store.root / "tmp"
    leftovers = list(temp.iterdir()) if temp.exists() else []
    assert leftovers == [], f"temporary files left behind: {leftovers}"


async def test_put_returns_a_reference_named_by_the_sha256_of_the_content(
    store: FolderBlobStore,
) -> None:
    """The reference carries the hex SHA-256, the size and the caller's content type."""
    ref = await store.put(SCAN, "application/pdf")
    assert ref == BlobRef(sha256=SCAN_SHA, size=len(SCAN), content_type="application/pdf")


async def test_blob_files_fan_out_over_two_directory_levels(store: FolderBlobStore) -> None:
    """A blob lives at root/ab/cd/abcd…, and the path is exactly that."""
    await store.put(SCAN)
    expected = store.root / SCAN_SHA[:2] / SCAN_SHA[2:4] / SCAN_SHA
    assert store.path_of(SCAN_SHA) == expected
    assert _files(store.root) == [expected]
    assert expected.read_bytes() == SCAN


async def test_get_returns_the_stored_bytes(store: FolderBlobStore) -> None:
    """What was put comes back unchanged."""
    ref = await store.put(SCAN)
    assert await store.get(ref.sha256) == SCAN


async def test_putting_the_same_content_twice_stores_it_once(store: FolderBlobStore) -> None:
    """The second put returns the same reference and leaves one file, untouched."""
    first = await store.put(SCAN, "application/pdf")
    inode = store.path_of(SCAN_SHA).stat().st_ino
    second = await store.put(SCAN, "application/pdf")
    assert second == first
    assert store.path_of(SCAN_SHA).stat().st_ino == inode
    assert len(_files(store.root)) == 1
    assert_no_temp_files(store)


async def test_concurrent_puts_of_the_same_stream_agree(store: FolderBlobStore) -> None:
    """Ten uploads of one file at once give ten equal references and one blob file."""
    refs = await asyncio.gather(*(store.put(_chunks(SCAN, 4096)) for _ in range(10)))
    assert set(refs) == {BlobRef(SCAN_SHA, len(SCAN), "application/octet-stream")}
    assert _files(store.root) == [store.path_of(SCAN_SHA)]


async def test_a_stream_is_stored_like_the_same_bytes(store: FolderBlobStore) -> None:
    """Chunked content (odd chunk sizes, empty chunks) gives the reference of the whole."""

    async def ragged() -> AsyncIterator[bytes]:
        yield b""
        async for chunk in _chunks(SCAN, 777):
            yield chunk
            yield b""

    ref = await store.put(ragged(), "application/pdf")
    assert ref == BlobRef(SCAN_SHA, len(SCAN), "application/pdf")
    assert await store.get(SCAN_SHA) == SCAN
    assert_no_temp_files(store)


async def test_a_stream_larger_than_a_write_chunk_is_stored_whole(tmp_path: Path) -> None:
    """Content spanning several 1 MiB writes hashes and stores correctly."""
    store = FolderBlobStore(tmp_path, max_size=8 * 1024 * 1024)
    data = os.urandom(3 * 1024 * 1024 + 5)
    ref = await store.put(_chunks(data, 64 * 1024))
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert await store.get(ref.sha256) == data


async def test_the_empty_blob_is_a_blob(store: FolderBlobStore) -> None:
    """Zero bytes are stored under the SHA-256 of nothing."""
    ref = await store.put(b"")
    assert ref.sha256 == hashlib.sha256(b"").hexdigest()
    assert await store.get(ref.sha256) == b""


async def test_bytes_over_the_limit_are_refused_and_nothing_is_written(
    store: FolderBlobStore,
) -> None:
    """One byte over the limit raises BlobTooLarge with its stable code and limit."""
    with pytest.raises(BlobTooLarge) as caught:
        await store.put(b"x" * (store.max_size + 1))
    assert caught.value.code == "blob_too_large"
    assert caught.value.limit == store.max_size
    assert str(caught.value) == f"the content exceeds the limit of {store.max_size} bytes"
    assert not store.root.exists()


async def test_content_exactly_at_the_limit_is_accepted(store: FolderBlobStore) -> None:
    """The limit is inclusive."""
    ref = await store.put(b"x" * store.max_size)
    assert ref.size == store.max_size


async def test_a_stream_over_the_limit_is_not_read_further(store: FolderBlobStore) -> None:
    """The upload stops at the first chunk past the limit and leaves no temporary file."""
    served = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal served
        while True:
            served += 1
            yield b"y" * 65536

    with pytest.raises(BlobTooLarge):
        await store.put(endless())
    assert served == store.max_size // 65536 + 1
    assert_no_temp_files(store)
    assert [p for p in _files(store.root) if "tmp" not in p.parts] == []


async def test_the_limit_can_be_set_per_call(store: FolderBlobStore) -> None:
    """max_size on put overrides the store's limit, both ways."""
    with pytest.raises(BlobTooLarge):
        await store.put(b"12345", max_size=4)
    big = b"z" * (store.max_size + 1)
    ref = await store.put(big, max_size=store.max_size + 1)
    assert ref.size == len(big)


async def test_a_failing_stream_leaves_nothing_behind(store: FolderBlobStore) -> None:
    """An upload that breaks off propagates its error and stores nothing."""

    async def broken() -> AsyncIterator[bytes]:
        yield b"half a file"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.put(broken())
    assert_no_temp_files(store)
    assert [p for p in _files(store.root) if "tmp" not in p.parts] == []


async def test_a_cancelled_put_leaves_nothing_behind(store: FolderBlobStore) -> None:
    """Cancelling the caller mid-upload removes the temporary file."""
    started = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"first chunk"
        started.set()
        await asyncio.Event().wait()
        yield b"never"

    task = asyncio.create_task(store.put(slow()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_no_temp_files(store)


async def test_missing_blobs_raise_blob_not_found(store: FolderBlobStore) -> None:
    """get and open both say which blob is missing; open says it before any read."""
    with pytest.raises(BlobNotFound) as caught:
        await store.get(MISSING)
    assert caught.value.code == "blob_not_found"
    assert caught.value.sha256 == MISSING
    with pytest.raises(BlobNotFound):
        await store.open(MISSING)
    assert await store.exists(MISSING) is False


@pytest.mark.parametrize(
    "bad",
    ["../../etc/passwd", SCAN_SHA.upper(), SCAN_SHA[:-1], SCAN_SHA + "0", "", "g" * 64],
)
async def test_ids_that_are_not_lowercase_sha256_hex_are_refused(
    store: FolderBlobStore, bad: str
) -> None:
    """Every method refuses a malformed id before touching the disk."""
    for call in (store.get, store.open, store.exists, store.delete):
        with pytest.raises(InvalidBlobId) as caught:
            await call(bad)
        assert caught.value.code == "invalid_blob_id"
        assert isinstance(caught.value, BlobError)


async def test_open_reads_the_blob_in_chunks(store: FolderBlobStore) -> None:
    """A reader knows its size, reads by count, iterates in chunks and closes."""
    await store.put(SCAN)
    async with await store.open(SCAN_SHA) as reader:
        assert reader.size == len(SCAN)
        head = await reader.read(8)
        rest = [chunk async for chunk in reader.chunks(10_000)]
    assert head == SCAN[:8]
    assert [len(c) for c in rest] == [10_000, 10_000, len(SCAN) - 8 - 20_000]
    assert head + b"".join(rest) == SCAN
    assert await reader.read() == b""


async def test_stream_yields_the_whole_blob(store: FolderBlobStore) -> None:
    """stream() is open() plus iteration."""
    await store.put(SCAN)
    chunks = [chunk async for chunk in store.stream(SCAN_SHA, chunk_size=5000)]
    assert b"".join(chunks) == SCAN
    assert max(len(c) for c in chunks) == 5000


async def test_delete_removes_a_blob_once(store: FolderBlobStore) -> None:
    """delete says whether there was something to delete."""
    await store.put(SCAN)
    assert await store.exists(SCAN_SHA) is True
    assert await store.delete(SCAN_SHA) is True
    assert await store.exists(SCAN_SHA) is False
    assert await store.delete(SCAN_SHA) is False
    with pytest.raises(BlobNotFound):
        await store.get(SCAN_SHA)


async def test_a_damaged_blob_file_is_rewritten_by_the_next_put(store: FolderBlobStore) -> None:
    """A file of the wrong size (damaged outside the hub) does not count as stored."""
    await store.put(SCAN)
    store.path_of(SCAN_SHA).write_bytes(SCAN[:10])
    await store.put(SCAN)
    assert await store.get(SCAN_SHA) == SCAN


async def test_sweep_removes_only_old_temporary_files(store: FolderBlobStore) -> None:
    """Leftovers of a crashed put go; a put in progress (a fresh file) stays."""
    temp = store.root / "tmp"
    temp.mkdir(parents=True)
    old, fresh = temp / "put-old.part", temp / "put-new.part"
    old.write_bytes(b"crashed")
    fresh.write_bytes(b"in progress")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    assert await store.sweep_temp(older_than=3600) == 1
    assert list(temp.iterdir()) == [fresh]


async def test_a_filesystem_failure_becomes_blob_io_error(tmp_path: Path) -> None:
    """OSError from the disk is translated at the boundary, with its stable code."""
    not_a_folder = tmp_path / "file"
    not_a_folder.write_bytes(b"")
    store = FolderBlobStore(not_a_folder)
    with pytest.raises(BlobIOError) as caught:
        await store.put(SCAN)
    assert caught.value.code == "blob_io_failed"
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(BlobIOError):
        await store.put(_chunks(SCAN, 1000))
