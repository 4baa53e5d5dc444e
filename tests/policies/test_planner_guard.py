"""The planner's reactive guard: observed demand above the forecast is scaled for at once;
the guard never holds units up on its own; the simulator's headroom strategy feeds it only
samples it has seen."""

from __future__ import annotations

import numpy as np

from headroom.policies.baselines.headroom import HeadroomStrategy
from headroom.policies.baselines.suite import build_strategies
from headroom.policies.calendar import Calendar
from headroom.policies.forecast.base import Forecast
from headroom.policies.planner.entry import advance_state, decide, plan_target
from headroom.policies.planner.guard import reactive_floor, reactive_guard
from headroom.policies.planner.values import PlannerState
from headroom.policies.series import Series
from headroom.policies.simulate import run_strategy, target_delay
from tests.policies.test_planner import CAL, T0, at, forecast, policy

NO_EVENTS = Calendar.of([])


def flat(demand: float, hours: int = 6) -> Forecast:
    return forecast(base=demand, event=None, hours=hours)


def test_guard_scales_out_on_observed_demand_above_the_forecast() -> None:
    spec = policy()
    target = spec.targets[0]
    fc = flat(150e3)  # needs 2 units -> minUnits 3
    now = T0 + 600
    without = decide(
        fc, spec, target, now=now, current_units=3, calendar=NO_EVENTS, state=PlannerState()
    )
    assert without.action is None and without.desired_units == 3
    got = decide(
        fc,
        spec,
        target,
        now=now,
        current_units=3,
        calendar=NO_EVENTS,
        state=PlannerState(),
        observed_demand=410e3,
    )
    # 410k at 80 % of 100k per master: ceil(410 / 80) = 6.
    assert got.desired_units == 6 == reactive_floor(410e3, target, spec)
    assert got.action is not None and got.action.is_scale_out
    assert got.action.at == now and got.action.ready_by == now + 600
    assert "reactive: observed 410k QPS > 240k capacity at 80%" in got.reason
    assert got.reason.startswith("redis/cart 3→6 masters")
    # Within the HPA-like tolerance (240k * 1.1 = 264k) one sample is not a surprise.
    assert reactive_guard(260e3, spec, target, now=now, current_units=3) is None
    assert reactive_guard(270e3, spec, target, now=now, current_units=3) is not None


def test_guard_ignores_cooldowns_but_keeps_max_step_and_max_units() -> None:
    spec = policy(target={"maxStep": 2, "maxUnits": 5})
    target = spec.targets[0]
    recent = PlannerState(last_scale_out=T0 + 590, last_scale_in=T0 + 599)
    got = decide(
        flat(150e3),
        spec,
        target,
        now=T0 + 600,
        current_units=3,
        calendar=NO_EVENTS,
        state=recent,
        observed_demand=900e3,
    )
    assert got.desired_units == 5  # max_step 2 from 3 (and maxUnits 5)
    guard = reactive_guard(900e3, spec, target, now=T0, current_units=5)
    assert guard is None  # already at maxUnits


def test_larger_forecast_order_wins_over_the_guard() -> None:
    spec = policy()
    target = spec.targets[0]
    # The event at 20:00 (ramp 19:30) needs 410k at p90: the pre-scale is due by 19:20.
    now = at(19, 20)
    plain = decide(
        forecast(), spec, target, now=now, current_units=3, calendar=CAL, state=PlannerState()
    )
    guarded = decide(
        forecast(),
        spec,
        target,
        now=now,
        current_units=3,
        calendar=CAL,
        state=PlannerState(),
        observed_demand=300e3,  # needs 4 < the forecast's 5
    )
    assert plain.desired_units == guarded.desired_units == 5
    assert guarded.reason == plain.reason and "reactive" not in guarded.reason


def test_guard_never_blocks_scale_in_beyond_the_forecast_rules() -> None:
    spec = policy(scaleIn={"stepUnits": 2, "interval": "5m", "stabilization": "10m"})
    target = spec.targets[0]
    fc = flat(150e3)
    # Observed demand low: every decision of a walk equals the one without the guard.
    for observed in (None, 100e3, 230e3):
        units, st = 10, PlannerState()
        walk = []
        for k in range(40):
            now = T0 + k * 60.0
            d = decide(
                fc,
                spec,
                target,
                now=now,
                current_units=units,
                calendar=NO_EVENTS,
                state=st,
                observed_demand=observed,
            )
            st = advance_state(
                st, now=now, units=d.desired_units, dt=60, action=d.action, spec=spec
            )
            units = d.desired_units
            walk.append(units)
        if observed is None:
            expected = walk
        assert walk == expected
        assert walk[-1] == 3  # scaled in to minUnits in steps of 2
    # Observed demand that needs 7: a scale-in stops there (it would be undone at once).
    d = decide(
        fc,
        spec,
        target,
        now=T0,
        current_units=10,
        calendar=NO_EVENTS,
        state=PlannerState(),
        observed_demand=530e3,
    )
    assert d.desired_units == 8  # 10 - 2, above the floor of 7
    d = decide(
        fc,
        spec,
        target,
        now=T0,
        current_units=8,
        calendar=NO_EVENTS,
        state=PlannerState(),
        observed_demand=530e3,
    )
    assert d.desired_units == 7 and "not below the observed demand's 7" in d.reason
    assert d.reason.startswith("redis/cart 8→7 masters")
    d = decide(
        fc,
        spec,
        target,
        now=T0,
        current_units=7,
        calendar=NO_EVENTS,
        state=PlannerState(),
        observed_demand=530e3,
    )
    assert d.action is None and d.reason == "hold: the observed demand needs 7 masters"


def test_plan_first_action_agrees_with_decide_and_empty_forecast_still_guards() -> None:
    spec = policy()
    target = spec.targets[0]
    fc = flat(150e3)
    now = T0 + 600
    kwargs = {"now": now, "current_units": 3, "calendar": NO_EVENTS, "state": PlannerState()}
    d = decide(fc, spec, target, observed_demand=410e3, **kwargs)  # type: ignore[arg-type]
    plan = plan_target(fc, spec, target, observed_demand=410e3, **kwargs)  # type: ignore[arg-type]
    assert plan.actions[0] == d.action
    empty = Forecast(np.empty(0), np.empty(0), {})
    d = decide(empty, spec, target, observed_demand=410e3, **kwargs)  # type: ignore[arg-type]
    assert d.desired_units == 6
    d = decide(empty, spec, target, observed_demand=float("nan"), **kwargs)  # type: ignore[arg-type]
    assert d.action is None


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
