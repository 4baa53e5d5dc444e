"""Sizing: the per-position arrays the rule reads, from a forecast and a policy.

:func:`build` turns the forecast into units needed per position (the median at the SLO's
target utilisation, the quantile at 100 %), the lead of an order in steps, the needs a
chain of ``max_step`` orders must start for, and the windows that block scale-in; the
rule (``rule.step_at``) then reads one position of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from headroom.policies.calendar import Calendar
from headroom.policies.capacity import IntArray, planned_units_raw
from headroom.policies.forecast.base import Forecast
from headroom.policies.planner.budget import budget_ceiling
from headroom.policies.planner.values import PlannerState
from headroom.policies.planner.windows import event_windows, freeze_windows, inside, labels_for
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray
from headroom.policies.text import duration_text as _duration
from headroom.policies.text import target_key, unit_noun


def usable_qps(units: int, target: Target, spec: PolicySpec) -> float:
    """QPS ``units`` serve at the SLO's target utilisation (the headroom factor included)."""
    return units * target.capacity_per_unit * spec.slo.target_utilization / spec.headroom_factor


def full_qps(units: int, target: Target, spec: PolicySpec) -> float:
    """QPS ``units`` serve at 100 % utilisation (the headroom factor included)."""
    return units * target.capacity_per_unit / spec.headroom_factor


def median_level(forecast: Forecast) -> FloatArray:
    """The forecast's median: the 0.5 band, interpolated if bracketed, else the mean."""
    levels = sorted(forecast.quantiles)
    if 0.5 in forecast.quantiles or (levels and levels[0] < 0.5 < levels[-1]):
        return np.asarray(forecast.level(0.5), dtype=np.float64)
    return np.asarray(forecast.mean, dtype=np.float64)


# --- the per-tick rule over arrays -------------------------------------------------------


def fwd_max(x: IntArray, width: int, count: int) -> IntArray:
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
class Ctx:
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


def lead_seconds(target: Target, spec: PolicySpec, u: int, to: int) -> float:
    return target.provisioning.delay(u, max(to, u + 1)) + spec.lead_time


def lead_steps(forecast: Forecast, spec: PolicySpec, target: Target, u: int, ctx: Ctx) -> int:
    """The lead (in steps) :func:`build` would compute for ``u`` over ``ctx``'s window."""
    biggest = min(target.max_units, u + target.max_step) if target.max_step else target.max_units
    seconds = lead_seconds(target, spec, u, min(ctx.peak, biggest))
    return max(0, math.ceil(seconds / ctx.step - 1e-9))


def build(
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
) -> Ctx:
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
    lead0 = steps(lead_seconds(target, spec, u, biggest))
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
    lead = steps(lead_seconds(target, spec, u, min(peak, biggest)))
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

    stay = fwd_max(req_ext, window, count)
    out_to = stay
    if chain and count == 1:
        # decide's case: the k-th needs are one strided window view, no loop.
        ks = np.arange(chain + 1)
        views = sliding_window_view(req_ext[: (chain + 1) * lead + 1], lead + 1)
        needs = views[ks * lead].max(axis=1) if lead else req_ext[: chain + 1]
        need = np.array([(needs - ks * max_step).max()], dtype=np.int64)
        out_to = np.maximum(stay, (needs[1:] - (ks[1:] - 1) * max_step).max())
    elif chain:
        need = fwd_max(req_ext, lead, count + chain * lead)
        # Start now when the k-th need minus k steps exceeds what is ordered; size the
        # order toward the peak the chain is working to (capped at max_step by step_at).
        trigger = need[:count].copy()
        for k in range(1, chain + 1):
            ahead = need[k * lead : k * lead + count]
            trigger = np.maximum(trigger, ahead - k * max_step)
            out_to = np.maximum(out_to, ahead - (k - 1) * max_step)
        need = trigger
    else:
        need = fwd_max(req_ext, lead, count)

    t = t_all[lo : lo + count]
    labels = labels_for(spec, target)
    longest_lead = lead_seconds(target, spec, target.min_units, target.max_units)
    settle = spec.scale_in.stabilization if spec.scale_in.during_events == "nowcast" else None
    windows, tz = event_windows(calendar, labels, spec.scale_in.cooldown, longest_lead, settle)
    in_event = inside(t, windows)
    freeze_iv, _ = freeze_windows(spec)
    freeze = inside(t, freeze_iv)

    ceiling, note = target.max_units, ""
    if spec.budget is not None:
        ceiling, note = budget_ceiling(spec, target, state, now=now, t=t, want=out_to, step=step)
    now_req = req_ext[: t.size]
    allowed = np.maximum(now_req, max(ceiling, target.min_units))
    look = np.minimum(np.minimum(need[: t.size], allowed), target.max_units)
    out_level = np.where(freeze, now_req, look)
    blocked = in_event | freeze
    in_level = np.where(blocked, np.iinfo(np.int64).max, np.maximum(stay, target.min_units))
    return Ctx(
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
