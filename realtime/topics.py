"""Topic names: ``<kind>:<key>``, e.g. ``hall:12``, ``presence:12``, ``window:40``.

Kinds are registered by the services that own them, with a snapshot provider (the full state
of one topic) and an access rule (which peers may subscribe). realtime knows nothing of halls.
"""

from __future__ import annotations

import re

import msgspec

from realtime.errors import UnknownTopic

_TOPIC = re.compile(r"^([a-z][a-z_]{0,31}):([A-Za-z0-9_.-]{1,64})$")


class TopicName(msgspec.Struct, frozen=True):
    kind: str
    key: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


def parse_topic(name: str) -> TopicName:
    """Split a topic name into kind and key.

    Raises:
        UnknownTopic: the name is not of the form ``kind:key``.
    """
    match = _TOPIC.match(name)
    if match is None:
        raise UnknownTopic(f"bad topic name {name[:80]!r}")
    return TopicName(match.group(1), match.group(2))


def topic(kind: str, key: object) -> str:
    return f"{kind}:{key}"
