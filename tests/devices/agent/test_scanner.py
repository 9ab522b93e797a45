"""The scanner's folder watcher (devices/agent/scanner.py): files are uploaded once they hold
still, checked by size and magic bytes, moved to sent/ or failed/, never sent twice; uploads
go to POST /api/devices/scans of a real (small) HTTP server with the device's token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from devices.agent.config import ScannerConfig, parse_config
from devices.agent.scanner import Outcome, ScanFile, ScanFolder, ScannerRunner, sniff_type
from devices.errors import DeviceOffline

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(100)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(50)
PDF = b"%PDF-1.7\n" + bytes(50)


class Uploads:
    """The upload callback: records files, answers with the scripted outcomes."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.files: list[ScanFile] = []
        self.outcomes = list(outcomes)

    async def __call__(self, scan: ScanFile) -> Outcome:
        self.files.append(scan)
        return self.outcomes.pop(0) if self.outcomes else "sent"


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def test_types_are_told_by_their_first_bytes() -> None:
    """JPEG, PNG and PDF by signature; anything else (a .jpg that is text) is None."""
    assert sniff_type(JPEG[:8]) == "image/jpeg"
    assert sniff_type(PNG[:8]) == "image/png"
    assert sniff_type(PDF[:8]) == "application/pdf"
    assert sniff_type(b"hello wo") is None


async def test_a_file_is_uploaded_once_it_holds_still_then_moved_to_sent(tmp_path: Path) -> None:
    """First poll: new, wait. Second poll, unchanged: uploaded and moved to sent/. Later
    polls upload nothing more."""
    uploads = Uploads()
    folder = ScanFolder(tmp_path, uploads)
    await folder.connect()
    (tmp_path / "doc1.jpg").write_bytes(JPEG)
    await folder.scan()
    assert uploads.files == []
    await folder.scan()
    assert uploads.files == [ScanFile("doc1.jpg", "image/jpeg", JPEG)]
    assert names(tmp_path) == [] and names(tmp_path / "sent") == ["doc1.jpg"]
    await folder.scan()
    assert len(uploads.files) == 1


async def test_a_growing_file_waits_until_its_size_stops_changing(tmp_path: Path) -> None:
    """The camera still writing: no upload while the size changes between polls."""
    uploads = Uploads()
    folder = ScanFolder(tmp_path, uploads)
    await folder.connect()
    path = tmp_path / "big.pdf"
    path.write_bytes(PDF[:20])
    await folder.scan()
    path.write_bytes(PDF)
    await folder.scan()
    assert uploads.files == []
    await folder.scan()
    assert [f.data for f in uploads.files] == [PDF]


async def test_wrong_type_and_too_big_go_to_failed_without_upload(tmp_path: Path) -> None:
    """A text file named .jpg and a file over max_bytes are never sent; both end in failed/."""
    uploads = Uploads()
    folder = ScanFolder(tmp_path, uploads, max_bytes=100)
    await folder.connect()
    (tmp_path / "fake.jpg").write_bytes(b"not an image at all")
    (tmp_path / "huge.png").write_bytes(PNG + bytes(100))
    (tmp_path / ".hidden.jpg").write_bytes(JPEG)
    (tmp_path / "half.jpg.part").write_bytes(JPEG)
    await folder.scan()
    await folder.scan()
    assert uploads.files == []
    assert names(tmp_path / "failed") == ["fake.jpg", "huge.png"]
    assert names(tmp_path) == [".hidden.jpg", "half.jpg.part"]


async def test_a_refused_upload_goes_to_failed_and_a_retry_stays_for_later(tmp_path: Path) -> None:
    """The hub refuses one file (nobody at the window): failed/. A network error on the other
    leaves it in place; it is sent at a later poll, once."""
    uploads = Uploads("refused", "retry", "sent")
    folder = ScanFolder(tmp_path, uploads)
    await folder.connect()
    (tmp_path / "a.jpg").write_bytes(JPEG)
    (tmp_path / "b.png").write_bytes(PNG)
    await folder.scan()
    await folder.scan()
    assert names(tmp_path / "failed") == ["a.jpg"]
    assert names(tmp_path) == ["b.png"]
    await folder.scan()
    assert names(tmp_path / "sent") == ["b.png"]
    assert [f.name for f in uploads.files] == ["a.jpg", "b.png", "b.png"]


