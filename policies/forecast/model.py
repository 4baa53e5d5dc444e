"""``HeadroomForecaster``: seasonal baseline x learned event uplift, with quantiles.

The forecaster the planner, the simulator's ``headroom`` strategy, ``headroom forecast``
and the control loop use (through :class:`~headroom.policies.forecast.base.Forecaster`).

``fit(history, calendar)`` learns only from the samples it is given (callers pass
``history.before(now)``; the last ``Forecasting.history`` seconds are used) and from the
calendar's events that already ended; ``predict`` uses nothing else. Steps:

1. finer-than-``grid`` samples are averaged onto the grid (irregular steps allowed);
2. event windows (ramp, event, tail) are masked and :func:`fit_baseline` learns the
   daily/weekly profile, the level and the residual distribution;
3. each past event's uplift over that baseline is measured (:func:`learn_on_bins`);
4. ``predict`` adds, per step, the largest uplift of any event there (that event is the
   step's *driver*); for an event already under way, its scale is re-estimated from the
   samples seen since its window opened (:meth:`HeadroomForecaster._nowcast`, a Bayesian
   update of the learned uplift, up or down, that narrows its uncertainty). It combines
   residual quantiles with the uplift's uncertainty:
   ``q_p = base + uplift + med + sign(p - .5) * hypot(resid_p - med, z_p * sd_uplift)``.

Cheap path for simulators: refit once per simulated day (or hour), then call :meth:`update`
with the samples that arrived since before each ``predict``. It re-measures the level on the
trailing windows chosen at the last fit (tens of microseconds); the profile, the window
choice, the residuals and the learned events stay as fitted until the next ``fit``.

Batch path for a control-loop pass over many targets: :meth:`HeadroomForecaster.fit_many`
and :meth:`HeadroomForecaster.predict_many` give exactly what one ``fit`` / ``predict`` per
target gives, but histories sampled at the same times (one Prometheus range query per
pass) with the same calendar share everything that depends on the times alone
(``forecast/batch.py``: the :class:`~headroom.policies.forecast.seasonal.axis.FitAxis`,
time indexes, event positions): about 1 ms per target for 28 days of 1-minute history
instead of 2 (bench/engine_speed.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Self

import numpy as np

from headroom.policies.calendar import Calendar, DemandEvent
from headroom.policies.forecast.base import Forecast
from headroom.policies.forecast.batch import SharedAxes, SharedPredict, events_in, span_times
from headroom.policies.forecast.seasonal.axis import FitAxis
from headroom.policies.forecast.seasonal.baseline import Baseline, fit_on_axis
from headroom.policies.forecast.seasonal.localtime import BoolArray
from headroom.policies.forecast.seasonal.profile import Stencil
from headroom.policies.forecast.uplift import (
    MIN_UPLIFT,
    EventBins,
    LearnedEvent,
    Uplift,
    UpliftModel,
    effective_ramp,
    event_position,
    event_window,
    learn_on_bins,
)
from headroom.policies.policy import Forecasting
from headroom.policies.series import FloatArray, Series

NOWCAST_MEMORY = 12 * 3600.0  # newest samples kept for judging events under way
NOWCAST_RECENT = 3600.0  # ... of which the last hour is compared with the model
NOWCAST_MIN_TAU = 0.05  # an uplift is never taken as known better than 5 % (log scale)
NOWCAST_CORRELATION = 4.0  # neighbouring 1-minute residuals correlate: fewer effective samples
NOWCAST_SHAPE_SD = 0.05  # a measured scale still leaves the shape over time uncertain
NOWCAST_PEAK_LOG = math.log(3.0)  # the nowcast moves an event's peak at most 3x either way


def _excluded(t: FloatArray, windows: Sequence[tuple[float, float]]) -> BoolArray:
    mask = np.zeros(t.shape, dtype=np.bool_)
    for lo, hi in windows:
        a = int(np.searchsorted(t, lo, side="left"))
        b = int(np.searchsorted(t, hi, side="left"))
        mask[a:b] = True
    return mask


def _step(series: Series) -> float:
    """Median spacing of the newest samples (cheap: ``Series.step`` scans all of them)."""
    return _spacing(series.t)


def _spacing(t: FloatArray) -> float:
    """Median spacing of the newest 2,049 times; a regular grid skips the median's sort."""
    tail = t[-2049:]
    if tail.size < 2:
        return 0.0
    d = np.diff(tail)
    lo = float(d.min())
    return lo if lo == float(d.max()) else float(np.median(d))


