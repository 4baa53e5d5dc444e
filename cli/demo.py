"""`headroom demo`: the whole job on the embedded default (local Redis Cluster, scaled clock).

A thin shell over :class:`headroom.controller.demo.DemoRunner`: options, a live rich
dashboard while the simulated day runs, and the closing summary.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from headroom.cli._common import JsonOpt, console, errors_to_exit, print_json
from headroom.controller.demo import EXAMPLES, DemoConfig, DemoRunner, DemoSnapshot
from headroom.controller.demo_report import DemoReport
from headroom.policies.text import format_qps, local_time


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""
    app.command(name="demo")(demo)


def demo(
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for report.json, demo.png and the cluster's files (.headroom/ is "
            "git-ignored)."
        ),
    ] = Path(".headroom/demo"),
    masters: Annotated[int, typer.Option(help="Masters the local cluster starts with.")] = 3,
    keys: Annotated[int, typer.Option(help="Dataset keys loaded before the day starts.")] = 200_000,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per real second (360: an hour in 10 s).")
    ] = 360.0,
    hours: Annotated[float, typer.Option(help="Simulated hours to run, from --start-hour.")] = 14.0,
    start_hour: Annotated[float, typer.Option(help="Local hour the demo day starts.")] = 12.0,
    base_qps: Annotated[float, typer.Option(help="Mean demand of a normal day (QPS).")] = 600.0,
    event_multiplier: Annotated[
        float, typer.Option(help="True peak uplift of the livestream (Headroom learns it).")
    ] = 4.0,
    surprise: Annotated[
        float,
        typer.Option(
            help="How much hotter the demo day's livestream runs than the past ones "
            "(1.5: it goes viral, and the alerts say so)."
        ),
    ] = 1.0,
    calendar: Annotated[Path, typer.Option(help="Calendar file (YAML or ICS).")] = EXAMPLES
    / "demo-calendar.yaml",
    policy: Annotated[Path, typer.Option(help="Policy file.")] = EXAMPLES / "demo-policy.yaml",
    base_port: Annotated[
        int | None, typer.Option(help="First port (default: a free range).")
    ] = None,
    keep_running: Annotated[
        bool, typer.Option(help="Leave the cluster up at the end until Ctrl-C.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Pre-scale a local Redis Cluster ahead of a livestream on a simulated day, then scale in.

    Starts redis-server processes on 127.0.0.1, loads a dataset, drives it with a
    cluster-aware client following a generated day of traffic, and lets Headroom's
    control loop forecast and resize the cluster. Ends with a summary (keys lost,
    client errors, underprovisioned minutes vs a reactive HPA) and writes
    report.json and demo.png to --out. Every process is stopped at the end or on Ctrl-C.
    """
    logging.getLogger("headroom").setLevel(logging.WARNING)
    with errors_to_exit():
        config = DemoConfig(
            out_dir=out.resolve(),
            masters=masters,
            keys=keys,
            speed=speed,
            hours=hours,
            start_hour=start_hour,
            base_qps=base_qps,
            event_multiplier=event_multiplier,
            surprise=surprise,
            calendar_file=calendar,
            policy_file=policy,
            base_port=base_port,
            keep_running=keep_running,
        )
        if json_out:
            report = DemoRunner(config, on_phase=_quiet_phase(json_out)).run()
        elif not console.is_terminal:
            # No live display (CI, a pipe, a log file): a plain line every few seconds,
            # so the run never looks hung.
            updates = _progress_lines(config.speed)
            report = DemoRunner(config, on_update=updates, on_phase=_quiet_phase(False)).run()
        else:
            report = _run_with_dashboard(config)
        if json_out:
            print_json(report.to_json()["summary"])
        else:
            _print_summary(report)


def _quiet_phase(json_out: bool) -> Callable[[str], None]:
    def phase(text: str) -> None:
        if not json_out:
            console.print(f"[bold]•[/] {text}")
            console.file.flush()

    return phase


PROGRESS_EVERY = 5.0  # wall seconds between progress lines when there is no live display


def _progress_lines(speed: float) -> Callable[[DemoSnapshot], None]:
    """A plain line (simulated time, demand, masters) every ``PROGRESS_EVERY`` seconds of
    the scaled clock, flushed at once (a pipe would otherwise hold it in a buffer)."""
    last = [-math.inf]

    def on_update(snap: DemoSnapshot) -> None:
        s = snap.sample
        if s.t - last[0] < PROGRESS_EVERY * speed:
            return
        last[0] = s.t
        console.print(
            f"  {_clock(s.t, snap.tz)}  demand {_qps(s.measured_qps)} QPS measured "
            f"({_qps(s.wanted_qps)} asked) · masters {s.masters} serving, desired "
            f"{s.desired} · client errors {snap.load.errors}",
            highlight=False,
            soft_wrap=True,
        )
        console.file.flush()

    return on_update


def _run_with_dashboard(config: DemoConfig) -> DemoReport:
    phase_text = ["Starting"]
    with Live(Panel("Starting…"), console=console, refresh_per_second=8, transient=False) as live:

        def on_phase(text: str) -> None:
            phase_text[0] = text
            live.update(Panel(text, title="headroom demo"))

        def on_update(snap: DemoSnapshot) -> None:
            live.update(_dashboard(snap, phase_text[0]))

        return DemoRunner(config, on_update=on_update, on_phase=on_phase).run()


