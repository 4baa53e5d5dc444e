"""The planner: forecast + policy -> when to order how many units, and why.

Called by ``headroom plan`` (:func:`plan_target`, the whole timeline) and by the
driver (``headroom.policies.driver``) that the control loop and the backtest simulator
run: :func:`decide` (what to order *now*, every tick), :func:`plan_and_decide` (both in
one pass, when the caller shows the plan ahead) and :func:`advance_state` (state between
ticks). :func:`plan_target` replays the same per-tick rule :func:`decide` applies, so the
two agree by construction: the plan's first action is what ``decide`` orders now.

The rule at a tick ``t`` with ``u`` units ordered:

- **need**: units for the forecast (``policies/capacity.py``,
  :func:`~headroom.policies.capacity.planned_units_array`): the median at the SLO's
  target utilisation, the policy quantile at 100 % — each margin once (the utilisation
  margin is for latency at the expected demand, the quantile for the uncertainty). The
  order for demand at ``T`` is placed at ``T - (provisioning delay + lead_time)``, so
  capacity is ready before demand arrives (``L`` = that lead in forecast steps).
- **scale-out** when the need over ``[t, t + L]`` exceeds ``u``; it is never held back
  by a cooldown. It sizes for the need over ``[t, t + L + stabilization]`` so a ramp is
  one action, not one per step. With ``max_step`` each action adds at most that many
  units, and a chain of steps is started early enough (one lead apart) to be complete
  when demand arrives.
- **scale-in** only when the need over ``[t, t + L + stabilization]`` is below ``u``,
  outside every event window (from the longest lead before the ramp, when its
  pre-scale may be ordered, to the end) plus ``scale_in.cooldown`` of an event that
  applies to the target (with ``scale_in.during_events: nowcast`` the block ends one
  ``stabilization`` after the event's start: the nowcast has measured the event by then,
  the forecast's learned shape and tail keep what is still needed, and the reactive
  guard's floor keeps what the observed demand needs), outside freeze windows,
  ``scale_in.interval`` after the last scale-in and ``stabilization`` after the last
  scale-out, by ``step_units`` at a time (a number, or a share of the units ordered:
  ``10%`` by default).
- **freeze windows** block scale-in entirely; they block scale-out too, except when
  the demand *now* needs more units than are ordered (serving users beats the freeze):
  then the planner orders exactly what is needed now, no look-ahead.
- **reactive guard**: when the caller passes the demand it has *observed* (the newest
  sample before ``t``), the order is never below what that demand needs at the SLO's
  target utilisation (:func:`reactive_guard`, the plan's median rule applied to what was
  seen), once it is above the target utilisation by more than ``GUARD_TOLERANCE`` (the
  HPA's default 10 %). It scales out at once — no cooldown, only ``max_step`` and
  ``max_units`` — so a surprise the forecast missed (an unscheduled spike, an event
  bigger than learned, the first day before a daily profile exists) is acted on as an
  HPA would, and a scale-in stops at that floor (going lower would be undone at the next
  tick). It never holds units up on its own: scale-in stays with the forecast rules.
- **bounds**: needs are clamped to ``[min_units, max_units]``; clamping is reported
  (``capped``, "capped at maxUnits").
- **budget**: unit-hours in the current ``budget.period`` (``PlannerState``) plus the
  projection to the period's end must fit ``max_unit_hours``. The planner lowers a
  ceiling on *look-ahead* capacity until the projection fits, and reports it. The
  trade-off: the budget never takes away units that the demand needs *right now* — an
  order for current demand goes through even over budget, flagged ``capped`` with a
  reason — so the budget trims pre-scaling, never silently the present.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from headroom.policies.calendar import Calendar, DemandEvent
from headroom.policies.capacity import IntArray, planned_units_raw, units_for
from headroom.policies.forecast.base import Forecast
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray
from headroom.policies.text import clock as _clock
from headroom.policies.text import compare_qps, target_key, unit_noun
from headroom.policies.text import duration_text as _duration


@dataclass(frozen=True)
class PlannerState:
    """What the caller remembers between decisions (the operator keeps it in status)."""

    last_scale_out: float | None = None
    last_scale_in: float | None = None
    unit_seconds_used: float = 0.0  # unit-seconds in the current budget period
    period_start: float | None = None


@dataclass(frozen=True)
class PlannedAction:
    """One order: at ``at`` change ``from_units`` -> ``to_units``, ready by ``ready_by``."""

    at: float
    ready_by: float
    target: str
    from_units: int
    to_units: int
    reason: str
    event: str | None = None
    capped: bool = False

    @property
    def is_scale_out(self) -> bool:
        return self.to_units > self.from_units


@dataclass(frozen=True)
class Plan:
    """The timeline for one target on the forecast's times.

    ``required[i]``: units that must be *ready* at ``t[i]``; ``units[i]``: units
    *ordered* at ``t[i]`` (the schedule, with lead time, steps, cooldowns, caps).
    """

    target: str
    t: FloatArray
    required: IntArray
    units: IntArray
    actions: tuple[PlannedAction, ...]
    capped: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """What to order now: ``desired_units`` (== current when ``action`` is None)."""

    desired_units: int
    action: PlannedAction | None
    capped: bool
    reason: str


def _usable(units: int, target: Target, spec: PolicySpec) -> float:
    """QPS ``units`` serve at the SLO's target utilisation (the headroom factor included)."""
    return units * target.capacity_per_unit * spec.slo.target_utilization / spec.headroom_factor


