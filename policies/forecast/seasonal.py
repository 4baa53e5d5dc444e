"""Robust seasonal baseline: the normal daily and weekly shape plus a level that follows traffic.

Called by :mod:`headroom.policies.forecast.model` (``HeadroomForecaster``), which masks
event windows out before calling :func:`fit_baseline` and adds event uplift on top.

The model works on ``y = log(v + c)`` (``c`` a small floor so zero traffic is allowed):

    y(t) = profile(time of week) + level + residual

* **profile** — robust (winsorised) mean of ``y`` per 15-minute time-of-day bin, plus a
  per time-of-week deviation shrunk towards zero James-Stein style by how noisy it is
  (only with at least a week of history; with less than a day there is no profile). Bins
  are taken in local time of ``tz`` (DST aware), interpolated between bin centres.
* **level** — mean residual over a trailing window whose length (1 h .. 1 week) is chosen
  per lead-time bucket by back-testing on the history itself: short windows win when
  traffic drifts, long ones when it is noisy.
* **residuals** — the back-test errors at each bucket's lead, scaled per local hour of day
  (night traffic is relatively noisier), kept as a sorted sample: empirical quantiles.

Everything is a handful of ``numpy.bincount`` / ``cumsum`` passes: fitting 28 days of
1-minute data takes about two milliseconds, one when a :class:`FitAxis` (the work that
depends on the sample times alone) is shared by many series on the same times
(``HeadroomForecaster.fit_many``). :meth:`Baseline.with_recent` refreshes the level from
newer samples without refitting the profile (the simulator's cheap path).

Why per-series numpy and not one 2-D pass over all series: on this project's VMs a page
fault costs several microseconds, and 2-D temporaries beyond glibc's mmap threshold
(128 KiB) fault on every allocation: an elementwise pass over a 64 x 4,032 batch measured
13x slower per series than over one series, whose temporaries are reused from the heap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from statistics import NormalDist
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from headroom.policies.series import FloatArray
from headroom.policies.text import zone as _zone

HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY
# Lead-time buckets: (upper bound of lead in seconds, lag in hours used to back-test them).
LEAD_BUCKETS: tuple[tuple[float, int], ...] = ((2 * HOUR, 1), (8 * HOUR, 4), (math.inf, 16))
LEVEL_WINDOWS_H: tuple[int, ...] = (1, 3, 6, 12, 24, 72, 168)
RECENCY_HALF_LIFE_H = 48.0
MAX_RESIDUAL_SAMPLES = 2048
MAX_FIT_SAMPLES = 4096  # longer histories are block-averaged for the profile and level
HOLDOUT = 7 * DAY  # newest history the residuals are measured on, out of sample ...
HOLDOUT_SHARE = 0.25  # ... at most this share of it ...
HOLDOUT_MIN_SPAN = 4 * DAY  # ... and only with this much history (else in-sample)
FALLBACK_SD = 0.3  # log-scale spread when the history is too short to measure residuals
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _offset(zone: ZoneInfo, epoch: float) -> float:
    delta = datetime.fromtimestamp(epoch, tz=UTC).astimezone(zone).utcoffset()
    return delta.total_seconds() if delta is not None else 0.0


def utc_offsets(t: FloatArray, tz: str | None) -> FloatArray:
    """UTC offset (seconds) of zone ``tz`` at each epoch time; DST transitions found exactly.

    Checks the offset once a day over the span and bisects days where it changes, so the
    cost is a few dozen zone lookups whatever the length of ``t``.
    """
    if not tz or tz in ("UTC", "Etc/UTC", "Z") or t.size == 0:
        return np.zeros_like(t)
    zone = _zone(tz)
    days = np.arange(math.floor(t[0] / DAY), math.floor(t[-1] / DAY) + 2) * DAY
    offs = [_offset(zone, float(d)) for d in days]
    if all(o == offs[0] for o in offs):
        return np.full_like(t, offs[0])
    bounds: list[float] = []
    values = [offs[0]]
    for i in range(len(days) - 1):
        if offs[i + 1] == offs[i]:
            continue
        lo, hi = float(days[i]), float(days[i + 1])
        while hi - lo > 1.0:
            mid = math.floor((lo + hi) / 2)
            if _offset(zone, mid) == offs[i]:
                lo = mid
            else:
                hi = mid
        bounds.append(hi)
        values.append(offs[i + 1])
    idx = np.searchsorted(np.asarray(bounds), t, side="right")
    return np.asarray(np.asarray(values)[idx], dtype=np.float64)


def _sorted_quantile(values: FloatArray, p: float) -> float:
    """Linear-interpolated quantile of an already sorted array (``np.quantile``'s default)."""
    pos = p * (values.size - 1)
    i = min(int(pos), values.size - 1)
    j = min(i + 1, values.size - 1)
    return float(values[i] + (values[j] - values[i]) * (pos - i))


def _fmod(x: FloatArray, period: float) -> FloatArray:
    """``x % period`` for floats; numpy's float ``%`` is an order of magnitude slower."""
    return np.asarray(x - np.floor(x * (1.0 / period)) * period, dtype=np.float64)


def _bins(x: FloatArray, period: float, width: float) -> IntArray:
    """Index of the ``width``-second bin of ``x`` within its period."""
    return np.asarray(np.floor(_fmod(x, period) * (1.0 / width)), dtype=np.int64)


def _bincount(idx: IntArray, weights: FloatArray, n: int) -> FloatArray:
    """Weighted ``numpy.bincount`` typed as floats."""
    return np.asarray(np.bincount(idx, weights=weights, minlength=n), dtype=np.float64)


def _robust_bin_mean(
    idx: IntArray,
    y: FloatArray,
    w: FloatArray,
    nbins: int,
    k: float = 2.5,
    counts: tuple[FloatArray, FloatArray] | None = None,
    zeroed: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Winsorised mean per bin (values beyond ``k`` sd clipped), count and variance.

    ``y`` must be finite where ``w`` is 0 (the caller zeroes gaps). ``counts``: the
    weight per bin and its floor at 1, when known already. ``zeroed``: ``w`` is 0 or 1
    and ``y`` is 0 where ``w`` is, so ``y * w`` is ``y`` (two products skipped).
    """
    if counts is None:
        n = _bincount(idx, w, nbins)
        safe = np.maximum(n, 1.0)
    else:
        n, safe = counts
    yw, yyw = (y, y * y) if zeroed else (y * w, y * y * w)
    mean = _bincount(idx, yw, nbins) / safe
    var = np.maximum(_bincount(idx, yyw, nbins) / safe - mean**2, 0.0)
    sd = np.sqrt(var)
    # minimum/maximum: np.clip's wrapper costs more than the work on a few thousand values.
    yc = np.minimum(np.maximum(y, (mean - k * sd)[idx]), (mean + k * sd)[idx])
    mean = _bincount(idx, yc * w, nbins) / safe
    return mean, n, var


def _fill_circular(values: FloatArray, count: FloatArray) -> FloatArray:
    """Bins without data take the circular linear interpolation of their neighbours."""
    have = count > 0
    if bool(have.all()) or not bool(have.any()):
        return values if bool(have.any()) else np.zeros_like(values)
    x = np.arange(values.size, dtype=np.float64)
    return np.asarray(
        np.interp(x, x[have], values[have], period=float(values.size)), dtype=np.float64
    )


def _mean(a: FloatArray) -> float:
    """``float(np.mean(a))`` (the same sum and division) without its Python wrapper."""
    return float(np.add.reduce(a) / a.size)


def _var(a: FloatArray) -> float:
    """``float(np.var(a))``, the same steps as numpy's, without its Python wrapper."""
    x = a - np.add.reduce(a, keepdims=True) / a.size
    np.multiply(x, x, out=x)
    return float(np.add.reduce(x) / a.size)


def _interp_index(pos: FloatArray, n: int) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Neighbouring bins ``a``, ``b`` of ``pos`` on a circular table of ``n`` (centres at
    i + 0.5) and their weights ``1 - f``, ``f``."""
    x = pos - 0.5
    i0 = np.floor(x)
    f = x - i0
    a = i0.astype(np.int64)
    a -= (a // n) * n
    b = a + 1
    b[b == n] = 0
    return a, b, 1 - f, f


def _interp_bins(pos: FloatArray, table: FloatArray) -> FloatArray:
    """Circular linear interpolation of ``table`` (bin centres at i + 0.5) at ``pos``."""
    a, b, g, f = _interp_index(pos, table.size)
    return np.asarray(table[a] * g + table[b] * f, dtype=np.float64)


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
        daily = _interp_index(_fmod(local, DAY) * (1.0 / bin_seconds), nd)
        weekly = None
        if nw:
            # Epoch 0 was a Thursday 00:00: shift so that bin 0 is Monday 00:00.
            pos = _fmod(local + 3 * DAY, WEEK) * (1.0 / bin_seconds)
            weekly = _interp_index(pos, nw)
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
class _Trail:
    """What :func:`_trailing_levels` derives from the hourly counts and windows alone."""

    jp1: IntArray  # j + 1
    lo: IntArray  # per window and hour: first bin of the window (cumulative index)
    den: FloatArray  # samples in the window (1 where none)
    flat: IntArray  # flat index of the last hour with samples, per window and hour
    known: BoolArray  # some hour up to here had samples

    @classmethod
    def of(cls, rn: FloatArray, windows: list[int]) -> _Trail:
        cn = np.concatenate(([0.0], np.cumsum(rn)))
        j = np.arange(rn.size)
        lo = np.maximum(0, j[None, :] + 1 - np.asarray(windows)[:, None])
        cnt = cn[j + 1][None, :] - cn[lo]
        have = cnt > 0
        last = np.maximum.accumulate(np.where(have, j[None, :], -1), axis=1)
        rows = np.arange(len(windows))[:, None] * rn.size
        return cls(j + 1, lo, np.where(have, cnt, 1.0), np.maximum(last, 0) + rows, last >= 0)

    def levels(self, rs: FloatArray, fallback: float) -> FloatArray:
        cs = np.concatenate(([0.0], np.cumsum(rs)))
        level = (cs[self.jp1][None, :] - cs[self.lo]) / self.den
        filled = level.ravel()[self.flat]
        return np.asarray(np.where(self.known, filled, fallback), dtype=np.float64)


def _trailing_levels(
    rs: FloatArray, rn: FloatArray, windows: list[int], fallback: float
) -> FloatArray:
    """Mean of the last ``w`` hourly bins (inclusive), one row per window ``w``.

    Empty stretches keep the last known level, so event windows and gaps do not pull it.
    """
    return _Trail.of(rn, windows).levels(rs, fallback)


@dataclass(frozen=True)
class TimeIndex:
    """Lead bucket, profile stencil and local hour of some times (see ``Baseline.index``)."""

    bucket: IntArray
    stencil: Stencil
    hour: IntArray


@dataclass(frozen=True)
class Baseline:
    """A fitted baseline: predicts ``log(v + floor)`` and its residual quantiles."""

    profile: Profile
    floor: float  # c in y = log(v + c)
    as_of: float  # end of the history the level was measured on
    levels: tuple[float, ...]  # per lead bucket
    windows_h: tuple[int, ...]  # trailing level window (hours) per lead bucket
    residuals: tuple[FloatArray, ...]  # sorted standardised residuals per bucket (may be empty)
    exp_means: tuple[float, ...]  # E[exp(residual)] per bucket
    hour_scale: FloatArray  # residual scale per local hour of day (mean ~1)
    # In-sample hourly level (bucket 0 window), for measuring event uplift against.
    hist_level: FloatArray
    hist_anchor: float
    # Recent residual samples (time, value) within the longest window: the cheap update path.
    recent_t: FloatArray
    recent_r: FloatArray

    def bucket(self, t: FloatArray) -> IntArray:
        lead = t - self.as_of
        edges = np.asarray([b for b, _ in LEAD_BUCKETS[:-1]])
        return np.asarray(np.searchsorted(edges, lead, side="right"), dtype=np.int64)

    def log_mean(
        self,
        t: FloatArray,
        offsets: FloatArray | None = None,
        at: TimeIndex | None = None,
    ) -> FloatArray:
        """Profile plus level at ``t`` (log scale, residual median not included).
        ``at``: :meth:`index` of ``t``, when the caller keeps it for several baselines."""
        if at is None:
            lv = np.asarray(self.levels)[self.bucket(t)]
            return np.asarray(self.profile.at(t, offsets) + lv, dtype=np.float64)
        lv = np.asarray(self.levels)[at.bucket]
        return np.asarray(self.profile.at_stencil(at.stencil) + lv, dtype=np.float64)

    def index(self, t: FloatArray, offsets: FloatArray | None = None) -> TimeIndex:
        """What :meth:`log_mean`, :meth:`residual_quantiles` and :meth:`mean_factor` derive
        from the times alone; equal for every baseline with the same ``as_of``, zone, bin
        width and weekly table (forecasting many targets at once shares it)."""
        if offsets is None:
            offsets = utc_offsets(t, self.profile.tz)
        prof = self.profile
        return TimeIndex(
            bucket=self.bucket(t),
            stencil=Stencil.of(
                t, offsets, prof.tz, prof.bin_seconds, prof.daily.size, prof.weekly.size
            ),
            hour=_bins(t + offsets, DAY, HOUR),
        )

    def index_key(self) -> tuple[float, str | None, float, int, int]:
        """Baselines with equal keys have equal :meth:`index` for the same times."""
        prof = self.profile
        return (self.as_of, prof.tz, prof.bin_seconds, prof.daily.size, prof.weekly.size)

    def level_before(self, when: float) -> float:
        """The in-sample level just before ``when`` (what a forecaster knew then)."""
        j = int(math.floor((when - self.hist_anchor) / HOUR)) - 1
        if self.hist_level.size == 0:
            return self.levels[0]
        return float(self.hist_level[min(max(j, 0), self.hist_level.size - 1)])

    def residual_quantiles(
        self,
        t: FloatArray,
        levels: tuple[float, ...],
        offsets: FloatArray | None = None,
        at: TimeIndex | None = None,
    ) -> list[FloatArray]:
        """Quantiles ``levels`` of the log residual at each ``t`` (per lead bucket, scaled
        by hour of day)."""
        if at is None:
            b = self.bucket(t)
            local = t + (utc_offsets(t, self.profile.tz) if offsets is None else offsets)
            scale = self.hour_scale[_bins(local, DAY, HOUR)]
        else:
            b, scale = at.bucket, self.hour_scale[at.hour]
        out = []
        for p in levels:
            per_bucket = np.asarray(
                [
                    _sorted_quantile(res, p)
                    if res.size
                    else FALLBACK_SD * (1 + i) * NormalDist().inv_cdf(p)
                    for i, res in enumerate(self.residuals)
                ]
            )
            out.append(np.asarray(per_bucket[b] * scale, dtype=np.float64))
        return out

    def residual_quantile(
        self, t: FloatArray, p: float, offsets: FloatArray | None = None
    ) -> FloatArray:
        """Quantile ``p`` of the log residual at each ``t``."""
        return self.residual_quantiles(t, (p,), offsets)[0]

    def mean_factor(self, t: FloatArray, at: TimeIndex | None = None) -> FloatArray:
        """E[exp(residual)] per lead bucket: turns the log forecast into a mean."""
        b = self.bucket(t) if at is None else at.bucket
        return np.asarray(np.asarray(self.exp_means)[b], dtype=np.float64)

    def with_recent(self, t: FloatArray, v: FloatArray, excluded: BoolArray) -> Baseline:
        """The same profile and residuals, with levels re-measured on newer samples.

        ``t``/``v`` must come after ``as_of``; ``excluded`` (True = inside an event window)
        keeps events from pulling the level. Costs a few array passes over the window.
        """
        if t.size == 0:
            return self
        y = np.log(v + self.floor)
        ok = np.isfinite(y) & ~excluded
        r = (y - self.profile.at(t))[ok]
        as_of = float(t[-1] + (t[-1] - t[-2] if t.size > 1 else 0.0))
        rt = np.concatenate((self.recent_t, t[ok]))
        rr = np.concatenate((self.recent_r, r))
        keep = rt >= as_of - max(LEVEL_WINDOWS_H) * HOUR
        rt, rr = rt[keep], rr[keep]
        levels = []
        for w, old in zip(self.windows_h, self.levels, strict=True):
            sel = rt >= as_of - w * HOUR
            levels.append(float(rr[sel].mean()) if bool(sel.any()) else old)
        return replace(self, as_of=as_of, levels=tuple(levels), recent_t=rt, recent_r=rr)


def _block_log_means(
    vv: FloatArray, floor: float, bounds: tuple[float, float] | None = None
) -> FloatArray | None:
    """Means of ``log(vv + floor)`` over the rows of ``vv`` (blocks of finite samples), as
    logs of products of up to 8 factors: one log per 8 samples instead of one per sample
    (a tenth of the work on 1-minute data; equal within float rounding). ``None`` when a
    product could leave the float range (factors beyond 1e±37; take the logs one by one).
    ``bounds``: a lower and an upper bound of ``vv``, when known.
    """
    k = vv.shape[1]
    if vv.size == 0:
        return None
    lo, hi = bounds if bounds is not None else (float(vv.min()), float(vv.max()))
    if not (1e-37 < lo + floor and hi + floor < 1e37):
        return None
    total: FloatArray | None = None
    for a in range(0, k, 8):
        p = vv[:, a] + floor
        for i in range(a + 1, min(a + 8, k)):
            p *= vv[:, i] + floor
        logs = np.log(p)
        total = logs if total is None else total + logs
    if total is None:
        return None
    return np.asarray(total * (1.0 / k), dtype=np.float64)


def _block_means(vv: FloatArray, k: int) -> FloatArray:
    """Means of the rows of ``vv`` (blocks of ``k`` samples) over their finite values.

    Avoids full-size temporaries where it can: on large arrays each one costs page faults.
    """
    fin = np.isfinite(vv)
    if bool(fin.all()):
        vb = vv @ np.full(k, 1.0 / k)  # a BLAS product: much faster than mean(axis=1)
    else:
        cnt = fin.sum(axis=1)
        vb = np.where(fin, vv, 0.0).sum(axis=1) / np.maximum(cnt, 1)
        vb[cnt == 0] = np.nan
    return np.asarray(vb, dtype=np.float64)


@dataclass(frozen=True)
class _Grid:
    """Bin indices of the fit samples (time of day, time of week, day): the same for the
    full and the held-out profile, so they are computed once per fit."""

    tod: IntArray
    tow: IntArray
    day: IntArray
    days: int

    @classmethod
    def of(cls, local: FloatArray, bin_seconds: float) -> _Grid:
        if local.size == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, 0)
        day = np.floor((local - local[0]) * (1 / DAY)).astype(np.int64)
        return cls(
            _bins(local, DAY, bin_seconds),
            _bins(local + 3 * DAY, WEEK, bin_seconds),
            day,
            int(day[-1]) + 1,
        )


@dataclass(frozen=True)
class _Weights:
    """Sample weights and what follows from them alone on a :class:`_Grid`: counts per
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
    def of(cls, w: FloatArray, g: _Grid, nd: int) -> _Weights:
        d_n = _bincount(g.tod, w, nd)
        w_n = _bincount(g.tow, w, 7 * nd)
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


def _fit_profile(
    local: FloatArray,
    y: FloatArray,
    w: FloatArray,
    span: float,
    step: float,
    bin_seconds: float,
    tz: str | None,
    grid: _Grid | None = None,
    weights: _Weights | None = None,
) -> tuple[Profile, FloatArray]:
    """The profile from samples with weight ``w`` > 0, and its in-sample value at every
    sample (the bin's own value: the level averages over an hour or more; interpolation is
    for predictions and raw-sample residuals). ``grid``: ``_Grid.of(local, bin_seconds)``;
    ``weights``: ``_Weights.of(w, grid, nd)`` (both computed here when not given)."""
    nd = int(round(DAY / bin_seconds))
    nw = 7 * nd
    daily = np.zeros(nd)
    weekly = np.zeros(0)
    shrink = 0.0
    fitted = np.zeros_like(local)
    if span >= DAY:
        g = grid if grid is not None else _Grid.of(local, bin_seconds)
        wt = weights if weights is not None else _Weights.of(w, g, nd)
        yz = np.where(wt.pos, y, 0.0)
        tod = g.tod
        d_mean, d_n, _ = _robust_bin_mean(tod, yz, w, nd, counts=wt.daily, zeroed=wt.binary)
        daily = _fill_circular(d_mean, d_n)
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
            w_mean, w_n, w_var = _robust_bin_mean(
                tow, dev, w, nw, counts=wt.weekly, zeroed=wt.binary
            )
            w_mean = np.where(w_n > 0, w_mean, 0.0)
            w_mean = w_mean - float(w_mean @ w_n) / wt.weekly_total
            # Noise of each bin's mean, counting whole weeks (samples within a day correlate).
            weeks = np.maximum(w_n * step / bin_seconds, 1.0)
            se2 = _mean(w_var / weeks)
            spread = _var(w_mean)
            shrink = max(0.0, 1.0 - se2 / spread) if spread > 0 else 0.0
            weekly = w_mean * shrink
            fitted = fitted + weekly[tow]
    return Profile(bin_seconds, daily, weekly, tz, shrink), fitted


@dataclass(frozen=True)
class _Residuals:
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
class _SpanAxis:
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
        self.grid = _Grid.of(self.local, bin_seconds)
        self.nd = int(round(DAY / bin_seconds))
        self._spans: dict[tuple[float, bool], _SpanAxis] = {}
        self._all_finite: dict[tuple[float, bool], _Residuals] = {}
        # For values with no gaps (the same weights for every target): weights, hourly
        # counts and trailing-window plans, per span.
        self._weights: _Weights | None = None
        self._train: dict[tuple[float, bool], _Weights] = {}
        self._rn: dict[tuple[float, bool], FloatArray] = {}
        self._trails: dict[tuple[float, bool, tuple[int, ...]], _Trail] = {}
        self._lags: dict[tuple[float, bool], tuple[tuple[IntArray, FloatArray] | None, ...]] = {}

    def full_weights(self) -> _Weights:
        """Weights of values with no gaps: 1 outside event windows."""
        if self._weights is None:
            w = (~self.excluded).astype(np.float64)
            self._weights = _Weights.of(w, self.grid, self.nd)
        return self._weights

    def train_weights(self, sa: _SpanAxis, span: float, valid: bool) -> _Weights:
        """:meth:`full_weights` without the held-out days."""
        key = (span, valid)
        hit = self._train.get(key)
        if hit is None and sa.train is not None:
            hit = self._train[key] = _Weights.of(
                self.full_weights().w * sa.train, self.grid, self.nd
            )
        if hit is None:
            raise ValueError("FitAxis.train_weights: no hold-out for this span")
        return hit

    def hourly_counts(self, sa: _SpanAxis, span: float, valid: bool) -> FloatArray:
        key = (span, valid)
        hit = self._rn.get(key)
        if hit is None:
            hit = self._rn[key] = _bincount(sa.j, self.full_weights().w * sa.inside, sa.hours)
        return hit

    def lag_columns(
        self, rn: FloatArray, sa: _SpanAxis, span: float, valid: bool
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

    def trail(self, rn: FloatArray, windows: list[int], span: float, valid: bool) -> _Trail:
        key = (span, valid, tuple(windows))
        hit = self._trails.get(key)
        if hit is None:
            hit = self._trails[key] = _Trail.of(rn, windows)
        return hit

    def span_axis(self, span: float, valid: bool) -> _SpanAxis:
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
        sa = _SpanAxis(
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
        self, sa: _SpanAxis, raw_finite: BoolArray | None, span: float, valid: bool
    ) -> _Residuals:
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
        hod = _bins(rt2 + utc_offsets(rt2, self.tz), DAY, HOUR)
        buckets: list[tuple[BoolArray, IntArray, IntArray] | None] = []
        for _, lag in LEAD_BUCKETS:
            src = rj - lag
            use = src >= 0
            buckets.append((use, src[use], hod[use]) if int(use.sum()) >= 30 else None)
        res = _Residuals(sel, rt, at_all, keep, at_keep, late, at_late, tuple(buckets))
        if every:
            self._all_finite[key] = res
        return res


def fit_baseline(
    t: FloatArray,
    v: FloatArray,
    excluded: BoolArray,
    *,
    as_of: float,
    tz: str | None = None,
    bin_seconds: float = 900.0,
    step: float | None = None,
    axis: FitAxis | None = None,
) -> Baseline:
    """Fit the baseline on samples ``(t, v)`` (NaN = gap) ending before ``as_of``.

    ``excluded`` is True for samples inside event windows: they are left out of the
    profile, the level and the residuals. Long histories are averaged into blocks of
    ``k`` samples (at most :data:`MAX_FIT_SAMPLES` blocks) for the profile and level; the
    residuals are measured on every ``k``-th raw sample, so quantiles keep the noise of
    the original resolution. ``axis``: a :class:`FitAxis` built from these ``t``,
    ``excluded`` and keywords (to share it between many series on the same times).
    """
    if axis is None:
        axis = FitAxis(t, excluded, as_of=as_of, tz=tz, bin_seconds=bin_seconds, step=step)
    return fit_on_axis(axis, v)


def fit_on_axis(axis: FitAxis, v: FloatArray) -> Baseline:
    """:func:`fit_baseline` for values ``v`` on the times ``axis`` was built from."""
    as_of, tz, bin_seconds, k = axis.as_of, axis.tz, axis.bin_seconds, axis.k
    # min and max are NaN or infinite when any value is: one pass each tells whether all
    # values are finite, and bounds them for the block products.
    lo_v, hi_v = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    every = math.isfinite(lo_v) and math.isfinite(hi_v)
    if every:
        mean_v = float(v.mean()) if v.size else 0.0
    else:
        fin_raw = np.isfinite(v)
        mean_v = float(v[fin_raw].mean()) if bool(fin_raw.any()) else 0.0
    floor = max(0.01 * mean_v, 1e-6)
    if axis.pick is not None:
        raw_v = v[axis.pick]
        # Blocks average log values, not values: the profile and level must be on the
        # scale the raw-sample residuals and ``with_recent`` use (a mean of logs). The log
        # of a block mean is higher by about half the noise variance: on noisy traffic
        # that bias would count twice once the level is refreshed from raw samples.
        blocks = v[axis.off :].reshape(-1, k)
        fast = None
        if every:
            fast = _block_log_means(blocks, floor, (lo_v, hi_v))
        y = fast if fast is not None else _block_means(np.log(blocks + floor), k)
    else:
        raw_v = v
        y = np.log(v + floor)
    t, excluded, local, step = axis.t, axis.excluded, axis.local, axis.step
    finite = np.isfinite(y)
    okv = finite & ~excluded
    first = int(okv.argmax()) if okv.size else 0
    valid = bool(okv.size) and bool(okv[first])
    span = float(as_of - t[first]) if valid else 0.0
    sa = axis.span_axis(span, valid)
    # No gaps: the weights (and all their counts) are the axis's, shared between targets.
    shared = bool(finite.all()) and span >= DAY
    wts = axis.full_weights() if shared else None
    w = wts.w if wts is not None else okv.astype(np.float64)

    profile, fitted = _fit_profile(local, y, w, span, step, bin_seconds, tz, axis.grid, wts)
    r = np.where(w > 0, y - fitted, 0.0)

    hours, j, inside = sa.hours, sa.j, sa.inside
    rs = _bincount(j, r * w * inside, hours)
    rn = axis.hourly_counts(sa, span, valid) if shared else _bincount(j, w * inside, hours)
    overall = float(rs.sum() / rn.sum()) if rn.sum() > 0 else float(math.log(floor))
    hourly = np.where(rn > 0, rs / np.maximum(rn, 1e-12), np.nan)

    candidates = sa.candidates
    if shared:
        table = axis.trail(rn, candidates, span, valid).levels(rs, overall)
    else:
        table = _trailing_levels(rs, rn, candidates, overall)
    trails = {wh: table[i] for i, wh in enumerate(candidates)}
    recency = sa.recency
    windows: list[int] = []
    if shared:
        # Hours with samples are the same for every target: index them once (integer
        # takes of the same columns, so the same sums as the boolean selection below).
        lag_cols = axis.lag_columns(rn, sa, span, valid)
        for (_, lag), cols in zip(LEAD_BUCKETS, lag_cols, strict=True):
            best = candidates[-1]
            if cols is not None:
                target = hourly[lag:].take(cols[0])
                errs = np.abs(target[None, :] - table[:, :-lag].take(cols[0], axis=1)) @ cols[1]
                best = candidates[int(np.argmin(errs))]
            windows.append(best)
    else:
        for _, lag in LEAD_BUCKETS:
            best = candidates[-1]
            if hours > lag:
                target = hourly[lag:]
                ok = np.isfinite(target)
                if int(ok.sum()) >= 3:
                    errs = np.abs(target[ok][None, :] - table[:, :-lag][:, ok]) @ recency[lag:][ok]
                    best = candidates[int(np.argmin(errs))]
            windows.append(best)
    levels = tuple(float(trails[wh][-1]) for wh in windows)
    hist_level = trails[windows[0]]

    # Back-test residuals per bucket at its lag on raw samples, standardised by hour of day.
    res = axis.residuals(sa, None if every else np.isfinite(raw_v), span, valid)
    raw_sel = raw_v[res.sel]
    recent_t = res.rt[res.keep]
    if res.at_all is not None:
        rr = np.log(raw_sel + floor) - profile.at_stencil(res.at_all)
        recent_r = rr[res.keep]
    else:  # the residuals come from the hold-out below: only the recent ones are needed
        recent_r = np.log(raw_sel[res.keep] + floor) - profile.at_stencil(res.at_keep)
    # Held out: with enough history the residuals are measured on the newest days against
    # a profile and levels fitted without them. In-sample residuals are too narrow (the
    # profile has absorbed part of the noise it is measured on) and old: the spread that
    # matters is the one of the latest days.
    if sa.holdout and sa.train is not None and res.late is not None and res.at_late is not None:
        train_wts = axis.train_weights(sa, span, valid) if shared else None
        train = train_wts.w if train_wts is not None else w * sa.train
        profile_tr, fitted_tr = _fit_profile(
            local, y, train, span - sa.hold, step, bin_seconds, tz, axis.grid, train_wts
        )
        r_tr = np.where(w > 0, y - fitted_tr, 0.0)
        rs_tr = _bincount(j, r_tr * w * inside, hours)
        if shared:
            table_tr = axis.trail(rn, windows, span, valid).levels(rs_tr, overall)
        else:
            table_tr = _trailing_levels(rs_tr, rn, windows, overall)
        trails = dict(zip(windows, table_tr, strict=True))
        rr = np.log(raw_sel[res.late] + floor) - profile_tr.at_stencil(res.at_late)
    residuals: list[FloatArray] = []
    hour_scale = np.ones(24)
    for b, bucket in enumerate(res.buckets):
        if bucket is None:
            residuals.append(np.empty(0))
            continue
        use, src, hod = bucket
        e = rr[use] - trails[windows[b]][src]
        if b == 0:
            centred = e - _mean(e)
            s2_all = _mean(centred**2) or 1e-12
            nn = np.bincount(hod, minlength=24)
            ss = np.bincount(hod, weights=centred**2, minlength=24)
            prior = 60.0  # pseudo-samples pulling each hour towards the overall spread
            hour_scale = np.sqrt((ss + prior * s2_all) / (nn + prior) / s2_all)
        z = e / hour_scale[hod]
        stride = max(1, z.size // MAX_RESIDUAL_SAMPLES)
        residuals.append(np.sort(z[::stride]))

    return Baseline(
        profile=profile,
        floor=floor,
        as_of=as_of,
        levels=levels,
        windows_h=tuple(windows),
        residuals=tuple(residuals),
        exp_means=tuple(
            _mean(np.exp(r)) if r.size else math.exp(0.5 * (FALLBACK_SD * (1 + i)) ** 2)
            for i, r in enumerate(residuals)
        ),
        hour_scale=np.asarray(hour_scale, dtype=np.float64),
        hist_level=hist_level,
        hist_anchor=sa.anchor,
        recent_t=recent_t,
        recent_r=recent_r,
    )
