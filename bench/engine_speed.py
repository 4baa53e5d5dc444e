"""Engine speed: forecast + plan for 1,000 targets, each with 28 days of 1-minute history.

The operator plans every target on every pass, so this is the number that bounds how many
targets one replica can serve. Each target gets its own history (a shared daily/weekly
shape, its own scale and noise, the same livestreams) and its own Target; we time
``HeadroomForecaster.fit_many`` (the batch fit of a control-loop pass; also one ``fit`` per
target, for comparison) + ``predict`` (24 h at 1-minute steps, p50/p90/p99, and at 5-minute
steps) + the rule that runs for each (``policies.combined.TargetRule``: the decision now and
its plan ahead, as the driver calls them on a pass: built cold, then kept for the next pass
15 s later, and for the pass after with the measured level moved 1 %), and generate the
data outside the timed region.

Peer: statsmodels' Holt-Winters (``ExponentialSmoothing``, multiplicative daily season)
on the same histories. On 1-minute data (season = 1440) one fit takes over a minute, so it
runs on 15-minute means (season = 96); we report its fit+forecast time per target and the
next-day error of both models on a few targets.

Run: ``.venv/bin/python bench/engine_speed.py [--targets 1000] [--repeat 2] [--peer-series 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from rich.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `bench` importable
    sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402
from headroom.policies.calendar import Calendar, DemandEvent, EventKind  # noqa: E402
from headroom.policies.combined import TargetRule  # noqa: E402
from headroom.policies.forecast.base import Forecast  # noqa: E402
from headroom.policies.forecast.model import HeadroomForecaster  # noqa: E402
from headroom.policies.measured import anchor_of  # noqa: E402
from headroom.policies.planner.values import PlannerState  # noqa: E402
from headroom.policies.policy import PolicySpec, Target  # noqa: E402
from headroom.policies.series import Series  # noqa: E402
from headroom.policies.synthetic import generate_trace  # noqa: E402

DAY = 86400.0
HOUR = 3600.0
START = 1_700_438_400.0  # a Monday, 00:00 UTC
DAYS = 28


def _calendar() -> Calendar:
    events = [
        DemandEvent(
            f"show {d}",
            EventKind.LIVESTREAM,
            START + d * DAY + 20 * HOUR,
            START + d * DAY + 22 * HOUR,
            ramp=1800,
            labels={"host": "big"},
        )
        for d in (3, 10, 17, 24, DAYS)
    ]
    return Calendar.of(events)


def _spec(targets: int) -> PolicySpec:
    return PolicySpec.model_validate(
        {
            "name": "bench",
            "targets": [
                {
                    "name": f"t{i:04d}",
                    "capacityPerUnit": 500.0,
                    "minUnits": 2,
                    "maxUnits": 200,
                    "maxStep": 10,
                    "provisioning": {"fixedSeconds": "10m"},
                }
                for i in range(targets)
            ],
            "forecast": {"quantile": 0.9, "horizon": "1d"},
        }
    )


def _target_histories(base: Series, targets: int) -> list[Series]:
    """Each target's own history: the shared shape at its own scale and noise."""
    rng = np.random.default_rng(7)
    return [
        Series(base.t, base.v * rng.uniform(0.5, 5.0) * np.exp(rng.normal(0, 0.08, base.v.size)))
        for _ in range(targets)
    ]


