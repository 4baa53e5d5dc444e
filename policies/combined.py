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
from headroom.policies.forecast.eventsize import BASE_TO, EventSizes
from headroom.policies.forecast.uplift import effective_ramp, event_window
from headroom.policies.planner.budget import budget_ceiling as _budget_ceiling
from headroom.policies.planner.sizing import median_level
from headroom.policies.planner.values import Decision, PlannedAction, PlannerState
from headroom.policies.planner.windows import freeze_windows as _freeze_windows
from headroom.policies.planner.windows import inside as _inside
from headroom.policies.planner.windows import labels_for as _labels_for
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.reactive import HpaBehavior, HpaRule
from headroom.policies.series import FloatArray, Series
from headroom.policies.text import clock as _clock
from headroom.policies.text import compare_qps, target_key, unit_noun
from headroom.policies.text import duration_text as _duration

Since = Callable[[float], Series]  # the samples at t >= a time (all before now)

ANCHOR_WINDOW = 180.0  # the measured level: the median of the last this-many seconds
PRE_EARLY = 300.0  # the pre-scale stands from this long before an event's start (starts run early)
HOLD = 900.0  # ... until this long after it, unless its demand has arrived (starts run late)
EARLY = 1200.0  # the event utilisation holds from PRE_EARLY before the start to this after it
ARRIVED = 0.7  # a measured level at this share of the pre-scale: the event's demand is here
TREND_WINDOW = 600.0  # inside an event's window, the growth measured over this long ...
TREND_REACH = 1200.0  # ... is carried at most this far ahead (and never beyond the lead)
TREND_CAP = 3.0  # ... and lifts the measured level at most this many times
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


