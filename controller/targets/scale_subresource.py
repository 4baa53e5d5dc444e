"""Scale target for any Kubernetes object with a ``/scale`` subresource.

Deployments and StatefulSets go through the apps API's ``*_scale`` calls; every other
kind (a RedisCluster, a Cluster API MachineDeployment, any CRD declaring
``subresources.scale``) through ``CustomObjectsApi``'s ``*_custom_object_scale`` calls.
The assembly module (:mod:`headroom.controller.assembly`) builds one per policy target
of kind ``Deployment``, ``StatefulSet`` or ``Scale``; :class:`HpaFloorTarget` reads the
HPA's scale target through it and :class:`RedisClusterTarget` builds on it.

``scale`` reads the Scale, returns if it already asks for ``units`` and otherwise patches
``spec.replicas`` with the Scale's ``resourceVersion`` as a precondition, so a 409 means
someone else changed the size meanwhile: the size is re-read and the write recomputed
(:func:`headroom.controller.kube.retry_conflicts`). ``status`` reads the Scale (desired
and current replicas, i.e. the CRD's ``specReplicasPath``/``statusReplicasPath``) and the
object itself for readiness (``status.readyReplicas``, or the given ``ready_path``).
Nothing is kept in memory: the cluster is the state, so a new instance (an operator
restart) sees exactly what the last one left. A failed write leaves the Scale as it was,
so the loop's next pass sees the old size and asks again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from headroom.controller.kube import TARGET_RETRIES, Kube, Retries
from headroom.controller.targets.base import Rule, ScaleStatus
from headroom.controller.world import World
from headroom.policies.errors import InputError, PolicyError, field_error
from headroom.policies.policy import Target

log = logging.getLogger(__name__)

# Kinds the apps/v1 API serves a typed /scale for, and the stem of their client methods
# (read_namespaced_<stem>, read_namespaced_<stem>_scale, patch_namespaced_<stem>_scale).
_APPS_KINDS = {
    "Deployment": "deployment",
    "StatefulSet": "stateful_set",
    "ReplicaSet": "replica_set",
}


@dataclass(frozen=True)
class ObjectRef:
    """Which object a target sizes: ``apiVersion``, ``kind``, namespace and name.

    ``plural`` is the resource name in the URL; when not given it is the kind in lower
    case plus ``s`` (``MachineDeployment`` -> ``machinedeployments``, ``RedisCluster`` ->
    ``redisclusters``), which is the convention every CRD Headroom knows follows.
    """

    api_version: str
    kind: str
    name: str
    namespace: str = "default"
    plural: str | None = None

    def __post_init__(self) -> None:
        for field_name in ("api_version", "kind", "name", "namespace"):
            if not getattr(self, field_name):
                raise InputError(f"scale target: {field_name} is required")
        if self.api_version.count("/") > 1:
            raise InputError(
                f"scale target {self.name}: apiVersion must be group/version, "
                f"not {self.api_version!r}"
            )

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def resource(self) -> str:
        return self.plural or f"{self.kind.lower()}s"

    @property
    def is_apps(self) -> bool:
        return self.group == "apps" and self.kind in _APPS_KINDS

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ScaleReading:
    """One look at the object: its Scale and the object itself (both as plain dicts)."""

    desired: int  # Scale spec.replicas
    current: int  # Scale status.replicas (the CRD's statusReplicasPath)
    resource_version: str
    obj: dict[str, Any]


def path_get(obj: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (``status.readyReplicas``; a leading dot is allowed)."""
    node: Any = obj
    for part in path.lstrip(".").split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


