"""The rule at one position of the forecast: scale out, scale in or hold, and why.

``entry.decide`` runs it at the first position, ``entry.plan_and_decide`` at every
position where it could act (:func:`next_candidate` skips the rest); both read the
arrays ``sizing.build`` computed.
"""

from __future__ import annotations

import math

from headroom.policies.calendar import DemandEvent
from headroom.policies.forecast.base import Forecast
from headroom.policies.planner.sizing import Ctx, full_qps, usable_qps
from headroom.policies.planner.values import Decision, PlannedAction, PlannerState, order
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.text import clock as _clock
from headroom.policies.text import compare_qps, unit_noun
from headroom.policies.text import duration_text as _duration


def _need_text(
    q: str, median: float, upper: float, units: int, target: Target, spec: PolicySpec, op: str
) -> str:
    """Why ``units`` are (``op`` ">") or are not (``op`` "≤") enough: the binding margin."""
    util = spec.slo.target_utilization
    by_median = median / util > upper if math.isfinite(median) else False
    if by_median:
        return compare_qps("p50", median, op, usable_qps(units, target, spec), util)
    return compare_qps(q, upper, op, full_qps(units, target, spec), 1.0)


def step_at(
    ctx: Ctx,
    p: int,
    u: int,
    state: PlannerState,
    forecast: Forecast,
    spec: PolicySpec,
    target: Target,
    now: float,
) -> PlannedAction | None:
    """The rule at position ``p`` (relative to ``ctx.lo``) with ``u`` units ordered."""
    at = max(float(ctx.t[p]), now)
    noun, key, q = ctx.noun, ctx.key, ctx.q
    max_step = target.max_step

    # Scale-out: the look-ahead need (or, in a freeze, only the need now).
    now_req = int(ctx.req_ext[p])
    frozen = bool(ctx.freeze[p])
    if frozen:
        want, goal, look = now_req, now_req, 0
    else:
        want, goal, look = int(ctx.need[p]), int(ctx.out_to[p]), ctx.window_steps
    goal = max(goal, want, target.min_units)
    want = max(want, target.min_units)
    # Over the budget ceiling only the demand now is served; say so even when that
    # still means an order (it is later and smaller than the look-ahead wanted).
    budget_capped = goal > ctx.ceiling
    goal = min(goal, max(ctx.ceiling, now_req, target.min_units))
    if max_step:
        goal = min(goal, u + max_step)
    goal = min(goal, target.max_units)
    if want > u and goal > u and u < target.min_units and now_req <= u:
        return order(
            key,
            target,
            at,
            u,
            goal,
            f"{key} {u}→{goal} {noun} at {_clock(at, ctx.tz)}: below minUnits {target.min_units}",
        )
    if want > u and goal > u:
        # Name the peak this order is for: the largest need in its look-ahead window.
        i = _peak_index(ctx, p, max(look, ctx.lead_steps))
        event = forecast.driver_at(ctx.lo + i)
        over_max = bool(ctx.raw_over[p : p + look + 1].any()) and goal >= target.max_units
        return _action_out(
            at,
            u,
            goal,
            key,
            noun,
            _need_text(q, float(ctx.median[i]), float(ctx.level[i]), u, target, spec, ">"),
            event,
            spec,
            target,
            over_max,
            budget_capped,
            frozen,
            ctx.budget_note,
            ctx.tz,
        )

    if u > target.max_units:
        down = max(target.max_units, u - max_step) if max_step else target.max_units
        return order(
            key,
            target,
            at,
            u,
            down,
            f"{key} {u}→{down} {noun} at {_clock(at, ctx.tz)}: above maxUnits {target.max_units}",
            capped=True,
        )

    # Scale-in: stable low need, no event or freeze, intervals since the last actions.
    stay = max(int(ctx.stay[p]), target.min_units)
    if stay >= u or ctx.blocked_in[p]:
        return None
    if state.last_scale_in is not None and at < state.last_scale_in + spec.scale_in.interval:
        return None
    if state.last_scale_out is not None and at < state.last_scale_out + spec.scale_in.stabilization:
        return None
    step_units = spec.scale_in.step_for(u)
    if max_step:
        step_units = min(step_units, max_step)
    to = max(stay, u - step_units)
    i = _peak_index(ctx, p, ctx.window_steps)
    horizon = ctx.horizon
    need = _need_text(q, float(ctx.median[i]), float(ctx.level[i]), to, target, spec, "≤")
    reason = f"{key} {u}→{to} {noun} at {_clock(at, ctx.tz)}: {need} for the next {horizon}"
    return order(key, target, at, u, to, reason)


