"""Backtest: headroom vs Kubernetes HPA vs static peak vs oracle, on real and generated traces.

Replays (``headroom.policies.baselines.suite.backtest``, the code behind
``headroom simulate``) the real NASA-HTTP July 1995 trace (STS-70 launch as a calendar
event, without and with a declared expectation) and generated traces with several
livestreams of varying size (several seeds), each with a provisioning delay of 10 and
of 2 minutes, and writes the ``backtest`` section of docs/BENCHMARKS.md: every
strategy's numbers, the targets (at 10 minutes: headroom at most 10 % of reactive_hpa's
underprovisioned minutes with no more unit-hours; stretch: at most 1.3x the oracle's
unit-hours) and, where headroom fell short, which minutes and which events.

Only policy *values* are set here (quantile, headroom factor, lead time); nothing in the
engine knows which trace it runs.

Run: ``.venv/bin/python bench/backtest.py [--quick]``.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `bench` importable
    sys.path.insert(0, str(ROOT))

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

from bench._report import write_section  # noqa: E402
from headroom.cli.simulate import frontier_headlines, write_frontier_chart  # noqa: E402
from headroom.policies.baselines.frontier import Frontier, frontier, hull  # noqa: E402
from headroom.policies.baselines.oracle import Oracle  # noqa: E402
from headroom.policies.baselines.suite import (  # noqa: E402
    STRATEGIES,
    backtest,
    build_strategies,
    with_fixed_delay,
)
from headroom.policies.calendar import Calendar, DemandEvent, EventKind, Expectation  # noqa: E402
from headroom.policies.capacity import units_for  # noqa: E402
from headroom.policies.forecast.model import HeadroomForecaster  # noqa: E402
from headroom.policies.policy import PolicySpec, parse_policy  # noqa: E402
from headroom.policies.series import Series  # noqa: E402
from headroom.policies.simulate import (  # noqa: E402
    Simulation,
    StrategyResult,
    simulate,
    target_delay,
)
from headroom.policies.synthetic import EventShape, generate_trace  # noqa: E402

NASA = ROOT.parent / "shared" / "data" / "nasa-http-1995"
NASA_CSV = NASA / "nasa_jul95_requests_per_minute_derived.csv"
EDT = ZoneInfo("America/New_York")
STS70_LAUNCH = datetime(1995, 7, 13, 9, 41, 55, tzinfo=EDT).timestamp()
SHANGHAI = "Asia/Shanghai"
DAY = 86400.0
PEAK_UNITS = 20
CAPACITY = 100.0  # QPS per unit; the NASA trace is scaled so its peak needs PEAK_UNITS

# The policy values the bench runs with (tunable here, never in the engine).
POLICY_VALUES: dict[str, Any] = {
    "slo": {"targetUtilization": 0.8},
    "headroomFactor": 1.0,
    "leadTime": "0s",
    "forecast": {"quantile": 0.99, "defaultEventMultiplier": 3.0, "defaultRamp": "30m"},
    "scaleIn": {
        "cooldown": "30m",
        "stepUnits": 3,
        "interval": "5m",
        "stabilization": "10m",
        "duringEvents": "nowcast",  # issue 11: what the frontier favours (levers below)
    },
}
FRONTIER_DIR = ROOT / "docs" / "img" / "frontier"
# The frontier's reading, written by hand from the run of 2026-12-02 (its numbers are as
# measured then; the tables around it are live).
ANALYSIS = (ROOT / "bench" / "backtest_analysis.md").read_text().strip()
# The levers compared on every case at 10 min (single runs, the HPA alongside).
LEVERS: tuple[tuple[str, dict[str, dict[str, Any]]], ...] = (
    ("scaleIn.duringEvents hold (the schema default)", {"scale_in": {"during_events": "hold"}}),
    ("duringEvents nowcast (bench policy)", {}),
    ("nowcast + forecast.eventQuantile 0.9", {"forecast": {"event_quantile": 0.9}}),
    ("nowcast + quantile 0.95", {"forecast": {"quantile": 0.95}}),
    ("nowcast + quantile 0.95, eventQuantile 0.8",
     {"forecast": {"quantile": 0.95, "event_quantile": 0.8}}),
)  # fmt: skip
SWEEP_QUANTILES = (0.9, 0.95, 0.99)


@dataclass(frozen=True)
class Case:
    name: str
    trace: Series
    calendar: Calendar
    spec: PolicySpec
    note: str
    truth: dict[str, float]  # true event sizes, where known (generated traces)


def policy(capacity: float, max_units: int, quantile: float | None = None) -> PolicySpec:
    values = dict(POLICY_VALUES)
    if quantile is not None:
        values["forecast"] = {**POLICY_VALUES["forecast"], "quantile": quantile}
    return parse_policy(
        {
            "name": "bench",
            "targets": [
                {
                    "name": "web",
                    "capacityPerUnit": capacity,
                    "minUnits": 1,
                    "maxUnits": max_units,
                }
            ],
            **values,
        }
    )


def nasa_trace() -> Series:
    """Requests per minute -> QPS, at the start of each minute (UTC from the EDT log)."""
    times: list[float] = []
    values: list[float] = []
    with NASA_CSV.open(newline="") as fh:
        for row in csv.DictReader(fh):
            when = datetime.strptime(row["minute_start_utc"], "%Y-%m-%d %H:%M")
            times.append(when.replace(tzinfo=UTC).timestamp())
            values.append(float(row["requests"]) / 60.0)
    return Series(np.asarray(times), np.asarray(values))


def nasa_cases() -> list[Case]:
    raw = nasa_trace()
    spec = policy(CAPACITY, max_units=2 * PEAK_UNITS)
    target = spec.targets[0]
    # Scale so that the peak minute needs PEAK_UNITS at the SLO's utilisation.
    scale = PEAK_UNITS * CAPACITY * spec.slo.target_utilization / float(np.nanmax(raw.v))
    scale *= 0.999  # float noise must not push the peak into a 21st unit
    trace = Series(raw.t, raw.v * scale)
    assert units_for(float(np.nanmax(trace.v)), target, spec) == PEAK_UNITS
    cases = []
    for expect in (None, 2.5):
        launch = DemandEvent(
            name="STS-70 launch",
            kind=EventKind.CUSTOM,
            start=STS70_LAUNCH,
            end=STS70_LAUNCH + 2.5 * 3600,
            ramp=3.5 * 3600,  # people gather from about 06:00 EDT
            labels={"mission": "sts-70", "kind": "launch"},
            expectation=Expectation(multiplier=expect) if expect else None,
            tz="America/New_York",
        )
        label = "no expectation" if expect is None else f"expectation x{expect:g}"
        cases.append(
            Case(
                name=f"NASA-HTTP Jul 1995, STS-70 ({label})",
                trace=trace,
                calendar=Calendar.of([launch]),
                spec=spec,
                note=(
                    f"{len(trace)} minutes, requests x{scale * 60:.1f}/60 -> QPS "
                    f"(peak {float(np.nanmax(trace.v)):.0f} QPS = {PEAK_UNITS} units of "
                    f"{CAPACITY:g} QPS at 80 %); launch 1995-07-13 09:41:55 EDT, "
                    "ramp 3.5 h, end +2.5 h"
                ),
                truth={},
            )
        )
    return cases


def synthetic_case(seed: int, days: int) -> Case:
    """Evening livestreams (Shanghai time) of different hosts and sizes over ``days`` days."""
    rng = np.random.default_rng(seed)
    start = datetime(2025, 3, 3, tzinfo=ZoneInfo(SHANGHAI)).timestamp()  # a Monday
    hosts = ("lin", "wu", "zhao")
    events: list[DemandEvent] = []
    multipliers: list[float] = []
    day = 2 + int(rng.integers(0, 2))
    k = 0
    while day < days - 1:
        host = hosts[k % len(hosts)]
        hour = float(rng.choice([12.0, 19.5, 20.0, 21.0]))
        begin = start + day * DAY + hour * 3600
        length = float(rng.choice([1.0, 2.0, 3.0])) * 3600
        size = float(rng.choice([1.8, 2.5, 3.5, 5.0]))
        declared = Expectation(multiplier=size) if rng.random() < 0.3 else None
        events.append(
            DemandEvent(
                name=f"{host} live #{k + 1}",
                kind=EventKind.LIVESTREAM,
                start=begin,
                end=begin + length,
                ramp=1800.0,
                labels={"host": host},
                expectation=declared,
                tz=SHANGHAI,
            )
        )
        multipliers.append(size)
        day += 2 + int(rng.integers(0, 3))
        k += 1
    trace = generate_trace(start, days, 60.0, 3000.0, events, multipliers, tz=SHANGHAI, seed=seed)
    peak = float(np.nanmax(trace.v))
    spec = policy(CAPACITY * 10, max_units=200)
    sizes = ", ".join(f"x{m:g}" for m in multipliers)
    return Case(
        name=f"generated, seed {seed}",
        trace=trace,
        calendar=Calendar.of(events),
        spec=spec,
        note=(
            f"{days} days, {len(events)} livestreams by 3 hosts (true sizes {sizes}; "
            f"{sum(e.expectation is not None for e in events)} declared), "
            f"peak {peak:.0f} QPS, {CAPACITY * 10:g} QPS per unit"
        ),
        truth={e.name: m for e, m in zip(events, multipliers, strict=True)},
    )


# Kinds with a shape of their own (learnable from their past events): a flash sale steps
# straight to its peak and fades, a launch keeps rising to its end and overruns, a concert
# builds to late in the show; how often each appears differs (many, a few, once).
SHAPED_KINDS: dict[str, tuple[float, float, float, float]] = {
    # kind: (weight, step at start, peak at (share of the duration), longest overrun s)
    "flash-sale": (0.5, 0.9, 0.15, 600.0),
    "launch": (0.3, 0.55, 1.0, 2400.0),
    "concert": (0.2, 0.65, 0.7, 1800.0),
}


def shaped_case(seed: int, days: int) -> Case:
    """Events whose true shape departs from the calendar: a step at the start, the peak
    anywhere up to the declared end, overruns of 0-40 min, starts 5 min early to 10 min
    late, sizes x1.2 to x10 (log-uniform), kinds seen many times, a few times, or once
    (the last concert may be the first); no expectation declared."""
    rng = np.random.default_rng(1000 + seed)
    start = datetime(2025, 3, 3, tzinfo=ZoneInfo(SHANGHAI)).timestamp()
    kinds = list(SHAPED_KINDS)
    weights = np.array([SHAPED_KINDS[k][0] for k in kinds])
    events: list[DemandEvent] = []
    sizes: list[float] = []
    shapes: list[EventShape] = []
    day = 1.0 + float(rng.uniform(0, 1))
    k = 0
    while day < days - 1:
        kind = str(rng.choice(kinds, p=weights / weights.sum()))
        _, step, peak_at, overrun = SHAPED_KINDS[kind]
        hour = float(rng.choice([10.0, 14.0, 19.0, 20.5]))
        begin = start + math.floor(day) * DAY + hour * 3600
        length = float(rng.choice([1.0, 1.5, 2.0, 3.0])) * 3600
        events.append(
            DemandEvent(
                name=f"{kind} #{k + 1}",
                kind=kind,
                start=begin,
                end=begin + length,
                ramp=1800.0,
                labels={"site": "shop"},
                tz=SHANGHAI,
            )
        )
        sizes.append(float(np.exp(rng.uniform(math.log(1.2), math.log(10.0)))))
        shapes.append(
            EventShape(
                jitter=float(rng.uniform(-300.0, 600.0)),
                overrun=float(rng.uniform(0.0, overrun)),
                step=float(np.clip(step + rng.normal(0, 0.05), 0.3, 0.95)),
                peak_at=float(np.clip(peak_at + rng.normal(0, 0.05), 0.05, 1.0)),
            )
        )
        day += float(rng.uniform(1.0, 2.5))
        k += 1
    trace = generate_trace(
        start, days, 60.0, 3000.0, events, sizes, tz=SHANGHAI, seed=seed, shapes=shapes
    )
    spec = policy(CAPACITY * 10, max_units=400)
    counts = ", ".join(f"{sum(e.kind == kd for e in events)} {kd}" for kd in kinds)
    return Case(
        name=f"generated shapes, seed {seed}",
        trace=trace,
        calendar=Calendar.of(events),
        spec=spec,
        note=(
            f"{days} days, {len(events)} events ({counts}); true sizes "
            f"{', '.join(f'x{m:.1f}' for m in sizes)}; starts -5..+10 min off, overruns up "
            f"to 10/40/30 min by kind, none declared; peak {float(np.nanmax(trace.v)):.0f} "
            f"QPS, {CAPACITY * 10:g} QPS per unit"
        ),
        truth={e.name: m for e, m in zip(events, sizes, strict=True)},
    )


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def with_values(spec: PolicySpec, over: dict[str, dict[str, Any]]) -> PolicySpec:
    """``spec`` with some nested values replaced (``{"forecast": {"quantile": 0.95}}``)."""
    for key, values in over.items():
        spec = spec.model_copy(update={key: getattr(spec, key).model_copy(update=values)})
    return spec


def levers(case: Case, delay: float) -> list[str]:
    """Headroom under each lever (single runs, the reactive HPA alongside)."""
    lines = [
        "| lever | headroom min (share of hpa's) | unit-hours (vs hpa) |",
        "|---|---:|---:|",
    ]
    for label, over in LEVERS:
        spec = with_values(case.spec, over)
        sim = backtest(
            case.trace, case.calendar, spec, delay_seconds=delay, names=["headroom", "reactive_hpa"]
        )
        h, a = sim.results["headroom"], sim.results["reactive_hpa"]
        share = h.underprovisioned_minutes / max(a.underprovisioned_minutes, 1e-9)
        lines.append(
            f"| {label} | {h.underprovisioned_minutes:.0f} ({share:.1%}) "
            f"| {h.unit_hours:,.0f} ({h.unit_hours / a.unit_hours:.2f}x) |"
        )
    return lines


def frontier_section(case: Case, delay: float) -> tuple[list[str], Frontier]:
    """The cost/shortfall frontier of one case and delay: points, headline, chart."""
    fr = frontier(case.trace, case.calendar, case.spec, delay_seconds=delay)
    FRONTIER_DIR.mkdir(parents=True, exist_ok=True)
    chart = FRONTIER_DIR / f"{_slug(case.name)}-{delay / 60:g}min.png"
    write_frontier_chart(chart, fr, f"{case.name}, delay {delay / 60:g} min")
    lines = [
        f"Cost/shortfall frontier ({len(fr.headroom)} headroom settings, "
        f"{len(fr.reactive_hpa)} HPA settings; chart `{chart.relative_to(ROOT)}`):",
        "",
        "| strategy | setting | underprov. min | unit-hours (order) | unit-hours (ready) |",
        "|---|---|---:|---:|---:|",
    ]
    for name, points in (("headroom", fr.headroom), ("reactive_hpa", fr.reactive_hpa)):
        on = {id(p) for p in hull(points, "order")}
        for p in sorted(points, key=lambda p: p.unit_hours):
            mark = (" (frontier)" if id(p) in on else "") + (" **policy**" if p.reference else "")
            lines.append(
                f"| {name} | {p.label}{mark} | {p.minutes:,.0f} | {p.unit_hours:,.0f} "
                f"| {p.ready_unit_hours:,.0f} |"
            )
    o = fr.oracle
    lines.append(f"| oracle | - | 0 | {o.unit_hours:,.0f} | {o.ready_unit_hours:,.0f} |")
    lines.append("")
    lines += [f"- {line}" for line in frontier_headlines(fr)]
    return lines + [""], fr


def run_case(case: Case, delay: float) -> Simulation:
    spec, target = with_fixed_delay(case.spec, case.spec.targets[0], delay)
    strategies = build_strategies(case.trace, case.calendar, spec, target, STRATEGIES)
    at_slo = Oracle(
        case.trace,
        target,
        target_delay(target),
        utilization=spec.slo.target_utilization / spec.headroom_factor,
    )
    at_slo.name = "oracle_at_slo"
    first = float(case.trace.v[0])
    return simulate(
        case.trace,
        [*strategies, at_slo],
        target=target,
        delay=target_delay(target),
        initial_units=units_for(first, target, spec),
    )


def sweep(case: Case, delay: float, base: Simulation) -> list[str]:
    """headroom at other forecast quantiles, against the same run's HPA and oracle."""
    t0 = case.spec.targets[0]
    hpa, oracle = base.results["reactive_hpa"], base.results["oracle"]
    lines = [
        "| quantile | underprov. min (vs hpa) | unit-hours (vs hpa, vs oracle) | peak units |",
        "|---:|---:|---:|---:|",
    ]
    for q in SWEEP_QUANTILES:
        base_spec = policy(t0.capacity_per_unit, t0.max_units, q)
        spec, _ = with_fixed_delay(base_spec, base_spec.targets[0], delay)
        (head,) = build_strategies(case.trace, case.calendar, spec, spec.targets[0], ["headroom"])
        r = simulate(
            case.trace,
            [head],
            target=spec.targets[0],
            delay=target_delay(spec.targets[0]),
            initial_units=base.initial_units,
        ).results["headroom"]
        lines.append(
            f"| {q:g} | {r.underprovisioned_minutes:.0f} "
            f"({r.underprovisioned_minutes / hpa.underprovisioned_minutes:.0%}) "
            f"| {r.unit_hours:,.0f} ({r.unit_hours / hpa.unit_hours:.2f}x, "
            f"{r.unit_hours / oracle.unit_hours:.2f}x) | {r.peak_units} |"
        )
    return lines


