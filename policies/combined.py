"""The rule that orders units: ``max(reactive, predictive)``, scaled in as fast as the HPA.

Run by the driver (:mod:`headroom.policies.driver`) for every target at every tick: the
control loop's pass (every 15-30 s), the operator's, and the backtest's ``headroom``
strategy (every 15 s, the HPA's sync period). Per tick, with ``u`` units ordered and
``ready`` of them serving:

- **reactive**: the Kubernetes HPA v2 metric recommendation on the newest sample at
  ``reactive.targetUtilization`` (:class:`~headroom.policies.reactive.HpaRule`: tolerance,
  unready pods);
- **predictive**: the units the forecast needs over ``[now, now + lead]`` (lead: the
  provisioning delay of the change plus ``leadTime`` plus the interval to the next tick,
  so an order is placed on time, not a step late). The forecast is *anchored on what is
  measured*: demand at ``now + x`` is the median of the last three minutes times the
  forecast's own ratio from then to ``now + x`` (its learned daily and event shape), so a
  level that runs above or below the model is followed at once and an event's size is
  the one measured since it began. The median is provisioned at
  ``forecast.targetUtilization``, inside an event's window (from its ramp to its
  demand-determined end) at ``forecast.eventTargetUtilization`` (more margin, bought only
  where events are); the policy quantile at 100 %;
- the **pre-scale stands** until an event is one settle (10 min) in (starts run late):
  until then the anchored forecast inside its window is at least the forecast itself;
- an event's **end follows demand**: after one settle (10 min) into the event, a
  measured level back within ``END_TOLERANCE`` of the level before the event (or of the
  forecast's level without events now, if higher: a daily rise is no overrun) ends it
  (its margin and its forecast lift stop); past its declared end, a level still above
  that keeps the event on (its margin, and the measured level held over the lead) until
  the level is back or its tail window closes;
- both recommendations go through the HPA's stabilisation (scale-in to the highest
  recommendation of the last ``scaleIn.stabilization``, 5 min by default) and rate
  limits, then the policy's options: ``maxStep``, the bounds, freeze windows (no
  scale-in; scale-out only for the demand now), ``scaleIn.interval``/``stepUnits``,
  ``scaleIn.cooldown`` after an event and ``duringEvents: hold|nowcast`` blocks, and a
  budget's ceiling on the predictive half.

With ``forecast.enabled: false``, too little history or no forecast, the rule is the
HPA's alone: Headroom with no forecast *is* the HPA.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from headroom.policies.calendar import Calendar, DemandEvent
from headroom.policies.forecast.base import Forecast
from headroom.policies.forecast.uplift import effective_ramp, event_window
from headroom.policies.planner import (
    Decision,
    PlannedAction,
    PlannerState,
    _budget_ceiling,
    _freeze_windows,
    _inside,
    _labels_for,
    median_level,
)
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.reactive import HpaBehavior, HpaRule
from headroom.policies.series import FloatArray, Series
from headroom.policies.text import clock as _clock
from headroom.policies.text import compare_qps, target_key, unit_noun
from headroom.policies.text import duration_text as _duration

Since = Callable[[float], Series]  # the samples at t >= a time (all before now)

ANCHOR_WINDOW = 180.0  # the measured level: the median of the last this-many seconds
SETTLE = 600.0  # into an event before a level back at normal may end it
END_TOLERANCE = 0.15  # a level within this share of the one before an event: it is over
REFERENCE_SPAN = 3600.0  # the level before an event: median of this long before its ramp
_EPS = 1e-9


@dataclass(frozen=True)
class Anchor:
    """What is measured now: a robust recent mean and the time it stands for."""

    value: float
    at: float


def anchor_of(t: FloatArray, v: FloatArray) -> Anchor | None:
    """The median of the finite samples given (the last ``ANCHOR_WINDOW``), at their
    median time: one outlier does not move it, a step is followed within half the window."""
    pairs = sorted((x, y) for x, y in zip(v.tolist(), t.tolist(), strict=True) if x == x)
    if not pairs:
        return None
    n = len(pairs)
    times = sorted(y for _, y in pairs)
    if n % 2:
        return Anchor(pairs[n // 2][0], times[n // 2])
    mid = n // 2
    return Anchor(0.5 * (pairs[mid - 1][0] + pairs[mid][0]), 0.5 * (times[mid - 1] + times[mid]))


@dataclass(frozen=True)
class _Prepared:
    """A forecast's arrays, once per forecast."""

    forecast: Forecast
    t: FloatArray
    median: FloatArray
    upper: FloatArray
    baseline: FloatArray | None
    ceiling: int  # a budget's ceiling on look-ahead units (max_units without one)