def growth_of(t: FloatArray, v: FloatArray) -> float:
    """The measured growth rate (log per second) of the samples given, at its lower
    one-standard-error bound and never below 0: a rise the noise could explain counts for
    nothing, a steady one almost in full."""
    ok = np.isfinite(v) & (v > 0)
    if int(ok.sum()) < 4:
        return 0.0
    x, y = t[ok], np.log(v[ok])
    x = x - x.mean()
    sxx = float(np.dot(x, x))
    if sxx <= 0:
        return 0.0
    slope = float(np.dot(x, y - y.mean())) / sxx
    resid = y - y.mean() - slope * x
    se = math.sqrt(float(np.dot(resid, resid)) / (x.size - 2) / sxx)
    return max(0.0, slope - se)


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
        self.sizes: EventSizes | None = None
        self._sizes_key: tuple[tuple[str, float, float], ...] | None = None
        self._bases: dict[tuple[str, float], tuple[float, float]] = {}
        self._arrived: set[tuple[str, float]] = set()
        self._pres: dict[tuple[str, float], float] = {}
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
        # The learned sizes survive a calendar that is re-read unchanged.
        key = tuple((e.name, e.start, e.end) for e in self._events)
        if key != self._sizes_key:
            self._sizes_key = key
            reach = self.target.provisioning.delay(1, 2) + 600.0
            self.sizes = EventSizes(
                self._events,
                prior=self.spec.forecast.default_event_multiplier,
                reach=reach,
                ramp=lambda e: effective_ramp(e, ramp),
            )

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
            # As far as any order could need to look: from the fewest units to the most
            # (a need already ordered is held while dropping it could not be undone).
            lo_u = min(u, target.min_units)
            longest = target.provisioning.delay(lo_u, target.max_units) + spec.lead_time
            reach = max(longest, target.provisioning.delay(u, u + 1) + spec.lead_time)
            rows = self._rows = self._positions(prep, now, reach + 2 * self.step, anchor, since)
            self._rows_key, self._rows_of = key, prep
        # A position is due once the change it needs would not be ready by it if ordered
        # a tick later: its own delay (a bigger change may take longer: a reshard moves
        # more data), the lead time and the interval to the next tick.
        # Units already ordered for a coming need are held the same way: a position is due
        # if, dropped to what is needed now, its need could not be ordered back in time.
        delay = target.provisioning.delay
        extra = spec.lead_time + dt
        due: _Row | None = None
        base = u
        for row in rows:
            if row[0] + self.step <= now:
                continue
            need = row[1]
            if due is None:  # the position holding demand now is always due
                due = row
                base = min(u, need)
                continue
            if row[0] - now > delay(base, max(need, base + 1)) + extra:
                continue
            if need > due[1]:
                due = row
        if due is None:  # past the forecast's end: its last position
            due = rows[-1]
        best = (due[1], due[2], due[3], due[4])
        # Whatever is needed within the delay of the change about to be ordered is ordered
        # with it, in one step, rather than as a chain of orders that each see a little
        # more of a ramp.
        reach = 0.0
        for _ in range(8):
            if best[0] <= u:
                break
            longer = delay(u, best[0]) + extra
            if longer <= reach + 1e-9:
                break
            reach = longer
            wider = _best(rows, now, reach, self.step)
            if wider[0] <= best[0]:
                break
            best = wider
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
        med = [x * scale for x in prep.median[k0:k1].tolist()]
        util = [spec.forecast_utilization] * len(tw)
        which: list[DemandEvent | None] = [None] * len(tw)
        horizon = now + reach
        if self._events and self.sizes is not None:
            near = np.flatnonzero((self._lo <= horizon) & (self._hi > now)).tolist()
            for i in near:
                ev = self._events[i]
                self._event_rows(ev, now, level, prep, tw, med, util, which, since)
            if anchor is not None and self._growing(now):
                self._growth_rows(now, anchor, tw, med, since)
        per_unit = target.capacity_per_unit / spec.headroom_factor
        lo_u, hi_u = target.min_units, target.max_units
        rows: list[_Row] = []
        for j, tj in enumerate(tw):
            m = med[j] if med[j] == med[j] else 0.0
            need = math.ceil(m / (per_unit * util[j]) - _EPS)
            rows.append((tj, min(max(need, lo_u), hi_u), m, util[j], which[j]))
        return rows

    def _growing(self, now: float) -> bool:
        """Inside an event's window, but not where its start's step would read as growth
        (from ``PRE_EARLY`` before it to ``EARLY`` after: the pre-scale's and the event
        margin's span)."""
        inside = np.flatnonzero((self._lo <= now) & (self._hi > now)).tolist()
        if not inside:
            return False
        return all(
            not (self._events[i].start - PRE_EARLY <= now < self._events[i].start + EARLY)
            for i in inside
        )

    def _growth_rows(
        self, now: float, anchor: Anchor, tw: list[float], med: list[float], since: Since
    ) -> None:
        """Inside an event's window (its ramp, body and tail), demand that is measurably
        rising is carried forward at its measured rate over the lead (an audience
        gathering before a start, or growing to a peak the learned shape cannot place),
        sized as the forecast is: the reactive half keeps its margin on what is measured.
        (Sized at the reactive target instead, it bought the noise of 5-10 %-noisy traces
        at twice the HPA's minutes at its bill; measured with bench/foresight.py.)"""
        recent = since(now - TREND_WINDOW)
        rate = growth_of(recent.t, recent.v) if recent.t.size else 0.0
        if rate <= 0.0:
            return
        for j, tj in enumerate(tw):
            ahead = min(max(tj - anchor.at, 0.0), TREND_REACH)
            lifted = anchor.value * min(math.exp(rate * ahead), TREND_CAP)
            if lifted > med[j]:
                med[j] = lifted

    def _base_at_start(self, ev: DemandEvent, now: float, since: Since) -> tuple[float, float]:
        """The level ``ev`` starts from, measured before it, and the time it stands for
        (kept once its window is past: it is then final); NaN, NaN when it cannot be
        measured."""
        key = EventSizes.key(ev)
        hit = self._bases.get(key)
        if hit is not None:
            return hit
        assert self.sizes is not None
        base = self.sizes.base_at(ev, since)
        if now >= ev.start - BASE_TO:
            self._bases[key] = base
        return base

    def _event_rows(
        self,
        ev: DemandEvent,
        now: float,
        level: float,
        prep: _Prepared,
        tw: list[float],
        med: list[float],
        util: list[float],
        which: list[DemandEvent | None],
        since: Since,
    ) -> None:
        """Size the positions ``tw`` that ``ev`` reaches, in place.

        Until the event's demand has arrived (the measured level at ``ARRIVED`` of the
        pre-scale), its positions carry no forecast lift (the level measured now, moved by
        the baseline's daily shape) but, from ``PRE_EARLY`` before its start until
        ``HOLD`` after it, the pre-scale: the base before it times its learned size at
        the event quantile (:class:`~headroom.policies.forecast.eventsize.EventSizes`).
        Once it has arrived, the anchored forecast (the measured level times the learned
        shape's ratio) stands. From ``PRE_EARLY`` before the start to ``EARLY`` after it
        the forecast is sized at the event utilisation: the margin is bought where an
        event begins and nowhere else."""
        spec = self.spec
        sizes = self.sizes
        assert sizes is not None
        key = EventSizes.key(ev)
        lo, hi = ev.start - PRE_EARLY, ev.start + HOLD
        pre = self._pres.get(key, math.nan)
        if not math.isfinite(pre):
            # Sized once, from the base measured before the event: a pre-scale that moved
            # with every new sample would be a string of one-unit orders (reshards).
            base, at = self._base_at_start(ev, now, since)
            size = sizes.size(ev, spec.event_size_quantile)
            if math.isfinite(base):
                # The base moved by the daily shape from when it was measured to the start.
                pre = base * self._baseline_ratio(prep, ev.start, at) * size
                self._pres[key] = pre
            elif math.isfinite(level):  # no base to measure: the level now, not kept
                pre = level * self._baseline_ratio(prep, ev.start) * size
        arrived = key in self._arrived
        if not arrived and math.isfinite(level) and math.isfinite(pre) and now >= lo:
            if level >= ARRIVED * pre:
                self._arrived.add(key)
                arrived = True
        win_lo = ev.start - effective_ramp(ev, spec.forecast.default_ramp)
        for j, tj in enumerate(tw):
            if not arrived and tj >= win_lo and math.isfinite(level):
                med[j] = min(med[j], level * self._baseline_ratio(prep, tj, now))
            if not arrived and now < hi and lo <= tj < ev.end and math.isfinite(pre):
                med[j] = max(med[j], pre)
                which[j] = ev
            if lo <= tj < ev.start + EARLY:
                util[j] = min(util[j], spec.event_utilization)
                which[j] = ev

    @staticmethod
    def _baseline_ratio(prep: _Prepared, at: float, start: float | None = None) -> float:
        """The forecast's baseline (no events) at ``at`` over at ``start`` (default: the
        forecast's first position); 1 without a baseline."""
        b = prep.baseline
        if b is None or not b.size:
            return 1.0
        last = b.size - 1

        def index(x: float) -> int:
            return min(max(0, int(np.searchsorted(prep.t, x, side="right")) - 1), last)

        i = index(at)
        k = 0 if start is None else index(start)
        x, y = float(b[i]), float(b[k])
        if not (x > 0 and y > 0 and math.isfinite(x) and math.isfinite(y)):
            return 1.0
        return x / y

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
        if self.sizes is not None:
            self.sizes.learn(now, since)
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
            stabilized = hpa.stabilize(now, u, rec)
            desired = hpa.rate_limit(now, u, stabilized)
            # A planned scale-out (the predictive half's) is ordered whole, in one step: the
            # HPA's per-period scale-up limit is for chasing a measured surge; a pre-scale
            # split by it would be a chain of orders (two reshards for one event). maxStep
            # and the bounds still apply.
            if predictive is not None and stabilized > desired and predictive >= stabilized:
                desired = min(stabilized, target.max_units)
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
