"""`headroom forecast` and `headroom plan`: what the operator would forecast and do.

Thin: read the history, the calendar and the policy (files, or ``--from-cluster``: the
CapacityPolicy, its own metrics source and the namespace's DemandEvents, as the operator
reads them), read the history through the policy's history window on the loop's grid, cut
at ``--at`` (the forecast sees only samples before it), then run the operator's own pass
(:func:`~headroom.controller.assembly.plan_pass`: the runtime ``build_runtime`` builds,
the driver's decision and plan ahead, nothing acted on) or its forecaster
(:func:`~headroom.controller.assembly.forecast_pass`), and print a table, ``--json``, or
a ``--chart`` PNG (history, forecast band p50/p90/p99, events shaded, planned capacity).
So ``headroom plan`` shows what the operator's next pass will do on the same inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from headroom.cli._common import (
    EXIT_INPUT,
    console,
    count,
    errors_to_exit,
    fail,
    print_json,
    save_figure,
)
from headroom.cli._kube import ContextOpt, KubeconfigOpt, NamespaceOpt
from headroom.cli.calendar import read_calendar
from headroom.cli.policy import read_policy
from headroom.cli.simulate import read_trace
from headroom.controller import assembly
from headroom.controller.signals.csv import CsvSource
from headroom.policies.bounds import MAX_HORIZON, MAX_UNITS
from headroom.policies.calendar import Calendar, DemandEvent
from headroom.policies.calendars import parse_time
from headroom.policies.capacity import capacity_of
from headroom.policies.driver import DriverState
from headroom.policies.errors import SourceUnavailable
from headroom.policies.forecast.base import Forecast
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.planner import Plan
from headroom.policies.policy import PolicySpec, Target, parse_duration
from headroom.policies.resources import driver_state_from_status
from headroom.policies.series import Series
from headroom.policies.text import (
    format_qps,
    local_iso,
    local_time,
    target_key,
    unit_noun,
)
from headroom.policies.text import zone as zone_info

LEVELS = (0.5, 0.9, 0.99)
STEP = 60.0  # the loop's forecast step and history grid, unless --step says otherwise
MAX_TABLE_ROWS = 24

HistoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--history",
        help="History CSV (timestamp,qps): what was observed (or use --from-cluster).",
        show_default=False,
    ),
]
FromClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--from-cluster",
        help="Read this CapacityPolicy, its history (from its own metrics source) and the "
        "namespace's DemandEvents from the cluster, instead of --policy/--history/--calendar.",
        show_default=False,
    ),
]
CalendarOpt = Annotated[
    Path | None, typer.Option("--calendar", help="Calendar of demand events (YAML or ICS).")
]
AtOpt = Annotated[
    str | None,
    typer.Option(
        "--at", help="Forecast as of this time (ISO-8601 or epoch); default: end of history."
    ),
]
HorizonOpt = Annotated[
    str | None,
    typer.Option("--horizon", help="How far ahead, e.g. 6h, 1d (default: the policy's)."),
]
StepOpt = Annotated[
    str | None, typer.Option("--step", help="Forecast step (default: the history's, >= 1m).")
]
TargetOpt = Annotated[
    str | None, typer.Option("--target", help="Only this target (name or namespace/name).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
ChartOpt = Annotated[Path | None, typer.Option("--chart", help="Write a PNG chart here.")]
TzOpt = Annotated[
    str | None,
    typer.Option("--tz", help="Zone for times shown (default: the calendar's, else UTC)."),
]


@dataclass(frozen=True)
class _Inputs:
    history: Series  # through the policy's history window, on the loop's grid, cut at ``at``
    later: Series  # samples at or after ``at`` (never given to the forecast; charts only)
    calendar: Calendar
    spec: PolicySpec | None  # with ``--horizon``'s forecast horizon, when given
    at: float
    horizon: float
    step: float
    tz: str  # the zone times are shown in
    state: DriverState | None = None  # the driver state the operator kept (--from-cluster)
    running: Mapping[str, int] = field(default_factory=dict)  # units now (--from-cluster)


def _duration_option(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as err:
        fail(f"{option}: {err}", EXIT_INPUT)
    if seconds <= 0:
        fail(f"{option}: must be more than 0", EXIT_INPUT)
    if option == "--horizon" and seconds > MAX_HORIZON:
        fail(f"{option}: must be at most 31d, not {value!r}", EXIT_INPUT)
    if option == "--step" and seconds < 1:
        fail(f"{option}: must be at least 1s, not {value!r}", EXIT_INPUT)
    return seconds


def _load(
    history_path: Path | None,
    calendar_path: Path | None,
    policy_path: Path | None,
    at: str | None,
    horizon: str | None,
    step: str | None,
    tz: str | None,
) -> _Inputs:
    if history_path is None:
        fail("--history: is required (or --from-cluster NAME)", EXIT_INPUT)
    series = read_trace(history_path)
    spec = read_policy(policy_path) if policy_path is not None else None
    calendar = Calendar()
    if calendar_path is not None:
        # Recurring ICS events are expanded around the history (and the forecast after it).
        window = (series.start - 400 * 86400.0, series.end + 400 * 86400.0)
        calendar = read_calendar(calendar_path, window=window)
    zone = _zone(tz, calendar)
    data_step = series.step if len(series) > 1 else 60.0
    at_epoch = series.end + data_step if at is None else _at(at, zone)
    step_s = _duration_option(step, "--step") or STEP
    # The file is read as the operator reads a csv metrics source: the policy's history
    # window on the loop's grid.
    read = assembly.build_history(spec, CsvSource(history_path), step=step_s).history
    recorded = _read(lambda: read(at_epoch).before(at_epoch), str(history_path))
    return _inputs(
        recorded,
        series.between(at_epoch, math.inf),
        calendar,
        spec,
        str(history_path),
        at_epoch,
        horizon,
        step_s,
        zone,
    )


def _read(read: Callable[[], Series], source: str) -> Series:
    """The history as ``read`` reads it; an unreadable source is a one-line input error."""
    try:
        return read()
    except SourceUnavailable as err:
        fail(f"{source}: {err}", EXIT_INPUT)


def _zone(tz: str | None, calendar: Calendar) -> str:
    zone = tz or (calendar.events[0].tz if calendar.events else "UTC")
    try:
        zone_info(zone)
    except ValueError as err:
        fail(f"--tz: {err}", EXIT_INPUT)
    return zone


def _at(at: str, zone: str) -> float:
    try:
        return parse_time(at, zone)
    except ValueError as err:
        fail(f"--at: {err}", EXIT_INPUT)


def _inputs(
    past: Series,
    later: Series,
    calendar: Calendar,
    spec: PolicySpec | None,
    source: str,
    at_epoch: float,
    horizon: str | None,
    step_s: float,
    zone: str,
    state: DriverState | None = None,
    running: Mapping[str, int] | None = None,
) -> _Inputs:
    if not len(past) or not bool(np.isfinite(past.v).any()):
        fail(f"{source}: no samples before --at {local_iso(at_epoch, zone)}", EXIT_INPUT)
    horizon_s = _duration_option(horizon, "--horizon")
    if spec is not None and horizon_s is not None:
        forecast = spec.forecast.model_copy(update={"horizon": horizon_s})
        spec = spec.model_copy(update={"forecast": forecast})
    if horizon_s is None:
        horizon_s = spec.forecast.horizon if spec is not None else 86400.0
    later = later.between(at_epoch, at_epoch + horizon_s)
    return _Inputs(
        past, later, calendar, spec, at_epoch, horizon_s, step_s, zone, state, running or {}
    )


@dataclass(frozen=True)
class _Cluster:
    """Where ``--from-cluster`` reads: the connection options of the command."""

    name: str
    kubeconfig: Path | None
    context: str | None
    namespace: str | None


def _load_from_cluster(
    where: _Cluster,
    files: dict[str, Path | None],
    at: str | None,
    horizon: str | None,
    step: str | None,
    tz: str | None,
) -> _Inputs:
    """The inputs as the operator reads them: the policy, its history (from its own metrics
    source), the namespace's DemandEvents, each target's units now (from the target, else
    the policy's status) and the driver state the operator keeps in the status."""
    given = [flag for flag, path in files.items() if path is not None]
    if given:
        fail(
            f"{given[0]}: not with --from-cluster (it reads the policy, its history and the "
            "namespace's DemandEvents from the cluster)",
            EXIT_INPUT,
        )
    import time

    from headroom.cli._kube import connect
    from headroom.controller.demand_events import list_demand_events
    from headroom.controller.operator.inputs import policy_history, running_units
    from headroom.controller.operator.inputs import read_policy as read_cluster_policy

    kube, ns = connect(where.kubeconfig, where.context, where.namespace)
    source = f"CapacityPolicy {ns}/{where.name}"
    try:
        spec, obj = read_cluster_policy(kube, ns, where.name)
        calendar = list_demand_events(kube, ns).calendar
        zone = _zone(tz, calendar)
        at_epoch = time.time() if at is None else _at(at, zone)
        step_s = _duration_option(step, "--step") or STEP
        series = _read(
            lambda: policy_history(kube, spec, at_epoch, source, step=step_s).before(at_epoch),
            source,
        )
        status = obj.get("status") or {}
        current = running_units(kube, ns, spec, status)
    finally:
        kube.close()
    state, _ = driver_state_from_status(status.get("driver"))
    return _inputs(
        series, Series.empty(), calendar, spec, source, at_epoch, horizon, step_s, zone,
        state, current,
    )  # fmt: skip


def _clock(epoch: float, tz: str) -> str:
    return local_time(epoch, tz, "%m-%d %H:%M")


def _select_targets(spec: PolicySpec, name: str | None) -> list[Target]:
    if name is None:
        return list(spec.targets)
    chosen = [t for t in spec.targets if name in (t.name, target_key(t))]
    if not chosen:
        names = ", ".join(target_key(t) for t in spec.targets)
        fail(f"--target: no target {name!r} in the policy (targets: {names})", EXIT_INPUT)
    return chosen


def _forecast(inputs: _Inputs) -> tuple[HeadroomForecaster, Forecast]:
    """The policy's forecast at ``--at``, at p50/p90/p99: its forecaster fitted as the
    operator's driver fits it."""
    return assembly.forecast_pass(
        inputs.spec,
        inputs.history,
        inputs.calendar,
        at=inputs.at,
        horizon=inputs.horizon,
        step=inputs.step,
        levels=LEVELS,
    )


def _events_in(model: HeadroomForecaster, fc: Forecast) -> list[DemandEvent]:
    seen: dict[tuple[str, float], DemandEvent] = {}
    for ev in fc.drivers:
        if ev is not None:
            seen.setdefault((ev.name, ev.start), ev)
    return list(seen.values())


def _event_json(model: HeadroomForecaster, ev: DemandEvent, tz: str) -> dict[str, Any]:
    up = model.uplift_for(ev)
    return {
        "name": ev.name,
        "kind": str(ev.kind),
        "labels": dict(ev.labels),
        "start": local_iso(ev.start, tz),
        "end": local_iso(ev.end, tz),
        "uplift_source": up.source,
        "similar_past_events": up.similar,
        "peak_multiplier": round(up.peak, 3),
    }


def _forecast_json(model: HeadroomForecaster, fc: Forecast, inputs: _Inputs) -> dict[str, Any]:
    base = model.baseline
    points = []
    for i, t in enumerate(fc.t):
        drv = fc.drivers[i] if i < len(fc.drivers) else None
        point: dict[str, Any] = {"t": local_iso(float(t), inputs.tz), "mean": float(fc.mean[i])}
        for q in LEVELS:
            point[f"p{round(q * 100):d}"] = float(fc.quantiles[q][i])
        if fc.baseline is not None:
            point["baseline"] = float(fc.baseline[i])
        point["driver"] = drv.name if drv is not None else None
        points.append(point)
    return {
        "at": local_iso(inputs.at, inputs.tz),
        "horizon_seconds": inputs.horizon,
        "step_seconds": inputs.step,
        "history_samples": len(inputs.history),
        "model": {
            "level_windows_hours": list(base.windows_h),
            "weekly_shrink": round(base.profile.weekly_shrink, 3),
            "learned_events": len(model.learned_events),
        },
        "events": [_event_json(model, ev, inputs.tz) for ev in _events_in(model, fc)],
        "points": points,
    }


def _row_stride(n: int) -> int:
    return max(1, math.ceil(n / MAX_TABLE_ROWS))


def _print_forecast(model: HeadroomForecaster, fc: Forecast, inputs: _Inputs) -> None:
    table = Table(title=f"Forecast from {local_iso(inputs.at, inputs.tz)} ({inputs.tz})")
    for col in ("time", "p50", "p90", "p99", "event"):
        table.add_column(col, justify="right" if col.startswith("p") else "left")
    stride = _row_stride(fc.t.size)
    for i in range(0, fc.t.size, stride):
        # Each row shows the highest value in its stretch: peaks must not fall between rows.
        sl = slice(i, i + stride)
        drivers = [d for d in fc.drivers[sl] if d is not None]
        table.add_row(
            _clock(float(fc.t[i]), inputs.tz),
            *(format_qps(float(fc.quantiles[q][sl].max())) for q in LEVELS),
            drivers[0].name if drivers else "",
        )
    console.print(table)
    events = _events_in(model, fc)
    if events:
        ev_table = Table(title="Events in the horizon")
        for col in ("event", "kind", "start", "uplift", "from"):
            ev_table.add_column(col)
        for ev in events:
            up = model.uplift_for(ev)
            origin = {
                "learned": f"{up.similar} similar past event(s)",
                "declared+learned": f"declared, shape from {up.similar} past event(s)",
                "declared": "declared",
                "default": "policy default (no similar past event)",
            }[up.source]
            ev_table.add_row(
                ev.name, str(ev.kind), _clock(ev.start, inputs.tz), f"x{up.peak:.2f}", origin
            )
        console.print(ev_table)
    p90 = fc.quantiles[0.9]
    k = int(np.argmax(p90))
    console.print(
        f"Peak p90 {format_qps(float(p90[k]))} QPS at {_clock(float(fc.t[k]), inputs.tz)}; "
        f"learned from {count(len(inputs.history), 'sample')} and "
        f"{count(len(model.learned_events), 'past event')}."
    )


# --- charts ------------------------------------------------------------------------------


def _chart(
    path: Path,
    inputs: _Inputs,
    fc: Forecast,
    events: list[DemandEvent],
    plan: Plan | None = None,
    target: Target | None = None,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    zone = zone_info(inputs.tz)

    def dates(epochs: Any) -> Any:
        # Matplotlib's date axis counts days since 1970-01-01 UTC.
        return np.asarray(epochs, dtype=np.float64) / 86400.0

    shown = inputs.history.between(inputs.at - max(inputs.horizon, 86400.0), inputs.at)
    fig, ax = plt.subplots(figsize=(11, 4.8), dpi=90)
    ax.plot(dates(shown.t), shown.v, color="0.35", lw=0.7, label="history")
    if len(inputs.later):
        ax.plot(
            dates(inputs.later.t),
            inputs.later.v,
            color="0.6",
            lw=0.5,
            label="actual (not seen by the forecast)",
        )
    ft = dates(fc.t)
    ax.fill_between(
        ft,
        fc.quantiles[0.5],
        fc.quantiles[0.99],
        color="tab:blue",
        alpha=0.15,
        label="p50-p99",
        step=None,
    )
    ax.fill_between(
        ft, fc.quantiles[0.5], fc.quantiles[0.9], color="tab:blue", alpha=0.25, label="p50-p90"
    )
    ax.plot(ft, fc.quantiles[0.5], color="tab:blue", lw=1.2, label="forecast p50")
    if fc.baseline is not None:
        ax.plot(ft, fc.baseline, color="tab:blue", lw=0.8, ls=":", label="baseline")
    lo, hi = float(shown.t[0]) if len(shown) else inputs.at, float(fc.t[-1])
    for ev in events:
        if ev.end < lo or ev.window_start > hi:
            continue
        ax.axvspan(*dates(np.asarray([ev.window_start, ev.start])), color="tab:orange", alpha=0.1)
        ax.axvspan(*dates(np.asarray([ev.start, ev.end])), color="tab:orange", alpha=0.22)
        ax.annotate(
            ev.name,
            (dates(np.asarray([ev.start]))[0], 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -12),
            textcoords="offset points",
            fontsize=8,
            color="tab:orange",
        )
    if plan is not None and target is not None:
        cap = np.asarray([capacity_of(int(u), target) for u in plan.units])
        ax.step(
            dates(plan.t),
            cap,
            where="post",
            color="tab:green",
            lw=1.4,
            label=f"ordered capacity ({target.name}, {unit_noun(target)} x "
            f"{format_qps(target.capacity_per_unit)})",
        )
        for a in plan.actions:
            ax.axvline(dates(a.at), color="tab:green", lw=0.6, ls="--")
    ax.axvline(dates(inputs.at), color="k", lw=0.8)
    ax.set_ylabel("QPS")
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=zone))  # type: ignore[no-untyped-call]
    ax.set_title(f"Headroom forecast at {local_iso(inputs.at, inputs.tz)}", fontsize=10)
    ax.legend(loc="upper left", fontsize=7)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    save_figure(fig, path)


