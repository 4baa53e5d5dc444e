"""The clients a cluster operation holds open, one per node, and what it reads of one node.

The scaler (``redis/scaler.py``) and the resharder (``redis/resharder.py``) each keep a
:class:`NodePool` for their run: a client is opened the first time a node is
needed, shared by every later command to that node (from any thread), and all are
closed together. :meth:`NodePool.client` is itself a
:data:`~headroom.controller.redis.connection.Connect`, so it can be handed to
:func:`~headroom.controller.redis.topology.read_topology`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from headroom.controller.redis.connection import Client, Connect, NodeAddr, as_text, cmd
from headroom.controller.redis.topology import cluster_nodes, cluster_state

# The CLUSTER INFO fields that say whether (and why not) a node serves every slot.
_WHY_DOWN = (
    "cluster_state:",
    "cluster_slots_assigned:",
    "cluster_slots_pfail:",
    "cluster_slots_fail:",
)


class NodePool:
    """One shared client per node address, opened on first use with ``connect``."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._clients: dict[NodeAddr, Client] = {}
        self._lock = threading.Lock()

    def client(self, host: str, port: int) -> Client:
        """The shared client to ``host:port`` (a :data:`Connect`)."""
        return self.at(NodeAddr(host, port))

    def at(self, addr: NodeAddr) -> Client:
        """The shared client to ``addr``."""
        with self._lock:
            client = self._clients.get(addr)
            if client is None:
                client = self._clients[addr] = self._connect(addr.host, addr.port)
            return client

    def close(self) -> None:
        """Close every client opened so far (the pool can be used again afterwards)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # -- what one node says ----------------------------------------------------------------

    def node_id(self, addr: NodeAddr) -> str:
        """The node's own id (CLUSTER MYID)."""
        return as_text(cmd(self.at(addr), "CLUSTER", "MYID"))

    def known_ids(self, addr: NodeAddr) -> set[str]:
        """The ids the node knows, handshakes left out."""
        lines = cluster_nodes(self.at(addr), str(addr))
        return {line.id for line in lines if "handshake" not in line.flags}

    def knows(self, addr: NodeAddr, node_id: str) -> bool:
        """Whether the node at ``addr`` has met ``node_id``."""
        return node_id in self.known_ids(addr)

    def own_slots(self, addr: NodeAddr) -> set[int]:
        """The slots the node itself claims."""
        lines = cluster_nodes(self.at(addr), str(addr))
        return set(next(line for line in lines if "myself" in line.flags).slots)

    def unconverged(self, addrs: Iterable[NodeAddr], ids: set[str]) -> str | None:
        """None once every node at ``addrs`` knows all of ``ids`` and says
        ``cluster_state:ok``; else what the first node that does not says (for a timeout)."""
        for addr in sorted(addrs, key=str):
            missing = ids - self.known_ids(addr)
            info = as_text(cmd(self.at(addr), "CLUSTER", "INFO"))
            if missing or cluster_state(info) != "ok":
                # The counters say why a node is down: slots unassigned, or on failed nodes.
                said = [x.strip() for x in info.splitlines() if x.startswith(_WHY_DOWN)]
                unknown = ",".join(sorted(i[:8] for i in missing)) or "none"
                return f"{addr} says {' '.join(said)}; has not met {unknown}"
        return None
