"""The notification outbox (H6, Q8): SMS that is neither lost nor sent twice.

Enqueue in the transaction of the cause::

    async with events.transaction() as tx:
        ...  # the ticket moves up
        await notify.enqueue(tx.conn, notify.turn_near(ticket_id=t.id, ticket_number="A001",
                                                       ahead=2, phone=t.phone, hall_id=t.hall_id))

A notification row exists if and only if its cause committed; its ``key`` (one per cause,
``turn_near:<ticket_id>``) makes enqueueing it again a no-op. The leader job
``notify_dispatch`` runs :meth:`Dispatcher.drain` (:meth:`~Dispatcher.run_once` while batches
are full) every ``notify_period_seconds``:

1. **Claim**: due rows (``pending`` whose ``next_attempt_at`` has come, or ``sending`` whose
   lease ran out) are taken with ``FOR UPDATE SKIP LOCKED``, set to ``sending`` with a lease
   and ``attempts + 1``, and committed. Two dispatchers never claim the same row at once.
2. **Send** each through the gateway with the row's key as idempotency key.
3. **Record**: ``sent`` (with the gateway's id), or back to ``pending`` after the backoff of
   hub/domain/notification.py, or ``failed`` (a permanent refusal, the last attempt, or past
   ``expires_at``). Retry and failure are written only if the row is still the claim this
   dispatcher made (same ``attempts``); ``sent`` always wins.

The guarantee: **nothing is lost** — a committed notification stays in PostgreSQL until the
gateway accepts it or it has failed for a recorded reason; a hub that dies after the claim
leaves the row ``sending`` and it is due again when the lease ends (a hub that stops
cleanly hands its unsettled claims back at once). **Nothing is sent twice**
— in the sense that the *gateway accepts each key once*: a row whose send outcome was lost
(crash, timeout after the gateway stored it) is sent again with the same key, and the gateway
answers 409 (already accepted), which counts as sent. The hub itself may therefore POST one
message more than once; a gateway that ignored ``Idempotency-Key`` could deliver it twice.

Without a configured gateway (``sms_gateway_url`` empty) the dispatcher sends nothing and
logs ``sms_disabled`` once; rows stay ``pending`` and go out once a gateway is configured
(rows past their ``expires_at`` then fail as ``expired``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Literal

import asyncpg
import msgspec
import structlog

from hub.domain import notification as rules
from hub.services.sms import SendResult, SmsGateway

log = structlog.get_logger("hub.services.notify")

Status = Literal["pending", "sending", "sent", "failed"]
Channel = Literal["sms"]

ERROR_EXPIRED = "expired"


class NotificationNew(msgspec.Struct, frozen=True, kw_only=True):
    """A notification to enqueue.

    Attributes:
        key: idempotency key, one per cause (``turn_near:<ticket_id>``).
        kind: what it is about (``turn_near``, ``appointment_reminder``, …).
        recipient: a mainland mobile number (normalised to its 11 digits on enqueue).
        body: the text without signature.
        hall_id: the hall it concerns, if any.
        not_before: send no earlier (a reminder for the morning); ``None``: at once.
        expires_at: not sent by then → ``failed`` with ``expired`` (a "your turn is near"
            message is useless an hour later); ``None``: no deadline.
    """

    key: str
    kind: str
    recipient: str
    body: str
    hall_id: int | None = None
    channel: Channel = "sms"
    not_before: datetime | None = None
    expires_at: datetime | None = None


class NotificationRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A row of the outbox."""

    id: int
    key: str
    channel: Channel
    kind: str
    hall_id: int | None
    recipient: str
    body: str
    status: Status
    attempts: int
    next_attempt_at: datetime | None
    lease_until: datetime | None
    expires_at: datetime | None
    last_error: str | None
    gateway_id: str | None
    created_at: datetime
    sent_at: datetime | None


_COLUMNS = (
    "id, key, channel, kind, hall_id, recipient, body, status, attempts, next_attempt_at, "
    "lease_until, expires_at, last_error, gateway_id, created_at, sent_at"
)


def turn_near(
    *,
    ticket_id: int,
    ticket_number: str,
    ahead: int,
    phone: str,
    hall_id: int,
    expires_at: datetime | None = None,
) -> NotificationNew:
    """The "your turn is near" message of one ticket (Q8); key ``turn_near:<ticket_id>``."""
    return NotificationNew(
        key=rules.turn_near_key(ticket_id),
        kind=rules.KIND_TURN_NEAR,
        recipient=phone,
        body=rules.turn_near_text(ticket_number, ahead),
        hall_id=hall_id,
        expires_at=expires_at,
    )


