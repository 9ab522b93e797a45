"""The ``hallhub`` command as an operator runs it: a real process on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from hub.services.auth import token_hash
from tests.factories import make_hall

HALLHUB = str(Path(sys.prefix) / "bin" / "hallhub")


def _run(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HALLHUB_")} | {
        "HALLHUB_DATABASE_URL": database_url,
        "HALLHUB_LOG_JSON": "true",
        **env,
    }
    return subprocess.run(
        [HALLHUB, *args], env=environ, capture_output=True, text=True, timeout=60, check=False
    )


def test_help_lists_every_command(database_url: str):
    """`hallhub --help` explains serve, demo, migrate, device and staff."""
    result = _run(database_url, "--help")
    assert result.returncode == 0
    for command in ("serve", "demo", "migrate", "device", "staff"):
        assert command in result.stdout


def test_migrate_is_idempotent_on_a_migrated_database(database_url: str):
    """Running `hallhub migrate` on an up-to-date database applies nothing and succeeds."""
    result = _run(database_url, "migrate")
    assert result.returncode == 0, result.stderr
    assert '"applied": []' in result.stderr


def test_an_invalid_setting_stops_with_one_line_naming_it(database_url: str):
    """A bad environment value is one line on stderr and exit status 2."""
    result = _run(database_url, "migrate", HALLHUB_HTTP_PORT="http")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "hallhub: invalid configuration: HALLHUB_HTTP_PORT: Expected `int`, got `str`"
    ]


async def test_device_add_prints_a_token_stored_only_as_its_hash(
    db: asyncpg.Pool, database_url: str
):
    """The printed token authenticates the device; the database holds only its SHA-256."""
    place = await make_hall(db)
    result = _run(
        database_url, "device", "add", "--hall", str(place.hall_id),
        "--kind", "ticket_machine", "--name", "一楼取号机",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    token = result.stdout.split("token (shown once): ")[1].strip()
    stored = await db.fetchrow("SELECT name, token_hash FROM device")
    assert stored["name"] == "一楼取号机"
    assert bytes(stored["token_hash"]) == token_hash(token)
    audit = await db.fetchrow("SELECT actor_label, action FROM audit_log")
    assert audit["actor_label"] == "cli"


async def test_staff_add_creates_an_account_with_its_grant(db: asyncpg.Pool, database_url: str):
    """The first admin of a region is made from the command line."""
    place = await make_hall(db)
    result = _run(
        database_url, "staff", "add", "--staff-no", "A0001", "--name", "李明",
        "--password", "long-enough-pw", "--role", "admin",
        "--scope-kind", "region", "--scope-id", str(place.city_id),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    grant = await db.fetchrow(
        "SELECT s.staff_no, g.role, g.scope_kind, g.scope_id FROM staff s "
        "JOIN role_grant g ON g.staff_id = s.id"
    )
    assert tuple(grant) == ("A0001", "admin", "region", place.city_id)