_Row = tuple[float, int, float, float, DemandEvent | None]  # t, units, median, util, event


def _best(
    rows: list[_Row], now: float, reach: float, step: float
) -> tuple[int, float, float, DemandEvent | None]:
    """The largest need among the positions that hold demand within ``[now, now + reach)``."""
    best: _Row | None = None
    end = now + reach
    for row in rows:
        if row[0] + step <= now:
            continue
        if row[0] >= end and best is not None:
            break
        if best is None or row[1] > best[1]:
            best = row
    if best is None:  # past the forecast's end: its last position
        best = rows[-1]
    return best[1], best[2], best[3], best[4]


@dataclass(frozen=True)
class RuleResult:
    decision: Decision
    required_now: int | None  # the predictive need (units) now; None without a forecast


class TargetRule:
    """The combined rule for one target, with its HPA windows (kept in memory, as the HPA
    controller keeps them)."""

    def __init__(self, spec: PolicySpec, target: Target) -> None:
        self.spec = spec
        self.target = target
        util = spec.reactive_utilization
        per_pod = target.capacity_per_unit * util / spec.headroom_factor
        behavior = HpaBehavior(
            tolerance=spec.reactive.tolerance, scale_down_window=spec.scale_in.stabilization
        )
        self.hpa = HpaRule(per_pod, target.min_units, target.max_units, behavior)
        self.labels = _labels_for(spec, target)
        self.key, self.noun = target_key(target), unit_noun(target)
        self._calendar: Calendar | None = None
        self._events: list[DemandEvent] = []
        self._lo = np.empty(0)
        self._hi = np.empty(0)
        self._prepared: _Prepared | None = None
        self._refs: dict[tuple[str, float], float] = {}
        self._freeze = _freeze_windows(spec)[0]
        self.step = 60.0  # the forecast's step (set from the driver)
        self._rows: list[_Row] = []
        self._rows_key: tuple[tuple[int, float], int] | None = None
        self._rows_of: _Prepared | None = None

    # -- events ----------------------------------------------------------------------------

    def _applying(self, calendar: Calendar) -> None:
        if calendar is self._calendar:
            return
        self._calendar = calendar
        ramp = self.spec.forecast.default_ramp
        self._events = [e for e in calendar.events if e.applies_to(self.labels)]
        wins = [event_window(e, ramp) for e in self._events]
        self._lo = np.array([w[0] for w in wins], dtype=np.float64)
        self._hi = np.array([w[1] for w in wins], dtype=np.float64)

    def _reference(self, event: DemandEvent, since: Since) -> float:
        """The measured level before ``event``'s window (median of the hour before it)."""
        key = (event.name, event.start)
        hit = self._refs.get(key)
        if hit is not None:
            return hit
        lo = event.start - effective_ramp(event, self.spec.forecast.default_ramp)
        seen = since(lo - REFERENCE_SPAN)
        b = int(np.searchsorted(seen.t, lo, side="left"))
        vals = seen.v[:b]
        vals = vals[np.isfinite(vals)]
        ref = float(np.median(vals)) if vals.size else math.nan
        if b < seen.t.size:  # the whole hour is past: fixed from now on
            self._refs[key] = ref
        return ref

    # -- the forecast's arrays -------------------------------------------------------------

    def _prepare(self, forecast: Forecast, now: float, state: PlannerState) -> _Prepared:
        prepared = self._prepared
        if prepared is not None and prepared.forecast is forecast:
            return prepared
        spec, target = self.spec, self.target
        upper = np.asarray(forecast.level(spec.forecast.quantile), dtype=np.float64)
        median = median_level(forecast)
        base = forecast.baseline
        ceiling = target.max_units
        if spec.budget is not None and forecast.t.size:
            util = spec.forecast_utilization
            want = np.ceil(
                np.maximum(median / util, upper) * spec.headroom_factor / target.capacity_per_unit
                - _EPS
            ).astype(np.int64)
            step = float(forecast.t[1] - forecast.t[0]) if forecast.t.size > 1 else 60.0
            ceiling, _ = _budget_ceiling(
                spec, target, state, now=now, t=forecast.t, want=want, step=step
            )
        prepared = _Prepared(forecast, forecast.t, median, upper, base, ceiling)
        self._prepared = prepared
        return prepared

    # -- the predictive half ---------------------------------------------------------------

    def _predictive(
        self,
        prep: _Prepared,
        now: float,
        u: int,
        dt: float,
        anchor: Anchor | None,
        since: Since,
        seen: tuple[int, float],
    ) -> tuple[int, float, float, DemandEvent | None]:
        """(units, median demand, utilisation, event) at the binding position of the
        look-ahead ``[now, now + lead]`` (lead: the change's delay, ``leadTime`` and the
        interval to the next tick)."""
        spec, target = self.spec, self.target
        key = (seen, u)
        rows = self._rows if self._rows_key == key and self._rows_of is prep else None
        if rows is None:
            longest = target.provisioning.delay(u, target.max_units) + spec.lead_time
            reach = max(longest, target.provisioning.delay(u, u + 1) + spec.lead_time)
            rows = self._rows = self._positions(prep, now, reach + 2 * self.step, anchor, since)
            self._rows_key, self._rows_of = key, prep
        lead = target.provisioning.delay(u, u + 1) + spec.lead_time
        best = _best(rows, now, lead + dt, self.step)
        if best[0] > u + 1:  # a bigger change may take longer (a reshard moves more data)
            longer = target.provisioning.delay(u, best[0]) + spec.lead_time
            if longer > lead:
                best = _best(rows, now, longer + dt, self.step)
        return best

    def _positions(
        self, prep: _Prepared, now: float, reach: float, anchor: Anchor | None, since: Since
    ) -> list[_Row]:
        """Per forecast position from ``now`` to ``now + reach``: its time, the units it
        needs, the anchored median and the utilisation it is sized at, its event."""
        spec, target = self.spec, self.target
        t = prep.t
        k0 = max(0, int(np.searchsorted(t, now, side="right")) - 1)
        k1 = max(k0 + 1, int(np.searchsorted(t, now + reach, side="left")))
        scale = 1.0
        level = math.nan
        if anchor is not None:
            level = anchor.value
            ia = max(0, int(np.searchsorted(t, anchor.at, side="right")) - 1)
            m = float(prep.median[min(ia, t.size - 1)])
            if m > 0 and math.isfinite(m):
                scale = level / m
        tw = t[k0:k1].tolist()
        raw_med, raw_up = prep.median[k0:k1].tolist(), prep.upper[k0:k1].tolist()
        med = [x * scale for x in raw_med]
        up = [x * scale for x in raw_up]
        util = [spec.forecast_utilization] * len(tw)
        which: list[DemandEvent | None] = [None] * len(tw)
        horizon = now + reach
        # The level an event is over at: the higher of the measured level before it and the
        # forecast's own level without events now (a daily rise is not an overrun).
        base_now = math.nan
        if prep.baseline is not None and prep.baseline.size:
            base_now = float(prep.baseline[min(k0, prep.baseline.size - 1)])
        if self._events:
            near = np.flatnonzero((self._lo <= horizon) & (self._hi > now)).tolist()
            for i in near:
                ev = self._events[i]
                lo, hi = float(self._lo[i]), float(self._hi[i])
                end = ev.end
                lift = True
                if math.isfinite(level) and (now >= ev.start + SETTLE or now >= ev.end):
                    ref = self._reference(ev, since)
                    if math.isfinite(base_now):
                        ref = max(ref, base_now) if math.isfinite(ref) else base_now
                    back = math.isfinite(ref) and level <= ref * (1.0 + END_TOLERANCE)
                    if now < ev.end and back:
                        end, lift = now, False  # ended early: no margin, no lift from now on
                    elif now >= ev.end and not back and now < hi:
                        end = horizon  # overran: the measured level holds, with the margin
                        med = [max(x, level) for x in med]
                        up = [max(x, level) for x in up]
                # Until the event has had a settle to show up (starts run late), the
                # pre-scale stands: the anchored forecast may not go below the forecast.
                hold = now < ev.start + SETTLE
                for j, tj in enumerate(tw):
                    if hold and lo <= tj < end:
                        med[j], up[j] = max(med[j], raw_med[j]), max(up[j], raw_up[j])
                    if not lift and tj >= ev.start:
                        med[j], up[j] = min(med[j], level), min(up[j], level)
                    if lo <= tj < end:
                        util[j] = min(util[j], spec.event_utilization)
                        which[j] = ev
        per_unit = target.capacity_per_unit / spec.headroom_factor
        lo_u, hi_u = target.min_units, target.max_units
        rows: list[_Row] = []
        for j, tj in enumerate(tw):
            m = med[j] if med[j] == med[j] else 0.0
            q = up[j] if up[j] == up[j] else 0.0
            need = math.ceil(m / (per_unit * util[j]) - _EPS)
            if which[j] is not None:  # the band (an event's uncertain size) inside events
                need = max(need, math.ceil(q / per_unit - _EPS))
            rows.append((tj, min(max(need, lo_u), hi_u), m, util[j], which[j]))
        return rows

    # -- the tick --------------------------------------------------------------------------

    def decide(
        self,
        now: float,
        *,
        units: int,
        ready: int,
        observed: float | None,
        anchor: Anchor | None,
        forecast: Forecast | None,
        calendar: Calendar,
        state: PlannerState,
        dt: float,
        since: Since,
        seen: tuple[int, float],
    ) -> RuleResult:
        spec, target, hpa = self.spec, self.target, self.hpa
        u = units
        self._applying(calendar)
        demand = observed if observed is not None else math.nan
        if ready <= 0 and demand > 0:
            reactive: int | None = math.ceil(demand / hpa.target_per_pod - _EPS)
        else:
            reactive = hpa.metric_recommendation(demand, u, ready)
        predictive: int | None = None
        p_demand, p_util, p_event = math.nan, 1.0, None
        if forecast is not None and forecast.t.size and spec.forecast.enabled:
            prep = self._prepare(forecast, now, state)
            predictive, p_demand, p_util, p_event = self._predictive(
                prep, now, u, dt, anchor, since, seen
            )
            if prep.ceiling < target.max_units:
                predictive = min(predictive, max(prep.ceiling, reactive or 0))
        bounded = hpa.bounded(u)
        if bounded is not None:
            desired = bounded
        elif reactive is None and predictive is None:
            return RuleResult(Decision(u, None, False, "hold: no metrics"), predictive)
        else:
            rec = max(
                x
                for x in (reactive, predictive, None if reactive is not None else u)
                if x is not None
            )
            desired = hpa.normalize(now, u, rec)
        desired, held = self._options(now, u, desired, reactive, state)
        capped = desired >= target.max_units and max(reactive or 0, predictive or 0) > desired
        if desired == u:
            reason = held or self._hold_reason(u, reactive, predictive)
            return RuleResult(Decision(u, None, capped, reason), predictive)
        head = f"{self.key} {u}→{desired} {self.noun} at {_clock(now, 'UTC')}"
        if desired > u:
            if predictive is not None and predictive >= (reactive or 0) and predictive > u:
                label = "forecast p50" + (f" for '{p_event.name}'" if p_event else "")
                capacity = u * target.capacity_per_unit * p_util / spec.headroom_factor
                why = compare_qps(label, p_demand, ">", capacity, p_util)
            else:
                util = spec.reactive_utilization
                capacity = u * target.capacity_per_unit * util / spec.headroom_factor
                why = compare_qps("reactive: observed", demand, ">", capacity, util)
            event = p_event.name if p_event is not None and predictive == desired else None
        else:
            window = _duration(spec.scale_in.stabilization)
            why = (
                f"the highest need of the last {window} is {desired} {self.noun} "
                f"(reactive {reactive if reactive is not None else 'n/a'}, "
                f"forecast {predictive if predictive is not None else 'n/a'})"
            )
            event = None
        if capped:
            why += f"; capped at maxUnits {target.max_units}"
        ready_by = now + (target.provisioning.delay(u, desired) if desired > u else 0.0)
        action = PlannedAction(now, ready_by, self.key, u, desired, f"{head}: {why}", event, capped)
        return RuleResult(Decision(desired, action, capped, action.reason), predictive)

    def _options(
        self, now: float, u: int, desired: int, reactive: int | None, state: PlannerState
    ) -> tuple[int, str]:
        """The policy's options over the HPA-normalised order; (units, why held)."""
        spec, target = self.spec, self.target
        if target.max_step and abs(desired - u) > target.max_step:
            desired = u + target.max_step if desired > u else u - target.max_step
        frozen = bool(_inside(np.array([now]), self._freeze)[0])
        if frozen:
            if desired < u:
                return u, "hold: freeze window"
            desired = min(desired, max(u, reactive or 0))
        if desired >= u or u > target.max_units:
            return desired, ""
        si = spec.scale_in
        if state.last_scale_in is not None and now < state.last_scale_in + si.interval:
            return u, "hold: scale-in waits for its interval"
        desired = max(desired, u - si.step_for(u))
        if self._blocked(now):
            return u, "hold: scale-in blocked by an event window or its cooldown"
        return desired, ""

    def _blocked(self, now: float) -> bool:
        """Scale-in is held here: ``duringEvents`` hold/nowcast, or ``cooldown`` after."""
        si = self.spec.scale_in
        if si.during_events == "follow" and si.cooldown <= 0:
            return False
        for ev in _near(self._events, self._lo, self._hi, now, si.cooldown):
            if si.during_events == "hold" and self._lo[ev] <= now < self._events[ev].end:
                return True
            e = self._events[ev]
            if si.during_events == "nowcast" and self._lo[ev] <= now < min(
                e.start + si.stabilization, e.end
            ):
                return True
            if e.end <= now < e.end + si.cooldown:
                return True
        return False

    def _hold_reason(self, u: int, reactive: int | None, predictive: int | None) -> str:
        need = max(reactive or 0, predictive or 0)
        if need < u:
            window = _duration(self.spec.scale_in.stabilization)
            return f"hold: a need of {u} {self.noun} within the last {window}"
        return f"hold: {u} {self.noun} cover the need (reactive {reactive}, forecast {predictive})"

    def record(self, now: float, units: int, ordered: int) -> None:
        """What was ordered (the HPA's rate-limit periods count it)."""
        self.hpa.record(now, units, ordered)


def _near(
    events: Sequence[DemandEvent], lo: FloatArray, hi: FloatArray, now: float, extra: float
) -> list[int]:
    if not events:
        return []
    return np.flatnonzero((lo <= now) & (hi + extra > now)).tolist()
