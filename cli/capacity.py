"""`headroom capacity`: learn the QPS one unit serves at the p99 SLO from measured metrics.

Thin over ``headroom.policies.capacity_learning.learn_capacity`` (the function the
operator uses) fed by a signal source: Prometheus per-instance series
(``--prometheus URL``) or the Redis INFO source's recorded per-master history
(``--redis SEED``, optionally sampling live for ``--sample-seconds`` first).
SLO, declared capacity and Prometheus URL come from ``--policy`` when given;
explicit options win.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from headroom.cli._common import (
    EXIT_INPUT,
    ChartOpt,
    JsonOpt,
    PolicyTargetOpt,
    console,
    duration_option,
    errors_to_exit,
    fail,
    print_json,
    pyplot,
    save_figure,
)
from headroom.cli.policy import read_policy
from headroom.controller.signals import prometheus as prom
from headroom.controller.signals import redis_info, redis_samples
from headroom.controller.signals.base import Metric, Unavailable
from headroom.policies.capacity_learning import CapacityEstimate, learn_capacity

app = typer.Typer(help="Learn per-unit capacity from metrics.", no_args_is_help=True)


def default_history_path(seed: str) -> Path:
    """Where ``--redis SEED`` keeps its INFO history unless ``--history`` says otherwise."""
    return Path.home() / ".local" / "state" / "headroom" / f"redis-{seed.replace(':', '_')}.json"


@app.command("learn")
def learn(
    prometheus: Annotated[
        str | None, typer.Option("--prometheus", help="Prometheus base URL.")
    ] = None,
    redis: Annotated[
        str | None, typer.Option("--redis", help="Redis seed HOST:PORT (INFO history).")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="CapacityPolicy YAML: SLO, declared capacity.")
    ] = None,
    target: PolicyTargetOpt = None,
    slo_ms: Annotated[float | None, typer.Option("--slo-ms", help="p99 SLO in ms.")] = None,
    declared: Annotated[
        float | None, typer.Option("--declared", help="Declared QPS per unit (fallback).")
    ] = None,
    preset: Annotated[
        str, typer.Option("--preset", help="Default PromQL set: redis or http.")
    ] = "redis",
    query_qps: Annotated[
        str | None, typer.Option("--query", help="Per-unit QPS PromQL ($by, $window tokens).")
    ] = None,
    query_p99: Annotated[
        str | None, typer.Option("--query-p99", help="Per-unit p99 PromQL (seconds).")
    ] = None,
    window: Annotated[str | None, typer.Option("--window", help="Rate window, e.g. 1m.")] = None,
    since: Annotated[str, typer.Option("--since", help="How much history to read.")] = "6h",
    step: Annotated[int, typer.Option("--step", help="Range step in seconds.")] = 15,
    history: Annotated[
        Path | None, typer.Option("--history", help="Redis INFO history file (JSON).")
    ] = None,
    sample_seconds: Annotated[
        float, typer.Option("--sample-seconds", help="With --redis: sample live this long first.")
    ] = 0.0,
    chart: ChartOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Estimate the QPS one unit serves before p99 crosses the SLO, with the evidence."""
    with errors_to_exit():
        if prometheus and redis:
            fail("give one of --prometheus URL or --redis SEED, not both", EXIT_INPUT)
        if not (prometheus or redis or policy):
            fail("give --prometheus URL, --redis SEED or --policy FILE", EXIT_INPUT)
        spec = read_policy(policy) if policy else None
        if spec is not None:
            chosen = next((t for t in spec.targets if target in (None, t.name)), None)
            if chosen is None:
                fail(f"{policy}: no target named {target!r}", EXIT_INPUT)
            slo_ms = slo_ms if slo_ms is not None else spec.slo.latency_p99_ms
            declared = declared if declared is not None else chosen.capacity_per_unit
            if prometheus is None and redis is None:
                prometheus = spec.metrics.qps.url
                if prometheus is None:
                    fail(f"{policy}: metrics.qps.url is not set; pass --prometheus", EXIT_INPUT)
        if slo_ms is None or slo_ms <= 0:
            fail("--slo-ms (or --policy with slo.latencyP99Ms) is required and > 0", EXIT_INPUT)

        source_desc: str
        if prometheus is not None:
            if preset not in prom.PRESETS:
                fail(f"--preset: {preset!r} is not one of {', '.join(prom.PRESETS)}", EXIT_INPUT)
            overrides: dict[Metric, str] = {}
            if query_qps:
                overrides[Metric.QPS] = query_qps
            if query_p99:
                overrides[Metric.P99_LATENCY] = query_p99
            extra = {"window": window} if window else {}
            queries = prom.PRESETS[preset].override(overrides, **extra)
            source = prom.PrometheusSource.connect(prometheus, queries=queries, timeout=30.0)
            end = time.time()
            pairs = prom.unit_pairs(source, end - duration_option(since, "--since"), end, step)
            if isinstance(pairs, Unavailable):
                raise pairs.error()
            source_desc = f"prometheus {prometheus} (last {since}, step {step}s)"
        else:
            assert redis is not None
            path = history or default_history_path(redis)
            info = redis_info.RedisInfoSource(redis, history_file=path)
            if sample_seconds > 0:
                info.start(interval=1.0)
                try:
                    with Progress(transient=True, console=console) as progress:
                        task = progress.add_task("Sampling Redis INFO", total=sample_seconds)
                        t0 = time.monotonic()
                        while (done := time.monotonic() - t0) < sample_seconds:
                            progress.update(task, completed=done)
                            time.sleep(0.2)
                finally:
                    info.stop()
            elif not path.exists():
                fail(f"{path}: no Redis INFO history; pass --sample-seconds or --history")
            pairs = redis_samples.unit_pairs(info.node_samples())
            source_desc = f"redis INFO history {path}"
        estimate = learn_capacity(pairs[0], pairs[1], slo_ms / 1000.0, declared=declared)
        if chart is not None:
            write_chart(chart, pairs[0], pairs[1], estimate)
        if as_json:
            print_json({"source": source_desc, "estimate": estimate.to_json()})
            return
        show(estimate, source_desc, chart)


