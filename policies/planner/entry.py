"""The planner's entry points: the plan ahead, the decision now, the state between ticks.

Called by the driver (:func:`plan_and_decide`, :func:`advance_state`), ``headroom plan``
and the benches (:func:`plan_target`); the rule they apply is described in
``headroom.policies.planner``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from headroom.policies.calendar import Calendar
from headroom.policies.capacity import planned_units_raw
from headroom.policies.forecast.base import Forecast
from headroom.policies.planner.budget import budget_period
from headroom.policies.planner.guard import reactive_floor, reactive_guard, with_guard
from headroom.policies.planner.rule import decision_at, next_candidate, step_at
from headroom.policies.planner.sizing import build, lead_steps, median_level
from headroom.policies.planner.values import (
    Decision,
    Plan,
    PlannedAction,
    PlannerState,
    after_action,
)
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.text import clock as _clock
from headroom.policies.text import target_key, unit_noun


def _start_index(forecast: Forecast, now: float) -> int:
    """The forecast position that holds ``now`` (the last step at or before it)."""
    i = int(np.searchsorted(forecast.t, now, side="right")) - 1
    return min(max(i, 0), max(int(forecast.t.size) - 1, 0))


def decide(
    forecast: Forecast,
    spec: PolicySpec,
    target: Target,
    *,
    now: float,
    current_units: int,
    calendar: Calendar,
    state: PlannerState,
    observed_demand: float | None = None,
) -> Decision:
    """What to order *now* for ``target`` (cheap: only the look-ahead window is computed).

    ``observed_demand``: the newest demand the caller has *seen* (a sample before
    ``now``; None if it has none). The reactive guard never orders fewer units than it
    needs at the SLO's target utilisation (:func:`reactive_guard`): a surprise the
    forecast missed is scaled for at once, with no cooldown."""
    u = current_units
    floor = reactive_floor(observed_demand, target, spec)
    if forecast.t.size == 0:
        guard = reactive_guard(observed_demand, spec, target, now=now, current_units=u)
        if guard is not None:
            return Decision(guard.to_units, guard, False, guard.reason)
        return Decision(current_units, None, False, "hold: empty forecast")
    lo = _start_index(forecast, now)
    count = int(forecast.t.size) - lo if spec.budget is not None else 1
    ctx = build(
        forecast, spec, target, calendar, state, now=now, lo=lo, count=count, u=current_units
    )
    action = step_at(ctx, 0, current_units, state, forecast, spec, target, now)
    if floor:
        guard = reactive_guard(observed_demand, spec, target, now=now, current_units=u, tz=ctx.tz)
        action = with_guard(action, guard, floor, u)
    return decision_at(ctx, action, u, floor, target)


def plan_target(
    forecast: Forecast,
    spec: PolicySpec,
    target: Target,
    *,
    now: float,
    current_units: int,
    calendar: Calendar,
    state: PlannerState = PlannerState(),  # noqa: B008 - frozen, so a shared default is safe
    observed_demand: float | None = None,
) -> Plan:
    """The timeline for ``target`` over the forecast: required units, orders, actions.

    ``observed_demand`` applies the reactive guard at the first position only (it is
    what was seen *now*; later positions are the forecast's), as :func:`decide` does."""
    plan, _ = plan_and_decide(
        forecast,
        spec,
        target,
        now=now,
        current_units=current_units,
        calendar=calendar,
        state=state,
        observed_demand=observed_demand,
    )
    assert plan is not None  # with_plan is True
    return plan


def plan_and_decide(
    forecast: Forecast,
    spec: PolicySpec,
    target: Target,
    *,
    now: float,
    current_units: int,
    calendar: Calendar,
    state: PlannerState,
    observed_demand: float | None = None,
    with_plan: bool = True,
) -> tuple[Plan | None, Decision]:
    """The plan (:func:`plan_target`) and what to order now (:func:`decide`) in one pass of
    the rule: the decision is the plan's first position (the driver's call, so the planner
    runs once per target and tick). ``with_plan`` False: :func:`decide` alone (cheap; the
    plan is None)."""
    key = target_key(target)
    n = int(forecast.t.size)
    if n == 0 or not with_plan:
        only = decide(
            forecast,
            spec,
            target,
            now=now,
            current_units=current_units,
            calendar=calendar,
            state=state,
            observed_demand=observed_demand,
        )
        if not with_plan:
            return None, only
        empty_i = np.empty(0, dtype=np.int64)
        return Plan(key, forecast.t, empty_i, empty_i, (), False, ("empty forecast",)), only
    lo = _start_index(forecast, now)
    level = np.asarray(forecast.level(spec.forecast.quantile), dtype=np.float64)
    median = median_level(forecast)
    raw = planned_units_raw(median, level, target, spec)
    required = np.minimum(np.maximum(raw, target.min_units), target.max_units)  # as clamped
    units = np.empty(n, dtype=np.int64)
    units[:lo] = current_units
    u, st = current_units, state
    actions: list[PlannedAction] = []
    notes: list[str] = []
    j = lo
    ctx = build(
        forecast, spec, target, calendar, st, now=now, lo=j, count=n - j, u=u, raw_units=raw
    )
    leads: dict[int, int] = {}  # lead_steps per units ordered, for the current ctx
    if ctx.budget_note:
        notes.append(ctx.budget_note)
    budget_capped = bool(ctx.budget_note)
    floor = reactive_floor(observed_demand, target, spec)
    first_ctx = ctx
    decision: Decision | None = None
    while j < n:
        p = j - ctx.lo
        action = step_at(ctx, p, u, st, forecast, spec, target, now)
        if j == lo:
            if floor:
                guard = reactive_guard(
                    observed_demand, spec, target, now=now, current_units=u, tz=ctx.tz
                )
                action = with_guard(action, guard, floor, u)
            decision = decision_at(first_ctx, action, u, floor, target)
        if action is not None:
            actions.append(action)
            st = after_action(st, action)
            u = action.to_units
            units[j] = u
            j += 1
            if j < n:
                lead = leads.get(u)
                if lead is None:
                    lead = leads[u] = lead_steps(forecast, spec, target, u, ctx)
                if lead != ctx.lead_steps:
                    ctx = build(
                        forecast,
                        spec,
                        target,
                        calendar,
                        st,
                        now=now,
                        lo=j,
                        count=n - j,
                        u=u,
                        raw_units=raw,
                    )
                    leads = {}
            start = j - ctx.lo  # the rule again from the next position on (what it skips
            # is where it cannot act, exactly as after a position without an action)
        else:
            units[j] = u
            start = p + 1
        nxt = next_candidate(ctx, start, u, st, spec, target)
        stop = n if nxt is None else ctx.lo + nxt
        units[j:stop] = u
        j = stop
    over = raw[lo:] > target.max_units
    if over.any():
        first = float(forecast.t[lo + int(np.argmax(over))])
        notes.append(
            f"demand from {_clock(first, 'UTC')} UTC needs more than maxUnits "
            f"{target.max_units} {unit_noun(target)}: capped at maxUnits"
        )
    capped = bool(over.any()) or any(a.capped for a in actions) or budget_capped
    plan = Plan(key, forecast.t, required, units, tuple(actions), capped, tuple(notes))
    assert decision is not None  # the loop visits lo first, and lo < n
    return plan, decision


def advance_state(
    state: PlannerState,
    *,
    now: float,
    units: int,
    dt: float,
    action: PlannedAction | None,
    spec: PolicySpec,
) -> PlannerState:
    """State after ``dt`` seconds at ``units`` (ordered) from ``now``, and ``action`` if any."""
    start = state.period_start if state.period_start is not None else now
    used = state.unit_seconds_used
    if spec.budget is not None and now >= start + spec.budget.period:
        start, used = budget_period(spec, state, now)
    new = replace(state, period_start=start, unit_seconds_used=used + units * dt)
    if action is not None:
        new = after_action(new, action)
    return new