def rule_pass(
    spec: PolicySpec,
    target: Target,
    forecast: Forecast,
    history: Series,
    calendar: Calendar,
    now: float,
    rule: TargetRule | None = None,
    level: float = 1.0,
) -> TargetRule:
    """One pass of the rule for one target: the decision now and the plan ahead (with
    ``rule``: the one kept from the pass before, as the operator keeps it; ``level``: the
    newest samples moved by this factor, as a new sample moves the measured level)."""
    rule = rule or TargetRule(spec, target)
    t, v = history.t[-3:], history.v[-3:] * level
    anchor = anchor_of(t, v)

    def since(start: float) -> Series:
        i = int(np.searchsorted(history.t, start, side="left"))
        return Series(history.t[i:], history.v[i:])

    state = PlannerState()
    result = rule.decide(
        now, units=2, ready=2, observed=float(v[-1]), anchor=anchor, forecast=forecast,
        calendar=calendar, state=state, dt=15.0, since=since, seen=(t.size, float(now)),
    )  # fmt: skip
    rule.plan_ahead(
        forecast, now, units=2, decided=result.decision.desired_units, anchor=anchor,
        since=since, state=state,
    )  # fmt: skip
    return rule


def run_headroom(targets: int, step: float = 60.0, batch: bool = True) -> dict[str, float]:
    """Fit and predict (``fit_many`` + ``predict_many``, or one ``fit`` and ``predict`` per
    target with ``batch=False``), then the rule's decision and plan ahead per target.

    Wall and process CPU time per stage; the CPU time is the steadier figure on a machine
    other jobs share (it still rises with them: they share caches and cores)."""
    base = generate_trace(START, DAYS, 60, 1000, list(_calendar().events)[:4], noise=0.0, seed=1)
    calendar = _calendar()
    spec = _spec(targets)
    now = START + DAYS * DAY
    histories = _target_histories(base, targets)  # outside the timed region
    per_target: list[float] = []
    with Progress(transient=True) as progress:
        task = progress.add_task(f"planning targets ({step:g} s steps)", total=2 * targets)
        c0, t0 = time.process_time(), time.perf_counter()
        if batch:
            models = HeadroomForecaster.fit_many(histories, calendar, spec.forecast)
            progress.advance(task, targets)
        else:
            models = []
            for history in histories:
                models.append(HeadroomForecaster(spec.forecast).fit(history, calendar))
                progress.advance(task)
        fit_cpu, fit_s = time.process_time() - c0, time.perf_counter() - t0
        c1, t1 = time.process_time(), time.perf_counter()
        horizon, levels = spec.forecast.horizon, (0.5, 0.9, 0.99)
        if batch:
            forecasts = HeadroomForecaster.predict_many(models, now, horizon, step, levels)
        else:
            forecasts = [model.predict(now, horizon, step, levels) for model in models]
        predict_cpu, predict_s = time.process_time() - c1, time.perf_counter() - t1
        plan_s = plan_cpu = 0.0
        rules: list[TargetRule] = []
        for fc, target, history in zip(forecasts, spec.targets, histories, strict=True):
            c2, t2 = time.process_time(), time.perf_counter()
            rules.append(rule_pass(spec, target, fc, history, calendar, now))
            c3, t3 = time.process_time(), time.perf_counter()
            plan_s += t3 - t2
            plan_cpu += c3 - c2
            per_target.append((fit_s + predict_s) / targets + t3 - t2)
            progress.advance(task)
        # The next pass, 15 s later, with the rules kept (what the operator pays each pass).
        c4, t4 = time.process_time(), time.perf_counter()
        for fc, target, history, rule in zip(
            forecasts, spec.targets, histories, rules, strict=True
        ):
            rule_pass(spec, target, fc, history, calendar, now + 15.0, rule)
        warm_cpu, warm_s = time.process_time() - c4, time.perf_counter() - t4
        # The pass after, 15 s later, with the newest samples 1 % higher: the needs and the
        # demand move with the measured level, so the rules reuse little of the last plan.
        c5, t5 = time.process_time(), time.perf_counter()
        for fc, target, history, rule in zip(
            forecasts, spec.targets, histories, rules, strict=True
        ):
            rule_pass(spec, target, fc, history, calendar, now + 30.0, rule, level=1.01)
        moved_cpu, moved_s = time.process_time() - c5, time.perf_counter() - t5
    return {
        "targets": targets,
        "total_s": fit_s + predict_s + plan_s,
        "cpu_s": fit_cpu + predict_cpu + plan_cpu,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "plan_s": plan_s,
        "fit_cpu": fit_cpu,
        "predict_cpu": predict_cpu,
        "plan_cpu": plan_cpu,
        "warm_s": warm_s,
        "warm_cpu": warm_cpu,
        "moved_s": moved_s,
        "moved_cpu": moved_cpu,
        "median_ms": statistics.median(per_target) * 1000,
        "p99_ms": float(np.quantile(per_target, 0.99)) * 1000,
    }


