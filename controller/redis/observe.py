"""What the scaler sees before it acts: every provisioned node asked directly, and the
cluster's own view from the node that knows the most.

:func:`observe` makes a :class:`World` (one :class:`Probe` per provisioned node plus the
topology); the scaler (``redis/scaler.py``) decides from it, :func:`damage_of` says what
was lost (``redis/heal.py``), and :func:`status_of` condenses it into the
:class:`~headroom.controller.redis.reports.ClusterStatus` that ``headroom local status``,
the demo and the operator show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from headroom.controller.redis.connection import NodeAddr, cmd
from headroom.controller.redis.heal import Damage, assess
from headroom.controller.redis.nodes import NodeInfo
from headroom.controller.redis.pool import NodePool
from headroom.controller.redis.reports import ClusterStatus, NodeStatus
from headroom.controller.redis.topology import SLOTS, Node, Topology, cluster_nodes, read_topology
from headroom.policies.errors import HeadroomError


@dataclass
class Probe:
    """A provisioned node asked directly: its id and what it believes."""

    info: NodeInfo
    node_id: str | None = None  # None: the node does not answer
    known: int = 0  # lines in its CLUSTER NODES (1 = it has met nobody)
    slots: int = 0
    keys: int = 0

    @property
    def alive(self) -> bool:
        return self.node_id is not None


@dataclass
class World:
    """What one observation saw: every probe, the topology (None: no slot owned), members."""

    probes: list[Probe]
    topo: Topology | None
    members: dict[str, Node] = field(default_factory=dict)

    def probe_of(self, node_id: str) -> Probe | None:
        return next((p for p in self.probes if p.node_id == node_id), None)

    def ordinal(self, node_id: str) -> int:
        probe = self.probe_of(node_id)
        return probe.info.ordinal if probe is not None else -1  # foreign nodes count as oldest

    @property
    def serving(self) -> list[Node]:
        masters = [n for n in self.members.values() if n.is_master and n.slots]
        return sorted(masters, key=lambda n: self.ordinal(n.id))

    @property
    def empties(self) -> list[Node]:
        nodes = [
            n
            for n in self.members.values()
            if n.is_master and not n.slots and n.reachable and self.probe_of(n.id) is not None
        ]
        return sorted(nodes, key=lambda n: self.ordinal(n.id))

    @property
    def outsiders(self) -> list[Probe]:
        found = [p for p in self.probes if p.alive and p.node_id not in self.members]
        return sorted(found, key=lambda p: p.info.ordinal)

    @property
    def dead(self) -> list[Probe]:
        return [p for p in self.probes if not p.alive]

    def addrs(self, *, reachable: bool = True) -> set[NodeAddr]:
        """The members' addresses (with ``reachable``, only of those that answered)."""
        return {
            NodeAddr(n.host, n.port) for n in self.members.values() if n.reachable or not reachable
        }

    def replicas_of(self, master_id: str) -> list[Node]:
        nodes = [n for n in self.members.values() if not n.is_master and n.master_id == master_id]
        return sorted(nodes, key=lambda n: self.ordinal(n.id))


def probe_node(info: NodeInfo, pool: NodePool) -> Probe:
    """Ask the node ``info`` names directly: its id, how many nodes it knows, its slots."""
    probe = Probe(info)
    try:
        client = pool.at(info.addr)
        lines = cluster_nodes(client, str(info.addr))
        me = next(line for line in lines if "myself" in line.flags)
        probe.keys = int(cmd(client, "DBSIZE"))
    except (HeadroomError, StopIteration):
        return probe
    probe.node_id, probe.known, probe.slots = me.id, len(lines), len(me.slots)
    return probe


def observe(nodes: Sequence[NodeInfo], pool: NodePool) -> World:
    """Probe every node in ``nodes``, then read the topology from the best-connected owner."""
    probes = [probe_node(info, pool) for info in nodes]
    owners = [p for p in probes if p.alive and p.slots]
    if not owners:
        return World(probes, None)
    # The seed is the slot owner that knows the most nodes: the heart of the cluster.
    seed = max(owners, key=lambda p: (p.known, -p.info.ordinal))
    topo = read_topology(str(seed.info.addr), pool.client)
    members = {n.id: n for n in topo.nodes}
    return World(probes, topo, members)


def damage_of(world: World) -> Damage:
    """The members ``world`` lost and what each needs (none when no slot is owned yet)."""
    if world.topo is None:
        return Damage()
    return assess(world.topo, {p.node_id for p in world.probes if p.node_id})


def status_of(world: World) -> ClusterStatus:
    """The cluster's status as ``world`` saw it (read, not changed)."""
    rows: list[NodeStatus] = []
    seen: set[str] = set()
    topo = world.topo
    for node in topo.nodes if topo else ():
        probe = world.probe_of(node.id)
        seen.add(node.id)
        if not node.reachable:
            role = "down"
        elif node.is_master:
            role = "master" if node.slots else "empty"
        else:
            role = "replica"
        rows.append(
            NodeStatus(
                addr=node.addr,
                name=probe.info.name if probe else None,
                node_id=node.id,
                role=role,
                master_id=node.master_id,
                slots=len(node.slots),
                keys=node.keys,
                open_slots=len(node.migrating) + len(node.importing),
            )
        )
    for probe in world.probes:
        if probe.node_id in seen:
            continue
        rows.append(
            NodeStatus(
                addr=str(probe.info.addr),
                name=probe.info.name,
                node_id=probe.node_id,
                role="spare" if probe.alive else "down",
                slots=probe.slots,
                keys=probe.keys if probe.alive else None,
            )
        )
    if topo is None:
        return ClusterStatus(tuple(rows), 0, 0, False, ("no node owns a slot",))
    members = [n for n in topo.nodes if n.reachable]
    return ClusterStatus(
        nodes=tuple(rows),
        slots_covered=SLOTS - len(topo.uncovered()),
        open_slots=len(topo.open_slots()),
        state_ok=bool(members) and all(n.state == "ok" for n in members),
        problems=tuple(topo.problems()),
        damage=damage_of(world),
    )


def member_at(world: World, addr: NodeAddr) -> Node | None:
    return next((n for n in world.members.values() if n.addr == str(addr)), None)
