"""SpeechService with the real espeak-ng (and small shell scripts standing in for a slow or
broken synthesizer): complete WAV files, one process per text, bounded and killed on time."""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path

import psutil
import pytest
from structlog.testing import capture_logs

from hub.domain.errors import InvalidInput, SpeechUnavailable
from hub.services.speech import SpeechService, SpeechSettings

CALL = "请A001号到3号窗口办理"


def script(folder: Path, name: str, body: str) -> str:
    """An executable ``/bin/sh`` script; returns its path."""
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def assert_complete_wav(wav: bytes) -> float:
    """A PCM WAV whose RIFF and data sizes match its length and whose samples are not all
    silence; returns its duration in seconds."""
    assert wav[:4] == b"RIFF"
    assert wav[8:12] == b"WAVE"
    assert struct.unpack_from("<I", wav, 4)[0] == len(wav) - 8
    assert wav[12:16] == b"fmt "
    fmt_size, audio_format, channels, rate, byte_rate = struct.unpack_from("<IHHII", wav, 16)
    assert (audio_format, channels) == (1, 1)
    data_at = 20 + fmt_size
    assert wav[data_at : data_at + 4] == b"data"
    data_size = struct.unpack_from("<I", wav, data_at + 4)[0]
    assert data_size == len(wav) - data_at - 8
    samples = wav[data_at + 8 :]
    assert any(samples)
    assert rate > 8000
    return data_size / byte_rate


async def test_a_call_becomes_a_complete_wav_file():
    """espeak-ng's streamed header placeholders are replaced by the real sizes."""
    speech = SpeechService()
    result = await speech.synthesize(CALL)
    duration = assert_complete_wav(result.wav)
    assert result.text == CALL
    assert result.duration_seconds == pytest.approx(duration)
    assert 1.0 < duration < 10.0
    assert speech.spawned == 1


async def test_a_faster_speed_gives_shorter_audio():
    """The configured words per minute reach espeak-ng."""
    slow = await SpeechService(SpeechSettings(speed=120)).synthesize(CALL)
    fast = await SpeechService(SpeechSettings(speed=300)).synthesize(CALL)
    assert fast.duration_seconds < slow.duration_seconds * 0.6


async def test_a_cached_text_starts_no_second_process():
    """The second request for a text is answered from memory, byte for byte."""
    speech = SpeechService()
    first = await speech.synthesize(CALL)
    second = await speech.synthesize(CALL)
    assert second == first
    assert (speech.spawned, speech.cache_hits) == (1, 1)
    assert speech.cached_bytes == len(first.wav)


async def test_concurrent_requests_for_one_text_share_one_process():
    """Five displays asking for the same call at once start one espeak-ng."""
    speech = SpeechService()
    results = await asyncio.gather(*(speech.synthesize(CALL) for _ in range(5)))
    assert speech.spawned == 1
    assert all(r is results[0] for r in results)


async def test_the_least_recently_used_audio_leaves_a_full_cache():
    """With room for one text, a second text evicts the first, which is then made again."""
    probe = await SpeechService().synthesize(CALL)
    speech = SpeechService(SpeechSettings(cache_bytes=len(probe.wav) + 1000))
    await speech.synthesize(CALL)
    other = await speech.synthesize("请A002号到4号窗口办理")
    assert speech.cached_bytes == len(other.wav)
    await speech.synthesize(CALL)
    assert speech.spawned == 3
    assert speech.cache_hits == 0


async def test_no_more_than_concurrency_processes_run_at_once(tmp_path: Path):
    """Six different texts at once, concurrency 2: never three processes at the same time."""
    log = tmp_path / "runs.log"
    command = script(
        tmp_path,
        "espeak-slow",
        f'echo start >> {log}\nsleep 0.2\nespeak-ng "$@"\nstatus=$?\necho end >> {log}\n'
        "exit $status",
    )
    speech = SpeechService(SpeechSettings(command=command, concurrency=2))
    texts = [f"请A00{n}号到{n}号窗口办理" for n in range(1, 7)]
    results = await asyncio.gather(*(speech.synthesize(t) for t in texts))
    for result in results:
        assert_complete_wav(result.wav)
    running, most = 0, 0
    for line in log.read_text().split():
        running += 1 if line == "start" else -1
        most = max(most, running)
    assert most == 2
    assert speech.spawned == 6


