"""Speech for the hall display's voice announcements (Q5), made by the hub itself.

Headless Chromium and many hall PCs have no speech voices, and halls are intranets (no online
service), so the hub synthesizes WAV audio with espeak-ng's ``cmn-latn-pinyin`` voice
(TOOLCHAIN.md §5; plain ``cmn`` reads pinyin with English sounds). Each synthesis is a
separate ``espeak-ng`` process driven through asyncio: the event loop is never blocked.

- **Bounded**: at most ``concurrency`` processes at once; each is killed after
  ``timeout_seconds``, and when its caller is cancelled.
- **Cached**: texts are few (ticket × window), and the same text always gives the same audio,
  so results are kept in an LRU cache of at most ``cache_bytes``.
- **Coalesced**: concurrent requests for a text share one process (five displays asking for
  the same call at once start one ``espeak-ng``).

``espeak-ng --stdout`` cannot seek back to fill in the RIFF and ``data`` chunk sizes, so it
writes 0x7FFFFFFF-ish placeholders; they are corrected here before the audio is served.

Errors: :class:`~hub.domain.errors.SpeechUnavailable` (HTTP 503) when the program is missing,
fails, times out or gives no audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
import time
from collections import OrderedDict
from collections.abc import Callable

import msgspec
import structlog

from hub.domain.errors import InvalidInput, SpeechUnavailable

log = structlog.get_logger("hub.services.speech")

TEXT_MAX = 200


class SpeechSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How audio is made.

    Attributes:
        command: the espeak-ng program (a name looked up on PATH, or a path).
        voice: the espeak-ng voice; ``cmn-latn-pinyin`` speaks Mandarin correctly.
        speed: words per minute (espeak-ng ``-s``, 80-450); 150 is a calm hall pace.
        concurrency: synthesizer processes running at once.
        timeout_seconds: a process running longer is killed.
        cache_bytes: memory for cached audio; the least recently used goes first.
    """

    command: str = "espeak-ng"
    voice: str = "cmn-latn-pinyin"
    speed: int = 150
    concurrency: int = 2
    timeout_seconds: float = 10.0
    cache_bytes: int = 32 * 1024 * 1024


class Speech(msgspec.Struct, frozen=True, kw_only=True):
    """Synthesized audio of one text: a complete WAV file (RIFF, PCM) and its length."""

    text: str
    wav: bytes
    duration_seconds: float


