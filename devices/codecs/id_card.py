"""The text of a second-generation resident ID card (D2, O3) as a SAM module returns it.

The "read base info" reply of the SAM protocol (:mod:`devices.codecs.sam`, command ``30 01``)
carries a 4-byte length header, 256 bytes of text and 1024 bytes of photo. The text is UCS-2
little-endian (GB 13000 UCS-2, i.e. UTF-16LE without surrogates), fixed-width fields padded
with spaces (GA 467 §7, reproduced in docs/devices/id-reader.md with sources):

=========  ======  ======  =====================================================
field      offset  bytes   content
=========  ======  ======  =====================================================
name       0       30      15 characters
sex        30      2       code of GB/T 2261.1: 0 unknown, 1 male, 2 female, 9 unstated
nation     32      4       2-digit code of GB 3304 (01..56, 97, 98)
birth      36      16      ``YYYYMMDD``
address    52      70      35 characters
id_number  122     36      18 characters (GB 11643)
authority  158     30      15 characters (签发机关)
valid_from 188     16      ``YYYYMMDD``
valid_to   204     16      ``YYYYMMDD``, or ``长期`` (no end date) padded with spaces
reserved   220     36
=========  ======  ======  =====================================================

The photo is WLT-compressed and only licensed libraries decode it: it is kept as opaque bytes.

Privacy: :class:`IdCard` never shows the name or the ID number in its ``repr``/``str`` (it
shows :meth:`IdCard.masked`), so a stray log line cannot leak them. Pure: no I/O.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec

from devices.errors import EncodeError, FrameError
from hub.domain import identity

TEXT_BYTES = 256
PHOTO_BYTES = 1024
LONG_TERM = "长期"
# GB/T 2261.1 sex codes as printed on the card.
SEXES = {"0": "未知", "1": "男", "2": "女", "9": "未说明"}
# GB 3304 nationality codes (names as printed on the card, without 族).
NATIONS = {
    "01": "汉", "02": "蒙古", "03": "回", "04": "藏", "05": "维吾尔", "06": "苗", "07": "彝",
    "08": "壮", "09": "布依", "10": "朝鲜", "11": "满", "12": "侗", "13": "瑶", "14": "白",
    "15": "土家", "16": "哈尼", "17": "哈萨克", "18": "傣", "19": "黎", "20": "傈僳", "21": "佤",
    "22": "畲", "23": "高山", "24": "拉祜", "25": "水", "26": "东乡", "27": "纳西", "28": "景颇",
    "29": "柯尔克孜", "30": "土", "31": "达斡尔", "32": "仫佬", "33": "羌", "34": "布朗",
    "35": "撒拉", "36": "毛南", "37": "仡佬", "38": "锡伯", "39": "阿昌", "40": "普米",
    "41": "塔吉克", "42": "怒", "43": "乌孜别克", "44": "俄罗斯", "45": "鄂温克", "46": "德昂",
    "47": "保安", "48": "裕固", "49": "京", "50": "塔塔尔", "51": "独龙", "52": "鄂伦春",
    "53": "赫哲", "54": "门巴", "55": "珞巴", "56": "基诺", "97": "其他",
    "98": "外国血统中国籍人士",
}  # fmt: skip

# (field, offset, size in bytes) of the 256-byte text block, in order.
TEXT_LAYOUT: tuple[tuple[str, int, int], ...] = (
    ("name", 0, 30),
    ("sex", 30, 2),
    ("nation", 32, 4),
    ("birth", 36, 16),
    ("address", 52, 70),
    ("id_number", 122, 36),
    ("authority", 158, 30),
    ("valid_from", 188, 16),
    ("valid_to", 204, 16),
    ("reserved", 220, 36),
)
_PAD = " \x00"


class MaskedIdCard(msgspec.Struct, frozen=True, kw_only=True):
    """What logs, displays and staff lists may show of a card."""

    name: str
    id_number: str
    sex: str
    nation: str
    valid_to: str


class IdCard(msgspec.Struct, frozen=True, kw_only=True):
    """The decoded text of a card, plus its photo as opaque WLT bytes.

    ``valid_to`` is ``None`` for a card without end date (``长期``). ``sex`` and ``nation``
    are the names of ``sex_code`` and ``nation_code``. ``repr()`` is masked (see module
    docstring); ``msgspec`` encoding is not, and is for the one console that asked.
    """

    name: str
    sex_code: str
    nation_code: str
    birth_date: date
    address: str
    id_number: str
    authority: str
    valid_from: date
    valid_to: date | None
    photo: bytes = b""

    @property
    def sex(self) -> str:
        """``男``, ``女``, ``未说明`` (code 9) or ``未知`` (code 0 and any unknown code)."""
        return SEXES.get(self.sex_code, SEXES["0"])

    @property
    def nation(self) -> str | None:
        """The GB 3304 name of ``nation_code``; ``None`` for a code outside the table."""
        return NATIONS.get(self.nation_code)

    def masked(self) -> MaskedIdCard:
        """Name as ``张*``, ID number as ``110***********1234`` (hub.domain.identity); no
        address, no birth date."""
        return MaskedIdCard(
            name=mask_name(self.name),
            id_number=mask_id_number(self.id_number),
            sex=self.sex,
            nation=self.nation or "未知",
            valid_to=LONG_TERM if self.valid_to is None else self.valid_to.isoformat(),
        )

    def __repr__(self) -> str:
        m = self.masked()
        return (
            f"IdCard(name={m.name!r}, id_number={m.id_number!r}, sex={m.sex!r}, "
            f"nation={m.nation!r}, valid_to={m.valid_to!r})"
        )

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        # rich (and anything else using this protocol) would otherwise list the raw fields.
        masked = self.masked()
        return [(field, getattr(masked, field)) for field in MaskedIdCard.__struct_fields__]


def mask_id_number(number: str) -> str:
    """The hub's one masking rule (hub.domain.identity.mask_number): first 3 and last 4."""
    return identity.mask_number(number)


