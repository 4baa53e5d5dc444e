"""Realistic synthetic traffic traces, deterministic by seed.

Used by the forecast tests, the simulator's benches and the demo to get traces
whose true shape is known: a daily curve (quiet night, lunch bump, evening peak)
in a chosen time zone, a weekly pattern, a slow trend, correlated multiplicative
noise, optional gaps, and scheduled events that ramp up before their start, step
up at the start, grow to a peak, and decay after their end. Pure numpy; no I/O.

``generate_trace`` returns a :class:`Series`; :func:`event_multiplier` is the
true uplift of one event over time (for tests that compare learned to true).

:func:`broad_scenario` draws, from a seed, weeks of such traffic with what real
scheduled events do and a forecaster must learn from history alone (issue 20): events
of several kinds with labels, sizes from 0.9x to 11x within one kind and unrelated to
the previous event's, a step at the start, the peak near or after the declared end,
overruns of 0-60 minutes, several events on some days, kinds seen many times, once or
never before, and unscheduled days whose base level doubles or triples; its calendar
declares kind, labels, start and end, never a size. ``bench/foresight.py`` runs it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from headroom.policies.calendar import Calendar, DemandEvent
from headroom.policies.forecast.seasonal.localtime import utc_offsets
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
    which the peak is reached (1.0: demand rises until the end); ``ramp``: how long before
    the true start demand gathers (None: the event's declared ``ramp``)."""

    jitter: float = 0.0
    overrun: float = 0.0
    ramp_share: float = 0.4
    step: float = 0.75
    peak_at: float = 1.0 / 3.0
    ramp: float | None = None


@dataclass(frozen=True)
class LevelShift:
    """An unscheduled stretch (no calendar entry) whose base level is ``factor`` times the
    usual, reached and left over ``edge`` seconds at each end (a news day, an outage
    elsewhere sending traffic here)."""

    start: float
    end: float
    factor: float
    edge: float = 1800.0


def level_multiplier(shifts: Sequence[LevelShift], t: FloatArray) -> FloatArray:
    """The product of every shift's multiplier at times ``t`` (smoothstep edges)."""
    log_m = np.zeros_like(t)
    for sh in shifts:
        edge = max(sh.edge, 1.0)
        up = np.clip((t - sh.start) / edge, 0.0, 1.0)
        down = np.clip((sh.end - t) / edge, 0.0, 1.0)
        w = np.minimum(up, down)
        log_m += math.log(sh.factor) * w * w * (3.0 - 2.0 * w)
    return np.asarray(np.exp(log_m), dtype=np.float64)


