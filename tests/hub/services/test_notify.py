"""The notification outbox on real PostgreSQL, sending to the test SMS gateway as a separate
process. Waiting for a retry or a lease is skipped with an injected clock, never slept."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import pytest
from structlog.testing import capture_logs

from hub.domain.errors import InvalidInput
from hub.services import notify
from hub.services.notify import Dispatcher, NotificationNew
from hub.services.sms import HttpSmsGateway
from storage.pool import create_pool
from tests.e2e.processes import until
from tests.factories import make_hall
from tests.realtime.peers import hubs
from tests.support.sms_gateway import ROOT, SmsGatewayProcess, running_gateway

PHONE = "13812341234"
LEASE = 300.0


class Clock:
    """The real time plus an offset that tests move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
async def sms_gateway() -> AsyncIterator[SmsGatewayProcess]:
    async with running_gateway() as gateway:
        yield gateway


@pytest.fixture
async def adapter(sms_gateway: SmsGatewayProcess) -> AsyncIterator[HttpSmsGateway]:
    client = HttpSmsGateway(sms_gateway.url, sms_gateway.api_key, timeout=2.0)
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dispatcher(adapter: HttpSmsGateway, clock: Clock) -> Dispatcher:
    return Dispatcher(adapter, clock=clock, lease_seconds=LEASE)


@pytest.fixture
async def hall_id(db: asyncpg.Pool) -> int:
    return (await make_hall(db)).hall_id


def turn_near(
    hall_id: int, ticket_id: int = 1, phone: str = PHONE, **more: object
) -> NotificationNew:
    return notify.turn_near(
        ticket_id=ticket_id,
        ticket_number=f"A{ticket_id:03d}",
        ahead=2,
        phone=phone,
        hall_id=hall_id,
        **more,  # type: ignore[arg-type]
    )


async def enqueue(db: asyncpg.Pool, new: NotificationNew) -> bool:
    """Enqueue in a transaction of its own, as a cause's transaction would."""
    async with db.acquire() as conn, conn.transaction():
        return await notify.enqueue(conn, new)


async def status_of(db: asyncpg.Pool, key: str) -> notify.NotificationRecord:
    record = await notify.get_notification(db, key)
    assert record is not None
    return record


async def test_enqueueing_one_key_twice_keeps_one_row(db: asyncpg.Pool, hall_id: int):
    """The key is the idempotency key: the second enqueue changes nothing."""
    assert await enqueue(db, turn_near(hall_id)) is True
    other_text = NotificationNew(key="turn_near:1", kind="turn_near", recipient=PHONE, body="x")
    assert await enqueue(db, other_text) is False
    assert await db.fetchval("SELECT count(*) FROM notification") == 1
    record = await status_of(db, "turn_near:1")
    assert (record.status, record.attempts, record.body) == (
        "pending",
        0,
        "您的A001号前面还有2位，请到大厅等候叫号。",
    )


async def test_a_notification_of_a_rolled_back_cause_does_not_exist(db: asyncpg.Pool, hall_id: int):
    """Enqueued in the cause's transaction: a rollback takes the notification with it."""
    with pytest.raises(RuntimeError):
        async with db.acquire() as conn, conn.transaction():
            assert await notify.enqueue(conn, turn_near(hall_id)) is True
            raise RuntimeError("the cause fails")
    assert await db.fetchval("SELECT count(*) FROM notification") == 0


@pytest.mark.parametrize("phone", ["1381234123", "12812341234", "+85291234567", ""])
async def test_an_invalid_number_is_refused_naming_the_field(
    db: asyncpg.Pool, hall_id: int, phone: str
):
    with pytest.raises(InvalidInput) as caught:
        await enqueue(db, turn_near(hall_id, phone=phone))
    assert caught.value.field == "recipient"
    assert await db.fetchval("SELECT count(*) FROM notification") == 0


async def test_a_formatted_number_is_stored_as_11_digits(db: asyncpg.Pool, hall_id: int):
    await enqueue(db, turn_near(hall_id, phone="+86 138-1234-1234"))
    assert (await status_of(db, "turn_near:1")).recipient == PHONE


