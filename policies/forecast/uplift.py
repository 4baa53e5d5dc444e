"""Event uplift: how much (and in what shape) demand rises over baseline around an event.

Called by :mod:`headroom.policies.forecast.model`. Each event is seen on a relative-time
grid of 24 bins: 6 over the pre-event ramp, 12 over the event itself, 6 over the tail
after its end. That grid captures people gathering before a livestream, the step at
the start, growth to a peak and the decay afterwards, whatever the event's length.

* :func:`learn_event` measures one past event: the mean log ratio observed / baseline
  per bin (the baseline being what was known just before the event's window).
* :class:`UpliftModel` turns the learned events into the uplift of a future event: the
  past events of the same kind sharing the most labels with it (all labels equal = the
  same similarity key; none shared = the kind only); mean shape across them and, as
  uncertainty, their spread, shrunk towards a prior when there are few: the spread of
  the log peaks of *every* past event of the kind (:func:`kind_spread`; a host seen once
  may stray from it as far as the kind's events differ), relative to the group's own
  peak, at least ``PRIOR_REL_SD``. A declared
  expectation (multiplier, or peak QPS over the baseline) rescales the learned shape to
  its peak (``declared_weight`` = 1 overrides, less blends). With no similar past event,
  a conservative template at the policy's ``default_event_multiplier`` applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from headroom.policies.calendar import DemandEvent
from headroom.policies.series import FloatArray

RAMP_BINS, BODY_BINS, TAIL_BINS = 6, 12, 6
NBINS = RAMP_BINS + BODY_BINS + TAIL_BINS
HOUR = 3600.0
PRIOR_REL_SD = 0.15  # relative spread assumed when only one or two similar events exist
PRIOR_ABS_SD = 0.03
DECLARED_REL_SD = 0.1  # an organiser's figure is trusted, not blindly
DEFAULT_REL_SD = 0.1  # the default multiplier is conservative already
MIN_UPLIFT = math.log(1.02)  # below this an event does not drive a forecast step
KIND_SPREAD_MIN_EVENTS = 3  # past events of a kind needed to measure how much they differ

# The template for events with no similar past event: ramp rising to the full uplift at
# the start (conservative: people gather early), full during the event, linear decay.
TEMPLATE = np.concatenate(
    (
        np.arange(1, RAMP_BINS + 1) / RAMP_BINS,
        np.ones(BODY_BINS),
        np.arange(TAIL_BINS, 0, -1) / (TAIL_BINS + 1),
    )
)


def effective_ramp(event: DemandEvent, default_ramp: float) -> float:
    """The event's own ramp, or the policy's default when it declares none."""
    return event.ramp if event.ramp > 0 else default_ramp


def tail_seconds(event: DemandEvent, ramp: float) -> float:
    """How long after ``end`` the event still lifts demand (at least an hour, at most 6)."""
    return min(max(HOUR, ramp, 0.5 * (event.end - event.start)), 6 * HOUR)


def event_window(event: DemandEvent, default_ramp: float) -> tuple[float, float]:
    """``[start - ramp, end + tail)``: where this event may move demand."""
    ramp = effective_ramp(event, default_ramp)
    return event.start - ramp, event.end + tail_seconds(event, ramp)


def event_position(event: DemandEvent, t: FloatArray, default_ramp: float) -> FloatArray:
    """Position of each ``t`` on the event's 24-bin grid (NaN outside the window)."""
    ramp = effective_ramp(event, default_ramp)
    tail = tail_seconds(event, ramp)
    dur = max(event.end - event.start, 1.0)
    x = np.full(t.shape, np.nan)
    if ramp > 0:
        r = (t >= event.start - ramp) & (t < event.start)
        x[r] = (t[r] - (event.start - ramp)) / ramp * RAMP_BINS
    b = (t >= event.start) & (t < event.end)
    x[b] = RAMP_BINS + (t[b] - event.start) / dur * BODY_BINS
    a = (t >= event.end) & (t < event.end + tail)
    x[a] = RAMP_BINS + BODY_BINS + (t[a] - event.end) / tail * TAIL_BINS
    return x


_XP = np.concatenate(([0.0], np.arange(NBINS) + 0.5, [float(NBINS)]))  # bin centres, ends


def shape_at(shape: FloatArray, x: FloatArray, envelope: bool = True) -> FloatArray:
    """Value of a 24-bin shape at grid positions ``x`` (0 outside).

    Linear between bin centres, but (``envelope``) never below the bin's own value, so a
    step at the event's start is fully there at the start (provisioning errs early, not
    late). Without ``envelope``: plain interpolation, to compare with what was observed.
    """
    return shapes_at((shape,), x, envelope)[0]