def _full(units: int, target: Target, spec: PolicySpec) -> float:
    """QPS ``units`` serve at 100 % utilisation (the headroom factor included)."""
    return units * target.capacity_per_unit / spec.headroom_factor


def median_level(forecast: Forecast) -> FloatArray:
    """The forecast's median: the 0.5 band, interpolated if bracketed, else the mean."""
    levels = sorted(forecast.quantiles)
    if 0.5 in forecast.quantiles or (levels and levels[0] < 0.5 < levels[-1]):
        return np.asarray(forecast.level(0.5), dtype=np.float64)
    return np.asarray(forecast.mean, dtype=np.float64)


def _need_text(
    q: str, median: float, upper: float, units: int, target: Target, spec: PolicySpec, op: str
) -> str:
    """Why ``units`` are (``op`` ">") or are not (``op`` "≤") enough: the binding margin."""
    util = spec.slo.target_utilization
    by_median = median / util > upper if math.isfinite(median) else False
    if by_median:
        return compare_qps("p50", median, op, _usable(units, target, spec), util)
    return compare_qps(q, upper, op, _full(units, target, spec), 1.0)


# --- calendar and freeze windows as sorted, merged intervals (cached: decide is hot) ------

_Intervals = tuple[FloatArray, FloatArray]
_CACHE_SIZE = 32
_event_cache: OrderedDict[
    tuple[int, tuple[tuple[str, str], ...], float, float, float | None],
    tuple[object, _Intervals, str],
]
_event_cache = OrderedDict()


def _merge(pairs: list[tuple[float, float]]) -> _Intervals:
    pairs.sort()
    merged: list[list[float]] = []
    for start, end in pairs:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    starts = np.array([m[0] for m in merged], dtype=np.float64)
    ends = np.array([m[1] for m in merged], dtype=np.float64)
    return starts, ends


def _labels_for(spec: PolicySpec, target: Target) -> dict[str, str]:
    """The labels an event selector is matched against: the policy's, then the target's."""
    return {**spec.event_selector, **target.labels}


