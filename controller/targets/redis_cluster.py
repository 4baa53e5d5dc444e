"""Scale target for a ``headroom.dev`` RedisCluster, through its ``/scale`` subresource.

The operator's RedisCluster controller (``controller/operator/rediscluster.py``) does the
work: pods, CLUSTER MEET, slot migration. This target only moves ``spec.masters``
through ``/scale`` (as ``kubectl scale`` would) and reads the status that controller
writes: ``readyMasters`` is ``ready``; the cluster is ``busy`` while its ``phase`` is
``Scaling`` or ``Forming``, its ``Scaling`` condition is ``True``, a ``migration`` is
reported, or the controller has not yet observed the latest ``spec`` (generation).

While busy, ``scale`` to a *different* size raises
:class:`~headroom.controller.targets.base.TargetBusy` and writes nothing, so the loop
never stacks a second reshard on one under way: the Scale keeps the old size, and the
loop's next pass (once the migration finished) asks again. Asking for the size already
ordered is a no-op, busy or not. Built by :mod:`headroom.controller.assembly` for policy
targets of kind ``RedisCluster``.
"""

from __future__ import annotations

from typing import Any

from headroom.controller.kube import GROUP, TARGET_RETRIES, VERSION, Kube, Retries
from headroom.controller.targets.base import ScaleStatus, TargetBusy
from headroom.controller.targets.scale_subresource import (
    ObjectRef,
    ScaleReading,
    ScaleSubresourceTarget,
    path_get,
)
from headroom.controller.world import World
from headroom.policies.errors import InputError
from headroom.policies.policy import Target

BUSY_PHASES = frozenset({"Scaling", "Forming"})


def _scaling_condition(obj: dict[str, Any]) -> dict[str, Any] | None:
    for cond in path_get(obj, "status.conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Scaling":
            return cond
    return None


def progress_of(obj: dict[str, Any]) -> tuple[bool, str]:
    """(busy, one-line detail) from a RedisCluster's status."""
    status = obj.get("status") or {}
    phase = str(status.get("phase") or "")
    cond = _scaling_condition(obj)
    migration = status.get("migration")
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    unobserved = isinstance(generation, int) and (
        not isinstance(observed, int) or observed < generation
    )
    scaling = cond is not None and cond.get("status") == "True"
    busy = phase in BUSY_PHASES or scaling or bool(migration) or unobserved
    if isinstance(migration, dict) and migration:
        detail = (
            f"migrating {migration.get('fromMasters', '?')}->{migration.get('toMasters', '?')}"
            f" masters, {migration.get('slotsLeft', '?')} slots left"
        )
    elif scaling and cond is not None and cond.get("message"):
        detail = f"{phase or 'Scaling'}: {cond['message']}"
    elif busy:
        detail = phase or "spec not yet observed by the operator"
    else:
        detail = phase if phase not in ("", "Ready") else ""
    return busy, detail


class RedisClusterTarget:
    """A RedisCluster's masters as a ``ScaleTarget`` (``kube`` is the network passed in)."""

    def __init__(
        self,
        kube: Kube,
        name: str,
        namespace: str = "default",
        *,
        retries: Retries = TARGET_RETRIES,
        retry_after: float = 30.0,
    ) -> None:
        self.ref = ObjectRef(f"{GROUP}/{VERSION}", "RedisCluster", name, namespace)
        self.scale_api = ScaleSubresourceTarget(
            kube,
            self.ref,
            name=f"redis/{namespace}/{name}",
            ready_path="status.readyMasters",
            retries=retries,
        )
        self.retry_after = retry_after

    @property
    def name(self) -> str:
        return self.scale_api.name

    def status(self) -> ScaleStatus:
        reading = self.scale_api.read()
        busy, detail = progress_of(reading.obj)
        ready = self.scale_api.ready_of(reading)
        return ScaleStatus(desired=reading.desired, ready=ready, busy=busy, detail=detail)

    def scale(self, units: int, reason: str) -> None:
        if units < 1:
            raise InputError(f"{self.name}: masters must be at least 1, got {units}")
        self.scale_api.retries.on_conflict(lambda: self._scale_once(units, reason))

    def _scale_once(self, units: int, reason: str) -> None:
        reading: ScaleReading = self.scale_api.read()
        if reading.desired == units:
            return
        busy, detail = progress_of(reading.obj)
        if busy:
            raise TargetBusy(
                f"{self.name}: not scaling to {units} masters while the last change "
                f"({reading.desired} masters) converges: {detail}",
                retry_after=self.retry_after,
            )
        self.scale_api.scale_once(units, reason, seen=reading)


# -- from a policy: the RedisCluster row of targets/registry.py ------------------------------


def redis_cluster(target: Target, world: World) -> RedisClusterTarget:
    return RedisClusterTarget(world.kube_for(target), target.name, target.namespace)