def _centred_level(v: np.ndarray, half: int = 30) -> np.ndarray:
    """The centred (2 * half + 1)-minute median: the smooth level, future included."""
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.concatenate((np.full(half, v[0]), v, np.full(half, v[-1])))
    return np.asarray(np.median(sliding_window_view(padded, 2 * half + 1), axis=1))


def _log_ratio(v: np.ndarray, level: np.ndarray) -> np.ndarray:
    """log(v / level): the noise around the level (callers mask the samples where v is 0)."""
    return np.asarray(np.log(np.maximum(v, 1e-9) / np.maximum(level, 1e-9)))


def _around(ev: DemandEvent, t: np.ndarray) -> np.ndarray:
    """Samples an event may touch: from 1 h before its ramp to 3 h after its end."""
    return np.asarray((t >= ev.window_start - 3600) & (t < ev.end + 3 * 3600))


def _groups(v: np.ndarray, level: np.ndarray, delay_steps: int) -> np.ndarray:
    """Per minute: level decile x tercile of the recent volatility (the spread of
    log(v / level) over the 30 minutes before the order, i.e. ending ``delay`` earlier)."""
    deciles = np.quantile(level, np.linspace(0.1, 0.9, 9))
    lvl = np.searchsorted(deciles, level)
    r = np.where(v > 0, _log_ratio(v, level), 0.0)
    c1 = np.concatenate(([0.0], np.cumsum(r)))
    c2 = np.concatenate(([0.0], np.cumsum(r * r)))
    n = v.size
    end = np.clip(np.arange(n) - delay_steps, 0, n)
    start = np.clip(end - 30, 0, n)
    cnt = np.maximum(end - start, 1)
    mean = (c1[end] - c1[start]) / cnt
    vol = np.sqrt(np.maximum((c2[end] - c2[start]) / cnt - mean * mean, 0.0))
    terciles = np.quantile(vol, [1 / 3, 2 / 3])
    return np.asarray(lvl * 3 + np.searchsorted(terciles, vol), dtype=np.int64)


