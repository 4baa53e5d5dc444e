"""The rule that orders units: ``max(reactive, predictive, event start)``, scaled in as
fast as the HPA. Run by the driver (:mod:`headroom.policies.driver`) for every target at
every tick (the control loop's and operator's pass, the backtest every 15 s); the plan
ahead projects the same rule (:meth:`TargetRule.plan_ahead`). Per tick, ``u`` ordered:

- **reactive**: the HPA v2 recommendation on the newest sample at
  ``reactive.targetUtilization`` (:class:`~headroom.policies.reactive.HpaRule`);
- **predictive**: over ``[now, now + lead]`` (the change's delay, ``leadTime``, the tick),
  the measured level (median of the last 3 min) times the forecast's learned ratio from
  then on, at ``forecast.targetUtilization`` (100 % by default: the reactive half keeps
  the margin on what is measured);
- **event start**: over the span its kind's past starts arrived in (at most from
  ``PRE_EARLY`` before the start to ``HOLD`` after it: starts run early and late; see
  :meth:`~headroom.policies.forecast.eventsize.EventSizes.window`, which ends sooner
  once they say the start has come with odds ``forecast.eventQuantile``), the base
  measured before the event times its learned size at ``forecast.eventQuantile``
  (:class:`~headroom.policies.forecast.eventsize.EventSizes`), sized once, as a floor
  under the anchored forecast once its demand has arrived (``ARRIVED`` of it); from
  ``PRE_EARLY`` before to ``EARLY`` after the start (the end, if sooner), at
  ``forecast.eventTargetUtilization``; from there to the event's end, once its demand has
  arrived, the predictive half at the reactive half's utilisation (inside an event the
  shape's rise is the event's, not one the HPA's margin already covers);
- a slow (reshard) target orders, in one step, everything within the delay of the change
  and holds units ordered for a coming need while dropping them could not be undone;
- then the HPA's stabilisation (scale-in to the highest need of the last
  ``scaleIn.stabilization``) and rate limits, and the policy's options
  (:mod:`headroom.policies.options`) and a budget's ceiling on the predictive half.

With ``forecast.enabled: false``, too little history or no forecast, the rule is the
HPA's alone: Headroom with no forecast *is* the HPA.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial

import numpy as np

from headroom.policies.calendar import Calendar, DemandEvent
from headroom.policies.capacity import median_level
from headroom.policies.eventlook import EventLook, Prepared, Since
from headroom.policies.forecast.base import Forecast
from headroom.policies.measured import Anchor, burst_share
from headroom.policies.options import (
    FREEZE_CUT,
    ScaleInWindows,
    apply_options,
    chain_delay,
    hold_reason,
)
from headroom.policies.options import budget_cut as _budget_cut
from headroom.policies.planner.budget import budget_ceiling as _budget_ceiling
from headroom.policies.planner.values import Decision, Plan, PlannedAction, PlannerState
from headroom.policies.planner.windows import freeze_windows as _freeze_windows
from headroom.policies.planner.windows import labels_for as _labels_for
from headroom.policies.policy import PolicySpec, Provisioning, Target
from headroom.policies.projection import Positions, Schedules, best_within, distinct, project
from headroom.policies.reactive import HpaBehavior, HpaRule
from headroom.policies.series import FloatArray
from headroom.policies.text import clock as _clock
from headroom.policies.text import compare_qps, target_key, unit_noun
from headroom.policies.text import duration_text as _duration

ANCHOR_WINDOW = 180.0  # the measured level: the median of the last this-many seconds
# The reactive half's burst window (``reactive.burstWindow``) runs where the history
# outside events has at least this share of one-sample bursts past the tolerance (NASA's
# July 1995 has 37 %, the noisiest generated traces 6-7 %, the quiet ones 0-0.5 %) ...
BURSTY = 0.02
BURST_HISTORY = 7 * 86400.0  # ... measured over this much of it (once an hour) ...
BURST_NEAR = 900.0  # ... and not from this long before an event's window to its end
# The window is at most this share of the provisioning delay: a burst is worth chasing
# when what it orders comes while it lasts (at a 2-minute delay the window is 24 s).
BURST_OF_DELAY = 0.2
_EPS = 1e-9


@dataclass(frozen=True)
class RuleResult:
    decision: Decision
    required_now: int | None  # the predictive need (units) now; None without a forecast


# The delay of a change depends on the target's maxStep and provisioning and the two sizes
# alone: the decision and the plan ask for the same few pairs over and over, and targets
# configured alike (most of a policy's) ask for the same ones.
_CHAINS: dict[tuple[int, Provisioning], Callable[[int, int], float]] = {}


def _chain(target: Target) -> Callable[[int, int], float]:
    """:func:`~headroom.policies.options.chain_delay` for ``target``, memoised and shared
    by the targets with its maxStep and provisioning."""
    key = (target.max_step, target.provisioning)
    chain = _CHAINS.get(key)
    if chain is None:
        if len(_CHAINS) >= 256:  # a long-lived process that saw many policies
            _CHAINS.clear()
        chain = _CHAINS[key] = cache(partial(chain_delay, target))
    return chain


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
        self.look = EventLook(spec, target)  # the events, their sizes and what was measured
        self._prepared: Prepared | None = None
        self._freeze = _freeze_windows(spec)[0]
        self._scale_in: ScaleInWindows | None = None
        self._near: tuple[FloatArray, FloatArray] | None = None
        # (hour measured, bursty, the samples' spacing then)
        self._bursty: tuple[int, bool, float] | None = None
        self.chain = _chain(target)
        self.step = 60.0  # the forecast's step (set from the driver)
        self._schedules = Schedules()  # the plan's last schedule (project)
        self._looked: Positions | None = None
        self._looked_key: tuple[tuple[int, float], int] | None = None
        self._looked_of: Prepared | None = None

    # -- events ----------------------------------------------------------------------------

    def _applying(self, calendar: Calendar) -> None:
        if calendar is self._calendar:
            return
        self._calendar = calendar
        self._scale_in = self._near = None
        self.look.apply([e for e in calendar.events if e.applies_to(self.labels)])

    # -- the forecast's arrays -------------------------------------------------------------

    def _prepare(self, forecast: Forecast, now: float, state: PlannerState) -> Prepared:
        prepared = self._prepared
        if prepared is not None and prepared.forecast is forecast:
            return prepared
        spec, target = self.spec, self.target
        upper = np.asarray(forecast.level(spec.forecast.quantile), dtype=np.float64)
        # The rule moves a measured level by the forecast's shape: the learned one, not
        # the one rescaled by an event under way (the level already measures that).
        median = forecast.shape if forecast.shape is not None else median_level(forecast)
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
        prepared = Prepared(forecast, forecast.t, median, upper, base, ceiling)
        self._prepared = prepared
        return prepared

    # -- the predictive half ---------------------------------------------------------------

    def _predictive(
        self,
        prep: Prepared,
        now: float,
        u: int,
        ready: int,
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
        looked = self._looked if self._looked_key == key and self._looked_of is prep else None
        if looked is None:
            # As far as any order could need to look: from the fewest units to the most
            # (a need already ordered is held while dropping it could not be undone).
            lo_u = min(u, target.min_units)
            longest = self.chain(lo_u, target.max_units) + spec.lead_time
            reach = max(longest, self.chain(u, u + 1) + spec.lead_time)
            looked = self._positions(prep, now, reach + 2 * self.step, anchor, since)
            self._looked, self._looked_key, self._looked_of = looked, key, prep
        # A position is due once the change it needs would not be ready by it if ordered
        # a tick later: its own delay (a bigger change may take longer: a reshard moves
        # more data), the lead time and the interval to the next tick.
        # Units already ordered for a coming need are held the same way: a position is due
        # if, dropped to what is needed now, its need could not be ordered back in time.
        delay = self.chain
        extra = spec.lead_time + dt
        # A maxStep chain: each step waits for the one before, so a further step is due
        # a whole in-flight change earlier.
        chained = target.max_step and ready < u
        pending = delay(ready, u) if chained else 0.0
        # A scale-out ordered now is in place at the soonest a change's delay from now: a
        # need over before then (the end of a sale shorter than a reshard) is held, not
        # ordered; capacity for it would come after it.
        ready_at = now + pending + delay(u, u + 1) if u < target.max_units else math.inf
        ends = looked.t + self.step
        first = int(ends.searchsorted(now, side="right"))  # the first holding demand
        if first == ends.size:  # past the forecast's end: its last position
            best = looked.at(ends.size - 1)
        else:
            # Positions from ``first`` on (columns); the one holding demand now is always due.
            need = looked.need[first:]
            need = np.where((need > u) & (ends[first:] <= ready_at), u, need)
            base = min(u, int(need[0]))
            # Only a greater need than the first's can bind instead (of equals, the first).
            up = (need[1:] > need[0]).nonzero()[0] + 1
            k = 0
            if up.size:
                rest = need[up]
                values, inverse = distinct(rest)
                waits = np.array([delay(base, max(v, base + 1)) for v in values.tolist()])
                limit = waits[inverse] + np.where(rest > u, pending, 0.0) + extra
                due = up[looked.t[first + up] - now <= limit]
                if due.size:  # the largest need due, the first of equals
                    k = int(due[np.argmax(need[due])])
            best = (int(need[k]), *looked.at(first + k)[1:])
        # Whatever is needed within the delay of the change about to be ordered is ordered
        # with it, in one step, rather than as a chain of orders that each see a little
        # more of a ramp.
        reach = 0.0
        for _ in range(8):
            if best[0] <= u:
                break
            longer = delay(u, best[0]) + pending + extra
            if longer <= reach + 1e-9:
                break
            reach = longer
            wider = best_within(looked, now, reach, self.step, ready_at)
            if wider[0] <= best[0]:
                break
            best = wider
        return best

    def _positions(
        self,
        prep: Prepared,
        now: float,
        reach: float,
        anchor: Anchor | None,
        since: Since,
        keep: bool = True,
    ) -> Positions:
        """Per forecast position from ``now`` to ``now + reach``: its time, the units it
        needs, the anchored median and the utilisation it is sized at, its event.
        ``keep`` False (the plan ahead): nothing sized here is kept for the decisions."""
        spec, target = self.spec, self.target
        t = prep.t
        k0 = max(0, int(t.searchsorted(now, side="right")) - 1)
        k1 = max(k0 + 1, int(t.searchsorted(now + reach, side="left")))
        scale = 1.0
        shaped = math.nan  # the shape's level where the anchor was measured
        if anchor is not None:
            ia = max(0, int(t.searchsorted(anchor.at, side="right")) - 1)
            m = float(prep.median[min(ia, t.size - 1)])
            if m > 0 and math.isfinite(m):
                scale, shaped = anchor.value / m, m
        tw = t[k0:k1]
        med = prep.median[k0:k1] * scale
        util = np.full(tw.size, spec.forecast_utilization)
        which = np.full(tw.size, -1, dtype=np.int64)  # the event sizing a position, by index
        self.look.size(prep, now, now + reach, anchor, shaped, tw, med, util, which, since, keep)
        per_unit = target.capacity_per_unit / spec.headroom_factor
        demand = np.where(np.isnan(med), 0.0, med)
        wanted = np.ceil(demand / (per_unit * util) - _EPS).astype(np.int64)
        need = np.minimum(np.maximum(wanted, target.min_units), target.max_units)  # np.clip
        return Positions(tw, need, demand, util, which, self.look.events, wanted)

    # -- the plan ahead ----------------------------------------------------------------------

    def plan_ahead(
        self,
        forecast: Forecast,
        now: float,
        *,
        units: int,
        decided: int,
        anchor: Anchor | None,
        since: Since,
        state: PlannerState,
    ) -> Plan:
        """What this rule will order over the forecast's horizon
        (:func:`~headroom.policies.projection.project`), from the inputs of its decision
        now; nothing sized here is kept for the decisions."""
        prep = self._prepare(forecast, now, state)
        reach = max(float(prep.t[-1]) - now + self.step, 0.0) if prep.t.size else 0.0
        rows = self._positions(prep, now, reach, anchor, since, keep=False)
        spec, target, t = self.spec, self.target, prep.t
        windows = self._windows()
        return project(spec, target, t, rows, now=now, units=units, decided=decided,
                       delay=self.chain, blocked=windows.blocked, frozen=windows.frozen,
                       ceiling=prep.ceiling, memo=self._schedules)  # fmt: skip

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
        self.look.learn(now, since)
        demand = observed if observed is not None else math.nan
        if ready <= 0 and demand > 0:
            reactive: int | None = math.ceil(demand / hpa.target_per_pod - _EPS)
        else:
            reactive = hpa.metric_recommendation(demand, u, ready)
        predictive: int | None = None
        p_demand, p_util, p_event = math.nan, 1.0, None
        budget_cut = ""  # the budget's words when it held the predictive half down
        if forecast is not None and forecast.t.size and spec.forecast.enabled:
            prep = self._prepare(forecast, now, state)
            predictive, p_demand, p_util, p_event = self._predictive(
                prep, now, u, ready, dt, anchor, since, seen
            )
            if prep.ceiling < target.max_units:
                wanted = predictive
                predictive = min(predictive, max(prep.ceiling, reactive or 0))
                if predictive < wanted:
                    budget_cut = _budget_cut(wanted, predictive)
        bounded = hpa.bounded(u)
        up = 0.0  # the burst window the reactive half waits for (0: none)
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
            # (A window changes nothing unless the need is above the units ordered.)
            up = self._burst_window(now, since, u) if rec > u else 0.0
            stabilized = hpa.stabilize(now, u, rec, up)
            if up > 0 and predictive is not None and predictive > stabilized:
                stabilized = predictive  # what the forecast orders never waits for a window
            desired = hpa.rate_limit(now, u, stabilized)
            # A planned scale-out (the predictive half's) is ordered whole, in one step: the
            # HPA's per-period scale-up limit is for chasing a measured surge; a pre-scale
            # split by it would be a chain of orders (two reshards for one event). maxStep
            # and the bounds still apply.
            if predictive is not None and stabilized > desired and predictive >= stabilized:
                desired = min(stabilized, target.max_units)
        desired, held, cuts = apply_options(self._windows(), now, u, desired, reactive, state)
        capped = desired >= target.max_units and max(reactive or 0, predictive or 0) > desired
        if desired == u:
            reason = held or hold_reason(spec, self.noun, u, reactive, predictive)
            if up > 0 and not held and reactive is not None and reactive > u >= (predictive or 0):
                reason = (
                    f"hold: the reactive need of {reactive} {self.noun} has not lasted "
                    f"{_duration(up)} (bursty demand, no event near)"
                )
            elif budget_cut and not held:
                reason = f"hold: {u} {self.noun}: {budget_cut}"
            return RuleResult(Decision(u, None, capped, reason), predictive)
        head = f"{self.key} {u}→{desired} {self.noun} at {_clock(now, 'UTC')}"
        led = False
        if bounded is not None and desired == bounded:
            # The bounds come first, without metrics (as the HPA brings a spec inside them).
            side = f"minUnits {target.min_units}" if desired > u else f"maxUnits {target.max_units}"
            why = f"{u} {self.noun} are outside the bounds: brought to {side}"
            event = None
        elif desired > u:
            # The forecast leads the order unless a freeze window left it only the demand
            # now, or the budget held it down to the reactive half's need.
            led = predictive is not None and predictive > u and predictive >= (reactive or 0)
            if led and (FREEZE_CUT in cuts or (budget_cut and predictive == reactive)):
                led = False
            if led and predictive is not None:
                label = "forecast p50" + (f" for '{p_event.name}'" if p_event else "")
                capacity = u * target.capacity_per_unit * p_util / spec.headroom_factor
                why = compare_qps(label, p_demand, ">", capacity, p_util)
            else:
                util = spec.reactive_utilization
                capacity = u * target.capacity_per_unit * util / spec.headroom_factor
                why = compare_qps("reactive: observed", demand, ">", capacity, util)
            event = p_event.name if led and p_event is not None and predictive == desired else None
        else:
            window = _duration(spec.scale_in.stabilization)
            why = (
                f"the highest need of the last {window} is {desired} {self.noun} "
                f"(reactive {reactive if reactive is not None else 'n/a'}, "
                f"forecast {predictive if predictive is not None else 'n/a'})"
            )
            event = None
        for note in (budget_cut, *cuts) if desired > u else ():
            if note:
                why += f"; {note}"
        if capped:
            why += f"; capped at maxUnits {target.max_units}"
        ready_by = now + (target.provisioning.delay(u, desired) if desired > u else 0.0)
        action = PlannedAction(now, ready_by, self.key, u, desired, f"{head}: {why}", event, capped)
        return RuleResult(Decision(desired, action, capped, action.reason), predictive)

    def _burst_window(self, now: float, since: Since, units: int) -> float:
        """The reactive half's scale-up window now: ``reactive.burstWindow`` (at most
        ``BURST_OF_DELAY`` of the delay of one more unit) when the history outside
        events is bursty and no event is near (the calendar says where a rise is real),
        else 0: the HPA's rule. Never with the forecast off."""
        spec = self.spec
        if spec.reactive.burst_window <= 0 or not spec.forecast.enabled:
            return 0.0
        delay = self.target.provisioning.delay(units, units + 1)
        window = min(spec.reactive.burst_window, BURST_OF_DELAY * delay)
        if window <= 0:
            return 0.0
        lo, hi = self._near_events()
        if lo.size and bool(((lo <= now) & (now < hi)).any()):
            return 0.0
        hour = math.floor(now / 3600.0)
        if self._bursty is None or self._bursty[0] != hour:
            self._bursty = (hour, *self._measure_bursts(now, since))
        _, bursty, spacing = self._bursty
        # A window no longer than the samples' spacing never sees the sample after a burst:
        # it would order the burst all the same, only later.
        return window if bursty and window > spacing else 0.0

    def _measure_bursts(self, now: float, since: Since) -> tuple[bool, float]:
        """Whether the last ``BURST_HISTORY`` outside events is bursty (:data:`BURSTY`),
        and the samples' spacing there (the median)."""
        got = since(now - BURST_HISTORY)
        v = got.v.astype(np.float64, copy=True)
        t = got.t
        lo, hi = self._near_events()
        for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
            if b > now - BURST_HISTORY and a < now:
                v[t.searchsorted(a) : t.searchsorted(b)] = np.nan
        return burst_share(v, self.spec.reactive.tolerance) >= BURSTY, got.step

    def _near_events(self) -> tuple[FloatArray, FloatArray]:
        """Where events are near (from ``BURST_NEAR`` before each event's window to its
        end): no burst window there, and not part of the history it is measured on (made
        once per calendar, :meth:`_applying`)."""
        if self._near is None:
            self._near = (self.look.lo - BURST_NEAR, self.look.hi)
        return self._near

    def _windows(self) -> ScaleInWindows:
        """What the options read, built once per calendar (:meth:`_applying`)."""
        if self._scale_in is None:
            self._scale_in = ScaleInWindows(
                self.spec, self.target, self._freeze, self.look.events, self.look.lo, self.look.hi
            )
        return self._scale_in

    def record(self, now: float, units: int, ordered: int) -> None:
        """What was ordered (the HPA's rate-limit periods count it)."""
        self.hpa.record(now, units, ordered)
