"""The HTTP SMS gateway adapter against the test gateway running as a separate process."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from hub.config import ConfigError, load_settings
from hub.services.sms import HttpSmsGateway, SendResult
from tests.support.sms_gateway import SmsGatewayProcess, running_gateway

TEXT = "【政务服务中心】您的A001号前面还有2位，请到大厅等候叫号。"


@pytest.fixture
async def sms_gateway() -> AsyncIterator[SmsGatewayProcess]:
    async with running_gateway() as gateway:
        yield gateway


@pytest.fixture
async def adapter(sms_gateway: SmsGatewayProcess) -> AsyncIterator[HttpSmsGateway]:
    client = HttpSmsGateway(sms_gateway.url, sms_gateway.api_key, timeout=2.0)
    yield client
    await client.aclose()


async def test_an_accepted_message_is_sent_with_the_gateways_id(
    sms_gateway: SmsGatewayProcess, adapter: HttpSmsGateway
):
    """2xx: sent; the gateway stored the key, number and text (UTF-8 Chinese intact)."""
    result = await adapter.send("turn_near:1", "13812341234", TEXT)
    assert result == SendResult(outcome="sent", gateway_id="m1")
    [message] = await sms_gateway.messages()
    assert (message.key, message.to, message.text) == ("turn_near:1", "13812341234", TEXT)


async def test_a_key_sent_again_counts_as_sent_and_is_stored_once(
    sms_gateway: SmsGatewayProcess, adapter: HttpSmsGateway
):
    """409 from the gateway (the key was accepted before) is success, with the first id."""
    await adapter.send("turn_near:1", "13812341234", TEXT)
    again = await adapter.send("turn_near:1", "13812341234", TEXT)
    assert again == SendResult(outcome="sent", gateway_id="m1")
    assert len(await sms_gateway.messages()) == 1
    assert (await sms_gateway.stats()).posts == 2


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(503, "retry"), (500, "retry"), (429, "retry"), (400, "failed"), (422, "failed")],
)
async def test_statuses_map_to_retry_or_failure(
    sms_gateway: SmsGatewayProcess, adapter: HttpSmsGateway, status: int, outcome: str
):
    """5xx and 429 are worth another try; other 4xx refuse the message itself."""
    await sms_gateway.fail(1, status)
    result = await adapter.send("turn_near:1", "13812341234", TEXT)
    assert result.outcome == outcome
    assert result.error is not None and result.error.startswith(f"http {status}")
    assert await sms_gateway.messages() == []


async def test_a_wrong_api_key_is_a_permanent_failure(sms_gateway: SmsGatewayProcess):
    """401: retrying with the same key cannot help; the operator must fix the setting."""
    client = HttpSmsGateway(sms_gateway.url, "wrong-key", timeout=2.0)
    try:
        result = await client.send("turn_near:1", "13812341234", TEXT)
    finally:
        await client.aclose()
    assert result.outcome == "failed" and result.error is not None
    assert result.error.startswith("http 401")
    assert (await sms_gateway.stats()).stored == 0


async def test_a_timeout_is_retried_even_though_the_gateway_kept_the_message(
    sms_gateway: SmsGatewayProcess,
):
    """The answer was lost, not the message: the retry's 409 will settle it."""
    await sms_gateway.stall(1, seconds=3.0)
    client = HttpSmsGateway(sms_gateway.url, sms_gateway.api_key, timeout=0.3)
    try:
        assert await client.send("turn_near:1", "13812341234", TEXT) == SendResult(
            outcome="retry", error="timeout"
        )
        assert len(await sms_gateway.messages()) == 1
        assert await client.send("turn_near:1", "13812341234", TEXT) == SendResult(
            outcome="sent", gateway_id="m1"
        )
    finally:
        await client.aclose()


async def test_a_gateway_that_is_not_there_is_retried():
    """Connection refused: retry."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        client = HttpSmsGateway(f"http://127.0.0.1:{port}", "k", timeout=2.0)
        try:
            result = await client.send("turn_near:1", "13812341234", TEXT)
        finally:
            await client.aclose()
    assert result.outcome == "retry"
    assert result.error is not None and "ConnectError" in result.error


def test_the_url_must_be_http():
    with pytest.raises(ValueError):
        HttpSmsGateway("ftp://sms.example", "k")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"HALLHUB_SMS_GATEWAY_URL": "sms.example:8080"}, "HALLHUB_SMS_GATEWAY_URL"),
        ({"HALLHUB_SMS_TIMEOUT_SECONDS": "0"}, "HALLHUB_SMS_TIMEOUT_SECONDS"),
        ({"HALLHUB_NOTIFY_PERIOD_SECONDS": "-1"}, "HALLHUB_NOTIFY_PERIOD_SECONDS"),
    ],
)
def test_bad_sms_settings_are_named(environ: dict[str, str], message: str):
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)


def test_sms_is_off_by_default():
    settings = load_settings(environ={})
    assert (settings.sms_gateway_url, settings.sms_sign) == ("", "【政务服务中心】")
