"""Announcement sentences (Q5): fixed texts from checked ticket and window numbers."""

from __future__ import annotations

from typing import Any

import pytest

from hub.domain.announce import call_text
from hub.domain.errors import InvalidInput


def test_a_call_asks_the_ticket_to_the_window():
    """The sentence of the issue, word for word."""
    assert call_text("A001", 3) == "请A001号到3号窗口办理"


def test_a_recall_says_again():
    """重呼 adds 再次 before the window."""
    assert call_text("A001", 3, kind="recall") == "请A001号再次到3号窗口办理"


@pytest.mark.parametrize(
    ("ticket", "window", "text"),
    [
        ("VB1024", 999, "请VB1024号到999号窗口办理"),
        ("Z999", 1, "请Z999号到1号窗口办理"),
        ("AB001", 10, "请AB001号到10号窗口办理"),
    ],
)
def test_ticket_and_window_numbers_at_their_limits(ticket: str, window: int, text: str) -> None:
    """Two letters and four digits, window 999 and window 1 are spoken."""
    assert call_text(ticket, window) == text


def test_a_window_name_is_spoken_before_the_word_window():
    """The name goes between number and 窗口, without repeating 窗口."""
    assert call_text("A001", 3, "综合受理") == "请A001号到3号综合受理窗口办理"
    assert call_text("A001", 3, "综合受理窗口") == "请A001号到3号综合受理窗口办理"
    assert call_text("A001", 3, "  ") == "请A001号到3号窗口办理"
    assert call_text("C015", 12, "不动产登记", kind="recall") == (
        "请C015号再次到12号不动产登记窗口办理"
    )


@pytest.mark.parametrize(
    "ticket",
    ["", "a001", "A01", "A00001", "ABC001", "A001 ", " A001", "Ａ001", "A００1", "A001\n", "1A", 7],
)
def test_a_malformed_ticket_number_names_its_field(ticket: Any) -> None:
    """Lower case, full-width characters, spaces, wrong lengths and non-strings are refused."""
    with pytest.raises(InvalidInput) as caught:
        call_text(ticket, 3, ticket_field="query.ticket")
    assert caught.value.field == "query.ticket"


@pytest.mark.parametrize("window", [0, -1, 1000, True, 3.0, "3"])
def test_a_window_number_out_of_range_names_its_field(window: Any) -> None:
    """1 to 999, integers only (a bool is not a window)."""
    with pytest.raises(InvalidInput) as caught:
        call_text("A001", window, window_field="query.window")
    assert caught.value.field == "query.window"


@pytest.mark.parametrize("name", ["3号", "VIP", "综合受理!", "窗口", "一二三四五六七八九十一二三"])
def test_a_window_name_that_cannot_be_spoken_is_refused(name: str) -> None:
    """Only 1-12 Chinese characters: no digits, Latin letters or punctuation."""
    with pytest.raises(InvalidInput) as caught:
        call_text("A001", 3, name)
    assert caught.value.field == "window_name"


def test_an_unknown_kind_is_refused():
    """Only call and recall have sentences."""
    with pytest.raises(InvalidInput) as caught:
        call_text("A001", 3, kind="skip")  # type: ignore[arg-type]
    assert caught.value.field == "kind"
