"""The resume decision: events, snapshot or current, from the hub's and the peer's positions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime.resume import ResumePlan, plan_resume


@pytest.mark.parametrize(
    ("peer_epoch", "peer_seq", "expected"),
    [
        (None, None, ResumePlan("snapshot", upto=10)),
        (7, None, ResumePlan("snapshot", upto=10)),
        (8, 10, ResumePlan("snapshot", upto=10)),
        (7, 10, ResumePlan("current", after=10, upto=10)),
        (7, 4, ResumePlan("events", after=4, upto=10)),
        (7, 3, ResumePlan("events", after=3, upto=10)),
        (7, 2, ResumePlan("snapshot", upto=10)),
        (7, 11, ResumePlan("snapshot", upto=10)),
        (7, -1, ResumePlan("snapshot", upto=10)),
    ],
    ids=[
        "saw-nothing",
        "no-seq",
        "other-epoch",
        "up-to-date",
        "within-history",
        "oldest-kept",
        "pruned",
        "from-the-future",
        "negative",
    ],
)
def test_a_peer_is_resumed_by_the_cheapest_exact_means(
    peer_epoch: int | None, peer_seq: int | None, expected: ResumePlan
):
    """Topic at epoch 7, last seq 10, history kept from seq 4."""
    assert (
        plan_resume(epoch=7, last=10, kept_from=4, peer_epoch=peer_epoch, peer_seq=peer_seq)
        == expected
    )


@given(
    last=st.integers(0, 1000),
    kept=st.integers(1, 1001),
    peer_seq=st.integers(-5, 1100),
)
def test_events_are_planned_only_when_every_missed_seq_is_kept(last: int, kept: int, peer_seq: int):
    """An "events" plan always covers exactly (peer_seq, last] within what is kept."""
    kept_from = min(kept, last + 1)
    plan = plan_resume(epoch=1, last=last, kept_from=kept_from, peer_epoch=1, peer_seq=peer_seq)
    if plan.mode == "events":
        assert kept_from <= plan.after + 1 <= plan.upto == last
        assert plan.after == peer_seq
    elif plan.mode == "current":
        assert peer_seq == last
    else:
        assert peer_seq > last or peer_seq < 0 or peer_seq + 1 < kept_from
