"""Scale target that raises a KEDA ScaledObject's floor (``spec.minReplicaCount``).

KEDA (keda.sh/v1alpha1) scales a workload through an HPA it owns and rewrites that HPA
from the ScaledObject, so a floor Headroom needs goes on the ScaledObject, not on the
HPA. The rules, annotations and status are :class:`~headroom.controller.targets.
hpa_floor.HpaFloorTarget`'s (``docs/adding-a-target.md``, the HPA floor rule), with
KEDA's fields and defaults: ``minReplicaCount`` (unset: 0), ``maxReplicaCount`` (unset:
100) and ``scaleTargetRef`` (``kind`` unset: Deployment; ``name`` required). ``ready``
is the scale target's ``status.readyReplicas``; ``busy`` while fewer are ready than
the floor. Built for policy targets of kind ``ScaledObject`` (the target's name is the
ScaledObject's).
"""

from __future__ import annotations

from typing import Any, ClassVar

from headroom.controller.targets.base import Rule
from headroom.controller.targets.hpa_floor import HpaFloorTarget, floor_rules
from headroom.controller.world import World
from headroom.policies.policy import Target

KEDA_GROUP, KEDA_VERSION, KEDA_PLURAL = "keda.sh", "v1alpha1", "scaledobjects"


class ScaledObjectFloorTarget(HpaFloorTarget):
    """A KEDA ScaledObject's ``minReplicaCount`` as a ``ScaleTarget``."""

    KIND: ClassVar[str] = "ScaledObject"
    PREFIX: ClassVar[str] = "scaledobject"
    MIN_FIELD: ClassVar[str] = "minReplicaCount"
    MIN_DEFAULT: ClassVar[int] = 0
    MAX_FIELD: ClassVar[str] = "maxReplicaCount"
    MAX_DEFAULT: ClassVar[int | None] = 100
    REF_KIND_DEFAULT: ClassVar[str | None] = "Deployment"

    def get(self) -> Any:
        return self.kube.custom.get_namespaced_custom_object(
            KEDA_GROUP, KEDA_VERSION, self.namespace, KEDA_PLURAL, self.object_name
        )

    def patch(self, body: dict[str, Any]) -> Any:
        return self.kube.custom.patch_namespaced_custom_object(
            KEDA_GROUP, KEDA_VERSION, self.namespace, KEDA_PLURAL, self.object_name, body
        )


# -- from a policy: the ScaledObject row of targets/registry.py ------------------------------


def keda_floor(target: Target, world: World) -> ScaledObjectFloorTarget:
    return ScaledObjectFloorTarget(world.kube_for(target), target.name, target.namespace)


def keda_floor_rules(_target: Target) -> list[Rule]:
    return floor_rules(KEDA_GROUP, KEDA_PLURAL)