def margin_references(case: Case, delay: float, hpa: StrategyResult) -> list[str]:
    """How cheap a strategy that sizes from the demand *level* could be at best.

    Two clairvoyant references know the future smooth level (the centred 61-minute
    median of the trace, so every event's true size too) and order with perfect timing
    (the oracle's rule, paying from the order like everyone), but not the minute-to-minute
    noise around the level:

    - ``uniform``: ``c`` times the level, the smallest ``c`` with at most 10 % of
      reactive_hpa's underprovisioned minutes;
    - ``per group``: a margin per group of minutes (level decile x tercile of the volatility
      seen before the order), all chosen *in hindsight* on this very trace to spend the
      same minute budget where it is cheapest (a Lagrangian sweep: each group's margin
      minimises ``unit-hours + lambda * minutes``).

    Neither is causal: they bound from below what a forecaster of the level plus a
    margin can reach. The lag-``delay`` autocorrelation of log(v / level) says how much
    the samples before an order tell about the noise at the time it serves.
    """
    spec, target = with_fixed_delay(case.spec, case.spec.targets[0], delay)
    cap = target.capacity_per_unit
    v = np.nan_to_num(case.trace.v, nan=0.0)
    level = _centred_level(v)
    first = float(case.trace.v[0])
    goal = 0.1 * hpa.underprovisioned_minutes

    def run(margin: np.ndarray | float) -> StrategyResult:
        ref = Oracle(Series(case.trace.t, level * margin), target, target_delay(target))
        ref.name = "margin_reference"
        return simulate(
            case.trace,
            [ref],
            target=target,
            delay=target_delay(target),
            initial_units=units_for(first, target, spec),
        ).results["margin_reference"]

    def verdict(r: StrategyResult) -> str:
        return (
            f"{r.underprovisioned_minutes:.0f} min <= {goal:.0f}, "
            f"{r.unit_hours:,.0f} unit-hours = {r.unit_hours / hpa.unit_hours:.2f}x "
            f"reactive_hpa's {hpa.unit_hours:,.0f}"
        )

    lo, hi = 1.0, 4.0
    best = run(hi)
    if best.underprovisioned_minutes > goal:
        return [f"margin references: even 4x the level misses {goal:.0f} min"]
    for _ in range(7):
        mid = 0.5 * (lo + hi)
        r = run(mid)
        if r.underprovisioned_minutes <= goal:
            hi, best = mid, r
        else:
            lo = mid
    lines = [
        f"clairvoyant level x uniform margin (knows the future 61-min median level, not "
        f"the noise): {hi:.2f}x the level: {verdict(best)}"
    ]

    # Per group: unit-minutes and short minutes of each candidate margin, per group.
    delay_steps = max(1, round(delay / 60.0))
    group = _groups(v, level, delay_steps)
    ng = int(group.max()) + 1
    cs = np.exp(np.linspace(0.0, math.log(4.0), 120))
    units = np.maximum(np.ceil(cs[:, None] * level[None, :] / cap - 1e-9), target.min_units)
    short = (v[None, :] > units * cap).astype(np.float64)
    cost = np.stack([np.bincount(group, weights=row, minlength=ng) for row in units])
    miss = np.stack([np.bincount(group, weights=row, minlength=ng) for row in short])
    budget = goal
    chosen: StrategyResult | None = None
    for _ in range(6):
        pick: np.ndarray | None = None
        best_cost = math.inf
        for lam in np.exp(np.linspace(math.log(1e-2), math.log(1e4), 300)):
            js = np.argmin(cost + lam * miss, axis=0)
            m = float(miss[js, np.arange(ng)].sum())
            c = float(cost[js, np.arange(ng)].sum())
            if m <= budget and c < best_cost:
                best_cost, pick = c, js
        if pick is None:
            break
        r = run(cs[pick][group])
        if r.underprovisioned_minutes <= goal:
            chosen = r
            break
        budget *= 0.8  # the simulator's continuous accounting counts a little more
    if chosen is not None:
        lines.append(
            f"clairvoyant level x per-group margins chosen in hindsight ({ng} groups: level "
            f"decile x recent-volatility tercile): {verdict(chosen)}"
        )
    r_log = _log_ratio(v, level)[v > 0]
    r_log = r_log - r_log.mean()
    lag = delay_steps
    acf = float(np.corrcoef(r_log[:-lag], r_log[lag:])[0, 1])
    a = np.abs(r_log) - np.abs(r_log).mean()
    acf_abs = float(np.corrcoef(a[:-lag], a[lag:])[0, 1])
    lines.append(
        f"noise around the level: log-sd {float(r_log.std()):.2f}; autocorrelation "
        f"{lag} min apart {acf:+.3f} (of its size: {acf_abs:+.3f}) — what the samples "
        f"before an order tell about the noise when it serves"
    )
    return lines


