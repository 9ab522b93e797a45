"""Identity documents (Q4): validation with check digits, normalisation, masking, lookup keys.

Pure: no I/O; the HMAC key is a parameter. Kinds:

``resident_id``
    Resident identity card number, GB 11643-1999: 6-digit administrative division code,
    birth date ``YYYYMMDD``, 3-digit sequence, and a check character computed with
    ISO 7064 MOD 11-2 (weights 2^(17-i) mod 11; ``10`` is written ``X``).
``foreign_permanent_id``
    Foreign permanent resident ID card, 2023 edition: 18 characters starting with ``9``
    (then a 2-digit province code, 3-digit nationality code, birth date, sequence) and the
    same GB 11643 check character.
``hmt_residence_permit``
    Residence permit for Hong Kong, Macao and Taiwan residents: 18 characters in the GB 11643
    layout whose division code is ``810000`` (Hong Kong), ``820000`` (Macao) or ``830000``
    (Taiwan), with the same check character.
``hm_travel_permit``
    Mainland travel permit for Hong Kong and Macao residents: ``H`` or ``M`` and 8 or 10 digits.
``tw_travel_permit``
    Mainland travel permit for Taiwan residents: 8 digits.
``passport``
    Any country's passport: 5 to 17 letters and digits (the issuing country is recorded
    separately; no check digit is common to all).

Numbers are stored as a keyed HMAC (lookups and per-document limits) plus a masked form;
displays and logs only ever see the masked form.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date
from typing import Literal, get_args

import msgspec

from hub.domain.errors import InvalidIdDocument

DocumentKind = Literal[
    "resident_id",
    "foreign_permanent_id",
    "hmt_residence_permit",
    "hm_travel_permit",
    "tw_travel_permit",
    "passport",
]
DOCUMENT_KINDS: tuple[DocumentKind, ...] = get_args(DocumentKind)

_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
_CHECK = "10X98765432"
# [0-9], not \d: \d matches every script's digits, and int() reads them (e.g. "੯" is 9).
_EIGHTEEN = re.compile(r"^[0-9]{17}[0-9X]$")
_HMT_DIVISIONS = {"810000", "820000", "830000"}
_PATTERNS: dict[DocumentKind, re.Pattern[str]] = {
    "hm_travel_permit": re.compile(r"^[HM]([0-9]{8}|[0-9]{10})$"),
    "tw_travel_permit": re.compile(r"^[0-9]{8}$"),
    "passport": re.compile(r"^[A-Z0-9]{5,17}$"),
}


class IdDocument(msgspec.Struct, frozen=True):
    """A validated document: its kind and the normalised number (upper case, no spaces)."""

    kind: DocumentKind
    number: str

    @property
    def masked(self) -> str:
        return mask_number(self.number)

    def lookup_key(self, key: bytes) -> str:
        """The keyed HMAC-SHA256 that stands for the number in storage and limits."""
        return lookup_key(self, key)


def check_character(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def _birth_date(digits: str) -> date | None:
    try:
        return date(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def parse_document(kind: str, number: str, *, field: str = "body.number") -> IdDocument:
    """Validate and normalise a document number.

    Args:
        kind: one of :data:`DOCUMENT_KINDS`.
        number: as typed or read; spaces are dropped and letters upper-cased.
        field: the field path named in the error.

    Raises:
        InvalidIdDocument: unknown kind, wrong form, impossible birth date or wrong check
            character. The message never repeats the number.
    """
    if kind not in DOCUMENT_KINDS:
        raise InvalidIdDocument(f"unknown document kind {kind[:40]!r}", field=field)
    doc_kind: DocumentKind = kind
    compact = re.sub(r"\s+", "", number)
    if not compact.isascii():  # before upper(): "ß".upper() is "SS"
        raise InvalidIdDocument(
            f"a {doc_kind} number has ASCII letters and digits only", field=field
        )
    normal = compact.upper()
    if doc_kind in _PATTERNS:
        if not _PATTERNS[doc_kind].fullmatch(normal):
            raise InvalidIdDocument(f"not a valid {doc_kind} number", field=field)
        return IdDocument(doc_kind, normal)
    if not _EIGHTEEN.fullmatch(normal):
        raise InvalidIdDocument(
            f"a {doc_kind} number has 17 digits and a check character", field=field
        )
    if doc_kind == "foreign_permanent_id":
        if not normal.startswith("9"):
            raise InvalidIdDocument("a foreign permanent resident ID starts with 9", field=field)
    else:
        hmt = normal[:6] in _HMT_DIVISIONS
        if doc_kind == "hmt_residence_permit" and not hmt:
            raise InvalidIdDocument(
                "a residence permit number starts with 810000, 820000 or 830000", field=field
            )
        if doc_kind == "resident_id" and (hmt or normal.startswith("9")):
            raise InvalidIdDocument("this number is not a resident ID card number", field=field)
    if _birth_date(normal[6:14]) is None:
        raise InvalidIdDocument(f"the {doc_kind} number has an impossible birth date", field=field)
    if check_character(normal[:17]) != normal[17]:
        raise InvalidIdDocument(f"the {doc_kind} number fails its check character", field=field)
    return IdDocument(doc_kind, normal)


def mask_number(number: str) -> str:
    """The form shown to staff and written to logs: the first 3 and last 4 characters of long
    numbers (first 1 and last 2 of short ones), the rest as ``*``."""
    head, tail = (3, 4) if len(number) >= 12 else (1, 2)
    if len(number) <= head + tail:
        return "*" * len(number)
    return number[:head] + "*" * (len(number) - head - tail) + number[-tail:]


def mask_name(name: str) -> str:
    """An applicant's name as public displays may show it: the family name's first character
    and ``*`` for the rest: 张三 → 张*, 欧阳娜娜 → 欧***."""
    name = name.strip()
    if not name:
        return ""
    return name[0] + "*" * max(1, len(name) - 1)


def lookup_key(document: IdDocument, key: bytes) -> str:
    """HMAC-SHA256 over kind and number: equal for the same document, useless without the key.

    Raises:
        ValueError: an empty key (a lookup key must never be a plain hash of the number).
    """
    if not key:
        raise ValueError("the HMAC key is empty")
    message = f"{document.kind}:{document.number}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
