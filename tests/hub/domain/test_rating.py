"""Rating rules (O9): grades, reasons of bad grades, comments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.domain.errors import InvalidInput
from hub.domain.rating import (
    BAD_GRADES,
    COMMENT_MAX,
    GRADE_LABELS,
    GRADE_SCORES,
    GRADES,
    REASON_LABELS,
    REASONS,
    check_rating,
    is_bad,
    satisfaction,
)


def test_five_grades_best_first_with_their_labels():
    assert GRADES == (
        "very_satisfied",
        "satisfied",
        "basically_satisfied",
        "dissatisfied",
        "very_dissatisfied",
    )
    assert [GRADE_LABELS[g] for g in GRADES] == [
        "非常满意",
        "满意",
        "基本满意",
        "不满意",
        "非常不满意",
    ]
    assert [GRADE_SCORES[g] for g in GRADES] == [5, 4, 3, 2, 1]
    assert [g for g in GRADES if is_bad(g)] == ["dissatisfied", "very_dissatisfied"]


def test_every_reason_has_a_label_and_other_comes_last():
    assert set(REASON_LABELS) == set(REASONS)
    assert REASONS[-1] == "other"
    assert REASON_LABELS["poor_attitude"] == "服务态度差"


@pytest.mark.parametrize("grade", sorted(BAD_GRADES))
def test_a_bad_grade_needs_a_reason(grade: str):
    with pytest.raises(InvalidInput) as refused:
        check_rating(grade, [], None)
    assert refused.value.field == "body.reasons"


@pytest.mark.parametrize("grade", ["very_satisfied", "satisfied", "basically_satisfied"])
def test_a_good_grade_takes_no_reason(grade: str):
    assert check_rating(grade, [], None) == (grade, [], None)
    with pytest.raises(InvalidInput) as refused:
        check_rating(grade, ["slow_service"], None)
    assert refused.value.field == "body.reasons"


def test_unknown_grade_and_reason_are_refused_by_field():
    with pytest.raises(InvalidInput) as grade:
        check_rating("great", [], None)
    assert grade.value.field == "body.grade"
    with pytest.raises(InvalidInput) as reason:
        check_rating("dissatisfied", ["rude"], None)
    assert reason.value.field == "body.reasons"


def test_reasons_come_back_in_catalogue_order_without_duplicates():
    _, reasons, _ = check_rating(
        "very_dissatisfied", ["other", "poor_attitude", "other", "slow_service"], None
    )
    assert reasons == ["poor_attitude", "slow_service", "other"]


def test_comments_are_stripped_and_bounded():
    assert check_rating("satisfied", [], "  很好  ")[2] == "很好"
    assert check_rating("satisfied", [], "   ")[2] is None
    assert check_rating("satisfied", [], "好" * COMMENT_MAX)[2] == "好" * COMMENT_MAX
    with pytest.raises(InvalidInput) as refused:
        check_rating("satisfied", [], "好" * (COMMENT_MAX + 1))
    assert refused.value.field == "body.comment"


@given(
    grade=st.sampled_from(GRADES),
    reasons=st.lists(st.sampled_from(REASONS), max_size=10),
)
def test_a_rating_is_valid_exactly_when_bad_grades_have_reasons(grade, reasons):
    valid = bool(reasons) == is_bad(grade)
    try:
        checked = check_rating(grade, reasons, None)
    except InvalidInput:
        assert not valid
    else:
        assert valid
        assert set(checked[1]) == set(reasons)
        assert len(checked[1]) == len(set(reasons))


def test_satisfaction_is_the_share_of_good_grades():
    assert satisfaction({g: 0 for g in GRADES}) is None
    counts = {g: 0 for g in GRADES} | {"very_satisfied": 3, "basically_satisfied": 1}
    assert satisfaction(counts | {"dissatisfied": 1}) == pytest.approx(0.8)
