"""The default blob store: a content-addressed folder on the hub's disk (``Settings.blob_path``).

Files live at ``root/ab/cd/<sha256>``; a write goes to ``root/tmp`` first, is fsynced and
renamed into place, and the directory is fsynced, so a crash leaves either the whole blob or
a temporary file that :meth:`FolderBlobStore.sweep_temp` removes. All file I/O runs in
threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterable, Callable
from pathlib import Path
from typing import BinaryIO, TypeVar, TypeVarTuple

import structlog

from hub.services.blobs import (
    CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    DEFAULT_MAX_SIZE,
    BlobData,
    BlobIOError,
    BlobNotFound,
    BlobReader,
    BlobRef,
    BlobStore,
    BlobTooLarge,
    check_blob_id,
)

log = structlog.get_logger("hub.services.blobs")

R = TypeVar("R")
Ts = TypeVarTuple("Ts")


class _FileReader(BlobReader):
    __slots__ = ("_file", "size")

    def __init__(self, file: BinaryIO, size: int) -> None:
        self._file = file
        self.size = size

    async def read(self, n: int = -1) -> bytes:
        try:
            return await asyncio.to_thread(self._file.read, n)
        except ValueError:
            # Read after aclose(): the file object says "I/O operation on closed file".
            return b""
        except OSError as exc:
            raise BlobIOError(f"cannot read blob: {exc.strerror}") from exc

    async def aclose(self) -> None:
        # close() of a read-only file does not block on the disk; kept on the loop so that
        # a cancelled caller still closes it.
        self._file.close()


class FolderBlobStore(BlobStore):
    """Blobs as files ``root/ab/cd/abcd…`` (two levels of fan-out by the hash's first bytes).

    A put writes ``root/tmp/put-*.part``, fsyncs it, renames it onto its final name and
    fsyncs the directory, so a blob file is either absent or complete, even after a crash.
    All file I/O runs in threads (``asyncio.to_thread``), never on the event loop.

    Args:
        root: the folder; created at the first put.
        max_size: the largest content :meth:`put` accepts, in bytes.
    """

    def __init__(self, root: Path | str, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
        if max_size < 0:
            raise ValueError("max_size must be >= 0")
        self.root = Path(root)
        self.max_size = max_size
        self._tmp = self.root / "tmp"

    def path_of(self, sha256: str) -> Path:
        """Where the blob's file lives (whether or not it exists).

        Raises:
            InvalidBlobId: ``sha256`` is not a blob id.
        """
        check_blob_id(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def put(
        self,
        data: BlobData,
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        max_size: int | None = None,
    ) -> BlobRef:
        limit = self.max_size if max_size is None else max_size
        if isinstance(data, bytes | bytearray | memoryview):
            if len(data) > limit:
                raise BlobTooLarge(limit)
            sha256, size = await _storing(self._put_bytes, bytes(data))
        else:
            sha256, size = await self._put_stream(data, limit)
        return BlobRef(sha256=sha256, size=size, content_type=content_type)

    async def get(self, sha256: str) -> bytes:
        path = self.path_of(sha256)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None
        except OSError as exc:
            raise BlobIOError(f"cannot read blob {sha256}: {exc.strerror}") from exc

    async def open(self, sha256: str) -> BlobReader:
        path = self.path_of(sha256)
        try:
            file, size = await asyncio.to_thread(_open_for_reading, path)
        except FileNotFoundError:
            raise BlobNotFound(sha256) from None
        except OSError as exc:
            raise BlobIOError(f"cannot open blob {sha256}: {exc.strerror}") from exc
        return _FileReader(file, size)

    async def exists(self, sha256: str) -> bool:
        path = self.path_of(sha256)
        try:
            return await asyncio.to_thread(path.is_file)
        except OSError as exc:
            raise BlobIOError(f"cannot check blob {sha256}: {exc.strerror}") from exc

    async def delete(self, sha256: str) -> bool:
        path = self.path_of(sha256)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise BlobIOError(f"cannot delete blob {sha256}: {exc.strerror}") from exc
        log.info("blob_deleted", sha256=sha256)
        return True

    async def sweep_temp(self, older_than: float = 3600.0) -> int:
        """Remove temporary files a crashed put left behind; returns how many.

        Only files older than ``older_than`` seconds go, so puts in progress are untouched.
        """
        return await asyncio.to_thread(self._sweep_temp, older_than)

    # --- in threads --------------------------------------------------------------------

    def _put_bytes(self, data: bytes) -> tuple[str, int]:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path_of(sha256)
        if _is_complete(target, len(data)):
            return sha256, len(data)
        fd, temp = self._mkstemp()
        try:
            with open(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            self._commit(temp, target, len(data))
        except BaseException:
            _unlink_quietly(temp)
            raise
        return sha256, len(data)

    async def _put_stream(self, chunks: AsyncIterable[bytes], limit: int) -> tuple[str, int]:
        # A buffered file: its lock serialises a write still running in a thread with the
        # close() below when the put is cancelled (a raw fd could be closed, reused by
        # another open() and then written to).
        file, temp = await _storing(self._open_temp)
        hasher = hashlib.sha256()
        size = 0
        pending = bytearray()
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise BlobTooLarge(limit)
                pending += chunk
                if len(pending) >= CHUNK_SIZE:
                    await _storing(_write_hashed, file, hasher, bytes(pending))
                    pending.clear()
            await _storing(_write_hashed, file, hasher, bytes(pending), True)
            sha256 = hasher.hexdigest()
            await _storing(self._commit, temp, self.path_of(sha256), size)
        except BaseException:
            # Synchronous on purpose: a cancelled put must still remove its temporary file,
            # and an await here could itself be cancelled. Both calls are quick.
            file.close()
            _unlink_quietly(temp)
            raise
        return sha256, size

    def _mkstemp(self) -> tuple[int, str]:
        self._tmp.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix="put-", suffix=".part", dir=self._tmp)

    def _open_temp(self) -> tuple[BinaryIO, str]:
        fd, temp = self._mkstemp()
        # The caller closes it in every path.
        return open(fd, "wb"), temp

    def _commit(self, temp: str, target: Path, size: int) -> None:
        if _is_complete(target, size):
            # Same content stored before (or by a concurrent put): nothing to replace.
            os.unlink(temp)
            return
        self._makedirs(target.parent)
        os.replace(temp, target)
        # The rename is durable only once its directory is on disk.
        _fsync_dir(target.parent)

    def _makedirs(self, leaf: Path) -> None:
        for directory in (leaf.parent, leaf):
            if directory.is_dir():
                continue
            try:
                directory.mkdir()
            except FileExistsError:
                continue
            _fsync_dir(directory.parent)

    def _sweep_temp(self, older_than: float) -> int:
        if not self._tmp.is_dir():
            return 0
        cutoff = time.time() - older_than
        removed = 0
        for entry in self._tmp.iterdir():
            try:
                if entry.name.endswith(".part") and entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        if removed:
            log.info("blob_temp_swept", removed=removed)
        return removed


async def _storing(fn: Callable[[*Ts], R], *args: *Ts) -> R:
    """Run one step of a put in a thread; OSError becomes BlobIOError. Only our own file
    operations go through here: an error of the caller's stream propagates unchanged."""
    try:
        return await asyncio.to_thread(fn, *args)
    except OSError as exc:
        raise BlobIOError(f"cannot store blob: {exc.strerror or exc}") from exc


def _open_for_reading(path: Path) -> tuple[BinaryIO, int]:
    file = open(path, "rb")  # noqa: SIM115 - owned by the returned reader
    try:
        return file, os.fstat(file.fileno()).st_size
    except BaseException:
        file.close()
        raise


def _write_hashed(file: BinaryIO, hasher: hashlib._Hash, data: bytes, last: bool = False) -> None:
    hasher.update(data)
    file.write(data)
    if last:
        file.flush()
        os.fsync(file.fileno())
        file.close()


def _is_complete(target: Path, size: int) -> bool:
    # Files appear only by rename after fsync, so a file of the right size is the blob. A
    # size mismatch (a file damaged outside the hub) is repaired by writing it again.
    try:
        return target.stat().st_size == size
    except FileNotFoundError:
        return False


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