def _event_windows(
    calendar: Calendar,
    labels: dict[str, str],
    cooldown: float,
    before: float = 0.0,
    settle: float | None = None,
) -> tuple[_Intervals, str]:
    """``[window_start - before, end + cooldown)`` of every event applying to ``labels``,
    merged, and the zone those events are written in (reasons show local times).

    ``before`` is the longest lead: from the moment the pre-scale for an event may be
    ordered, scaling in would only undo it (and a reshard cannot be undone cheaply).
    ``settle`` (``scaleIn.duringEvents: nowcast``): the block ends ``settle`` after the
    event's start instead, once the nowcast has measured the event."""
    key = (id(calendar), tuple(sorted(labels.items())), cooldown, before, settle)
    hit = _event_cache.get(key)
    # The cache holds the calendar itself, so its id cannot be reused while cached.
    if hit is not None and hit[0] is calendar:
        _event_cache.move_to_end(key)
        return hit[1], hit[2]
    applying = [e for e in calendar.events if e.applies_to(labels)]
    if settle is None:
        pairs = [(e.window_start - before, e.end + cooldown) for e in applying]
    else:
        pairs = [(e.window_start - before, min(e.start + settle, e.end)) for e in applying]
    value = _merge(pairs)
    tz = applying[0].tz if applying else "UTC"
    _event_cache[key] = (calendar, value, tz)
    if len(_event_cache) > _CACHE_SIZE:
        _event_cache.popitem(last=False)
    return value, tz


def _freeze_windows(spec: PolicySpec) -> tuple[_Intervals, tuple[str, ...]]:
    pairs = [(w.start_epoch, w.end_epoch) for w in spec.freeze_windows]
    return _merge(pairs), tuple(w.reason for w in spec.freeze_windows)


def _inside(t: FloatArray, windows: _Intervals) -> np.ndarray:
    starts, ends = windows
    if starts.size == 0:
        return np.zeros(t.shape, dtype=bool)
    idx = np.searchsorted(starts, t, side="right") - 1
    safe = np.maximum(idx, 0)
    return (idx >= 0) & (t < ends[safe])


# --- the per-tick rule over arrays -------------------------------------------------------


def _fwd_max(x: IntArray, width: int, count: int) -> IntArray:
    """``out[j] = max(x[j : j + width + 1])`` for ``j < count``; ``x`` is long enough."""
    if width <= 0:
        return x[:count].copy()
    if count == 1:  # decide's case: skip the window view's overhead
        return np.array([x[: width + 1].max()], dtype=np.int64)
    # Doubling: after each pass m[j] = max(x[j : j + s]); two overlapping spans of s cover
    # the window. log2(width) array passes instead of a (count x width) window view.
    m = np.asarray(x[: count + width], dtype=np.int64)
    s = 1
    while 2 * s <= width + 1:
        m = np.maximum(m[:-s], m[s:])
        s *= 2
    r = width + 1 - s
    return np.maximum(m[:count], m[r : r + count])


@dataclass(frozen=True)
class _Ctx:
    """Arrays for positions ``lo .. lo + count - 1`` of the forecast, given ``u`` ordered."""

    lo: int
    t: FloatArray  # times of the positions
    step: float
    lead_steps: int
    window_steps: int  # lead + stabilization
    level: FloatArray  # demand at the quantile, from lo to the end of the forecast
    median: FloatArray  # the median forecast over the same positions
    req_ext: IntArray  # required units from lo, padded past the horizon with the last value
    raw_over: np.ndarray  # bool per position in req_ext: the need was clamped at maxUnits
    need: IntArray  # max required over [j, j + L]: what must be ordered by now
    out_to: IntArray  # what a scale-out orders: max required over [j, j + L + S] (chain)
    stay: IntArray  # max required over [j, j + L + S]: the floor for a scale-in
    blocked_in: np.ndarray  # event window + cooldown, or freeze
    freeze: np.ndarray
    ceiling: int  # budget ceiling on look-ahead units (max_units when no budget)
    budget_note: str
    tz: str  # where the target's events happen: reasons show that local time
    # For skipping ahead (plan_target): a scale-out is possible where ``out_level > u``,
    # a scale-in where ``in_level < u`` (blocked positions hold a value no ``u`` is above).
    out_level: IntArray
    in_level: IntArray
    peak: int  # the largest requirement in req_ext (what the lead is sized for)
    key: str  # the target's name, its units' noun and the quantile, as reasons show them
    noun: str
    q: str
    horizon: str  # the look-ahead window (lead + stabilization) as reasons show it


