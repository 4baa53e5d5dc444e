"""Planner constraints on small hand-built forecasts: lead time, bounds, steps, cooldowns,
freeze windows, budget, reasons, and decide/plan_target agreement."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom.policies.calendar import Calendar, DemandEvent, EventKind
from headroom.policies.errors import PolicyError
from headroom.policies.forecast.base import Forecast
from headroom.policies.planner.entry import advance_state, decide, plan_target
from headroom.policies.planner.values import PlannerState
from headroom.policies.policy import PolicySpec, parse_policy

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=SH).timestamp()
STEP = 60.0


def at(hour: int, minute: int = 0) -> float:
    return datetime(2025, 3, 1, hour, minute, tzinfo=SH).timestamp()


EVENT = DemandEvent(
    "Spring livestream",
    EventKind.LIVESTREAM,
    start=at(20),
    end=at(22),
    ramp=1800,
    tz="Asia/Shanghai",
)


def forecast(
    base: float = 150e3, peak: float = 410e3, event: DemandEvent | None = EVENT, hours: int = 12
) -> Forecast:
    t = T0 + np.arange(0, hours * 3600, STEP)
    d = np.full(t.size, base)
    drivers: list[DemandEvent | None] = [None] * t.size
    if event is not None:
        inside = (t >= event.window_start) & (t < event.end)
        d[inside] = peak
        drivers = [event if x else None for x in inside]
    return Forecast(t, d * 0.9, {0.5: d * 0.9, 0.9: d}, tuple(drivers))


def policy(**over: Any) -> PolicySpec:
    target: dict[str, Any] = {
        "name": "cart",
        "namespace": "redis",
        "kind": "RedisCluster",
        "capacityPerUnit": 100_000,
        "minUnits": 3,
        "maxUnits": 20,
        "provisioning": {"fixedSeconds": "10m"},
    }
    target.update(over.pop("target", {}))
    return parse_policy({"targets": [target], **over}, "test")


CAL = Calendar.of([EVENT])


def test_reason_and_lead_time_place_units_before_the_ramp() -> None:
    spec = policy(leadTime="5m")
    plan = plan_target(forecast(), spec, spec.targets[0], now=T0, current_units=3, calendar=CAL)
    first = plan.actions[0]
    delay = spec.targets[0].provisioning.delay(3, 5)
    assert first.at <= EVENT.window_start - delay - spec.lead_time
    assert first.ready_by <= EVENT.window_start
    # p50 369k at the 80 % target needs 5 (ceil 4.6), p90 410k at 100 % needs 5 (ceil 4.1).
    assert (first.from_units, first.to_units) == (3, 5)
    assert first.reason == (
        "redis/cart 3→5 masters at 19:15 for 'Spring livestream' 20:00: "
        "p50 369k QPS > 240k capacity at 80%"
    )
    assert first.event == "Spring livestream"
    # Every step the forecast needs N units, N were ordered at least one lead earlier.
    lead = int((delay + spec.lead_time) // STEP)
    assert np.all(plan.units[:-lead] >= plan.required[lead:])


def test_need_sizes_the_median_at_target_utilisation_and_the_quantile_at_full() -> None:
    """Each margin once: p50 / 0.8 and p90 / 1.0, whichever needs more units."""
    spec = policy()
    t = T0 + np.arange(0, 3600, STEP)
    flat = np.ones(t.size)
    wide = Forecast(t, flat * 300e3, {0.5: flat * 300e3, 0.9: flat * 790e3})
    narrow = Forecast(t, flat * 300e3, {0.5: flat * 300e3, 0.9: flat * 330e3})
    for fc, units, text in ((wide, 8, "p90 790k QPS > 300k capacity"), (narrow, 4, "p50 300k")):
        plan = plan_target(fc, spec, spec.targets[0], now=T0, current_units=3, calendar=CAL)
        assert int(plan.required[0]) == units  # ceil(7.9) / ceil(300 / 80 = 3.75)
        assert text in plan.actions[0].reason


def test_no_event_no_action_when_current_units_cover() -> None:
    spec = policy()
    plan = plan_target(
        forecast(event=None), spec, spec.targets[0], now=T0, current_units=3, calendar=Calendar()
    )
    assert plan.actions == ()
    assert np.all(plan.units == 3)


def test_scale_out_to_max_units_is_capped_and_says_so() -> None:
    spec = policy(target={"maxUnits": 4})  # the event needs 5
    plan = plan_target(forecast(), spec, spec.targets[0], now=T0, current_units=3, calendar=CAL)
    assert plan.units.max() == 4
    assert plan.capped
    assert "capped at maxUnits 4" in plan.actions[0].reason
    assert plan.actions[0].capped
    assert any("maxUnits" in n for n in plan.notes)


def test_min_units_is_restored_immediately() -> None:
    spec = policy(target={"minUnits": 4})
    d = decide(
        forecast(event=None),
        spec,
        spec.targets[0],
        now=T0,
        current_units=2,
        calendar=Calendar(),
        state=PlannerState(),
    )
    assert d.desired_units == 4 and d.action is not None


def test_max_step_chains_start_early_enough() -> None:
    spec = policy(target={"maxStep": 1})
    tgt = spec.targets[0]
    plan = plan_target(forecast(), spec, tgt, now=T0, current_units=3, calendar=CAL)
    outs = [a for a in plan.actions if a.is_scale_out]
    assert [a.to_units - a.from_units for a in outs] == [1, 1]  # 3 -> 5
    # The last step of the chain is ready before the ramp starts.
    assert outs[-1].ready_by <= EVENT.window_start
    assert all(abs(a.to_units - a.from_units) <= 1 for a in plan.actions)


def test_scale_in_waits_for_cooldown_and_steps_by_interval() -> None:
    spec = policy(
        scaleIn={"cooldown": "45m", "stepUnits": 2, "interval": "20m", "stabilization": "15m"}
    )
    plan = plan_target(
        forecast(peak=900e3, hours=16), spec, spec.targets[0], now=T0, current_units=3, calendar=CAL
    )
    ins = [a for a in plan.actions if not a.is_scale_out]
    assert ins, plan.actions
    assert ins[0].at >= EVENT.end + 45 * 60
    assert all(a.from_units - a.to_units <= 2 for a in ins)
    gaps = np.diff([a.at for a in ins])
    assert np.all(gaps >= 20 * 60)
    assert ins[-1].to_units == 3
    # Never during the event window (ramp .. end).
    assert not any(EVENT.window_start <= a.at < EVENT.end for a in ins)


def test_scale_in_steps_by_a_share_of_the_fleet() -> None:
    """A share of what is ordered (rounded up; 100 %, the HPA's, by default): at 10 % a
    fleet of 200 follows its fall in a few steps, not in 150 single-unit ones; a given
    number stays a number."""
    assert policy().scale_in.step_units == "100%"
    spec = policy(
        target={"maxUnits": 400, "capacityPerUnit": 1000},
        scaleIn={"cooldown": "0s", "interval": "5m", "stabilization": "5m", "stepUnits": "10%"},
    )
    assert spec.scale_in.step_units == "10%"
    assert [spec.scale_in.step_for(u) for u in (3, 10, 11, 200)] == [1, 1, 2, 20]
    t = T0 + np.arange(0, 6 * 3600, STEP)
    low = np.full(t.size, 40e3)  # 50 units at 80 %
    fc = Forecast(t, low, {0.5: low, 0.9: low})
    plan = plan_target(fc, spec, spec.targets[0], now=T0, current_units=200, calendar=CAL)
    ins = [(a.from_units, a.to_units) for a in plan.actions]
    assert ins[:3] == [(200, 180), (180, 162), (162, 145)]
    assert ins[-1][1] == 50 and len(ins) < 20
    fixed = policy(scaleIn={"stepUnits": "2"}).scale_in
    assert fixed.step_units == 2 and fixed.step_for(200) == 2
    with pytest.raises(
        PolicyError, match=r"scaleIn\.stepUnits: must be a percentage in \(0, 100\], not '0%'"
    ):
        policy(scaleIn={"stepUnits": "0%"})


def test_scale_out_is_not_blocked_by_a_recent_scale_in() -> None:
    spec = policy(scaleIn={"interval": "2h"})
    state = PlannerState(last_scale_in=T0 - 60)
    d = decide(
        forecast(base=500e3, event=None),
        spec,
        spec.targets[0],
        now=T0,
        current_units=3,
        calendar=Calendar(),
        state=state,
    )
    # p50 450k at 80 % of 100k per unit: 6 (p90 500k at 100 %: 5).
    assert d.action is not None and d.desired_units == 6


def test_freeze_window_blocks_prescale_but_not_demand_now() -> None:
    freeze = {
        "start": "2025-03-01T19:00:00+08:00",
        "end": "2025-03-01T21:00:00+08:00",
        "reason": "change freeze",
    }
    spec = policy(freezeWindows=[freeze])
    tgt = spec.targets[0]
    plan = plan_target(forecast(), spec, tgt, now=T0, current_units=3, calendar=CAL)
    outs = [a for a in plan.actions if a.is_scale_out]
    # The look-ahead order would fall at 19:20 inside the freeze: it waits for demand now
    # (the ramp at 19:30), and orders exactly what is needed then.
    assert outs[0].at == EVENT.window_start
    assert "freeze window" in outs[0].reason
    # Scale-in is blocked inside a freeze, even when the need drops (one unit a step).
    spec2 = policy(freezeWindows=[freeze], scaleIn={"stepUnits": 1})
    d = decide(
        forecast(event=None),
        spec2,
        spec2.targets[0],
        now=at(19, 30),
        current_units=8,
        calendar=Calendar(),
        state=PlannerState(),
    )
    assert d.action is None
    d2 = decide(
        forecast(event=None),
        spec2,
        spec2.targets[0],
        now=at(21, 30),
        current_units=8,
        calendar=Calendar(),
        state=PlannerState(),
    )
    assert d2.action is not None and d2.desired_units == 7


def test_budget_caps_lookahead_but_not_demand_now() -> None:
    # 12 h at >= 3 units is 36 unit-hours; the event wants 6 units for 2.5 h (+7.5).
    spec = policy(budget={"maxUnitHours": 38, "period": "12h"})
    tgt = spec.targets[0]
    plan = plan_target(
        forecast(),
        spec,
        tgt,
        now=T0,
        current_units=3,
        calendar=CAL,
        state=PlannerState(period_start=T0),
    )
    assert plan.capped
    assert any("budget" in n for n in plan.notes)
    first = plan.actions[0]
    assert first.capped and "budget" in first.reason
    # Demand now (the ramp) still gets its units: no silent shortfall.
    idx = int(np.searchsorted(plan.t, EVENT.window_start))
    assert plan.units[idx] >= plan.required[idx]
    spent = plan.units[plan.t < T0 + 12 * 3600].sum() * STEP / 3600
    unbounded = plan_target(
        forecast(), policy(), policy().targets[0], now=T0, current_units=3, calendar=CAL
    )
    assert spent < unbounded.units.sum() * STEP / 3600


def test_decide_agrees_with_plan_on_first_action() -> None:
    spec = policy(leadTime="3m", target={"maxStep": 2})
    tgt = spec.targets[0]
    fc = forecast()
    plan = plan_target(fc, spec, tgt, now=T0, current_units=3, calendar=CAL)
    first = plan.actions[0]
    # Before the first action, decide holds; at it, decide orders the same thing.
    before = decide(
        fc, spec, tgt, now=first.at - STEP, current_units=3, calendar=CAL, state=PlannerState()
    )
    assert before.action is None and before.desired_units == 3
    now = decide(fc, spec, tgt, now=first.at, current_units=3, calendar=CAL, state=PlannerState())
    assert now.action == first
    # Walking decide tick by tick reproduces the whole plan.
    state, u, acts = PlannerState(), 3, []
    for t in fc.t:
        d = decide(fc, spec, tgt, now=float(t), current_units=u, calendar=CAL, state=state)
        if d.action is not None:
            acts.append(d.action)
            u = d.desired_units
        state = advance_state(state, now=float(t), units=u, dt=STEP, action=d.action, spec=spec)
    assert tuple(acts) == plan.actions


def test_advance_state_budget_period_rolls_over() -> None:
    spec = policy(budget={"maxUnitHours": 100, "period": "1h"})
    s = advance_state(PlannerState(), now=T0, units=4, dt=60, action=None, spec=spec)
    assert s.period_start == T0 and s.unit_seconds_used == 240
    s = advance_state(s, now=T0 + 3600, units=2, dt=60, action=None, spec=spec)
    assert s.period_start == T0 + 3600 and s.unit_seconds_used == 120


@settings(max_examples=30, deadline=None)
@given(
    levels=st.lists(st.floats(0, 2e6), min_size=3, max_size=12),
    current=st.integers(0, 25),
    max_step=st.integers(0, 4),
    data_bytes=st.sampled_from([0.0, 4e9]),
    event_piece=st.integers(-1, 11),
    freeze=st.booleans(),
)
def test_plan_invariants_and_decide_walk_match(
    levels, current, max_step, data_bytes, event_piece, freeze
) -> None:
    # A piecewise-constant 6 h forecast (30-min pieces) at 5-min steps.
    t = T0 + np.arange(0, 6 * 3600, 300.0)
    d = np.repeat(np.asarray(levels), int(np.ceil(t.size / len(levels))))[: t.size]
    fc = Forecast(t, d, {0.9: d})
    spec = policy(
        target={
            "maxStep": max_step,
            "provisioning": {"fixedSeconds": "10m", "dataBytes": data_bytes},
        }
    )
    tgt = spec.targets[0]
    plan = plan_target(fc, spec, tgt, now=T0, current_units=current, calendar=Calendar())
    for a in plan.actions:
        assert a.to_units <= tgt.max_units or a.to_units == a.from_units - max_step
        # Below minUnits only a step-limited climb toward it is allowed.
        assert a.to_units >= tgt.min_units or a.to_units == a.from_units + max_step
        if max_step:
            assert abs(a.to_units - a.from_units) <= max_step
    assert np.all(plan.units <= max(tgt.max_units, current))
    state, u, acts = PlannerState(), current, []
    for now in fc.t:
        dec = decide(
            fc, spec, tgt, now=float(now), current_units=u, calendar=Calendar(), state=state
        )
        if dec.action is not None:
            acts.append(dec.action)
            u = dec.desired_units
        state = advance_state(state, now=float(now), units=u, dt=300, action=dec.action, spec=spec)
    assert tuple(acts) == plan.actions
