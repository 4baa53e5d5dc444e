"""What the RedisCluster reconciler reads of its cluster each pass, and its tests on it.

:func:`read_shape` asks the cluster's :class:`RedisScalerTarget` for its status and
condenses it into a :class:`Shape` (serving masters, replicas per master, slots per
master, health, damage); :func:`whole` and :func:`converged` compare a shape with the
spec; :func:`detail` says a migration's progress in a condition message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from headroom.controller.operator.specs import RedisClusterSpec
from headroom.controller.redis.heal import Damage
from headroom.controller.redis.reports import ClusterStatus
from headroom.controller.targets.redis_scaler import RedisScalerTarget
from headroom.policies.errors import HeadroomError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shape:
    """The cluster as its status reports it: serving masters, replicas, slots, health."""

    masters: int
    ready_masters: int
    replicas: dict[str, int]
    slots_per_master: list[dict[str, Any]]
    healthy: bool
    damage: Damage = field(default_factory=Damage)


def read_shape(target: RedisScalerTarget) -> Shape | None:
    try:
        st: ClusterStatus = target.cluster_status()
    except HeadroomError as err:
        log.warning("Failed to read cluster target=%s error=%s", target.name, err)
        return None
    masters = [n for n in st.nodes if n.role == "master" and n.slots > 0]
    replicas = {m.node_id or m.addr: 0 for m in masters}
    for n in st.nodes:
        if n.role == "replica" and n.master_id in replicas:
            replicas[n.master_id] += 1
    ready = len(masters) if st.healthy else sum(1 for m in masters if not m.open_slots)
    return Shape(
        masters=len(masters),
        ready_masters=ready,
        replicas=replicas,
        slots_per_master=sorted(
            (
                {
                    "node": m.name or m.addr,
                    "nodeId": m.node_id or "",
                    "address": m.addr,
                    "slots": m.slots,
                }
                for m in masters
            ),
            key=lambda row: ordinal_key(str(row["node"])),
        ),
        healthy=st.healthy,
        damage=st.damage,
    )


def ordinal_key(pod: str) -> tuple[int, str]:
    number = pod.rpartition("-")[2]
    return (int(number), pod) if number.isdigit() else (1 << 30, pod)


def whole(shape: Shape | None, spec: RedisClusterSpec) -> bool:
    """Healthy with every replica in place, whatever the size (healing ends here)."""
    return (
        shape is not None
        and shape.healthy
        and all(r == spec.replicas_per_master for r in shape.replicas.values())
    )


def converged(shape: Shape | None, spec: RedisClusterSpec) -> bool:
    return (
        shape is not None
        and shape.healthy
        and shape.masters == spec.masters
        and all(r == spec.replicas_per_master for r in shape.replicas.values())
    )


def progress_detail(progress: Any) -> str:
    if progress is None or not progress.slots_total:
        return ""
    return (
        f"migrating slots {progress.slots_done}/{progress.slots_total}, "
        f"{progress.keys_moved} keys moved"
    )
