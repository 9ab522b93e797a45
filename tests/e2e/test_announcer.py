"""Voice announcements (Q5) in headless Chromium against the real hub: frontend/lib/announcer.js
fetches the hub's espeak-ng audio (``GET /api/speech/call.wav``) and plays every call to its end,
one after another.

Audio in headless Chromium: there is no sound device, yet media plays in real time and fires
``ended`` (Playwright adds ``--mute-audio`` to headless launches; muted audio still runs its
clock). Autoplay: headless Chromium's default policy needs a user activation, and every
Playwright ``evaluate`` counts as one (it runs with ``userGesture: true``). So the first test
launches with ``--autoplay-policy=no-user-gesture-required``, as a hall PC in kiosk mode is
started; the blocked test uses ``--autoplay-policy=document-user-activation-required`` and
queues its announcements from an init script, before any evaluate could activate the page.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from playwright.async_api import Page, Request, expect

from hub.domain.announce import call_text
from tests.e2e.browser import chromium
from tests.e2e.hubserver import HubServer, server_settings

pytestmark = pytest.mark.e2e

SPEECH_PATH = "/api/speech/call.wav"
# A brisk voice keeps the test short; the hall default is 150 words per minute.
SPEED = 300
# Five calls arriving within one second, the first still speaking when the others come.
CALLS = [
    {"ticketNo": "A001", "windowNumber": 3, "kind": "call"},
    {"ticketNo": "B012", "windowNumber": 7, "kind": "call"},
    {"ticketNo": "A001", "windowNumber": 3, "kind": "recall"},
    {"ticketNo": "VB1024", "windowNumber": 12, "kind": "call"},
    {"ticketNo": "C015", "windowNumber": 999, "kind": "call"},
]
ARRIVALS_MS = [0, 150, 300, 600, 900]
# Chromium ends a clip a little after its nominal duration; never well before it.
END_TOLERANCE_MS = 60
WAIT_S = 60


def expected_text(call: dict[str, Any]) -> str:
    return call_text(call["ticketNo"], call["windowNumber"], kind=call["kind"])


def expected_url(call: dict[str, Any]) -> str:
    query = f"ticket={call['ticketNo']}&window={call['windowNumber']}"
    return f"{SPEECH_PATH}?{query}" + ("&kind=recall" if call["kind"] == "recall" else "")


@pytest.fixture
async def server(db: asyncpg.Pool, database_url: str) -> AsyncIterator[HubServer]:
    async with HubServer(server_settings(database_url, speech_speed=SPEED)) as running:
        yield running


# A synthesizer that fails for B012 (the hub answers 503) and gives undecodable audio for
# C015 (a WAV of an unknown format): espeak-ng for everything else.
FLAKY_SYNTHESIZER = """#!{python}
import struct, subprocess, sys
text = sys.stdin.read()
if "B012" in text:
    sys.exit("synthesizer broke")
wav = subprocess.run(
    ["espeak-ng", *sys.argv[1:]], input=text.encode(), capture_output=True, check=True
).stdout
if "C015" in text:
    wav = wav[:20] + struct.pack("<H", 0x1234) + wav[22:]
sys.stdout.buffer.write(wav)
"""


@pytest.fixture
async def flaky_server(
    db: asyncpg.Pool, database_url: str, tmp_path: Path
) -> AsyncIterator[HubServer]:
    command = tmp_path / "espeak-flaky"
    command.write_text(FLAKY_SYNTHESIZER.format(python=sys.executable))
    command.chmod(0o755)
    settings = server_settings(database_url, speech_speed=SPEED, speech_command=str(command))
    async with HubServer(settings) as running:
        yield running


class Heard:
    """The announcer's window events, reported by the page through an exposed function."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    def report(self, name: str, detail: dict[str, Any]) -> None:
        self.events.put_nowait((name, detail))

    async def until(self, name: str, count: int = 1) -> list[tuple[str, dict[str, Any]]]:
        """Every event up to and including the ``count``-th ``name``."""
        seen: list[tuple[str, dict[str, Any]]] = []
        async with asyncio.timeout(WAIT_S):
            while sum(1 for n, _ in seen if n == name) < count:
                seen.append(await self.events.get())
        return seen