# --- commands ----------------------------------------------------------------------------


def forecast_command(
    history: HistoryOpt = None,
    calendar: CalendarOpt = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy (forecast settings, event selector).")
    ] = None,
    at: AtOpt = None,
    horizon: HorizonOpt = None,
    step: StepOpt = None,
    target: TargetOpt = None,
    as_json: JsonOpt = False,
    chart: ChartOpt = None,
    tz: TzOpt = None,
    from_cluster: FromClusterOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Forecast demand (p50/p90/p99) from history and the calendar's events."""
    with errors_to_exit():
        if from_cluster is not None:
            where = _Cluster(from_cluster, kubeconfig, context, namespace)
            files = {"--history": history, "--policy": policy, "--calendar": calendar}
            inputs = _load_from_cluster(where, files, at, horizon, step, tz)
        else:
            inputs = _load(history, calendar, policy, at, horizon, step, tz)
        if target is not None:  # one forecast serves every target of a policy
            if inputs.spec is None:
                fail("--target needs --policy", EXIT_INPUT)
            _select_targets(inputs.spec, target)
        model, fc = _forecast(inputs)
        if chart is not None:
            _chart(chart, inputs, fc, list(model.calendar.events))
        if as_json:
            doc = _forecast_json(model, fc, inputs)
            if chart is not None:
                doc["chart"] = str(chart)
            print_json(doc)
            return
        _print_forecast(model, fc, inputs)
        if chart is not None:
            console.print(f"Wrote chart {chart}")


