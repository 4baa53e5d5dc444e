"""How big the start of a scheduled event will be: measured steps, partially pooled.

The combined rule (:mod:`headroom.policies.combined`) pre-scales a target before each
calendar event for the demand of the event's first minutes, which a reactive scaler
cannot reach in time. How big that demand is, is the one number the calendar does not
give (unless the event declares ``expectation``); it is learned here from the history
the policy is given, never from a trace's name or shape:

- **Measured, per past event.** The *step* of an event is the highest 3-minute median of
  demand in ``[start - 5 min, start + reach]`` (``reach``: 20 min, or the provisioning
  delay plus 10 min when longer) over the *base* before it: the median of
  ``[start - 90 min, start - 35 min]``, samples inside an earlier event's window (from its
  ramp to an hour after its end) left out, so a base is never inflated by the previous
  event (when they cover it all, the same span an hour earlier, up to six hours back).
  An event whose base or step cannot be measured (gaps) teaches nothing.
- **Partially pooled.** Sizes are log-normal. The estimate for an event is a mean log-size
  shrunk from its own kind-and-labels group toward its kind and from its kind toward all
  events (each level weighs its ``n`` observations against ``POOL_WEIGHT`` pseudo-ones of
  the level above), and the top level toward a modest prior (``default_event_multiplier``,
  1.5x by default, weighing ``PRIOR_WEIGHT``). The spread is the pooled within-kind
  standard deviation, shrunk toward ``PRIOR_SIGMA``. A kind seen 0 times gets the pooled
  estimate; many times, its own.
- **Time of day and order in the day.** What the groups leave unexplained may follow
  when an event is (evening shows draw more than morning ones) and whether it is the
  day's first (a second show the same day may draw less): per 6-hour block of the
  event's local day, then per first-or-later on what the blocks leave, the mean
  residual of the measured log-sizes from their group's mean, shrunk by ``POOL_WEIGHT``
  pseudo-observations of zero, is added to the estimate. Where timing does not matter,
  both stay near zero.
- **When it arrives.** An event whose step is clearly over its base (``ARRIVAL_SIZE``) also
  tells when its demand came: the first time its 3-minute median passed the geometric
  middle of its step, relative to the declared start. :meth:`EventSizes.window` is the
  span a pre-scale stands over: from the earliest arrival measured to the latest (of the
  event's kind once ``MIN_ARRIVALS`` of them were measured, else of all events), widened
  for the median's lag, within the caller's prior window and shrunk toward it by
  ``PRIOR_ARRIVALS`` pseudo-observations (a few arrivals' range often misses the next).
  A calendar whose events start on time comes to pay for minutes of pre-scale, not the
  prior's twenty; one whose starts wander keeps the prior's.
- **When a start that has not come is let go.** The pre-scale buys the size at the event
  quantile ``q``; a start that has not shown by the time the arrivals say it has come
  with odds ``q`` is released then, not held to the window's end: once the share of
  arrivals still to come (the measured ones later than now less ``RELEASE_LAG``, the
  measured level's lag, shrunk toward the prior window's by the same ``PRIOR_ARRIVALS``
  pseudo-arrivals spread evenly over it) is at most ``1 - q``. Holding on longer would
  insure a late start past the confidence the size was bought at; a higher quantile
  waits longer.
- **A quantile.** :meth:`EventSizes.size` returns ``exp(mu + z_q * sigma)`` for the
  policy's event quantile (``forecast.eventQuantile``): the pre-scale buys the size it
  expects at that confidence, so its margin follows the uncertainty of that size.

A declared ``expectation.multiplier`` is used as given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from headroom.policies.calendar import DemandEvent
from headroom.policies.forecast.seasonal.localtime import utc_offsets
from headroom.policies.series import Series

Since = Callable[[float], Series]  # the samples at t >= a time (all before now)

BASE_FROM = 5400.0  # the base: the median of [start - 90 min, start - 35 min]
BASE_TO = 2100.0
STEP_BEFORE = 300.0  # the step is measured from 5 min before the start (starts run early)
STEP_REACH = 1200.0  # to 20 min after it (or the delay + 10 min, when longer)
AFTER_EVENT = 3600.0  # an earlier event's window lasts this long after its end
BASE_SEARCH = 6 * 3600.0  # how far back a base window may move past earlier events
MIN_BASE_SAMPLES = 10
POOL_WEIGHT = 3.0  # pseudo-observations of the level above, at each level
PRIOR_WEIGHT = 2.0  # pseudo-observations of the cold-start prior
PRIOR_SIGMA = 0.5  # log-size spread before anything is measured
MAX_SIZE = 50.0
ARRIVAL_SIZE = 1.3  # a step this much over its base has a measurable arrival time
MIN_ARRIVALS = 3  # arrivals measured before they replace the prior window
ARRIVAL_BEFORE = 120.0  # the window opens this long before the earliest arrival measured
ARRIVAL_AFTER = 300.0  # ... and closes this long after the latest (the median's lag)
DAY = 86400.0
BLOCK = 6 * 3600.0  # the time-of-day covariate's blocks of the event's local day
PRIOR_ARRIVALS = 6.0  # pseudo-arrivals of the prior window, weighed against those measured
RELEASE_LAG = 180.0  # the measured level (a 3-minute median) shows a step this long after it came
RELEASE_STEP = 15.0  # the release is timed to this (the control loop's tick)


@dataclass(frozen=True)
class Measured:
    """One past event's measured start: its step over its base."""

    kind: str
    labels: tuple[tuple[str, str], ...]
    base: float
    step: float
    arrival: float = math.nan  # when its demand came, from the declared start (s); NaN: unclear
    block: int = 0  # the 6-hour block of its local day it started in
    later: bool = False  # not the first event of its local day

    @property
    def log_size(self) -> float:
        return math.log(max(self.step / self.base, 1e-3))


