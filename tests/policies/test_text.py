"""The one text module: QPS, durations, clock times and zones read the same everywhere."""

from __future__ import annotations

import pytest

from headroom.policies.text import (
    clock,
    duration_text,
    format_qps,
    local_iso,
    local_time,
    zone,
    zone_or_utc,
)

# 2025-06-18 12:00 UTC = 20:00 in Shanghai
NOON_UTC = 1750248000.0


@pytest.mark.parametrize(("v", "s"), [(410e3, "410k"), (1.25e6, "1.25M"), (950, "950")])
def test_format_qps(v: float, s: str) -> None:
    assert format_qps(v) == s


@pytest.mark.parametrize(
    ("seconds", "digits", "text"),
    [
        (7200, 6, "2h"),
        (5400, 6, "90m"),  # not whole hours: minutes
        (900, 6, "15m"),
        (100, 6, "1.66667m"),
        (100, 3, "1.67m"),
        (30, 6, "30s"),
        (12.3456, 3, "12.3s"),
    ],
)
def test_duration_text(seconds: float, digits: int, text: str) -> None:
    assert duration_text(seconds, digits) == text


def test_clock_and_local_time_in_the_zone() -> None:
    assert clock(NOON_UTC, "Asia/Shanghai") == "20:00"
    assert clock(NOON_UTC, "No/Such_Zone") == "12:00"  # text falls back to UTC
    assert local_time(NOON_UTC, "Asia/Shanghai", "%m-%d %H:%M") == "06-18 20:00"
    assert local_iso(NOON_UTC, "Asia/Shanghai") == "2025-06-18T20:00:00+08:00"


@pytest.mark.parametrize("bad", ["No/Such_Zone", 8, None])
def test_zone_names_a_bad_value(bad: object) -> None:
    with pytest.raises(ValueError, match="time zone name"):
        zone(bad)
    assert zone_or_utc("No/Such_Zone").key == "UTC"
