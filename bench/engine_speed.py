"""Engine speed: forecast + plan for 1,000 targets, each with 28 days of 1-minute history.

The operator plans every target on every pass, so this is the number that bounds how many
targets one replica can serve. Each target gets its own history (a shared daily/weekly
shape, its own scale and noise, the same livestreams) and its own Target; we time
``HeadroomForecaster.fit`` + ``predict`` (24 h at 1-minute steps, p50/p90/p99) +
``planner.plan_target`` for each, and generate the data outside the timed region.

Peer: statsmodels' Holt-Winters (``ExponentialSmoothing``, multiplicative daily season)
on the same histories. On 1-minute data (season = 1440) one fit takes over a minute, so it
runs on 15-minute means (season = 96); we report its fit+forecast time per target and the
next-day error of both models on a few targets.

Run: ``.venv/bin/python bench/engine_speed.py [--targets 1000] [--peer-series 5]``.
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
from headroom.policies.forecast.model import HeadroomForecaster  # noqa: E402
from headroom.policies.planner import plan_target  # noqa: E402
from headroom.policies.policy import PolicySpec  # noqa: E402
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


def run_headroom(targets: int, step: float = 60.0, batch: bool = True) -> dict[str, float]:
    """Fit (``fit_many``, or one ``fit`` per target with ``batch=False``), predict, plan."""
    base = generate_trace(START, DAYS, 60, 1000, list(_calendar().events)[:4], noise=0.0, seed=1)
    calendar = _calendar()
    spec = _spec(targets)
    now = START + DAYS * DAY
    histories = _target_histories(base, targets)  # outside the timed region
    per_target: list[float] = []
    with Progress(transient=True) as progress:
        task = progress.add_task(f"planning targets ({step:g} s steps)", total=2 * targets)
        c0 = time.process_time()
        t0 = time.perf_counter()
        if batch:
            models = HeadroomForecaster.fit_many(histories, calendar, spec.forecast)
            progress.advance(task, targets)
        else:
            models = []
            for history in histories:
                models.append(HeadroomForecaster(spec.forecast).fit(history, calendar))
                progress.advance(task)
        t1 = time.perf_counter()
        fit_s = t1 - t0
        predict_s = plan_s = 0.0
        for model, target in zip(models, spec.targets, strict=True):
            t1 = time.perf_counter()
            fc = model.predict(now, spec.forecast.horizon, step, (0.5, 0.9, 0.99))
            t2 = time.perf_counter()
            plan_target(fc, spec, target, now=now, current_units=2, calendar=calendar)
            t3 = time.perf_counter()
            predict_s += t2 - t1
            plan_s += t3 - t2
            per_target.append(fit_s / targets + t3 - t1)
            progress.advance(task)
        cpu = time.process_time() - c0
    return {
        "targets": targets,
        "total_s": fit_s + predict_s + plan_s,
        "cpu_s": cpu,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "plan_s": plan_s,
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--peer-series", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="Do not update BENCHMARKS.md")
    args = parser.parse_args()

    load_before = _load()
    ours = run_headroom(args.targets)
    coarse = run_headroom(args.targets, step=300.0)
    peer = run_peer(args.peer_series)

    def ms(run: dict[str, float], key: str) -> str:
        return f"{run[key] / run['targets'] * 1000:.2f} ms"

    verdict = "meets" if ours["total_s"] < 2.0 * args.targets / 1000 else "misses"
    body = f"""
Forecast (fit + 24 h prediction at 1-minute steps, p50/p90/p99) and plan for
**{ours["targets"]:,} targets**, each with its own 28 days of 1-minute history (40,320
samples) and a calendar of livestreams; data generation is outside the timed region.

| stage | total | per target |
|---|---:|---:|
| `HeadroomForecaster.fit` | {ours["fit_s"]:.2f} s | {ms(ours, "fit_s")} |
| `predict` (1,440 steps) | {ours["predict_s"]:.2f} s | {ms(ours, "predict_s")} |
| `plan_target` | {ours["plan_s"]:.2f} s | {ms(ours, "plan_s")} |
| **all** (wall) | **{ours["total_s"]:.2f} s** | {ms(ours, "total_s")} (median \
{ours["median_ms"]:.2f} ms, p99 {ours["p99_ms"]:.2f} ms) |
| all (process CPU time) | {ours["cpu_s"]:.2f} s | {ms(ours, "cpu_s")} |

Target: 1,000 targets in under 2 s — **{verdict}** it at 1-minute forecast steps. With
5-minute steps (288 per day; what an operator pass needs) the same work takes
**{coarse["total_s"]:.2f} s** (fit {coarse["fit_s"]:.2f} s, predict {coarse["predict_s"]:.2f} s,
plan {coarse["plan_s"]:.2f} s). Load average when the run started: {load_before} (2 cores,
shared with other test runs; the CPU-time row is the less noisy figure).

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
