"""``GET /api/speech/call.wav`` through the real app: public WAV audio of announcement
sentences only, problems with field paths for bad numbers, 503 without a synthesizer."""

from __future__ import annotations

import struct

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from hub.app import create_app
from hub.config import load_settings
from hub.runtime import Hub
from tests.hub.api.conftest import Client, assert_problem, error_fields, make_app

URL = "/api/speech/call.wav"


def wav_duration(wav: bytes) -> float:
    """Seconds of a PCM WAV whose RIFF size matches its length."""
    assert wav[:4] == b"RIFF"
    assert wav[8:12] == b"WAVE"
    assert struct.unpack_from("<I", wav, 4)[0] == len(wav) - 8
    byte_rate = struct.unpack_from("<I", wav, 28)[0]
    return (len(wav) - 44) / byte_rate


async def test_a_call_is_public_wav_audio_cached_for_a_day(client: Client) -> None:
    """No token needed; audio/wav, cacheable, with its duration in a header."""
    response = await client.get(URL, params={"ticket": "A001", "window": 3})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["cache-control"] == "public, max-age=86400"
    duration = wav_duration(response.content)
    assert float(response.headers["x-audio-duration"]) == pytest.approx(duration, abs=0.001)
    assert duration > 1.0


async def test_the_same_call_twice_runs_the_synthesizer_once(client: Client) -> None:
    """The second display gets the cached audio, byte for byte."""
    hub: Hub = client.app.state.hub
    assert hub.speech is not None
    first = await client.get(URL, params={"ticket": "B012", "window": 7})
    second = await client.get(URL, params={"ticket": "B012", "window": 7})
    assert second.content == first.content
    assert hub.speech.spawned == 1


async def test_a_recall_is_another_sentence(client: Client) -> None:
    """kind=recall speaks 再次: longer audio than the call."""
    call = await client.get(URL, params={"ticket": "A001", "window": 3})
    recall = await client.get(URL, params={"ticket": "A001", "window": 3, "kind": "recall"})
    assert recall.status_code == 200
    assert wav_duration(recall.content) > wav_duration(call.content)


async def test_no_other_text_can_be_spoken(client: Client) -> None:
    """A text parameter changes nothing: only the announcement sentence is synthesized."""
    hub: Hub = client.app.state.hub
    assert hub.speech is not None
    plain = await client.get(URL, params={"ticket": "A001", "window": 3})
    sneaky = await client.get(URL, params={"ticket": "A001", "window": 3, "text": "你好"})
    assert sneaky.content == plain.content
    assert hub.speech.spawned == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"ticket": "a001", "window": "3"}, "query.ticket"),
        ({"ticket": "A1", "window": "3"}, "query.ticket"),
        ({"ticket": "A001号到9号窗口", "window": "3"}, "query.ticket"),
        ({"window": "3"}, "query.ticket"),
        ({"ticket": "A001", "window": "0"}, "query.window"),
        ({"ticket": "A001", "window": "1000"}, "query.window"),
        ({"ticket": "A001", "window": "三"}, "query.window"),
        ({"ticket": "A001"}, "query.window"),
        ({"ticket": "A001", "window": "3", "kind": "skip"}, "query.kind"),
    ],
)
async def test_bad_numbers_are_problems_naming_the_query_field(
    client: Client, params: dict[str, str], field: str
) -> None:
    """422 invalid_input with the offending query parameter, and no synthesis."""
    hub: Hub = client.app.state.hub
    assert hub.speech is not None
    problem = assert_problem(await client.get(URL, params=params), 422, "invalid_input")
    assert error_fields(problem) == [field]
    assert hub.speech.spawned == 0


async def test_without_a_synthesizer_the_audio_is_503(db: asyncpg.Pool, database_url: str) -> None:
    """A hub without espeak-ng still starts; the audio is a speech_unavailable problem."""
    settings = load_settings(
        environ={},
        database_url=database_url,
        http_port=0,
        gateway_port=0,
        db_pool_min=1,
        db_pool_max=2,
        speech_command="/nonexistent/espeak-ng",
    )
    async with AsyncTestClient(create_app(settings)) as client:
        response = await client.get(URL, params={"ticket": "A001", "window": 3})
        problem = assert_problem(response, 503, "speech_unavailable")
        assert "cannot start the speech synthesizer" in problem["detail"]


async def test_the_audio_counts_against_the_public_rate(database_url: str, db: asyncpg.Pool):
    """Public and rate-limited per address, as the other public endpoints."""
    async with AsyncTestClient(make_app(database_url, rate=2)) as client:
        for _ in range(2):
            response = await client.get(URL, params={"ticket": "A001", "window": 3})
            assert response.status_code == 200
        response = await client.get(URL, params={"ticket": "A001", "window": 3})
        assert_problem(response, 429, "rate_limited")
        assert int(response.headers["retry-after"]) >= 1
