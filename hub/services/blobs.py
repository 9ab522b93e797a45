"""Blob store: scans, uploads, licence files, notices and archives, addressed by content.

One interface, :class:`BlobStore`, and the default backend
:class:`~hub.services.blob_folder.FolderBlobStore` (a folder on the hub's disk,
``Settings.blob_path``); an S3-compatible backend implements the same interface
(DESIGN.md, "Storage"). A blob is named by the SHA-256 of its bytes, so storing the
same file twice stores it once and a :class:`BlobRef` kept in PostgreSQL always names exactly
the bytes it was made from.

The store keeps bytes only. The content type in a :class:`BlobRef` is the caller's to record
(with the reference, in the row that owns the file); the same bytes uploaded as two types are
one blob. Deleting is for garbage collection of blobs no row refers to any more: the store
does not count references.

Errors::

    BlobError            blob_error
    ├── BlobNotFound     blob_not_found     no blob with that SHA-256
    ├── BlobTooLarge     blob_too_large     the content exceeds the size limit
    ├── InvalidBlobId    invalid_blob_id    not 64 lowercase hex digits
    └── BlobIOError      blob_io_failed     the filesystem failed (disk full, permissions)
"""

from __future__ import annotations

import abc
import re
from collections.abc import AsyncIterable, AsyncIterator
from types import TracebackType
from typing import Self

import msgspec
import structlog

log = structlog.get_logger("hub.services.blobs")

DEFAULT_CONTENT_TYPE = "application/octet-stream"
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
CHUNK_SIZE = 1024 * 1024

BlobData = bytes | bytearray | memoryview | AsyncIterable[bytes]


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


# --- errors ------------------------------------------------------------------------------


class BlobError(Exception):
    code = "blob_error"


class BlobNotFound(BlobError):
    code = "blob_not_found"

    def __init__(self, sha256: str) -> None:
        super().__init__(f"no blob {sha256}")
        self.sha256 = sha256


class BlobTooLarge(BlobError):
    code = "blob_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the content exceeds the limit of {limit} bytes")
        self.limit = limit


class InvalidBlobId(BlobError):
    code = "invalid_blob_id"

    def __init__(self, sha256: str) -> None:
        super().__init__(f"not a blob id (64 lowercase hex digits): {sha256[:80]!r}")
        self.sha256 = sha256


class BlobIOError(BlobError):
    code = "blob_io_failed"


# --- interface ---------------------------------------------------------------------------


class BlobRef(msgspec.Struct, frozen=True):
    """What the owner of a file keeps: the name of its bytes, their size and their type."""

    sha256: str
    size: int
    content_type: str


class BlobReader(abc.ABC):
    """An open blob, read in chunks. Close it (``async with``, or :meth:`aclose`)."""

    size: int

    @abc.abstractmethod
    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (all that remain when ``n`` is negative); ``b""`` at the end."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the underlying file or connection. Idempotent."""

    async def chunks(self, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield the remaining content in chunks of at most ``chunk_size`` bytes."""
        while chunk := await self.read(chunk_size):
            yield chunk

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.chunks()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class BlobStore(abc.ABC):
    """Content-addressed storage of immutable byte strings."""

    @abc.abstractmethod
    async def put(
        self,
        data: BlobData,
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        max_size: int | None = None,
    ) -> BlobRef:
        """Store ``data`` (bytes, or an async iterable of byte chunks such as a request body).

        Storing content that is already there returns the same reference and writes nothing
        new. A failed or cancelled put leaves nothing behind.

        Args:
            data: the content, whole or as chunks (read once, as they arrive).
            content_type: returned in the reference; not stored (see the module docstring).
            max_size: overrides the store's size limit for this call.

        Raises:
            BlobTooLarge: the content is longer than the limit; a stream is not read further.
            BlobIOError: the storage failed.
        """

    @abc.abstractmethod
    async def get(self, sha256: str) -> bytes:
        """The whole content of a blob. For large blobs prefer :meth:`open`.

        Raises:
            InvalidBlobId, BlobNotFound, BlobIOError.
        """

    @abc.abstractmethod
    async def open(self, sha256: str) -> BlobReader:
        """Open a blob for reading in chunks.

        The blob is looked up here, not at the first read, so a controller can answer 404
        before it starts a streaming response.

        Raises:
            InvalidBlobId, BlobNotFound, BlobIOError.
        """

    @abc.abstractmethod
    async def exists(self, sha256: str) -> bool:
        """Whether the blob is stored.

        Raises:
            InvalidBlobId, BlobIOError.
        """

    @abc.abstractmethod
    async def delete(self, sha256: str) -> bool:
        """Remove a blob; True if it was there. Only for blobs no row refers to any more.

        Raises:
            InvalidBlobId, BlobIOError.
        """

    async def stream(self, sha256: str, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield a blob's content in chunks; the reader is closed when the iteration ends.

        Being a generator, this raises :class:`BlobNotFound` at the first iteration, not at
        the call: use :meth:`open` where the error must come first.
        """
        async with await self.open(sha256) as reader:
            async for chunk in reader.chunks(chunk_size):
                yield chunk


def check_blob_id(sha256: str) -> str:
    """Return ``sha256`` if it is 64 lowercase hex digits.

    Raises:
        InvalidBlobId: anything else (which also keeps path separators out of file names).
    """
    if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
        raise InvalidBlobId(str(sha256))
    return sha256


# --- the folder backend ------------------------------------------------------------------