def mask_name(name: str) -> str:
    """The hub's one masking rule (hub.domain.identity.mask_name): 张三 → 张*."""
    return identity.mask_name(name)


def parse_base_info(data: bytes) -> IdCard:
    """The card in the data of a successful "read base info" reply (SW3 0x90).

    Args:
        data: the reply's data: text length (2 bytes, big-endian), photo length (2 bytes,
            big-endian), the text, the photo.

    Raises:
        FrameError: lengths that do not add up, a text block other than 256 bytes, text that
            is not UTF-16LE, or a date field that is not a date (the message never repeats
            field content).
    """
    if len(data) < 4:
        raise FrameError("base info shorter than its 4-byte length header")
    text_len = int.from_bytes(data[0:2], "big")
    photo_len = int.from_bytes(data[2:4], "big")
    if text_len != TEXT_BYTES:
        raise FrameError(f"base info text is {text_len} bytes, not {TEXT_BYTES}")
    if len(data) != 4 + text_len + photo_len:
        raise FrameError(
            f"base info is {len(data)} bytes, its header says {4 + text_len + photo_len}"
        )
    text = data[4 : 4 + text_len]
    # The reserved slot is not decoded: nothing is defined in it.
    fields = {
        name: _field(text, name, offset, size)
        for name, offset, size in TEXT_LAYOUT
        if name != "reserved"
    }
    valid_to = fields["valid_to"]
    return IdCard(
        name=fields["name"],
        sex_code=fields["sex"],
        nation_code=fields["nation"],
        birth_date=_date(fields["birth"], "birth"),
        address=fields["address"],
        id_number=fields["id_number"],
        authority=fields["authority"],
        valid_from=_date(fields["valid_from"], "valid_from"),
        valid_to=None if valid_to == LONG_TERM else _date(valid_to, "valid_to"),
        photo=bytes(data[4 + text_len :]),
    )


def encode_base_info(card: IdCard, *, photo_bytes: int = PHOTO_BYTES) -> bytes:
    """The data of a "read base info" reply for ``card`` (inverse of :func:`parse_base_info`);
    the photo is padded with zero bytes to ``photo_bytes``.

    Raises:
        EncodeError: a field longer than its slot, a character outside the BMP (UCS-2 has no
            surrogates), or a photo longer than ``photo_bytes``.
    """
    if len(card.photo) > photo_bytes or photo_bytes > 0xFFFF:
        raise EncodeError(f"the photo is {len(card.photo)} bytes, its slot {photo_bytes}")
    values = {
        "name": card.name,
        "sex": card.sex_code,
        "nation": card.nation_code,
        "birth": card.birth_date.strftime("%Y%m%d"),
        "address": card.address,
        "id_number": card.id_number,
        "authority": card.authority,
        "valid_from": card.valid_from.strftime("%Y%m%d"),
        "valid_to": LONG_TERM if card.valid_to is None else card.valid_to.strftime("%Y%m%d"),
        "reserved": "",
    }
    text = bytearray()
    for name, _offset, size in TEXT_LAYOUT:
        value = values[name]
        if any(ord(c) > 0xFFFF for c in value):
            raise EncodeError(f"{name} has a character outside UCS-2")
        raw = value.encode("utf-16-le")
        if len(raw) > size:
            raise EncodeError(f"{name} is longer than its {size // 2} characters")
        text += raw + " ".encode("utf-16-le") * ((size - len(raw)) // 2)
    photo = card.photo.ljust(photo_bytes, b"\x00")
    header = TEXT_BYTES.to_bytes(2, "big") + len(photo).to_bytes(2, "big")
    return header + bytes(text) + photo


def _field(text: bytes, name: str, offset: int, size: int) -> str:
    try:
        value = text[offset : offset + size].decode("utf-16-le")
    except UnicodeDecodeError:
        raise FrameError(f"base info field {name} is not UTF-16LE text") from None
    return value.rstrip(_PAD)


def _date(value: str, name: str) -> date:
    if len(value) != 8 or not value.isascii() or not value.isdigit():
        raise FrameError(f"base info field {name} is not a YYYYMMDD date")
    try:
        return date(int(value[0:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        raise FrameError(f"base info field {name} is not a valid date") from None
