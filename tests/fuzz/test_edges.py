"""Fuzzing the edges (issue 21, items 9 and 10): numbers past their documented range
(``policies/bounds.py``: infinities, NaN, 1e23 units, 1.7e308 multipliers, year 10000,
99999999999-day durations) and calendar bombs (nested YAML anchors, RRULEs that repeat
every second or minute since 1970, huge COUNTs) through the real ``headroom`` CLI.

Every case must end as one printable ``error:`` line naming the file and the field (or,
for a rule that stays within the bounds, a clean success), with no traceback, and a bomb
in seconds: the bounds are checked before anything is expanded.
"""

from __future__ import annotations

import copy
import tempfile
import time
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.test_parsers import (
    CALENDAR,
    EVENT,
    POLICY,
    TRACE,
    _set,
    _write,
    check_refused,
    fuzz,
    invoke,
)

BOMB_SECONDS = 20.0  # one case, under load; the review's bombs ran 70 s to forever

# Values past every bound: YAML's infinities and NaN, overflowing literals, and finite
# numbers just or far past the range.
NOT_FINITE = [".inf", "-.inf", ".nan", "1.0e+400", "-1.0e+400"]
_POLICY_EDGES: list[tuple[tuple[Any, ...], list[str], str]] = [
    (("targets", 0, "capacityPerUnit"), [*NOT_FINITE, "1.0e+13", "1.7e+308"], "capacityPerUnit"),
    (("targets", 0, "maxUnits"), ["100001", "100000000000000000000000", "1.0e+23", ".inf"],
     "maxUnits"),
    (("targets", 0, "minUnits"), ["100001", "1.0e+23", ".nan"], "minUnits"),
    (("targets", 0, "maxStep"), ["100001", "1.0e+23"], "maxStep"),
    (("targets", 0, "provisioning", "fixedSeconds"), ["2d", "99999999999d", ".inf", "1.0e+300"],
     "fixedSeconds"),
    (("targets", 0, "provisioning", "dataBytes"), ["1.0e+16", ".inf", "1.0e+400"], "dataBytes"),
    (("forecast", "horizon"), ["32d", "99999999999d", "1.0e+300", ".inf"], "horizon"),
    (("forecast", "history"), ["401d", "99999999999d"], "history"),
    (("headroomFactor",), ["1001", ".inf", "1.7e+308"], "headroomFactor"),
    (("slo", "latencyP99Ms"), [".inf", ".nan", "1.0e+300"], "latencyP99Ms"),
    (("budget", "maxUnitHours"), [".inf", "1.0e+300"], "maxUnitHours"),
]  # fmt: skip
_EVENT_EDGES: list[tuple[tuple[str, ...], list[str], str]] = [
    (("expectation", "multiplier"), [*NOT_FINITE, "1001", "1.7e+308"], "multiplier"),
    (("expectation", "peak_qps"), [*NOT_FINITE, "1.0e+13"], "peak_qps"),
    (("start",), ["253402300800", "1.0e+300", ".inf"], "start"),
    (("ramp",), ["401d", "99999999999d"], "ramp"),
]


def _yaml_with(doc: dict[str, Any], path: tuple[Any, ...], raw: str) -> str:
    """``doc`` as YAML with the value at ``path`` replaced by the literal ``raw``."""
    marked = copy.deepcopy(doc)
    _set(marked, path, "__EDGE__")
    return yaml.safe_dump(marked, allow_unicode=True).replace("__EDGE__", raw)


def _edges(table: list[Any]) -> st.SearchStrategy[tuple[Any, str, str]]:
    """(path, one of its values past the range, the field the error must name)."""
    return st.sampled_from(table).flatmap(
        lambda edge: st.tuples(st.just(edge[0]), st.sampled_from(edge[1]), st.just(edge[2]))
    )


@fuzz(200)
@given(_edges(_POLICY_EDGES))
def test_policy_numbers_past_their_range(case: tuple[tuple[Any, ...], str, str]) -> None:
    path, raw, field = case
    with tempfile.TemporaryDirectory() as folder:
        policy = _write(folder, "policy.yaml", _yaml_with(POLICY, path, raw))
        check_refused(["policy", "validate", str(policy)], {"policy": policy}, field)


