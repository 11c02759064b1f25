"""A dry run's held rows read back as the contacts the controller would read from the topic."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.campaign.contacts import contact_from_row
from orchestrator.campaign.upload_spool import SpoolFull, UploadSpool


async def test_rows_come_back_as_the_topic_would_give_them() -> None:
    rows: list[dict[str, Any]] = [
        {"number": "4155550100", "first_name": "Chen", "id": "0"},  # id: the row number
        {"number": "+14155550101", "first_name": "Ann", "id": "c-7"},
        {"phone": "+14155550102", "variables": {"plan": "gold"}, "age": 41, "vip": None},
        {"number": "nope", "timezone": "Europe/Paris", "id": "3"},
    ]
    with UploadSpool(64 * 1024, in_memory=64) as spool:  # past 64 bytes: on disk
        for row in rows:
            await spool.add_contact(dict(row))
        await spool.add_dnc("+14155550101")
        got = list(spool.contacts("US"))
        assert got == [contact_from_row(i, row, "US") for i, row in enumerate(rows)]
        assert list(spool.contacts("US")) == got  # read again: from the start
        assert spool.rows == 4 and "+14155550101" in spool.dnc


async def test_a_spool_over_its_cap_is_refused() -> None:
    with UploadSpool(1024) as spool, pytest.raises(SpoolFull, match="over 1024 bytes"):
        for _ in range(200):
            await spool.add_contact({"number": "+14155550100", "a": "", "b": ""})
