"""Devices of a hall (D1-D6).

``POST /api/devices``: register (the token is shown once); ``GET /api/devices?hall_id=``:
the registry; ``POST /api/devices/{id}/revoke``.
``PATCH /api/devices/{id}`` {host_id?, window_id?, name?}: bind a printer or reader to its
kiosk or ticket machine, a pad, screen, reader or scanner to its window (``null`` unbinds),
rename. ``PUT /api/devices/{id}/config`` {settings}: the device's remote settings, pushed to it
as ``configure``. Both ``device.manage`` (admin, hall_manager of the hall), audited.
``GET /api/halls/{hall_id}/devices``: the manager's device page (``device.read``: admin,
hall_manager, supervisor covering the hall).
``POST /api/devices/scans``: a scanner's upload (its device token; hub/services/scans.py).
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import Controller, Request, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from hub.api.deps import bearer_token, events_of, require
from hub.domain.access import DeviceKind, Principal
from hub.domain.errors import NotSignedIn
from hub.runtime import Hub
from hub.services import auth, device_admin, scans
from hub.services.access import hall_place


class DeviceNew(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    hall_id: Annotated[int, msgspec.Meta(ge=1)]
    kind: DeviceKind
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class DeviceController(Controller):
    path = "/api/devices"
    tags = ["devices"]  # noqa: RUF012

    @post("/")
    async def register(
        self,
        data: JSONBody[DeviceNew],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> auth.DeviceCreated:
        """Register a device in a hall the caller manages; the response holds its token,
        which is never shown again."""
        place = await hall_place(pool, data.hall_id, field="body.hall_id")
        actor = require(principal, "device.manage", place)
        return await auth.register_device(pool, actor, data.hall_id, data.kind, data.name)

    @get("/")
    async def list_devices(
        self,
        hall_id: FromQuery[int],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> list[auth.DeviceRecord]:
        """The devices of a hall (``?hall_id=``) the caller manages or oversees."""
        require(principal, "device.read", await hall_place(pool, hall_id, field="query.hall_id"))
        return await auth.list_devices(pool, hall_id)

    @post("/{device_id:int}/revoke", status_code=200)
    async def revoke(
        self,
        device_id: FromPath[int],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> auth.DeviceRecord:
        """Revoke a device's token; its next hello is refused, its alerts end."""
        device = await auth.get_device(pool, device_id)
        actor = require(principal, "device.manage", await hall_place(pool, device.hall_id))
        record = await auth.revoke_device(pool, actor, device_id)
        await device_admin.revoked(events_of(hub), device_id)
        return record

    @patch("/{device_id:int}")
    async def update(
        self,
        device_id: FromPath[int],
        data: JSONBody[device_admin.DeviceChange],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> device_admin.DeviceBinding:
        """Bind a device to a host (printer, ID or code reader → kiosk, ticket machine, touch
        terminal of the hall) or to a window of the hall (evaluator, window display, ID
        reader, scanner); ``null`` unbinds; ``name`` renames."""
        device = await auth.get_device(pool, device_id)
        place = await hall_place(pool, device.hall_id)
        actor = require(principal, "device.manage", place)
        return await device_admin.update(events_of(hub), actor, place, device_id, data)

    @put("/{device_id:int}/config")
    async def configure(
        self,
        device_id: FromPath[int],
        data: JSONBody[device_admin.DeviceSettings],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> device_admin.DeviceBinding:
        """Replace the device's remote settings (D6: ``poll_seconds``, ``timeout_s``, a
        printer's ``header`` and ``footer``…); the device gets them as ``configure``."""
        device = await auth.get_device(pool, device_id)
        place = await hall_place(pool, device.hall_id)
        actor = require(principal, "device.manage", place)
        return await device_admin.configure(events_of(hub), actor, place, device_id, data)

    @post("/scans", status_code=201, request_max_body_size=scans.SCAN_MAX_BYTES)
    async def upload_scan(
        self,
        request: Request[Any, Any, Any],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> scans.ScanAttached:
        """A scanner's image or PDF (the body; ``Content-Type``, ``X-Scan-Name``), attached
        to the ticket being served at its window. 409 ``no_current_ticket``, 413, 415."""
        device = await auth.device_by_token(pool, bearer_token(request))
        if device is None:
            raise NotSignedIn("the device token is unknown or revoked")
        if hub.blobs is None:
            raise RuntimeError("Hub.start() has not run")
        length = request.headers.get("content-length")
        return await scans.upload_scan(
            events_of(hub),
            hub.blobs,
            device,
            content_type=request.headers.get("content-type", ""),
            name_header=request.headers.get("x-scan-name"),
            content_length=int(length) if length and length.isdigit() else None,
            body=request.stream(),
        )


@get("/api/halls/{hall_id:int}/devices", tags=["devices"])
async def hall_devices(
    hall_id: FromPath[int],
    principal: NamedDependency[Principal],
    pool: NamedDependency[asyncpg.Pool],
) -> list[device_admin.DeviceView]:
    """The manager's device page: every unrevoked device of the hall with its binding,
    presence, last reported state, error count, model, firmware and live alerts."""
    require(principal, "device.read", await hall_place(pool, hall_id, field="path.hall_id"))
    return await device_admin.hall_devices(pool, hall_id)