def _peak_index(ctx: Ctx, p: int, look: int) -> int:
    """Position of the (first) largest need in ``[p, p + look]``, within the forecast."""
    hi = min(p + look + 1, ctx.level.size)
    if hi <= p:
        return min(p, ctx.level.size - 1)
    return p + int(ctx.req_ext[p:hi].argmax())


def _action_out(
    at: float,
    u: int,
    to: int,
    key: str,
    noun: str,
    need: str,
    event: DemandEvent | None,
    spec: PolicySpec,
    target: Target,
    over_max: bool,
    budget_capped: bool,
    frozen: bool,
    budget_note: str,
    display_tz: str,
) -> PlannedAction:
    tz = event.tz if event is not None else display_tz
    head = f"{key} {u}→{to} {noun} at {_clock(at, tz)}"
    if event is not None:
        head += f" for '{event.name}' {_clock(event.start, event.tz)}"
    if frozen:
        head += " in a freeze window (demand now needs it)"
    reason = f"{head}: {need}"
    if over_max:
        reason += f"; capped at maxUnits {target.max_units}"
    if budget_capped:
        reason += f"; capped by {budget_note}"
    name = event.name if event is not None else None
    return order(key, target, at, u, to, reason, event=name, capped=over_max or budget_capped)


def decision_at(
    ctx: Ctx, action: PlannedAction | None, u: int, floor: int, target: Target
) -> Decision:
    """The decision at ``ctx``'s first position, given the rule's (guarded) action there."""
    if action is not None:
        return Decision(action.to_units, action, action.capped, action.reason)
    capped = bool(ctx.raw_over[0]) or (
        ctx.ceiling < target.max_units and int(ctx.out_to[0]) > ctx.ceiling
    )
    reason = _hold_reason(ctx, u, target)
    if floor >= u and int(ctx.stay[0]) < u and not ctx.blocked_in[0]:
        reason = f"hold: the observed demand needs {floor} {unit_noun(target)}"
    return Decision(u, None, capped, reason)


def _hold_reason(ctx: Ctx, u: int, target: Target) -> str:
    if ctx.freeze[0] and int(ctx.need[0]) > u:
        return f"hold: freeze window; {int(ctx.need[0])} {unit_noun(target)} wanted later"
    if int(ctx.stay[0]) < u and ctx.blocked_in[0]:
        return "hold: scale-in blocked by an event window, its cooldown or a freeze"
    if int(ctx.stay[0]) < u:
        return "hold: scale-in waits for its interval or stabilization"
    return f"hold: {u} {unit_noun(target)} cover the next {_duration(ctx.window_steps * ctx.step)}"


def next_candidate(
    ctx: Ctx, start: int, u: int, st: PlannerState, spec: PolicySpec, target: Target
) -> int | None:
    """The first position >= ``start`` where the rule could act, or None."""
    count = int(ctx.t.size)
    if start >= count:
        return None
    if u < target.min_units or u > target.max_units:
        return start
    out = ctx.out_level[start:] > u
    i = int(out.argmax())  # the first True, or 0 when there is none
    first_out = start + i if out[i] else count
    earliest = -math.inf
    if st.last_scale_in is not None:
        earliest = st.last_scale_in + spec.scale_in.interval
    if st.last_scale_out is not None:
        earliest = max(earliest, st.last_scale_out + spec.scale_in.stabilization)
    lo_in = max(start, int(ctx.t.searchsorted(earliest, side="left")))
    inn = ctx.in_level[lo_in:first_out] < u
    k = int(inn.argmax()) if inn.size else 0
    first = lo_in + k if inn.size and inn[k] else first_out
    return first if first < count else None