def forecast_quality(case: Case, leads: tuple[int, int] = (10, 25)) -> str:
    """How good the forecast is where orders are placed: every 15 minutes outside event
    windows, the forecaster (refitted daily, updated with new samples in between, as the
    simulator's strategy does) predicts ``leads`` minutes ahead (a 10-minute delay plus
    up to one forecast interval); against the samples that came, how often each band was
    exceeded, and how far its median was from the smooth level (the centred 61-minute
    median) — next to a plain trailing 60-minute level on the same profile."""
    spec = case.spec
    levels = (0.5, 0.9, spec.forecast.quantile)
    tr = case.trace
    t, v = tr.t, np.nan_to_num(tr.v, nan=0.0)
    level = _centred_level(v)
    quiet = np.ones(t.size, dtype=bool)
    for ev in case.calendar.events:
        quiet &= ~_around(ev, t)
    model = HeadroomForecaster(spec.forecast)
    lo, hi = leads
    fitted = upto = -math.inf
    exceeded = dict.fromkeys(levels, 0)
    errors: list[float] = []
    trailing: list[float] = []
    for now in np.arange(t[0] + 7 * DAY, t[-1] - 3600, 900.0):
        if now - fitted >= DAY:
            model.fit(tr.before(now), case.calendar)
            fitted = now
        else:
            model.update(tr.between(upto, now))
        upto = now
        fc = model.predict(now, hi * 60.0, 60.0, levels)
        i0 = int(np.searchsorted(t, now))
        idx = np.arange(i0 + lo, min(i0 + hi, t.size))
        idx = idx[quiet[idx] & (v[idx] > 0) & (level[idx] > 0)]
        if not idx.size:
            continue
        k = idx - i0
        for p in levels:
            exceeded[p] += int((v[idx] > fc.level(p)[k]).sum())
        errors += np.log(fc.level(0.5)[k] / level[idx]).tolist()
        base = model.baseline
        past = slice(max(0, i0 - 60), i0)
        resid = np.log(v[past] + base.floor) - base.profile.at(t[past])
        ok = quiet[past] & np.isfinite(resid)
        if int(ok.sum()) >= 10:
            mid = float(base.residual_quantile(t[idx], 0.5).mean())
            guess = np.exp(base.profile.at(t[idx]) + float(resid[ok].mean()) + mid) - base.floor
            trailing += np.log(np.maximum(guess, 1e-9) / level[idx]).tolist()

    def spread(e: list[float]) -> str:
        a = np.asarray(e)
        q25, q50, q75 = np.quantile(a, [0.25, 0.5, 0.75])
        return f"{(q75 - q25) / 1.349:.3f} (median {q50:+.3f})"

    n = len(errors)
    bands = ", ".join(f"p{round(p * 100)} {exceeded[p] / n:.1%}" for p in levels)
    return (
        f"forecast quality where orders are placed ({lo}-{hi - 1} min ahead, every 15 min "
        f"outside events, {n:,} samples): bands exceeded {bands}; error of the median "
        f"against the smooth level, in log (robust sd): {spread(errors)}, a trailing "
        f"60-minute level on the same profile {spread(trailing)}"
    )


