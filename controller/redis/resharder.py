"""The resharder facade: status, rebalance, drain, fix for any reachable Redis Cluster.

Called by ``headroom redis ...`` (cli/redis.py), by the local provisioner after
it starts or before it stops nodes, and later by the RedisCluster controller.
Every entry point reads the topology fresh, repairs slots left open by a crash
before it moves anything, and refuses bad input before it changes anything.

Work is split into source->target pairs (run by ``pairs.py``); up to
min(#sources, #targets) pairs run at once (also when several masters drain
together), and a node is never in two migrations at the same time. Progress and
results are the values of ``reports.py``.

New masters are introduced to clients before the bulk move, because redis-py
fails on an ASK to a node it has never seen (issue 4015) and learns nodes only
from MOVED or a full CLUSTER SLOTS refresh: each newcomer first gets one
fewest-key slot alone, then more (non-empty, fewest keys first) in small chunks (short ASK windows),
and the bulk waits (at most ``intro_wait_s``) until some application client
has connected to every newcomer, i.e. has learned it. With no application
client connected there is nobody to wait for. This narrows the race a great
deal; only a client-side fix closes it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence

from headroom.controller.redis import membership
from headroom.controller.redis.connection import (
    OWN_PREFIX,
    Connect,
    NodeAddr,
    RedisAuth,
    as_text,
    cmd,
    make_connect,
    pipelined,
    with_socket_timeout,
)
from headroom.controller.redis.crash import crash_at
from headroom.controller.redis.migrate import Endpoint, MigrateOptions, PairMigrator
from headroom.controller.redis.pairs import run_pairs
from headroom.controller.redis.pool import NodePool
from headroom.controller.redis.repair import repair
from headroom.controller.redis.reports import ProgressListener, ReshardReport, Tally
from headroom.controller.redis.slotplan import SlotPlan, plan_slots
from headroom.controller.redis.topology import (
    Node,
    Topology,
    cluster_nodes,
    read_topology,
)
from headroom.policies.errors import (
    ClusterError,
    ClusterUnreachable,
    HeadroomError,
    InputError,
    MigrationError,
    UnsafeOperation,
)

log = logging.getLogger(__name__)

CLIENT_NAME = "headroom-resharder"  # so our own connections are told from applications'
_MIGRATE_CMDS = frozenset({"restore-asking", "restore", "select", "auth", "migrate", "NULL"})


class Resharder:
    """Rebalances, drains and repairs one Redis Cluster, reached through ``seed``."""

    def __init__(
        self,
        seed: str,
        *,
        connect: Connect | None = None,
        progress: ProgressListener | None = None,
        parallel: bool = True,
        options: MigrateOptions | None = None,
        cluster_timeout: float = 30.0,
        crash_after_keys: int | None = None,
        crash_at_handover: tuple[str, int] | None = None,
    ) -> None:
        """Test hooks: ``crash_after_keys`` SIGKILLs the process mid-slot after that many
        keys; ``crash_at_handover`` (step, n) right after the n-th hand-over step named
        ``step`` ("target", "source" or "other", see ``PairMigrator.hand_over``)."""
        NodeAddr.parse(seed)
        self.seed = seed
        self._connect = connect or make_connect(
            RedisAuth(
                username=options.username if options else None,
                password=options.password if options else None,
            ),
            client_name=CLIENT_NAME,
        )
        self._progress = progress
        self._parallel = parallel
        self.options = options or MigrateOptions()
        self._cluster_timeout = cluster_timeout
        self._crash_after_keys = crash_after_keys
        self._crash_at_handover = crash_at_handover
        self._pool = NodePool(self._connect)

    # -- reading ----------------------------------------------------------------------------
    def _endpoint(self, node: Node, *, migration: bool = False) -> Endpoint:
        """A shared control client, or (``migration``) an own one that may run MIGRATE.

        Only a node sending MIGRATE must wait longer than MIGRATE's own timeout; a
        target keeps the control timeout, so a target that stops answering is
        reported in seconds, not minutes.
        """
        if not migration:
            return Endpoint(node.id, node.host, node.port, self._pool.client(node.host, node.port))
        client = with_socket_timeout(
            self._connect(node.host, node.port), self.options.max_timeout_ms / 1000 + 30
        )
        return Endpoint(node.id, node.host, node.port, client)

    def _own_endpoint(self, node: Node) -> Endpoint:
        return Endpoint(node.id, node.host, node.port, self._connect(node.host, node.port))

    def topology(self) -> Topology:
        """Masters, replicas, slots and keys per master, open slots, health."""
        return read_topology(self.seed, self._pool.client)

    def close(self) -> None:
        self._pool.close()

    # -- planning ---------------------------------------------------------------------------
    def _resolve_weights(
        self, topo: Topology, weights: Mapping[str, float] | None
    ) -> dict[str, float] | None:
        if weights is None:
            return None
        out: dict[str, float] = {}
        for key, w in weights.items():
            node = topo.node(key)
            if not node.is_master:
                raise InputError(f"weight for {node.short} ({node.addr}): it is a replica")
            out[node.id] = float(w)
        if out and sum(out.values()) <= 0 and len(out) == len(topo.masters):
            raise InputError("weights sum to zero: no master would hold any slot")
        return out

    def _usable(self, topo: Topology) -> list[Node]:
        masters = list(topo.masters)
        if not masters:
            raise ClusterError(f"cluster at {self.seed} has no master")
        down = [m for m in masters if not m.reachable]
        if down:
            raise ClusterUnreachable(f"master {down[0].short} ({down[0].addr}) does not answer")
        return masters

    def _slot_keys(self, masters: list[Node]) -> tuple[dict[int, int], dict[str, float]]:
        keys: dict[int, int] = {}
        per_key: dict[str, float] = {}
        for m in masters:
            if not m.slots:
                continue
            client = self._pool.client(m.host, m.port)
            slots = sorted(m.slots)
            try:
                counts = pipelined(client, [("CLUSTER", "COUNTKEYSINSLOT", s) for s in slots])
                mem = cmd(client, "INFO", "memory")
            except ClusterError as err:
                raise ClusterUnreachable(f"node {m.short} ({m.addr}) failed: {err}") from err
            keys.update({s: int(c) for s, c in zip(slots, counts, strict=True)})
            dataset = float(mem.get("used_memory_dataset", 0))
            per_key[m.id] = dataset / m.keys if m.keys else 0.0
        return keys, per_key

    def plan_rebalance(
        self, *, use_empty_masters: bool = True, weights: Mapping[str, float] | None = None
    ) -> SlotPlan:
        """The moves a rebalance would make now (read-only: a dry run)."""
        topo = self.topology()
        return self._plan(topo, use_empty_masters=use_empty_masters, weights=weights)

    def _plan(
        self,
        topo: Topology,
        *,
        use_empty_masters: bool = True,
        weights: Mapping[str, float] | None = None,
        drain: tuple[str, ...] = (),
    ) -> SlotPlan:
        masters = self._usable(topo)
        resolved = self._resolve_weights(topo, weights)
        slot_keys, per_key = self._slot_keys(masters)
        return plan_slots(
            {m.id: m.slots for m in masters},
            weights=resolved,
            use_empty_masters=use_empty_masters,
            drain=drain,
            slot_keys=slot_keys,
            key_bytes=per_key,
        )

    # -- acting -----------------------------------------------------------------------------
    def rebalance(
        self,
        *,
        use_empty_masters: bool = True,
        weights: Mapping[str, float] | None = None,
        raise_on_error: bool = True,
    ) -> ReshardReport:
        """Repair open slots, then move slots to the balanced (weighted) map."""
        started = time.monotonic()
        topo = self.topology()
        self._usable(topo)
        self._resolve_weights(topo, weights)  # bad input fails before anything changes
        repaired = self._repair(topo)
        self.wait_cluster_ok(self._cluster_timeout)
        topo = self.topology()
        plan = self._plan(topo, use_empty_masters=use_empty_masters, weights=weights)
        return self._execute(topo, plan, started, repaired, raise_on_error)

    def drain(
        self,
        node_ids: str | Sequence[str],
        *,
        forget: bool = False,
        raise_on_error: bool = True,
    ) -> ReshardReport:
        """Move every slot off the given master(s); with ``forget`` also remove them.

        Several masters drain together: their slots flow to the staying masters over
        disjoint pairs at once, instead of one leaving node at a time.
        """
        started = time.monotonic()
        topo = self.topology()
        masters = self._usable(topo)
        wanted = [node_ids] if isinstance(node_ids, str) else list(node_ids)
        if not wanted:
            raise InputError("drain: no node given")
        leaving: list[Node] = []
        for node_id in wanted:
            node = topo.node(node_id)
            if not node.is_master:
                raise UnsafeOperation(
                    f"node {node.short} ({node.addr}) is a replica: nothing to drain"
                )
            if node not in leaving:
                leaving.append(node)
        ids = {n.id for n in leaving}
        if not [m for m in masters if m.id not in ids]:
            names = ", ".join(f"{n.short} ({n.addr})" for n in leaving)
            what = "it is the last master" if len(leaving) == 1 else "they are the last masters"
            raise UnsafeOperation(f"refusing to drain {names}: {what}")
        # A Redis 7 master that gives away its last slot would turn into a replica of
        # the taker; keep it a master so drains of several nodes never trip on that.
        for node in leaving:
            try:
                cmd(
                    self._pool.client(node.host, node.port),
                    "CONFIG", "SET", "cluster-allow-replica-migration", "no",
                )  # fmt: skip
            except ClusterError as err:
                log.warning("Kept replica migration setting node=%s error=%s", node.short, err)
        repaired = self._repair(topo)
        self.wait_cluster_ok(self._cluster_timeout)
        topo = self.topology()
        plan = self._plan(topo, drain=tuple(n.id for n in leaving))
        report = self._execute(topo, plan, started, repaired, raise_on_error)
        if forget and report.ok:
            forgotten = self._forget([n.id for n in leaving])
            report = ReshardReport(
                report.slots_moved, report.keys_moved, report.bytes_moved,
                time.monotonic() - started, report.errors, report.repaired, report.plan,
                forgotten,
            )  # fmt: skip
        return report

    def fix(self, *, cover_unknown: bool = True) -> ReshardReport:
        """Repair open slots left by any crash and wait until the cluster is ok.

        ``cover_unknown=False`` refuses (changing nothing) when an uncovered slot has no
        key on any master and no open migration: see :func:`repair`.
        """
        started = time.monotonic()
        topo = self.topology()
        repaired = self._repair(topo, cover_unknown=cover_unknown)
        self.wait_cluster_ok(self._cluster_timeout)
        return ReshardReport(0, 0, 0, time.monotonic() - started, [], repaired, _no_plan(topo))

    def meet(self, *addrs: str) -> None:
        """CLUSTER MEET new nodes from the seed, then wait until every node agrees and is ok."""
        at = NodeAddr.parse(self.seed)
        seed = self._pool.client(at.host, at.port)
        for addr in addrs:
            membership.meet(seed, self.seed, NodeAddr.parse(addr))
        self.wait_cluster_ok(self._cluster_timeout)

    def wait_cluster_ok(self, timeout: float = 30.0) -> None:
        """Until every node reports cluster_state:ok and all know the same nodes."""
        membership.settle(
            lambda: self._not_ok() or None, timeout=timeout, what=f"cluster at {self.seed} ok"
        )

    # -- internals --------------------------------------------------------------------------
    def _not_ok(self) -> str:
        topo = self.topology()
        ids = {n.id for n in topo.nodes}
        for n in topo.nodes:
            if not n.reachable:
                return f"{n.addr} does not answer"
            if n.state != "ok":
                return f"{n.addr} reports cluster_state:{n.state}"
            seen = {
                x.id
                for x in cluster_nodes(self._pool.client(n.host, n.port), n.addr)
                if "noaddr" not in x.flags
            }
            if seen != ids:
                return f"{n.addr} does not yet agree on the node list"
        if topo.uncovered():
            return f"{len(topo.uncovered())} slots uncovered"
        return ""

    def _repair(self, topo: Topology, *, cover_unknown: bool = True) -> list[str]:
        if not topo.open_slots() and not topo.uncovered():
            return []
        # Repair may MIGRATE from any master, so every endpoint may wait that long.
        return repair(
            topo,
            lambda n: self._endpoint(n, migration=True),
            self.options,
            cover_unknown=cover_unknown,
        )

    def _execute(
        self,
        topo: Topology,
        plan: SlotPlan,
        started: float,
        repaired: list[str],
        raise_on_error: bool,
    ) -> ReshardReport:
        tally = Tally(plan.slots, self._progress)
        errors: list[str] = []
        if not plan.empty:
            try:
                self._run_moves(topo, plan, tally)
            except HeadroomError as err:
                errors.append(str(err))
        report = ReshardReport(
            tally.slots, tally.keys, tally.bytes, time.monotonic() - started, errors,
            repaired, plan,
        )  # fmt: skip
        log.info(
            "Resharded cluster seed=%s slots=%d keys=%d seconds=%.2f errors=%d",
            self.seed, report.slots_moved, report.keys_moved, report.seconds, len(errors),
        )  # fmt: skip
        if errors and raise_on_error:
            raise MigrationError(errors[0])
        return report

    def _run_moves(self, topo: Topology, plan: SlotPlan, tally: Tally) -> None:
        by_id = {n.id: n for n in topo.masters}
        queues: dict[tuple[str, str], deque[int]] = {}
        for m in plan.moves:
            queues.setdefault((m.source, m.target), deque()).append(m.slot)
        keys = dict(plan.slot_keys)
        crash = self._crash_after_keys
        hook = None if crash is None else (lambda _n: tally.keys >= crash)
        silent: set[str] = set()
        handed = crash_at(self._crash_at_handover)

        def migrator(src: str, tgt: str) -> PairMigrator:
            others = [self._endpoint(n) for n in topo.masters if n.id not in (src, tgt)]
            return PairMigrator(
                self._endpoint(by_id[src], migration=True),
                self._own_endpoint(by_id[tgt]),
                others, self.options, tally.add, hook, silent, handed,
            )  # fmt: skip

        # New masters first get one slot with the fewest keys, alone (redis-py issue 4015).
        for tgt in sorted({t for _, t in queues if plan.before.get(t, 0) == 0}):
            pair, slot = min(
                ((p, s) for p, q in queues.items() if p[1] == tgt for s in q),
                key=lambda ps: (keys.get(ps[1], 0), ps[1]),
            )
            queues[pair].remove(slot)
            first = migrator(*pair)
            try:
                first.move([slot])
            finally:
                first.source.client.close()
                first.target.client.close()
        # Then more of their slots in small chunks (short ASK windows), and a pause:
        # clients that touch any of them get MOVED, which (unlike ASK) adds the node to
        # redis-py's table, and every 5th MOVED refreshes the whole table. Slots that hold
        # keys come first (fewest first): clients reading existing data touch those, while
        # an empty slot may never be touched and would teach no client anything.
        newcomers = {t for _, t in queues if plan.before.get(t, 0) == 0}
        intro: dict[tuple[str, str], deque[int]] = {}
        for tgt in sorted(newcomers):
            mine = sorted(
                ((p, s) for p, q in queues.items() if p[1] == tgt for s in q),
                key=lambda ps: (keys.get(ps[1], 0) == 0, keys.get(ps[1], 0), ps[1]),
            )[: self.options.intro_slots]
            for pair, slot in mine:
                queues[pair].remove(slot)
                intro.setdefault(pair, deque()).append(slot)
        if intro:
            run_pairs(
                intro, keys, migrator, self.options,
                chunk_slots=self.options.intro_chunk_slots, parallel=self._parallel,
            )  # fmt: skip
            old = [m for m in topo.masters if m.id not in newcomers]
            self._wait_clients_know([by_id[t] for t in sorted(newcomers)], old)
        run_pairs(queues, keys, migrator, self.options, parallel=self._parallel)

    def _wait_clients_know(self, newcomers: list[Node], old: list[Node]) -> None:
        """Until some application client talks to every new master (bounded).

        A client connects to a node only once it knows it, so a foreign connection
        on each newcomer means clients have learned them; with no application client
        on the old masters there is nobody to wait for.
        """
        if not any(self._foreign_clients(n) for n in old):
            return
        deadline = time.monotonic() + self.options.intro_wait_s
        while time.monotonic() < deadline:
            unknown = [n for n in newcomers if not self._foreign_clients(n)]
            if not unknown:
                return
            time.sleep(0.05)
        log.warning(
            "Went on before clients knew new masters nodes=%s waited_s=%.1f",
            ",".join(n.short for n in unknown), self.options.intro_wait_s,
        )  # fmt: skip

    def _foreign_clients(self, node: Node) -> int:
        """Normal connections on ``node`` that are neither ours nor MIGRATE's."""
        try:
            raw = cmd(self._pool.client(node.host, node.port), "CLIENT", "LIST", "TYPE", "normal")
        except ClusterError:
            return 0
        count = 0
        for line in as_text(raw).splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            # Any "headroom-*" connection is ours (resharder, scaler, signal sampler).
            if fields.get("name", "").startswith(OWN_PREFIX) or fields.get("cmd") in _MIGRATE_CMDS:
                continue
            count += 1
        return count

    def _forget(self, node_ids: Sequence[str]) -> list[str]:
        """CLUSTER FORGET emptied masters (and their replicas) everywhere, then reset them."""
        topo = self.topology()
        leaving: list[Node] = []
        for node_id in node_ids:
            node = topo.node(node_id)
            if node.slots:
                raise UnsafeOperation(f"node {node.short} still owns {len(node.slots)} slots")
            if node.keys:
                raise UnsafeOperation(
                    f"node {node.short} still holds {node.keys} keys; not forgetting"
                )
            leaving += [node] + [r for r in topo.replicas if r.master_id == node.id]
        leaving_ids = {n.id for n in leaving}
        staying = [n for n in topo.nodes if n.id not in leaving_ids]
        membership.forget_everywhere(self._pool.at, staying, [n.id for n in leaving])
        # Within FORGET's 60 s ban: wipe the leavers so they cannot gossip back in.
        for gone in leaving:
            try:
                membership.reset(
                    self._pool.client(gone.host, gone.port), gone.addr, discard_keys=False
                )
            except ClusterError as err:
                log.warning("Left forgotten node unreset node=%s error=%s", gone.addr, err)
        if self.seed in {n.addr for n in leaving}:
            self.seed = next(n.addr for n in staying if n.is_master)
        self.wait_cluster_ok(self._cluster_timeout)
        log.info("Forgot nodes ids=%s", ",".join(n.short for n in leaving))
        return [n.id for n in leaving]


def _no_plan(topo: Topology) -> SlotPlan:
    counts = {m.id: len(m.slots) for m in topo.masters}
    return SlotPlan(moves=(), before=counts, after=counts)


__all__ = ["CLIENT_NAME", "Resharder"]
