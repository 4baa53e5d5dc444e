"""Assembly: the one place a policy becomes a running thing.

:func:`build_runtime` ``(spec, world) -> Runtime`` builds everything a policy runs on —
its demand source and history, its latency history, the forecaster (with its time zone),
the driver (inside the :class:`~headroom.controller.loop.ControlLoop`), its targets and
its alert notifier — for every caller: ``headroom demo``, the operator's CapacityPolicy
controller, ``headroom plan``/``forecast`` (so a plan shows what the operator will do)
and the benches. Two alphabetical tables (KEDA's scaler factory is the model) map each
:class:`~headroom.policies.policy.TargetKind` to a :data:`TargetBuilder` and each
``metrics.qps.source`` to a :data:`SourceBuilder`; adding a target is one file in
``controller/targets/`` plus one row in :data:`TARGETS` (``docs/adding-a-target.md``).

Builders get the network passed in through :class:`World` (a Kubernetes client bundle,
a local cluster scaler, a Prometheus client factory, the clock); they never build
clients from globals, and a kind whose client the caller did not provide fails with a
one-line :class:`~headroom.policies.errors.PolicyError` naming the target. The only
thread started here is a sampling source's (Redis INFO), by :func:`build_runtime`;
:meth:`Runtime.close` stops it.

:func:`check` runs the same lookups without a World (``simulate`` and ``policy
validate`` use it), and :func:`required_rules` lists the RBAC rules each Kubernetes
target needs, which the chart must grant (its tests compare).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from headroom.controller.alerts.notifier import AlertNotifier
from headroom.controller.clock import Clock
from headroom.controller.history import SourceHistory
from headroom.controller.kube import GROUP, Kube
from headroom.controller.loop import ActionSink, ControlLoop, HistoryProvider, NoSink
from headroom.controller.redis.connection import NodeAddr, RedisAuth
from headroom.controller.redis.scaler import ClusterScaler
from headroom.controller.signals.access import UNRESTRICTED, SourceAccess
from headroom.controller.signals.base import Metric, SignalSource
from headroom.controller.signals.csv import CsvSource
from headroom.controller.signals.prometheus import REDIS_EXPORTER, PromClient, PrometheusSource
from headroom.controller.signals.redis_info import RedisInfoSource, default_connect
from headroom.controller.targets.base import ScaleTarget
from headroom.controller.targets.hpa_floor import HpaFloorTarget
from headroom.controller.targets.redis_cluster import RedisClusterTarget
from headroom.controller.targets.redis_scaler import RedisScalerTarget
from headroom.controller.targets.scale_subresource import ObjectRef, ScaleSubresourceTarget
from headroom.policies.calendar import Calendar
from headroom.policies.driver import DriverState
from headroom.policies.errors import PolicyError, field_error
from headroom.policies.forecast.base import Forecaster
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import (
    Forecasting,
    MetricQuery,
    Metrics,
    PolicySpec,
    Target,
    TargetKind,
)
from headroom.policies.series import Series


@dataclass(frozen=True)
class World:
    """The outside world a policy's parts are built over; every field is optional, and a
    kind that needs a missing one is refused with a one-line error."""

    kube: Kube | None = None  # Kubernetes targets (the operator)
    local_scaler: Callable[[Target], ClusterScaler] | None = None  # LocalRedisCluster
    redis_seed: str | None = None  # Redis INFO seed when metrics.qps.url gives none
    redis_auth: RedisAuth | None = None  # Redis INFO: the cluster's password/TLS
    # Redis INFO of metrics.qps.redisCluster: that RedisCluster's address and own
    # password/TLS, by name (the operator: in the policy's namespace)
    redis_cluster: Callable[[str], tuple[NodeAddr, RedisAuth]] | None = None
    prometheus: Callable[[str], PromClient] | None = None  # client per URL (tests pass one)
    now: Callable[[], float] = field(default=time.time)  # the sources' clock (scaled: demo)
    stale_after: float = 30.0  # Redis INFO: samples older than this are "stale"
    source_timeout: float = 5.0  # Prometheus: the budget of one call, retries included
    access: SourceAccess = UNRESTRICTED  # files and addresses sources may use (operator: few)


TargetBuilder = Callable[[Target, World], ScaleTarget]
SourceBuilder = Callable[[Metrics, World], SignalSource]


def _where(target: Target) -> str:
    return f"targets[{target.name}]"


def _kind_error(target: Target, message: str) -> PolicyError:
    """A one-line error on the target's ``kind``: ``policy: targets[web].kind: ...``."""
    return PolicyError(field_error("policy", f"{_where(target)}.kind", message))