async def test_the_dispatcher_sends_each_notification_once(
    db: asyncpg.Pool, hall_id: int, dispatcher: Dispatcher, sms_gateway: SmsGatewayProcess
):
    """Sent with the signature in front; the row is sent with the gateway's id; a second run
    finds nothing to do."""
    await enqueue(db, turn_near(hall_id))
    reminder = notify.appointment_reminder(
        appointment_id=7,
        day=date(2026, 5, 20),
        start=time(9, 30),
        group_name="户籍",
        hall_name="城东政务服务中心",
        phone="13900001111",
        hall_id=hall_id,
    )
    await enqueue(db, reminder)
    assert await dispatcher.run_once(db) == 2
    assert await dispatcher.run_once(db) == 0
    messages = {m.key: m for m in await sms_gateway.messages()}
    assert (
        messages["turn_near:1"].text == "【政务服务中心】您的A001号前面还有2位，请到大厅等候叫号。"
    )
    assert messages["turn_near:1"].to == PHONE
    assert messages["appointment_reminder:7:2026-05-20"].text == (
        "【政务服务中心】您预约的户籍业务将于2026年5月20日 09:30开始，"
        "请按时到城东政务服务中心签到取号。"
    )
    record = await status_of(db, "turn_near:1")
    assert record.status == "sent" and record.attempts == 1
    assert record.gateway_id == messages["turn_near:1"].id
    assert record.sent_at is not None and record.next_attempt_at is None
    assert (await sms_gateway.stats()).posts == 2


async def test_gateway_failures_are_retried_with_backoff_then_sent_once(
    db: asyncpg.Pool,
    hall_id: int,
    dispatcher: Dispatcher,
    sms_gateway: SmsGatewayProcess,
    clock: Clock,
):
    """Two 503s: pending again after 10 s, then 20 s; the third attempt is sent."""
    await enqueue(db, turn_near(hall_id))
    await sms_gateway.fail(2)
    assert await dispatcher.run_once(db) == 1
    record = await status_of(db, "turn_near:1")
    assert (record.status, record.attempts) == ("pending", 1)
    assert record.last_error is not None and record.last_error.startswith("http 503")
    assert await dispatcher.run_once(db) == 0  # not due for 10 s
    clock.advance(10)
    assert await dispatcher.run_once(db) == 1
    assert (await status_of(db, "turn_near:1")).attempts == 2
    clock.advance(10)
    assert await dispatcher.run_once(db) == 0  # the second delay is 20 s
    clock.advance(10)
    assert await dispatcher.run_once(db) == 1
    record = await status_of(db, "turn_near:1")
    assert (record.status, record.attempts, record.last_error) == ("sent", 3, None)
    assert len(await sms_gateway.messages()) == 1
    assert (await sms_gateway.stats()).posts == 3


async def test_a_refused_message_fails_and_is_not_retried(
    db: asyncpg.Pool,
    hall_id: int,
    dispatcher: Dispatcher,
    sms_gateway: SmsGatewayProcess,
    clock: Clock,
):
    await enqueue(db, turn_near(hall_id))
    await sms_gateway.fail(1, status=400)
    assert await dispatcher.run_once(db) == 1
    record = await status_of(db, "turn_near:1")
    assert record.status == "failed" and record.next_attempt_at is None
    assert record.last_error is not None and record.last_error.startswith("http 400")
    clock.advance(24 * 3600)
    assert await dispatcher.run_once(db) == 0
    assert (await sms_gateway.stats()).posts == 1


async def test_after_the_last_attempt_a_notification_has_failed(
    db: asyncpg.Pool,
    hall_id: int,
    dispatcher: Dispatcher,
    sms_gateway: SmsGatewayProcess,
    clock: Clock,
):
    await enqueue(db, turn_near(hall_id))
    await sms_gateway.fail(100)
    for _ in range(8):
        assert await dispatcher.run_once(db) == 1
        clock.advance(600)
    assert await dispatcher.run_once(db) == 0
    record = await status_of(db, "turn_near:1")
    assert (record.status, record.attempts) == ("failed", 8)
    assert (await sms_gateway.stats()).posts == 8