def _clock(epoch: float, tz: str) -> str:
    return local_time(epoch, tz, "%a %H:%M")


def _qps(value: float) -> str:
    return "—" if math.isnan(value) else format_qps(value)


def _dashboard(snap: DemoSnapshot, phase: str) -> Panel:
    s = snap.sample
    event = snap.event
    until = (event.start - s.t) / 60.0
    when = f"in {until:.0f} min" if until > 0 else f"started {-until:.0f} min ago"
    done = (s.t - snap.start) / max(1.0, snap.end - snap.start)
    bar = "█" * int(done * 30) + "░" * (30 - int(done * 30))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("simulated time", f"{_clock(s.t, snap.tz)}  {bar} {done:.0%}")
    grid.add_row("event", f"{event.name} at {_clock(event.start, snap.tz)} ({when})")
    grid.add_row(
        "demand",
        f"{_qps(s.measured_qps)} QPS measured · {_qps(s.wanted_qps)} asked · "
        f"forecast p50 {_qps(s.forecast_p50)} / p90 {_qps(s.forecast_p90)}",
    )
    grid.add_row(
        "masters",
        f"{s.masters} serving · {s.capacity_units:.2f} ready (capacity) · desired {s.desired}"
        + (f" · [yellow]{s.detail}[/]" if s.busy and s.detail else ""),
    )
    grid.add_row("next", snap.next_action)
    grid.add_row(
        "client",
        f"{snap.load.ops:,} ops · {snap.load.writes_acked:,} writes acked · "
        f"[{'red' if snap.load.errors else 'green'}]{snap.load.errors} errors[/]",
    )
    actions = Table(box=None, show_header=True, header_style="dim")
    actions.add_column("at")
    actions.add_column("action")
    for a in snap.actions[-5:]:
        actions.add_row(_clock(a.at, snap.tz), a.reason)
    return Panel(Group(grid, actions), title=f"headroom demo — {phase}", border_style="cyan")


def _print_summary(report: DemoReport) -> None:
    s = report.summary
    tz = s["event"]["tz"]
    table = Table(title="headroom demo — summary", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("keys lost", f"{s['keys_lost']} of {s['keys_checked']:,} checked")
    table.add_row(
        "client errors",
        f"{s['client_errors']} in {s['client_ops']:,} operations"
        + (f" ({s['client_rebuilds']} client rebuilds)" if s.get("client_rebuilds") else ""),
    )
    ready = s["ready_minutes_before_start"]
    when = " ready: never"
    if ready is not None:
        when = (
            f" ready {ready:.0f} min before the start"
            if ready >= 0
            else f" ready {-ready:.0f} min late"
        )
    table.add_row(
        "capacity ready before the event",
        f"{'yes' if s['capacity_ready_before_event'] else 'NO'}: "
        f"{s['planned_masters_for_event']} masters{when}",
    )
    table.add_row(
        "underprovisioned minutes",
        f"Headroom {s['underprovisioned_minutes']} · reactive HPA "
        f"{s['reactive_hpa_underprovisioned_minutes']} (same traffic, same "
        f"{s['observed_provisioning_delay_minutes']:.0f} min provisioning delay; "
        f"{s['unit_hours']:g} vs {s['reactive_hpa_unit_hours']:g} master-hours)",
    )
    table.add_row("peak demand", f"{format_qps(s['demand_peak_qps'])} QPS")
    console.print(table)
    actions = Table(title="actions", show_lines=False)
    actions.add_column("time")
    actions.add_column("vs event start", justify="right")
    actions.add_column("masters")
    actions.add_column("reason")
    for a in s["actions"]:
        actions.add_row(
            _clock(a["at"], tz),
            f"{a['minutes_from_event_start']:+.0f} min",
            f"{a['from']}→{a['to']}",
            a["reason"],
        )
    console.print(actions)
    _print_alerts_and_files(s, report.out_dir)


def _print_alerts_and_files(s: dict[str, Any], out_dir: Path) -> None:
    """The alerts the demo's receiver got (a line when there were none) and where the report
    and chart are (never wrapped: a path split over two lines cannot be copied)."""
    dropped = s["alerts_dropped"]
    if not s["alerts"]:
        console.print(
            f"Alerts: none sent to the demo's webhook receiver ({dropped} dropped).", soft_wrap=True
        )
    else:
        alerts = Table(title=f"alerts sent to the demo's webhook receiver ({dropped} dropped)")
        alerts.add_column("vs event start", justify="right")
        alerts.add_column("alert")
        alerts.add_column("status")
        alerts.add_column("summary")
        for a in s["alerts"]:
            alerts.add_row(f"{a['minutes_from_event_start']:+.0f} min", a["name"], a["status"],
                           a["summary"])  # fmt: skip
        console.print(alerts)
    console.print(f"Report: {out_dir / 'report.json'}", soft_wrap=True, highlight=False)
    console.print(f"Chart: {out_dir / 'demo.png'}", soft_wrap=True, highlight=False)