def show(est: CapacityEstimate, source: str, chart: Path | None) -> None:
    value = f"{est.qps_per_unit:,.0f} QPS per unit" if est.qps_per_unit else "unknown"
    console.print(f"[bold]{value}[/] at p99 <= {est.slo_seconds * 1000:g} ms  ({source})")
    learned = f"{est.learned:,.0f}" if est.learned else "-"
    declared = f"{est.declared:,.0f}" if est.declared else "-"
    console.print(
        f"method={est.method} confidence={est.confidence} learned={learned} "
        f"declared={declared} crossed={est.crossed} points={est.points} "
        f"near={est.points_near} max_seen={est.max_observed_qps:,.0f}"
    )
    console.print(est.reason)
    if est.bins:
        table = Table("QPS bin", "points", "median p99 ms", "fitted p99 ms")
        for b in est.bins:
            table.add_row(
                f"{b.qps_lo:,.0f}-{b.qps_hi:,.0f}",
                str(b.count),
                f"{b.p99_median * 1000:.3f}",
                f"{b.p99_fitted * 1000:.3f}",
            )
        console.print(table)
    if chart:
        console.print(f"chart: {chart}")


def write_chart(path: Path, qps: list[float], p99: list[float], est: CapacityEstimate) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(8, 5))
    ax.scatter(qps, [v * 1000 for v in p99], s=8, alpha=0.4, label="samples (per unit)")
    if est.bins:
        ax.plot(
            [b.qps_median for b in est.bins],
            [b.p99_fitted * 1000 for b in est.bins],
            color="black",
            label="monotone fit of bin medians",
        )
    ax.axhline(est.slo_seconds * 1000, color="red", linestyle="--", label="SLO")
    if est.qps_per_unit:
        ax.axvline(est.qps_per_unit, color="green", label=f"capacity ({est.method})")
    ax.set_xlabel("QPS per unit")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(f"Learned capacity: {est.reason}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