# Registers the listeners; usable as an init script (before any evaluate) or by evaluate.
LISTEN = """
for (const name of ["announce-start", "announce-end", "announce-skip", "announce-blocked"]) {
  window.addEventListener(name, (event) => window.reportAnnouncement(name, event.detail));
}
"""


async def listen(page: Page) -> tuple[Heard, list[str]]:
    """Expose the event reporter and record the page's requests for speech audio."""
    heard = Heard()
    audio_requests: list[str] = []
    await page.expose_function("reportAnnouncement", heard.report)

    def on_request(request: Request) -> None:
        if SPEECH_PATH in request.url:
            url = urlsplit(request.url)
            audio_requests.append(f"{url.path}?{url.query}")

    page.on("request", on_request)
    return heard, audio_requests


def assert_one_after_another(history: list[dict[str, Any]]) -> None:
    """Each announcement played to its end, and the next started only after that end."""
    for entry in history:
        assert entry["outcome"] == "ended", entry
        played_ms = entry["endedAt"] - entry["startedAt"]
        assert played_ms >= entry["duration"] * 1000 - END_TOLERANCE_MS, entry
    for before, after in itertools.pairwise(history):
        assert after["startedAt"] >= before["endedAt"], (before, after)


async def test_five_calls_in_one_second_give_five_complete_announcements_in_order(
    server: HubServer,
) -> None:
    """Queued, never cut off: five start/end pairs in call order, one audio request each."""
    async with chromium(extra_args=["--autoplay-policy=no-user-gesture-required"]) as browser:
        page = await browser.new_page()
        heard, audio_requests = await listen(page)
        await page.goto(f"{server.base_url}/")
        await page.evaluate(LISTEN)
        await page.evaluate(
            """async ({calls, arrivals}) => {
              const { Announcer } = await import("/lib/announcer.js");
              window.spoken = [];
              window.announcer = new Announcer({ onSpeaking: (text) => window.spoken.push(text) });
              calls.forEach((call, i) =>
                setTimeout(() => window.announcer.announce(call), arrivals[i]));
            }""",
            {"calls": CALLS, "arrivals": ARRIVALS_MS},
        )
        seen = await heard.until("announce-end", len(CALLS))

        texts = [expected_text(call) for call in CALLS]
        # Strictly alternating: start of one, its end, start of the next.
        assert [(name, detail["text"]) for name, detail in seen] == [
            pair for text in texts for pair in (("announce-start", text), ("announce-end", text))
        ]
        history: list[dict[str, Any]] = await page.evaluate("window.announcer.history")
        assert [entry["text"] for entry in history] == texts
        assert_one_after_another(history)
        assert await page.evaluate("window.spoken") == [*texts, None]
        assert await page.evaluate("window.announcer.pending") == 0

        # The announcement audio is requested from the hub: once per announcement.
        assert audio_requests == [expected_url(call) for call in CALLS]
        speech = server.running_hub().speech
        assert speech is not None
        assert speech.spawned == len(CALLS)
        assert browser.page_errors == []


async def test_the_page_builds_the_same_sentences_as_the_hub(server: HubServer) -> None:
    """callText in announcer.js and call_text in hub/domain/announce.py agree."""
    cases = [*CALLS, {"ticketNo": "D100", "windowNumber": 5, "windowName": "综合受理窗口"}]
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{server.base_url}/")
        texts = await page.evaluate(
            """async (cases) => {
              const { callText } = await import("/lib/announcer.js");
              return cases.map((c) => callText(c));
            }""",
            cases,
        )
        assert texts == [
            call_text(
                c["ticketNo"], c["windowNumber"], c.get("windowName"), kind=c.get("kind", "call")
            )
            for c in cases
        ]
        refused = await page.evaluate(
            """async () => {
              const { Announcer } = await import("/lib/announcer.js");
              const announcer = new Announcer();
              const bad = [
                { ticketNo: "a001", windowNumber: 3 },
                { ticketNo: "A001", windowNumber: 0 },
              ];
              return bad.map((call) => {
                try { announcer.announce(call); return "queued"; } catch (e) { return e.name; }
              }).concat([announcer.pending]);
            }"""
        )
        assert refused == ["RangeError", "RangeError", 0]


