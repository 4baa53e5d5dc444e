"""What ``headroom forecast`` and ``headroom plan`` share: their options
(:func:`input_command`), and their inputs read as the operator reads them.

The history, the calendar and the policy come from files, or with ``--from-cluster``
from the CapacityPolicy, its own metrics source and the namespace's DemandEvents; the
history is read through the policy's history window on the loop's grid, cut at
``--at`` (the forecast sees only samples before it). The commands themselves are
``cli/forecast.py`` and ``cli/plan.py`` (they run the operator's own pass through
:mod:`headroom.controller.preview`, so a plan shows what the operator will do), the
chart both draw is ``cli/chart.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from headroom.cli._common import (
    EXIT_INPUT,
    CalendarOpt,
    ChartOpt,
    JsonOpt,
    duration_option,
    fail,
    with_options,
)
from headroom.cli._kube import CLUSTER_OPTIONS, Cluster
from headroom.cli.calendar import read_calendar
from headroom.cli.policy import read_policy
from headroom.cli.simulate import read_trace
from headroom.controller import assembly, preview
from headroom.controller.signals.csv import CsvSource
from headroom.policies.bounds import MAX_HORIZON
from headroom.policies.calendar import Calendar
from headroom.policies.calendars import parse_time
from headroom.policies.driver import DriverState
from headroom.policies.errors import SourceUnavailable
from headroom.policies.forecast.base import Forecast
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.resources import driver_state_from_status
from headroom.policies.series import Series
from headroom.policies.text import (
    local_iso,
    local_time,
    target_key,
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
TzOpt = Annotated[
    str | None,
    typer.Option("--tz", help="Zone for times shown (default: the calendar's, else UTC)."),
]


@dataclass(frozen=True)
class Inputs:
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
    seconds = duration_option(value, option)
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
) -> Inputs:
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
) -> Inputs:
    if not len(past) or not bool(np.isfinite(past.v).any()):
        fail(f"{source}: no samples before --at {local_iso(at_epoch, zone)}", EXIT_INPUT)
    horizon_s = _duration_option(horizon, "--horizon")
    if spec is not None and horizon_s is not None:
        forecast = spec.forecast.model_copy(update={"horizon": horizon_s})
        spec = spec.model_copy(update={"forecast": forecast})
    if horizon_s is None:
        horizon_s = spec.forecast.horizon if spec is not None else 86400.0
    later = later.between(at_epoch, at_epoch + horizon_s)
    return Inputs(
        past, later, calendar, spec, at_epoch, horizon_s, step_s, zone, state, running or {}
    )


def _load_from_cluster(
    name: str,
    where: Cluster,
    files: dict[str, Path | None],
    at: str | None,
    horizon: str | None,
    step: str | None,
    tz: str | None,
) -> Inputs:
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

    from headroom.controller.demand_events import list_demand_events
    from headroom.controller.operator.inputs import policy_history, running_units
    from headroom.controller.operator.inputs import read_policy as read_cluster_policy

    with where.connect() as (kube, ns):
        source = f"CapacityPolicy {ns}/{name}"
        spec, obj = read_cluster_policy(kube, ns, name)
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
    state, _ = driver_state_from_status(status.get("driver"))
    return _inputs(
        series, Series.empty(), calendar, spec, source, at_epoch, horizon, step_s, zone,
        state, current,
    )  # fmt: skip


def clock_text(epoch: float, tz: str) -> str:
    return local_time(epoch, tz, "%m-%d %H:%M")


def select_targets(spec: PolicySpec, name: str | None) -> list[Target]:
    if name is None:
        return list(spec.targets)
    chosen = [t for t in spec.targets if name in (t.name, target_key(t))]
    if not chosen:
        names = ", ".join(target_key(t) for t in spec.targets)
        fail(f"--target: no target {name!r} in the policy (targets: {names})", EXIT_INPUT)
    return chosen


def forecast_at(inputs: Inputs) -> tuple[HeadroomForecaster, Forecast]:
    """The policy's forecast at ``--at``, at p50/p90/p99: its forecaster fitted as the
    operator's driver fits it."""
    return preview.forecast_pass(
        inputs.spec,
        inputs.history,
        inputs.calendar,
        at=inputs.at,
        horizon=inputs.horizon,
        step=inputs.step,
        levels=LEVELS,
    )


def load_inputs(
    *,
    from_cluster: str | None,
    kubeconfig: Path | None,
    context: str | None,
    namespace: str | None,
    history: Path | None,
    calendar: Path | None,
    policy: Path | None,
    at: str | None,
    horizon: str | None,
    step: str | None,
    tz: str | None,
) -> Inputs:
    """The inputs of ``forecast``/``plan``: from the cluster (``--from-cluster``), else
    from the files."""
    if from_cluster is not None:
        where = Cluster(kubeconfig, context, namespace)
        files = {"--history": history, "--policy": policy, "--calendar": calendar}
        return _load_from_cluster(from_cluster, where, files, at, horizon, step, tz)
    return _load(history, calendar, policy, at, horizon, step, tz)


@dataclass(frozen=True)
class Shown:
    """What a command over the inputs shows: ``--target``, ``--json``, ``--chart``."""

    target: str | None
    as_json: bool
    chart: Path | None


_LOADED = (
    "from_cluster", "kubeconfig", "context", "namespace", "history", "calendar", "policy",
    "at", "horizon", "step", "tz",
)  # fmt: skip


def input_command(
    policy_help: str, *, policy_required: bool = False
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A typer command over the inputs (files, or ``--from-cluster``): the options
    ``forecast`` and ``plan`` share, the inputs loaded once, and then
    ``body(inputs, shown, **own)``, where ``own`` are the options ``body`` declares after
    its first two parameters (``plan``'s ``--current-units``). ``policy_required``: a
    command that needs ``--policy`` (or ``--from-cluster``) says so before reading."""
    policy_opt = Annotated[Path | None, typer.Option("--policy", help=policy_help)]

    def make(values: dict[str, Any]) -> tuple[Inputs, Shown]:
        if policy_required and values["from_cluster"] is values["policy"] is None:
            fail("--policy: is required (or --from-cluster NAME)", EXIT_INPUT)
        inputs = load_inputs(**{name: values[name] for name in _LOADED})
        return inputs, Shown(values["target"], values["as_json"], values["chart"])

    return with_options(
        before=[
            ("history", HistoryOpt, None), ("policy", policy_opt, None),
            ("calendar", CalendarOpt, None), ("at", AtOpt, None), ("horizon", HorizonOpt, None),
            ("step", StepOpt, None), ("target", TargetOpt, None),
        ],
        after=[
            ("as_json", JsonOpt, False), ("chart", ChartOpt, None), ("tz", TzOpt, None),
            ("from_cluster", FromClusterOpt, None), *CLUSTER_OPTIONS,
        ],
        takes=2,
        make=make,
    )  # fmt: skip
