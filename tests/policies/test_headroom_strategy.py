"""The simulator's ``headroom`` strategy (the driver and its rule, on the simulator's
clock): it acts on a surprise at the next sample, sees only samples before its decision,
and brings a fresh forecast forward on a surprise at most once a minute."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from headroom.policies.baselines.headroom import HeadroomStrategy
from headroom.policies.baselines.suite import build_strategies
from headroom.policies.calendar import Calendar
from headroom.policies.forecast.base import Forecast
from headroom.policies.series import Series
from headroom.policies.simulate import run_strategy, target_delay
from tests.policies.support import cart_policy as policy

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
NO_EVENTS = Calendar.of([])


def _step_trace(jump_at: int, minutes: int = 240, after: float = 400e3) -> Series:
    t = T0 + 60.0 * np.arange(minutes, dtype=np.float64)
    v = np.full(minutes, 150e3)
    v[jump_at:] = after
    return Series(t, v)


def test_headroom_strategy_reacts_at_the_next_sample_and_only_to_the_past() -> None:
    spec = policy(target={"provisioning": {"fixedSeconds": "2m"}})
    target = spec.targets[0]
    jump = 90
    trace = _step_trace(jump)
    (head,) = build_strategies(trace, NO_EVENTS, spec, target, ["headroom"])
    assert isinstance(head, HeadroomStrategy)
    r = run_strategy(trace, head, target=target, delay=target_delay(target), initial_units=3)
    outs = [o for o in r.orders if o.to_units > o.from_units]
    # No forecast foresaw the jump (no event): the first scale-out is the reactive half's,
    # at the first 15 s tick after the jump's sample (a decision at t sees samples before t).
    assert outs and outs[0].t == float(trace.t[jump]) + 15.0
    assert outs[0].to_units == 5  # ceil(400k / 80k)
    assert any("reactive: observed 400k QPS" in reason for _, reason in head.reasons)
    # Causal: a different future after the jump changes nothing up to the jump sample.
    other = _step_trace(jump, after=900e3)
    (head2,) = build_strategies(other, NO_EVENTS, spec, target, ["headroom"])
    r2 = run_strategy(other, head2, target=target, delay=target_delay(target), initial_units=3)
    cut = float(trace.t[jump])
    assert [o for o in r.orders if o.t <= cut] == [o for o in r2.orders if o.t <= cut]
    assert r.underprovisioned_minutes <= 3.0  # the 2-minute delay plus the sample it saw


def test_on_a_one_second_trace_surprises_refresh_the_forecast_at_most_once_a_minute() -> None:
    """A noisy 1-second trace crosses the forecast's band every few seconds: each crossing
    brings a fresh forecast forward, but no more than once a minute (the guard still looks
    at every sample), so a day at 1-second resolution replays in seconds."""
    spec = policy(target={"provisioning": {"fixedSeconds": "2m"}})
    target = spec.targets[0]
    n = 3 * 3600
    rng = np.random.default_rng(5)
    t = T0 + np.arange(n, dtype=np.float64)
    trace = Series(t, 150e3 * np.exp(0.15 * rng.standard_normal(n)))
    (head,) = build_strategies(trace, NO_EVENTS, spec, target, ["headroom"])
    assert isinstance(head, HeadroomStrategy)
    calls: list[float] = []
    predict = head.forecaster.predict

    def counted(start: float, *args: object, **kwargs: object) -> Forecast:
        calls.append(start)
        return predict(start, *args, **kwargs)  # type: ignore[arg-type]

    head.forecaster.predict = counted  # type: ignore[method-assign]
    run_strategy(trace, head, target=target, delay=target_delay(target), initial_units=3)
    gaps = np.diff(calls)
    assert len(calls) > 60  # surprises did bring forecasts forward (15-min cadence: ~12)
    assert gaps.min() >= 60.0
    assert len(calls) <= (n - 3600) / 60 + 1
