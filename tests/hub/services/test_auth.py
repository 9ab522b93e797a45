"""Sign-in, sessions and device tokens on real PostgreSQL."""

from __future__ import annotations

import hashlib

import asyncpg
import pytest

from hub.domain.access import Grant
from hub.domain.errors import Conflict, NotFound, SignInFailed
from hub.services import audit, auth
from tests.hub.conftest import PASSWORD, SYSTEM, Org


async def test_sign_in_returns_a_token_whose_hash_alone_is_stored(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """The session row holds SHA-256 of the token, never the token."""
    session = await auth.sign_in(db, "clerk_a1", PASSWORD, hours=1)
    stored = await db.fetchval("SELECT token_hash FROM staff_session")
    assert stored == hashlib.sha256(session.token.encode()).digest()
    assert session.staff_id == organisation.staff["clerk_a1"]


async def test_a_session_carries_the_staff_members_grants(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """The principal of a session lists its grants."""
    session = await auth.sign_in(db, "manager_a1", PASSWORD, hours=1)
    principal = await auth.session_principal(db, session.token)
    assert principal is not None
    assert principal.id == f"staff:{organisation.staff['manager_a1']}"
    assert principal.grants == (Grant("hall_manager", "hall", organisation.hall_a1),)


@pytest.mark.parametrize(("staff_no", "password"), [("clerk_a1", "wrong"), ("nobody", PASSWORD)])
async def test_a_wrong_password_and_an_unknown_staff_no_fail_alike(
    db: asyncpg.Pool, organisation: Org, staff_no: str, password: str
) -> None:
    """Both raise SignInFailed with the same message."""
    with pytest.raises(SignInFailed, match="wrong staff number or password"):
        await auth.sign_in(db, staff_no, password, hours=1)


async def test_an_inactive_account_cannot_sign_in(db: asyncpg.Pool, organisation: Org) -> None:
    """A deactivated staff member is refused although the password is right."""
    await db.execute("UPDATE staff SET active = false WHERE staff_no = 'clerk_a1'")
    with pytest.raises(SignInFailed):
        await auth.sign_in(db, "clerk_a1", PASSWORD, hours=1)


async def test_sign_out_revokes_the_session_and_is_audited(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """After sign-out the token no longer resolves; both steps have audit rows."""
    session = await auth.sign_in(db, "clerk_a1", PASSWORD, hours=1)
    assert await auth.sign_out(db, session.token)
    assert await auth.session_principal(db, session.token) is None
    assert not await auth.sign_out(db, session.token)
    rows = await audit.query(db, None, audit.AuditQuery(action="session."))
    assert [r.action for r in rows] == ["session.sign_out", "session.sign_in"]


async def test_an_expired_session_does_not_resolve(db: asyncpg.Pool, organisation: Org) -> None:
    """A session past its expiry is refused."""
    session = await auth.sign_in(db, "clerk_a1", PASSWORD, hours=1)
    await db.execute("UPDATE staff_session SET expires_at = now() - interval '1 second'")
    assert await auth.session_principal(db, session.token) is None


async def test_a_device_token_is_256_random_bits_stored_as_sha256(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """The token decodes to 32 bytes; the device row holds its SHA-256."""
    created = await auth.register_device(
        db, audit.Actor.system("cli"), organisation.hall_a1, "ticket_machine", "取号机1"
    )
    assert len(created.token) == 43  # token_urlsafe(32): 32 bytes in base64url
    stored = await db.fetchval("SELECT token_hash FROM device WHERE id = $1", created.device.id)
    assert stored == hashlib.sha256(created.token.encode()).digest()
    principal = await auth.device_by_token(db, created.token)
    assert principal is not None
    assert principal.hall_id == organisation.hall_a1
    assert principal.device_kind == "ticket_machine"


async def test_a_cli_registration_is_audited_under_the_cli_label(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """The audit row of `hallhub device add` names the actor "cli" without a staff id."""
    created = await auth.register_device(
        db, audit.Actor.system("cli"), organisation.hall_b, "evaluator", "pad"
    )
    [row] = await audit.query(db, None, audit.AuditQuery(actor="cli"))
    assert (row.action, row.actor_id, row.target_id) == (
        "device.register",
        None,
        str(created.device.id),
    )
    assert "token" not in row.after


async def test_a_revoked_device_token_no_longer_resolves(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """Revoking twice is a conflict; the token is dead after the first."""
    created = await auth.register_device(db, SYSTEM, organisation.hall_a1, "kiosk", "k")
    revoked = await auth.revoke_device(db, SYSTEM, created.device.id)
    assert revoked.revoked_at is not None
    assert await auth.device_by_token(db, created.token) is None
    with pytest.raises(Conflict):
        await auth.revoke_device(db, SYSTEM, created.device.id)


async def test_registering_in_a_missing_hall_is_not_found(db: asyncpg.Pool) -> None:
    """No device is created for a hall that does not exist."""
    with pytest.raises(NotFound):
        await auth.register_device(db, SYSTEM, 404, "kiosk", "k")
