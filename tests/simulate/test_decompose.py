"""bench/foresight.py's decomposition: where one run's unit-hours and minutes went."""

from __future__ import annotations

import numpy as np
import pytest

from bench.foresight import WINDOWS, decompose, window_labels
from headroom.policies.calendar import Calendar, DemandEvent
from headroom.policies.simulate import fixed_delay, simulate
from tests.simulate.helpers import Schedule, policy, trace

HOUR = 3600.0
T0 = 1_700_000_000.0


def event(name: str, start_h: float, end_h: float) -> DemandEvent:
    return DemandEvent(name, "match", start=T0 + start_h * HOUR, end=T0 + end_h * HOUR)


def test_windows_inside_beats_after_beats_before() -> None:
    cal = Calendar.of([event("a", 3, 4), event("b", 4.5, 5)])
    t = T0 + np.arange(600) * 60.0
    got = window_labels(t, cal)
    minute = np.arange(600)

    def at(lo_h: float, hi_h: float) -> set[int]:
        return set(got[(minute >= lo_h * 60) & (minute < hi_h * 60)].tolist())

    assert at(0, 2) == {3} and at(2, 3) == {2}  # the rest, then 1 h before a
    assert at(3, 4) == {0}  # inside a
    assert at(4, 4.5) == {1}  # after a beats before b
    assert at(4.5, 5) == {0}  # inside b beats after a
    assert at(5, 7) == {1} and at(7, 10) == {3}


def test_split_adds_up_to_the_run_and_lands_in_the_right_window() -> None:
    """Headroom holds 2 units (4 inside the event, 3 the hour before); the HPA drops to 1,
    short every minute of 150 QPS at 100 per unit."""
    cal = Calendar.of([event("a", 3, 4)])
    n = 600
    minute = np.arange(n)
    units = np.full(n, 2)
    units[(minute >= 120) & (minute < 180)] = 3
    units[(minute >= 180) & (minute < 240)] = 4
    head, hpa = Schedule(units.tolist()), Schedule([1] * n)
    head.name, hpa.name = "headroom", "reactive_hpa"
    spec = policy(capacity=100.0)
    sim = simulate(
        trace([150.0] * n, start=T0),
        [head, hpa],
        target=spec.targets[0],
        delay=fixed_delay(60.0),
        initial_units=2,
    )
    split = {w.window: w for w in decompose(sim, cal)}
    assert list(split) == list(WINDOWS)
    expect = {  # window: (hours, extra unit-hours, headroom min, hpa min)
        "inside events": (1, 3 * 1, 0, 60),
        "2 h after events end": (2, 1 * 2, 0, 120),
        "1 h before events": (1, 2 * 1, 0, 60),
        "the rest": (6, 1 * 6, 0, 360),
    }
    for name, (hours, extra, hm, am) in expect.items():
        w = split[name]
        assert w.hours == pytest.approx(hours)
        assert w.extra_unit_hours == pytest.approx(extra)
        assert (w.headroom_minutes, w.hpa_minutes) == pytest.approx((hm, am))
    r, a = sim.results["headroom"], sim.results["reactive_hpa"]
    total = sum(w.extra_unit_hours for w in split.values())
    assert total == pytest.approx(r.unit_hours - a.unit_hours)
    assert sum(w.hpa_minutes for w in split.values()) == pytest.approx(a.underprovisioned_minutes)
