"""The wire messages of the peer protocol (peers ⇄ gateway), as msgspec Structs.

Every frame is one JSON object with a ``type``. Peer → hub frames form a tagged union
(:data:`Inbound`); hub → peer frames are the Structs below. An event frame is encoded once
when it is written to the outbox, and those same bytes are sent to every subscriber and
replayed from history. See docs/architecture.md, "Peer protocol".
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

PROTOCOL_VERSION = 1


# --- peer → hub --------------------------------------------------------------------------


class Position(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A topic and the last (epoch, seq) the peer has seen of it; None when it has seen none."""

    topic: str
    epoch: int | None = None
    seq: int | None = None


class Hello(msgspec.Struct, tag="hello", tag_field="type", forbid_unknown_fields=True):
    """First frame of every connection. ``token``: a device or staff session token; none for
    a public (citizen) page, which may subscribe to public topics only."""

    kind: str
    token: str | None = None
    topics: list[Position] = []
    protocol: int = PROTOCOL_VERSION
    client: str = ""


class Subscribe(msgspec.Struct, tag="subscribe", tag_field="type", forbid_unknown_fields=True):
    topics: list[Position]


class Unsubscribe(msgspec.Struct, tag="unsubscribe", tag_field="type", forbid_unknown_fields=True):
    topics: list[str]


class Heartbeat(msgspec.Struct, tag="heartbeat", tag_field="type", forbid_unknown_fields=True):
    """Any frame counts as liveness; a peer with nothing to say sends this."""


class Command(msgspec.Struct, tag="command", tag_field="type", forbid_unknown_fields=True):
    """A request with an id; answered by a :class:`Reply` with the same id.
    Sent by peers to the hub, and by the hub to devices (print_ticket, prompt_rating…)."""

    id: str
    name: str
    args: dict[str, Any] = {}


class Reply(msgspec.Struct, tag="reply", tag_field="type", forbid_unknown_fields=True):
    id: str
    ok: bool
    data: Any = None
    error: ErrorBody | None = None


class DeviceEvent(msgspec.Struct, tag="device_event", tag_field="type", forbid_unknown_fields=True):
    """An event a device reports (paper_low, card_read, rating…), with an idempotency key so a
    re-sent event after a reconnect is accepted once (D6)."""

    key: str
    name: str
    data: dict[str, Any] = {}


class ErrorBody(msgspec.Struct, frozen=True):
    code: str
    message: str


Inbound = Hello | Subscribe | Unsubscribe | Heartbeat | Command | Reply | DeviceEvent


# --- hub → peer --------------------------------------------------------------------------


class PeerInfo(msgspec.Struct, frozen=True):
    id: str
    kind: str
    hall_id: int | None
    label: str = ""


class TopicState(msgspec.Struct, frozen=True):
    """In ``welcome``/``subscribed``: how the hub brings the peer up to date on a topic.
    ``resume`` is ``events`` (the missed event frames follow), ``snapshot`` (a snapshot frame
    follows) or ``current`` (nothing missed)."""

    topic: str
    epoch: int
    seq: int
    resume: Literal["events", "snapshot", "current"]


class Welcome(msgspec.Struct, tag="welcome", tag_field="type"):
    peer: PeerInfo
    tick_seconds: float
    heartbeat_seconds: float
    server_time: float
    topics: list[TopicState]
    protocol: int = PROTOCOL_VERSION


class Subscribed(msgspec.Struct, tag="subscribed", tag_field="type"):
    topics: list[TopicState]


class Event(msgspec.Struct, tag="event", tag_field="type"):
    """A topic event. ``seq`` is gap-free per (topic, epoch); a volatile event (not kept,
    not replayed, e.g. heartbeat times) has ``seq`` None."""

    topic: str
    epoch: int
    seq: int | None
    ts: float
    name: str
    data: Any


class Snapshot(msgspec.Struct, tag="snapshot", tag_field="type"):
    """The full current state of a topic as of (epoch, seq)."""

    topic: str
    epoch: int
    seq: int
    data: Any


class Tick(msgspec.Struct, tag="tick", tag_field="type"):
    ts: float


class Resync(msgspec.Struct, tag="resync", tag_field="type"):
    """The hub skipped events for this peer (it was too slow); snapshots follow."""

    topics: list[str]
    reason: str


Outbound = Welcome | Subscribed | Event | Snapshot | Tick | Resync | Command | Reply


_inbound_decoder: msgspec.json.Decoder[Inbound] = msgspec.json.Decoder(Inbound)
_outbound_decoder: msgspec.json.Decoder[Outbound] = msgspec.json.Decoder(Outbound)
_encoder = msgspec.json.Encoder()


def decode_inbound(frame: bytes | str) -> Inbound:
    """Parse one peer frame.

    Raises:
        msgspec.DecodeError: not JSON, unknown ``type``, wrong or missing fields.
    """
    return _inbound_decoder.decode(frame)


def decode_outbound(frame: bytes | str) -> Outbound:
    """Parse one hub frame (used by peers written in Python: the device agent, tests)."""
    return _outbound_decoder.decode(frame)


def encode(message: msgspec.Struct) -> bytes:
    """The one JSON encoder of the protocol."""
    return _encoder.encode(message)
