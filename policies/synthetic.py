"""Realistic synthetic traffic traces, deterministic by seed.

Used by the forecast tests, the simulator's benches and the demo to get traces
whose true shape is known: a daily curve (quiet night, lunch bump, evening peak)
in a chosen time zone, a weekly pattern, a slow trend, correlated multiplicative
noise, optional gaps, and scheduled events that ramp up before their start, step
up at the start, grow to a peak, and decay after their end. Pure numpy; no I/O.

``generate_trace`` returns a :class:`Series`; :func:`event_multiplier` is the
true uplift of one event over time (for tests that compare learned to true).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from headroom.policies.calendar import DemandEvent
from headroom.policies.forecast.seasonal import utc_offsets
from headroom.policies.series import FloatArray, Series

DAY = 86400.0
WEEK = 7 * DAY


@dataclass(frozen=True)
class DailyShape:
    """Relative amplitude of the daily curve; peaks at ``peak_hour`` local time."""

    amplitude: float = 0.55  # evening peak vs. mean, log scale
    peak_hour: float = 20.5
    lunch: float = 0.2  # secondary bump around 12:30
    weekend: float = -0.15  # Saturday/Sunday level change, log scale


@dataclass(frozen=True)
class EventShape:
    """How an event's true demand departs from its calendar entry (seconds, log shares).

    ``jitter``: the true start (and end) is this much after the declared one (negative:
    early); ``overrun``: the true end is this much after the declared end (plus jitter);
    ``ramp_share``: the log-uplift reached by the end of the ramp; ``step``: the share of
    the peak's log-uplift at the start; ``peak_at``: the share of the event's duration at
    which the peak is reached (1.0: demand rises until the end)."""

    jitter: float = 0.0
    overrun: float = 0.0
    ramp_share: float = 0.4
    step: float = 0.75
    peak_at: float = 1.0 / 3.0


def event_multiplier(
    event: DemandEvent, t: FloatArray, peak: float, shape: EventShape | None = None
) -> FloatArray:
    """True multiplier of ``event`` at times ``t``: ramp, step at start, peak, decay.

    Before ``start - ramp`` it is 1. Over the ramp the log-uplift rises (quadratic) to
    ``ramp_share`` (40 %) of the peak's; at the start it steps to ``step`` (75 %), grows to
    the peak by ``peak_at`` (a third) of the event, holds, and after ``end`` decays
    exponentially (time constant a quarter of the duration, at least 10 minutes). With a
    ``shape``, start and end are the true ones (jitter, overrun), not the declared.
    """
    sh = shape or EventShape()
    start = event.start + sh.jitter
    end = event.end + sh.jitter + sh.overrun
    lg = math.log(max(peak, 1e-9))
    u = np.zeros_like(t)
    dur = max(end - start, 1.0)
    if event.ramp > 0:
        r = (t >= start - event.ramp) & (t < start)
        x = (t[r] - (start - event.ramp)) / event.ramp
        u[r] = sh.ramp_share * lg * x * x
    b = (t >= start) & (t < end)
    xb = np.clip((t[b] - start) / max(dur * sh.peak_at, 1.0), 0.0, 1.0)
    u[b] = lg * (sh.step + (1.0 - sh.step) * xb)
    a = t >= end
    tau = max(dur / 4.0, 600.0)
    u[a] = lg * np.exp(-(t[a] - end) / tau)
    u[a & (t > end + 8 * tau)] = 0.0
    return np.asarray(np.exp(u), dtype=np.float64)


def generate_trace(
    start: float,
    days: float,
    step: float = 60.0,
    base_qps: float = 1000.0,
    events: Sequence[DemandEvent] = (),
    multipliers: Sequence[float] | None = None,
    *,
    noise: float = 0.08,
    noise_corr: float = 0.6,
    trend_per_day: float = 0.0,
    shape: DailyShape | None = None,
    tz: str = "UTC",
    gap_fraction: float = 0.0,
    seed: int = 0,
    shapes: Sequence[EventShape | None] | None = None,
) -> Series:
    """A trace of ``days`` days every ``step`` seconds from epoch ``start``.

    ``base_qps`` is the mean demand of a normal weekday. ``multipliers[i]`` is the true
    peak multiplier of ``events[i]``; when omitted, the event's declared
    ``expectation.multiplier`` is used, else 3. ``noise`` is the standard deviation of the
    log noise (AR(1) with correlation ``noise_corr`` between samples), ``trend_per_day`` a
    relative growth per day, ``gap_fraction`` the share of samples set to NaN (in runs);
    ``shapes[i]`` (optional) how ``events[i]`` truly unfolds (:class:`EventShape`).
    """
    shape = shape or DailyShape()
    rng = np.random.default_rng(seed)
    n = int(round(days * DAY / step))
    t = start + np.arange(n, dtype=np.float64) * step
    if n == 0:
        return Series(t, np.empty(0))
    local = t + utc_offsets(t, tz)
    hour = (local % DAY) / 3600.0
    # Epoch day 0 was a Thursday: weekday 5, 6 = Saturday, Sunday.
    weekday = ((np.floor(local / DAY) + 3) % 7).astype(np.int64)
    daily = shape.amplitude * np.cos(2 * np.pi * (hour - shape.peak_hour) / 24.0)
    daily += shape.lunch * np.exp(-0.5 * ((hour - 12.5) / 1.2) ** 2)
    daily -= 0.25 * shape.amplitude * np.cos(4 * np.pi * (hour - shape.peak_hour) / 24.0)
    weekly = np.where(weekday >= 5, shape.weekend, 0.0)
    trend = np.log1p(trend_per_day) * (t - start) / DAY
    log_v = math.log(base_qps) + daily + weekly + trend
    # AR(1) noise with stationary standard deviation ``noise``.
    eps = rng.standard_normal(n) * noise * math.sqrt(1 - noise_corr**2)
    ar = np.empty(n)
    ar[0] = rng.standard_normal() * noise
    phi = noise_corr
    if phi == 0.0:
        ar = eps
    else:
        for i in range(1, n):
            ar[i] = phi * ar[i - 1] + eps[i]
    v = np.exp(log_v + ar)
    mults = list(multipliers) if multipliers is not None else []
    for i, ev in enumerate(events):
        if i < len(mults):
            peak = mults[i]
        elif ev.expectation is not None and ev.expectation.multiplier is not None:
            peak = ev.expectation.multiplier
        else:
            peak = 3.0
        shape_i = shapes[i] if shapes is not None and i < len(shapes) else None
        v = v * event_multiplier(ev, t, peak, shape_i)
    if gap_fraction > 0:
        runs = max(1, int(gap_fraction * n / 10))
        starts = rng.integers(0, max(1, n - 10), size=runs)
        for s0 in starts:
            v[s0 : s0 + 10] = np.nan
    return Series(t, np.asarray(v, dtype=np.float64))


EXAMPLE_SPAN = ("2025-11-06T12:00:00+08:00", "2025-11-11T12:00:00+08:00")


def example_history(
    events: Sequence[DemandEvent],
    span: tuple[str, str] = EXAMPLE_SPAN,
    *,
    base_qps: float = 600.0,
    multiplier: float = 4.0,
    tz: str = "Asia/Shanghai",
    seed: int = 7,
) -> Series:
    """The history shipped as ``policies/examples/qps.csv``: five days of 1-minute QPS in
    ``span`` shaped like the demo's traffic, with the events of ``events`` that fall in
    it (the demo calendar's Nov 6 and Nov 8 livestreams) at ``multiplier``.

    ``tests/test_readme.py`` regenerates it and compares, so the file stays what
    this function makes (and the README's commands run on it as written)."""
    start, end = (datetime.fromisoformat(s).timestamp() for s in span)
    past = [e for e in events if start <= e.start and e.end <= end]
    return generate_trace(
        start,
        (end - start) / DAY,
        60.0,
        base_qps,
        past,
        [multiplier] * len(past),
        noise=0.05,
        tz=tz,
        seed=seed,
    )
