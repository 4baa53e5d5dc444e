"""The seasonal baseline model: :class:`Baseline` and its fit (:func:`fit_baseline`).

Called by ``HeadroomForecaster`` (``headroom.policies.forecast.model``); the package's
docstring describes the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np

from headroom.policies.forecast.seasonal.axis import FitAxis
from headroom.policies.forecast.seasonal.level import (
    LEAD_BUCKETS,
    LEVEL_WINDOWS_H,
    trailing_levels,
)
from headroom.policies.forecast.seasonal.localtime import (
    DAY,
    HOUR,
    BoolArray,
    IntArray,
    utc_offsets,
)
from headroom.policies.forecast.seasonal.numerics import (
    bincount,
    bins,
    block_log_means,
    block_means,
    fast_mean,
    sorted_quantile,
)
from headroom.policies.forecast.seasonal.profile import Profile, Stencil, fit_profile
from headroom.policies.series import FloatArray

MAX_RESIDUAL_SAMPLES = 2048
FALLBACK_SD = 0.3  # log-scale spread when the history is too short to measure residuals


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
            hour=bins(t + offsets, DAY, HOUR),
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
            scale = self.hour_scale[bins(local, DAY, HOUR)]
        else:
            b, scale = at.bucket, self.hour_scale[at.hour]
        out = []
        for p in levels:
            per_bucket = np.asarray(
                [
                    sorted_quantile(res, p)
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
            fast = block_log_means(blocks, floor, (lo_v, hi_v))
        y = fast if fast is not None else block_means(np.log(blocks + floor), k)
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

    profile, fitted = fit_profile(local, y, w, span, step, bin_seconds, tz, axis.grid, wts)
    r = np.where(w > 0, y - fitted, 0.0)

    hours, j, inside = sa.hours, sa.j, sa.inside
    rs = bincount(j, r * w * inside, hours)
    rn = axis.hourly_counts(sa, span, valid) if shared else bincount(j, w * inside, hours)
    overall = float(rs.sum() / rn.sum()) if rn.sum() > 0 else float(math.log(floor))
    hourly = np.where(rn > 0, rs / np.maximum(rn, 1e-12), np.nan)

    candidates = sa.candidates
    if shared:
        table = axis.trail(rn, candidates, span, valid).levels(rs, overall)
    else:
        table = trailing_levels(rs, rn, candidates, overall)
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
        profile_tr, fitted_tr = fit_profile(
            local, y, train, span - sa.hold, step, bin_seconds, tz, axis.grid, train_wts
        )
        r_tr = np.where(w > 0, y - fitted_tr, 0.0)
        rs_tr = bincount(j, r_tr * w * inside, hours)
        if shared:
            table_tr = axis.trail(rn, windows, span, valid).levels(rs_tr, overall)
        else:
            table_tr = trailing_levels(rs_tr, rn, windows, overall)
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
            centred = e - fast_mean(e)
            s2_all = fast_mean(centred**2) or 1e-12
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
            fast_mean(np.exp(r)) if r.size else math.exp(0.5 * (FALLBACK_SD * (1 + i)) ** 2)
            for i, r in enumerate(residuals)
        ),
        hour_scale=np.asarray(hour_scale, dtype=np.float64),
        hist_level=hist_level,
        hist_anchor=sa.anchor,
        recent_t=recent_t,
        recent_r=recent_r,
    )