def _lead_seconds(target: Target, spec: PolicySpec, u: int, to: int) -> float:
    return target.provisioning.delay(u, max(to, u + 1)) + spec.lead_time


def _lead_steps(forecast: Forecast, spec: PolicySpec, target: Target, u: int, ctx: _Ctx) -> int:
    """The lead (in steps) :func:`_build` would compute for ``u`` over ``ctx``'s window."""
    biggest = min(target.max_units, u + target.max_step) if target.max_step else target.max_units
    seconds = _lead_seconds(target, spec, u, min(ctx.peak, biggest))
    return max(0, math.ceil(seconds / ctx.step - 1e-9))


def _build(
    forecast: Forecast,
    spec: PolicySpec,
    target: Target,
    calendar: Calendar,
    state: PlannerState,
    *,
    now: float,
    lo: int,
    count: int,
    u: int,
    raw_units: IntArray | None = None,
) -> _Ctx:
    """The per-position arrays of the rule from ``lo``; ``raw_units`` (optional):
    ``planned_units_raw`` over the whole forecast, when the caller has it already."""
    level_all = np.asarray(forecast.level(spec.forecast.quantile), dtype=np.float64)
    med_all = median_level(forecast)
    t_all = forecast.t
    n = int(t_all.size)
    count = max(1, min(count, n - lo))
    step = float(t_all[1] - t_all[0]) if n > 1 else 60.0
    max_step = target.max_step
    stab = spec.scale_in.stabilization

    def steps(seconds: float) -> int:
        return max(0, math.ceil(seconds / step - 1e-9))

    # The lead depends on the size of the change (Redis reshards move data): first the
    # most conservative lead bounds the window, then the real peak in it sets the lead.
    biggest = min(target.max_units, u + max_step) if max_step else target.max_units
    lead0 = steps(_lead_seconds(target, spec, u, biggest))
    chain0 = math.ceil(max(0, target.max_units - u) / max_step) if max_step else 0
    ext0 = (chain0 + 1) * lead0 + steps(stab) + 1
    level = level_all[lo : lo + count + ext0]
    median = med_all[lo : lo + count + ext0]
    if raw_units is not None:  # elementwise: a slice of the whole equals the slice's own
        raw_all = raw_units[lo : lo + count + ext0]
    else:
        raw_all = planned_units_raw(median, level, target, spec)
    req_all = np.minimum(np.maximum(raw_all, target.min_units), target.max_units)
    peak = int(req_all.max())
    lead = steps(_lead_seconds(target, spec, u, min(peak, biggest)))
    window = lead + steps(stab)
    # Chains: with max_step a need of N units at T takes k = ceil((N - u) / max_step)
    # orders one lead apart, so the k-th term looks k leads ahead. The terms do not
    # depend on u (terms that cannot matter for any u are harmless), which lets
    # plan_target keep these arrays across its own actions while the lead is unchanged.
    chain = math.ceil(max(0, peak - target.min_units) / max_step) + 1 if max_step else 0
    ext = max(window, (chain + 1) * lead) + 1
    pad = count + ext - req_all.size
    req_ext = np.concatenate([req_all, np.full(max(0, pad), req_all[-1], dtype=np.int64)])
    raw_over = np.concatenate([raw_all, np.full(max(0, pad), raw_all[-1])]) > target.max_units

    stay = _fwd_max(req_ext, window, count)
    out_to = stay
    if chain and count == 1:
        # decide's case: the k-th needs are one strided window view, no loop.
        ks = np.arange(chain + 1)
        views = sliding_window_view(req_ext[: (chain + 1) * lead + 1], lead + 1)
        needs = views[ks * lead].max(axis=1) if lead else req_ext[: chain + 1]
        need = np.array([(needs - ks * max_step).max()], dtype=np.int64)
        out_to = np.maximum(stay, (needs[1:] - (ks[1:] - 1) * max_step).max())
    elif chain:
        need = _fwd_max(req_ext, lead, count + chain * lead)
        # Start now when the k-th need minus k steps exceeds what is ordered; size the
        # order toward the peak the chain is working to (capped at max_step by _step).
        trigger = need[:count].copy()
        for k in range(1, chain + 1):
            ahead = need[k * lead : k * lead + count]
            trigger = np.maximum(trigger, ahead - k * max_step)
            out_to = np.maximum(out_to, ahead - (k - 1) * max_step)
        need = trigger
    else:
        need = _fwd_max(req_ext, lead, count)

    t = t_all[lo : lo + count]
    labels = _labels_for(spec, target)
    longest_lead = _lead_seconds(target, spec, target.min_units, target.max_units)
    settle = spec.scale_in.stabilization if spec.scale_in.during_events == "nowcast" else None
    windows, tz = _event_windows(calendar, labels, spec.scale_in.cooldown, longest_lead, settle)
    in_event = _inside(t, windows)
    freeze_iv, _ = _freeze_windows(spec)
    freeze = _inside(t, freeze_iv)

    ceiling, note = target.max_units, ""
    if spec.budget is not None:
        ceiling, note = _budget_ceiling(spec, target, state, now=now, t=t, want=out_to, step=step)
    now_req = req_ext[: t.size]
    allowed = np.maximum(now_req, max(ceiling, target.min_units))
    look = np.minimum(np.minimum(need[: t.size], allowed), target.max_units)
    out_level = np.where(freeze, now_req, look)
    blocked = in_event | freeze
    in_level = np.where(blocked, np.iinfo(np.int64).max, np.maximum(stay, target.min_units))
    return _Ctx(
        lo=lo,
        t=t,
        step=step,
        lead_steps=lead,
        window_steps=window,
        level=level,
        median=median,
        req_ext=req_ext,
        raw_over=raw_over,
        need=need,
        out_to=out_to,
        stay=stay,
        blocked_in=in_event | freeze,
        freeze=freeze,
        ceiling=ceiling,
        budget_note=note,
        tz=tz,
        out_level=np.asarray(out_level, dtype=np.int64),
        in_level=np.asarray(in_level, dtype=np.int64),
        peak=int(req_ext.max()),
        key=target_key(target),
        noun=unit_noun(target),
        q=f"p{round(spec.forecast.quantile * 100)}",
        horizon=_duration(window * step),
    )