async def test_a_send_cut_short_by_a_crash_is_sent_again_and_stored_once(
    db: asyncpg.Pool,
    database_url: str,
    hall_id: int,
    dispatcher: Dispatcher,
    sms_gateway: SmsGatewayProcess,
    clock: Clock,
):
    """A dispatcher process is SIGKILLed after the gateway stored the message but before it
    answered: the row stays ``sending``; when its lease ends it is sent again with the same
    key, the gateway answers 409, and the row is sent while the gateway holds one message."""
    await enqueue(db, turn_near(hall_id))
    await sms_gateway.stall(1, seconds=30)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.dispatch_once",
        database_url,
        sms_gateway.url,
        sms_gateway.api_key,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:

        async def stored() -> bool:
            return (await sms_gateway.stats()).stored == 1

        await until(stored, what="the gateway stored the message")
    finally:
        process.kill()
        await process.wait()
    record = await status_of(db, "turn_near:1")
    assert (record.status, record.attempts) == ("sending", 1)

    assert await dispatcher.run_once(db) == 0  # the dead process's lease still holds
    clock.advance(300 + 1)  # the default lease
    assert await dispatcher.run_once(db) == 1
    record = await status_of(db, "turn_near:1")
    assert (record.status, record.attempts, record.gateway_id) == ("sent", 2, "m1")
    assert len(await sms_gateway.messages()) == 1
    assert (await sms_gateway.stats()).posts == 2


async def test_a_stopping_dispatcher_hands_its_claims_back(
    db: asyncpg.Pool,
    hall_id: int,
    dispatcher: Dispatcher,
    sms_gateway: SmsGatewayProcess,
):
    """Cancelled mid-send (the hub stops): the claim is released at once, not after the
    lease; the next run sends again, and the gateway still stores the message once."""
    await enqueue(db, turn_near(hall_id))
    await sms_gateway.stall(1, seconds=30)
    slow = HttpSmsGateway(sms_gateway.url, sms_gateway.api_key, timeout=60)
    stopping = Dispatcher(slow, lease_seconds=LEASE)
    run = asyncio.create_task(stopping.run_once(db))

    async def stored() -> bool:
        return (await sms_gateway.stats()).stored == 1

    await until(stored, what="the gateway stored the message")
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    await slow.aclose()
    record = await status_of(db, "turn_near:1")
    assert (record.status, record.attempts, record.lease_until) == ("pending", 1, None)

    assert await dispatcher.run_once(db) == 1  # due at once, no lease to wait for
    record = await status_of(db, "turn_near:1")
    assert (record.status, record.attempts, record.gateway_id) == ("sent", 2, "m1")
    assert len(await sms_gateway.messages()) == 1


async def test_a_lost_answer_is_retried_and_the_message_stored_once(
    db: asyncpg.Pool, hall_id: int, sms_gateway: SmsGatewayProcess, clock: Clock
):
    """A timeout after the gateway stored the message: retry, 409, sent."""
    await enqueue(db, turn_near(hall_id))
    await sms_gateway.stall(1, seconds=3)
    impatient = HttpSmsGateway(sms_gateway.url, sms_gateway.api_key, timeout=0.3)
    try:
        sender = Dispatcher(impatient, clock=clock)
        assert await sender.run_once(db) == 1
        record = await status_of(db, "turn_near:1")
        assert (record.status, record.last_error) == ("pending", "timeout")
        clock.advance(10)
        assert await sender.run_once(db) == 1
    finally:
        await impatient.aclose()
    assert (await status_of(db, "turn_near:1")).status == "sent"
    assert len(await sms_gateway.messages()) == 1


