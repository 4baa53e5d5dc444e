"""CSV traces: ISO with offsets, epoch seconds, gaps, and one-line errors."""

from __future__ import annotations

import math

import pytest

from headroom.policies.errors import TraceError
from headroom.policies.trace import format_trace_csv, parse_trace_csv


def test_iso_with_offset_and_epoch_agree() -> None:
    iso = parse_trace_csv(
        "timestamp,qps\n2026-06-18T20:00:00+08:00,10\n2026-06-18T20:01:00+08:00,12\n"
    )
    epoch = parse_trace_csv("timestamp,qps\n1781784000,10\n1781784060,12\n")
    assert list(iso.t) == list(epoch.t)
    assert list(iso.v) == [10.0, 12.0]


def test_blank_value_is_gap_not_zero() -> None:
    s = parse_trace_csv("timestamp,qps\n0,1\n60,\n120,3\n")
    assert math.isnan(s.v[1])
    assert parse_trace_csv(format_trace_csv(s)).t.tolist() == [0, 60, 120]


def test_unsorted_rows_are_sorted() -> None:
    s = parse_trace_csv("timestamp,qps\n120,3\n0,1\n60,2\n")
    assert s.v.tolist() == [1, 2, 3]


def test_spreadsheet_exports_byte_order_mark_and_epoch_milliseconds() -> None:
    seconds = parse_trace_csv("timestamp,qps\n1781784000,10\n1781784060,12\n")
    bom = parse_trace_csv("\ufefftimestamp,qps\r\n1781784000,10\r\n1781784060,12\r\n")
    millis = parse_trace_csv("timestamp,qps\n1781784000000,10\n1781784060000,12\n")
    assert bom.t.tolist() == millis.t.tolist() == seconds.t.tolist()
    assert bom.v.tolist() == millis.v.tolist() == [10.0, 12.0]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("time,foo\n0,1\n", "needs columns"),
        (
            "timestamp,qps\n2026-06-18T20:00:00,1\n",
            "t.csv: line 2: timestamp: must be an ISO-8601 time with an offset",
        ),
        ("timestamp,qps\n0,abc\n", "t.csv: line 2: qps: must be a number, not 'abc'"),
        ("timestamp,qps\n0,-1\n", ">= 0"),
        ("timestamp,qps\n0,1\n0,2\n", "t.csv: timestamp: 0 is given twice"),
        ("timestamp,qps\n", "no data rows"),
        (
            "timestamp,qps\n1e300,1\n",
            "t.csv: line 2: timestamp: must be in 1970..9999 (epoch s or ms), not '1e300'",
        ),
        ("timestamp,qps\nnan,1\n", "t.csv: line 2: timestamp: must be a finite number, not 'nan'"),
    ],
)
def test_errors_are_one_line_naming_the_place(text: str, needle: str) -> None:
    with pytest.raises(TraceError) as info:
        parse_trace_csv(text, "t.csv")
    message = str(info.value)
    assert needle in message
    assert "\n" not in message
    assert message.startswith("t.csv")
