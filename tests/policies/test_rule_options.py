"""The policy's limits on the rule that orders units (``policies/combined.py``'s
``TargetRule``, through ``policies/options.py`` and the budget): ``minUnits``/``maxUnits``,
``maxStep`` (and a chain of steps started in time), the scale-in interval and step, freeze
windows, the unit-hour budget, an event's cooldown and ``scaleIn.duringEvents``.

Each check decides with the rule itself at one tick (or walks it tick by tick), on a
hand-built forecast or none: what the HPA half measures is ``observed``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom.policies.calendar import Calendar, DemandEvent, EventKind
from headroom.policies.combined import TargetRule
from headroom.policies.errors import PolicyError
from headroom.policies.forecast.base import Forecast
from headroom.policies.planner.budget import advance_state
from headroom.policies.planner.values import Decision, PlannedAction, PlannerState, after_action
from headroom.policies.policy import PolicySpec
from headroom.policies.series import Series
from tests.policies.support import cart_policy

T0 = 1_700_006_400.0  # a midnight UTC
HOUR = 3600.0
NOTHING = Series(np.empty(0), np.empty(0))
EVENT = DemandEvent("Spring livestream", EventKind.LIVESTREAM, T0 + 2 * HOUR, T0 + 4 * HOUR,
                    ramp=1800)  # fmt: skip


def policy(**over: Any) -> PolicySpec:
    """100k QPS a master: 80k at the SLO's 80 % (the HPA half), 100k at 100 % (the
    forecast's, set explicitly)."""
    forecast = {"targetUtilization": 1.0, **over.pop("forecast", {})}
    return cart_policy(forecast=forecast, **over)


def flat(level: float, hours: float = 12.0, jump: tuple[float, float] | None = None) -> Forecast:
    """A forecast at ``level`` from T0 (1-minute steps), ``jump`` = (at, level) after."""
    t = T0 + np.arange(0, hours * HOUR, 60.0)
    d = np.full(t.size, level)
    if jump is not None:
        d[t >= jump[0]] = jump[1]
    return Forecast(t, d, {0.5: d, 0.9: d * 1.1})


def decide(
    spec: PolicySpec,
    now: float,
    units: int,
    observed: float | None,
    *,
    forecast: Forecast | None = None,
    calendar: Calendar | None = None,
    state: PlannerState | None = None,
    rule: TargetRule | None = None,
    ready: int | None = None,
) -> Decision:
    rule = rule or TargetRule(spec, spec.targets[0])
    return rule.decide(
        now, units=units, ready=units if ready is None else ready, observed=observed,
        anchor=None, forecast=forecast, calendar=calendar or Calendar(),
        state=state or PlannerState(), dt=15.0, since=lambda _t: NOTHING, seen=(1, now - 15.0),
    ).decision  # fmt: skip


def test_units_outside_min_and_max_are_brought_inside_at_once() -> None:
    spec = policy(target={"minUnits": 4, "maxUnits": 10})
    up = decide(spec, T0, 2, 100e3)
    assert up.desired_units == 4 and up.action is not None
    assert up.reason.endswith("2→4 masters at 00:00: 2 masters are outside the bounds: "
                              "brought to minUnits 4")  # fmt: skip
    # Even where a forecast wants more: the bounds are what this order is for.
    assert decide(spec, T0, 2, 100e3, forecast=flat(900e3)).reason.endswith("minUnits 4")
    down = decide(spec, T0, 14, 900e3)
    assert down.desired_units == 10 and down.action is not None
    assert "outside the bounds: brought to maxUnits 10" in down.reason


def test_a_need_above_max_units_is_capped_and_says_so() -> None:
    spec = policy(target={"maxUnits": 4})
    got = decide(spec, T0, 3, 500e3)  # ceil(500k / 80k) = 7 wanted
    assert got.desired_units == 4 and got.capped
    assert got.reason.startswith("redis/cart 3→4 masters")
    assert "capped at maxUnits 4" in got.reason
    assert decide(spec, T0, 4, 500e3).capped  # held at the cap: still capped


