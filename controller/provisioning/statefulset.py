"""StatefulSet provisioner: Redis Cluster nodes as the pods of one Kubernetes StatefulSet.

The Kubernetes twin of ``local.py``, driven by the same
:class:`headroom.controller.redis.scaler.ClusterScaler`; the RedisCluster
controller (``controller/operator/rediscluster.py``) builds one per cluster.
Pod ``NAME-N`` is the node of ordinal ``N``; its address is the pod IP.

A StatefulSet can only lose its highest ordinals, while the scaler may retire a
node in the middle (a replica whose master left). Removed ordinals are kept in
the StatefulSet's ``headroom.dev/removed-ordinals`` annotation — in the API
server, so an operator restart loses nothing — and hidden from
:meth:`list_nodes`; the StatefulSet shrinks as soon as its top ordinals are all
removed. The scaler drains and forgets a master *before* it calls
:meth:`remove_node`, so the StatefulSet never shrinks under a node that owns a slot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from headroom.controller.kube import Kube, call, not_found
from headroom.controller.redis.connection import NodeAddr
from headroom.controller.redis.nodes import NodeInfo
from headroom.policies.errors import KubernetesError, ProvisioningError

log = logging.getLogger(__name__)

REMOVED_ANNOTATION = "headroom.dev/removed-ordinals"


@dataclass(eq=False)
class StatefulSetProvisioner:
    """Adds and removes the pods of StatefulSet ``namespace/name`` as cluster nodes."""

    kube: Kube = field(repr=False)
    namespace: str
    name: str
    _: KW_ONLY
    port: int = 6379
    ready_timeout: float = 180.0
    poll: float = 0.2
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    # -- NodeProvisioner ---------------------------------------------------------------------

    def list_nodes(self) -> list[NodeInfo]:
        """Every Ready pod of a kept ordinal, lowest ordinal first.

        A pod that is not Ready (starting, restarting) is left out rather than
        reported dead: Kubernetes brings it back, and the scaler must not
        remove a node because it is restarting.
        """
        replicas, removed = self._shape(self._read())
        pods = self._pods()
        nodes = []
        for ordinal in range(replicas):
            if ordinal in removed:
                continue
            info = self._node(pods.get(self._pod_name(ordinal)), ordinal)
            if info is not None:
                nodes.append(info)
        return nodes

    def add_node(self) -> NodeInfo:
        """Grow the StatefulSet by one pod and return it once it is Ready."""
        sts = self._read()
        replicas, removed = self._shape(sts)
        ordinal = replicas
        self._write(sts, replicas + 1, removed)
        log.info(
            "Scaled StatefulSet %s/%s replicas=%d->%d",
            self.namespace,
            self.name,
            replicas,
            replicas + 1,
        )
        return self._wait_ready(ordinal)

    def remove_node(self, name: str) -> None:
        """Mark the pod's ordinal removed and shrink while the top ordinals are all removed."""
        ordinal = self._ordinal(name)
        sts = self._read()
        replicas, removed = self._shape(sts)
        if ordinal >= replicas:
            return
        removed.add(ordinal)
        while replicas > 0 and replicas - 1 in removed:
            replicas -= 1
            removed.discard(replicas)
        self._write(sts, replicas, removed)
        log.info(
            "Removed node pod=%s/%s statefulset_replicas=%d removed_ordinals=%s",
            self.namespace,
            name,
            replicas,
            sorted(removed) or "-",
        )

    # -- extras for the controller -------------------------------------------------------------

    def pods_ready(self) -> tuple[int, int]:
        """(Ready pods, pods wanted) over the kept ordinals."""
        replicas, removed = self._shape(self._read())
        pods = self._pods()
        wanted = [o for o in range(replicas) if o not in removed]
        ready = sum(1 for o in wanted if self._node(pods.get(self._pod_name(o)), o) is not None)
        return ready, len(wanted)

    # -- helpers -------------------------------------------------------------------------------

    def _pod_name(self, ordinal: int) -> str:
        return f"{self.name}-{ordinal}"

    def _ordinal(self, pod_name: str) -> int:
        prefix, _, number = pod_name.rpartition("-")
        if prefix != self.name or not number.isdigit():
            raise ProvisioningError(f"{pod_name}: not a pod of StatefulSet {self.name}")
        return int(number)

    def _read(self) -> Any:
        return call(
            lambda: self.kube.apps.read_namespaced_stateful_set(self.name, self.namespace),
            f"read StatefulSet {self.namespace}/{self.name}",
        )

    @staticmethod
    def _shape(sts: Any) -> tuple[int, set[int]]:
        replicas = int(sts.spec.replicas or 0)
        raw = (sts.metadata.annotations or {}).get(REMOVED_ANNOTATION, "")
        removed = {int(x) for x in raw.split(",") if x.strip().isdigit()}
        return replicas, {o for o in removed if o < replicas}

    def _write(self, sts: Any, replicas: int, removed: set[int]) -> None:
        """One patch for size and annotation, guarded by the resourceVersion we read."""
        body = {
            "metadata": {
                "resourceVersion": sts.metadata.resource_version,
                "annotations": {REMOVED_ANNOTATION: ",".join(str(o) for o in sorted(removed))},
            },
            "spec": {"replicas": replicas},
        }
        call(
            lambda: self.kube.apps.patch_namespaced_stateful_set(self.name, self.namespace, body),
            f"resize StatefulSet {self.namespace}/{self.name} to {replicas}",
        )

    def _pods(self) -> dict[str, Any]:
        pods = call(
            lambda: self.kube.core.list_namespaced_pod(
                self.namespace, label_selector=f"headroom.dev/cluster={self.name}"
            ),
            f"list pods of {self.namespace}/{self.name}",
        )
        return {p.metadata.name: p for p in pods.items}

    def _node(self, pod: Any, ordinal: int) -> NodeInfo | None:
        if pod is None or pod.metadata.deletion_timestamp is not None:
            return None
        status = pod.status
        if status is None or not status.pod_ip:
            return None
        ready = any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])
        if not ready:
            return None
        return NodeInfo(pod.metadata.name, NodeAddr(status.pod_ip, self.port), ordinal)

    def _wait_ready(self, ordinal: int) -> NodeInfo:
        name = self._pod_name(ordinal)
        deadline = time.monotonic() + self.ready_timeout
        last = "not created yet"
        while time.monotonic() < deadline:
            try:
                pod = call(
                    lambda: self.kube.core.read_namespaced_pod(name, self.namespace),
                    f"read pod {self.namespace}/{name}",
                )
                info = self._node(pod, ordinal)
                if info is not None:
                    return info
                last = f"phase {pod.status.phase if pod.status else 'unknown'}, not Ready"
            except KubernetesError as err:
                if not not_found(err):
                    last = str(err)
            self.sleep(self.poll)
        raise ProvisioningError(
            f"pod {self.namespace}/{name} not Ready after {self.ready_timeout:.0f}s ({last})"
        )
