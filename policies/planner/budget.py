"""The unit-hour budget: the period a tick falls in, the ceiling on look-ahead units, and
the state between ticks that counts what was spent.

The budget trims pre-scaling, never the present: the combined rule
(``headroom.policies.combined``) caps its predictive half at :func:`budget_ceiling` and
never its reactive half; the driver keeps the count with :func:`advance_state`, which
rolls the period over.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from headroom.policies.capacity import IntArray
from headroom.policies.planner.values import PlannedAction, PlannerState, after_action
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray
from headroom.policies.text import duration_text as _duration
from headroom.policies.text import unit_noun


def budget_period(spec: PolicySpec, state: PlannerState, now: float) -> tuple[float, float]:
    """(start, unit-seconds used) of the budget period containing ``now``."""
    assert spec.budget is not None
    start = state.period_start if state.period_start is not None else now
    if now >= start + spec.budget.period:
        elapsed = math.floor((now - start) / spec.budget.period)
        return start + elapsed * spec.budget.period, 0.0
    return start, state.unit_seconds_used


def budget_ceiling(
    spec: PolicySpec,
    target: Target,
    state: PlannerState,
    *,
    now: float,
    t: FloatArray,
    want: IntArray,
    step: float,
) -> tuple[int, str]:
    """The highest look-ahead level whose projected unit-hours fit the period's budget."""
    assert spec.budget is not None
    start, used = budget_period(spec, state, now)
    end = start + spec.budget.period
    cap = spec.budget.max_unit_hours * 3600.0
    in_period = want[t < end]
    # Past the forecast horizon the period is assumed to run at the minimum.
    tail = max(0.0, end - (float(t[-1]) + step if t.size else now)) * target.min_units

    def projected(level: int) -> float:
        clipped = np.clip(in_period, target.min_units, level)
        return used + float(clipped.sum()) * step + tail

    if projected(target.max_units) <= cap:
        return target.max_units, ""
    lo_u, hi_u = target.min_units, target.max_units
    if projected(lo_u) > cap:
        best = lo_u
    else:
        while lo_u < hi_u:
            mid = (lo_u + hi_u + 1) // 2
            if projected(mid) <= cap:
                lo_u = mid
            else:
                hi_u = mid - 1
        best = lo_u
    left = max(0.0, cap - used) / 3600.0
    note = (
        f"budget {spec.budget.max_unit_hours:g} unit-hours per {_duration(spec.budget.period)}"
        f" ({left:.1f} left) limits look-ahead to {best} {unit_noun(target)}"
    )
    return best, note


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