def _period(spec: PolicySpec, state: PlannerState, now: float) -> tuple[float, float]:
    """(start, unit-seconds used) of the budget period containing ``now``."""
    assert spec.budget is not None
    start = state.period_start if state.period_start is not None else now
    if now >= start + spec.budget.period:
        elapsed = math.floor((now - start) / spec.budget.period)
        return start + elapsed * spec.budget.period, 0.0
    return start, state.unit_seconds_used


def _budget_ceiling(
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
    start, used = _period(spec, state, now)
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


def _step(
    ctx: _Ctx,
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
        return _order(
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
        return _order(
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
    return _order(
        key,
        target,
        at,
        u,
        to,
        reason,
    )


def _order(
    key: str,
    target: Target,
    at: float,
    u: int,
    to: int,
    reason: str,
    *,
    event: str | None = None,
    capped: bool = False,
) -> PlannedAction:
    """An order placed at ``at``: ready once the target's provisioning delay has passed."""
    return PlannedAction(
        at=at,
        ready_by=at + target.provisioning.delay(u, to),
        target=key,
        from_units=u,
        to_units=to,
        reason=reason,
        event=event,
        capped=capped,
    )


def _peak_index(ctx: _Ctx, p: int, look: int) -> int:
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
    return _order(
        key,
        target,
        at,
        u,
        to,
        reason,
        event=event.name if event is not None else None,
        capped=over_max or budget_capped,
    )


def _start_index(forecast: Forecast, now: float) -> int:
    """The forecast position that holds ``now`` (the last step at or before it)."""
    i = int(np.searchsorted(forecast.t, now, side="right")) - 1
    return min(max(i, 0), max(int(forecast.t.size) - 1, 0))


def _after_action(state: PlannerState, action: PlannedAction) -> PlannerState:
    # Built directly: dataclasses.replace costs several times more, once per action.
    if action.to_units > action.from_units:
        return PlannerState(
            action.at, state.last_scale_in, state.unit_seconds_used, state.period_start
        )
    return PlannerState(
        state.last_scale_out, action.at, state.unit_seconds_used, state.period_start
    )


# --- public API --------------------------------------------------------------------------


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
    if observed_demand <= _usable(u, target, spec) * (1.0 + GUARD_TOLERANCE):
        return None
    to = min(floor, u + target.max_step) if target.max_step else floor
    key, noun = target_key(target), unit_noun(target)
    util = spec.slo.target_utilization
    reason = f"{key} {u}→{to} {noun} at {_clock(now, tz)}: " + compare_qps(
        "reactive: observed", observed_demand, ">", _usable(u, target, spec), util
    )
    return _order(
        key,
        target,
        now,
        u,
        to,
        reason,
    )


def _with_guard(
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
    ctx = _build(
        forecast, spec, target, calendar, state, now=now, lo=lo, count=count, u=current_units
    )
    action = _step(ctx, 0, current_units, state, forecast, spec, target, now)
    if floor:
        guard = reactive_guard(observed_demand, spec, target, now=now, current_units=u, tz=ctx.tz)
        action = _with_guard(action, guard, floor, u)
    return _decision(ctx, action, u, floor, target)


def _decision(
    ctx: _Ctx, action: PlannedAction | None, u: int, floor: int, target: Target
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


def _hold_reason(ctx: _Ctx, u: int, target: Target) -> str:
    if ctx.freeze[0] and int(ctx.need[0]) > u:
        return f"hold: freeze window; {int(ctx.need[0])} {unit_noun(target)} wanted later"
    if int(ctx.stay[0]) < u and ctx.blocked_in[0]:
        return "hold: scale-in blocked by an event window, its cooldown or a freeze"
    if int(ctx.stay[0]) < u:
        return "hold: scale-in waits for its interval or stabilization"
    return f"hold: {u} {unit_noun(target)} cover the next {_duration(ctx.window_steps * ctx.step)}"


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
    ctx = _build(
        forecast, spec, target, calendar, st, now=now, lo=j, count=n - j, u=u, raw_units=raw
    )
    leads: dict[int, int] = {}  # _lead_steps per units ordered, for the current ctx
    if ctx.budget_note:
        notes.append(ctx.budget_note)
    budget_capped = bool(ctx.budget_note)
    floor = reactive_floor(observed_demand, target, spec)
    first_ctx = ctx
    decision: Decision | None = None
    while j < n:
        p = j - ctx.lo
        action = _step(ctx, p, u, st, forecast, spec, target, now)
        if j == lo:
            if floor:
                guard = reactive_guard(
                    observed_demand, spec, target, now=now, current_units=u, tz=ctx.tz
                )
                action = _with_guard(action, guard, floor, u)
            decision = _decision(first_ctx, action, u, floor, target)
        if action is not None:
            actions.append(action)
            st = _after_action(st, action)
            u = action.to_units
            units[j] = u
            j += 1
            if j < n:
                lead = leads.get(u)
                if lead is None:
                    lead = leads[u] = _lead_steps(forecast, spec, target, u, ctx)
                if lead != ctx.lead_steps:
                    ctx = _build(
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
        nxt = _next_candidate(ctx, start, u, st, spec, target)
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


def _next_candidate(
    ctx: _Ctx, start: int, u: int, st: PlannerState, spec: PolicySpec, target: Target
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
        start, used = _period(spec, state, now)
    new = replace(state, period_start=start, unit_seconds_used=used + units * dt)
    if action is not None:
        new = _after_action(new, action)
    return new