async def test_two_dispatchers_at_once_send_every_message_once(
    db: asyncpg.Pool, database_url: str, hall_id: int, sms_gateway: SmsGatewayProcess
):
    """Two dispatchers (as in two processes: own pools, own HTTP clients) drain one outbox:
    each row is claimed by one of them, so the gateway receives each key exactly once."""
    for ticket in range(1, 41):
        await enqueue(db, turn_near(hall_id, ticket_id=ticket))
    await sms_gateway.stall(10, seconds=0.1)  # slow sends: the two runs overlap
    pools = [await create_pool(database_url, min_size=1, max_size=3) for _ in range(2)]
    gateways = [HttpSmsGateway(sms_gateway.url, sms_gateway.api_key, timeout=5) for _ in range(2)]
    try:
        dispatchers = [Dispatcher(g, batch=5, concurrency=3) for g in gateways]

        async def drain(dispatcher: Dispatcher, pool: asyncpg.Pool) -> int:
            claimed = 0
            while found := await dispatcher.run_once(pool):
                claimed += found
            return claimed

        counts = await asyncio.gather(
            *(drain(d, p) for d, p in zip(dispatchers, pools, strict=True))
        )
    finally:
        for gateway in gateways:
            await gateway.aclose()
        for pool in pools:
            await pool.close()
    assert sum(counts) == 40 and min(counts) > 0
    stats = await sms_gateway.stats()
    assert (stats.posts, stats.stored) == (40, 40)
    assert await db.fetchval("SELECT count(*) FROM notification WHERE status = 'sent'") == 40


async def test_an_expired_notification_fails_unsent(
    db: asyncpg.Pool, hall_id: int, dispatcher: Dispatcher, sms_gateway: SmsGatewayProcess
):
    """A "your turn is near" message that could not go out in time is not sent late."""
    await enqueue(db, turn_near(hall_id, expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert await dispatcher.run_once(db) == 1
    record = await status_of(db, "turn_near:1")
    assert (record.status, record.last_error) == ("failed", notify.ERROR_EXPIRED)
    assert (await sms_gateway.stats()).posts == 0


async def test_a_notification_waits_for_its_not_before_time(
    db: asyncpg.Pool,
    hall_id: int,
    dispatcher: Dispatcher,
    sms_gateway: SmsGatewayProcess,
    clock: Clock,
):
    later = datetime.now(UTC) + timedelta(hours=12)
    reminder = notify.appointment_reminder(
        appointment_id=7,
        day=date(2026, 5, 20),
        start=time(9, 30),
        group_name="户籍",
        hall_name="城东政务服务中心",
        phone=PHONE,
        hall_id=hall_id,
        not_before=later,
    )
    await enqueue(db, reminder)
    assert await dispatcher.run_once(db) == 0
    clock.advance(12 * 3600 + 1)
    assert await dispatcher.run_once(db) == 1
    assert len(await sms_gateway.messages()) == 1


async def test_without_a_gateway_notifications_wait_and_it_is_said_once(
    db: asyncpg.Pool, hall_id: int
):
    """SMS disabled: nothing is sent, nothing is dropped; one warning for the operator."""
    await enqueue(db, turn_near(hall_id))
    disabled = Dispatcher(None)
    with capture_logs() as logs:
        assert await disabled.run_once(db) == 0
        assert await disabled.run_once(db) == 0
    assert [e["event"] for e in logs if e["event"] == "sms_disabled"] == ["sms_disabled"]
    assert next(e for e in logs if e["event"] == "sms_disabled")["waiting"] == 1
    record = await status_of(db, "turn_near:1")
    assert (record.status, record.attempts) == ("pending", 0)


async def test_the_hub_runs_the_dispatch_job(
    db: asyncpg.Pool, database_url: str, hall_id: int, sms_gateway: SmsGatewayProcess
):
    """With ``sms_gateway_url`` set, a started hub sends what is enqueued; stopping it closes
    its HTTP client."""
    async with hubs(database_url) as start:
        hub = await start(
            sms_gateway_url=sms_gateway.url,
            sms_api_key=sms_gateway.api_key,
            notify_period_seconds=0.1,
        )
        await enqueue(db, turn_near(hall_id))

        async def sent() -> bool:
            return (await status_of(db, "turn_near:1")).status == "sent"

        await until(sent, what="the hub sent the notification")
        assert hub.jobs is not None and hub.jobs.leads("notify_dispatch")
    assert hub.sms is None
    [message] = await sms_gateway.messages()
    assert message.text.startswith("【政务服务中心】您的A001号")
