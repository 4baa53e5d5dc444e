"""What the Redis room reports: a resharding's progress and result, a scaling's result,
and the cluster's status as ``headroom local status`` and the operator show it.

Values only (frozen dataclasses with ``to_json``): the resharder
(``redis/resharder.py``) and the scaler (``redis/scaler.py``) make them; the CLI, the
demo, the scaler target and the RedisCluster controller read them.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from headroom.controller.redis.heal import Damage
from headroom.controller.redis.slotplan import SlotPlan
from headroom.controller.redis.topology import SLOTS
from headroom.policies.jsonable import fields_json


@dataclass(frozen=True)
class ReshardProgress:
    slots_done: int
    slots_total: int
    keys_moved: int
    bytes_moved: int
    current: str  # e.g. "a1b2c3d4->e5f6a7b8 slot 1234"


class ProgressListener(Protocol):
    def __call__(self, p: ReshardProgress, /) -> None: ...


@dataclass(frozen=True)
class ReshardReport:
    slots_moved: int
    keys_moved: int
    bytes_moved: int
    seconds: float
    errors: list[str]
    repaired: list[str]
    plan: SlotPlan
    forgotten: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            **fields_json(self, "ok", "slots_moved", "keys_moved", "bytes_moved"),
            "seconds": round(self.seconds, 3),
            "keys_per_second": round(self.keys_moved / self.seconds, 1) if self.seconds else 0.0,
            **fields_json(self, "errors", "repaired", "forgotten"),
            "plan": self.plan.to_json(),
        }


class Tally:
    """Thread-safe running totals, forwarded to the listener."""

    def __init__(self, total: int, listener: ProgressListener | None) -> None:
        self.lock = threading.Lock()
        self.total = total
        self.slots = 0
        self.keys = 0
        self.bytes = 0
        self.listener = listener

    def add(self, slots: int, keys: int, nbytes: int, current: str) -> None:
        with self.lock:
            self.slots += slots
            self.keys += keys
            self.bytes += nbytes
            snap = ReshardProgress(self.slots, self.total, self.keys, self.bytes, current)
        if self.listener is not None:
            self.listener(snap)


@dataclass(frozen=True)
class ScaleReport:
    """What one :meth:`ClusterScaler.scale_masters` call did."""

    masters_before: int
    masters_after: int
    replicas_per_master: int
    added: tuple[str, ...] = ()  # provisioner names of nodes started
    removed: tuple[str, ...] = ()  # provisioner names of nodes stopped
    reshards: tuple[ReshardReport, ...] = ()
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        names = ("masters_before", "masters_after", "replicas_per_master", "added", "removed")
        return {
            **fields_json(self, *names),
            "reshards": [r.to_json() for r in self.reshards],
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class NodeStatus:
    """One node as ``headroom local status`` shows it."""

    addr: str
    name: str | None  # the provisioner's name; None for a node it did not start
    node_id: str | None
    role: str  # master | replica | empty (master without slots) | spare (not in cluster) | down
    master_id: str | None = None
    slots: int = 0
    keys: int | None = None
    open_slots: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClusterStatus:
    """The cluster's shape right now, read without changing anything."""

    nodes: tuple[NodeStatus, ...]
    slots_covered: int
    open_slots: int
    state_ok: bool  # every member answers cluster_state:ok
    problems: tuple[str, ...] = ()
    damage: Damage = field(default_factory=Damage)  # lost members and what they need

    @property
    def masters_serving(self) -> int:
        return sum(1 for n in self.nodes if n.role == "master" and n.slots > 0)

    @property
    def keys(self) -> int:
        return sum(n.keys or 0 for n in self.nodes if n.role == "master")

    @property
    def healthy(self) -> bool:
        return (
            self.state_ok
            and self.slots_covered == SLOTS
            and not self.open_slots
            and self.damage.whole
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "masters": self.masters_serving,
            "replicas": sum(1 for n in self.nodes if n.role == "replica"),
            "slots_covered": self.slots_covered,
            "open_slots": self.open_slots,
            "keys": self.keys,
            "problems": list(self.problems),
            "nodes": [n.to_json() for n in self.nodes],
        }
