"""Devices of a hall (D6): register (the token is shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

import asyncpg
import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from hub.api.deps import require
from hub.domain.access import DeviceKind, Principal
from hub.services import auth
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
    ) -> auth.DeviceRecord:
        """Revoke a device's token; its next hello is refused."""
        device = await auth.get_device(pool, device_id)
        actor = require(principal, "device.manage", await hall_place(pool, device.hall_id))
        return await auth.revoke_device(pool, actor, device_id)