class SpeechService:
    """Text to WAV with espeak-ng, bounded, cached and coalesced (see the module docstring).

    ``spawned`` counts the processes started and ``cache_hits`` the answers from the cache,
    so that callers and tests can see the work done.
    """

    def __init__(self, settings: SpeechSettings | None = None) -> None:
        self.settings = settings or SpeechSettings()
        self.spawned = 0
        self.cache_hits = 0
        self._semaphore = asyncio.Semaphore(self.settings.concurrency)
        self._cache: OrderedDict[str, Speech] = OrderedDict()
        self._cached_bytes = 0
        self._inflight: dict[str, asyncio.Task[Speech]] = {}
        # Availability as last seen: log the flips, not every failure (STYLE: online/offline).
        self._available: bool | None = None

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def check(self) -> bool:
        """Whether the program can be found; logs ``speech_unavailable`` when it cannot.

        The hub starts either way: calls still work, only the audio is missing (503).
        """
        found = shutil.which(self.settings.command) is not None
        if not found:
            log.warning(
                "speech_unavailable",
                command=self.settings.command,
                reason="not found; install espeak-ng (scripts/ensure-services.sh)",
            )
        return found

    async def synthesize(self, text: str) -> Speech:
        """The audio of ``text``, from the cache or a new espeak-ng process.

        Cancelling the call does not cancel a synthesis other callers share; it still
        completes (within the timeout) and fills the cache.

        Raises:
            InvalidInput: ``text`` is empty or longer than 200 characters.
            SpeechUnavailable: espeak-ng is missing, failed, timed out or gave no audio.
        """
        if not text.strip() or len(text) > TEXT_MAX:
            raise InvalidInput(f"speech text is 1 to {TEXT_MAX} characters", field="text")
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            self.cache_hits += 1
            return cached
        task = self._inflight.get(text)
        if task is None:
            task = asyncio.create_task(self._produce(text), name="speech")
            self._inflight[text] = task
            task.add_done_callback(self._forget(text))
        return await asyncio.shield(task)

    async def close(self) -> None:
        """Stop the syntheses in flight (their processes are killed)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        # Their outcomes are of no interest, but a cancellation of close() itself still is.
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, text: str) -> Callable[[asyncio.Task[Speech]], None]:
        def done(task: asyncio.Task[Speech]) -> None:
            if self._inflight.get(text) is task:
                del self._inflight[text]
            # Every waiter may have been cancelled: retrieve the error so that asyncio does
            # not report it as never retrieved; the waiters that remain get it from the task.
            if not task.cancelled():
                task.exception()

        return done

    async def _produce(self, text: str) -> Speech:
        async with self._semaphore:
            started = time.perf_counter()
            try:
                raw = await self._run(text)
                wav, duration = _complete_wav(raw)
            except SpeechUnavailable as exc:
                self._flip(False, exc.detail)
                raise
        self._flip(True, "")
        speech = Speech(text=text, wav=wav, duration_seconds=duration)
        log.debug(
            "speech_synthesized",
            text=text,
            bytes=len(wav),
            duration_s=round(duration, 2),
            ms=round((time.perf_counter() - started) * 1000),
        )
        self._remember(speech)
        return speech

    async def _run(self, text: str) -> bytes:
        s = self.settings
        # The text goes in on stdin, never as an argument: a text cannot become an option.
        argv = (s.command, "-b", "1", "-v", s.voice, "-s", str(s.speed), "--stdout")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise SpeechUnavailable(
                f"cannot start the speech synthesizer {s.command!r}: {exc.strerror or exc}"
            ) from exc
        self.spawned += 1
        try:
            async with asyncio.timeout(s.timeout_seconds):
                out, err = await proc.communicate(text.encode())
        except TimeoutError as exc:
            raise SpeechUnavailable(
                f"the speech synthesizer took longer than {s.timeout_seconds:g} s"
            ) from exc
        finally:
            if proc.returncode is None:
                # Timed out or cancelled: the process must not outlive its request.
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.shield(proc.wait())
        if proc.returncode != 0:
            message = err.decode(errors="replace").strip()[:200]
            raise SpeechUnavailable(
                f"the speech synthesizer failed (exit {proc.returncode}): {message}"
            )
        return out

    def _remember(self, speech: Speech) -> None:
        size = len(speech.wav)
        limit = self.settings.cache_bytes
        if size > limit or speech.text in self._cache:
            return
        self._cache[speech.text] = speech
        self._cached_bytes += size
        while self._cached_bytes > limit:
            _, oldest = self._cache.popitem(last=False)
            self._cached_bytes -= len(oldest.wav)

    def _flip(self, available: bool, reason: str) -> None:
        if self._available is available:
            return
        if available and self._available is not None:
            log.info("speech_online", command=self.settings.command)
        elif not available:
            log.warning("speech_offline", command=self.settings.command, reason=reason)
        self._available = available


def _complete_wav(data: bytes) -> tuple[bytes, float]:
    """The WAV with its RIFF and ``data`` sizes set from the actual length, and its duration.

    Raises:
        SpeechUnavailable: not a RIFF/WAVE file with a ``fmt `` and a non-empty ``data`` chunk.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SpeechUnavailable("the speech synthesizer gave no WAV audio")
    out = bytearray(data)
    struct.pack_into("<I", out, 4, len(data) - 8)
    byte_rate = 0
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = offset + 8
        if chunk_id == b"fmt " and size >= 16 and body + 16 <= len(data):
            (byte_rate,) = struct.unpack_from("<I", data, body + 8)
        elif chunk_id == b"data":
            # The last chunk espeak-ng writes; its placeholder size runs past the end.
            length = len(data) - body
            if length <= 0 or byte_rate <= 0:
                break
            struct.pack_into("<I", out, offset + 4, length)
            return bytes(out), length / byte_rate
        offset = body + size + (size & 1)
    raise SpeechUnavailable("the speech synthesizer gave no audio")