@fuzz(100)
@given(_edges(_EVENT_EDGES))
def test_event_numbers_past_their_range(case: tuple[tuple[str, ...], str, str]) -> None:
    path, raw, field = case
    doc = copy.deepcopy(CALENDAR)
    doc["events"] = [copy.deepcopy(EVENT)]
    if path[0] == "start":
        doc["events"][0].pop("end")
        doc["events"][0]["duration"] = "1h"
    with tempfile.TemporaryDirectory() as folder:
        text = _yaml_with(doc, ("events", 0, *path), raw).replace("peak_qps", "peakQps")
        calendar = _write(folder, "cal.yaml", text)
        for command in ("validate", "list"):
            fields = (field, "peakQps", "years")
            check_refused(["calendar", command, str(calendar)], {"calendar": calendar}, *fields)


@fuzz(100)
@given(
    st.sampled_from(["--horizon", "--provisioning-delay"]),
    st.sampled_from(["32d", "2d", "401d", "99999999999d", "1e300", "9" * 40 + "s"]),
)
def test_cli_durations_past_their_range(option: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        trace = _write(folder, "t.csv", "timestamp,qps\n" + "".join(f"{a},{b}\n" for a, b in TRACE))
        policy = _write(folder, "p.yaml", yaml.safe_dump(POLICY))
        if option == "--horizon":
            args = ["forecast", "--history", str(trace), option, value]
        else:
            args = ["simulate", "--trace", str(trace), "--policy", str(policy), option, value]
        if value == "2d" and option == "--horizon":
            return  # within the 31d horizon
        check_refused(args, {}, option)


@st.composite
def alias_bomb(draw: st.DrawFn) -> str:
    """Nested anchors and aliases, "billion laughs" shaped, in a calendar or a policy."""
    depth = draw(st.integers(min_value=1, max_value=9))
    width = draw(st.integers(min_value=2, max_value=9))
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, depth + 1):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    lines.append(draw(st.sampled_from([f"events: [*l{depth}]", f"targets: [*l{depth}]"])))
    return "\n".join(lines) + "\n"


@fuzz(100)
@given(alias_bomb(), st.sampled_from(["calendar", "policy"]))
def test_yaml_alias_bombs_are_refused_at_once(text: str, kind: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, f"{kind}.yaml", text)
        started = time.monotonic()
        check_refused([kind, "validate", str(path)], {kind: path}, "anchors and aliases")
        assert time.monotonic() - started < BOMB_SECONDS


@st.composite
def rrule_bomb(draw: st.DrawFn) -> str:
    freq = draw(st.sampled_from(["SECONDLY", "MINUTELY", "HOURLY", "DAILY"]))
    parts = [f"FREQ={freq}"]
    if draw(st.booleans()):
        parts.append(f"COUNT={draw(st.sampled_from([10, 5000, 1_000_000, 10**9]))}")
    for by, top in (("BYMINUTE", 59), ("BYSECOND", 59), ("BYHOUR", 23)):
        if draw(st.booleans()):
            values = draw(st.lists(st.integers(0, top), min_size=1, max_size=60, unique=True))
            parts.append(f"{by}={','.join(map(str, values))}")
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.integers(1, 1000))}")
    year = draw(st.sampled_from([1970, 2000, 2025, 2026]))
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:b@t\r\n"
        f"SUMMARY:Bomb\r\nDTSTART:{year}0101T000000Z\r\nDURATION:PT1S\r\n"
        f"RRULE:{';'.join(parts)}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


@pytest.mark.slow
@fuzz(60)
@given(rrule_bomb())
def test_rrule_bombs_end_in_seconds(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "cal.ics", text)
        started = time.monotonic()
        res = invoke(["calendar", "validate", str(path)])
        took = time.monotonic() - started
        assert res.exception is None, repr(res.exception)
        assert took < BOMB_SECONDS, (took, text)
        if res.exit_code != 0:
            fields = ("Bomb", "cannot expand recurring events")
            check_refused(["calendar", "validate", str(path)], {"calendar": path}, *fields)
