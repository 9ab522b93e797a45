"""Voice announcement audio (Q5): ``GET /api/speech/call.wav?ticket=A001&window=3``.

Public, as the hall display has no staff token, and rate-limited per client IP like the other
public endpoints. Only the fixed announcement sentences of hub/domain/announce.py are spoken,
never a text from the request, so the endpoint cannot be used to make the hub say anything.
The same query always gives the same audio: browsers and proxies may keep it for a day.
"""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery

from hub.api.ratelimit import public_rate_guard
from hub.domain.announce import AnnouncementKind, call_text
from hub.domain.errors import InvalidInput, SpeechUnavailable
from hub.runtime import Hub

MEDIA_TYPE = "audio/wav"
CACHE_CONTROL = "public, max-age=86400"


@get("/api/speech/call.wav", guards=[public_rate_guard], tags=["speech"], media_type=MEDIA_TYPE)
async def call_audio(
    hub: NamedDependency[Hub],
    # Optional here so that a missing one is refused naming its field (Litestar would not).
    ticket: FromQuery[str | None] = None,
    window: FromQuery[int | None] = None,
    kind: FromQuery[AnnouncementKind] = "call",
) -> Response[bytes]:
    """The spoken call ``请<ticket>号到<window>号窗口办理`` (``kind=recall``: ``…再次到…``) as a
    WAV file; 422 for a missing or malformed ticket or window number, 503 when the hub cannot
    speak."""
    if ticket is None:
        raise InvalidInput("the ticket number is required", field="query.ticket")
    if window is None:
        raise InvalidInput("the window number is required", field="query.window")
    text = call_text(
        ticket, window, kind=kind, ticket_field="query.ticket", window_field="query.window"
    )
    if hub.speech is None:
        raise SpeechUnavailable("the hub is not started")
    speech = await hub.speech.synthesize(text)
    return Response(
        content=speech.wav,
        media_type=MEDIA_TYPE,
        headers={
            "Cache-Control": CACHE_CONTROL,
            # The announcer sizes its safety timeout from it before the audio has loaded.
            "X-Audio-Duration": f"{speech.duration_seconds:.3f}",
        },
    )