def appointment_reminder(
    *,
    appointment_id: int,
    day: date,
    start: time,
    group_name: str,
    hall_name: str,
    phone: str,
    hall_id: int,
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
) -> NotificationNew:
    """The reminder of one appointment; key ``appointment_reminder:<id>:<day>``. ``day`` and
    ``start`` are in the hall's time zone."""
    return NotificationNew(
        key=rules.appointment_reminder_key(appointment_id, day),
        kind=rules.KIND_APPOINTMENT_REMINDER,
        recipient=phone,
        body=rules.appointment_reminder_text(group_name, day, start, hall_name),
        hall_id=hall_id,
        not_before=not_before,
        expires_at=expires_at,
    )


async def enqueue(conn: asyncpg.Connection, new: NotificationNew) -> bool:
    """Add a notification to the outbox, in the caller's transaction.

    Call it on the connection of the transaction that commits the cause (``tx.conn``): the
    notification is then sent if and only if that transaction commits.

    Returns:
        True if the notification is new, False if one with this key exists (nothing changes).

    Raises:
        InvalidInput: a bad ``recipient``, ``key``, ``kind`` or ``body`` (``field`` names it).
    """
    recipient = rules.normalize_phone(new.recipient, field="recipient")
    rules.check_key(new.key)
    rules.check_kind(new.kind)
    rules.check_body(new.body)
    row_id = await conn.fetchval(
        """INSERT INTO notification
               (key, channel, kind, hall_id, recipient, body, next_attempt_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()), $8)
           ON CONFLICT (key) DO NOTHING
           RETURNING id""",
        new.key,
        new.channel,
        new.kind,
        new.hall_id,
        recipient,
        new.body,
        new.not_before,
        new.expires_at,
    )
    if row_id is not None:
        log.info(
            "notification_enqueued",
            key=new.key,
            kind=new.kind,
            hall=new.hall_id,
            to=rules.mask_phone(recipient),
        )
    return row_id is not None


async def get_notification(
    db: asyncpg.Pool | asyncpg.Connection, key: str
) -> NotificationRecord | None:
    """The outbox row of ``key``, if there is one."""
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM notification WHERE key = $1", key)
    return None if row is None else msgspec.convert(dict(row), NotificationRecord)


