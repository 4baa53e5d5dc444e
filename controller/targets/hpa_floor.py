"""Scale target that raises an existing HorizontalPodAutoscaler's floor (``minReplicas``).

Headroom never fights the HPA: it only moves ``spec.minReplicas`` of an autoscaling/v2
HPA the user owns, so the HPA keeps reacting above the floor, and more replicas than
Headroom asked for are fine. Built by :mod:`headroom.controller.assembly` for policy
targets of kind ``HorizontalPodAutoscaler`` (the target's name is the HPA's).

The state lives on the HPA, in three annotations, so an operator restart (a new
instance) loses nothing and two instances agree:

- ``headroom.dev/user-min-replicas``: the user's own floor. Written in the same write
  as the first change Headroom makes (so there is never a raised floor without it).
- ``headroom.dev/min-replicas``: the ``minReplicas`` Headroom last wrote.
- ``headroom.dev/units``: the units Headroom was last asked for (``status().desired``).

The rules:

- ``scale(units)`` sets ``minReplicas = max(user floor, units)``, capped at the HPA's
  ``maxReplicas`` (Headroom does not raise the user's ceiling; ``detail`` says when
  the cap bites). Asking for less than the user floor restores the user floor, so
  Headroom never leaves the floor below the user's value.
- **A user edit wins as the new user floor.** When ``minReplicas`` differs from what
  Headroom last wrote, the user (or a GitOps re-apply of the HPA manifest) changed it:
  that value becomes the user floor, and Headroom's floor is again ``max(new user
  floor, units)``. A user who raises the floor during an event keeps their higher
  floor; one who lowers it gets the event's floor until the event is over and their
  new value afterwards. Until the next ``scale``, ``status().desired`` reports the
  edited value, so the loop's next pass re-applies its order. (To stop Headroom
  raising an HPA, pause the policy or remove the target.)
- Without the annotations (never touched, or a user removed them) the current
  ``minReplicas`` is the user floor.

``ready`` is the ready replicas of the HPA's scale target (the Deployment's or
StatefulSet's ``status.readyReplicas``); ``busy`` while fewer than the floor are ready.
Writes carry the HPA's ``resourceVersion``; a 409 re-reads and recomputes.

The rules hold for any object with a replica floor, a ceiling and a ``scaleTargetRef``:
a subclass names the kind, its fields and how it is read and patched
(:mod:`headroom.controller.targets.keda_floor`: a KEDA ScaledObject's
``minReplicaCount``).
"""

from __future__ import annotations

import logging
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar

from headroom.controller.kube import TARGET_RETRIES, Kube, Retries
from headroom.controller.targets.base import Rule, ScaleStatus
from headroom.controller.targets.scale_subresource import (
    ObjectRef,
    ScaleSubresourceTarget,
    path_get,
)
from headroom.controller.world import World
from headroom.policies.errors import InputError, KubernetesError
from headroom.policies.policy import Target

log = logging.getLogger(__name__)

USER_FLOOR = "headroom.dev/user-min-replicas"
APPLIED = "headroom.dev/min-replicas"
UNITS = "headroom.dev/units"


def _annotation_int(annotations: dict[str, Any], key: str) -> int | None:
    value = annotations.get(key)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


@dataclass(frozen=True)
class FloorState:
    """The HPA as Headroom reads it: the user's floor, what is held, what was asked."""

    min_replicas: int  # spec.minReplicas now (1 when unset, as Kubernetes defaults it)
    max_replicas: int
    user_floor: int
    units: int | None  # last asked for (None: never)
    user_edited: bool  # minReplicas is not what Headroom last wrote
    resource_version: str
    target_ref: ObjectRef

    def floor_for(self, units: int) -> int:
        """The ``minReplicas`` that serves ``units``: never below the user's, never above max."""
        return min(max(self.user_floor, units), self.max_replicas)


