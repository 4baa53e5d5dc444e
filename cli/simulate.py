"""`headroom simulate`: causal backtest of Headroom against reactive and static baselines.

A thin command over :func:`headroom.policies.baselines.suite.backtest`: it reads the
trace (``--trace``, or the policy's own ``csv`` demand source, found through
:mod:`headroom.controller.assembly` as the operator finds its sources), calendar and
policy files, replays the trace under ``headroom``, ``reactive_hpa``, ``static_peak``
and ``oracle`` with one provisioning-delay model, and prints a table, one JSON object
(``--json``, the contract in DESIGN.md) and/or a PNG chart (``--chart``). A progress
bar shows on a terminal, never in ``--json`` mode.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from headroom.cli._common import (
    EXIT_INPUT,
    console,
    errors_to_exit,
    fail,
    print_json,
    save_figure,
)
from headroom.cli.calendar import read_calendar
from headroom.cli.policy import read_policy
from headroom.controller.assembly import World, build_source
from headroom.controller.signals.csv import CsvSource
from headroom.policies.baselines.suite import STRATEGIES, backtest, pick_target
from headroom.policies.calendar import Calendar, DemandEvent
from headroom.policies.policy import PolicySpec, parse_duration
from headroom.policies.series import Series, to_datetime
from headroom.policies.simulate import Progress as ProgressFn
from headroom.policies.simulate import Simulation
from headroom.policies.trace import parse_trace_csv

WEEK = 7 * 86400.0


def read_trace(path: Path) -> Series:
    """Read and parse a ``timestamp,qps`` CSV file."""
    try:
        data = path.read_bytes()
    except OSError as err:
        fail(f"{path}: cannot read: {err.strerror or err}", EXIT_INPUT)
    return parse_trace_csv(data, str(path))


def policy_trace(spec: PolicySpec, policy: Path) -> Path:
    """The CSV file the policy reads demand from (``metrics.qps``, source ``csv``), through
    the same assembly the operator and the demo build their sources with."""
    if spec.metrics.qps.source != "csv":
        fail(
            f"--trace: is required ({policy}: metrics.qps.source is "
            f"{spec.metrics.qps.source}, not csv)",
            EXIT_INPUT,
        )
    source = build_source(spec.metrics, World())
    assert isinstance(source, CsvSource)  # the csv row of assembly.SOURCES
    return source.path


def _delay_option(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as err:
        fail(f"--provisioning-delay: {err}", EXIT_INPUT)


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[ProgressFn | None]:
    """A rich progress bar fed by the simulator's ``progress(name, fraction)`` callback."""
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("{task.description:<13}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def report(name: str, fraction: float) -> None:
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=1.0)
        bar.update(tasks[name], completed=fraction)

    with bar:
        yield report


def simulation_json(
    sim: Simulation, delay: float | None, sources: dict[str, str]
) -> dict[str, Any]:
    """The ``--json`` document: ``results`` first (the contract), then context."""
    trace = sim.trace
    return {
        "results": {name: r.metrics() for name, r in sim.results.items()},
        "trace": {
            "start": to_datetime(trace.start).isoformat(),
            "end": to_datetime(sim.end).isoformat(),
            "samples": len(trace),
            "step_seconds": trace.step,
            "peak_qps": float(np.nanmax(trace.v)) if len(trace) else 0.0,
        },
        "target": sim.target.name,
        "capacity_per_unit": sim.target.capacity_per_unit,
        "provisioning_delay_seconds": (
            delay
            if delay is not None
            else sim.target.provisioning.delay(sim.initial_units, sim.initial_units + 1)
        ),
        "initial_units": sim.initial_units,
        **sources,
    }