def _need_kube(target: Target, world: World) -> Kube:
    if world.kube is None:
        raise _kind_error(
            target, f"{target.kind} needs a Kubernetes cluster (run it with the operator)"
        )
    return world.kube


def _deployment(target: Target, world: World) -> ScaleTarget:
    ref = ObjectRef("apps/v1", "Deployment", target.name, target.namespace)
    return ScaleSubresourceTarget(_need_kube(target, world), ref)


def _hpa(target: Target, world: World) -> ScaleTarget:
    return HpaFloorTarget(_need_kube(target, world), target.name, target.namespace)


def _local_redis(target: Target, world: World) -> ScaleTarget:
    if world.local_scaler is None:
        raise _kind_error(
            target, f"{target.kind} runs in the embedded mode only (headroom demo / local)"
        )
    return RedisScalerTarget(world.local_scaler(target), name=target.name)


def _redis_cluster(target: Target, world: World) -> ScaleTarget:
    return RedisClusterTarget(_need_kube(target, world), target.name, target.namespace)


def _scale(target: Target, world: World) -> ScaleTarget:
    # The policy model guarantees both for kind Scale; checked again for a clear message.
    if not (target.api_version and target.scale_kind):
        raise PolicyError(
            field_error("policy", _where(target), "kind Scale needs apiVersion and scaleKind")
        )
    ref = ObjectRef(target.api_version, target.scale_kind, target.name, target.namespace)
    return ScaleSubresourceTarget(_need_kube(target, world), ref)


def _stateful_set(target: Target, world: World) -> ScaleTarget:
    ref = ObjectRef("apps/v1", "StatefulSet", target.name, target.namespace)
    return ScaleSubresourceTarget(_need_kube(target, world), ref)


# -- RBAC: what the operator needs to size each kind (the chart must grant it) ---------------

Rule = dict[str, Any]
RulesFor = Callable[[Target], list[Rule]]


def _rules(group: str, resource: str, *, write: bool = True) -> list[Rule]:
    scale_verbs = ["get", "patch"] if write else ["get"]  # exactly the calls the targets make
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": ["get"]},
        {"apiGroups": [group], "resources": [f"{resource}/scale"], "verbs": scale_verbs},
    ]


def _scale_rules(target: Target) -> list[Rule]:
    if not (target.api_version and target.scale_kind):
        return []
    ref = ObjectRef(target.api_version, target.scale_kind, target.name, target.namespace)
    return _rules(ref.group, ref.resource)


