"""The provisioning seam the scaler needs: start, stop and list the nodes of a Redis Cluster.

A provisioner only owns *processes or pods*; it knows nothing about slots, roles
or the resharder. :class:`headroom.controller.redis.scaler.ClusterScaler`
combines a provisioner with the resharder to grow and shrink a cluster. The seam lives
here, with its consumer, so ``controller.redis`` never imports ``controller.provisioning``
(an import-linter contract); the two implementations are in ``controller/provisioning/``:
``local.py`` (``redis-server`` processes on loopback, the embedded default) and
``statefulset.py`` (one StatefulSet pod per node, for the Kubernetes RedisCluster
controller).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from headroom.controller.redis.connection import NodeAddr

# The cluster-mode settings of every node Headroom starts, whichever provisioner starts
# it (``redis-server`` processes or StatefulSet pods). Headroom places replicas itself:
# Redis must not move them behind its back, and a drained master must stay an empty
# master, not turn into a replica of the taker. Failover waits about three node timeouts.
CLUSTER_NODE_ARGS: tuple[str, ...] = (
    "--cluster-enabled", "yes",
    "--cluster-config-file", "nodes.conf",
    "--cluster-node-timeout", "5000",
    "--cluster-allow-replica-migration", "no",
)  # fmt: skip


@dataclass(frozen=True)
class NodeInfo:
    """One provisioned node.

    ``ordinal`` orders nodes by creation (higher is newer, like a StatefulSet
    pod's ordinal), so scale-in can remove the newest nodes first. ``node_id``
    is the cluster node id when the provisioner has seen it (``None`` before
    the node answered); the cluster itself stays the authority on ids.
    """

    name: str
    addr: NodeAddr
    ordinal: int
    node_id: str | None = None


class NodeProvisioner(Protocol):
    """Creates and destroys empty, cluster-enabled Redis nodes."""

    def add_node(self) -> NodeInfo:
        """Start one empty cluster-enabled node that has met nobody; return once it answers."""
        ...

    def remove_node(self, name: str) -> None:
        """Stop the node called ``name`` and delete its data; a no-op if it is already gone."""
        ...

    def list_nodes(self) -> list[NodeInfo]:
        """Every node this provisioner has started and not removed, oldest first."""
        ...
