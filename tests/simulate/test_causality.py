"""Causality: changing the trace after t changes no decision at or before t (oracle aside)."""

from __future__ import annotations

import numpy as np
import pytest

from headroom.policies.baselines.suite import build_strategies
from headroom.policies.calendar import Calendar, DemandEvent, EventKind
from headroom.policies.series import Series
from headroom.policies.simulate import run_strategy, target_delay
from tests.simulate.helpers import policy

DAY = 86400.0
T0 = 1_700_006_400.0  # a midnight UTC


def daily_trace(days: float, seed: int) -> Series:
    rng = np.random.default_rng(seed)
    t = T0 + np.arange(int(days * 1440), dtype=np.float64) * 60
    v = 1000 * (1.5 + np.sin(2 * np.pi * (t - T0) / DAY)) * rng.lognormal(0, 0.05, t.size)
    return Series(t, v)


def orders_until(result, cut: float) -> list[tuple[float, int, int]]:
    return [(o.t, o.from_units, o.to_units) for o in result.orders if o.t <= cut]


@pytest.mark.parametrize("name", ["reactive_hpa", "headroom"])
def test_future_samples_do_not_change_past_decisions(name: str) -> None:
    spec = policy(capacity=100, min_units=1, max_units=200, delay=600)
    target = spec.targets[0]
    event = DemandEvent(
        "launch", EventKind.LIVESTREAM, T0 + 1.5 * DAY, T0 + 1.5 * DAY + 7200, ramp=1800
    )
    calendar = Calendar.of([event])
    a = daily_trace(2.0, seed=1)
    cut = T0 + 1.4 * DAY
    later = a.t >= cut
    b = Series(a.t, np.where(later, a.v * np.linspace(1, 8, a.t.size), a.v))
    runs = []
    for tr in (a, b):
        (strategy,) = build_strategies(tr, calendar, spec, target, [name])
        runs.append(
            run_strategy(tr, strategy, target=target, delay=target_delay(target), initial_units=25)
        )
    assert orders_until(runs[0], cut) == orders_until(runs[1], cut)
    assert orders_until(runs[0], cut)  # it did decide something before the cut
    assert runs[0].orders != runs[1].orders  # and the change after the cut was seen later


def test_the_oracle_does_see_the_future() -> None:
    spec = policy(capacity=100, min_units=1, max_units=200, delay=600)
    target = spec.targets[0]
    a = daily_trace(1.0, seed=2)
    b = Series(a.t, np.where(a.t >= T0 + 0.5 * DAY, a.v * 3, a.v))
    cut = T0 + 0.5 * DAY
    runs = []
    for tr in (a, b):
        (strategy,) = build_strategies(tr, Calendar(), spec, target, ["oracle"])
        runs.append(
            run_strategy(tr, strategy, target=target, delay=target_delay(target), initial_units=25)
        )
    assert orders_until(runs[0], cut) != orders_until(runs[1], cut)
