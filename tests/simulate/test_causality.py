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


def _perturb(a: Series, cut: float, how: str, seed: int) -> Series:
    rng = np.random.default_rng(seed)
    later = a.t >= cut
    if how == "surge":
        v = np.where(later, a.v * np.linspace(1, 8, a.t.size), a.v)
    elif how == "gap":
        v = np.where(later, np.nan, a.v)  # the future missing entirely
    else:  # "noise": a different random future of the same level
        v = np.where(later, a.v * rng.lognormal(0, 0.5, a.t.size), a.v)
    return Series(a.t, v)


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
@pytest.mark.parametrize("how", ["surge", "gap", "noise"])
@pytest.mark.parametrize("name", ["reactive_hpa", "headroom"])
def test_no_perturbation_of_the_future_changes_a_past_decision(
    name: str, how: str, seed: int
) -> None:
    """The strategies get the whole trace and must cut it themselves; each future is
    changed after a different cut, and no decision up to the cut may move."""
    spec = policy(capacity=100, min_units=1, max_units=200, delay=600)
    target = spec.targets[0]
    rng = np.random.default_rng(seed)
    start = T0 + rng.uniform(1.3, 1.6) * DAY
    event = DemandEvent("launch", EventKind.LIVESTREAM, start, start + 7200, ramp=1800)
    a = daily_trace(2.0, seed=seed)
    cut = T0 + rng.uniform(1.1, 1.5) * DAY
    b = _perturb(a, cut, how, seed)
    runs = []
    for tr in (a, b):
        (strategy,) = build_strategies(tr, Calendar.of([event]), spec, target, [name])
        runs.append(
            run_strategy(tr, strategy, target=target, delay=target_delay(target), initial_units=25)
        )
    assert orders_until(runs[0], cut) == orders_until(runs[1], cut)
    assert orders_until(runs[0], cut)


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_the_control_loop_cuts_a_history_that_runs_past_now(seed: int) -> None:
    """A history provider that (wrongly) returns samples after ``now``: the loop's
    forecast and decision at ``now`` must not depend on them."""
    from headroom.controller.loop import ControlLoop, ListSink
    from headroom.policies.forecast.model import HeadroomForecaster
    from tests.controller.test_loop import ManualClock, RecordingTarget, _spec

    spec = _spec()
    a = daily_trace(16.0, seed=seed)
    now = T0 + 15 * DAY + float(np.random.default_rng(seed).uniform(8, 20)) * 3600
    b = _perturb(a, now, "surge", seed)
    reports = []
    for tr in (a, b):

        class Leaky:
            def history(self, end: float, tr: Series = tr) -> Series:
                return tr  # everything, the future included

        loop = ControlLoop(
            spec, targets={"cart": RecordingTarget("cart", 3)}, history=Leaky(),
            calendar=Calendar, clock=ManualClock(now),
            forecaster=lambda: HeadroomForecaster(spec.forecast), sink=ListSink(),
        )  # fmt: skip
        reports.append(loop.reconcile())
    first, second = reports
    assert first.forecast is not None and second.forecast is not None
    np.testing.assert_array_equal(first.forecast.level(0.9), second.forecast.level(0.9))
    assert first.demand_now == second.demand_now
    assert [t.decision for t in first.targets] == [t.decision for t in second.targets]