def test_max_step_limits_every_order_both_ways() -> None:
    spec = policy(target={"maxStep": 2})
    up = decide(spec, T0, 3, 900e3)
    assert up.desired_units == 5  # 12 wanted
    assert up.reason.endswith("; at most maxStep 2 a change")
    assert decide(spec, T0, 12, 100e3).desired_units == 10  # 3 wanted
    unlimited = policy()
    assert decide(unlimited, T0, 3, 900e3).desired_units == 7  # the HPA's own limit: +4
    assert decide(unlimited, T0, 12, 100e3).desired_units == 3


def test_a_max_step_chain_starts_early_enough_to_be_ready_for_the_need() -> None:
    """The forecast needs 5 masters from 2 h on (450k at 100 %): with one master a step
    and 10 minutes a change, the chain of two steps is started early enough to be
    complete by then, one change after the other."""
    spec = policy(target={"maxStep": 1})
    jump = T0 + 2 * HOUR
    forecast = flat(150e3, jump=(jump, 450e3))
    rule = TargetRule(spec, spec.targets[0])
    units, state, orders = 3, PlannerState(), list[PlannedAction]()
    for k in range(int(2 * HOUR / 15)):
        now = T0 + 15.0 * k
        ready = units - sum(1 for o in orders if o.is_scale_out and o.ready_by > now)
        observed = 150e3  # the demand now, before the jump
        d = decide(spec, now, units, observed, forecast=forecast, state=state, rule=rule,
                   ready=ready)  # fmt: skip
        rule.record(now, units, d.desired_units)
        if d.action is not None:
            orders.append(d.action)
            state = after_action(state, d.action)
            units = d.desired_units
    assert [(o.from_units, o.to_units) for o in orders] == [(3, 4), (4, 5)]
    # Done one change after the other (a reshard waits for the one before), the chain
    # started by the first order is complete by the jump.
    delay = spec.targets[0].provisioning.delay
    assert orders[0].at + sum(delay(o.from_units, o.to_units) for o in orders) <= jump
    assert orders[-1].ready_by <= jump


def test_scale_in_waits_for_its_interval_and_scale_out_never_does() -> None:
    spec = policy(scaleIn={"interval": "2h"})
    recent = PlannerState(last_scale_in=T0 - 60)
    held = decide(spec, T0, 8, 100e3, state=recent)
    assert held.action is None and held.reason == "hold: scale-in waits for its interval"
    out = decide(spec, T0, 3, 500e3, state=recent)  # a scale-out right after a scale-in
    assert out.desired_units == 7
    later = decide(spec, T0, 8, 100e3, state=PlannerState(last_scale_in=T0 - 2 * HOUR - 1))
    assert later.desired_units == 3


def test_scale_in_steps_by_a_number_or_a_share_of_the_fleet() -> None:
    """A share of what is ordered (rounded up; 100 %, the HPA's, by default): at 10 % a
    fleet of 200 follows its fall in a few steps, not in 150 single-unit ones; a given
    number stays a number."""
    assert policy().scale_in.step_units == "100%"
    two = policy(scaleIn={"stepUnits": 2})
    assert decide(two, T0, 10, 100e3).desired_units == 8
    spec = policy(
        target={"maxUnits": 400, "capacityPerUnit": 1000},
        scaleIn={"interval": "5m", "stabilization": "5m", "stepUnits": "10%"},
    )
    assert spec.scale_in.step_units == "10%"
    assert [spec.scale_in.step_for(u) for u in (3, 10, 11, 200)] == [1, 1, 2, 20]
    rule = TargetRule(spec, spec.targets[0])
    units, state, steps = 200, PlannerState(), list[tuple[int, int]]()
    for k in range(60):  # 40k QPS needs 50 at 800 QPS a unit
        now = T0 + 300.0 * k
        d = decide(spec, now, units, 40e3, state=state, rule=rule)
        rule.record(now, units, d.desired_units)
        if d.action is not None:
            steps.append((units, d.desired_units))
            state = after_action(state, d.action)
            units = d.desired_units
    assert steps[:3] == [(200, 180), (180, 162), (162, 145)]
    # Down to the 50 needed, or as near as the HPA's tolerance lets it go (54: 93 %).
    last = steps[-1][1]
    assert 50 <= last <= 40e3 / (800 * (1 - spec.reactive.tolerance)) and len(steps) < 20
    fixed = policy(scaleIn={"stepUnits": "2"}).scale_in
    assert fixed.step_units == 2 and fixed.step_for(200) == 2
    with pytest.raises(
        PolicyError, match=r"scaleIn\.stepUnits: must be a percentage in \(0, 100\], not '0%'"
    ):
        policy(scaleIn={"stepUnits": "0%"})