def shapes_at(
    shapes: tuple[FloatArray, ...], x: FloatArray, envelope: bool = True
) -> list[FloatArray]:
    """:func:`shape_at` of several shapes at the same positions (found once)."""
    inside = np.isfinite(x)
    xi = x[inside]
    bins = np.floor(xi).astype(np.int64)
    np.minimum(np.maximum(bins, 0, out=bins), NBINS - 1, out=bins)
    result = []
    for shape in shapes:
        out = np.zeros(x.shape)
        lin = np.interp(xi, _XP, np.concatenate(([0.0], shape, [0.0])))
        out[inside] = np.maximum(lin, shape[bins]) if envelope and shape.max() > 0 else lin
        result.append(out)
    return result


@dataclass(frozen=True)
class LearnedEvent:
    """One past event's log uplift per grid bin (NaN where the history had no data)."""

    event: DemandEvent
    shape: FloatArray

    @property
    def peak(self) -> float:
        """The learned peak multiplier."""
        return math.exp(float(np.nanmax(self.shape)))


def learn_event(
    event: DemandEvent,
    t: FloatArray,
    log_ratio: FloatArray,
    default_ramp: float,
    position: FloatArray | None = None,
) -> LearnedEvent | None:
    """Average ``log_ratio`` (observed over baseline, log) per bin of ``event``'s grid.

    ``None`` when the history covers less than a third of the event itself.
    ``position``: ``event_position(event, t, default_ramp)`` when the caller has it.
    """
    x = event_position(event, t, default_ramp) if position is None else position
    return learn_on_bins(event, log_ratio, EventBins.of(x, log_ratio))


@dataclass(frozen=True)
class EventBins:
    """Samples that count (``ok``), their grid bin and the count per bin: what
    :func:`learn_event` derives from the positions (and where the ratio is finite)."""

    ok: npt.NDArray[np.bool_]
    idx: npt.NDArray[np.int64]
    n: npt.NDArray[np.int64]

    @classmethod
    def of(cls, x: FloatArray, log_ratio: FloatArray | None = None) -> EventBins:
        """Bins of positions ``x`` (finite ratios only, when ``log_ratio`` is given)."""
        ok = np.isfinite(x) if log_ratio is None else np.isfinite(x) & np.isfinite(log_ratio)
        idx = np.floor(x[ok]).astype(np.int64).clip(0, NBINS - 1)
        return cls(ok, idx, np.bincount(idx, minlength=NBINS))


def learn_on_bins(
    event: DemandEvent, log_ratio: FloatArray, bins: EventBins
) -> LearnedEvent | None:
    """:func:`learn_event` with its bins known (``EventBins.of(x, log_ratio)``; positions
    alone do when ``log_ratio`` is finite wherever they are)."""
    ok, idx, n = bins.ok, bins.idx, bins.n
    if not bool(ok.any()):
        return None
    s = np.bincount(idx, weights=log_ratio[ok], minlength=NBINS)
    shape = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    if int((n[RAMP_BINS : RAMP_BINS + BODY_BINS] > 0).sum()) < BODY_BINS // 3:
        return None
    return LearnedEvent(event, shape)


@dataclass(frozen=True)
class Uplift:
    """The log uplift (``mu``) and its standard deviation (``sd``) per grid bin."""

    mu: FloatArray
    sd: FloatArray
    source: str  # "learned", "declared", "declared+learned" or "default"
    similar: int  # how many past events it was learned from

    @property
    def peak(self) -> float:
        return math.exp(float(self.mu.max()))


def _log_peak(le: LearnedEvent) -> float:
    body = le.shape[RAMP_BINS : RAMP_BINS + BODY_BINS]
    seen = body[np.isfinite(body)]
    return float(seen.max()) if seen.size else 0.0


def kind_spread(events: list[LearnedEvent]) -> float:
    """How much the sizes of past events of one kind differ: the standard deviation of
    their log peaks (0 with fewer than three events).

    A host (or label set) with one or two past events says little about how far its next
    event may stray from them; the kind's own spread, learned from every past event of it,
    is the prior for that (``_aggregate``)."""
    if len(events) < KIND_SPREAD_MIN_EVENTS:
        return 0.0
    peaks = np.asarray([_log_peak(le) for le in events])
    return float(np.std(peaks, ddof=1))


