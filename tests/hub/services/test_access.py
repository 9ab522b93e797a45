"""AccessService: the gateway's authenticate and authorize, on real PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest

from hub.domain.access import PUBLIC, Principal
from hub.services import auth
from hub.services.access import AccessService
from realtime.errors import Forbidden, Unauthenticated, UnknownTopic
from tests.hub.conftest import PASSWORD, SYSTEM, Org


async def _staff(access: AccessService, pool: asyncpg.Pool, staff_no: str) -> Principal:
    session = await auth.sign_in(pool, staff_no, PASSWORD, hours=1)
    return await access.authenticate(session.token, "staff_console")


async def test_no_token_is_the_public(db: asyncpg.Pool) -> None:
    """A hello without a token authenticates as the public principal."""
    assert await AccessService(db).authenticate(None, "mobile") == PUBLIC


async def test_a_device_token_authenticates_its_device_of_its_kind(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """The device principal carries its hall and kind; another kind is refused."""
    created = await auth.register_device(db, SYSTEM, organisation.hall_a1, "evaluator", "pad")
    access = AccessService(db)
    principal = await access.authenticate(created.token, "evaluator")
    assert principal.id == f"device:{created.device.id}"
    assert principal.hall_id == organisation.hall_a1
    with pytest.raises(Unauthenticated):
        await access.authenticate(created.token, "kiosk")


@pytest.mark.parametrize("token", ["", "nonsense", "x" * 43])
async def test_an_unknown_token_is_unauthenticated(db: asyncpg.Pool, token: str) -> None:
    """Anything but a live device or session token raises Unauthenticated."""
    with pytest.raises(Unauthenticated):
        await AccessService(db).authenticate(token, "kiosk")


async def test_a_revoked_device_and_a_signed_out_session_are_unauthenticated(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """Revocation takes effect on the next hello."""
    access = AccessService(db)
    created = await auth.register_device(db, SYSTEM, organisation.hall_a1, "kiosk", "k")
    await auth.revoke_device(db, SYSTEM, created.device.id)
    session = await auth.sign_in(db, "clerk_a1", PASSWORD, hours=1)
    await auth.sign_out(db, session.token)
    for token in (created.token, session.token):
        with pytest.raises(Unauthenticated):
            await access.authenticate(token, "kiosk")


async def test_public_topics_are_open_to_everyone(db: asyncpg.Pool, organisation: Org) -> None:
    """hall:<id> and window:<id> accept the public."""
    access = AccessService(db)
    await access.authorize(PUBLIC, f"hall:{organisation.hall_b}")
    await access.authorize(PUBLIC, f"window:{organisation.window_b}")


@pytest.mark.parametrize(
    "topic", ["hall:999", "window:999", "presence:999", "hall:abc", "weather:1", "nonsense"]
)
async def test_missing_halls_and_unknown_kinds_are_unknown_topics(
    db: asyncpg.Pool, organisation: Org, topic: str
) -> None:
    """A topic that names nothing raises UnknownTopic, not Forbidden."""
    with pytest.raises(UnknownTopic):
        await AccessService(db).authorize(PUBLIC, topic)


@pytest.mark.parametrize(
    ("staff_no", "halls_allowed"),
    [
        ("root_admin", {"a1", "a", "b"}),
        ("admin_a", {"a1", "a"}),
        ("supervisor_a", {"a1", "a"}),
        ("manager_a1", {"a1"}),
        ("manager_b", {"b"}),
        ("supervisor_tax", {"a1"}),
        ("clerk_a1", set()),
    ],
)
async def test_presence_follows_role_and_scope(
    db: asyncpg.Pool, organisation: Org, staff_no: str, halls_allowed: set[str]
) -> None:
    """A city supervisor sees presence in every hall of its city and none of another city;
    window staff see none."""
    access = AccessService(db)
    principal = await _staff(access, db, staff_no)
    halls = {"a1": organisation.hall_a1, "a": organisation.hall_a, "b": organisation.hall_b}
    allowed = set()
    for code, hall_id in halls.items():
        try:
            await access.authorize(principal, f"presence:{hall_id}")
        except Forbidden:
            continue
        allowed.add(code)
    assert allowed == halls_allowed


async def test_devices_and_the_public_never_see_presence(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """Presence is refused to a device of the hall and to the public."""
    access = AccessService(db)
    created = await auth.register_device(db, SYSTEM, organisation.hall_a1, "kiosk", "k")
    device = await access.authenticate(created.token, "kiosk")
    for principal in (device, PUBLIC):
        with pytest.raises(Forbidden):
            await access.authorize(principal, f"presence:{organisation.hall_a1}")


async def test_staff_and_device_topics_belong_to_their_owner_only(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """staff:<id> is for that staff member, device:<id> for that device; admins included."""
    access = AccessService(db)
    clerk = await _staff(access, db, "clerk_a1")
    admin = await _staff(access, db, "root_admin")
    created = await auth.register_device(db, SYSTEM, organisation.hall_a1, "kiosk", "k")
    device = await access.authenticate(created.token, "kiosk")
    await access.authorize(clerk, f"staff:{organisation.staff['clerk_a1']}")
    await access.authorize(device, f"device:{created.device.id}")
    for principal, topic in [
        (admin, f"staff:{organisation.staff['clerk_a1']}"),
        (PUBLIC, f"staff:{organisation.staff['clerk_a1']}"),
        (device, f"staff:{organisation.staff['clerk_a1']}"),
        (clerk, f"device:{created.device.id}"),
        (admin, f"device:{created.device.id}"),
        (device, f"device:{created.device.id + 1}"),
    ]:
        with pytest.raises(Forbidden):
            await access.authorize(principal, topic)


async def test_hall_places_are_cached_until_forgotten(db: asyncpg.Pool, organisation: Org) -> None:
    """A cached hall answers without the database; forget_hall reloads it."""
    access = AccessService(db)
    first = await access.hall(organisation.hall_a1)
    await db.execute(
        'UPDATE "window" SET department_id = NULL WHERE hall_id = $1', organisation.hall_a1
    )
    assert await access.hall(organisation.hall_a1) == first
    access.forget_hall(organisation.hall_a1)
    assert (await access.hall(organisation.hall_a1)).department_ids == ()
