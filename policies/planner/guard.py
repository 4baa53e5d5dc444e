"""The reactive guard: never fewer units than the *observed* demand needs.

Pure and cheap (no forecast): ``entry.decide`` applies it on top of the forecast rule,
and the simulator can run it between full decisions.
"""

from __future__ import annotations

import math
from dataclasses import replace

from headroom.policies.capacity import units_for
from headroom.policies.planner.sizing import usable_qps
from headroom.policies.planner.values import PlannedAction, order
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.text import clock as _clock
from headroom.policies.text import compare_qps, target_key, unit_noun

# Like the HPA's default tolerance: one noisy sample just over target utilisation is not
# a surprise worth a provisioning delay of units (the forecast's quantile covers it).
GUARD_TOLERANCE = 0.1


def reactive_floor(observed_demand: float | None, target: Target, spec: PolicySpec) -> int:
    """Units the *observed* demand needs now, sized like the plan's median (at the SLO's
    target utilisation, the headroom factor included); 0 when nothing usable was observed.

    Clamped to ``max_units`` only: ``min_units`` is the forecast rule's business."""
    if observed_demand is None or not math.isfinite(observed_demand) or observed_demand <= 0:
        return 0
    return min(units_for(observed_demand, target, spec), target.max_units)


def reactive_guard(
    observed_demand: float | None,
    spec: PolicySpec,
    target: Target,
    *,
    now: float,
    current_units: int,
    tz: str = "UTC",
) -> PlannedAction | None:
    """The reactive guard alone: a scale-out to what the observed demand needs now, or None.

    Pure and cheap (no forecast): the simulator runs it between full decisions, and
    :func:`decide` applies it on top of the forecast rule. It only ever adds units, never
    waits for a cooldown, and respects ``max_step`` and ``max_units``; scale-in stays with
    the forecast rule."""
    u = current_units
    floor = reactive_floor(observed_demand, target, spec)
    if floor <= u:
        return None
    assert observed_demand is not None  # floor > 0 only for an observed demand
    if observed_demand <= usable_qps(u, target, spec) * (1.0 + GUARD_TOLERANCE):
        return None
    to = min(floor, u + target.max_step) if target.max_step else floor
    key, noun = target_key(target), unit_noun(target)
    util = spec.slo.target_utilization
    reason = f"{key} {u}→{to} {noun} at {_clock(now, tz)}: " + compare_qps(
        "reactive: observed", observed_demand, ">", usable_qps(u, target, spec), util
    )
    return order(
        key,
        target,
        now,
        u,
        to,
        reason,
    )


def with_guard(
    action: PlannedAction | None,
    guard: PlannedAction | None,
    floor: int,
    u: int,
) -> PlannedAction | None:
    """Combine the forecast rule's action with the guard's: the larger scale-out wins; a
    scale-in never goes below what the observed demand needs (it would be undone at once)."""
    if guard is not None and (action is None or action.to_units < guard.to_units):
        return guard
    if action is not None and action.to_units < u and action.to_units < floor:
        if floor >= u:
            return None
        head, _, rest = action.reason.partition(f"{u}→{action.to_units}")
        reason = f"{head}{u}→{floor}{rest}; not below the observed demand's {floor}"
        return replace(action, to_units=floor, reason=reason)
    return action