def _plan_json(plan: Plan, target: Target, current: int, inputs: _Inputs) -> dict[str, Any]:
    return {
        "target": plan.target,
        "kind": target.kind.value,
        "current_units": current,
        "peak_units": int(plan.units.max()) if plan.units.size else current,
        "peak_required": int(plan.required.max()) if plan.required.size else 0,
        "capped": plan.capped,
        "notes": list(plan.notes),
        "actions": [
            {
                "at": local_iso(a.at, inputs.tz),
                "ready_by": local_iso(a.ready_by, inputs.tz),
                "from_units": a.from_units,
                "to_units": a.to_units,
                "reason": a.reason,
                "event": a.event,
                "capped": a.capped,
            }
            for a in plan.actions
        ],
        "timeline": {
            "t": [local_iso(float(t), inputs.tz) for t in plan.t],
            "required": [int(x) for x in plan.required],
            "units": [int(x) for x in plan.units],
        },
    }


def plan_command(
    history: HistoryOpt = None,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Capacity policy (YAML; or use --from-cluster)."),
    ] = None,
    calendar: CalendarOpt = None,
    at: AtOpt = None,
    horizon: HorizonOpt = None,
    step: StepOpt = None,
    target: TargetOpt = None,
    current_units: Annotated[
        int | None,
        typer.Option(
            "--current-units",
            min=0,
            max=MAX_UNITS,
            help="Units running now (default: minUnits; --from-cluster: what the targets run).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    chart: ChartOpt = None,
    tz: TzOpt = None,
    from_cluster: FromClusterOpt = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Plan capacity per target: when to scale to how many units, and why."""
    with errors_to_exit():
        if from_cluster is not None:
            where = _Cluster(from_cluster, kubeconfig, context, namespace)
            files = {"--history": history, "--policy": policy, "--calendar": calendar}
            inputs = _load_from_cluster(where, files, at, horizon, step, tz)
        else:
            if policy is None:
                fail("--policy: is required (or --from-cluster NAME)", EXIT_INPUT)
            inputs = _load(history, calendar, policy, at, horizon, step, tz)
        assert inputs.spec is not None
        spec = inputs.spec
        chosen = _select_targets(spec, target)
        units = {
            t.name: inputs.running.get(t.name, t.min_units)
            if current_units is None
            else current_units
            for t in spec.targets
        }
        report = assembly.plan_pass(
            spec, inputs.history, inputs.calendar, at=inputs.at, units=units,
            state=inputs.state, step=inputs.step,
        )  # fmt: skip
        by_name = {r.name: r for r in report.targets}
        results: list[tuple[Target, int, Plan]] = []
        for tgt in chosen:
            plan = by_name[tgt.name].plan
            if plan is None:  # only when the pass read no demand (checked above)
                fail(f"{tgt.name}: no plan: {report.conditions[0].message}", EXIT_INPUT)
            results.append((tgt, units[tgt.name], plan))
        if chart is not None:
            model, fc = _forecast(inputs)
            tgt, _, plan = results[0]
            _chart(chart, inputs, fc, list(model.calendar.events), plan, tgt)
        if as_json:
            doc: dict[str, Any] = {
                "policy": spec.name,
                "at": local_iso(inputs.at, inputs.tz),
                "horizon_seconds": inputs.horizon,
                "quantile": spec.forecast.quantile,
                "targets": [_plan_json(p, t, c, inputs) for t, c, p in results],
            }
            if chart is not None:
                doc["chart"] = str(chart)
            print_json(doc)
            return
        for tgt, current, plan in results:
            noun = unit_noun(tgt)
            table = Table(
                title=f"Plan for {plan.target} ({tgt.kind.value}): {current} {noun} now, "
                f"peak {int(plan.units.max())} {noun}" + (" [capped]" if plan.capped else "")
            )
            for col in ("order at", "ready by", "units", "reason"):
                table.add_column(col)
            for a in plan.actions:
                table.add_row(
                    _clock(a.at, inputs.tz),
                    _clock(a.ready_by, inputs.tz),
                    f"{a.from_units}→{a.to_units}",
                    a.reason,
                )
            if not plan.actions:
                table.add_row("-", "-", f"{current}", "no change needed in the horizon")
            console.print(table)
            for note in plan.notes:
                console.print(f"note: {note}")
        if chart is not None:
            console.print(f"Wrote chart {chart}")


def register(app: typer.Typer) -> None:
    """Add the ``forecast`` and ``plan`` commands to ``app``."""
    app.command("forecast")(forecast_command)
    app.command("plan")(plan_command)