class _Claimed(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    key: str
    kind: str
    hall_id: int | None
    recipient: str
    body: str
    attempts: int
    expires_at: datetime | None


_CLAIM = """
WITH due AS (
    SELECT id FROM notification
    WHERE status IN ('pending', 'sending') AND next_attempt_at <= coalesce($1, now())
    ORDER BY next_attempt_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE notification n
SET status = 'sending',
    attempts = n.attempts + 1,
    lease_until = coalesce($1, now()) + make_interval(secs => $3),
    next_attempt_at = coalesce($1, now()) + make_interval(secs => $3)
FROM due
WHERE n.id = due.id
RETURNING n.id, n.key, n.kind, n.hall_id, n.recipient, n.body, n.attempts, n.expires_at
"""

_MARK_SENT = """
UPDATE notification
SET status = 'sent', sent_at = coalesce($3, now()), gateway_id = $2, last_error = NULL,
    next_attempt_at = NULL, lease_until = NULL
WHERE id = $1 AND status <> 'sent'
"""

_MARK_RETRY = """
UPDATE notification
SET status = 'pending', next_attempt_at = coalesce($4, now()) + make_interval(secs => $3),
    lease_until = NULL, last_error = $5
WHERE id = $1 AND status = 'sending' AND attempts = $2
"""

_MARK_FAILED = """
UPDATE notification
SET status = 'failed', next_attempt_at = NULL, lease_until = NULL, last_error = $3
WHERE id = $1 AND status = 'sending' AND attempts = $2
"""


class Dispatcher:
    """Sends due notifications through the SMS gateway (module docstring).

    Args:
        gateway: the SMS gateway; ``None``: SMS is disabled, rows wait.
        sign: put in front of every body (``【政务服务中心】``).
        batch: rows claimed per run.
        concurrency: sends in flight at once.
        lease_seconds: how long a claimed row belongs to this dispatcher; must exceed the
            time a batch can take (``ceil(batch / concurrency)`` gateway timeouts).
        clock: the current time for due dates, leases and backoff; ``None``: PostgreSQL's
            ``now()`` (one clock for all processes). Tests inject one to skip waits.
    """

    def __init__(
        self,
        gateway: SmsGateway | None,
        *,
        sign: str = rules.DEFAULT_SIGN,
        batch: int = 100,
        concurrency: int = 16,
        lease_seconds: float = 300.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if batch < 1 or concurrency < 1 or lease_seconds <= 0:
            raise ValueError("batch, concurrency and lease_seconds must be positive")
        self._gateway = gateway
        self._sign = sign
        self.batch = batch
        self._concurrency = concurrency
        self._lease = float(lease_seconds)
        self._clock = clock
        self._said_disabled = False

    def _now(self) -> datetime | None:
        return None if self._clock is None else self._clock()

    async def run_once(self, db: asyncpg.Pool | asyncpg.Connection) -> int:
        """Claim up to ``batch`` due notifications and settle each one.

        Args:
            db: a pool, or a connection outside a transaction (each claim and each outcome is
                committed on its own; inside a transaction they commit with it).

        Returns:
            The number of notifications claimed (0: nothing was due).
        """
        gateway = self._gateway
        if gateway is None:
            if not self._said_disabled:
                self._said_disabled = True
                waiting = await db.fetchval(
                    "SELECT count(*) FROM notification WHERE status IN ('pending', 'sending')"
                )
                log.warning("sms_disabled", waiting=waiting)
            return 0
        rows = await db.fetch(_CLAIM, self._now(), self.batch, self._lease)
        if not rows:
            return 0
        claimed = [msgspec.convert(dict(r), _Claimed) for r in rows]
        # A connection runs one query at a time; outcomes are few and short, so they take
        # turns on a pool too (and the batch never holds more than one extra connection).
        db_lock = asyncio.Lock()
        sends = asyncio.Semaphore(self._concurrency)

        settled: set[int] = set()

        async def settle(item: _Claimed) -> None:
            if item.expires_at is not None and await self._expired(db, db_lock, item):
                settled.add(item.id)
                return
            async with sends:
                result = await gateway.send(
                    item.key, item.recipient, rules.signed(self._sign, item.body)
                )
            async with db_lock:
                await self._record(db, item, result)
            settled.add(item.id)

        try:
            await asyncio.gather(*(settle(item) for item in claimed))
        except asyncio.CancelledError:
            # The hub is stopping: hand the unsettled claims back at once rather than let them
            # wait for their lease (a message that did reach the gateway gets 409 next time).
            # A process that dies without this leaves them to the lease.
            await self._release(db, [item for item in claimed if item.id not in settled])
            raise
        return len(claimed)

    async def drain(self, db: asyncpg.Pool | asyncpg.Connection, rounds: int = 4) -> int:
        """:meth:`run_once` again while it finds full batches, at most ``rounds`` times (so
        one job run moves a backlog faster without starving the other jobs).

        Returns:
            The number of notifications claimed in all.
        """
        total = 0
        for _ in range(rounds):
            claimed = await self.run_once(db)
            total += claimed
            if claimed < self.batch:
                break
        return total

    async def _release(self, db: asyncpg.Pool | asyncpg.Connection, items: list[_Claimed]) -> None:
        if not items:
            return
        try:
            await db.execute(
                """UPDATE notification n
                   SET status = 'pending', next_attempt_at = coalesce($3, now()),
                       lease_until = NULL
                   FROM unnest($1::bigint[], $2::integer[]) AS c (id, attempts)
                   WHERE n.id = c.id AND n.status = 'sending' AND n.attempts = c.attempts""",
                [item.id for item in items],
                [item.attempts for item in items],
                self._now(),
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("notification_release_failed", count=len(items), error=str(exc))
            return
        log.info("notification_released", count=len(items))

    async def _expired(
        self, db: asyncpg.Pool | asyncpg.Connection, db_lock: asyncio.Lock, item: _Claimed
    ) -> bool:
        async with db_lock:
            done = await db.fetchval(
                """UPDATE notification
                   SET status = 'failed', next_attempt_at = NULL, lease_until = NULL,
                       last_error = $3
                   WHERE id = $1 AND status = 'sending' AND attempts = $2
                     AND expires_at <= coalesce($4, now())
                   RETURNING id""",
                item.id,
                item.attempts,
                ERROR_EXPIRED,
                self._now(),
            )
        if done is not None:
            log.warning("notification_failed", **_context(item), error=ERROR_EXPIRED)
        return done is not None

    async def _record(
        self, db: asyncpg.Pool | asyncpg.Connection, item: _Claimed, result: SendResult
    ) -> None:
        if result.outcome == "sent":
            await db.execute(_MARK_SENT, item.id, result.gateway_id, self._now())
            log.info("notification_sent", **_context(item), gateway_id=result.gateway_id)
            return
        delay = rules.retry_delay(item.attempts) if result.outcome == "retry" else None
        if delay is None:
            await db.execute(_MARK_FAILED, item.id, item.attempts, result.error)
            log.warning("notification_failed", **_context(item), error=result.error)
            return
        await db.execute(_MARK_RETRY, item.id, item.attempts, delay, self._now(), result.error)
        log.info("notification_retry", **_context(item), error=result.error, delay=delay)


def _context(item: _Claimed) -> dict[str, object]:
    return {
        "key": item.key,
        "kind": item.kind,
        "hall": item.hall_id,
        "to": rules.mask_phone(item.recipient),
        "attempt": item.attempts,
    }