@dataclass(eq=False)
class HpaFloorTarget:
    """An autoscaling/v2 HPA's ``minReplicas`` as a ``ScaleTarget``; see the module docstring."""

    kube: Kube = field(repr=False)
    object_name: str  # the HPA's (a subclass's object's) name
    namespace: str = "default"
    _: KW_ONLY
    retries: Retries = TARGET_RETRIES
    last: FloorState | None = field(default=None, init=False)  # what the last read found

    # The floor object: its kind, the target's name prefix, its floor and ceiling fields
    # (with the defaults the API gives an unset one; None: required).
    KIND: ClassVar[str] = "HorizontalPodAutoscaler"
    PREFIX: ClassVar[str] = "hpa"
    MIN_FIELD: ClassVar[str] = "minReplicas"
    MIN_DEFAULT: ClassVar[int] = 1
    MAX_FIELD: ClassVar[str] = "maxReplicas"
    MAX_DEFAULT: ClassVar[int | None] = None
    REF_KIND_DEFAULT: ClassVar[str | None] = None  # scaleTargetRef.kind when unset

    def __post_init__(self) -> None:
        if not self.object_name:
            raise InputError(f"{self.KIND} target: name is required")

    @property
    def name(self) -> str:
        return f"{self.PREFIX}/{self.namespace}/{self.object_name}"

    def _call(self, fn: Any, what: str) -> Any:
        return self.retries.call(fn, f"{what} {self.KIND} {self.namespace}/{self.object_name}")

    def get(self) -> Any:
        """The floor object as the API returns it (a subclass reads its own kind)."""
        return self.kube.autoscaling.read_namespaced_horizontal_pod_autoscaler(
            self.object_name, self.namespace
        )

    def patch(self, body: dict[str, Any]) -> Any:
        """Merge-patch the floor object with ``body``."""
        return self.kube.autoscaling.patch_namespaced_horizontal_pod_autoscaler(
            self.object_name, self.namespace, body
        )

    def read_object(self) -> dict[str, Any]:
        """The floor object as a plain dict."""
        plain = self.kube.api.sanitize_for_serialization(self._call(self.get, "Failed to read"))
        return plain if isinstance(plain, dict) else {}

    def read(self) -> FloorState:
        """The floor state from the HPA (spec and Headroom's annotations)."""
        self.last = self._parse(self.read_object())
        return self.last

    def _parse(self, obj: dict[str, Any]) -> FloorState:
        meta = obj.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        min_replicas = path_get(obj, f"spec.{self.MIN_FIELD}")
        min_replicas = min_replicas if isinstance(min_replicas, int) else self.MIN_DEFAULT
        max_replicas = path_get(obj, f"spec.{self.MAX_FIELD}")
        if max_replicas is None:
            max_replicas = self.MAX_DEFAULT
        ref = path_get(obj, "spec.scaleTargetRef")
        ref = ref if isinstance(ref, dict) else {}
        kind = ref.get("kind") or self.REF_KIND_DEFAULT
        missing = [
            path
            for path, ok in (
                (f"spec.{self.MAX_FIELD}", isinstance(max_replicas, int)),
                ("spec.scaleTargetRef.kind", isinstance(kind, str) and kind),
                ("spec.scaleTargetRef.name", isinstance(ref.get("name"), str) and ref["name"]),
            )
            if not ok
        ]
        if missing or not isinstance(max_replicas, int):
            verb = "is" if len(missing) == 1 else "are"
            raise KubernetesError(
                f"{self.KIND} {self.namespace}/{self.object_name}: "
                f"{' and '.join(missing)} {verb} required"
            )
        applied = _annotation_int(annotations, APPLIED)
        recorded = _annotation_int(annotations, USER_FLOOR)
        user_edited = applied is not None and applied != min_replicas
        if recorded is None or applied is None or user_edited:
            user_floor = min_replicas
        else:
            user_floor = recorded
        return FloorState(
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            user_floor=user_floor,
            units=_annotation_int(annotations, UNITS),
            user_edited=user_edited,
            resource_version=str(meta.get("resourceVersion") or ""),
            target_ref=ObjectRef(
                api_version=ref.get("apiVersion") or "apps/v1",
                kind=str(kind),
                name=ref["name"],
                namespace=self.namespace,
            ),
        )

    def user_floor(self) -> int:
        """The user's own ``minReplicas`` (for the CapacityPolicy status and dashboards)."""
        return self.read().user_floor

    # -- the ScaleTarget protocol -----------------------------------------------------------

    def status(self) -> ScaleStatus:
        state = self.read()
        workload = ScaleSubresourceTarget(self.kube, state.target_ref, retries=self.retries)
        obj = workload.read_object()
        ready = path_get(obj, "status.readyReplicas")
        ready = ready if isinstance(ready, int) else 0
        if state.units is None or state.user_edited:
            desired = state.min_replicas  # nothing (or not this) ordered by Headroom
        else:
            desired = state.units
        busy = ready < state.min_replicas
        notes = []
        if busy:
            notes.append(f"{ready}/{state.min_replicas} ready")
        if state.user_edited:
            notes.append(f"{self.MIN_FIELD} edited to {state.min_replicas}")
        elif state.units is not None and state.units > state.max_replicas:
            notes.append(f"floor capped at {self.MAX_FIELD} {state.max_replicas}")
        if state.min_replicas > state.user_floor:
            notes.append(f"floor {state.min_replicas} (user's {state.user_floor})")
        return ScaleStatus(desired=desired, ready=ready, busy=busy, detail=", ".join(notes))

    def scale(self, units: int, reason: str) -> None:
        if units < 0:
            raise InputError(f"{self.name}: units must be 0 or more, got {units}")
        self.retries.on_conflict(lambda: self._scale_once(units, reason))

    def _scale_once(self, units: int, reason: str) -> None:
        obj = self.read_object()
        state = self._parse(obj)
        floor = state.floor_for(units)
        annotations = {
            USER_FLOOR: str(state.user_floor),
            APPLIED: str(floor),
            UNITS: str(units),
        }
        current = (obj.get("metadata") or {}).get("annotations") or {}
        if floor == state.min_replicas and all(current.get(k) == v for k, v in annotations.items()):
            return
        body = {
            "metadata": {"resourceVersion": state.resource_version, "annotations": annotations},
            "spec": {self.MIN_FIELD: floor},
        }
        self._call(lambda: self.patch(body), "Failed to patch")
        what = f"{self.KIND} {self.namespace}/{self.object_name}"
        if state.user_edited:
            log.info("Adopted user floor %s userFloor=%d", what, state.user_floor)
        if units > state.max_replicas:
            log.warning(
                "Capped floor %s units=%d %s=%d", what, units, self.MAX_FIELD, state.max_replicas
            )
        log.info(
            "Set floor %s %s=%d->%d userFloor=%d reason=%s",
            what, self.MIN_FIELD, state.min_replicas, floor, state.user_floor, reason,
        )  # fmt: skip


# -- from a policy: the HorizontalPodAutoscaler row of targets/registry.py -------------------


def hpa_floor(target: Target, world: World) -> HpaFloorTarget:
    return HpaFloorTarget(world.kube_for(target), target.name, target.namespace)


def floor_rules(group: str, resource: str) -> list[Rule]:
    """A floor object's rules: it is read and patched; its scale target (a Deployment or
    StatefulSet) is only read, for its ready replicas."""
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": ["get", "patch"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": ["get"]},
    ]


def hpa_floor_rules(_target: Target) -> list[Rule]:
    return floor_rules("autoscaling", "horizontalpodautoscalers")