def _median(x: np.ndarray) -> float:
    """``np.median`` of finite samples (the same value: the middle one, or the mean of
    the two middle ones), without its general machinery (a tenth of the time)."""
    s = np.sort(x)
    n = s.size
    return float(s[n // 2]) if n % 2 else (float(s[n // 2 - 1]) + float(s[n // 2])) / 2


def _rolling_median3(v: np.ndarray) -> np.ndarray:
    """The median of each three neighbouring samples, gaps left out (a window of three
    gaps is a gap)."""
    if v.size < 3:
        return v
    s = np.sort(np.vstack([v[:-2], v[1:-1], v[2:]]), axis=0)  # gaps sort last
    finite = (~np.isnan(s)).sum(axis=0)
    two = 0.5 * (s[0] + s[1])
    return np.asarray(np.where(finite == 3, s[1], np.where(finite == 2, two, s[0])))


class EventSizes:
    """The measured steps of a target's past events and the pooled estimate for the next.

    ``events`` are the target's calendar events (sorted by start); :meth:`learn` measures
    every event whose step window is past (once each) from ``since``."""

    def __init__(
        self,
        events: Sequence[DemandEvent],
        *,
        prior: float = 1.5,
        reach: float = STEP_REACH,
        ramp: Callable[[DemandEvent], float] | None = None,
    ) -> None:
        self.events = sorted(events, key=lambda e: e.start)
        self.prior = max(prior, 1.0)
        self.reach = max(reach, STEP_REACH)
        self._ramp = ramp or (lambda e: e.ramp)
        self.measured: dict[tuple[str, float], Measured] = {}
        self._tried: set[tuple[str, float]] = set()
        self._next = 0  # events before this index were tried
        self._whens: dict[tuple[str, float], tuple[int, bool]] = {}
        # size() and window() per event, until the next event is measured: the rule asks
        # them on every pass and they change only with ``measured``.
        # Each keyed by the event's key and arguments, with the event it was made for.
        self._sizes: dict[tuple[object, ...], tuple[DemandEvent, float]] = {}
        self._windows: dict[tuple[object, ...], tuple[DemandEvent, tuple[float, float]]] = {}

    @staticmethod
    def key(event: DemandEvent) -> tuple[str, float]:
        return (event.name, event.start)

    # -- measuring ------------------------------------------------------------------------

    def _busy(self, t: np.ndarray, before: DemandEvent) -> np.ndarray:
        """Samples inside an earlier event's window (its ramp to an hour after its end)."""
        mask = np.zeros(t.size, dtype=bool)
        if not t.size:
            return mask
        for e in self.events:
            if e.start >= before.start:
                break
            lo, hi = e.start - self._ramp(e), e.end + AFTER_EVENT
            if hi > t[0]:
                mask |= (t >= lo) & (t < hi)
        return mask

    def base_of(self, event: DemandEvent, since: Since) -> float:
        """The demand level before ``event`` (NaN when it cannot be measured): the median
        of ``[start - 90 min, start - 35 min]`` without earlier events' windows; when those
        cover it, the same span an hour earlier, and so on up to ``BASE_SEARCH`` back."""
        return self.base_at(event, since)[0]

    def base_at(self, event: DemandEvent, since: Since) -> tuple[float, float]:
        """:meth:`base_of` and the time it stands for (the median time of the samples it
        is the median of; NaN, NaN when it cannot be measured)."""
        seen = since(event.start - BASE_FROM - BASE_SEARCH)
        # No window reaches past start - BASE_TO: the samples after it (up to now: days
        # of them, for an event long past) are left out before any mask is made.
        end = int(np.searchsorted(seen.t, event.start - BASE_TO, side="left"))
        t, v = seen.t[:end], seen.v[:end]
        if not t.size:  # nothing measured that far back yet (an event a day ahead)
            return math.nan, math.nan
        free = np.isfinite(v) & ~self._busy(t, event)
        shift = 0.0
        while shift <= BASE_SEARCH:
            lo, hi = event.start - BASE_FROM - shift, event.start - BASE_TO - shift
            m = free & (t >= lo) & (t < hi)
            if int(m.sum()) >= MIN_BASE_SAMPLES:
                return _median(v[m]), _median(t[m])
            shift += 3600.0
        return math.nan, math.nan

    def _measure(self, event: DemandEvent, since: Since) -> Measured | None:
        base = self.base_of(event, since)
        if not math.isfinite(base) or base <= 0:
            return None
        seen = since(event.start - STEP_BEFORE)
        end = int(np.searchsorted(seen.t, event.start + self.reach, side="left"))
        t, v = seen.t[:end], seen.v[:end]  # t < start + reach (times increase)
        vals = _rolling_median3(v)
        times = t[1:-1] if v.size >= 3 else t  # each median stands for its middle sample
        ok = np.isfinite(vals)
        vals, times = vals[ok], times[ok]
        if vals.size < 3:
            return None
        step = min(float(vals.max()), base * MAX_SIZE)
        arrival = math.nan
        if step >= ARRIVAL_SIZE * base:
            first = int(np.argmax(vals >= math.sqrt(base * step)))
            arrival = float(times[first]) - event.start
        labels = tuple(sorted(event.labels.items()))
        block, later = self._when(event)
        return Measured(str(event.kind), labels, base, step, arrival, block, later)

    def _when(self, event: DemandEvent) -> tuple[int, bool]:
        """The 6-hour block of ``event``'s local day it starts in, and whether an earlier
        calendar event started the same local day (in ``event``'s zone); kept per event."""
        key = self.key(event)
        hit = self._whens.get(key)
        if hit is not None:
            return hit
        starts = np.array([e.start for e in self.events if e.start < event.start] + [event.start])
        local = starts + utc_offsets(starts, event.tz)
        days = np.floor(local / DAY)
        later = bool(np.any(days[:-1] == days[-1]))
        got = int((local[-1] - days[-1] * DAY) // BLOCK), later
        self._whens[key] = got
        return got

    def learn(self, now: float, since: Since) -> None:
        """Measure every event whose step window ended before ``now`` (once each)."""
        while self._next < len(self.events):
            e = self.events[self._next]
            if e.start + self.reach > now:
                break
            self._next += 1
            k = self.key(e)
            if k in self._tried:
                continue
            self._tried.add(k)
            got = self._measure(e, since)
            if got is not None:
                self.measured[k] = got
                self._sizes.clear()
                self._windows.clear()

    # -- estimating -----------------------------------------------------------------------

    def estimate(self, event: DemandEvent) -> tuple[float, float]:
        """(mean log-size, log-size spread) for ``event``, partially pooled."""
        obs = [m for k, m in self.measured.items() if k != self.key(event)]
        prior_mu = math.log(self.prior)
        all_logs = [m.log_size for m in obs]
        n = len(all_logs)
        mu_all = (PRIOR_WEIGHT * prior_mu + sum(all_logs)) / (PRIOR_WEIGHT + n)
        kind = str(event.kind)
        kind_logs = [m.log_size for m in obs if m.kind == kind]
        nk = len(kind_logs)
        mu_kind = (POOL_WEIGHT * mu_all + sum(kind_logs)) / (POOL_WEIGHT + nk)
        labels = tuple(sorted(event.labels.items()))
        group = [m.log_size for m in obs if m.kind == kind and m.labels == labels]
        ng = len(group)
        mu = (POOL_WEIGHT * mu_kind + sum(group)) / (POOL_WEIGHT + ng) if labels else mu_kind
        mu += self._timing(event, obs)
        # The spread: within-kind deviations, pooled over kinds, shrunk toward the prior.
        dev2 = 0.0
        dof = 0
        by_kind: dict[str, list[float]] = {}
        for m in obs:
            by_kind.setdefault(m.kind, []).append(m.log_size)
        for logs in by_kind.values():
            if len(logs) > 1:
                mean = sum(logs) / len(logs)
                dev2 += sum((x - mean) ** 2 for x in logs)
                dof += len(logs) - 1
        sigma2 = (PRIOR_WEIGHT * PRIOR_SIGMA**2 + dev2) / (PRIOR_WEIGHT + dof)
        return mu, math.sqrt(sigma2)

    def _timing(self, event: DemandEvent, obs: Sequence[Measured]) -> float:
        """What timing adds to ``event``'s log-size: the shrunk mean residual, from their
        group's (kind and labels) mean, of the events that started in its block of the
        day, plus that of the events first (or later) in their day as it is, from what the
        blocks leave (the two go together on many calendars: not counted twice); 0 where
        timing explains nothing."""
        by_group: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}
        for m in obs:
            by_group.setdefault((m.kind, m.labels), []).append(m.log_size)
        means = {k: sum(v) / len(v) for k, v in by_group.items()}
        resid = [(m, m.log_size - means[(m.kind, m.labels)]) for m in obs]
        blocks: dict[int, list[float]] = {}
        for m, r in resid:
            blocks.setdefault(m.block, []).append(r)
        effect = {b: sum(v) / (POOL_WEIGHT + len(v)) for b, v in blocks.items()}
        left = [(m.later, r - effect[m.block]) for m, r in resid]
        block, later = self._when(event)
        order = [r for lat, r in left if lat == later]
        return effect.get(block, 0.0) + sum(order) / (POOL_WEIGHT + len(order))

    def size(self, event: DemandEvent, quantile: float) -> float:
        """The multiplier of ``event``'s start over its base at ``quantile`` (>= 1)."""
        exp = event.expectation
        if exp is not None and exp.multiplier is not None:
            return max(1.0, float(exp.multiplier))
        memo = (*self.key(event), quantile)
        hit = self._sizes.get(memo)
        if hit is not None and hit[0] is event:
            return hit[1]
        mu, sigma = self.estimate(event)
        z = NormalDist().inv_cdf(min(max(quantile, 1e-4), 1 - 1e-4))
        size = min(max(1.0, math.exp(mu + z * sigma)), MAX_SIZE)
        self._sizes[memo] = (event, size)
        return size

    def window(
        self, event: DemandEvent, early: float, late: float, quantile: float = 1.0
    ) -> tuple[float, float]:
        """When, from ``event``'s declared start, its pre-scale stands: from
        ``ARRIVAL_BEFORE`` before the earliest arrival measured to ``ARRIVAL_AFTER`` after
        the latest (its kind's once ``MIN_ARRIVALS`` of them were measured, else all
        events'), always including the start, within the prior window ``[early, late]``
        (``early`` <= 0 <= ``late``); the prior window until arrivals were measured. It
        ends sooner once the start has come with odds ``quantile`` (the event quantile the
        pre-scale was sized at; 1: never sooner): see :func:`_released`."""
        memo = (*self.key(event), early, late, quantile)
        hit = self._windows.get(memo)
        if hit is not None and hit[0] is event:
            return hit[1]
        got = self._window(event, early, late, quantile)
        self._windows[memo] = (event, got)
        return got

    def _arrivals(self, event: DemandEvent) -> list[float]:
        """The arrivals measured that ``event``'s window reads: its kind's once
        ``MIN_ARRIVALS`` of them were measured, else all events' (itself left out)."""
        key = self.key(event)
        seen = [
            (m.kind, m.arrival)
            for k, m in self.measured.items()
            if k != key and math.isfinite(m.arrival)
        ]
        kind = str(event.kind)
        own = [a for k, a in seen if k == kind]
        return own if len(own) >= MIN_ARRIVALS else [a for _, a in seen]

    def _window(
        self, event: DemandEvent, early: float, late: float, quantile: float
    ) -> tuple[float, float]:
        use = self._arrivals(event)
        if len(use) < MIN_ARRIVALS:
            return early, late
        lo = min(max(min(use) - ARRIVAL_BEFORE, early), 0.0)
        hi = max(min(max(use) + ARRIVAL_AFTER, late), 0.0)
        # The range of n arrivals misses the next one with odds 2/(n+1): a few measured
        # narrow the prior window part of the way, many of them all the way.
        w = len(use) / (len(use) + PRIOR_ARRIVALS)
        end = late + w * (hi - late)
        return early + w * (lo - early), min(end, _released(use, quantile, early, late))


def _released(arrivals: list[float], quantile: float, early: float, late: float) -> float:
    """The first tick from the declared start (``RELEASE_STEP`` apart, at most ``late``)
    at which the share of starts still to come is at most ``1 - quantile``: the measured
    ``arrivals`` later than it less ``RELEASE_LAG`` plus ``PRIOR_ARRIVALS`` spread evenly
    over the prior window ``[early, late]``, over their number."""
    if late <= 0.0:
        return late
    got = np.sort(np.asarray(arrivals, dtype=np.float64))
    at = np.arange(0.0, late, RELEASE_STEP)
    later = got.size - got.searchsorted(at - RELEASE_LAG, side="right")
    prior = np.clip((late - at) / max(late - early, 1e-9), 0.0, 1.0)
    tail = (later + PRIOR_ARRIVALS * prior) / (got.size + PRIOR_ARRIVALS)
    past = (tail <= 1.0 - quantile + 1e-12).nonzero()[0]
    return float(at[past[0]]) if past.size else late