def run_peer(series: int) -> dict[str, float]:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    truth_days = DAYS + 1
    base = generate_trace(START, truth_days, 60, 1000, noise=0.0, seed=2)
    rng = np.random.default_rng(11)
    hw_s: list[float] = []
    ours_s: list[float] = []
    hw_err: list[float] = []
    ours_err: list[float] = []
    cut = int(DAYS * 1440)
    for _ in range(series):
        v = base.v * rng.uniform(0.5, 5.0) * np.exp(rng.normal(0, 0.08, base.v.size))
        hist, future = v[:cut], v[cut:]
        agg = hist.reshape(-1, 15).mean(axis=1)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter from the optimiser
            hw = ExponentialSmoothing(
                agg, seasonal="mul", seasonal_periods=96, initialization_method="estimated"
            ).fit()
            hw_fc = np.repeat(hw.forecast(96), 15)
        hw_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model = HeadroomForecaster().fit(Series(base.t[:cut], hist), Calendar())
        ours_fc = model.predict(float(base.t[cut]), DAY, 60.0).level(0.5)
        ours_s.append(time.perf_counter() - t0)
        hw_err.append(float(np.median(np.abs(hw_fc / future - 1))))
        ours_err.append(float(np.median(np.abs(ours_fc / future - 1))))
    return {
        "series": series,
        "hw_ms": statistics.median(hw_s) * 1000,
        "ours_ms": statistics.median(ours_s) * 1000,
        "hw_err": statistics.mean(hw_err),
        "ours_err": statistics.mean(ours_err),
    }


def _load() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the least wall time (the one other jobs on the machine disturbed least)."""
    return min(runs, key=lambda r: r["total_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--peer-series", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=2, help="Runs per configuration (best kept)")
    parser.add_argument("--no-write", action="store_true", help="Do not update BENCHMARKS.md")
    args = parser.parse_args()

    load_before = _load()
    n, reps = args.targets, max(1, args.repeat)
    batch_runs: list[dict[str, float]] = []
    single_runs: list[dict[str, float]] = []
    coarse_runs: list[dict[str, float]] = []
    for _ in range(reps):  # interleaved: a burst of other work on the machine hits all three
        batch_runs.append(run_headroom(n))
        coarse_runs.append(run_headroom(n, step=300.0))
        single_runs.append(run_headroom(n, batch=False))
    load_after = _load()
    ours, single, coarse = _best(batch_runs), _best(single_runs), _best(coarse_runs)
    peer = run_peer(args.peer_series)

    def ms(run: dict[str, float], key: str) -> str:
        return f"{run[key] / run['targets'] * 1000:.2f} ms"

    def walls(runs: list[dict[str, float]]) -> str:
        return ", ".join(f"{r['total_s']:.2f} s" for r in runs)

    def row(name: str, run: dict[str, float], stage: str, note: str = "") -> str:
        wall, cpu = run[f"{stage}_s"], run[f"{stage}_cpu" if stage != "total" else "cpu_s"]
        return f"| {name} | {wall:.2f} s | {cpu:.2f} s | {ms(run, f'{stage}_s')}{note} |"

    table = "\n".join(
        [
            "| stage | wall | process CPU | wall per target |",
            "|---|---:|---:|---:|",
            row("`HeadroomForecaster.fit_many`", ours, "fit"),
            row("`HeadroomForecaster.predict_many` (1,440 steps)", ours, "predict"),
            row("the rule (decide + plan ahead), built cold", ours, "plan"),
            row("the rule, next pass (rules kept, as the operator keeps them)", ours, "warm"),
            row("the rule, the pass after, the measured level moved 1 %", ours, "moved"),
            row(
                "**all**",
                ours,
                "total",
                f" (median {ours['median_ms']:.2f} ms, p99 {ours['p99_ms']:.2f} ms)",
            ),
            row("one `fit` per target instead", single, "fit"),
            row("one `predict` per target instead", single, "predict"),
            row("all, one by one", single, "total"),
        ]
    )
    limit = 2.0 * n / 1000
    old_planner = 0.65 * n / 1000  # plan_target's time until session 9
    warm_verdict = "meets" if ours["warm_cpu"] <= old_planner else "misses"
    moved_verdict = "meets" if ours["moved_cpu"] <= old_planner else "misses"
    verdict = "meets" if ours["total_s"] < limit else "misses"
    cpu_verdict = "meets" if ours["cpu_s"] < limit else "misses"
    body = f"""