def _local(epoch: float, tz: str) -> str:
    return datetime.fromtimestamp(epoch, tz=ZoneInfo(tz)).strftime("%m-%d %H:%M")


def misses(sim: Simulation, calendar: Calendar, tz: str, limit: int = 6) -> list[str]:
    """Headroom's underprovisioned stretches: when, how long, how short, which event."""
    r = sim.results["headroom"]
    t = sim.trace.t
    short = r.under_seconds > 0
    if not short.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], short.astype(np.int8), [0]))))
    runs = list(zip(edges[::2], edges[1::2], strict=True))
    rows = []
    for a, b in runs:
        minutes = float(r.under_seconds[a:b].sum()) / 60
        ready = r.ready_at(t[a:b])
        need = np.ceil(sim.trace.v[a:b] / sim.target.capacity_per_unit)
        gap = int(np.nanmax(need - ready))
        near = [e.name for e in calendar.between(t[a] - 3600, t[b - 1] + 3600)]
        rows.append((minutes, a, b, gap, near))
    rows.sort(key=lambda x: -x[0])
    out = []
    for minutes, a, b, gap, near in rows[:limit]:
        where = f"during/near {', '.join(near)}" if near else "no calendar event (unscheduled)"
        out.append(
            f"{_local(t[a], tz)}-{_local(t[b - 1] + 60, tz)[-5:]} ({tz}): {minutes:.0f} min, "
            f"up to {gap} unit(s) short, {where}"
        )
    if len(rows) > limit:
        rest = sum(x[0] for x in rows[limit:])
        out.append(f"... {len(rows) - limit} shorter stretches, {rest:.0f} min in total")
    return out