def _aggregate(
    group: list[LearnedEvent], prior_rel_sd: float = PRIOR_REL_SD
) -> tuple[FloatArray, FloatArray]:
    stack = np.vstack([g.shape for g in group])
    have = np.isfinite(stack)
    n = have.sum(axis=0).astype(np.float64)
    sums = np.where(have, stack, 0.0).sum(axis=0)
    mu = np.where(n > 0, sums / np.maximum(n, 1), np.nan)
    # Bins no past event covered: body bins take the body's peak, ramp/tail bins nothing.
    body = slice(RAMP_BINS, RAMP_BINS + BODY_BINS)
    seen = mu[body][np.isfinite(mu[body])]
    body_peak = float(seen.max()) if seen.size else 0.0  # np.nanmax, without its wrapper
    fill = np.zeros(NBINS)
    fill[body] = body_peak
    mu = np.where(np.isfinite(mu), mu, fill)
    dev2 = np.where(have, (stack - mu) ** 2, 0.0).sum(axis=0)
    prior = (prior_rel_sd * np.abs(mu) + PRIOR_ABS_SD) ** 2
    var = (dev2 + prior) / np.maximum(n, 1.0)  # n - 1 degrees of freedom plus one prior
    sd = np.sqrt(var * (1.0 + 1.0 / np.maximum(n, 1.0)))
    return mu, sd


@dataclass(frozen=True)
class UpliftModel:
    """Past events learned from history; gives the uplift of any (future) event."""

    learned: tuple[LearnedEvent, ...]
    default_multiplier: float = 3.0
    default_ramp: float = 1800.0
    declared_weight: float = 1.0

    @cached_property
    def _by_kind(self) -> dict[str, list[LearnedEvent]]:
        out: dict[str, list[LearnedEvent]] = {}
        for le in self.learned:
            out.setdefault(le.event.kind, []).append(le)
        return out

    @cached_property
    def _kind_spreads(self) -> dict[str, float]:
        """:func:`kind_spread` of each kind, once per model (``for_event`` runs per forecast)."""
        return {kind: kind_spread(group) for kind, group in self._by_kind.items()}

    def similar(self, event: DemandEvent) -> list[LearnedEvent]:
        """Past events of the same kind sharing the most labels with ``event``."""
        same_kind = self._by_kind.get(event.kind, [])
        if not same_kind:
            return []

        def score(le: LearnedEvent) -> int:
            return sum(1 for k, v in event.labels.items() if le.event.labels.get(k) == v)

        best = max(score(le) for le in same_kind)
        return [le for le in same_kind if score(le) == best]

    def for_event(self, event: DemandEvent, baseline_qps: float | None = None) -> Uplift:
        """The uplift of ``event``; ``baseline_qps`` (baseline over the event) turns a
        declared ``peak_qps`` into a multiplier."""
        group = self.similar(event)
        declared: float | None = None
        exp = event.expectation
        if exp is not None and exp.multiplier is not None:
            declared = exp.multiplier
        elif exp is not None and exp.peak_qps is not None and baseline_qps is not None:
            declared = exp.peak_qps / max(baseline_qps, 1e-9)
        if declared is not None:
            declared = max(declared, 1.0)
        if group:
            # The kind's spread of log peaks, relative to this group's own peak: a host
            # whose shows were small may well have a big one next, and the other way round.
            own = float(np.mean([_log_peak(le) for le in group]))
            rel = self._kind_spreads[event.kind] / own if own > MIN_UPLIFT else 0.0
            mu, sd = _aggregate(group, max(PRIOR_REL_SD, rel))
            peak = float(mu.max())
            if declared is None:
                return Uplift(mu, sd, "learned", len(group))
            target = math.log(declared)
            if self.declared_weight < 1 and peak > 0:
                target = self.declared_weight * target + (1 - self.declared_weight) * peak
            if peak > MIN_UPLIFT:
                scaled = np.maximum(mu, 0.0) * (target / peak)
                return Uplift(scaled, DECLARED_REL_SD * scaled, "declared+learned", len(group))
        if declared is not None:
            mu = TEMPLATE * math.log(declared)
            return Uplift(mu, DECLARED_REL_SD * mu, "declared", len(group))
        mu = TEMPLATE * math.log(self.default_multiplier)
        return Uplift(mu, DEFAULT_REL_SD * mu, "default", 0)

    def log_uplift(
        self,
        event: DemandEvent,
        t: FloatArray,
        baseline_qps: float | None = None,
        envelope: bool = True,
        position: FloatArray | None = None,
    ) -> tuple[FloatArray, FloatArray, Uplift]:
        """Log uplift mean and sd of ``event`` at times ``t`` (0 outside its window).
        ``position``: ``event_position(event, t, default_ramp)`` when the caller has it."""
        up = self.for_event(event, baseline_qps)
        x = event_position(event, t, self.default_ramp) if position is None else position
        mu, sd = shapes_at((up.mu, up.sd), x, envelope)
        return mu, sd, up
