"""The target registry: one row per policy target ``kind`` (KEDA's scaler factory is the
model): the builder that turns a policy target into its actuator and the RBAC rules it
needs (both in the kind's own file), and a line for the docs.

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

from headroom.controller.kube import GROUP, Kube
from headroom.controller.targets import (
    hpa_floor,
    keda_floor,
    redis_cluster,
    redis_scaler,
    scale_subresource,
)
from headroom.controller.targets.base import Rule, ScaleTarget
from headroom.controller.world import World, kind_error
from headroom.policies.policy import PolicySpec, Target

TargetBuilder = Callable[[Target, World], ScaleTarget]
RulesFor = Callable[[Target], list[Rule]]


@dataclass(frozen=True)
class TargetKindRow:
    """One target kind: how its actuator is built, the RBAC rules it needs, and one line
    for the docs and the schema (what a unit is, which class)."""

    build: TargetBuilder
    rules: RulesFor
    doc: str
    # The chart grants this kind per install: scale_subresource.scale_rules(apiGroup,
    # resource) for each
    # {apiGroup, resource} entry of this chart value (its objects are the user's kinds);
    # None: the kind's rules do not depend on the target, and the chart grants them always.
    chart_value: str | None = None
    in_cluster: bool = True  # False: the embedded mode only (no CRD, no RBAC)


# One row per target kind, alphabetical: adding a kind is one file in controller/targets/
# and one row here, then `make registry` (docs/adding-a-target.md).
TARGETS: Mapping[str, TargetKindRow] = {
    "Deployment": TargetKindRow(
        scale_subresource.deployment,
        lambda _t: scale_subresource.scale_rules("apps", "deployments"),
        "a replica of a Deployment, via its /scale (`scale_subresource.py`)",
    ),
    "HorizontalPodAutoscaler": TargetKindRow(
        hpa_floor.hpa_floor,
        hpa_floor.hpa_floor_rules,
        "a replica of an HPA's floor, spec.minReplicas (`hpa_floor.py`)",
    ),
    "LocalRedisCluster": TargetKindRow(
        redis_scaler.local_cluster,
        lambda _t: [],
        "a master of local redis-servers: headroom demo / local (`redis_scaler.py`)",
        in_cluster=False,
    ),
    "RedisCluster": TargetKindRow(
        redis_cluster.redis_cluster,
        lambda _t: scale_subresource.scale_rules(GROUP, "redisclusters"),
        "a master of a RedisCluster, via its /scale (`redis_cluster.py`)",
    ),
    "Scale": TargetKindRow(
        scale_subresource.any_scale,
        scale_subresource.any_scale_rules,
        "a replica of any object with a /scale: apiVersion + scaleKind (`scale_subresource.py`)",
        chart_value="scaleTargets",
    ),
    "ScaledObject": TargetKindRow(
        keda_floor.keda_floor,
        keda_floor.keda_floor_rules,
        "a replica of a KEDA ScaledObject's floor, spec.minReplicaCount (`keda_floor.py`)",
    ),
    "StatefulSet": TargetKindRow(
        scale_subresource.stateful_set,
        lambda _t: scale_subresource.scale_rules("apps", "statefulsets"),
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
