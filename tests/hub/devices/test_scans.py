"""Scanner uploads (D3): POST /api/devices/scans attaches a document camera's file to the
ticket served at its window, typed by magic bytes, bounded in size, audited."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from tests.hub.api.conftest import assert_problem, bearer
from tests.hub.devices.conftest import DeviceWorld, live, next_update

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _headers(token: str, content_type: str, name: str = "scan.jpg") -> dict[str, str]:
    return {
        **bearer(token),
        "Content-Type": content_type,
        "X-Scan-Name": quote(name),
    }


async def _serve_one(dw: DeviceWorld) -> int:
    w = dw.w
    issued = await dw.client.post(
        f"/api/halls/{w.hall_id}/tickets",
        json={"group_id": w.groups["A"]},
        headers=bearer(dw.devices["kiosk"].token),
    )
    url = f"/api/halls/{w.hall_id}/windows/{w.windows[0]}"
    for action in ("sign-in", "call"):
        assert (await dw.client.post(f"{url}/{action}", headers=bearer(w.tokens[0]))).is_success
    ticket_id: int = issued.json()["ticket_id"]
    return ticket_id


async def test_a_scan_is_attached_to_the_ticket_at_the_window_and_audited(
    dw: DeviceWorld,
) -> None:
    """201 with the attachment and ticket; the file is in the blob store by its SHA-256, the
    row names it, the audit log records the scanner's action, the clerk's console hears."""
    camera = dw.devices["camera"]
    ticket_id = await _serve_one(dw)
    staff_topic = f"staff:{dw.w.staff[0]}"
    async with dw.console(dw.w.tokens[0], staff_topic) as console:
        await live(console)
        response = await dw.client.post(
            "/api/devices/scans",
            content=JPEG,
            headers=_headers(camera.token, "image/jpeg", "C:/scans/身份证正面.jpg"),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["ticket_id"] == ticket_id
        heard = await next_update(console, "scan_attached", topic=staff_topic)
    sha = hashlib.sha256(JPEG).hexdigest()
    row = await dw.db.fetchrow(
        "SELECT * FROM ticket_attachment WHERE id = $1", body["attachment_id"]
    )
    assert (row["ticket_id"], row["blob"], row["name"], row["content_type"], row["size"]) == (
        ticket_id,
        sha,
        "身份证正面.jpg",
        "image/jpeg",
        len(JPEG),
    )
    assert row["device_id"] == camera.id
    assert dw.hub.blobs is not None and dw.hub.blobs.path_of(sha).read_bytes() == JPEG
    audit = await dw.db.fetchrow(
        "SELECT actor_label, role, target_id, after FROM audit_log "
        "WHERE action = 'ticket.attach_scan'"
    )
    assert (audit["actor_label"], audit["role"], audit["target_id"]) == (
        "1窗高拍仪",
        "device",
        str(ticket_id),
    )
    assert audit["after"]["blob"] == sha
    assert heard.data == {
        "attachment_id": body["attachment_id"],
        "ticket_id": ticket_id,
        "number": "A001",
        "name": "身份证正面.jpg",
        "content_type": "image/jpeg",
        "size": len(JPEG),
    }


async def test_a_scan_with_nobody_at_the_window_is_refused(dw: DeviceWorld) -> None:
    """409 no_current_ticket; nothing is stored."""
    response = await dw.client.post(
        "/api/devices/scans",
        content=JPEG,
        headers=_headers(dw.devices["camera"].token, "image/jpeg"),
    )
    assert_problem(response, 409, "no_current_ticket")
    assert await dw.db.fetchval("SELECT count(*) FROM ticket_attachment") == 0


async def test_a_scan_of_another_type_than_it_says_or_too_large_is_refused(
    dw: DeviceWorld,
) -> None:
    """A PNG declared as JPEG and a GIF get 415; more than 20 MiB gets 413; an empty body 422."""
    await _serve_one(dw)
    token = dw.devices["camera"].token
    for content, content_type in ((PNG, "image/jpeg"), (b"GIF89a" + b"\0" * 20, "image/gif")):
        response = await dw.client.post(
            "/api/devices/scans", content=content, headers=_headers(token, content_type)
        )
        assert_problem(response, 415, "unsupported_media_type")
    big = JPEG[:4] + b"\0" * (20 * 1024 * 1024)
    response = await dw.client.post(
        "/api/devices/scans", content=big, headers=_headers(token, "image/jpeg")
    )
    assert_problem(response, 413, "too_large")
    empty = await dw.client.post(
        "/api/devices/scans", content=b"", headers=_headers(token, "image/jpeg")
    )
    assert_problem(empty, 422, "invalid_input")
    png = await dw.client.post(
        "/api/devices/scans", content=PNG, headers=_headers(token, "image/png")
    )
    assert png.status_code == 201, png.text
    assert await dw.db.fetchval("SELECT count(*) FROM ticket_attachment") == 1


async def test_only_a_scanner_uploads_scans(dw: DeviceWorld) -> None:
    """A kiosk's token gets 403, staff and unknown tokens 401, no token 401."""
    await _serve_one(dw)
    kiosk = await dw.client.post(
        "/api/devices/scans",
        content=JPEG,
        headers=_headers(dw.devices["kiosk"].token, "image/jpeg"),
    )
    assert_problem(kiosk, 403, "forbidden")
    for token in (dw.w.tokens[0], "not-a-token"):
        refused = await dw.client.post(
            "/api/devices/scans", content=JPEG, headers=_headers(token, "image/jpeg")
        )
        assert_problem(refused, 401, "unauthenticated")
    bare = await dw.client.post(
        "/api/devices/scans", content=JPEG, headers={"Content-Type": "image/jpeg"}
    )
    assert_problem(bare, 401, "unauthenticated")
