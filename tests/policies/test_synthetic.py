"""The broadened generated traces carry the properties issue 20 names (and only from the seed)."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from headroom.policies.calendar import DemandEvent
from headroom.policies.synthetic import (
    DAY,
    EventShape,
    LevelShift,
    Scenario,
    broad_scenario,
    event_multiplier,
    generate_trace,
)

SEEDS = (1, 2, 3, 4, 5, 6)


def sizes_of(sc: Scenario, kind: str) -> list[float]:
    return [s for e, s in zip(sc.calendar.events, sc.sizes, strict=True) if e.kind == kind]


@pytest.fixture(scope="module")
def scenarios() -> list[Scenario]:
    return [broad_scenario(s, days=35) for s in SEEDS]


def test_same_seed_same_scenario_other_seed_another() -> None:
    a, b, c = broad_scenario(7, days=10), broad_scenario(7, days=10), broad_scenario(8, days=10)
    assert np.array_equal(a.trace.v, b.trace.v) and a.calendar == b.calendar
    assert not np.array_equal(a.trace.v[: len(c.trace)], c.trace.v)


def test_calendar_declares_kind_and_labels_but_no_size(scenarios: list[Scenario]) -> None:
    for sc in scenarios:
        assert len(sc.calendar) == len(sc.sizes) == len(sc.shapes) >= 20
        for ev in sc.calendar.events:
            assert ev.expectation is None and ev.ramp == 0.0
            assert ev.kind and len(ev.labels) == 1
        assert len({e.name for e in sc.calendar.events}) == len(sc.calendar)


def test_sizes_span_0_9_to_11_within_a_kind_and_do_not_follow_the_previous(
    scenarios: list[Scenario],
) -> None:
    pairs: list[tuple[float, float]] = []
    for sc in scenarios:
        assert all(0.9 <= s <= 11.0 for s in sc.sizes)
        matches = sizes_of(sc, "match")
        assert len(matches) >= 12
        assert max(matches) / min(matches) >= 4.0  # one kind, sizes far apart
        logs = np.log([*sc.sizes])
        pairs += list(zip(logs[:-1], logs[1:], strict=True))
    pooled = [s for sc in scenarios for s in sizes_of(sc, "match")]
    assert min(pooled) < 1.1 and max(pooled) > 8.0
    prev, nxt = np.asarray(pairs).T
    assert abs(float(np.corrcoef(prev, nxt)[0, 1])) < 0.15  # ~190 pairs: sd of r ~0.07


def test_the_trace_carries_each_event_size(scenarios: list[Scenario]) -> None:
    """Measured peak over the hour before the ramp tracks the true size (daily shape and
    noise blur it, so correlation, not equality)."""
    measured, true = [], []
    for sc in scenarios[:3]:
        t, v = sc.trace.t, sc.trace.v
        for ev, size, sh in zip(sc.calendar.events, sc.sizes, sc.shapes, strict=True):
            start = ev.start + sh.jitter
            before = v[(t >= start - 3 * 3600) & (t < start - 3600)]
            during = v[(t >= start) & (t < ev.end + sh.jitter + sh.overrun)]
            if before.size and during.size:
                measured.append(math.log(np.percentile(during, 95) / np.median(before)))
                true.append(math.log(size))
    assert float(np.corrcoef(measured, true)[0, 1]) > 0.6


def test_overruns_spread_over_0_to_60_minutes(scenarios: list[Scenario]) -> None:
    overruns = np.asarray([sh.overrun for sc in scenarios for sh in sc.shapes]) / 60.0
    assert overruns.min() >= 0.0 and overruns.max() <= 60.0
    assert overruns.min() < 5.0 and overruns.max() > 55.0
    assert 0.2 < float(np.mean(overruns > 30.0)) < 0.8


def test_step_at_the_start_and_peak_near_or_after_the_declared_end() -> None:
    ev = DemandEvent("m", "match", start=10 * 3600.0, end=12 * 3600.0)
    sh = EventShape(overrun=1800.0, step=0.7, peak_at=0.9, ramp=600.0, ramp_share=0.2)
    t = np.arange(0.0, 16 * 3600.0, 60.0)
    m = event_multiplier(ev, t, 6.0, sh)
    assert m[t < ev.start - 600].max() == 1.0  # the true ramp, not a default
    just_before, at = m[t == ev.start - 60][0], m[t == ev.start][0]
    assert just_before < 6.0**0.2 + 1e-9 and at == pytest.approx(6.0**0.7)  # a step
    peak_time = t[int(np.argmax(m))]
    assert peak_time >= ev.end - 0.1 * 3600  # near or after the declared end
    for sc in (broad_scenario(s, days=21) for s in (1, 2)):
        late = [s.peak_at for e, s in zip(sc.calendar.events, sc.shapes, strict=True)
                if e.kind == "match"]  # fmt: skip
        assert min(late) >= 0.75


def test_several_events_on_some_days(scenarios: list[Scenario]) -> None:
    for sc in scenarios:
        zone = ZoneInfo(sc.tz)
        per_day = Counter(datetime.fromtimestamp(e.start, zone).date() for e in sc.calendar.events)
        assert max(per_day.values()) >= 2
        assert sum(n >= 2 for n in per_day.values()) >= 3


def test_kinds_seen_many_times_once_and_never_before(scenarios: list[Scenario]) -> None:
    for sc in scenarios:
        kinds = Counter(e.kind for e in sc.calendar.events)
        assert kinds["match"] >= 10 and kinds["livestream"] >= 3
        assert kinds["flash-sale"] == 2  # the second has been seen once
        assert kinds["premiere"] == 1 and kinds["launch"] == 1  # each unseen when it comes
        launch = next(e for e in sc.calendar.events if e.kind == "launch")
        assert launch.start >= sc.trace.t[0] + 0.75 * 35 * DAY
        hosts = Counter(e.labels.get("host") for e in sc.calendar.events if e.kind == "livestream")
        assert len(hosts) >= 2


def test_days_whose_base_level_doubles_or_triples(scenarios: list[Scenario]) -> None:
    for sc in scenarios:
        assert sc.shifts and all(2.0 <= s.factor <= 3.0 for s in sc.shifts)
    t = np.arange(0.0, 3 * DAY, 60.0)
    shift = LevelShift(start=DAY, end=1.5 * DAY, factor=2.5, edge=3600.0)
    plain = generate_trace(0.0, 3, 60.0, 500.0, seed=3)
    shifted = generate_trace(0.0, 3, 60.0, 500.0, seed=3, level_shifts=[shift])
    ratio = shifted.v / plain.v
    assert np.allclose(ratio[(t >= DAY + 3600) & (t < 1.5 * DAY - 3600)], 2.5)
    assert np.allclose(ratio[(t < DAY) | (t >= 1.5 * DAY)], 1.0)
    edge = ratio[(t > DAY) & (t < DAY + 3600)]
    assert np.all(np.diff(edge) > 0) and edge.min() > 1.0 and edge.max() < 2.5
