"""Assembly: the one place a policy becomes a running thing.

:func:`build_runtime` ``(spec, world) -> Runtime`` builds everything a policy runs on —
its demand source and history, its latency history, the forecaster (with its time zone),
the driver (inside the :class:`~headroom.controller.loop.ControlLoop`), its targets and
its alert notifier — for every caller: ``headroom demo``, the operator's CapacityPolicy
controller, ``headroom plan``/``forecast`` (so a plan shows what the operator will do)
and the benches.

The plug-ins come from their registries, one per kind, each the only list of its kind:
``controller/targets/registry.py`` (:data:`TARGETS`: each policy target ``kind``),
``controller/signals/registry.py`` (:data:`SOURCES`: each ``metrics.qps.source``) and
``controller/alerts/config.py`` (``SINKS``: each alert sink ``type``); the schema's
names, the chart's RBAC and the docs' tables are generated from them (``make registry``).
Builders get the network passed in through :class:`~headroom.controller.world.World`
(a Kubernetes client bundle, a local cluster scaler, a Prometheus client factory, the
clock). The only thread started here is a sampling source's (Redis INFO), by
:func:`build_runtime`; :meth:`Runtime.close` stops it.

:func:`check` runs the same lookups without a World (``simulate`` and ``policy
validate`` use it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from headroom.controller.alerts.notifier import AlertNotifier
from headroom.controller.clock import Clock
from headroom.controller.history import SourceHistory
from headroom.controller.loop import ActionSink, ControlLoop, HistoryProvider, NoSink
from headroom.controller.signals.base import Metric, SignalSource
from headroom.controller.signals.registry import (
    SOURCES,
    build_source,
    start_sampling,
    stop_sampling,
)
from headroom.controller.targets.base import ScaleTarget
from headroom.controller.targets.registry import (
    TARGETS,
    build_target,
    build_targets,
    required_rules,
    targets_for,
)
from headroom.controller.world import World, kind_error
from headroom.policies.calendar import Calendar
from headroom.policies.driver import DriverState
from headroom.policies.errors import PolicyError, field_error
from headroom.policies.forecast.base import Forecaster
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import Forecasting, MetricQuery, PolicySpec, Target
from headroom.policies.series import Series

# The registries' entry points, here too: every caller builds through this module.
__all__ = [
    "SOURCES",
    "TARGETS",
    "Runtime",
    "World",
    "build_forecaster",
    "build_history",
    "build_latency",
    "build_runtime",
    "build_source",
    "build_target",
    "build_targets",
    "check",
    "required_rules",
    "start_sampling",
    "stop_sampling",
    "targets_for",
]


def build_history(
    spec: PolicySpec | None,
    source: SignalSource,
    *,
    step: float = 60.0,
    prior: Series | None = None,
    live: bool = False,
) -> SourceHistory:
    """The loop's demand history over ``source``: the policy's ``forecast.history`` (the
    default's, without a policy) back from each pass, on a ``step`` grid, after an
    optional ``prior`` series. ``live``: ``source`` is sampling now, so a gap in its
    newest sample is a gap (MetricsUnavailable) for that pass."""
    lookback = (spec.forecast if spec is not None else Forecasting()).history
    return SourceHistory(source, lookback=lookback, step=step, prior=prior, live=live)


def build_latency(spec: PolicySpec, source: SignalSource, *, step: float = 60.0) -> SourceHistory:
    """The loop's p99 latency history (seconds, the last 10 minutes) over the policy's
    source: what the SLO-breach alert compares with ``slo.latencyP99Ms``. A source that
    does not measure latency answers Unavailable, which the loop reads as "not measured"."""
    return SourceHistory(source, lookback=600.0, step=step, metric=Metric.P99_LATENCY)


def build_forecaster(spec: PolicySpec | None, tz: str | None = None) -> HeadroomForecaster:
    """The policy's forecaster. ``tz``: the zone whose local time the daily and weekly
    shape follows; None: the zone of the first event selecting the policy (the
    forecaster's own default), which is what the operator runs with."""
    return HeadroomForecaster(spec.forecast if spec is not None else None, tz=tz)


@dataclass
class Runtime:
    """A running policy: its control loop (targets, histories, driver, forecaster, sink,
    notifier) and what must be stopped when the policy goes (its sampling source, its
    notifier's delivery threads)."""

    loop: ControlLoop
    source: SignalSource | None  # the demand source built here (None: history was given)
    notifier: AlertNotifier | None = None

    @property
    def spec(self) -> PolicySpec:
        return self.loop.spec

    def close(self, timeout: float = 2.0) -> None:
        """Stop sampling and hand the notifier ``timeout`` seconds to deliver what is queued."""
        if self.source is not None:
            stop_sampling(self.source)
        if self.notifier is not None:
            self.notifier.close(timeout=timeout)


def build_runtime(
    spec: PolicySpec,
    world: World,
    *,
    calendar: Callable[[], Calendar],
    clock: Clock,
    sink: ActionSink | None = None,
    notifier: AlertNotifier | None = None,
    state: DriverState | None = None,
    tz: str | None = None,
    prior: Series | None = None,
    step: float = 60.0,
    sample_every: float = 10.0,
    with_latency: bool = True,
    targets: Callable[[Target], ScaleTarget] | None = None,
    history: HistoryProvider | None = None,
    forecaster: Callable[[PolicySpec], Forecaster] | None = None,
) -> Runtime:
    """Everything ``spec`` runs on, over ``world``, ready for ``runtime.loop.reconcile()``.

    The demand source is ``spec.metrics``' (sampling every ``sample_every`` s when it
    samples), read through the policy's history window on a ``step`` grid after an
    optional ``prior`` series, with the same source's p99 latency for the SLO alert
    (``with_latency=False``: none; the demo's scaled clock cannot spare a second full
    read of its Redis INFO history per pass); the targets are :func:`build_target`'s.
    ``calendar`` is called every pass (the driver takes the events that select the
    policy); ``state``: the driver state from before a restart.
    ``targets``/``history``/``forecaster`` replace the assembled parts where a caller must
    (the operator resolves a target's namespace; tests and benches pass a fixed history);
    every other part is built here, the same way for every caller."""
    world = replace(world, now=clock.now)
    source: SignalSource | None = None
    latency: HistoryProvider | None = None
    if history is None:
        source = build_source(spec.metrics, world)
        live = start_sampling(source, interval=sample_every)
        history = build_history(spec, source, step=step, prior=prior, live=live)
        latency = build_latency(spec, source, step=step) if with_latency else None
    build = targets or (lambda target: build_target(target, world))
    make_forecaster = forecaster or (lambda policy: build_forecaster(policy, tz))
    try:
        actuators = {target.name: build(target) for target in spec.targets}
        loop = ControlLoop(
            spec,
            targets=actuators,
            history=history,
            latency=latency,
            calendar=calendar,
            clock=clock,
            forecaster=lambda: make_forecaster(spec),
            sink=sink or NoSink(),
            step=step,
            state=state,
            observer=notifier,
        )
    except BaseException:
        if source is not None:
            stop_sampling(source)
        raise
    return Runtime(loop, source, notifier)


def check(spec: PolicySpec) -> None:
    """Raise :class:`PolicyError` if a target kind or source of ``spec`` has no builder."""
    for target in spec.targets:
        if target.kind not in TARGETS:
            raise kind_error(target, f"unknown kind {target.kind!r}")
    query: MetricQuery | None
    for where, query in (("qps", spec.metrics.qps), ("latencyP99", spec.metrics.latency_p99)):
        if query is not None and query.source not in SOURCES:
            raise PolicyError(
                field_error("policy", f"metrics.{where}.source", f"unknown {query.source!r}")
            )