class ScaleSubresourceTarget:
    """An object's replicas through its ``/scale`` subresource, as a ``ScaleTarget``.

    ``ready_path`` is where the object reports units ready to serve (default
    ``status.readyReplicas``; a missing value is 0, as Kubernetes omits zero counts).
    ``ready_path=None`` counts the Scale's status replicas instead, for kinds that
    report no readiness.
    ``retries`` bounds the retries of each call and of a write that conflicts.
    """

    def __init__(
        self,
        kube: Kube,
        ref: ObjectRef,
        *,
        name: str | None = None,
        ready_path: str | None = "status.readyReplicas",
        retries: Retries = TARGET_RETRIES,
    ) -> None:
        self.kube = kube
        self.ref = ref
        self._name = name or str(ref)
        self.ready_path = ready_path
        self.retries = retries

    @property
    def name(self) -> str:
        return self._name

    # -- reading --------------------------------------------------------------------------

    def _call(self, fn: Any, what: str) -> Any:
        return self.retries.call(fn, f"{what} {self.ref}")

    def _plain(self, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        plain = self.kube.api.sanitize_for_serialization(value)
        return plain if isinstance(plain, dict) else {}

    def read_scale(self) -> dict[str, Any]:
        """The object's Scale (``spec.replicas``, ``status.replicas``, ``resourceVersion``)."""
        r = self.ref
        if r.is_apps:
            method = getattr(self.kube.apps, f"read_namespaced_{_APPS_KINDS[r.kind]}_scale")
            return self._plain(self._call(lambda: method(r.name, r.namespace), "Failed to read"))
        return self._plain(
            self._call(
                lambda: self.kube.custom.get_namespaced_custom_object_scale(
                    r.group, r.version, r.namespace, r.resource, r.name
                ),
                "Failed to read",
            )
        )

    def read_object(self) -> dict[str, Any]:
        """The object itself (for its readiness and conditions)."""
        r = self.ref
        if r.is_apps:
            method = getattr(self.kube.apps, f"read_namespaced_{_APPS_KINDS[r.kind]}")
            # Raw JSON: the client's typed models cost more than the HTTP call itself.
            raw = self._call(
                lambda: method(r.name, r.namespace, _preload_content=False), "Failed to read"
            )
            return self._plain(json.loads(raw.data))
        return self._plain(
            self._call(
                lambda: self.kube.custom.get_namespaced_custom_object(
                    r.group, r.version, r.namespace, r.resource, r.name
                ),
                "Failed to read",
            )
        )

    def read(self) -> ScaleReading:
        if self.ref.is_apps:
            # A Deployment or StatefulSet carries its Scale's fields itself: one read, not two
            # (a pass over 1,000 targets makes 1,000 fewer API calls).
            obj = self.read_object()
            return ScaleReading(
                desired=_int(path_get(obj, "spec.replicas")),
                current=_int(path_get(obj, "status.replicas")),
                resource_version=str(path_get(obj, "metadata.resourceVersion") or ""),
                obj=obj,
            )
        scale = self.read_scale()
        return ScaleReading(
            desired=_int(path_get(scale, "spec.replicas")),
            current=_int(path_get(scale, "status.replicas")),
            resource_version=str(path_get(scale, "metadata.resourceVersion") or ""),
            obj=self.read_object(),
        )

    def ready_of(self, reading: ScaleReading) -> int:
        """Units ready to serve, from the object's status."""
        if self.ready_path is None:
            return reading.current
        return _int(path_get(reading.obj, self.ready_path))

    # -- the ScaleTarget protocol -----------------------------------------------------------

    def status(self) -> ScaleStatus:
        reading = self.read()
        ready = self.ready_of(reading)
        meta = reading.obj.get("metadata") or {}
        observed = path_get(reading.obj, "status.observedGeneration")
        generation = meta.get("generation")
        stale = isinstance(observed, int) and isinstance(generation, int) and observed < generation
        busy = stale or ready != reading.desired or reading.current != reading.desired
        detail = f"{ready}/{reading.desired} ready" if busy else ""
        return ScaleStatus(desired=reading.desired, ready=ready, busy=busy, detail=detail)

    def scale(self, units: int, reason: str) -> None:
        if units < 0:
            raise InputError(f"{self.name}: replicas must be 0 or more, got {units}")
        self.retries.on_conflict(lambda: self.scale_once(units, reason))

    def scale_once(self, units: int, reason: str, seen: ScaleReading | None = None) -> None:
        """One read-and-write attempt, no retry: a 409 raises ``ApiConflict``.

        ``seen`` is a reading the caller already decided on; the write is then made
        conditional on its ``resourceVersion`` (a change since is a 409).
        """
        if seen is None:
            scale = self.read_scale()
            current = _int(path_get(scale, "spec.replicas"))
            version = path_get(scale, "metadata.resourceVersion")
        else:
            current, version = seen.desired, seen.resource_version
        if current == units:
            return
        body = {"metadata": {"resourceVersion": version}, "spec": {"replicas": units}}
        r = self.ref
        if r.is_apps:
            method = getattr(self.kube.apps, f"patch_namespaced_{_APPS_KINDS[r.kind]}_scale")
            self._call(lambda: method(r.name, r.namespace, body), "Failed to scale")
        else:
            self._call(
                lambda: self.kube.custom.patch_namespaced_custom_object_scale(
                    r.group, r.version, r.namespace, r.resource, r.name, body
                ),
                "Failed to scale",
            )
        log.info(
            "Scaled %s %s/%s replicas=%d->%d reason=%s",
            r.kind, r.namespace, r.name, current, units, reason,
        )  # fmt: skip


# -- from a policy: the Deployment, StatefulSet and Scale rows of targets/registry.py --------


def scale_rules(group: str, resource: str) -> list[Rule]:
    """Read the object, resize it through its ``/scale``: exactly the calls
    :class:`ScaleSubresourceTarget` makes."""
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": ["get"]},
        {"apiGroups": [group], "resources": [f"{resource}/scale"], "verbs": ["get", "patch"]},
    ]


def deployment(target: Target, world: World) -> ScaleSubresourceTarget:
    ref = ObjectRef("apps/v1", "Deployment", target.name, target.namespace)
    return ScaleSubresourceTarget(world.kube_for(target), ref)


def stateful_set(target: Target, world: World) -> ScaleSubresourceTarget:
    ref = ObjectRef("apps/v1", "StatefulSet", target.name, target.namespace)
    return ScaleSubresourceTarget(world.kube_for(target), ref)


def any_scale(target: Target, world: World) -> ScaleSubresourceTarget:
    """Kind ``Scale``: the object ``apiVersion`` + ``scaleKind`` name."""
    # The policy model guarantees both for kind Scale; checked again for a clear message.
    if not (target.api_version and target.scale_kind):
        where = f"targets[{target.name}]"
        raise PolicyError(field_error("policy", where, "kind Scale needs apiVersion and scaleKind"))
    ref = ObjectRef(target.api_version, target.scale_kind, target.name, target.namespace)
    return ScaleSubresourceTarget(world.kube_for(target), ref)


def any_scale_rules(target: Target) -> list[Rule]:
    if not (target.api_version and target.scale_kind):
        return []
    ref = ObjectRef(target.api_version, target.scale_kind, target.name, target.namespace)
    return scale_rules(ref.group, ref.resource)