def _window(series: Series, start: float, end: float) -> tuple[FloatArray, FloatArray]:
    """``series.between(start, end)`` as arrays: slices of a valid series need no re-check
    (``Series`` validates its times on construction, a pass over 40,000 samples)."""
    lo = int(np.searchsorted(series.t, start, side="left"))
    hi = int(np.searchsorted(series.t, end, side="left"))
    return series.t[lo:hi], series.v[lo:hi]


def resample(history: Series, grid: float) -> Series:
    """Average samples onto a ``grid``-second grid when they are finer than it (gaps stay NaN)."""
    if len(history) < 2 or _step(history) >= grid:
        return history
    k = np.floor((history.t - history.t[0]) / grid).astype(np.int64)
    ok = np.isfinite(history.v)
    n = np.bincount(k, weights=ok.astype(np.float64))
    s = np.bincount(k, weights=np.where(ok, history.v, 0.0))
    present = np.bincount(k) > 0
    t = history.t[0] + np.arange(n.size) * grid
    v = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    return Series(t[present], v[present])


class HeadroomForecaster:
    """Baseline seasonality x learned event uplift; implements ``Forecaster``."""

    def __init__(
        self,
        spec_forecasting: Forecasting | None = None,
        *,
        tz: str | None = None,
        bin_seconds: float = 900.0,
        grid: float = 60.0,
        declared_weight: float = 1.0,
    ) -> None:
        """``tz``: zone whose local time the daily/weekly shape follows (default: the first
        calendar event's zone, else UTC). ``declared_weight``: 1 = a declared expectation
        overrides what was learned, 0.5 = halfway in log space."""
        self.spec = spec_forecasting or Forecasting()
        self.tz = tz
        self.bin_seconds = bin_seconds
        self.grid = grid
        self.declared_weight = declared_weight
        self._baseline: Baseline | None = None
        self._tail = Series.empty()  # the newest samples: how hot an ongoing event runs
        self._uplift = UpliftModel((), self.spec.default_event_multiplier, self.spec.default_ramp)
        self._calendar = Calendar()

    # -- fitting ---------------------------------------------------------------------------
    @property
    def baseline(self) -> Baseline:
        if self._baseline is None:
            raise RuntimeError("HeadroomForecaster.predict called before fit")
        return self._baseline

    @property
    def calendar(self) -> Calendar:
        """The calendar given to the last ``fit`` (past events learned, future ones applied)."""
        return self._calendar

    @property
    def learned_events(self) -> tuple[LearnedEvent, ...]:
        return self._uplift.learned

    def fit(self, history: Series, calendar: Calendar) -> Self:
        return self._fit(history, calendar, None)

    @classmethod
    def fit_many(
        cls,
        histories: Sequence[Series],
        calendar: Calendar | Sequence[Calendar],
        spec_forecasting: Forecasting | None = None,
        *,
        tz: str | None = None,
        bin_seconds: float = 900.0,
        grid: float = 60.0,
        declared_weight: float = 1.0,
    ) -> list[HeadroomForecaster]:
        """One fitted forecaster per history (``calendar``: one for all, or one each).

        The batch API of the control loop (all targets of a pass) and the engine bench:
        the result equals ``[cls(...).fit(h, c) for h, c in ...]``, but histories sampled at
        the same times with the same calendar share what depends on the times alone
        (blocks, local-time bins, hourly bins, event windows and positions, profile
        stencils: about a third of a fit), computed once.
        """
        cals = [calendar] * len(histories) if isinstance(calendar, Calendar) else list(calendar)
        if len(cals) != len(histories):
            raise ValueError(f"fit_many: {len(histories)} histories but {len(cals)} calendars")
        shared = SharedAxes()
        return [
            cls(
                spec_forecasting,
                tz=tz,
                bin_seconds=bin_seconds,
                grid=grid,
                declared_weight=declared_weight,
            )._fit(h, c, shared)
            for h, c in zip(histories, cals, strict=True)
        ]

    def _fit(self, history: Series, calendar: Calendar, shared: SharedAxes | None) -> Self:
        self._calendar = calendar
        tz = self.tz or (calendar.events[0].tz if calendar.events else None)
        ramp = self.spec.default_ramp
        hstep: float | None = None  # spacing of the newest samples of what is fitted
        if len(history):
            step = _step(history) if len(history) > 1 else self.grid
            as_of = history.end + step
            ht, hv = _window(history, as_of - self.spec.history, as_of)
            if ht.size >= 2:
                # The window ends where the history does: with as many samples, the same tail.
                hstep = step if ht.size >= 2049 else _spacing(ht)
                if hstep < self.grid:
                    hist = resample(Series(ht, hv), self.grid)
                    ht, hv = hist.t, hist.v
                    hstep = _spacing(ht) if ht.size > 1 else None
        else:
            as_of, ht, hv = 0.0, history.t, history.v
        windows = [event_window(e, ramp) for e in calendar.events]
        if ht.size:
            windows = [(lo, hi) for lo, hi in windows if lo < as_of and hi > ht[0]]
        tail = int(np.searchsorted(ht, as_of - NOWCAST_MEMORY, side="left"))
        self._tail = Series(ht[tail:], hv[tail:])
        # Everything the shared work depends on besides the times: the event windows and
        # grid positions follow from each event's start, end and ramp.
        events = tuple((e.start, e.end, effective_ramp(e, ramp)) for e in calendar.events)
        key = (as_of, tz, self.bin_seconds, ramp, events)
        axis, cuts = shared.get(ht, key) if shared is not None else (None, {})
        if axis is None:
            axis = FitAxis(
                ht,
                _excluded(ht, windows),
                as_of=as_of,
                tz=tz,
                bin_seconds=self.bin_seconds,
                step=hstep,
            )
            if shared is not None:
                _, cuts = shared.get(ht, key, axis)
        self._baseline = base = fit_on_axis(axis, hv)
        learned: list[LearnedEvent] = []
        if ht.size:
            nw = 7 * axis.nd if base.profile.weekly.size else 0
            for i, ev in enumerate(calendar.events):
                lo, hi = event_window(ev, ramp)
                if ev.end > as_of or hi <= ht[0]:
                    continue  # not over yet (or before the history): nothing to learn from
                cut = cuts.get(i)
                if cut is None or (nw and cut[3].weekly is None):
                    a = int(np.searchsorted(ht, lo, side="left"))
                    b = int(np.searchsorted(ht, hi, side="left"))
                    pt = ht[a:b]
                    st = Stencil.of(pt, None, base.profile.tz, self.bin_seconds, axis.nd, nw)
                    cut = cuts[i] = (a, b, EventBins.of(event_position(ev, pt, ramp)), st)
                a, b, bins, st = cut
                if a == b:
                    continue
                expected = base.profile.at_stencil(st) + base.level_before(lo)
                ratio = np.log(hv[a:b] + base.floor) - expected
                if not bool(np.isfinite(ratio[bins.ok]).all()):  # gaps: bins of its own
                    bins = EventBins.of(event_position(ev, ht[a:b], ramp), ratio)
                le = learn_on_bins(ev, ratio, bins)
                if le is not None:
                    learned.append(le)
        self._uplift = UpliftModel(
            tuple(learned),
            self.spec.default_event_multiplier,
            ramp,
            self.declared_weight,
        )
        return self

    def update(self, recent: Series) -> Self:
        """Move the level with samples newer than the fit (no refit of shape or uplift)."""
        recent = recent.between(self.baseline.as_of, math.inf)
        if len(recent):
            tail = self._tail.append(recent)
            self._tail = tail.between(tail.end - NOWCAST_MEMORY, math.inf)
            windows = [event_window(e, self.spec.default_ramp) for e in self._calendar.events]
            self._baseline = self.baseline.with_recent(
                recent.t, recent.v, _excluded(recent.t, windows)
            )
        return self

    # -- prediction ------------------------------------------------------------------------
    def uplift_for(self, event: DemandEvent) -> Uplift:
        """The uplift this model applies to ``event`` (for reports and plan reasons)."""
        return self._uplift.for_event(event, self._event_baseline_qps(event))

    def _event_baseline_qps(self, event: DemandEvent, shared: SharedPredict | None = None) -> float:
        base = self.baseline
        if shared is None:
            tb = span_times(event)
            return float(np.mean(np.exp(base.log_mean(tb)))) - base.floor
        tb = shared.span_times(event)
        mu = base.log_mean(tb, at=shared.index(base, tb))
        return float(np.mean(np.exp(mu))) - base.floor

    def _nowcast(self, event: DemandEvent, up: Uplift, baseline_qps: float) -> tuple[float, float]:
        """For an event under way: the posterior scale ``r`` of its log uplift, and its sd.

        The uplift learned (or declared, or defaulted) is a prior: ``r ~ N(1, tau)`` with
        ``tau`` its relative spread at the peak. The samples seen since the event's window
        opened (the last hour at most) measure ``r`` by least squares on the expected
        shape, ``o_i = r * m_i + noise`` (``o_i`` relative to the hour before the window;
        noise: the baseline's residual spread, inflated for correlation between
        neighbouring samples), so early ramp samples, where ``m_i``
        is small, say little. The posterior is their precision-weighted blend, kept within
        ``[1/3, 3]`` and so that the peak's multiplier moves at most 3x either way. Before
        the start, only a learned shape (whose ramp-to-peak ratio was
        seen on past events) may lower the forecast; a template's ramp is a guess.
        """
        base = self.baseline
        obs = self._tail.between(max(event.window_start, base.as_of - NOWCAST_RECENT), base.as_of)
        ok = np.isfinite(obs.v)
        tau = max(float(up.sd.max()) / max(float(up.mu.max()), 1e-9), NOWCAST_MIN_TAU)
        if int(ok.sum()) < 3 or up.mu.max() <= MIN_UPLIFT:
            return 1.0, tau
        t_obs = obs.t[ok]
        observed = np.log(obs.v[ok] + base.floor) - base.log_mean(t_obs)
        # Relative to the hour before the window opened: the baseline's level can be off
        # at this time of day by as much as a small event's ramp lifts it.
        before = self._tail.between(event.window_start - NOWCAST_RECENT, event.window_start)
        fin = np.isfinite(before.v)
        if int(fin.sum()) >= 10:
            pre = np.log(before.v[fin] + base.floor) - base.log_mean(before.t[fin])
            observed -= float(pre.mean())
        else:
            observed -= base.residual_quantile(t_obs, 0.5)
        expected, _, _ = self._uplift.log_uplift(event, t_obs, baseline_qps, envelope=False)
        info = float(expected @ expected)
        if info <= 0:
            return 1.0, tau
        spread = base.residual_quantile(t_obs, 0.8413) - base.residual_quantile(t_obs, 0.1587)
        noise2 = float(np.mean((0.5 * spread) ** 2)) * NOWCAST_CORRELATION
        r_hat = float(expected @ observed) / info
        precision = 1.0 / tau**2 + info / noise2
        r = (1.0 / tau**2 + r_hat * info / noise2) / precision
        if base.as_of < event.start and up.source not in ("learned", "declared+learned"):
            r = max(r, 1.0)
        # r scales the log uplift, so the peak's multiplier goes to the power r: bound it so
        # the peak moves at most 3x either way (r = 3 on a learned x3 would forecast x27).
        peak = float(up.mu.max())
        lo, hi = max(1.0 / 3.0, 1.0 - NOWCAST_PEAK_LOG / peak), 1.0 + NOWCAST_PEAK_LOG / peak
        return min(max(r, lo), min(hi, 3.0)), math.sqrt(1.0 / precision)

    def predict(
        self,
        start: float,
        horizon: float,
        step: float,
        levels: Sequence[float] = (0.5, 0.9, 0.99),
    ) -> Forecast:
        return self._predict(start, horizon, step, levels, None)

    @staticmethod
    def predict_many(
        models: Sequence[HeadroomForecaster],
        start: float,
        horizon: float,
        step: float,
        levels: Sequence[float] = (0.5, 0.9, 0.99),
    ) -> list[Forecast]:
        """``[m.predict(start, horizon, step, levels) for m in models]`` (equal results),
        with what depends on the times and calendar alone computed once: the batch
        predict of a control-loop pass, after :meth:`fit_many`."""
        shared = SharedPredict()
        return [m._predict(start, horizon, step, levels, shared) for m in models]

    def _predict(
        self,
        start: float,
        horizon: float,
        step: float,
        levels: Sequence[float],
        shared: SharedPredict | None,
    ) -> Forecast:
        base = self.baseline
        n = max(1, math.ceil(horizon / step))
        ramp = self.spec.default_ramp
        if shared is None:
            t = start + np.arange(n, dtype=np.float64) * step
            at = base.index(t)  # once for log_mean, the residuals and the mean factor
            events = events_in(self._calendar, ramp, start, float(t[-1]) + step)
        else:
            t = shared.times(start, n, step)
            at = shared.index(base, t)
            events = shared.events(self._calendar, ramp, start, float(t[-1]) + step)
        mu_b = base.log_mean(t, at=at)
        up = np.zeros(n)
        sd = np.zeros(n)
        learned = np.zeros(n)  # the uplift as learned, before any nowcast
        nowcast = False
        driver = np.full(n, -1, dtype=np.int64)
        for i, ev in enumerate(events):
            qps = self._event_baseline_qps(ev, shared)
            pos = shared.position(ev, t, ramp) if shared is not None else None
            u, s, uplift = self._uplift.log_uplift(ev, t, qps, position=pos)
            learned = np.maximum(learned, u)
            if ev.window_start < base.as_of:
                r, r_sd = self._nowcast(ev, uplift, qps)
                u, s = u * r, np.hypot(u * r_sd, NOWCAST_SHAPE_SD * u)
                nowcast = True
            better = u > up
            up = np.where(better, u, up)
            sd = np.where(better, s, sd)
            driver[better] = i
        levels = tuple(float(p) for p in levels)
        med, *resid = base.residual_quantiles(t, (0.5, *levels), at=at)
        quantiles: dict[float, FloatArray] = {}
        for p, rq in zip(levels, resid, strict=True):
            dq = rq - med
            z = NormalDist().inv_cdf(p)
            y = mu_b + up + med + np.sign(dq + z * sd) * np.hypot(dq, z * sd)
            quantiles[p] = np.maximum(np.exp(y) - base.floor, 0.0)
        mean = np.exp(mu_b + up + 0.5 * sd**2) * base.mean_factor(t, at) - base.floor
        lookup: list[DemandEvent | None] = [None, *events]
        which = np.where(up > MIN_UPLIFT, driver + 1, 0)
        # A driver holds for whole stretches: one tuple per run, not one lookup per step.
        cuts = [0, *(np.flatnonzero(which[1:] != which[:-1]) + 1).tolist(), n]
        runs: list[DemandEvent | None] = []
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            runs += [lookup[int(which[a])]] * (b - a)
        drivers = tuple(runs)
        shape = np.maximum(np.exp(mu_b + learned + med) - base.floor, 0.0) if nowcast else None
        return Forecast(
            t=t,
            mean=np.maximum(mean, 0.0),
            quantiles=quantiles,
            drivers=drivers,
            baseline=np.maximum(np.exp(mu_b + med) - base.floor, 0.0),
            shape=shape,
        )
