"""The agent's document camera (高拍仪, D3): watch its output folder, upload each image once.

Most document cameras save each capture as a file in a folder. :class:`ScanFolder` polls that
folder (portable: plain directory listings, no inotify or ReadDirectoryChangesW) and, for each
new file:

1. waits until its size and modification time are the same on two polls in a row (the camera
   has finished writing it); a file that cannot be opened yet (Windows: still locked by the
   camera's program) waits too;
2. checks its size (at most ``max_bytes``, the hub's 20 MiB) and its type by its first bytes
   (JPEG ``FF D8 FF``, PNG ``89 50 4E 47 0D 0A 1A 0A``, PDF ``%PDF-``), not by its name;
3. uploads it (``upload`` callback: ``POST /api/devices/scans`` with the scanner's token, see
   :class:`ScannerRunner`);
4. moves it to ``sent/`` after the hub took it, or to ``failed/`` when it was refused (wrong
   type, too big, nobody at the window) or failed the checks. A network failure or a hub
   error (5xx) leaves the file in place for the next poll.

No file is uploaded twice: a file moves out of the folder once handled, and an uploaded
file's (name, size, mtime) is remembered, so a file that could not be moved (locked) is not
sent again. Hidden and temporary files (``.x``, ``~x``, ``*.tmp``, ``*.part``) are ignored.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal, TypeAlias
from urllib.parse import quote

import httpx
import msgspec
import structlog

from devices.agent.config import MAX_SCAN_BYTES, AgentConfig, ScannerConfig
from devices.agent.runner import BackoffFactory, DeviceRunner, DeviceSettings, Recent
from devices.drivers.link import HardwareInfo
from devices.errors import DeviceOffline

__all__ = ["Outcome", "ScanFile", "ScanFolder", "ScannerRunner", "sniff_type"]

log = structlog.get_logger("devices.agent.scanner")

Outcome: TypeAlias = Literal["sent", "refused", "retry"]
"""What became of an upload: the hub took it, refused it (for good), or it should be tried
again later (network, 5xx)."""

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),  # JPEG SOI + the first marker (JFIF/Exif)
    (b"\x89PNG\r\n\x1a\n", "image/png"),  # PNG signature (RFC 2083 §3.1)
    (b"%PDF-", "application/pdf"),  # PDF header (ISO 32000-1 §7.5.2)
)
_IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial")
SENT, FAILED = "sent", "failed"
SCANS_PATH = "/api/devices/scans"


def sniff_type(head: bytes) -> str | None:
    """The content type of a file starting with ``head`` (at least 8 bytes), or None."""
    for magic, content_type in _MAGIC:
        if head.startswith(magic):
            return content_type
    return None


class ScanFile(msgspec.Struct, frozen=True):
    """One file ready to upload."""

    name: str
    content_type: str
    data: bytes


Upload = Callable[[ScanFile], Awaitable[Outcome]]


class _Seen(msgspec.Struct):
    size: int
    mtime_ns: int


class ScanFolder:
    """A scanner's output folder, run by the supervisor like a device driver.

    Args:
        folder: the folder the camera writes to; ``sent/`` and ``failed/`` are made in it.
        upload: sends one file; its :data:`Outcome` decides where the file goes.
        name: how logs name the scanner.
        poll_seconds: how often the folder is listed.
        max_bytes: larger files are not uploaded (moved to ``failed/``).
    """

    def __init__(
        self,
        folder: str | Path,
        upload: Upload,
        *,
        name: str = "scanner",
        poll_seconds: float = 1.0,
        max_bytes: int = MAX_SCAN_BYTES,
    ) -> None:
        self.folder = Path(folder)
        self.upload = upload
        self._name = name
        self.poll_seconds = poll_seconds
        self.max_bytes = max_bytes
        self.sent = 0
        self.failed = 0
        self._seen: dict[str, _Seen] = {}
        self._uploaded = Recent(4096)

    @property
    def name(self) -> str:
        return self._name

    async def connect(self) -> HardwareInfo:
        """Check the folder is there and make ``sent/`` and ``failed/``.

        Raises:
            DeviceOffline: the folder is missing or not writable (a network share down).
        """
        try:
            await asyncio.to_thread(self._prepare)
        except OSError as exc:
            raise DeviceOffline(f"{self.folder}: {exc.strerror or exc}") from exc
        return HardwareInfo(model="folder", firmware="", parts=["scanner"])

    def _prepare(self) -> None:
        if not self.folder.is_dir():
            raise FileNotFoundError(2, "no such folder", str(self.folder))
        (self.folder / SENT).mkdir(exist_ok=True)
        (self.folder / FAILED).mkdir(exist_ok=True)

    async def watch(self) -> None:
        """Poll the folder until it goes away.

        Raises:
            DeviceOffline: the folder cannot be listed any more.
        """
        while True:
            await self.scan()
            await asyncio.sleep(self.poll_seconds)

    async def close(self) -> None:
        """Nothing to release."""

    async def scan(self) -> None:
        """One poll: handle every file whose size held still since the last poll.

        Raises:
            DeviceOffline: the folder cannot be listed.
        """
        try:
            found = await asyncio.to_thread(self._list)
        except OSError as exc:
            raise DeviceOffline(f"{self.folder}: {exc.strerror or exc}") from exc
        for name in list(self._seen):
            if name not in found:
                del self._seen[name]
        for name, now in found.items():
            before = self._seen.get(name)
            self._seen[name] = now
            if before is None or before != now or now.size == 0:
                continue  # new or still growing: look again next poll
            await self._handle(name, now)

    def _list(self) -> dict[str, _Seen]:
        found: dict[str, _Seen] = {}
        with os.scandir(self.folder) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith((".", "~")) or name.lower().endswith(_IGNORED_SUFFIXES):
                    continue
                try:
                    if not entry.is_file():
                        continue
                    st = entry.stat()
                except OSError:
                    continue  # vanished or unreadable meanwhile: next poll
                found[name] = _Seen(size=st.st_size, mtime_ns=st.st_mtime_ns)
        return found

    async def _handle(self, name: str, seen: _Seen) -> None:
        path = self.folder / name
        signature = (name, seen.size, seen.mtime_ns)
        if signature in self._uploaded:
            await self._move(name, SENT)  # uploaded before, but the move failed then
            return
        if seen.size > self.max_bytes:
            log.warning("scan_too_big", scanner=self._name, file=name, size=seen.size)
            await self._move(name, FAILED)
            return
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            # Windows: the camera's program still holds it; anywhere: gone meanwhile.
            log.debug("scan_unreadable", scanner=self._name, file=name, error=str(exc))
            return
        if len(data) != seen.size:
            self._seen.pop(name, None)  # changed under us: wait until it holds still again
            return
        content_type = sniff_type(data[:8])
        if content_type is None:
            log.warning("scan_unknown_type", scanner=self._name, file=name, head=data[:8].hex())
            await self._move(name, FAILED)
            return
        outcome = await self.upload(ScanFile(name, content_type, data))
        if outcome == "retry":
            return
        if outcome == "sent":
            self._uploaded.add(signature)
            self.sent += 1
            await self._move(name, SENT)
        else:
            await self._move(name, FAILED)

    async def _move(self, name: str, where: str) -> None:
        try:
            await asyncio.to_thread(_move, self.folder / name, self.folder / where)
        except OSError as exc:
            log.warning("scan_move_failed", scanner=self._name, file=name, error=str(exc))
            return
        if where == FAILED:
            self.failed += 1
        self._seen.pop(name, None)


def _move(path: Path, folder: Path) -> None:
    """Move ``path`` into ``folder`` without overwriting: ``a.jpg``, ``a-1.jpg``, …"""
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    n = 0
    while target.exists():
        n += 1
        target = folder / f"{path.stem}-{n}{path.suffix}"
    os.replace(path, target)


class ScannerRunner(DeviceRunner):
    """A scanner device: its peer (presence, configuration) and its folder.

    Args:
        http: an HTTP client for the uploads (tests pass one); made from agent.toml's
            ``http`` otherwise.
    """

    part = "scanner"

    def __init__(
        self,
        agent: AgentConfig,
        config: ScannerConfig,
        *,
        backoff: BackoffFactory | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(agent, config, backoff=backoff)
        assert agent.http is not None  # checked by the config
        self.http = http or httpx.AsyncClient(base_url=agent.http, timeout=60.0, trust_env=False)
        self.folder = ScanFolder(
            config.folder,
            self._upload,
            name=self.name,
            poll_seconds=config.poll_seconds,
            max_bytes=config.max_bytes,
        )
        self.supervise(self.folder)

    async def apply(self, settings: DeviceSettings) -> None:
        if settings.poll_seconds is not None:
            self.folder.poll_seconds = settings.poll_seconds

    async def shutdown(self) -> None:
        await self.http.aclose()

    async def _upload(self, scan: ScanFile) -> Outcome:
        headers = {
            "Authorization": f"Bearer {self.config.token}",
            "Content-Type": scan.content_type,
            "X-Scan-Name": _header_safe(scan.name),
        }
        try:
            response = await self.http.post(SCANS_PATH, content=scan.data, headers=headers)
        except httpx.HTTPError as exc:
            self.log.info("scan_upload_retry", file=scan.name, error=str(exc) or type(exc).__name__)
            return "retry"
        if response.is_success:
            self.log.info("scan_uploaded", file=scan.name, size=len(scan.data))
            return "sent"
        if response.status_code >= 500 or response.status_code in (408, 429):
            self.log.info("scan_upload_retry", file=scan.name, status=response.status_code)
            return "retry"
        self.log.warning(
            "scan_refused", file=scan.name, status=response.status_code, body=response.text[:200]
        )
        return "refused"


def _header_safe(name: str) -> str:
    """The file name for ``X-Scan-Name``: HTTP header values are Latin-1, so anything else
    (a Chinese file name) is percent-encoded as UTF-8."""
    return name if name.isascii() and name.isprintable() else quote(name, safe="")
