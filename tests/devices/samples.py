"""Sample data that several device tests use: a test ID card and a paper ticket."""

from __future__ import annotations

from datetime import date

from devices.codecs.escpos import PrintedTicket
from devices.codecs.id_card import IdCard

CARD = IdCard(
    name="王测试",
    sex_code="2",
    nation_code="01",
    birth_date=date(1949, 12, 31),
    address="北京市朝阳区测试街道示例路1号",
    id_number="11010519491231002X",  # GB 11643-1999's example number, check character valid
    authority="北京市公安局朝阳分局",
    valid_from=date(2020, 1, 1),
    valid_to=None,
    photo=b"WLT" + bytes(1021),
)

TICKET = PrintedTicket(
    hall_name="北京市朝阳区政务服务中心",
    number="A001",
    group_name="社保业务",
    people_ahead=3,
    issued_at="2026-11-26 09:30",
    qr_url="https://hall.example.cn/t/Zk3q9",
    header="欢迎光临",
    footer=["请保管好号票"],
)
"""A ticket with a header and a footer line."""