async def test_a_missing_program_is_speech_unavailable(tmp_path: Path):
    """No espeak-ng: a clear SpeechUnavailable, logged once as the service goes offline."""
    speech = SpeechService(SpeechSettings(command=str(tmp_path / "espeak-ng")))
    with capture_logs() as logs:
        assert speech.check() is False
        for _ in range(2):
            with pytest.raises(SpeechUnavailable, match="cannot start the speech synthesizer"):
                await speech.synthesize(CALL)
    assert speech.spawned == 0
    assert [e["event"] for e in logs] == ["speech_unavailable", "speech_offline"]


async def test_a_failing_synthesizer_reports_its_error_and_recovers(tmp_path: Path):
    """An unknown voice fails with espeak-ng's message; a working run logs speech_online."""
    broken = SpeechService(SpeechSettings(voice="nosuchvoice"))
    with pytest.raises(SpeechUnavailable, match="voice does not exist"):
        await broken.synthesize(CALL)

    flag = tmp_path / "fail"
    flag.touch()
    command = script(tmp_path, "espeak-flaky", f'[ -e {flag} ] && exit 3\nexec espeak-ng "$@"')
    speech = SpeechService(SpeechSettings(command=command))
    with capture_logs() as logs:
        with pytest.raises(SpeechUnavailable, match="exit 3"):
            await speech.synthesize(CALL)
        flag.unlink()
        assert_complete_wav((await speech.synthesize(CALL)).wav)
    assert [e["event"] for e in logs if e["log_level"] != "debug"] == [
        "speech_offline",
        "speech_online",
    ]


async def test_a_synthesizer_that_gives_no_audio_is_refused(tmp_path: Path):
    """Output that is not a WAV file is never served."""
    command = script(tmp_path, "espeak-text", "cat")
    with pytest.raises(SpeechUnavailable, match="no WAV audio"):
        await SpeechService(SpeechSettings(command=command)).synthesize(CALL)


async def test_a_slow_synthesizer_is_killed_at_the_timeout(tmp_path: Path):
    """Past timeout_seconds the process is killed and reaped, and the call fails."""
    pid_file = tmp_path / "pid"
    command = script(tmp_path, "espeak-stuck", f"echo $$ > {pid_file}\nexec sleep 30")
    speech = SpeechService(SpeechSettings(command=command, timeout_seconds=1.0))
    with pytest.raises(SpeechUnavailable, match=r"longer than 1 s"):
        await speech.synthesize(CALL)
    assert not psutil.pid_exists(int(pid_file.read_text()))


async def test_closing_the_service_kills_the_process_in_flight(tmp_path: Path):
    """Hub.stop() leaves no synthesizer behind."""
    # The script reports its pid through a FIFO: reading it waits until the process runs.
    fifo = tmp_path / "pid"
    os.mkfifo(fifo)
    command = script(tmp_path, "espeak-stuck", f"echo $$ > {fifo}\nexec sleep 30")
    speech = SpeechService(SpeechSettings(command=command, timeout_seconds=60))
    caller = asyncio.create_task(speech.synthesize(CALL))
    pid = int(await asyncio.wait_for(asyncio.to_thread(fifo.read_text), 10))
    await speech.close()
    assert not psutil.pid_exists(pid)
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_a_cancelled_caller_does_not_cancel_a_shared_synthesis():
    """One display gives up; the other still gets the audio from the same process."""
    speech = SpeechService()
    quitter = asyncio.create_task(speech.synthesize(CALL))
    stayer = asyncio.create_task(speech.synthesize(CALL))
    await asyncio.sleep(0)  # both are now waiting on the shared synthesis
    quitter.cancel()
    assert_complete_wav((await stayer).wav)
    assert quitter.cancelled()
    assert speech.spawned == 1


@pytest.mark.parametrize("text", ["", "   ", "请" * 201])
async def test_empty_or_overlong_text_is_refused(text: str) -> None:
    """No process for a text that is not an announcement."""
    speech = SpeechService()
    with pytest.raises(InvalidInput):
        await speech.synthesize(text)
    assert speech.spawned == 0


def test_the_speech_program_is_installed():
    """The hub's host has espeak-ng (scripts/ensure-services.sh installs it)."""
    assert SpeechService().check() is True
    assert os.access("/usr/bin/espeak-ng", os.X_OK)
