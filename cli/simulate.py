"""`headroom simulate`: causal backtest of Headroom against reactive and static baselines.

A thin command over :func:`headroom.policies.baselines.suite.backtest`: it reads the
trace (``--trace``, or the policy's own ``csv`` demand source, found through
:mod:`headroom.controller.assembly` as the operator finds its sources), calendar and
policy files, replays the trace under ``headroom``,
``reactive_hpa``, ``static_peak`` and ``oracle`` with one provisioning-delay model,
and prints a table, one JSON object (``--json``, the contract in DESIGN.md) and/or a
PNG chart (``--chart``). ``--frontier`` sweeps Headroom and the HPA over their cost
knobs instead (:mod:`headroom.policies.baselines.frontier`) and prints both curves and
the headline "Headroom's minutes at the HPA's unit-hours"; ``--score-from`` scores only
the time from then on (the whole trace is replayed). The trace's value unit is explicit
(``--values``, or the column: ``qps`` per second, ``requests`` counts per row), and a
strategy that spends most of the replay at ``maxUnits`` is warned about. A progress bar
shows on a terminal, never in ``--json`` mode.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from headroom.cli._common import (
    EXIT_INPUT,
    CalendarOpt,
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
from headroom.cli.calendar import read_calendar
from headroom.cli.policy import read_policy
from headroom.controller.assembly import World, build_source
from headroom.controller.files import TRACE_MAX_BYTES, read_bounded
from headroom.controller.signals.csv import CsvSource
from headroom.policies.baselines.frontier import BASES, Frontier, frontier, hull
from headroom.policies.baselines.suite import STRATEGIES, backtest, pick_target
from headroom.policies.bounds import MAX_PROVISIONING
from headroom.policies.calendar import Calendar, DemandEvent
from headroom.policies.errors import TraceError
from headroom.policies.policy import PolicySpec
from headroom.policies.series import Series, to_datetime
from headroom.policies.simulate import Progress as ProgressFn
from headroom.policies.simulate import Simulation
from headroom.policies.text import zone as zone_info
from headroom.policies.trace import (
    VALUE_UNITS,
    parse_timestamp,
    parse_trace_csv,
    trace_value_column,
    value_unit,
)

WEEK = 7 * 86400.0


def read_trace(path: Path, values: str | None = None) -> Series:
    """Read and parse a ``timestamp,qps`` CSV file (``values``: see ``--values``); a
    ``requests`` column read by default says how it was converted, on stderr."""
    data = read_bounded(path, TRACE_MAX_BYTES, TraceError, "trace CSV")
    series = parse_trace_csv(data, str(path), unit=values)
    column = trace_value_column(data.decode(errors="replace"))
    if values is None and column is not None and value_unit(column, None) == "per-row":
        print(
            f"note: {path}: column {column!r} read as requests per row ({series.step:g} s) "
            "-> QPS; say --values per-minute or per-second to set the unit",
            file=sys.stderr,
        )
    return series


def _score_from_option(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value, "--score-from")
    except TraceError as err:
        fail(str(err), EXIT_INPUT)


AT_MAX_SHARE = 0.5  # warn when a strategy is at maxUnits for more than this share of time


def max_units_warnings(sim: Simulation) -> list[str]:
    """A warning per strategy that spends most of the replay ordered at ``maxUnits``: its
    numbers then say more about the cap (or a trace in the wrong unit) than the strategy."""
    out = []
    cap = sim.target.max_units
    for name, r in sim.results.items():
        t = np.append(r.ordered_t, sim.end)
        held = np.diff(np.clip(t, sim.trace.start, sim.end))
        share = float(held[r.ordered_v >= cap].sum()) / max(float(held.sum()), 1e-9)
        if share > AT_MAX_SHARE:
            out.append(
                f"{name} is at maxUnits {cap} for {share:.0%} of the replay: is maxUnits too "
                "low, or the trace in the wrong unit (see --values)?"
            )
    return out


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
    seconds = duration_option(value, "--provisioning-delay")
    if seconds > MAX_PROVISIONING:
        fail(f"--provisioning-delay: must be at most 1d, not {value!r}", EXIT_INPUT)
    return seconds


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
        "warnings": max_units_warnings(sim),
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


MAX_EVENT_PANELS = 4


def write_chart(path: Path, sim: Simulation, events: list[DemandEvent], tz: str) -> None:
    """Demand and each strategy's ready capacity over the whole trace, events shaded, in
    local time of ``tz``; below it one zoomed panel per event in the trace (the first
    :data:`MAX_EVENT_PANELS`), from two hours before its ramp to two hours after its end, so
    a two-hour event on a multi-day axis is not a sliver."""
    import matplotlib.dates as mdates

    plt = pyplot()

    zone = zone_info(tz)
    trace = sim.trace
    when = np.array([datetime.fromtimestamp(float(t), zone) for t in trace.t])
    shown = [ev for ev in events if ev.end > trace.start and ev.window_start < sim.end]
    zoomed = shown[:MAX_EVENT_PANELS]
    fig = plt.figure(figsize=(14, 5 + (3.4 if zoomed else 0)), dpi=110)
    grid = fig.add_gridspec(2 if zoomed else 1, max(1, len(zoomed)), height_ratios=(
        [5, 3.4] if zoomed else [1]))  # fmt: skip
    colors = {"headroom": "tab:green", "reactive_hpa": "tab:red", "oracle": "tab:blue"}
    colors["static_peak"] = "tab:gray"
    head = sim.results.get("headroom")
    short = head.under_seconds > 0 if head is not None else np.zeros(len(trace), dtype=bool)
    capacity = {
        name: r.ready_at(trace.t) * sim.target.capacity_per_unit for name, r in sim.results.items()
    }

    def draw(ax: Any, lo: float, hi: float, legend: bool) -> None:
        inside = (trace.t >= lo) & (trace.t <= hi)
        ax.plot(when[inside], trace.v[inside], color="black", linewidth=0.8, label="demand")
        for name, cap in capacity.items():
            ax.step(when[inside], cap[inside], where="post", linewidth=1.0,
                    color=colors.get(name), label=f"{name} ready capacity")  # fmt: skip
        if (short & inside).any():
            ax.scatter(when[short & inside], trace.v[short & inside], s=6, color="tab:orange",
                       label="headroom short", zorder=3)  # fmt: skip
        for ev in shown:
            if ev.end > lo and ev.window_start < hi:
                span = (datetime.fromtimestamp(ev.window_start, zone),
                        datetime.fromtimestamp(ev.end, zone))  # fmt: skip
                ax.axvspan(*span, color="gold", alpha=0.2)
        if legend:
            ax.legend(loc="upper left", fontsize=8)

    top = fig.add_subplot(grid[0, :])
    draw(top, trace.start, sim.end, legend=True)
    for ev in shown:
        top.annotate(ev.name, (mdates.date2num(datetime.fromtimestamp(ev.start, zone)),  # type: ignore[no-untyped-call]
                               1.0), xycoords=("data", "axes fraction"), fontsize=7,
                     va="bottom", ha="center")  # fmt: skip
    top.xaxis.set_major_formatter(
        mdates.DateFormatter("%a %d %b\n%H:%M", tz=zone)  # type: ignore[no-untyped-call]
    )
    top.set_xlabel(f"local time ({tz})")
    top.set_ylabel("QPS; capacity = ready units x capacity per unit")
    top.set_title(f"headroom simulate: {sim.target.name}", pad=14)
    for i, ev in enumerate(zoomed):
        ax = fig.add_subplot(grid[1, i])
        draw(ax, ev.window_start - 7200.0, ev.end + 7200.0, legend=False)
        ax.xaxis.set_major_formatter(
            mdates.DateFormatter("%H:%M", tz=zone)  # type: ignore[no-untyped-call]
        )
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=6))  # type: ignore[no-untyped-call]
        start = datetime.fromtimestamp(ev.start, zone)
        ax.set_title(f"{ev.name} ({start:%a %d %b %H:%M})", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def _fmt(x: float | None) -> str:
    return "n/a (below the curve)" if x is None else f"{x:,.1f}"


def frontier_tables(fr: Frontier) -> list[Table]:
    """Each strategy's points (hull points marked) and the headline on both bases."""
    tables = []
    for name, points in (("headroom", fr.headroom), ("reactive_hpa", fr.reactive_hpa)):
        on_hull = {id(p) for p in hull(points, "order")}
        table = Table(title=f"{name}: cost/shortfall points", title_justify="left")
        for col in ("setting", "underprov. min", "unit-hours (order)", "unit-hours (ready)"):
            table.add_column(col, justify="left" if col == "setting" else "right")
        for p in sorted(points, key=lambda p: p.unit_hours):
            mark = (" *" if id(p) in on_hull else "") + (" (policy)" if p.reference else "")
            table.add_row(
                p.label + mark,
                f"{p.minutes:,.1f}",
                f"{p.unit_hours:,.1f}",
                f"{p.ready_unit_hours:,.1f}",
            )
        tables.append(table)
    return tables