Forecast (fit + 24 h prediction at 1-minute steps, p50/p90/p99) and plan for
**{ours["targets"]:,} targets**, each with its own 28 days of 1-minute history (40,320
samples) and a calendar of livestreams; data generation is outside the timed region.
Fit and predict are the batch API a control-loop pass uses,
`HeadroomForecaster.fit_many(histories, calendar, spec)` and
`HeadroomForecaster.predict_many(models, now, horizon, step)`: histories scraped at the
same times share the work that depends on the times alone (blocks, local-time bins,
hourly bins, event windows, profile stencils, gap-free weights), with results equal to
one `fit` / `predict` each (tested bitwise); then the rule's decision and plan ahead per
target (`TargetRule.decide` + `plan_ahead`, as a pass calls them). Best of
{reps} runs per row.

{table}

The rule's rows time what runs since session 9: the combined rule's decision and its plan
ahead (a 24-hour projection at the forecast's 1-minute steps). Built cold, a rule first
learns every past event's size; the operator keeps its rules between passes, so its pass
costs the second row, or the third when a new sample moved the level. Until session 9
the rule's row timed the old planner's `plan_target` (0.65 s for 1,000 targets), which no
longer runs. The rule took 13.2 s here in session 9 (13 ms a target, most of it
per-position sizing in Python); session 10 made the look-ahead columnar (numpy arrays
from the positions to the projection; rows are built only for the few positions a
decision walks), memoised the change delays and replaced a masked-array rolling median,
with decisions and plans unchanged (the same 160 decisions, plans and reasons bit for
bit, and the same backtest), still above the old planner's 0.65 s.
Session 12 made the projection's order passes one 2-D pass over all distinct needs, walks
scale-in only where units drop and writes actions only where they change, with plans
unchanged (the same 300-target fingerprint of decisions, plans and reasons): 16 % less CPU
for the projection (1.26 -> 1.05 ms a plan, best of 12 interleaved runs of the two
versions in one process, at load 2-4).

Session 13 cut the rule's own work, with decisions and plans unchanged (the same
fingerprint of 2,250 decisions and plans, 250 targets over nine passes each, bit for bit;
the same 1,600 driver ticks with plans through a livestream, three kinds of target): the
decision's look-ahead runs on columns (no rows built and walked in Python); an event's
size and window are kept until the next event is learned, and learning reads only an
event's own windows, not every sample since; change delays are shared by the targets
configured alike; and a rule keeps its plan's last schedule (the orders and the scale-in
walk) and its orders' text, which the next pass reuses when their inputs are equal (the
times, the needs in whole units, the reactive needs and the decision; for the text also
the demand, utilisations and events the orders read; an order now is written anew): a
kept rule holds 85 KB instead of 53 (tracemalloc, 200 of these targets). The two versions
interleaved on this bench's inputs (best of 3 runs each, 1,000 targets, load 2.5-2.8,
process CPU): built cold 2.21 -> 1.68 s, next pass 1.13 -> 0.27 s, the pass after with the
level moved 1 % 1.18 -> 0.96 s. Compare versions by such interleaved runs, not by tables
of different runs: the machine's speed drifts with its load (the fit, unchanged since,
took 1.36 s in session 11's table and {ours["fit_cpu"]:.2f} s CPU in this one).

