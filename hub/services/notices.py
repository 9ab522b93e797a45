"""Hall notices (Q5): short texts that scroll on a hall's display until they expire.

Posting one writes the ``notice`` row, its audit row and the ``notice_posted`` event on
``hall:<hall_id>`` in one transaction (hub/services/events.py): the display hears of a notice
only once it is durable, and a rollback announces nothing. The event carries the notice's
public facts only (id, text, times): ``hall:`` topics are public, so no author appears in it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import asyncpg
import msgspec

from hub.domain.access import Place
from hub.domain.errors import InvalidInput
from hub.services import audit
from hub.services.events import EventWriter
from realtime.topics import topic

TEXT_MAX = 500
# A notice may live at most 30 days; one without a TTL stays until it is removed.
TTL_MAX_SECONDS = 30 * 24 * 3600
LIST_LIMIT = 200

EVENT_POSTED = "notice_posted"


class NoticeNew(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A notice to post: its text and, optionally, how many seconds it is shown."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=TEXT_MAX)]
    ttl_seconds: Annotated[int, msgspec.Meta(ge=1, le=TTL_MAX_SECONDS)] | None = None


class NoticeRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A stored notice, as staff see it."""

    id: int
    hall_id: int
    text: str
    created_by: int | None
    created_at: datetime
    expires_at: datetime | None


class NoticePosted(msgspec.Struct, frozen=True, kw_only=True):
    """The data of ``notice_posted`` on ``hall:<id>``: public facts, no personal data."""

    id: int
    text: str
    created_at: datetime
    expires_at: datetime | None


_COLUMNS = "id, hall_id, text, created_by, created_at, expires_at"


def public_notice(notice: NoticeRecord) -> NoticePosted:
    """What screens get of a notice: no author."""
    return NoticePosted(
        id=notice.id, text=notice.text, created_at=notice.created_at, expires_at=notice.expires_at
    )


async def post_notice(
    events: EventWriter, actor: audit.Actor, place: Place, new: NoticeNew
) -> NoticeRecord:
    """Store a notice for the hall of ``place``, audit it and announce it to the hall.

    Args:
        events: the hub's event writer (the transaction, then the announcement).
        actor: who posts, under which role and scope (already checked by the caller).
        place: the hall's place; ``place.hall_id`` must be set.
        new: the text and the optional time to live.

    Returns:
        The stored notice.

    Raises:
        InvalidInput: the text is only white space (field ``body.text``).
    """
    if not new.text.strip():
        raise InvalidInput("a notice needs some visible text", field="body.text")
    assert place.hall_id is not None, "a notice belongs to a hall"
    async with events.transaction() as tx:
        row = await tx.conn.fetchrow(
            f"""INSERT INTO notice (hall_id, text, created_by, expires_at)
                VALUES ($1, $2, $3, now() + make_interval(secs => $4::float8))
                RETURNING {_COLUMNS}""",
            place.hall_id,
            new.text,
            actor.staff_id,
            new.ttl_seconds,
        )
        notice = msgspec.convert(dict(row), NoticeRecord)
        await audit.record(
            tx.conn, actor, "notice.post", "notice", notice.id, place=place, after=notice
        )
        await tx.emit(topic("hall", notice.hall_id), EVENT_POSTED, public_notice(notice))
    return notice


async def current_notices(
    db: asyncpg.Pool | asyncpg.Connection, hall_id: int
) -> list[NoticeRecord]:
    """The hall's notices that have not expired, newest first (at most ``LIST_LIMIT``)."""
    rows = await db.fetch(
        f"""SELECT {_COLUMNS} FROM notice
            WHERE hall_id = $1 AND (expires_at IS NULL OR expires_at > now())
            ORDER BY created_at DESC, id DESC LIMIT {LIST_LIMIT}""",
        hall_id,
    )
    return [msgspec.convert(dict(r), NoticeRecord) for r in rows]