def event_table(sim: Simulation, calendar: Calendar, truth: dict[str, float]) -> list[str]:
    """Per event (ramp - 1 h to end + 3 h): what headroom paid and missed vs the others."""
    t = sim.trace.t
    res = sim.results
    lines = [
        "| event | declared | true size | headroom peak / unit-h / short min "
        "| oracle_at_slo peak / unit-h | reactive_hpa short min |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for ev in calendar.events:
        sel = _around(ev, t)
        if not sel.any():
            continue

        def cost(name: str, sel: np.ndarray = sel) -> tuple[int, float, float]:
            r = res[name]
            units = r.ordered_at(t[sel])
            return int(units.max()), float(units.sum()) / 60, float(r.under_seconds[sel].sum()) / 60

        hp, hu, hm = cost("headroom")
        op, ou, _ = cost("oracle_at_slo")
        _, _, am = cost("reactive_hpa")
        declared = "-"
        if ev.expectation is not None and ev.expectation.multiplier is not None:
            declared = f"x{ev.expectation.multiplier:g}"
        true = f"x{truth[ev.name]:g}" if ev.name in truth else "?"
        lines.append(
            f"| {ev.name} | {declared} | {true} | {hp} / {hu:,.0f} / {hm:.0f} "
            f"| {op} / {ou:,.0f} | {am:.0f} |"
        )
    return lines


def table(sim: Simulation) -> list[str]:
    lines = [
        "| strategy | underprovisioned min | shortfall requests | unit-hours | peak units "
        "| actions |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in sim.results.items():
        lines.append(
            f"| {name} | {r.underprovisioned_minutes:,.1f} | {r.shortfall_requests:,.0f} "
            f"| {r.unit_hours:,.1f} | {r.peak_units} | {r.actions} |"
        )
    return lines


def verdict(res: dict[str, StrategyResult]) -> tuple[list[str], bool, bool]:
    h, hpa, oracle = res["headroom"], res["reactive_hpa"], res["oracle"]
    under_ok = h.underprovisioned_minutes <= 0.1 * hpa.underprovisioned_minutes
    cost_ok = h.unit_hours <= hpa.unit_hours
    stretch = h.unit_hours / oracle.unit_hours
    ratio = (
        h.underprovisioned_minutes / hpa.underprovisioned_minutes
        if hpa.underprovisioned_minutes
        else float("inf")
    )
    lines = [
        f"- underprovisioned: headroom {h.underprovisioned_minutes:.1f} min = "
        f"{ratio:.1%} of reactive_hpa's {hpa.underprovisioned_minutes:.1f} min "
        f"(target <= 10 %): **{'met' if under_ok else 'missed'}**",
        f"- unit-hours: headroom {h.unit_hours:,.1f} vs reactive_hpa {hpa.unit_hours:,.1f} "
        f"({h.unit_hours / hpa.unit_hours:.2f}x, target <= 1): "
        f"**{'met' if cost_ok else 'missed'}**",
        f"- stretch: {stretch:.2f}x the oracle's unit-hours (target <= 1.3x; the oracle needs "
        f"no safety margin — `oracle_at_slo` sizes at the SLO's utilisation: "
        f"{h.unit_hours / res['oracle_at_slo'].unit_hours:.2f}x of it): "
        f"**{'met' if stretch <= 1.3 else 'missed'}**",
    ]
    return lines, under_ok, cost_ok


def _headline_row(case: Case, delay: float, fr: Frontier) -> str:
    order, ready = fr.headline("order"), fr.headline("ready")
    hpa = order.hpa

    def f(x: float | None) -> str:
        return "below the curve" if x is None else f"{x:,.0f}"

    share = f"{order.share:.1%}" if order.share is not None else "-"
    good = [p for p in fr.headroom if p.minutes <= 0.1 * hpa.minutes]
    best = min(good, key=lambda p: p.unit_hours) if good else None
    cheapest = (
        f"{best.label}: {best.minutes:.0f} min, {best.unit_hours / hpa.unit_hours:.2f}x, "
        f"{best.unit_hours / fr.oracle.unit_hours:.2f}x"
        if best is not None
        else "none"
    )
    return (
        f"| {case.name} | {delay / 60:g} min | {hpa.minutes:,.0f} / {hpa.unit_hours:,.0f} "
        f"| {f(order.headroom_at_hpa)}; {f(ready.headroom_at_hpa)} | {share} "
        f"| {f(order.hpa_at_headroom)} | {cheapest} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, 14-day traces")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    parser.add_argument("--cases", default="", help="only cases whose name contains this")
    parser.add_argument("--no-frontier", action="store_true", help="skip the frontier sweeps")
    args = parser.parse_args()
    seeds = (1,) if args.quick else (1, 2, 3)
    days = 14 if args.quick else 28
    cases = [
        *nasa_cases(),
        *(synthetic_case(s, days) for s in seeds),
        *(shaped_case(s, days) for s in seeds[:2]),
    ]
    cases = [c for c in cases if args.cases in c.name]
    delays = (600.0, 120.0)
    headlines: list[str] = [
        "| case | delay | reactive_hpa min / unit-hours | headroom's min at the hpa's "
        "unit-hours (order; ready) | share of the hpa's min | hpa's min at headroom's "
        "unit-hours | headroom's cheapest point with <= 10 % of the hpa's min "
        "(vs hpa, vs oracle unit-hours) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    body: list[str] = [
        "Each strategy replays the trace minute by minute and decides only from samples "
        "before its decision time (plus the calendar); all get the same provisioning delay "
        "(units ordered at t serve from t + delay; scale-in is immediate), the same bounds "
        "and the same starting units. `unit-hours` counts *ordered* units (paying starts "
        "at the order). `reactive_hpa` is the Kubernetes HPA v2 with its defaults (15 s "
        "sync, 10 % tolerance, scale-up max(100 %, 4 pods) per 15 s, 300 s scale-down "
        "window) on QPS per ready pod against the SLO's 80 % target; `oracle` is the "
        "cheapest schedule with no shortfall (perfect foresight), `oracle_at_slo` the "
        "same at the SLO's utilisation. Policy values: "
        f"`{POLICY_VALUES}` (set here as a user would; nothing in the engine knows the "
        "trace).",
        "",
        "One driver (issue 11): the control loop (`headroom demo`, the operator) and the "
        "simulator's `headroom` strategy now both run `headroom.policies.driver.Driver` "
        "(forecast cadence and cache, horizon from the spec, calendar filter, planner "
        "call, state), so this backtest replays what users run. Numbers before and after "
        "the change are identical in every case and delay (measured with the policy values of "
        "then, `duringEvents: hold`, which the `hold` row of each levers table "
        "repeats; e.g. NASA 87 / 2,592 min at "
        "3,842 / 2,385 unit-hours; generated 8/10/13 min at 3,944/3,545/3,468 unit-hours): "
        "the strategy already ran the sequence the driver now owns; what changed is the "
        "loop, which refitted the forecaster on every pass, forecast at a different "
        "horizon, and called the planner twice per target per pass (decide, then "
        "plan_target); it now forecasts on the simulator's cadence and calls the planner "
        "once (`plan_and_decide`). The horizon is now `max(forecast.horizon, reach)` for "
        "both (24 h by default; decisions depend only on the look-ahead window, so "
        "identical), and the forecaster sees the events selecting the policy "
        "(`eventSelector`), as the loop did (the bench's target has no labels).",
        "",
        "How headroom sizes (engine, not bench): the planner provisions "
        "`max(units for p50 at the SLO's target utilisation, units for p_q at 100 %)` — the "
        "utilisation margin is for latency at the *expected* demand, the forecast quantile "
        "for the *uncertainty*; applying both to p_q paid for both at once (25 % over p99). "
        "Residual quantiles are measured out of sample on the newest days of history "
        "(up to 7) against a profile fitted without them (NASA at 10-70 min ahead: p90 "
        "exceeded 17.9 % -> 10 % of minutes, p99 4.4 % -> 1.6 %). An event under way "
        "updates its learned uplift both ways (a Bayesian nowcast on the samples since its "
        "window opened) instead of only raising it; a host with only one or two past events "
        "takes, as the prior spread of its next event's size, the spread of every past "
        "event of the kind (a size seen once says little). A reactive guard in the planner's "
        "`decide` never orders fewer units than the newest *observed* sample needs at the "
        "SLO's target utilisation once it is more than 10 % above it (the HPA's tolerance), "
        "scaling out at once with no cooldown; scale-in stays with the forecast rules. The "
        "simulator runs the guard on every sample and the full forecast rule every 5 min.",
        "",
        "Why the 10-minute targets are not met together. Under each case two *clairvoyant "
        "margin references* know the future smooth level (a centred 61-minute median, so "
        "every event's true size too) and order with perfect timing, lacking only the "
        "minute-to-minute noise: one with a uniform margin, one with a margin per group of "
        "minutes (level decile x recent-volatility tercile) chosen in hindsight on the "
        "trace itself to spend the minute budget where it is cheapest. Neither is causal; "
        "both bound what a forecaster that sizes from the level can reach. On NASA "
        "(log-sd ~0.43 around the level) the uniform one needs 1.10x and the hindsight one "
        "1.02x reactive_hpa's unit-hours to stay within 10 % of its underprovisioned "
        "minutes, and the noise 10 minutes after an order is uncorrelated with the noise "
        "before it (autocorrelation -0.02; of its size +0.09): the samples a strategy has "
        "when it orders say nothing more about it. So the NASA pair is out of reach for "
        "any forecaster that sizes from the level and the recent volatility, not just this "
        "one. Nor is the forecaster the gap: where orders are placed (10-24 min ahead) its "
        "bands are calibrated (NASA: p50/p90/p99 exceeded 50.4/10.4/1.6 % of minutes) and its "
        "median is as close to the level as a trailing 60-minute level on the same profile "
        "(robust sd 0.18 in log on NASA, 0.03 on the generated traces; the `forecast "
        "quality` line under each case); the HPA is cheap because it lags and runs "
        "short (`oracle_at_slo` costs more than it). On the generated traces the "
        "references reach 0.96-0.98x: the level they know includes every livestream's true "
        "size, which a causal strategy cannot know 10 minutes before the start (sizes are "
        "drawn independently of the host from x1.8 to x5, and 20 minutes of a 30-minute "
        "ramp pin the size only to about +-50 %); to cover the step at the start it must "
        "order for the upper end of what the kind's past events allow, and the policy "
        "never scales in during an event, so that pre-scale is paid until the end.",
        "",
        "Tried and not kept (10-minute delay; `gen` = seeds 1/2/3): scaling "
        "in during events (against the policy's rule) 1.04/1.02/1.03x the HPA's "
        "unit-hours at 9.9/15.0/14.2 % of its minutes; sizing the look-ahead past the "
        "lead by the median, to order later "
        "with more of the ramp seen, 1.13/1.05/1.06x at 9.4/13.1/9.7 %; scale-in with no "
        "stabilisation, cooldown or step limit, NASA 1.59x, gen 1.06/1.02/1.03x with more "
        "minutes; quantile 0.97, NASA 236 min (9.1 %) at 1.36x, gen 9.4/18.8/18.1 % at "
        "1.09/1.04/1.04x. Kept: a host with one or two past events borrows the spread of "
        "its kind (every past event of the kind, other hosts included) as its prior: gen "
        "minutes 8.8/13.8/13.5 % -> 4.7/6.2/8.4 % of the HPA's, unit-hours "
        "1.12/1.05/1.06x -> 1.18/1.06/1.07x.",
        "",
    ]
    summary: list[str] = [
        "| case | delay | headroom / hpa underprov. min | headroom / hpa unit-hours "
        "| headroom / oracle unit-hours |",
        "|---|---:|---:|---:|---:|",
    ]
    started = time.perf_counter()
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True
    )
    with bar:
        task = bar.add_task("backtest", total=len(cases) * len(delays))
        for case in cases:
            tz = case.calendar.events[0].tz if case.calendar.events else "UTC"
            body += [f"### {case.name}", "", case.note, ""]
            for delay in delays:
                bar.update(task, description=f"{case.name}, delay {delay / 60:g} min")
                t1 = time.perf_counter()
                sim = run_case(case, delay)
                took = time.perf_counter() - t1
                res = dict(sim.results)
                lines, _, _ = verdict(res)
                body += [
                    f"**Provisioning delay {delay / 60:g} min** (replayed in {took:.1f} s)",
                    "",
                ]
                body += table(sim) + [""]
                if delay == 600.0:
                    refs = margin_references(case, delay, res["reactive_hpa"])
                    refs.append(forecast_quality(case))
                    body += lines + [f"- {line}" for line in refs] + [""]
                    if case is cases[0] or case is cases[2]:
                        body += ["Forecast quantile sweep (same delay, other values equal):", ""]
                        body += sweep(case, delay, sim) + [""]
                if delay == 600.0:
                    body += ["Levers (same delay, single runs):", ""]
                    body += levers(case, delay) + [""]
                if not args.no_frontier:
                    lines_fr, fr = frontier_section(case, delay)
                    body += lines_fr
                    headlines.append(_headline_row(case, delay, fr))
                body += ["Per event (from 1 h before the ramp to 3 h after the end):", ""]
                body += event_table(sim, case.calendar, case.truth) + [""]
                miss = misses(sim, case.calendar, tz)
                if miss:
                    body += ["headroom's underprovisioned stretches (longest first):", ""]
                    body += [f"- {m}" for m in miss] + [""]
                h, hpa, oracle = res["headroom"], res["reactive_hpa"], res["oracle"]
                summary.append(
                    f"| {case.name} | {delay / 60:g} min "
                    f"| {h.underprovisioned_minutes:.0f} / {hpa.underprovisioned_minutes:.0f} "
                    f"| {h.unit_hours:,.0f} / {hpa.unit_hours:,.0f} "
                    f"| {h.unit_hours / oracle.unit_hours:.2f}x |"
                )
                print(
                    f"{case.name} delay={delay:g}s took={took:.1f}s "
                    + " ".join(
                        f"{n}=({r.underprovisioned_minutes:.0f}min,{r.unit_hours:.0f}uh)"
                        for n, r in res.items()
                    ),
                    flush=True,
                )
                bar.advance(task)
    text = "\n".join(
        [
            "Summary:",
            "",
            *summary,
            "",
            "Frontier headline: at the same bill, who runs short less (issue 11 target at "
            "10 min: headroom <= 10 % of the hpa's minutes at the hpa's unit-hours; stretch: "
            "that point at <= 1.3x the oracle's unit-hours):",
            "",
            *headlines,
            "",
            ANALYSIS,
            "",
            *body,
            f"Total run time {time.perf_counter() - started:.0f} s.",
        ]
    )
    if args.no_write:
        print(text)
    else:
        path = write_section("backtest", "Backtest: headroom vs reactive HPA, static, oracle", text)
        print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
