"""The fit's time axis: everything a fit derives from the sample *times*, cached.

:class:`FitAxis` is built once per fit, or once for many series sampled at the same times
(the batch path, ``HeadroomForecaster.fit_many``): blocks, local time and bins, hourly
bins, the hold-out, profile stencils of the raw samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from headroom.policies.forecast.seasonal.level import (
    LEAD_BUCKETS,
    LEVEL_WINDOWS_H,
    RECENCY_HALF_LIFE_H,
    Trail,
)
from headroom.policies.forecast.seasonal.localtime import (
    DAY,
    HOUR,
    WEEK,
    BoolArray,
    IntArray,
    utc_offsets,
)
from headroom.policies.forecast.seasonal.numerics import bincount, bins
from headroom.policies.forecast.seasonal.profile import Grid, Stencil, Weights
from headroom.policies.series import FloatArray

MAX_FIT_SAMPLES = 4096  # longer histories are block-averaged for the profile and level
HOLDOUT = 7 * DAY  # newest history the residuals are measured on, out of sample ...
HOLDOUT_SHARE = 0.25  # ... at most this share of it ...
HOLDOUT_MIN_SPAN = 4 * DAY  # ... and only with this much history (else in-sample)


@dataclass(frozen=True)
class Residuals:
    """The raw samples residuals are measured on (``sel`` over the raw picks), and what
    follows from their times: profile stencils, recency and hold-out masks, and per lead
    bucket the samples that have a level ``lag`` hours earlier."""

    sel: BoolArray
    rt: FloatArray
    at_all: Stencil | None  # all of rt: without a hold-out, the residuals are measured there
    keep: BoolArray  # within the longest level window: the cheap update path's samples
    at_keep: Stencil
    late: BoolArray | None
    at_late: Stencil | None
    buckets: tuple[tuple[BoolArray, IntArray, IntArray] | None, ...]  # use, src[use], hod[use]


@dataclass(frozen=True)
class SpanAxis:
    """What depends on the times and on the span of valid history (hourly bins, hold-out)."""

    hours: int
    anchor: float
    j: IntArray
    inside: BoolArray
    candidates: list[int]
    recency: FloatArray
    hold: float
    holdout: bool
    train: BoolArray | None
    raw_base: BoolArray  # raw picks outside events and after the anchor (finite or not)


class FitAxis:
    """Everything :func:`fit_baseline` derives from the sample *times* (and the event mask),
    not from the values: blocks, local time and bins, hourly bins, profile stencils of the
    raw samples. Targets whose histories share one time axis (the same scrape times, the
    same calendar) share one ``FitAxis``: ``HeadroomForecaster.fit_many`` builds it once
    for all of them. Results are the same as without it (the same code computes them)."""

    def __init__(
        self,
        t: FloatArray,
        excluded: BoolArray,
        *,
        as_of: float,
        tz: str | None = None,
        bin_seconds: float = 900.0,
        step: float | None = None,
    ) -> None:
        self.as_of = as_of
        self.tz = tz
        self.bin_seconds = bin_seconds
        self.size = int(t.size)
        k = max(1, math.ceil(t.size / MAX_FIT_SAMPLES))
        self.k = k
        self.pick: IntArray | None = None
        self.off = 0
        if k > 1:
            self.pick = np.arange(t.size - 1, -1, -k)[::-1]  # every k-th, the newest included
            self.raw_t, self.raw_x = t[self.pick], excluded[self.pick]
            m = t.size // k
            self.off = off = t.size - m * k
            # The newest samples in full blocks of k.
            self.t = 0.5 * (t[off::k] + t[off + k - 1 :: k])
            self.excluded = np.asarray(excluded[off:].reshape(m, k).any(axis=1), dtype=np.bool_)
        else:
            self.raw_t, self.raw_x = t, excluded
            self.t, self.excluded = t, excluded
        if step is None:
            tb = self.t
            self.step = float(np.median(np.diff(tb[-2049:]))) if tb.size > 1 else 60.0
        else:
            self.step = step * k
        self.offsets = utc_offsets(self.t, tz)
        self.local = self.t + self.offsets
        self.grid = Grid.of(self.local, bin_seconds)
        self.nd = int(round(DAY / bin_seconds))
        self._spans: dict[tuple[float, bool], SpanAxis] = {}
        self._all_finite: dict[tuple[float, bool], Residuals] = {}
        # For values with no gaps (the same weights for every target): weights, hourly
        # counts and trailing-window plans, per span.
        self._weights: Weights | None = None
        self._train: dict[tuple[float, bool], Weights] = {}
        self._rn: dict[tuple[float, bool], FloatArray] = {}
        self._trails: dict[tuple[float, bool, tuple[int, ...]], Trail] = {}
        self._lags: dict[tuple[float, bool], tuple[tuple[IntArray, FloatArray] | None, ...]] = {}

    def full_weights(self) -> Weights:
        """Weights of values with no gaps: 1 outside event windows."""
        if self._weights is None:
            w = (~self.excluded).astype(np.float64)
            self._weights = Weights.of(w, self.grid, self.nd)
        return self._weights

    def train_weights(self, sa: SpanAxis, span: float, valid: bool) -> Weights:
        """:meth:`full_weights` without the held-out days."""
        key = (span, valid)
        hit = self._train.get(key)
        if hit is None and sa.train is not None:
            hit = self._train[key] = Weights.of(
                self.full_weights().w * sa.train, self.grid, self.nd
            )
        if hit is None:
            raise ValueError("FitAxis.train_weights: no hold-out for this span")
        return hit

    def hourly_counts(self, sa: SpanAxis, span: float, valid: bool) -> FloatArray:
        key = (span, valid)
        hit = self._rn.get(key)
        if hit is None:
            hit = self._rn[key] = bincount(sa.j, self.full_weights().w * sa.inside, sa.hours)
        return hit

    def lag_columns(
        self, rn: FloatArray, sa: SpanAxis, span: float, valid: bool
    ) -> tuple[tuple[IntArray, FloatArray] | None, ...]:
        """Per lead bucket: the hours (from ``lag`` on) with samples, and their recency
        weights; None where too few hours to choose a window by."""
        key = (span, valid)
        hit = self._lags.get(key)
        if hit is None:
            out: list[tuple[IntArray, FloatArray] | None] = []
            for _, lag in LEAD_BUCKETS:
                ok = rn[lag:] > 0
                use = sa.hours > lag and int(ok.sum()) >= 3
                out.append((np.flatnonzero(ok), sa.recency[lag:][ok]) if use else None)
            hit = self._lags[key] = tuple(out)
        return hit

    def trail(self, rn: FloatArray, windows: list[int], span: float, valid: bool) -> Trail:
        key = (span, valid, tuple(windows))
        hit = self._trails.get(key)
        if hit is None:
            hit = self._trails[key] = Trail.of(rn, windows)
        return hit

    def span_axis(self, span: float, valid: bool) -> SpanAxis:
        key = (span, valid)
        hit = self._spans.get(key)
        if hit is not None:
            return hit
        t, as_of = self.t, self.as_of
        # Hourly bins anchored so the last bin ends at as_of.
        hours = max(1, math.ceil(span / HOUR)) if valid else 1
        anchor = as_of - hours * HOUR
        j = np.minimum(
            np.maximum(np.floor((t - anchor) * (1 / HOUR)).astype(np.int64), 0), hours - 1
        )
        hold = min(HOLDOUT, span * HOLDOUT_SHARE)
        holdout = span >= HOLDOUT_MIN_SPAN
        sa = SpanAxis(
            hours=hours,
            anchor=anchor,
            j=j,
            inside=t >= anchor,
            candidates=[wh for wh in LEVEL_WINDOWS_H if wh <= max(1, hours)] or [1],
            # Recent hours count more when choosing: a regime change two days ago matters
            # more than four quiet weeks before it.
            recency=np.exp2((np.arange(hours) - (hours - 1)) / RECENCY_HALF_LIFE_H),
            hold=hold,
            holdout=holdout,
            train=(t < as_of - hold) if holdout else None,
            raw_base=~self.raw_x & (self.raw_t >= anchor),
        )
        self._spans[key] = sa
        return sa

    def residuals(
        self, sa: SpanAxis, raw_finite: BoolArray | None, span: float, valid: bool
    ) -> Residuals:
        """The residual samples for raw values finite at ``raw_finite`` (None: all are;
        cached when all are)."""
        every = raw_finite is None or bool(raw_finite.all())
        key = (span, valid)
        if every and key in self._all_finite:
            return self._all_finite[key]
        sel = sa.raw_base if every or raw_finite is None else raw_finite & sa.raw_base
        rt = self.raw_t[sel]
        nw = 7 * self.nd if span >= WEEK else 0
        keep = rt >= self.as_of - max(LEVEL_WINDOWS_H) * HOUR
        at_keep = Stencil.of(rt[keep], None, self.tz, self.bin_seconds, self.nd, nw)
        late = at_late = at_all = None
        if sa.holdout:
            late = rt >= self.as_of - sa.hold
            rt2 = rt[late]
            at_late = Stencil.of(rt2, None, self.tz, self.bin_seconds, self.nd, nw)
        else:
            rt2 = rt
            at_all = Stencil.of(rt, None, self.tz, self.bin_seconds, self.nd, nw)
        rj = np.minimum(
            np.maximum(np.floor((rt2 - sa.anchor) * (1 / HOUR)).astype(np.int64), 0),
            sa.hours - 1,
        )
        hod = bins(rt2 + utc_offsets(rt2, self.tz), DAY, HOUR)
        buckets: list[tuple[BoolArray, IntArray, IntArray] | None] = []
        for _, lag in LEAD_BUCKETS:
            src = rj - lag
            use = src >= 0
            buckets.append((use, src[use], hod[use]) if int(use.sum()) >= 30 else None)
        res = Residuals(sel, rt, at_all, keep, at_keep, late, at_late, tuple(buckets))
        if every:
            self._all_finite[key] = res
        return res
