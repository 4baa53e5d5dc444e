"""The events' part of the rule's look-ahead (:class:`~headroom.policies.combined.TargetRule`):
how the positions an event reaches are sized.

Per event near the look-ahead: the pre-scale (the base measured before it times its
learned size at the event quantile, sized once) over the span its kind's starts arrived
in; once its demand has arrived, the anchored forecast above it. The event utilisation
holds over its start's window. What it measures and decides once (the base, the
pre-scale, the arrival) is kept per event for the rule's later ticks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from headroom.policies.calendar import DemandEvent
from headroom.policies.capacity import IntArray
from headroom.policies.forecast.base import Forecast
from headroom.policies.forecast.eventsize import BASE_TO, EventSizes
from headroom.policies.forecast.uplift import effective_ramp, event_window
from headroom.policies.measured import Anchor, baseline_ratio, baseline_ratios
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray, Series

Since = Callable[[float], Series]  # the samples at t >= a time (all before now)

PRE_EARLY = 300.0  # the pre-scale stands from this long before an event's start (starts run early)
HOLD = 900.0  # ... until this long after it (starts run late)
EARLY = 1200.0  # the event utilisation holds from PRE_EARLY before the start to this after it
# (or to the event's end, if sooner)
ARRIVED = 0.7  # a measured level at this share of the pre-scale: the event's demand is here


@dataclass(frozen=True)
class Prepared:
    """A forecast's arrays, once per forecast."""

    forecast: Forecast
    t: FloatArray
    median: FloatArray
    upper: FloatArray
    baseline: FloatArray | None
    ceiling: int  # a budget's ceiling on look-ahead units (max_units without one)


def ratio(prep: Prepared, at: float, start: float | None = None) -> float:
    return baseline_ratio(prep.t, prep.baseline, at, start)


def _from(t: FloatArray, lo: float) -> slice:
    """The positions of the sorted times ``t`` at or after ``lo`` (``t >= lo``), as a slice."""
    return slice(int(t.searchsorted(lo, side="left")), t.size)


def _between(t: FloatArray, lo: float, hi: float) -> slice:
    """The positions of the sorted times ``t`` in ``[lo, hi)`` (``(t >= lo) & (t < hi)``)."""
    first = int(t.searchsorted(lo, side="left"))
    return slice(first, max(first, int(t.searchsorted(hi, side="left"))))