async def test_a_name_taken_in_sent_gets_a_suffix(tmp_path: Path) -> None:
    """The camera reuses a name: the second file is kept as doc-1.jpg, nothing overwritten."""
    folder = ScanFolder(tmp_path, Uploads())
    await folder.connect()
    for data in (JPEG, JPEG + b"x"):
        (tmp_path / "doc.jpg").write_bytes(data)
        await folder.scan()
        await folder.scan()
    assert names(tmp_path / "sent") == ["doc-1.jpg", "doc.jpg"]


async def test_a_missing_folder_is_offline(tmp_path: Path) -> None:
    """The folder is not there (a share not mounted): connect raises DeviceOffline; a folder
    that disappears makes the scan raise it."""
    with pytest.raises(DeviceOffline):
        await ScanFolder(tmp_path / "nope", Uploads()).connect()
    gone = tmp_path / "gone"
    gone.mkdir()
    folder = ScanFolder(gone, Uploads())
    await folder.connect()
    for sub in ("sent", "failed"):
        (gone / sub).rmdir()
    gone.rmdir()
    with pytest.raises(DeviceOffline):
        await folder.scan()


# --- uploads over HTTP ------------------------------------------------------------------------


class Request(msgspec.Struct):
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScanServer:
    """A tiny HTTP/1.1 server standing in for the hub's scan endpoint."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[Request] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ")
            headers = {k.lower(): v for k, v in (ln.split(": ", 1) for ln in lines[1:] if ln)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Request(method, path, headers, body))
            status = self.statuses.pop(0) if self.statuses else 201
            payload = b'{"attachment_id": 1, "ticket_id": 2}' if status == 201 else b"{}"
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()


@pytest.fixture
async def server() -> AsyncIterator[ScanServer]:
    made = ScanServer()
    srv = await asyncio.start_server(made.handle, "127.0.0.1", 0)
    made.port = srv.sockets[0].getsockname()[1]
    yield made
    srv.close()


async def test_the_runner_uploads_with_its_token_type_and_name(
    tmp_path: Path, server: ScanServer
) -> None:
    """POST /api/devices/scans, Bearer token, the sniffed Content-Type, X-Scan-Name
    (percent-encoded UTF-8 for a Chinese name); 201 is sent, 409 refused, 503 retry."""
    config = parse_config(
        {
            "hub": "ws://127.0.0.1:1/",
            "http": f"http://127.0.0.1:{server.port}",
            "device": [{"kind": "scanner", "token": "tok-1", "folder": str(tmp_path)}],
        }
    )
    (scanner,) = config.device
    assert isinstance(scanner, ScannerConfig)
    runner = ScannerRunner(config, scanner)
    try:
        server.statuses = [201, 409, 503]
        assert await runner._upload(ScanFile("身份证.jpg", "image/jpeg", JPEG)) == "sent"
        assert await runner._upload(ScanFile("b.png", "image/png", PNG)) == "refused"
        assert await runner._upload(ScanFile("c.pdf", "application/pdf", PDF)) == "retry"
    finally:
        await runner.shutdown()
    first = server.requests[0]
    assert (first.method, first.path, first.body) == ("POST", "/api/devices/scans", JPEG)
    assert first.headers["authorization"] == "Bearer tok-1"
    assert first.headers["content-type"] == "image/jpeg"
    assert first.headers["x-scan-name"] == "%E8%BA%AB%E4%BB%BD%E8%AF%81.jpg"
    assert [r.headers["x-scan-name"] for r in server.requests[1:]] == ["b.png", "c.pdf"]


async def test_an_unreachable_hub_is_retry(tmp_path: Path) -> None:
    """Nothing listens: the upload is kept for later."""
    config = parse_config(
        {
            "hub": "ws://127.0.0.1:1/",
            "http": "http://127.0.0.1:1",
            "device": [{"kind": "scanner", "token": "t", "folder": str(tmp_path)}],
        }
    )
    (scanner,) = config.device
    assert isinstance(scanner, ScannerConfig)
    runner = ScannerRunner(config, scanner)
    try:
        assert await runner._upload(ScanFile("a.jpg", "image/jpeg", JPEG)) == "retry"
    finally:
        await runner.shutdown()
