"""Ratings (O9, 好差评): the five grades, the reasons of a bad grade, and what a rating must
carry. Pure: no I/O, no asyncio.

Grades (GB/T 39735 five-grade evaluation), best first:

===================== ============ =====
grade                 label        score
===================== ============ =====
``very_satisfied``    非常满意       5
``satisfied``         满意           4
``basically_satisfied`` 基本满意      3
``dissatisfied``      不满意         2
``very_dissatisfied`` 非常不满意      1
===================== ============ =====

``dissatisfied`` and ``very_dissatisfied`` are *bad* grades (差评): a bad grade names at least
one reason from :data:`REASONS` (stable codes; the labels are what the pages show), and later
opens a rectification case (``rating.case_id``). A good grade takes no reasons. A comment is
optional for every grade, at most :data:`COMMENT_MAX` characters.

A rating comes from the window's evaluation pad (``evaluator``), a kiosk or touch terminal
(``kiosk``), the link of an SMS (``sms``) or the citizen's ticket page (``web``); it is linked
to the ticket, and through it to the window and the staff member who served it. One ticket
is rated once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

from hub.domain.errors import Conflict, InvalidInput

Grade = Literal[
    "very_satisfied",
    "satisfied",
    "basically_satisfied",
    "dissatisfied",
    "very_dissatisfied",
]
GRADES: tuple[Grade, ...] = get_args(Grade)

GRADE_LABELS: dict[Grade, str] = {
    "very_satisfied": "非常满意",
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "dissatisfied": "不满意",
    "very_dissatisfied": "非常不满意",
}
GRADE_SCORES: dict[Grade, int] = {
    "very_satisfied": 5,
    "satisfied": 4,
    "basically_satisfied": 3,
    "dissatisfied": 2,
    "very_dissatisfied": 1,
}
BAD_GRADES: frozenset[Grade] = frozenset({"dissatisfied", "very_dissatisfied"})

# The reasons of a bad grade. Codes are stable (stored, exported, branched on by pages);
# the order is the order of the checklist.
Reason = Literal[
    "poor_attitude",
    "slow_service",
    "complex_process",
    "unreasonable_materials",
    "repeated_visits",
    "unclear_policy",
    "other",
]
REASONS: tuple[Reason, ...] = get_args(Reason)
REASON_LABELS: dict[Reason, str] = {
    "poor_attitude": "服务态度差",
    "slow_service": "办事效率低",
    "complex_process": "流程繁琐",
    "unreasonable_materials": "材料要求不合理",
    "repeated_visits": "多次跑动",
    "unclear_policy": "政策解释不清",
    "other": "其他",
}

Source = Literal["evaluator", "kiosk", "sms", "web"]
SOURCES: tuple[Source, ...] = get_args(Source)

COMMENT_MAX = 500


class AlreadyRated(Conflict):
    """The ticket has its rating already: one rating per ticket."""

    code = "already_rated"


class TicketNotFinished(Conflict):
    """Only a served (finished) ticket can be rated."""

    code = "ticket_not_finished"


def is_bad(grade: Grade) -> bool:
    """Whether ``grade`` is a bad grade (差评): it needs reasons and opens a case later."""
    return grade in BAD_GRADES


def check_rating(
    grade: str, reasons: Iterable[str], comment: str | None
) -> tuple[Grade, list[Reason], str | None]:
    """Validate a rating; returns the grade, its reasons in catalogue order without
    duplicates, and the comment stripped (None when empty).

    Raises:
        InvalidInput: an unknown grade (``body.grade``) or reason (``body.reasons``); a bad
            grade without reasons or a good grade with some (``body.reasons``); a comment
            longer than :data:`COMMENT_MAX` (``body.comment``).
    """
    if grade not in GRADES:
        raise InvalidInput(f"unknown grade {grade[:40]!r}", field="body.grade")
    given = set(reasons)
    unknown = given.difference(REASONS)
    if unknown:
        raise InvalidInput(
            f"unknown reason {sorted(unknown)[0][:40]!r}; one of {', '.join(REASONS)}",
            field="body.reasons",
        )
    ordered: list[Reason] = [r for r in REASONS if r in given]
    if grade in BAD_GRADES and not ordered:
        raise InvalidInput(f"a {grade} rating names at least one reason", field="body.reasons")
    if grade not in BAD_GRADES and ordered:
        raise InvalidInput(f"a {grade} rating takes no reasons", field="body.reasons")
    text = comment.strip() if comment is not None else ""
    if len(text) > COMMENT_MAX:
        raise InvalidInput(f"a comment has at most {COMMENT_MAX} characters", field="body.comment")
    return grade, ordered, text or None


def satisfaction(counts: dict[Grade, int]) -> float | None:
    """The share of good grades (非常满意, 满意, 基本满意) among all, 0..1; None without any."""
    total = sum(counts.values())
    if not total:
        return None
    good = sum(n for g, n in counts.items() if g not in BAD_GRADES)
    return good / total
