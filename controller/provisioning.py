"""The provisioning seam: start, stop and list the nodes of a Redis Cluster.

A provisioner only owns *processes or pods*; it knows nothing about slots, roles
or the resharder. :class:`headroom.controller.cluster_scaler.ClusterScaler`
combines a provisioner with the resharder to grow and shrink a cluster. Two
implementations exist or are planned: ``controller/local/provisioner.py``
(``redis-server`` processes on loopback, the embedded default) and the
Kubernetes RedisCluster controller (one StatefulSet pod per node).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, order=True)
class NodeAddr:
    """Where a node's Redis port answers."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> NodeAddr:
        """``"host:port"`` (IPv6 hosts may be bracketed) to a :class:`NodeAddr`."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"not a host:port address: {text!r}")
        return cls(host.strip("[]"), int(port))


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