FREEZE = {
    "start": "2023-11-15T00:00:00+00:00",  # T0
    "end": "2023-11-15T02:00:00+00:00",
    "reason": "change freeze",
}


def test_a_freeze_window_holds_scale_in_and_scales_out_only_for_the_demand_now() -> None:
    spec = policy(freezeWindows=[FREEZE])
    inside, after = T0 + HOUR, T0 + 2 * HOUR + 60
    held = decide(spec, inside, 8, 100e3)
    assert held.action is None and held.reason == "hold: freeze window"
    assert decide(spec, after, 8, 100e3).desired_units == 3
    # The forecast needs 6 (550k at 100 %), the demand now 4 (300k at 80 % of 3 masters).
    forecast = flat(550e3)
    assert decide(policy(), inside, 3, 300e3, forecast=forecast).desired_units == 6
    frozen = decide(spec, inside, 3, 300e3, forecast=forecast)
    assert frozen.desired_units == 4
    # The order is the demand now's, and its reason says so (not the forecast's).
    assert frozen.reason.startswith("redis/cart 3→4 masters")
    assert "reactive: observed" in frozen.reason and "forecast p50" not in frozen.reason
    assert frozen.reason.endswith("; a freeze window scales out only for the demand now")
    assert frozen.action is not None and frozen.action.event is None
    # At 4 masters the demand now is served: the forecast's 6 wait, and that is the reason.
    waits = decide(spec, inside, 4, 300e3, forecast=forecast)
    assert waits.action is None
    assert waits.reason == "hold: freeze window (scale-out only for the demand now)"
    assert decide(spec, after, 3, 300e3, forecast=forecast).desired_units == 6
    # With maxStep too, both cuts are said, and the order is still the demand now's.
    # (3 masters at 450k QPS: the demand now needs 6, the forecast at 800k QPS 8.)
    stepped = policy(freezeWindows=[FREEZE], target={"maxStep": 2})
    both = decide(stepped, inside, 3, 450e3, forecast=flat(800e3))
    assert both.desired_units == 5 and "reactive: observed" in both.reason
    assert both.reason.endswith(
        "; a freeze window scales out only for the demand now; at most maxStep 2 a change"
    )


def test_a_budget_trims_the_look_ahead_and_never_the_demand_now() -> None:
    """12 h at 3 masters is 36 unit-hours: a budget of 38 leaves no room for the 6 the
    forecast wants all day, so the predictive half is held at what the demand now needs."""
    spec = policy(budget={"maxUnitHours": 38, "period": "12h"})
    forecast = flat(550e3)
    start = PlannerState(period_start=T0)
    assert decide(policy(), T0, 3, 300e3, forecast=forecast).desired_units == 6
    trimmed = decide(spec, T0, 3, 300e3, forecast=forecast, state=start)
    assert trimmed.desired_units == 4
    assert "reactive: observed" in trimmed.reason and "forecast p50" not in trimmed.reason
    assert trimmed.reason.endswith("; the unit-hour budget holds the forecast's 6 to 4")
    held = decide(spec, T0, 4, 300e3, forecast=forecast, state=start)
    assert held.action is None
    assert held.reason == "hold: 4 masters: the unit-hour budget holds the forecast's 6 to 4"
    # Demand now above anything the budget allows is still served, as the HPA would.
    surge = decide(spec, T0, 3, 900e3, forecast=forecast, state=start)
    hpa = decide(policy(forecast={"enabled": False}), T0, 3, 900e3)
    assert surge.desired_units == hpa.desired_units == 7


