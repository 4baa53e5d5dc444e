"""Grow or shrink a Redis Cluster to N masters: provisioner + resharder, level-triggered.

:class:`ClusterScaler` is what ``headroom local up/scale``, the demo's
``RedisScalerTarget`` and the Kubernetes RedisCluster controller call.
It reads the world (the provisioner's nodes and the cluster's own view), then
does whatever is left to reach ``masters`` masters with ``replicas`` replicas
each, so a run that was killed at any point is finished by the next call:

* bootstrap (no slot owned yet): MEET the first masters, ADDSLOTSRANGE an even
  split of the 16384 slots;
* scale-out: reuse empty masters, add nodes, CLUSTER MEET, wait for
  ``cluster_state:ok`` everywhere, then ``Resharder.rebalance(use_empty_masters=True)``;
* scale-in: the newest masters leave; their replicas move to masters that need
  one (or leave too), ``Resharder.drain(node, forget=True)`` empties and forgets
  each, then the node is FLUSHALLed, CLUSTER RESET HARD (a forgotten id is
  refused for 60 s, a reset one gets a new id) and removed;
* replicas: every serving master gets exactly ``replicas`` (CLUSTER REPLICATE).

Nodes that hold no slot and belong to no master are removed at the end. The decisions
are here; the single steps they are made of (start, retire or attach a node, wait for
the cluster to settle, a resharder) are ``steps.py``. What the scaler sees is
``observe.py``, what it reports ``reports.py``, and the cluster commands it sends
``membership.py`` (through the clients of ``pool.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from functools import partial

from headroom.controller.redis import membership
from headroom.controller.redis.connection import (
    NodeAddr,
    RedisAuth,
    cmd,
)
from headroom.controller.redis.heal import LostNode
from headroom.controller.redis.nodes import NodeProvisioner
from headroom.controller.redis.observe import World, damage_of, member_at, status_of
from headroom.controller.redis.reports import (
    ClusterStatus,
    ProgressListener,
    ReshardReport,
    ScaleReport,
)
from headroom.controller.redis.slotplan import even_ranges
from headroom.controller.redis.steps import ClusterSteps, PhaseListener
from headroom.controller.redis.topology import (
    SLOTS,
    Node,
    slot_ranges,
)
from headroom.policies.errors import (
    ClusterError,
    ClusterUnreachable,
    HeadroomError,
    InputError,
    SlotsLost,
    UnsafeOperation,
)

log = logging.getLogger(__name__)


class ClusterScaler(ClusterSteps):
    """Brings a cluster to ``masters`` masters and ``replicas_per_master`` replicas each."""

    def __init__(
        self,
        provisioner: NodeProvisioner,
        *,
        replicas_per_master: int = 0,
        auth: RedisAuth | None = None,
        ok_timeout: float = 60.0,
        on_phase: PhaseListener | None = None,
        failover_grace: float = 15.0,
    ) -> None:
        """``auth`` (AUTH/ACL, TLS) is used by the scaler's and the resharder's connections."""
        if replicas_per_master < 0:
            raise InputError(f"replicas per master must be 0 or more, got {replicas_per_master}")
        super().__init__(provisioner, auth=auth, ok_timeout=ok_timeout, on_phase=on_phase)
        self.replicas_per_master = replicas_per_master
        # How long a lost master's replica gets to win its own election before TAKEOVER:
        # three cluster-node-timeouts (5 s in our pods) cover PFAIL -> FAIL -> election.
        self.failover_grace = failover_grace

    # -- public ------------------------------------------------------------------------------

    def scale_masters(
        self,
        masters: int,
        *,
        replicas: int | None = None,
        progress: ProgressListener | None = None,
    ) -> ScaleReport:
        """Converge on ``masters`` serving masters; safe to call again after any crash."""
        if masters < 1:
            raise InputError(f"masters must be at least 1, got {masters}")
        if replicas is not None:
            if replicas < 0:
                raise InputError(f"replicas per master must be 0 or more, got {replicas}")
            self.replicas_per_master = replicas
        started = time.monotonic()
        self._added, self._removed = [], []
        reshards: list[ReshardReport] = []

        world = self._observe()
        before = len(world.serving)
        world = self._heal(world)
        world = self._clean_up(world)
        world = self._repair_first(world)
        if world.topo is None or world.topo.uncovered():
            self._bootstrap(masters, world)
            world = self._observe()
            self._wait_converged(world)
        reshards += self._scale_masters(masters, world, progress)
        attached = self._fit_replicas(self._observe())
        self._wait_replicas(attached)
        world = self._observe()
        for probe in world.outsiders:
            self._remove(probe.info)
        final = self._observe()
        self._wait_converged(final)
        report = ScaleReport(
            masters_before=before,
            masters_after=len(final.serving),
            replicas_per_master=self.replicas_per_master,
            added=tuple(self._added),
            removed=tuple(self._removed),
            reshards=tuple(reshards),
            seconds=time.monotonic() - started,
        )
        log.info(
            "Scaled Redis Cluster masters=%d->%d replicas=%d added=%d removed=%d seconds=%.1f",
            before, report.masters_after, self.replicas_per_master,
            len(report.added), len(report.removed), report.seconds,
        )  # fmt: skip
        return report

    def status(self) -> ClusterStatus:
        """Read every provisioned node and the cluster's view; changes nothing."""
        return status_of(self._observe())

    # -- healing -------------------------------------------------------------------------------

    def _complete(self, world: World) -> bool:
        """Every node the provisioner wants is up and answers (none is still restarting; a
        pod a scale-out added that never came up holds nothing and does not count)."""
        ready = getattr(self.provisioner, "pods_ready", None)
        if callable(ready):
            have, want = ready(adding=False)
            if have < want:
                return False
        return all(p.alive for p in world.probes)

    def _heal(self, world: World) -> World:
        """Before any change of size: fail over lost masters, forget lost nodes (see heal.py)."""
        damage = damage_of(world)
        if damage.whole:
            return world
        self._phase(f"healing: {damage.describe()}")
        log.info("Healing Redis Cluster damage=%s", damage.describe())
        if damage.slots_lost:
            lost = damage.slots_lost[0]
            if not self._complete(world):
                raise ClusterUnreachable(
                    f"master {lost.describe()} is down with no replica; waiting for its pod "
                    "(its volume may bring its slots back)"
                )
            raise SlotsLost(
                f"{damage.lost_slots} slots lost: master {lost.describe()} is gone and had no "
                "replica; its slots stay unassigned until restored (`headroom redis fix` serves "
                "them empty)"
            )
        for lost in damage.failing_over:
            self._fail_over(lost)
        world = self._observe()
        damage = damage_of(world)
        if damage.gone and self._complete(world):
            for node in damage.gone:
                self._forget_everywhere(world, node.node_id)
                log.info(
                    "Forgot lost node node=%s addr=%s role=%s", node.short, node.addr, node.role
                )
            world = self._observe()
        # The replacement joins as the orphaned master's replica now, not after whatever
        # resize follows: until then that shard's writes have no copy (WAIT 1 times out).
        attached = self._fit_replicas(world)
        self._wait_replicas(attached)
        return self._observe() if attached else world

    def _fail_over(self, lost: LostNode) -> None:
        """Wait for a replica of ``lost`` to be promoted; TAKEOVER if the cluster will not."""
        self._phase(f"failing over {lost.describe()}")

        def promoted() -> str | None:
            members = self._observe().members
            for replica_id in lost.replicas:
                node = members.get(replica_id)
                if node is not None and node.is_master and node.slots:
                    return replica_id
            return None

        deadline = time.monotonic() + self.failover_grace
        while time.monotonic() < deadline:
            try:
                if (winner := promoted()) is not None:
                    log.info("Failed over master node=%s to replica=%s", lost.short, winner[:8])
                    return
            except HeadroomError:
                pass  # a node mid-election may not answer; the deadline bounds it
            time.sleep(0.2)
        members = self._observe().members
        candidate = next((members[r] for r in lost.replicas if r in members), None)
        if candidate is None:
            raise ClusterError(f"master {lost.describe()}: no replica left to take over")
        log.warning(
            "Forcing failover master node=%s replica=%s after=%.0fs (no election won)",
            lost.short, candidate.short, self.failover_grace,
        )  # fmt: skip
        try:
            cmd(self._pool.at(NodeAddr.parse(candidate.addr)), "CLUSTER", "FAILOVER", "TAKEOVER")
        except ClusterError as err:
            raise ClusterError(
                f"{candidate.addr}: CLUSTER FAILOVER TAKEOVER failed: {err}"
            ) from err
        self._wait(lambda: promoted() is not None, f"{candidate.addr} to take over")

    # -- phases --------------------------------------------------------------------------------

    def _clean_up(self, world: World) -> World:
        """Remove dead provisioned nodes and reset leftovers so every outsider is a blank node."""
        changed = False
        for probe in world.dead:
            node = member_at(world, probe.info.addr)
            if node is not None and node.is_master and node.slots:
                raise ClusterUnreachable(
                    f"{probe.info.addr}: master {node.short} owns {len(node.slots)} slots "
                    "and does not answer; restart it or fail it over first"
                )
            if node is not None:
                self._forget_everywhere(world, node.id)
            self._remove(probe.info)
            changed = True
        for probe in world.outsiders:
            if probe.slots and world.topo is not None:
                raise UnsafeOperation(
                    f"{probe.info.addr} owns {probe.slots} slots but is not part of the "
                    f"cluster seen from {world.topo.seed}; refusing to touch it"
                )
            if probe.known > 1 or probe.keys:
                self._reset(probe.info.addr)
                changed = True
        return self._observe() if changed else world

    def _repair_first(self, world: World) -> World:
        """Finish or roll back open migrations and cover slots nobody claims, before anything
        else (joining or resizing waits for every node to say cluster_state:ok).

        A migration killed mid-way (a leader SIGKILLed, its Lease taken over) leaves slots
        open, or a slot whose source handed it over while the target's claim is missing; a
        target whose source failed over mid-migration says cluster_state:fail until its
        slot is repaired. The owner is where the keys are (see ``repair``). A slot no master
        holds a key of and no open migration names is refused, unchanged: it may be a lost
        master's. Slots nobody claims in a cluster without keys are left to the bootstrap.
        """
        topo = world.topo
        if topo is None:
            return world
        uncovered, opened = topo.uncovered(), topo.open_slots()
        if (uncovered and not any(n.keys for n in topo.masters)) or not (uncovered or opened):
            return world
        self._phase(f"repairing {len(uncovered)} uncovered and {len(opened)} open slots")
        log.warning(
            "Found slots to repair seed=%s uncovered=%d open=%d first=%d",
            topo.seed, len(uncovered), len(opened), (uncovered or [o.slot for o in opened])[0],
        )  # fmt: skip
        with self._resharding(topo.seed, None) as resharder:
            resharder.fix(cover_unknown=False)
        return self._observe()

    def _bootstrap(self, masters: int, world: World) -> None:
        """Give the first ``masters`` masters an even split of the slots nobody owns yet."""
        topo = world.topo
        if topo is not None:
            keys = sum(n.keys or 0 for n in topo.masters)
            if keys:
                raise ClusterError(
                    f"{len(topo.uncovered())} slots are not covered at {topo.seed} while the "
                    "cluster holds keys; run `headroom redis fix` first"
                )
        pool: list[NodeAddr] = [NodeAddr.parse(n.addr) for n in world.serving]
        pool += [NodeAddr.parse(n.addr) for n in world.empties]
        pool += [p.info.addr for p in world.outsiders]
        while len(pool) < masters:
            pool.append(self._add().addr)
        chosen = pool[:masters]
        self._phase(f"assigning {SLOTS} slots to {masters} masters")
        for epoch, addr in enumerate(chosen, start=1):
            # Distinct config epochs up front spare the cluster a round of collision
            # resolution; only a node that has met nobody accepts this, so errors are moot.
            try:
                cmd(self._pool.at(addr), "CLUSTER", "SET-CONFIG-EPOCH", epoch)
            except ClusterError:
                pass
        anchor = NodeAddr.parse(topo.seed) if topo is not None else chosen[0]
        membership.meet_mesh(self._pool.at, [anchor], [a for a in chosen if a != anchor])
        ids = [self._pool.node_id(a) for a in chosen]
        self._wait(lambda: all(set(ids) <= self._pool.known_ids(a) for a in chosen), "MEET")
        owned: set[int] = set()
        for addr in chosen:
            owned |= self._pool.own_slots(addr)
        for addr, (first, last) in zip(chosen, even_ranges(masters), strict=True):
            missing = [s for s in range(first, last + 1) if s not in owned]
            args: list[int] = []
            for a, b in slot_ranges(missing):
                args += [a, b]
            if args:
                cmd(self._pool.at(addr), "CLUSTER", "ADDSLOTSRANGE", *args)
        log.info("Assigned slots masters=%d", masters)

    def _scale_masters(
        self, masters: int, world: World, progress: ProgressListener | None
    ) -> list[ReshardReport]:
        serving = world.serving
        seed = serving[0].addr
        if len(serving) < masters:
            need = masters - len(serving)
            pool = [NodeAddr.parse(n.addr) for n in world.empties]
            pool += [p.info.addr for p in world.outsiders]
            newcomers, spares = pool[:need], pool[need:]
            while len(newcomers) < need:
                newcomers.append(self._add().addr)
            for node in world.empties:
                if NodeAddr.parse(node.addr) in spares:
                    self._retire(world, node)  # would get slots from use_empty_masters
            members = world.addrs()
            self._phase(f"joining {need} new masters")
            membership.meet_mesh(self._pool.at, members, [a for a in newcomers if a not in members])
            self._wait_converged(self._observe(), extra=newcomers)
            self._phase(f"rebalancing slots onto {masters} masters")
            with self._resharding(seed, progress) as resharder:
                return [resharder.rebalance(use_empty_masters=True)]
        reports: list[ReshardReport] = []
        for node in world.empties:
            self._retire(world, node)
        if len(serving) > masters:
            ours = [n for n in reversed(serving) if world.probe_of(n.id) is not None]
            leaving = ours[: len(serving) - masters]
            if len(leaving) < len(serving) - masters:
                raise UnsafeOperation(
                    f"only {len(ours)} of {len(serving)} masters were started by this "
                    f"provisioner; cannot scale in to {masters}"
                )
            staying = [n for n in serving if n not in leaving]
            seed = staying[0].addr
            for node in leaving:
                self._move_replicas(self._observe(), node, [s.id for s in staying])
                self._phase(f"draining {node.addr} ({node.short})")
                with self._resharding(seed, progress) as resharder:
                    reports.append(resharder.drain(node.id, forget=False))
                # Stop the drained node without CLUSTER RESET: until it stops it still
                # answers MOVED to clients with a stale slot map, while a reset node would
                # answer CLUSTERDOWN, which redis-py's pipelines do not retry. Once it is
                # gone, clients get a connection error, refresh the map and retry.
                self._forget_everywhere(self._observe(), node.id)
                probe = world.probe_of(node.id)
                if probe is not None:
                    self._remove(probe.info)
                log.info("Drained and removed master node=%s addr=%s", node.short, node.addr)
        after = self._observe()
        topo = after.topo
        counts = [len(n.slots) for n in after.serving]
        if topo is not None and (topo.open_slots() or max(counts) - min(counts) > 1):
            # Finishes a rebalance that a crash interrupted, or evens out after drains.
            self._phase(f"balancing slots over {masters} masters")
            with self._resharding(seed, progress) as resharder:
                reports.append(resharder.rebalance(use_empty_masters=False))
        return reports

    def _move_replicas(self, world: World, leaving: Node, staying: Sequence[str]) -> None:
        """Re-home the replicas of a master about to leave, or retire them."""
        want = self.replicas_per_master
        for replica in world.replicas_of(leaving.id):
            home = next((m for m in staying if len(world.replicas_of(m)) < want), None)
            if home is not None and world.probe_of(replica.id) is not None:
                self._replicate(NodeAddr.parse(replica.addr), home)
                world = self._observe()
            else:
                self._retire(world, replica)

    def _fit_replicas(self, world: World) -> dict[NodeAddr, str]:
        """Give every serving master exactly ``want`` replicas; returns replica -> master id."""
        attached: dict[NodeAddr, str] = {}
        want = self.replicas_per_master
        serving = world.serving
        ids = {n.id for n in serving}
        orphans = [
            n
            for n in world.members.values()
            if not n.is_master and n.master_id not in ids and world.probe_of(n.id) is not None
        ]
        spares = [p.info.addr for p in world.outsiders]
        for master in serving:
            replicas = world.replicas_of(master.id)
            for extra in list(reversed(replicas))[: max(0, len(replicas) - want)]:
                self._retire(world, extra)
            for _ in range(want - len(replicas)):
                if orphans:
                    addr = NodeAddr.parse(orphans.pop(0).addr)
                else:
                    addr = spares.pop(0) if spares else self._add().addr
                    membership.meet_mesh(self._pool.at, world.addrs(reachable=False), [addr])
                    self._wait(
                        partial(self._pool.knows, addr, master.id), f"{addr} to meet {master.addr}"
                    )
                self._replicate(addr, master.id)
                attached[addr] = master.id
        for orphan in orphans:
            self._retire(world, orphan)
        return attached
