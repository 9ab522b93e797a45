"""How to bring a resuming peer up to date on one topic: a pure decision (H3).

Given what the hub has delivered on the topic (epoch, last seq, the lowest seq still available
from memory or history) and what the peer says it saw, answer one of:

* ``current``  — the peer saw everything;
* ``events``   — send the events after the peer's seq, from memory or history;
* ``snapshot`` — the epoch changed, the peer saw nothing, its seq is older than what is kept,
  or it claims a seq the hub never issued (a restored database): send the full state.
"""

from __future__ import annotations

from typing import Literal

import msgspec

ResumeMode = Literal["events", "snapshot", "current"]


class ResumePlan(msgspec.Struct, frozen=True):
    mode: ResumeMode
    after: int = 0  # for "events": send seq in (after, upto]
    upto: int = 0


def plan_resume(
    *,
    epoch: int,
    last: int,
    kept_from: int,
    peer_epoch: int | None,
    peer_seq: int | None,
) -> ResumePlan:
    """Decide how a peer resumes.

    Args:
        epoch: the topic's epoch.
        last: the last seq delivered on this topic (0: none yet).
        kept_from: the lowest seq that can still be sent (memory or history).
        peer_epoch: the epoch the peer saw, None if it saw nothing.
        peer_seq: the last seq the peer saw, None if it saw nothing.
    """
    if peer_epoch is None or peer_seq is None or peer_epoch != epoch:
        return ResumePlan("snapshot", upto=last)
    if peer_seq == last:
        return ResumePlan("current", after=last, upto=last)
    if peer_seq > last or peer_seq < 0:
        return ResumePlan("snapshot", upto=last)
    if peer_seq + 1 < kept_from:
        return ResumePlan("snapshot", upto=last)
    return ResumePlan("events", after=peer_seq, upto=last)