def frontier_headlines(fr: Frontier) -> list[str]:
    lines = [
        f"oracle: {fr.oracle.minutes:,.1f} min at {fr.oracle.unit_hours:,.1f} unit-hours "
        f"(ready {fr.oracle.ready_unit_hours:,.1f})"
    ]
    for basis in BASES:
        h = fr.headline(basis)
        share = f" = {h.share:.1%} of the HPA's" if h.share is not None else ""
        lines.append(
            f"unit-hours from the {basis}: Headroom's minutes at the HPA's "
            f"{h.hpa.cost(basis):,.1f} unit-hours: {_fmt(h.headroom_at_hpa)}{share} "
            f"(HPA {h.hpa.minutes:,.1f}); the HPA's minutes at Headroom's "
            f"{h.headroom.cost(basis):,.1f} unit-hours: {_fmt(h.hpa_at_headroom)} "
            f"(Headroom {h.headroom.minutes:,.1f})"
        )
    return lines


def write_frontier_chart(path: Path, fr: Frontier, title: str) -> None:
    """Underprovisioned minutes against unit-hours: both curves, their points, the oracle."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for name, points, color in (
        ("headroom", fr.headroom, "tab:green"),
        ("reactive_hpa", fr.reactive_hpa, "tab:red"),
    ):
        curve = hull(points, "order")
        ax.scatter([p.unit_hours for p in points], [p.minutes for p in points],
                   s=12, color=color, alpha=0.5)  # fmt: skip
        ax.plot([p.unit_hours for p in curve], [p.minutes for p in curve], color=color,
                label=f"{name} (frontier)")  # fmt: skip
        ref = fr.reference(name)
        ax.scatter([ref.unit_hours], [ref.minutes], s=60, marker="D", color=color,
                   edgecolor="black", zorder=3, label=f"{name} as the policy says")  # fmt: skip
    ax.scatter([fr.oracle.unit_hours], [fr.oracle.minutes], s=80, marker="*",
               color="tab:blue", zorder=3, label="oracle")  # fmt: skip
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("unit-hours (from the order)")
    ax.set_ylabel("underprovisioned minutes")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def _frontier_progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    if not enabled:
        yield None
        return
    bar = Progress(TextColumn("{task.description:<28}"), BarColumn(), TimeElapsedColumn(),
                   console=console, transient=True)  # fmt: skip
    with bar:
        task = bar.add_task("frontier", total=1.0)

        def report(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done / max(total, 1))

        yield report


def simulate_command(
    policy: Annotated[Path, typer.Option("--policy", help="Capacity policy YAML.")],
    trace: Annotated[
        Path | None,
        typer.Option(
            "--trace",
            help="CSV with header timestamp,qps (default: the policy's metrics.qps csv source).",
        ),
    ] = None,
    calendar: CalendarOpt = None,
    target: PolicyTargetOpt = None,
    provisioning_delay: Annotated[
        str | None,
        typer.Option(
            "--provisioning-delay",
            help="Fixed delay for every strategy, e.g. 10m (default: the target's model).",
        ),
    ] = None,
    json_out: JsonOpt = False,
    chart: ChartOpt = None,
    frontier_mode: Annotated[
        bool,
        typer.Option(
            "--frontier",
            help="Sweep the HPA's target utilisation and Headroom's event quantile, "
            "utilisation and event margin (on or off); print both cost/shortfall curves "
            "(each the lower convex hull of its points) and Headroom's minutes at the "
            "HPA's unit-hours.",
        ),
    ] = False,
    score_from: Annotated[
        str | None,
        typer.Option(
            "--score-from",
            help="Replay the whole trace but score only from this time (ISO-8601 or epoch).",
        ),
    ] = None,
    values: Annotated[
        str | None,
        typer.Option(
            "--values",
            help=f"Unit of the trace's values: {' or '.join(VALUE_UNITS)} (default: the "
            "column: qps per second, requests counts per row).",
        ),
    ] = None,
) -> None:
    """Replay a trace: headroom vs reactive HPA vs static peak vs oracle, same delay for all."""
    with errors_to_exit():
        delay = _delay_option(provisioning_delay)
        since = _score_from_option(score_from)
        spec = read_policy(policy)
        pick_target(spec, target, str(policy))
        if trace is None:
            trace = policy_trace(spec, policy)
        series = read_trace(trace, values)
        cal = Calendar()
        if calendar is not None:
            window = (series.start - WEEK, series.end + WEEK)
            cal = read_calendar(calendar, window=window)
        show_bar = not json_out and sys.stdout.isatty()
        # What both replays (the frontier's sweep, the backtest) are given.
        replayed: dict[str, Any] = {
            "target_name": target, "delay_seconds": delay, "score_from": since,
        }  # fmt: skip
        if frontier_mode:
            with contextmanager(_frontier_progress)(show_bar) as fprogress:
                fr = frontier(series, cal, spec, **replayed, progress=fprogress)
            if chart is not None:
                write_frontier_chart(chart, fr, f"headroom simulate --frontier: {trace.name}")
            if json_out:
                print_json({"frontier": fr.to_json(), "trace_file": str(trace)})
                return
            for table in frontier_tables(fr):
                console.print(table)
            console.print(
                "* = on the strategy's frontier (fewest minutes at no more cost, itself or "
                "mixed with another setting)"
            )
            for line in frontier_headlines(fr):
                console.print(line, highlight=False, soft_wrap=True)
            if chart is not None:
                console.print(f"Wrote chart {chart}")
            return
        with _progress_bar(show_bar) as progress:
            sim = backtest(series, cal, spec, **replayed, progress=progress)
        if chart is not None:
            # The zone the forecaster reads local time in: the calendar's (else UTC).
            write_chart(chart, sim, list(cal.events), cal.events[0].tz if cal.events else "UTC")
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
        for warning in max_units_warnings(sim):
            print(f"warning: {warning}", file=sys.stderr)
        if chart is not None:
            console.print(f"Wrote chart {chart}")


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to ``app``."""
    app.command("simulate", help=f"Backtest {', '.join(STRATEGIES)} on a trace.")(simulate_command)
