"""The single steps a cluster scaler takes, each one action on the provisioner or the cluster.

:class:`ClusterSteps` holds what a scaler run needs (the provisioner, one client per
node, the resharder's connection and options, the phase listener) and the actions
:class:`~headroom.controller.redis.scaler.ClusterScaler` composes: reading the world,
starting and removing a node, retiring one (FORGET everywhere, RESET HARD), attaching a
replica, waiting for the cluster to settle, and a resharder over the cluster. What to
heal, repair, add or drain is decided in ``redis/scaler.py``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator

from headroom.controller.redis import membership
from headroom.controller.redis.connection import NodeAddr, RedisAuth, make_connect
from headroom.controller.redis.migrate import MigrateOptions
from headroom.controller.redis.nodes import NodeInfo, NodeProvisioner
from headroom.controller.redis.observe import World, observe
from headroom.controller.redis.pool import NodePool
from headroom.controller.redis.reports import ProgressListener
from headroom.controller.redis.resharder import CLIENT_NAME as RESHARDER_CLIENT
from headroom.controller.redis.resharder import Resharder
from headroom.controller.redis.topology import Node, cluster_nodes

log = logging.getLogger(__name__)

PhaseListener = Callable[[str], None]


class ClusterSteps:
    """The provisioner, the clients and the single steps of one scaler (see the module)."""

    def __init__(
        self,
        provisioner: NodeProvisioner,
        *,
        auth: RedisAuth | None,
        ok_timeout: float,
        on_phase: PhaseListener | None,
    ) -> None:
        self.provisioner = provisioner
        self._reshard_connect = make_connect(auth, client_name=RESHARDER_CLIENT)
        # MIGRATE opens its own connection to the target, which must AUTH too.
        self._migrate_options = MigrateOptions(
            username=auth.username if auth else None, password=auth.password if auth else None
        )
        self._pool = NodePool(
            make_connect(
                auth, client_name="headroom-scaler", socket_timeout=30.0, decode_responses=True
            )
        )
        self.ok_timeout = ok_timeout
        self.on_phase = on_phase
        self._added: list[str] = []
        self._removed: list[str] = []

    def close(self) -> None:
        """Close the clients this scaler opened."""
        self._pool.close()

    def _observe(self) -> World:
        return observe(self.provisioner.list_nodes(), self._pool)

    def _add(self) -> NodeInfo:
        self._phase("starting a node")
        info = self.provisioner.add_node()
        self._added.append(info.name)
        return info

    def _remove(self, info: NodeInfo) -> None:
        self.provisioner.remove_node(info.name)
        self._removed.append(info.name)

    def _retire(self, world: World, node: Node) -> None:
        """Make every other node forget ``node``, then blank it for reuse or removal."""
        self._forget_everywhere(world, node.id)
        self._reset(NodeAddr.parse(node.addr))
        log.info("Retired node node=%s addr=%s", node.short, node.addr)

    def _forget_everywhere(self, world: World, node_id: str) -> None:
        reachable = [n for n in world.members.values() if n.reachable]
        membership.forget_everywhere(self._pool.at, reachable, [node_id])

    def _reset(self, addr: NodeAddr) -> None:
        membership.reset(self._pool.at(addr), str(addr), discard_keys=True)

    def _replicate(self, addr: NodeAddr, master_id: str) -> None:
        self._phase(f"attaching replica {addr}")
        membership.replicate(self._pool.at(addr), str(addr), master_id)

    def _wait_converged(self, world: World, extra: Iterable[NodeAddr] = ()) -> None:
        """Every member (and ``extra``) knows all the others and says cluster_state:ok."""
        addrs = world.addrs()
        addrs |= set(extra)
        ids = {self._pool.node_id(a) for a in addrs}
        membership.settle(
            lambda: self._pool.unconverged(addrs, ids),
            timeout=self.ok_timeout,
            what="cluster_state:ok on every node",
        )

    def _wait_replicas(self, attached: dict[NodeAddr, str]) -> None:
        """Until every member sees each new replica, with its master; gossip takes a moment,
        and a replica the seed does not list yet would look like a spare to remove."""
        if not attached:
            return
        ids = {self._pool.node_id(addr): master for addr, master in attached.items()}

        def agreed() -> bool:
            world = self._observe()
            addrs = world.addrs()
            for addr in addrs | set(attached):
                lines = {x.id: x for x in cluster_nodes(self._pool.at(addr), str(addr))}
                for node_id, master in ids.items():
                    line = lines.get(node_id)
                    if line is None or line.master_id != master or "slave" not in line.flags:
                        return False
            return True

        self._wait(agreed, "every node to see the new replicas")

    def _wait(self, check: Callable[[], bool], what: str) -> None:
        membership.settle(lambda: None if check() else "", timeout=self.ok_timeout, what=what)

    @contextlib.contextmanager
    def _resharding(self, seed: str, progress: ProgressListener | None) -> Iterator[Resharder]:
        resharder = Resharder(
            seed, connect=self._reshard_connect, progress=progress, options=self._migrate_options
        )
        try:
            yield resharder
        finally:
            resharder.close()

    def _phase(self, text: str) -> None:
        if self.on_phase is not None:
            self.on_phase(text)
