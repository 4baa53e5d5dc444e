"""What a lost node left behind, read from the cluster's own view (pure; no I/O).

:class:`~headroom.controller.redis.scaler.ClusterScaler` calls :func:`assess` at the start
of every run, before it adds, moves or removes anything, and acts on the :class:`Damage`:

- a master that owns slots and is gone, with a live replica: Redis fails over to the
  replica by itself after ``cluster-node-timeout``; the scaler waits for that, then issues
  ``CLUSTER FAILOVER TAKEOVER`` on the replica if the cluster will not;
- a master that owns slots and is gone with no live replica: its slots are lost (only its
  own volume, coming back with the same node id, holds them). Nothing is handed to an
  empty replacement: that would serve the slots empty and call it healthy;
- a node without slots that is gone (a failed-over master, a replica): forgotten by every
  node, once every pod the provisioner wants answers — a pod still restarting may come
  back from its volume with that very id, and a forgotten id is shut out of the cluster.

"Gone" means the cluster flags it failing (``fail``/``fail?``) or it does not answer, and
no provisioned node answers with its id. Replacement pods are blank nodes; the scaler's
usual replica fitting makes them replicas of the masters short of one.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from headroom.controller.redis.topology import Node, Topology


@dataclass(frozen=True)
class LostNode:
    """A member of the cluster that no longer answers."""

    node_id: str
    addr: str
    role: str  # "master" or "replica"
    slots: int
    # Masters: the replicas that answer (the failover candidates), best first.
    replicas: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        return self.node_id[:8]

    def describe(self) -> str:
        what = f"master with {self.slots} slots" if self.slots else self.role
        return f"{self.short} ({self.addr}, {what})"


@dataclass(frozen=True)
class Damage:
    """Lost members, by what healing each needs."""

    failing_over: tuple[LostNode, ...] = ()  # masters with slots and a live replica
    slots_lost: tuple[LostNode, ...] = ()  # masters with slots and no live replica
    gone: tuple[LostNode, ...] = ()  # no slots: to forget

    @property
    def whole(self) -> bool:
        return not (self.failing_over or self.slots_lost or self.gone)

    @property
    def lost_slots(self) -> int:
        return sum(n.slots for n in self.slots_lost)

    def describe(self) -> str:
        parts = []
        if self.failing_over:
            parts.append("failing over " + ", ".join(n.describe() for n in self.failing_over))
        if self.slots_lost:
            parts.append("slots lost on " + ", ".join(n.describe() for n in self.slots_lost))
        if self.gone:
            parts.append("forgetting " + ", ".join(n.describe() for n in self.gone))
        return "; ".join(parts) or "whole"


def _lost(node: Node, live_ids: Set[str]) -> bool:
    return node.id not in live_ids and (node.failed or "fail" in node.flags)


def assess(topology: Topology, live_ids: Set[str]) -> Damage:
    """The damage in ``topology``; ``live_ids``: node ids the provisioned nodes answer with."""
    failing_over: list[LostNode] = []
    slots_lost: list[LostNode] = []
    gone: list[LostNode] = []
    for node in topology.nodes:
        if not _lost(node, live_ids):
            continue
        if node.is_master and node.slots:
            candidates = [
                r
                for r in topology.nodes
                if not r.is_master and r.master_id == node.id and not _lost(r, live_ids)
            ]
            # Gossip lags: the node we asked may still credit the lost master with slots
            # a promoted replica already claims. Those slots are not lost.
            candidates += [
                m
                for m in topology.nodes
                if m.is_master
                and m.id != node.id
                and m.slots & node.slots
                and not _lost(m, live_ids)
            ]
            lost = LostNode(
                node.id, node.addr, "master", len(node.slots), tuple(r.id for r in candidates)
            )
            (failing_over if candidates else slots_lost).append(lost)
        else:
            gone.append(LostNode(node.id, node.addr, node.role, 0))
    return Damage(tuple(failing_over), tuple(slots_lost), tuple(gone))


__all__ = ["Damage", "LostNode", "assess"]