async def test_blocked_autoplay_asks_for_one_click_and_keeps_the_queue(
    server: HubServer,
) -> None:
    """Autoplay refused: the zh-CN overlay appears, nothing plays; one click plays the
    queued announcements in order."""
    async with chromium(
        extra_args=["--autoplay-policy=document-user-activation-required"]
    ) as browser:
        page = await browser.new_page()
        heard, audio_requests = await listen(page)
        # Queued as the page loads, before anything could count as a user activation.
        await page.add_init_script(
            LISTEN
            + """
            window.addEventListener("DOMContentLoaded", async () => {
              const { Announcer } = await import("/lib/announcer.js");
              window.announcer = new Announcer();
              window.announcer.announce({ ticketNo: "A001", windowNumber: 3 });
              window.announcer.announce({ ticketNo: "A002", windowNumber: 4 });
            });
            """
        )
        await page.goto(f"{server.base_url}/")
        seen = await heard.until("announce-blocked")
        assert seen == [
            (
                "announce-blocked",
                {
                    "text": "请A001号到3号窗口办理",
                    "url": expected_url(CALLS[0]),
                    "ticketNo": "A001",
                    "windowNumber": 3,
                    "kind": "call",
                },
            )
        ]
        unlock = page.get_by_role("button", name="点击开启语音播报")
        await expect(unlock).to_be_visible()
        await browser.screenshot(page, "announcer-unlock")
        assert await page.evaluate("window.announcer.pending") == 2
        assert await page.evaluate("window.announcer.history") == []

        await unlock.click()
        seen = await heard.until("announce-end", 2)
        assert [(name, detail["text"]) for name, detail in seen] == [
            ("announce-start", "请A001号到3号窗口办理"),
            ("announce-end", "请A001号到3号窗口办理"),
            ("announce-start", "请A002号到4号窗口办理"),
            ("announce-end", "请A002号到4号窗口办理"),
        ]
        await expect(unlock).to_be_hidden()
        assert_one_after_another(await page.evaluate("window.announcer.history"))
        # The blocked item was fetched once and played from that copy after the click.
        assert audio_requests == [
            "/api/speech/call.wav?ticket=A001&window=3",
            "/api/speech/call.wav?ticket=A002&window=4",
        ]
        assert browser.page_errors == []


async def test_an_announcement_without_playable_audio_is_skipped_and_the_queue_goes_on(
    flaky_server: HubServer,
) -> None:
    """A 503 from the hub and an undecodable file are skipped; the others play in order."""
    calls = [
        {"ticketNo": "A001", "windowNumber": 3},
        {"ticketNo": "B012", "windowNumber": 7},
        {"ticketNo": "A002", "windowNumber": 4},
        {"ticketNo": "C015", "windowNumber": 9},
        {"ticketNo": "A003", "windowNumber": 5},
    ]
    async with chromium(extra_args=["--autoplay-policy=no-user-gesture-required"]) as browser:
        page = await browser.new_page()
        heard, _ = await listen(page)
        await page.goto(f"{flaky_server.base_url}/")
        await page.evaluate(LISTEN)
        await page.evaluate(
            """async (calls) => {
              const { Announcer } = await import("/lib/announcer.js");
              window.announcer = new Announcer();
              for (const call of calls) window.announcer.announce(call);
            }""",
            calls,
        )
        seen = await heard.until("announce-end", 3)
        a001, b012, a002, c015, a003 = (call_text(c["ticketNo"], c["windowNumber"]) for c in calls)
        assert [(name, d["text"], d.get("reason")) for name, d in seen] == [
            ("announce-start", a001, None),
            ("announce-end", a001, None),
            ("announce-skip", b012, "load"),
            ("announce-start", a002, None),
            ("announce-end", a002, None),
            ("announce-skip", c015, "error"),
            ("announce-start", a003, None),
            ("announce-end", a003, None),
        ]
        assert_one_after_another(await page.evaluate("window.announcer.history"))
        assert browser.page_errors == []
