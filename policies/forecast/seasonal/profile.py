"""The profile: the log-scale daily shape plus a shrunk weekly deviation, in local time.

:func:`fit_profile` fits it from samples (``baseline.fit_on_axis``, twice with a hold-out);
:class:`Stencil` is where times fall on its tables, shared by every profile evaluated at
the same times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from headroom.policies.forecast.seasonal.localtime import (
    DAY,
    WEEK,
    BoolArray,
    IntArray,
    utc_offsets,
)
from headroom.policies.forecast.seasonal.numerics import (
    bincount,
    bins,
    fast_mean,
    fast_var,
    fill_circular,
    fmod,
    interp_index,
    robust_bin_mean,
)
from headroom.policies.series import FloatArray


@dataclass(frozen=True)
class Stencil:
    """Where times fall on a profile's daily (and weekly) table: the part of
    :meth:`Profile.at` that depends on the times only, kept when many profiles are
    evaluated at the same times (fitting many targets with one time axis)."""

    daily: tuple[IntArray, IntArray, FloatArray, FloatArray]
    weekly: tuple[IntArray, IntArray, FloatArray, FloatArray] | None

    @classmethod
    def of(
        cls,
        t: FloatArray,
        offsets: FloatArray | None,
        tz: str | None,
        bin_seconds: float,
        nd: int,
        nw: int,
    ) -> Stencil:
        local = t + (utc_offsets(t, tz) if offsets is None else offsets)
        daily = interp_index(fmod(local, DAY) * (1.0 / bin_seconds), nd)
        weekly = None
        if nw:
            # Epoch 0 was a Thursday 00:00: shift so that bin 0 is Monday 00:00.
            pos = fmod(local + 3 * DAY, WEEK) * (1.0 / bin_seconds)
            weekly = interp_index(pos, nw)
        return cls(daily, weekly)


@dataclass(frozen=True)
class Profile:
    """Log-scale daily profile (mean 0) plus a shrunk weekly deviation, in ``tz`` local time."""

    bin_seconds: float
    daily: FloatArray
    weekly: FloatArray  # empty when the history is shorter than a week
    tz: str | None = None
    weekly_shrink: float = 0.0

    def at(self, t: FloatArray, offsets: FloatArray | None = None) -> FloatArray:
        st = Stencil.of(t, offsets, self.tz, self.bin_seconds, self.daily.size, self.weekly.size)
        return self.at_stencil(st)

    def at_stencil(self, st: Stencil) -> FloatArray:
        """:meth:`at` on times whose :class:`Stencil` was computed already."""
        a, b, g, f = st.daily
        out = np.asarray(self.daily[a] * g + self.daily[b] * f, dtype=np.float64)
        if self.weekly.size:
            if st.weekly is None:
                raise ValueError("Profile.at_stencil: stencil without the weekly table")
            a, b, g, f = st.weekly
            out = out + np.asarray(self.weekly[a] * g + self.weekly[b] * f, dtype=np.float64)
        return out


@dataclass(frozen=True)
class Grid:
    """Bin indices of the fit samples (time of day, time of week, day): the same for the
    full and the held-out profile, so they are computed once per fit."""

    tod: IntArray
    tow: IntArray
    day: IntArray
    days: int

    @classmethod
    def of(cls, local: FloatArray, bin_seconds: float) -> Grid:
        if local.size == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, 0)
        day = np.floor((local - local[0]) * (1 / DAY)).astype(np.int64)
        return cls(
            bins(local, DAY, bin_seconds),
            bins(local + 3 * DAY, WEEK, bin_seconds),
            day,
            int(day[-1]) + 1,
        )


@dataclass(frozen=True)
class Weights:
    """Sample weights and what follows from them alone on a :class:`Grid`: counts per
    bin, the 7-day moving window's bounds and weights. Targets with no gaps have the same
    weights, so :class:`FitAxis` keeps one of these for all of them."""

    w: FloatArray
    pos: BoolArray  # w > 0
    binary: bool  # every weight is 0 or 1 (a sample counts or not)
    daily: tuple[FloatArray, FloatArray]  # weight per time-of-day bin, and floored at 1
    daily_total: float
    weekly: tuple[FloatArray, FloatArray]
    weekly_total: float
    lo: IntArray  # per day: the moving week's first and past-last day
    hi: IntArray
    moving_den: FloatArray

    @classmethod
    def of(cls, w: FloatArray, g: Grid, nd: int) -> Weights:
        d_n = bincount(g.tod, w, nd)
        w_n = bincount(g.tow, w, 7 * nd)
        dn = np.bincount(g.day, weights=w, minlength=g.days)
        dc = np.zeros(dn.size + 1)
        np.cumsum(dn, out=dc[1:])
        d = np.arange(dn.size)
        # Always a whole week (shifted inwards at the ends): one of each weekday.
        lo = np.minimum(np.maximum(d - 3, 0), max(dn.size - 7, 0))
        hi = np.minimum(lo + 7, dn.size)
        return cls(
            w=w,
            pos=w > 0,
            binary=bool(np.all((w == 0.0) | (w == 1.0))),
            daily=(d_n, np.maximum(d_n, 1.0)),
            daily_total=max(float(d_n.sum()), 1e-9),
            weekly=(w_n, np.maximum(w_n, 1.0)),
            weekly_total=max(float(w_n.sum()), 1e-9),
            lo=lo,
            hi=hi,
            moving_den=np.maximum(dc[hi] - dc[lo], 1e-12),
        )


def fit_profile(
    local: FloatArray,
    y: FloatArray,
    w: FloatArray,
    span: float,
    step: float,
    bin_seconds: float,
    tz: str | None,
    grid: Grid | None = None,
    weights: Weights | None = None,
) -> tuple[Profile, FloatArray]:
    """The profile from samples with weight ``w`` > 0, and its in-sample value at every
    sample (the bin's own value: the level averages over an hour or more; interpolation is
    for predictions and raw-sample residuals). ``grid``: ``Grid.of(local, bin_seconds)``;
    ``weights``: ``Weights.of(w, grid, nd)`` (both computed here when not given)."""
    nd = int(round(DAY / bin_seconds))
    nw = 7 * nd
    daily = np.zeros(nd)
    weekly = np.zeros(0)
    shrink = 0.0
    fitted = np.zeros_like(local)
    if span >= DAY:
        g = grid if grid is not None else Grid.of(local, bin_seconds)
        wt = weights if weights is not None else Weights.of(w, g, nd)
        yz = np.where(wt.pos, y, 0.0)
        tod = g.tod
        d_mean, d_n, _ = robust_bin_mean(tod, yz, w, nd, counts=wt.daily, zeroed=wt.binary)
        daily = fill_circular(d_mean, d_n)
        daily = daily - float(daily @ d_n) / wt.daily_total
        fitted = daily[tod]
        if span >= WEEK:
            tow, day = g.tow, g.day
            # Take out a centred 7-day moving level first, so that a level shift (growth,
            # a launch) is not mistaken for a weekday pattern.
            dev = np.where(wt.pos, yz - fitted, 0.0)
            ds = np.zeros(g.days + 1)
            np.cumsum(np.bincount(day, weights=dev * w, minlength=g.days), out=ds[1:])
            moving = (ds[wt.hi] - ds[wt.lo]) / wt.moving_den
            dev = np.where(wt.pos, dev - moving[day], 0.0)
            w_mean, w_n, w_var = robust_bin_mean(
                tow, dev, w, nw, counts=wt.weekly, zeroed=wt.binary
            )
            w_mean = np.where(w_n > 0, w_mean, 0.0)
            w_mean = w_mean - float(w_mean @ w_n) / wt.weekly_total
            # Noise of each bin's mean, counting whole weeks (samples within a day correlate).
            weeks = np.maximum(w_n * step / bin_seconds, 1.0)
            se2 = fast_mean(w_var / weeks)
            spread = fast_var(w_mean)
            shrink = max(0.0, 1.0 - se2 / spread) if spread > 0 else 0.0
            weekly = w_mean * shrink
            fitted = fitted + weekly[tow]
    return Profile(bin_seconds, daily, weekly, tz, shrink), fitted