def _hpa_rules(target: Target) -> list[Rule]:
    # The floor is patched; the scale target (any Deployment or StatefulSet) is only
    # read, for its ready replicas.
    return [
        {
            "apiGroups": ["autoscaling"],
            "resources": ["horizontalpodautoscalers"],
            "verbs": ["get", "patch"],
        },
        {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": ["get"]},
    ]


@dataclass(frozen=True)
class TargetKindRow:
    """One target kind: how its actuator is built and the RBAC rules it needs."""

    build: TargetBuilder
    rules: RulesFor


# One row per target kind, alphabetical: adding a kind is one file in controller/targets/
# and one row here (docs/adding-a-target.md).
TARGETS: Mapping[TargetKind, TargetKindRow] = {
    TargetKind.DEPLOYMENT: TargetKindRow(_deployment, lambda _t: _rules("apps", "deployments")),
    TargetKind.HPA: TargetKindRow(_hpa, _hpa_rules),
    TargetKind.LOCAL_REDIS: TargetKindRow(_local_redis, lambda _t: []),  # no Kubernetes
    TargetKind.REDIS_CLUSTER: TargetKindRow(
        _redis_cluster, lambda _t: _rules(GROUP, "redisclusters")
    ),
    TargetKind.SCALE: TargetKindRow(_scale, _scale_rules),
    TargetKind.STATEFUL_SET: TargetKindRow(
        _stateful_set, lambda _t: _rules("apps", "statefulsets")
    ),
}


def build_target(target: Target, world: World) -> ScaleTarget:
    """The actuator for one policy target."""
    row = TARGETS.get(target.kind)
    if row is None:
        raise _kind_error(target, f"unknown kind {target.kind!r}")
    return row.build(target, world)


def build_targets(spec: PolicySpec, world: World) -> dict[str, ScaleTarget]:
    """Every target of ``spec``, keyed by the policy's target name (what the loop wants)."""
    return {target.name: build_target(target, world) for target in spec.targets}


def targets_for(kube: Kube, namespace: str, target: Target) -> ScaleTarget:
    """The operator's builder (``capacitypolicy.TargetsFor``): ``target`` over ``kube``, in
    the CapacityPolicy's ``namespace`` unless the target names its own."""
    if "namespace" not in target.model_fields_set:
        target = target.model_copy(update={"namespace": namespace})
    return build_target(target, World(kube=kube))


# -- signal sources ------------------------------------------------------------------------


def _strip_scheme(url: str, *schemes: str) -> str:
    for scheme in schemes:
        if url.startswith(scheme):
            return url[len(scheme) :]
    return url


def _csv(metrics: Metrics, world: World) -> SignalSource:
    if not metrics.qps.url:
        raise PolicyError(
            field_error("policy", "metrics.qps.url", "is required for source csv (a file path)")
        )
    path = world.access.file(metrics.qps.url, "metrics.qps.url")
    return CsvSource(path, now=world.now, quote=world.access.quote)


def _prometheus(metrics: Metrics, world: World) -> SignalSource:
    url = metrics.qps.url
    if not url:
        raise PolicyError(
            field_error("policy", "metrics.qps.url", "is required for source prometheus")
        )
    if not url.startswith(("http://", "https://")):
        raise PolicyError(field_error("policy", "metrics.qps.url", "must be an http(s) URL"))
    world.access.address(url, "metrics.qps.url", "http")
    queries: dict[Metric, str] = {}
    if metrics.qps.query:
        queries[Metric.QPS] = metrics.qps.query
    latency = metrics.latency_p99
    if latency is not None and latency.query and latency.source == "prometheus":
        queries[Metric.P99_LATENCY] = latency.query
    query_set = REDIS_EXPORTER.override(queries)
    if world.prometheus is not None:
        return PrometheusSource(
            world.prometheus(url), queries=query_set, timeout=world.source_timeout, now=world.now
        )
    return PrometheusSource.connect(
        url, queries=query_set, timeout=world.source_timeout, now=world.now
    )


def _redis(metrics: Metrics, world: World) -> SignalSource:
    seed, auth = _redis_seed(metrics, world)
    return RedisInfoSource(
        seed,
        connect=default_connect(auth=auth),
        now=world.now,
        stale_after=world.stale_after,
    )


def _redis_seed(metrics: Metrics, world: World) -> tuple[str, RedisAuth | None]:
    """The Redis INFO seed and the password/TLS to read it with."""
    cluster = metrics.qps.redis_cluster
    if cluster is not None:
        if world.redis_cluster is None:
            raise PolicyError(
                field_error(
                    "policy", "metrics.qps.redisCluster", "needs the operator (a RedisCluster)"
                )
            )
        # The address is the cluster's own, never a policy's url: its password goes
        # nowhere else.
        addr, auth = world.redis_cluster(cluster)
        return str(addr), auth
    seed = metrics.qps.url or world.redis_seed
    if not seed:
        raise PolicyError(
            field_error(
                "policy", "metrics.qps.url", "is required for source redis (a seed host:port)"
            )
        )
    world.access.address(seed, "metrics.qps.url", "redis")
    return _strip_scheme(seed, "redis://"), world.redis_auth


# One row per metrics source, alphabetical; the keys are MetricQuery.source's values.
SOURCES: Mapping[str, SourceBuilder] = {
    "csv": _csv,
    "prometheus": _prometheus,
    "redis": _redis,
}


def build_source(metrics: Metrics, world: World) -> SignalSource:
    """The demand source of a policy's ``metrics`` (QPS, and p99 where the source has it)."""
    builder = SOURCES.get(metrics.qps.source)
    if builder is None:
        raise PolicyError(
            field_error("policy", "metrics.qps.source", f"unknown source {metrics.qps.source!r}")
        )
    return builder(metrics, world)


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


def start_sampling(source: SignalSource, interval: float) -> bool:
    """Start a source that samples in the background (Redis INFO); others need nothing.
    True when it samples (then a gap in its newest sample is a gap now)."""
    if isinstance(source, RedisInfoSource):
        source.start(interval=interval)
        return True
    return False


def stop_sampling(source: SignalSource) -> None:
    if isinstance(source, RedisInfoSource):
        source.stop()


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
            raise _kind_error(target, f"unknown kind {target.kind!r}")
    query: MetricQuery | None
    for where, query in (("qps", spec.metrics.qps), ("latencyP99", spec.metrics.latency_p99)):
        if query is not None and query.source not in SOURCES:
            raise PolicyError(
                field_error("policy", f"metrics.{where}.source", f"unknown {query.source!r}")
            )


def required_rules(target: Target) -> list[Rule]:
    """The RBAC rules (Role ``rules`` entries) the operator needs to size ``target``."""
    row = TARGETS.get(target.kind)
    return row.rules(target) if row is not None else []
