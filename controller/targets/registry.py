"""The target registry: one row per policy target ``kind`` (KEDA's scaler factory is the
model), and the builders that turn a policy target into its actuator.

:data:`TARGETS` is the only list of target kinds. Everything else is derived from it:
the policy schema's :class:`~headroom.policies.plugins.TargetKind` (and so the CRD), the
operator's RBAC rules (:func:`required_rules`, and the chart's
``templates/rbac/_target_rules.tpl``) and the table in ``docs/adding-a-target.md`` are
written by ``make registry`` (``tests/support/registry_files.py``); a test fails while
they are stale. Adding a kind is one file in ``controller/targets/`` plus one row here
(``docs/adding-a-target.md``).

Builders get the network through :class:`~headroom.controller.world.World`; a kind
whose client the caller did not provide fails with a one-line
:class:`~headroom.policies.errors.PolicyError` naming the target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from headroom.controller.kube import GROUP, Kube
from headroom.controller.targets.base import ScaleTarget
from headroom.controller.targets.hpa_floor import HpaFloorTarget
from headroom.controller.targets.redis_cluster import RedisClusterTarget
from headroom.controller.targets.redis_scaler import RedisScalerTarget
from headroom.controller.targets.scale_subresource import ObjectRef, ScaleSubresourceTarget
from headroom.controller.world import World
from headroom.policies.errors import PolicyError, field_error
from headroom.policies.policy import PolicySpec, Target

TargetBuilder = Callable[[Target, World], ScaleTarget]
Rule = dict[str, Any]
RulesFor = Callable[[Target], list[Rule]]


def _where(target: Target) -> str:
    return f"targets[{target.name}]"


def kind_error(target: Target, message: str) -> PolicyError:
    """A one-line error on the target's ``kind``: ``policy: targets[web].kind: ...``."""
    return PolicyError(field_error("policy", f"{_where(target)}.kind", message))


def need_kube(target: Target, world: World) -> Kube:
    """The World's Kubernetes client, or a one-line error naming the target."""
    if world.kube is None:
        raise kind_error(
            target, f"{target.kind} needs a Kubernetes cluster (run it with the operator)"
        )
    return world.kube


def _deployment(target: Target, world: World) -> ScaleTarget:
    ref = ObjectRef("apps/v1", "Deployment", target.name, target.namespace)
    return ScaleSubresourceTarget(need_kube(target, world), ref)


def _hpa(target: Target, world: World) -> ScaleTarget:
    return HpaFloorTarget(need_kube(target, world), target.name, target.namespace)


def _local_redis(target: Target, world: World) -> ScaleTarget:
    if world.local_scaler is None:
        raise kind_error(
            target, f"{target.kind} runs in the embedded mode only (headroom demo / local)"
        )
    return RedisScalerTarget(world.local_scaler(target), name=target.name)


def _redis_cluster(target: Target, world: World) -> ScaleTarget:
    return RedisClusterTarget(need_kube(target, world), target.name, target.namespace)


def _scale(target: Target, world: World) -> ScaleTarget:
    # The policy model guarantees both for kind Scale; checked again for a clear message.
    if not (target.api_version and target.scale_kind):
        raise PolicyError(
            field_error("policy", _where(target), "kind Scale needs apiVersion and scaleKind")
        )
    ref = ObjectRef(target.api_version, target.scale_kind, target.name, target.namespace)
    return ScaleSubresourceTarget(need_kube(target, world), ref)


def _stateful_set(target: Target, world: World) -> ScaleTarget:
    ref = ObjectRef("apps/v1", "StatefulSet", target.name, target.namespace)
    return ScaleSubresourceTarget(need_kube(target, world), ref)


# -- RBAC: what the operator needs to size each kind ------------------------------------------


def scale_rules(group: str, resource: str) -> list[Rule]:
    """Read the object, resize it through its ``/scale``: exactly the calls
    :class:`ScaleSubresourceTarget` makes."""
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": ["get"]},
        {"apiGroups": [group], "resources": [f"{resource}/scale"], "verbs": ["get", "patch"]},
    ]


def _scale_kind_rules(target: Target) -> list[Rule]:
    if not (target.api_version and target.scale_kind):
        return []
    ref = ObjectRef(target.api_version, target.scale_kind, target.name, target.namespace)
    return scale_rules(ref.group, ref.resource)


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
    """One target kind: how its actuator is built, the RBAC rules it needs, and one line
    for the docs and the schema (what a unit is, which class)."""

    build: TargetBuilder
    rules: RulesFor
    doc: str
    # The chart grants this kind per install: scale_rules(apiGroup, resource) for each
    # {apiGroup, resource} entry of this chart value (its objects are the user's kinds);
    # None: the kind's rules do not depend on the target, and the chart grants them always.
    chart_value: str | None = None
    in_cluster: bool = True  # False: the embedded mode only (no CRD, no RBAC)


# One row per target kind, alphabetical: adding a kind is one file in controller/targets/
# and one row here, then `make registry` (docs/adding-a-target.md).
TARGETS: Mapping[str, TargetKindRow] = {
    "Deployment": TargetKindRow(
        _deployment,
        lambda _t: scale_rules("apps", "deployments"),
        "a replica of a Deployment, via its /scale (`scale_subresource.py`)",
    ),
    "HorizontalPodAutoscaler": TargetKindRow(
        _hpa, _hpa_rules, "a replica of an HPA's floor, spec.minReplicas (`hpa_floor.py`)"
    ),
    "LocalRedisCluster": TargetKindRow(
        _local_redis,
        lambda _t: [],
        "a master of local redis-servers: headroom demo / local (`redis_scaler.py`)",
        in_cluster=False,
    ),
    "RedisCluster": TargetKindRow(
        _redis_cluster,
        lambda _t: scale_rules(GROUP, "redisclusters"),
        "a master of a RedisCluster, via its /scale (`redis_cluster.py`)",
    ),
    "Scale": TargetKindRow(
        _scale,
        _scale_kind_rules,
        "a replica of any object with a /scale: apiVersion + scaleKind (`scale_subresource.py`)",
        chart_value="scaleTargets",
    ),
    "StatefulSet": TargetKindRow(
        _stateful_set,
        lambda _t: scale_rules("apps", "statefulsets"),
        "a replica of a StatefulSet, via its /scale (`scale_subresource.py`)",
    ),
}


def build_target(target: Target, world: World) -> ScaleTarget:
    """The actuator for one policy target."""
    row = TARGETS.get(target.kind)
    if row is None:
        raise kind_error(target, f"unknown kind {target.kind!r}")
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


def required_rules(target: Target) -> list[Rule]:
    """The RBAC rules (Role ``rules`` entries) the operator needs to size ``target``."""
    row = TARGETS.get(target.kind)
    return row.rules(target) if row is not None else []