def event_multiplier(
    event: DemandEvent, t: FloatArray, peak: float, shape: EventShape | None = None
) -> FloatArray:
    """True multiplier of ``event`` at times ``t``: ramp, step at start, peak, decay.

    Before ``start - ramp`` it is 1. Over the ramp the log-uplift rises (quadratic) to
    ``ramp_share`` (40 %) of the peak's; at the start it steps to ``step`` (75 %), grows to
    the peak by ``peak_at`` (a third) of the event, holds, and after ``end`` decays
    exponentially (time constant a quarter of the duration, at least 10 minutes). With a
    ``shape``, start, end and ramp are the true ones (jitter, overrun), not the declared.
    """
    sh = shape or EventShape()
    start = event.start + sh.jitter
    end = event.end + sh.jitter + sh.overrun
    ramp = event.ramp if sh.ramp is None else sh.ramp
    lg = math.log(max(peak, 1e-9))
    u = np.zeros_like(t)
    dur = max(end - start, 1.0)
    if ramp > 0:
        r = (t >= start - ramp) & (t < start)
        x = (t[r] - (start - ramp)) / ramp
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
    level_shifts: Sequence[LevelShift] = (),
) -> Series:
    """A trace of ``days`` days every ``step`` seconds from epoch ``start``.

    ``base_qps`` is the mean demand of a normal weekday. ``multipliers[i]`` is the true
    peak multiplier of ``events[i]``; when omitted, the event's declared
    ``expectation.multiplier`` is used, else 3. ``noise`` is the standard deviation of the
    log noise (AR(1) with correlation ``noise_corr`` between samples), ``trend_per_day`` a
    relative growth per day, ``gap_fraction`` the share of samples set to NaN (in runs);
    ``shapes[i]`` (optional) how ``events[i]`` truly unfolds (:class:`EventShape`);
    ``level_shifts`` multiply the base level over unscheduled stretches (:class:`LevelShift`).
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
    if level_shifts:
        v = v * level_multiplier(level_shifts, t)
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


@dataclass(frozen=True)
class KindPlan:
    """One kind of event in a :func:`broad_scenario`: its labels, when it is scheduled and
    how it unfolds (ranges drawn per event).

    ``appearances`` None: a recurring kind, sharing the day's slots with the other
    recurring kinds by ``weight``; else exactly that many events, none before
    ``first_after`` (a share of the trace: 0.75 puts a kind never seen before into its
    last quarter). Label values are drawn with Zipf-like weights (the last is rare)."""

    kind: str
    label_key: str
    label_values: tuple[str, ...]
    appearances: int | None = None
    weight: float = 1.0
    first_after: float = 0.0
    duration_hours: tuple[float, float] = (1.0, 2.5)
    peak_at: tuple[float, float] = (0.6, 1.0)
    step: tuple[float, float] = (0.5, 0.9)


BROAD_KINDS = (
    KindPlan("match", "league", ("premier", "cup", "friendly", "youth"), weight=0.65,
             duration_hours=(1.75, 2.5), peak_at=(0.75, 1.0)),
    KindPlan("livestream", "host", ("lin", "wu", "zhao", "chen", "guest"), weight=0.35,
             duration_hours=(1.0, 3.0), peak_at=(0.4, 1.0)),
    KindPlan("flash-sale", "site", ("shop",), appearances=2, duration_hours=(1.0, 2.0),
             peak_at=(0.05, 0.3), step=(0.8, 0.95)),
    KindPlan("premiere", "studio", ("north",), appearances=1, first_after=0.4,
             duration_hours=(2.0, 3.0)),
    KindPlan("launch", "product", ("new",), appearances=1, first_after=0.75,
             duration_hours=(1.0, 2.0), peak_at=(0.9, 1.0)),
)  # fmt: skip


@dataclass(frozen=True)
class BroadSpec:
    """The ranges a :func:`broad_scenario` draws from (issue 20's properties).

    ``sizes``: every event's true peak multiplier, drawn independently of the previous
    event's, log-scaled Beta(1.2, 2) between the bounds (most events x1-x4, a few up to
    x11), times a small per-label factor (sd ``label_effect`` in log, drawn per seed) that
    partial pooling may learn; ``events_per_day[k]``: the probability of k events on a
    day; ``surge_days``: the share of days with an unscheduled stretch at x2-x3 the base
    level (at least one per trace); starts land ``jitter_minutes`` off the declared one;
    demand gathers ``ramp_minutes`` before the true start (the calendar declares none)."""

    sizes: tuple[float, float] = (0.9, 11.0)
    label_effect: float = 0.15
    overrun_minutes: tuple[float, float] = (0.0, 60.0)
    jitter_minutes: tuple[float, float] = (-5.0, 10.0)
    ramp_minutes: tuple[float, float] = (5.0, 30.0)
    events_per_day: tuple[float, ...] = (0.3, 0.35, 0.25, 0.1)
    gap_hours: tuple[float, float] = (0.25, 3.0)  # declared end to the next start
    first_start_hour: tuple[float, float] = (9.0, 20.0)
    last_start_hour: float = 22.5
    surge_days: float = 0.08
    surge_factor: tuple[float, float] = (2.0, 3.0)
    base_qps: tuple[float, float] = (300.0, 3000.0)
    noise: tuple[float, float] = (0.04, 0.1)
    kinds: tuple[KindPlan, ...] = BROAD_KINDS
    zones: tuple[str, ...] = ("UTC", "Asia/Shanghai", "America/New_York", "Europe/Berlin")


@dataclass(frozen=True)
class Scenario:
    """A generated trace with its calendar and the truth behind it (for tests and benches;
    a policy sees only ``trace`` and ``calendar``)."""

    trace: Series
    calendar: Calendar
    sizes: tuple[float, ...]  # true peak multiplier of each calendar event, in its order
    shapes: tuple[EventShape, ...]  # how each calendar event truly unfolded
    shifts: tuple[LevelShift, ...]  # the unscheduled level changes
    tz: str
    base_qps: float
    seed: int
    daily: DailyShape = field(default_factory=DailyShape)
    noise: float = 0.0  # the log noise's standard deviation drawn for this trace

    def size(self, name: str) -> float:
        """The true size of the event called ``name``."""
        i = next(i for i, e in enumerate(self.calendar.events) if e.name == name)
        return self.sizes[i]


def _slots(
    rng: np.random.Generator, day0: float, days: int, spec: BroadSpec
) -> list[tuple[float, float]]:
    """Declared (start, end) windows, several on some days, in time order."""
    probs = np.asarray(spec.events_per_day, dtype=np.float64)
    out: list[tuple[float, float]] = []
    for d in range(1, days):
        n = int(rng.choice(probs.size, p=probs / probs.sum()))
        hour = float(rng.uniform(*spec.first_start_hour))
        for _ in range(n):
            if hour > spec.last_start_hour:
                break
            length = float(rng.uniform(1.0, 3.0))  # replaced by the kind's duration later
            out.append((day0 + d * DAY + hour * 3600, length))
            hour += length + float(rng.uniform(*spec.gap_hours))
    return out


def broad_scenario(
    seed: int, days: int = 35, *, spec: BroadSpec | None = None, start: str = "2025-03-03"
) -> Scenario:
    """Weeks of per-minute traffic with scheduled events as real ones behave, from ``seed``.

    Everything is drawn from the seed: the time zone, base level, daily and weekly shape,
    noise, trend, the surge days, the schedule (0-3 events a day), each event's kind and
    label, size, step, peak time, ramp, start jitter and overrun (see :class:`BroadSpec`
    and :class:`KindPlan`). The trace starts at local midnight of ``start``."""
    spec = spec or BroadSpec()
    rng = np.random.default_rng(seed)
    tz = str(rng.choice(spec.zones))
    day0 = datetime.fromisoformat(start).replace(tzinfo=ZoneInfo(tz)).timestamp()
    base = float(np.exp(rng.uniform(*np.log(spec.base_qps))))
    daily = DailyShape(
        amplitude=float(rng.uniform(0.3, 0.7)),
        peak_hour=float(rng.uniform(18.5, 22.0)),
        lunch=float(rng.uniform(0.0, 0.3)),
        weekend=float(rng.uniform(-0.25, 0.2)),
    )
    noise = float(rng.uniform(*spec.noise))
    # The schedule: slots first, then kinds (the fixed-count kinds take random slots after
    # their first_after; the recurring kinds share the rest by weight).
    slots = _slots(rng, day0, days, spec)
    span = days * DAY
    kind_of: list[KindPlan | None] = [None] * len(slots)
    for plan in spec.kinds:
        if plan.appearances is None:
            continue
        free = [
            i
            for i, (s0, _) in enumerate(slots)
            if kind_of[i] is None and s0 >= day0 + plan.first_after * span
        ]
        for i in rng.choice(free, size=min(plan.appearances, len(free)), replace=False):
            kind_of[int(i)] = plan
    recurring = [p for p in spec.kinds if p.appearances is None]
    weights = np.asarray([p.weight for p in recurring])
    effects = {
        (p.kind, v): float(rng.normal(0.0, spec.label_effect))
        for p in spec.kinds
        for v in p.label_values
    }
    lo, hi = np.log(spec.sizes)
    events: list[DemandEvent] = []
    sizes: list[float] = []
    shapes: list[EventShape] = []
    counts: dict[str, int] = {}
    for i, (begin, _) in enumerate(slots):
        plan = kind_of[i] or recurring[int(rng.choice(len(recurring), p=weights / weights.sum()))]
        zipf = 1.0 / np.arange(1, len(plan.label_values) + 1)
        value = str(rng.choice(plan.label_values, p=zipf / zipf.sum()))
        length = float(rng.uniform(*plan.duration_hours)) * 3600
        counts[plan.kind] = counts.get(plan.kind, 0) + 1
        events.append(
            DemandEvent(
                name=f"{plan.kind} {value} #{counts[plan.kind]}",
                kind=plan.kind,
                start=begin,
                end=begin + length,
                labels={plan.label_key: value},
                tz=tz,
            )
        )
        size = float(np.exp(lo + (hi - lo) * rng.beta(1.2, 2.0) + effects[plan.kind, value]))
        sizes.append(float(np.clip(size, *spec.sizes)))
        shapes.append(
            EventShape(
                jitter=60.0 * float(rng.uniform(*spec.jitter_minutes)),
                overrun=60.0 * float(rng.uniform(*spec.overrun_minutes)),
                ramp_share=float(rng.uniform(0.1, 0.35)),
                step=float(rng.uniform(*plan.step)),
                peak_at=float(rng.uniform(*plan.peak_at)),
                ramp=60.0 * float(rng.uniform(*spec.ramp_minutes)),
            )
        )
    surge = [d for d in range(days) if rng.random() < spec.surge_days] or [
        int(rng.integers(days // 2, days))
    ]
    shifts = tuple(
        LevelShift(
            start=(s0 := day0 + d * DAY + 3600 * float(rng.uniform(0.0, 12.0))),
            end=s0 + 3600 * float(rng.uniform(8.0, 24.0)),
            factor=float(rng.uniform(*spec.surge_factor)),
            edge=60.0 * float(rng.uniform(20.0, 90.0)),
        )
        for d in surge
    )
    trace = generate_trace(
        day0,
        days,
        60.0,
        base,
        events,
        sizes,
        noise=noise,
        noise_corr=float(rng.uniform(0.5, 0.8)),
        trend_per_day=float(rng.uniform(-0.005, 0.01)),
        shape=daily,
        tz=tz,
        seed=seed,
        shapes=shapes,
        level_shifts=shifts,
    )
    return Scenario(
        trace=trace,
        calendar=Calendar(tuple(events)),
        sizes=tuple(sizes),
        shapes=tuple(shapes),
        shifts=shifts,
        tz=tz,
        base_qps=base,
        seed=seed,
        daily=daily,
        noise=noise,
    )