class EventLook:
    """The events a target's rule reads, their windows and learned sizes, and what was
    measured of each (kept across ticks and calendars re-read unchanged)."""

    def __init__(self, spec: PolicySpec, target: Target) -> None:
        self.spec = spec
        self.target = target
        self.events: list[DemandEvent] = []
        self.lo = np.empty(0)
        self.hi = np.empty(0)
        self.sizes: EventSizes | None = None
        self._sizes_key: tuple[tuple[str, float, float], ...] | None = None
        self._bases: dict[tuple[str, float], tuple[float, float]] = {}
        self._arrived: set[tuple[str, float]] = set()
        self._pres: dict[tuple[str, float], float] = {}

    def apply(self, events: list[DemandEvent]) -> None:
        """Read ``events`` (the calendar's, for this target)."""
        ramp = self.spec.forecast.default_ramp
        self.events = events
        wins = [event_window(e, ramp) for e in events]
        self.lo = np.array([w[0] for w in wins], dtype=np.float64)
        self.hi = np.array([w[1] for w in wins], dtype=np.float64)
        # The learned sizes survive a calendar that is re-read unchanged.
        key = tuple((e.name, e.start, e.end) for e in events)
        if key != self._sizes_key:
            self._sizes_key = key
            reach = self.target.provisioning.delay(1, 2) + 600.0
            self.sizes = EventSizes(
                events,
                prior=self.spec.forecast.default_event_multiplier,
                reach=reach,
                ramp=lambda e: effective_ramp(e, ramp),
            )

    def learn(self, now: float, since: Since) -> None:
        """Measure each event whose step window has ended by ``now`` (its size, its arrival)."""
        if self.sizes is not None:
            self.sizes.learn(now, since)

    def size(
        self,
        prep: Prepared,
        now: float,
        horizon: float,
        anchor: Anchor | None,
        shaped: float,
        tw: FloatArray,
        med: FloatArray,
        util: FloatArray,
        which: IntArray,
        since: Since,
        keep: bool = True,
    ) -> None:
        """Size the positions ``tw`` (up to ``horizon``) that events reach, in place:
        ``med`` the anchored median (``shaped``: the shape's level where ``anchor`` was
        measured), ``util`` the utilisation, ``which`` the event sizing each position.
        ``keep`` False (the plan ahead): nothing sized here is kept for the decisions.

        From ``PRE_EARLY`` before its start until ``HOLD`` after it (the window its
        kind's starts arrived in, :meth:`EventSizes.window`), the pre-scale stands: the
        base before it times its learned size at the event quantile
        (:class:`~headroom.policies.forecast.eventsize.EventSizes`). Until the event's
        demand has arrived (the measured level at ``ARRIVED`` of the pre-scale), its
        positions carry no forecast lift besides (the level measured now, moved by the
        baseline's daily shape); once it has, the anchored forecast (the measured level
        times the learned shape's ratio) stands above the pre-scale. From ``PRE_EARLY``
        before the start to ``EARLY`` after it (or its end, if sooner) the forecast is
        sized at the event utilisation: the margin is bought where an event begins and
        nowhere else. From there to the event's end,
        once its demand has arrived, the forecast is sized at the reactive half's
        utilisation: the HPA's margin on the demand the shape says is coming."""
        sizes = self.sizes
        if not self.events or sizes is None:
            return
        level = anchor.value if anchor is not None else math.nan
        near = ((self.lo <= horizon) & (self.hi > now)).nonzero()[0].tolist()
        spec = self.spec
        for index in near:
            ev = self.events[index]
            key = EventSizes.key(ev)
            early, late = sizes.window(ev, -PRE_EARLY, HOLD, spec.event_size_quantile)
            lo, hi = ev.start + early, ev.start + late
            pre = self._pres.get(key, math.nan)
            if not math.isfinite(pre):
                # Sized once, from the base measured before the event: a pre-scale that moved
                # with every new sample would be a string of one-unit orders (reshards).
                base, at = self._base_at_start(ev, now, since, keep)
                size = sizes.size(ev, spec.event_size_quantile)
                if math.isfinite(base):
                    # The base moved by the daily shape from when it was measured to the start.
                    pre = base * ratio(prep, ev.start, at) * size
                    if keep:
                        self._pres[key] = pre
                elif math.isfinite(level):  # no base to measure: the level now, not kept
                    pre = level * ratio(prep, ev.start) * size
            arrived = key in self._arrived
            if not arrived and math.isfinite(level) and math.isfinite(pre) and now >= lo:
                if level >= ARRIVED * pre:
                    if keep:
                        self._arrived.add(key)
                    arrived = True
            win_lo = ev.start - effective_ramp(ev, spec.forecast.default_ramp)
            if not arrived and math.isfinite(level):
                later = _from(tw, win_lo)
                if later.start < tw.size:
                    moved = level * baseline_ratios(prep.t, prep.baseline, tw[later], now)
                    med[later] = np.minimum(med[later], moved)
            margin_end = min(ev.start + EARLY, ev.end)
            if arrived and math.isfinite(level) and now < margin_end:
                # Arrived within the start's window, the measured level already holds the
                # step, which the learned shape (an average over starts that came early and
                # late) may still be climbing to: moved by the shape's ratio from now on, the
                # step would count twice. From here the shape is read from its level once the
                # step is in (its highest in the start's window), not from its level now.
                window = _between(prep.t, lo, margin_end)
                if window.start < window.stop and math.isfinite(shaped):
                    stepped = float(prep.median[window].max())
                    if stepped > shaped:
                        med[_from(tw, lo)] *= shaped / stepped
            if now < hi and math.isfinite(pre):
                # The pre-scale stands over its window, arrived or not: a level that reached
                # ARRIVED of it may be the crowd gathering before the step (a ramp), which
                # the anchored forecast, its step read as in, would not see coming.
                span = _between(tw, lo, ev.end)
                med[span] = np.maximum(med[span], pre)
                which[span] = index
            # The margin is for the step at the start; a short event's (a 2-minute sale's)
            # margin ends with it: its demand, read late by a lagging rate, is not a new step.
            start = _between(tw, lo, margin_end)
            util[start] = np.minimum(util[start], spec.event_utilization)
            which[start] = index
            if arrived:
                # In the event's body its demand moves along the learned shape faster than
                # a measure can follow: the measured level moved by the shape over the lead
                # time is sized as the reactive half sizes what it measures (outside events
                # the forecast adds only a rise above that margin; here, the rise is the
                # event's).
                body = _between(tw, margin_end, ev.end)
                util[body] = np.minimum(util[body], spec.reactive_utilization)

    def _base_at_start(
        self, ev: DemandEvent, now: float, since: Since, keep: bool = True
    ) -> tuple[float, float]:
        """The level ``ev`` starts from, measured before it, and the time it stands for
        (kept once its window is past: it is then final); NaN, NaN when it cannot be
        measured."""
        key = EventSizes.key(ev)
        hit = self._bases.get(key)
        if hit is not None:
            return hit
        assert self.sizes is not None
        base = self.sizes.base_at(ev, since)
        if keep and now >= ev.start - BASE_TO:
            self._bases[key] = base
        return base