def _table(sim: Simulation, delay_text: str) -> Table:
    table = Table(
        title=f"Backtest of {sim.target.name}: {len(sim.trace)} samples, delay {delay_text}",
        title_justify="left",
    )
    for col in ("strategy", "underprov. min", "shortfall req", "unit-hours", "peak", "actions"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for name, r in sim.results.items():
        table.add_row(
            name,
            f"{r.underprovisioned_minutes:,.1f}",
            f"{r.shortfall_requests:,.0f}",
            f"{r.unit_hours:,.1f}",
            str(r.peak_units),
            str(r.actions),
        )
    return table


def write_chart(path: Path, sim: Simulation, events: list[DemandEvent]) -> None:
    """Demand and each strategy's ready capacity over time, events shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trace = sim.trace
    t0 = trace.start
    days = (trace.t - t0) / 86400.0
    fig, ax = plt.subplots(figsize=(14, 5), dpi=110)
    ax.plot(days, trace.v, color="black", linewidth=0.8, label="demand (QPS)")
    colors = {"headroom": "tab:green", "reactive_hpa": "tab:red", "oracle": "tab:blue"}
    colors["static_peak"] = "tab:gray"
    for name, r in sim.results.items():
        cap = r.ready_at(trace.t) * sim.target.capacity_per_unit
        ax.step(days, cap, where="post", linewidth=1.0, color=colors.get(name), label=name)
    head = sim.results.get("headroom")
    if head is not None and head.under_seconds.any():
        short = head.under_seconds > 0
        ax.scatter(
            days[short], trace.v[short], s=6, color="tab:orange", label="headroom short", zorder=3
        )
    for ev in events:
        if ev.end > trace.start and ev.window_start < sim.end:
            lo, hi = (ev.window_start - t0) / 86400.0, (ev.end - t0) / 86400.0
            ax.axvspan(lo, hi, color="gold", alpha=0.2)
    ax.set_xlabel(f"days since {to_datetime(t0).isoformat()}")
    ax.set_ylabel("QPS (capacity = ready units x capacity per unit)")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"headroom simulate: {sim.target.name}")
    fig.tight_layout()
    save_figure(fig, path)


def simulate_command(
    policy: Annotated[Path, typer.Option("--policy", help="Capacity policy YAML.")],
    trace: Annotated[
        Path | None,
        typer.Option(
            "--trace",
            help="CSV with header timestamp,qps (default: the policy's metrics.qps csv source).",
        ),
    ] = None,
    calendar: Annotated[
        Path | None, typer.Option("--calendar", help="Calendar file (.yaml or .ics).")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Target name (default: the first).")
    ] = None,
    provisioning_delay: Annotated[
        str | None,
        typer.Option(
            "--provisioning-delay",
            help="Fixed delay for every strategy, e.g. 10m (default: the target's model).",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    chart: Annotated[Path | None, typer.Option("--chart", help="Write a PNG chart here.")] = None,
) -> None:
    """Replay a trace: headroom vs reactive HPA vs static peak vs oracle, same delay for all."""
    with errors_to_exit():
        delay = _delay_option(provisioning_delay)
        spec = read_policy(policy)
        pick_target(spec, target, str(policy))
        if trace is None:
            trace = policy_trace(spec, policy)
        series = read_trace(trace)
        cal = Calendar()
        if calendar is not None:
            window = (series.start - WEEK, series.end + WEEK)
            cal = read_calendar(calendar, window=window)
        show_bar = not json_out and sys.stdout.isatty()
        with _progress_bar(show_bar) as progress:
            sim = backtest(
                series, cal, spec, target_name=target, delay_seconds=delay, progress=progress
            )
        if chart is not None:
            write_chart(chart, sim, list(cal.events))
        if json_out:
            sources = {"trace_file": str(trace), "policy_file": str(policy)}
            if calendar is not None:
                sources["calendar_file"] = str(calendar)
            if chart is not None:
                sources["chart"] = str(chart)
            print_json(simulation_json(sim, delay, sources))
            return
        delay_text = provisioning_delay or "from the policy"
        console.print(_table(sim, delay_text))
        if chart is not None:
            console.print(f"Wrote chart {chart}")


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to ``app``."""
    app.command("simulate", help=f"Backtest {', '.join(STRATEGIES)} on a trace.")(simulate_command)