def test_advance_state_counts_unit_seconds_and_rolls_the_budget_period_over() -> None:
    spec = policy(budget={"maxUnitHours": 100, "period": "1h"})
    s = advance_state(PlannerState(), now=T0, units=4, dt=60, action=None, spec=spec)
    assert s.period_start == T0 and s.unit_seconds_used == 240
    s = advance_state(s, now=T0 + 3600, units=2, dt=60, action=None, spec=spec)
    assert s.period_start == T0 + 3600 and s.unit_seconds_used == 120


@pytest.mark.parametrize(
    ("mode", "blocked", "free"),
    [
        # follow (the default): only the cooldown after the end holds.
        ("follow", [EVENT.end + 60, EVENT.end + 44 * 60], [EVENT.start + 600, EVENT.end + 46 * 60]),
        # hold: from the ramp to the end and its cooldown.
        ("hold", [EVENT.start - 1200, EVENT.start + HOUR, EVENT.end + 44 * 60],
         [EVENT.start - 2400, EVENT.end + 46 * 60]),
        # nowcast: from the ramp to one stabilization after the start, then the cooldown.
        ("nowcast", [EVENT.start - 1200, EVENT.start + 600, EVENT.end + 60],
         [EVENT.start + 1200, EVENT.end + 46 * 60]),
    ],
)  # fmt: skip
def test_scale_in_around_an_event_follows_during_events_and_its_cooldown(
    mode: str, blocked: list[float], free: list[float]
) -> None:
    spec = policy(scaleIn={"cooldown": "45m", "stabilization": "15m", "duringEvents": mode})
    calendar = Calendar.of([EVENT])
    for now in blocked:
        d = decide(spec, now, 8, 100e3, calendar=calendar)
        assert d.action is None, (mode, now - EVENT.start)
        assert d.reason == "hold: scale-in blocked by an event window or its cooldown"
    for now in free:
        assert decide(spec, now, 8, 100e3, calendar=calendar).desired_units == 3, (mode, now)
    # A scale-out is never blocked by the window.
    assert decide(spec, blocked[0], 3, 500e3, calendar=calendar).desired_units == 7


@settings(max_examples=25, deadline=None)
@given(
    levels=st.lists(st.floats(0, 2e6), min_size=3, max_size=12),
    seen=st.lists(st.floats(0, 2e6), min_size=3, max_size=12),
    current=st.integers(0, 25),
    max_step=st.integers(0, 4),
)
def test_every_order_keeps_the_bounds_and_max_step(
    levels: list[float], seen: list[float], current: int, max_step: int
) -> None:
    """A piecewise-constant 6 h forecast and measured demand (30-min pieces), walked every
    5 minutes: every order stays within ``[minUnits, maxUnits]`` (or climbs/falls toward
    them by ``maxStep``) and changes by at most ``maxStep``."""
    spec = policy(target={"maxStep": max_step})
    target = spec.targets[0]
    t = T0 + np.arange(0, 6 * HOUR, 300.0)
    d = np.repeat(np.asarray(levels), int(np.ceil(t.size / len(levels))))[: t.size]
    forecast = Forecast(t, d, {0.5: d, 0.9: d})
    measured = np.repeat(np.asarray(seen), int(np.ceil(t.size / len(seen))))[: t.size]
    rule = TargetRule(spec, target)
    u, state = current, PlannerState()
    for now, observed in zip(t.tolist(), measured.tolist(), strict=True):
        dec = decide(spec, now, u, observed, forecast=forecast, state=state, rule=rule)
        rule.record(now, u, dec.desired_units)
        a = dec.action
        if a is None:
            continue
        assert a.from_units == u and a.to_units != u
        if max_step:
            assert abs(a.to_units - a.from_units) <= max_step
        assert a.to_units <= target.max_units or a.to_units == a.from_units - max_step
        assert a.to_units >= target.min_units or a.to_units == a.from_units + max_step
        state = after_action(state, a)
        u = a.to_units