Session 14 cut the pass after a level move, with decisions and plans unchanged (the same
fingerprint of 2,250 decisions and plans, bit for bit; the same backtest decisions and
reasons on NASA-HTTP STS-70 with 5- and 45-minute changes): the order pass looks only at
the positions with a greater need within the longest delay's reach (a block bound; about
4 % of a day's positions, mostly an event's) and finds each need's first position by
counting, not by a 2-D pass over every position (the same orders as their definition on
random needs, times and delays: a test); the scale-in looks only within a window after
each drop; a planned order's reason is written when it is first read (the operator's
status reads 5 of a plan's 19 or so); the events' sizing reads slices of the sorted
times, not masks; the decision's look-ahead weighs only the needs above the first; the
delays' table is kept per delay function and unit counts. The two versions interleaved
on this bench's inputs (best of 3 runs each, 1,000 targets, load 2.8-3.1, process CPU):
built cold 1.59 -> 1.15 s, next pass 0.31 -> 0.22 s, the pass after with the level moved
1 % 0.97 -> 0.49 s.

Against the old planner's 0.65 s for 1,000 targets (issue 20's "engine speed not
worse"): the next pass as the second row times it (the same forecast and samples, 15 s
later) **{warm_verdict}** it ({ours["warm_cpu"]:.2f} s CPU), mostly by reuse; a pass whose
new sample moves the measured level (the third row: needs and demand move, so little is
reused; what an operator pays when a sample arrives between forecasts)
**{moved_verdict}** it ({ours["moved_cpu"]:.2f} s CPU). Such a pass is now spread over the
plan's order pass (about a quarter), its orders, the positions it sizes and the decision,
most of it numpy's cost per call on arrays of a day's positions.

Target: 1,000 targets in under 2 s — wall time **{verdict}** it at 1-minute forecast steps
(runs: {walls(batch_runs)}); process CPU time **{cpu_verdict}** it. Before the batch API
and the fit/plan work of issue 6's speed round, the same run took 6.18 s (fit 3.27 s,
predict 0.81 s, plan 2.09 s; load 3.4). With 5-minute steps (288 per day; the
simulator's `headroom` strategy decides every 5 minutes) the same work takes
**{coarse["total_s"]:.2f} s** wall, {coarse["cpu_s"]:.2f} s CPU (fit {coarse["fit_s"]:.2f} s,
predict {coarse["predict_s"]:.2f} s, plan {coarse["plan_s"]:.2f} s; runs: {walls(coarse_runs)}).
Load average at the start: {load_before}; at the end: {load_after} (2 cores, shared with
other engineers' test runs: when the load is above 2 the wall time is well above the CPU
time).

Peer, same machine, {peer["series"]} of the same kind of histories (no events):
statsmodels `ExponentialSmoothing` (multiplicative daily season) needs the history cut to
15-minute means (season 96; with 1-minute data, season 1440, a single fit took about 70 s
here), and then takes **{peer["hw_ms"]:.0f} ms** per series for fit + forecast, against
**{peer["ours_ms"]:.2f} ms** for Headroom's fit + predict on the full 1-minute data
(**{peer["hw_ms"] / peer["ours_ms"]:.0f}x**). Next-day median absolute error of the p50 /
point forecast: Headroom {peer["ours_err"]:.1%}, Holt-Winters {peer["hw_err"]:.1%} (noise
alone is ~5.4%: log-sd 0.08).
"""
    print(body)
    if not args.no_write:
        path = write_section("engine_speed", "Engine speed: forecast + plan, 1,000 targets", body)
        print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
