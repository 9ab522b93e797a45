"""Identity documents (Q4): check characters, forms, masking and lookup keys."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.domain.errors import InvalidIdDocument
from hub.domain.identity import (
    IdDocument,
    check_character,
    lookup_key,
    mask_name,
    mask_number,
    parse_document,
)

# The specimen number printed in GB 11643-1999's own example (11010519491231002X).
SPECIMEN = "11010519491231002X"


def test_the_standards_specimen_number_is_valid():
    """GB 11643's example: check character X for 11010519491231002."""
    assert check_character(SPECIMEN[:17]) == "X"
    assert parse_document("resident_id", SPECIMEN) == IdDocument("resident_id", SPECIMEN)


def test_a_number_is_normalised_before_it_is_checked():
    """Spaces dropped and a lower-case x accepted, as people type them."""
    assert parse_document("resident_id", " 110105 19491231 002x ").number == SPECIMEN


@st.composite
def resident_numbers(draw: st.DrawFn, division: str | None = None) -> str:
    region = division or draw(st.from_regex(r"[1-6][0-9]{5}", fullmatch=True))
    born = draw(st.dates(date(1900, 1, 1), date(2099, 12, 31)))
    sequence = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    body = f"{region}{born:%Y%m%d}{sequence}"
    return body + check_character(body)


@given(resident_numbers())
def test_every_number_with_its_check_character_is_accepted(number: str):
    """Any real division, birth date and sequence with the computed check character passes."""
    assert parse_document("resident_id", number).number == number


@given(resident_numbers(), st.integers(0, 16), st.integers(1, 9))
def test_a_single_mistyped_digit_is_always_caught(number: str, position: int, delta: int):
    """MOD 11-2 detects every single-digit substitution (or the date becomes impossible)."""
    digit = (int(number[position]) + delta) % 10
    typo = number[:position] + str(digit) + number[position + 1 :]
    with pytest.raises(InvalidIdDocument):
        parse_document("resident_id", typo)


@given(resident_numbers(), st.integers(0, 15))
def test_two_swapped_neighbours_are_caught(number: str, position: int):
    """Transposing two different adjacent digits is detected too."""
    a, b = number[position], number[position + 1]
    if a == b or not b.isdigit():
        return
    swapped = number[:position] + b + a + number[position + 2 :]
    with pytest.raises(InvalidIdDocument):
        parse_document("resident_id", swapped)


@pytest.mark.parametrize(
    ("kind", "number", "problem"),
    [
        ("resident_id", "11010519491231002", "17 digits and a check character"),
        ("resident_id", "110105194912310021", "check character"),
        ("resident_id", "110105194902300026", "impossible birth date"),
        ("resident_id", "810000199001010018", "not a resident ID"),
        ("hmt_residence_permit", SPECIMEN, "810000, 820000 or 830000"),
        ("foreign_permanent_id", SPECIMEN, "starts with 9"),
        ("hm_travel_permit", "H1234567", "not a valid hm_travel_permit"),
        ("tw_travel_permit", "1234567A", "not a valid tw_travel_permit"),
        ("passport", "E12-3456", "not a valid passport"),
        ("driving_licence", "123", "unknown document kind"),
        # Digits of other scripts ("੯" is 9 to int()) are not ID digits.
        ("resident_id", "10\u0a6f\u0c6f00200001010006", "ASCII letters and digits only"),
        ("tw_travel_permit", "1234567\u0a6f", "ASCII letters and digits only"),
        ("passport", "E1234567\u00df", "ASCII letters and digits only"),
    ],
)
def test_a_bad_number_is_refused_with_a_reason_that_does_not_repeat_it(
    kind: str, number: str, problem: str
):
    """Each refusal names what is wrong, carries the field, and never echoes the number."""
    with pytest.raises(InvalidIdDocument) as caught:
        parse_document(kind, number, field="body.id_number")
    assert problem in caught.value.detail
    assert caught.value.field == "body.id_number"
    assert caught.value.code == "invalid_id_document"
    assert number not in caught.value.detail


@given(resident_numbers(division="810000"))
def test_hong_kong_residence_permits_use_the_same_check_character(number: str):
    """810000… numbers are residence permits, not resident IDs."""
    assert parse_document("hmt_residence_permit", number).kind == "hmt_residence_permit"


@given(resident_numbers(division="915156"))
def test_foreign_permanent_ids_start_with_9_and_use_the_same_check(number: str):
    """The 2023 foreign permanent resident ID: 9, province, nationality, date, check."""
    assert parse_document("foreign_permanent_id", number).kind == "foreign_permanent_id"


@pytest.mark.parametrize(
    ("kind", "number"),
    [
        ("hm_travel_permit", "H12345678"),
        ("hm_travel_permit", "m1234567890"),
        ("tw_travel_permit", "12345678"),
        ("passport", "e12345678"),
    ],
)
def test_permits_and_passports_are_accepted_in_their_forms(kind: str, number: str):
    """Forms without a common check digit are checked by shape and upper-cased."""
    assert parse_document(kind, number).number == number.upper()


def test_masks_keep_only_the_ends():
    """Staff and logs see 110***********002X; short numbers keep less."""
    assert mask_number(SPECIMEN) == "110***********002X"
    assert mask_number("H12345678") == "H******78"
    assert mask_number("123") == "***"
    assert IdDocument("resident_id", SPECIMEN).masked == "110***********002X"


@pytest.mark.parametrize(
    ("name", "masked"), [("张三", "张*"), ("欧阳娜娜", "欧***"), ("李", "李*"), ("  ", "")]
)
def test_public_displays_show_only_the_first_character_of_a_name(name: str, masked: str):
    """A name on a public screen never shows more than its first character."""
    assert mask_name(name) == masked


def test_lookup_keys_are_stable_per_document_and_depend_on_the_key():
    """The same document and key give the same HMAC; another key or kind does not."""
    doc = IdDocument("resident_id", SPECIMEN)
    assert lookup_key(doc, b"k1") == lookup_key(IdDocument("resident_id", SPECIMEN), b"k1")
    assert lookup_key(doc, b"k1") != lookup_key(doc, b"k2")
    assert lookup_key(doc, b"k1") != lookup_key(IdDocument("passport", SPECIMEN), b"k1")
    assert SPECIMEN not in lookup_key(doc, b"k1")
    with pytest.raises(ValueError):
        lookup_key(doc, b"")
