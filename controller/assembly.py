"""Assembly: the one place a policy's target kinds and signal sources become objects.

``headroom demo``, ``headroom simulate`` and the operator's CapacityPolicy controller
all turn a :class:`~headroom.policies.policy.PolicySpec` into actuators and a demand
source here, so a kind means the same thing everywhere. Two alphabetical tables
(KEDA's scaler factory is the model) map each
:class:`~headroom.policies.policy.TargetKind` to a :data:`TargetBuilder` and each
``metrics.qps.source`` to a :data:`SourceBuilder`; adding a target is one file in
``controller/targets/`` plus one row in :data:`TARGETS` (``docs/adding-a-target.md``).

Builders get the network passed in through :class:`World` (a Kubernetes client bundle,
a local cluster scaler, a Prometheus client factory, the clock); they never build
clients from globals, and a kind whose client the caller did not provide fails with a
one-line :class:`~headroom.policies.errors.PolicyError` naming the target. Nothing
here starts a thread or writes anything: sampling sources (Redis INFO) are started by
the caller (:func:`start_sampling`).

The operator passes :func:`targets_for` as its ``TargetsFor`` and builds its demand
history with :func:`build_source` + :func:`build_history`, as the demo does.

:func:`check` runs the same lookups without a World (``simulate`` and ``policy
validate`` use it), and :func:`required_rules` lists the RBAC rules each Kubernetes
target needs, which the chart must grant (its tests compare).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from headroom.controller.history import SourceHistory
from headroom.controller.kube import GROUP, Kube
from headroom.controller.redis.scaler import ClusterScaler
from headroom.controller.signals.access import UNRESTRICTED, SourceAccess
from headroom.controller.signals.base import Metric, SignalSource
from headroom.controller.signals.csv import CsvSource
from headroom.controller.signals.prometheus import REDIS_EXPORTER, PromClient, PrometheusSource
from headroom.controller.signals.redis_info import RedisInfoSource
from headroom.controller.targets.base import ScaleTarget
from headroom.controller.targets.hpa_floor import HpaFloorTarget
from headroom.controller.targets.redis_cluster import RedisClusterTarget
from headroom.controller.targets.redis_scaler import RedisScalerTarget
from headroom.controller.targets.scale_subresource import ObjectRef, ScaleSubresourceTarget
from headroom.policies.errors import PolicyError, field_error
from headroom.policies.policy import MetricQuery, Metrics, PolicySpec, Target, TargetKind
from headroom.policies.series import Series


@dataclass(frozen=True)
class World:
    """The outside world a policy's parts are built over; every field is optional, and a
    kind that needs a missing one is refused with a one-line error."""

    kube: Kube | None = None  # Kubernetes targets (the operator)
    local_scaler: Callable[[Target], ClusterScaler] | None = None  # LocalRedisCluster
    redis_seed: str | None = None  # Redis INFO seed when metrics.qps.url gives none
    prometheus: Callable[[str], PromClient] | None = None  # client per URL (tests pass one)
    now: Callable[[], float] = field(default=time.time)  # the sources' clock (scaled: demo)
    stale_after: float = 30.0  # Redis INFO: samples older than this are "stale"
    source_timeout: float = 5.0  # Prometheus: the budget of one call, retries included
    access: SourceAccess = UNRESTRICTED  # files and addresses sources may use (operator: few)


TargetBuilder = Callable[[Target, World], ScaleTarget]
SourceBuilder = Callable[[Metrics, World], SignalSource]


def _where(target: Target) -> str:
    return f"targets[{target.name}]"


def _need_kube(target: Target, world: World) -> Kube:
    if world.kube is None:
        raise PolicyError(
            field_error(
                "policy",
                f"{_where(target)}.kind",
                f"{target.kind} needs a Kubernetes cluster (run it with the operator)",
            )
        )
    return world.kube


def _deployment(target: Target, world: World) -> ScaleTarget:
    ref = ObjectRef("apps/v1", "Deployment", target.name, target.namespace)
    return ScaleSubresourceTarget(_need_kube(target, world), ref)


def _hpa(target: Target, world: World) -> ScaleTarget:
    return HpaFloorTarget(_need_kube(target, world), target.name, target.namespace)


def _local_redis(target: Target, world: World) -> ScaleTarget:
    if world.local_scaler is None:
        raise PolicyError(
            field_error(
                "policy",
                f"{_where(target)}.kind",
                f"{target.kind} runs in the embedded mode only (headroom demo / local)",
            )
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


# One row per target kind, alphabetical.
TARGETS: Mapping[TargetKind, TargetBuilder] = {
    TargetKind.DEPLOYMENT: _deployment,
    TargetKind.HPA: _hpa,
    TargetKind.LOCAL_REDIS: _local_redis,
    TargetKind.REDIS_CLUSTER: _redis_cluster,
    TargetKind.SCALE: _scale,
    TargetKind.STATEFUL_SET: _stateful_set,
}


def build_target(target: Target, world: World) -> ScaleTarget:
    """The actuator for one policy target."""
    builder = TARGETS.get(target.kind)
    if builder is None:
        raise PolicyError(
            field_error("policy", f"{_where(target)}.kind", f"unknown kind {target.kind!r}")
        )
    return builder(target, world)


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
    seed = metrics.qps.url or world.redis_seed
    if not seed:
        raise PolicyError(
            field_error(
                "policy", "metrics.qps.url", "is required for source redis (a seed host:port)"
            )
        )
    world.access.address(seed, "metrics.qps.url", "redis")
    return RedisInfoSource(
        _strip_scheme(seed, "redis://"), now=world.now, stale_after=world.stale_after
    )


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
    spec: PolicySpec, source: SignalSource, *, step: float = 60.0, prior: Series | None = None
) -> SourceHistory:
    """The loop's demand history over ``source``: the policy's ``forecast.history`` back
    from each pass, on a ``step`` grid, after an optional ``prior`` series."""
    return SourceHistory(source, lookback=spec.forecast.history, step=step, prior=prior)


def build_latency(spec: PolicySpec, source: SignalSource, *, step: float = 60.0) -> SourceHistory:
    """The loop's p99 latency history (seconds, the last 10 minutes) over the policy's
    source: what the SLO-breach alert compares with ``slo.latencyP99Ms``. A source that
    does not measure latency answers Unavailable, which the loop reads as "not measured"."""
    return SourceHistory(source, lookback=600.0, step=step, metric=Metric.P99_LATENCY)


def start_sampling(source: SignalSource, interval: float) -> None:
    """Start a source that samples in the background (Redis INFO); others need nothing."""
    if isinstance(source, RedisInfoSource):
        source.start(interval=interval)


def stop_sampling(source: SignalSource) -> None:
    if isinstance(source, RedisInfoSource):
        source.stop()


def check(spec: PolicySpec) -> None:
    """Raise :class:`PolicyError` if a target kind or source of ``spec`` has no builder."""
    for target in spec.targets:
        if target.kind not in TARGETS:
            raise PolicyError(
                field_error("policy", f"{_where(target)}.kind", f"unknown kind {target.kind!r}")
            )
    query: MetricQuery | None
    for where, query in (("qps", spec.metrics.qps), ("latencyP99", spec.metrics.latency_p99)):
        if query is not None and query.source not in SOURCES:
            raise PolicyError(
                field_error("policy", f"metrics.{where}.source", f"unknown {query.source!r}")
            )


# -- RBAC ------------------------------------------------------------------------------------

Rule = dict[str, Any]


def _rules(group: str, resource: str, *, write: bool = True) -> list[Rule]:
    scale_verbs = ["get", "patch"] if write else ["get"]  # exactly the calls the targets make
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": ["get"]},
        {"apiGroups": [group], "resources": [f"{resource}/scale"], "verbs": scale_verbs},
    ]


def required_rules(target: Target) -> list[Rule]:
    """The RBAC rules (Role ``rules`` entries) the operator needs to size ``target``."""
    kind = target.kind
    if kind is TargetKind.DEPLOYMENT:
        return _rules("apps", "deployments")
    if kind is TargetKind.STATEFUL_SET:
        return _rules("apps", "statefulsets")
    if kind is TargetKind.REDIS_CLUSTER:
        return _rules(GROUP, "redisclusters")
    if kind is TargetKind.SCALE and target.api_version and target.scale_kind:
        ref = ObjectRef(target.api_version, target.scale_kind, target.name, target.namespace)
        return _rules(ref.group, ref.resource)
    if kind is TargetKind.HPA:
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
    return []  # the embedded mode: no Kubernetes
