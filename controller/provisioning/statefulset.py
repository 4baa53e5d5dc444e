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

An ordinal :meth:`add_node` created is kept in ``headroom.dev/adding-ordinals`` until its
pod is first Ready and handed to the scaler (the mark is cleared *before* the node is
returned): such a pod has never been met, so it holds no slot. A scale-out whose new pod
never becomes Ready (unschedulable, its image never pulls) fails after ``ready_timeout``
and is retried; the retry waits for the same pod again instead of adding another, so
the StatefulSet does not grow by one pod per attempt, and an operator restart resumes
the same wait. :meth:`unready_pods` says why each pod is not Ready (the operator's
PodsStuck report).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from headroom.controller.kube import Kube, call, not_found
from headroom.controller.redis.connection import NodeAddr
from headroom.controller.redis.nodes import NodeInfo
from headroom.policies.errors import KubernetesError, ProvisioningError

log = logging.getLogger(__name__)

REMOVED_ANNOTATION = "headroom.dev/removed-ordinals"
ADDING_ANNOTATION = "headroom.dev/adding-ordinals"

# A pod's reason is quoted from the scheduler or the kubelet: kept short in Events.
_MESSAGE_CHARS = 200


@dataclass(frozen=True)
class PodCounts:
    """Pods Ready and wanted (:meth:`StatefulSetProvisioner.pod_counts`): all kept ones,
    and those left once the pods a scale-out added that were never Ready are left out."""

    ready: int
    wanted: int
    ready_met: int
    wanted_met: int


@dataclass(frozen=True)
class PodWait:
    """A kept pod that is not Ready, and why, as the scheduler and the kubelet say it.

    ``adding``: a pod a scale-out added that was never Ready, so never met and holding
    no slot (``headroom.dev/adding-ordinals``)."""

    name: str
    phase: str  # Pending, Running, ...; "Missing" when the StatefulSet has not created it
    reason: str = ""
    message: str = ""
    adding: bool = False

    def describe(self) -> str:
        """``redis-a-3 Pending: Unschedulable: 0/3 nodes are available: ...``"""
        text = f"{self.name} {self.phase}"
        if self.reason:
            text += f": {self.reason}"
        if self.message:
            message = " ".join(self.message.split())
            if len(message) > _MESSAGE_CHARS:
                message = message[: _MESSAGE_CHARS - 3] + "..."
            text += f": {message}"
        if self.adding:
            text += " (added by a scale-out, holds no slots)"
        return text


def _shrink(replicas: int, removed: set[int]) -> int:
    """The StatefulSet's size once its top ordinals that are all removed go (``removed``
    loses them, in place)."""
    while replicas > 0 and replicas - 1 in removed:
        replicas -= 1
        removed.discard(replicas)
    return replicas


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
        replicas, removed, adding = self._shape(self._read())
        nodes = []
        for ordinal, _, _, info in self._members(replicas, removed, self._pods()):
            if info is None or (ordinal in adding and not self._added(ordinal)):
                continue  # not Ready; or added, and its mark is cleared before anyone meets it
            nodes.append(info)
        return nodes

    def add_node(self) -> NodeInfo:
        """Grow the StatefulSet by one pod and return it once it is Ready; a pod an earlier
        call added that was never Ready is waited for instead (its wait timed out, or the
        operator restarted)."""
        sts = self._read()
        replicas, removed, adding = self._shape(sts)
        if adding:
            ordinal = min(adding)
            log.info("Resumed waiting for added pod=%s/%s", self.namespace, self._pod_name(ordinal))
            return self._wait_ready(ordinal)
        ordinal = replicas
        self._write(sts, replicas + 1, removed, {ordinal})
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
        replicas, removed, adding = self._shape(sts)
        if ordinal >= replicas:
            return
        adding.discard(ordinal)
        removed.add(ordinal)
        replicas = _shrink(replicas, removed)
        self._write(sts, replicas, removed, adding)
        log.info(
            "Removed node pod=%s/%s statefulset_replicas=%d removed_ordinals=%s",
            self.namespace,
            name,
            replicas,
            sorted(removed) or "-",
        )

    # -- extras for the controller -------------------------------------------------------------

    def pod_counts(self) -> PodCounts:
        """The Ready and wanted pods over the kept ordinals, with and without the pods a
        scale-out added that were never Ready (never met: they hold nothing, and no lost
        node can come back in one), from one read of the StatefulSet and its pods."""
        replicas, removed, marked = self._shape(self._read())
        ready = wanted = ready_met = wanted_met = 0
        for ordinal, _, _, info in self._members(replicas, removed, self._pods()):
            up = info is not None
            ready += up
            wanted += 1
            if ordinal not in marked or up:
                ready_met += up
                wanted_met += 1
        return PodCounts(ready, wanted, ready_met, wanted_met)

    def pods_ready(self, *, adding: bool = True) -> tuple[int, int]:
        """(Ready pods, pods wanted) over the kept ordinals; ``adding=False`` leaves out the
        pods a scale-out added that were never Ready (see :meth:`pod_counts`)."""
        got = self.pod_counts()
        return (got.ready, got.wanted) if adding else (got.ready_met, got.wanted_met)

    def release_adding(self, keep: int) -> list[str]:
        """Remove pods a scale-out added that were never Ready (marked: never met, so they
        hold no slot), newest first, while more than ``keep`` pods are kept; returns the
        names. A marked pod that is Ready is left to the scaler, which may be meeting it.
        For a scale-out given up on (the spec wants fewer pods again)."""
        sts = self._read()
        replicas, removed, adding = self._shape(sts)
        kept = replicas - len(removed)
        if not adding or kept <= keep:
            return []
        pods = self._pods()
        released = []
        for ordinal in sorted(adding, reverse=True):
            if kept <= keep:
                break
            name = self._pod_name(ordinal)
            if self._node(pods.get(name), ordinal) is not None:
                continue
            adding.discard(ordinal)
            removed.add(ordinal)
            kept -= 1
            released.append(name)
        if not released:
            return []
        replicas = _shrink(replicas, removed)
        # Guarded by the resourceVersion read: a mark cleared meanwhile (the pod handed
        # to the scaler) makes this write fail with a conflict instead of removing it.
        self._write(sts, replicas, removed, adding)
        log.info(
            "Released never-Ready added pods=%s StatefulSet %s/%s replicas=%d",
            ",".join(released), self.namespace, self.name, replicas,
        )  # fmt: skip
        return released

    def unready_pods(self) -> list[PodWait]:
        """Every kept pod that is not Ready, lowest ordinal first, with the reason."""
        replicas, removed, adding = self._shape(self._read())
        return [
            pod_wait(name, pod, adding=ordinal in adding)
            for ordinal, name, pod, info in self._members(replicas, removed, self._pods())
            if info is None
        ]

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
    def _ordinals(sts: Any, annotation: str, replicas: int) -> set[int]:
        raw = (sts.metadata.annotations or {}).get(annotation, "")
        return {int(x) for x in raw.split(",") if x.strip().isdigit() and int(x) < replicas}

    @classmethod
    def _shape(cls, sts: Any) -> tuple[int, set[int], set[int]]:
        """(replicas, the ordinals removed, the ordinals added and never Ready yet)."""
        replicas = int(sts.spec.replicas or 0)
        removed = cls._ordinals(sts, REMOVED_ANNOTATION, replicas)
        return replicas, removed, cls._ordinals(sts, ADDING_ANNOTATION, replicas) - removed

    def _members(
        self, replicas: int, removed: set[int], pods: dict[str, Any]
    ) -> Iterator[tuple[int, str, Any, NodeInfo | None]]:
        """Each kept ordinal, lowest first: its pod's name, the pod (None: not created yet)
        and the node it is once Ready (None: not Ready)."""
        for ordinal in range(replicas):
            if ordinal not in removed:
                name = self._pod_name(ordinal)
                pod = pods.get(name)
                yield ordinal, name, pod, self._node(pod, ordinal)

    def _kept(self, ordinal: int) -> bool:
        replicas, removed, _ = self._shape(self._read())
        return ordinal < replicas and ordinal not in removed

    def _added(self, ordinal: int) -> bool:
        """The pod of ``ordinal`` is Ready: clear its adding mark, in the API server, before
        the scaler hears of it (a write that lost a race reads again). False: the ordinal
        was released meanwhile (:meth:`release_adding`), so the pod must not be handed out.
        Both writes are guarded by the resourceVersion read, so one of them wins."""
        for _ in range(5):
            sts = self._read()
            replicas, removed, adding = self._shape(sts)
            if ordinal not in adding:
                return ordinal < replicas and ordinal not in removed
            try:
                self._write(sts, replicas, removed, adding - {ordinal})
                return True
            except KubernetesError as err:
                if getattr(err, "status", None) != 409:
                    raise
        raise ProvisioningError(
            f"StatefulSet {self.namespace}/{self.name}: could not clear the adding mark of "
            f"ordinal {ordinal} (kept conflicting)"
        )

    def _write(self, sts: Any, replicas: int, removed: set[int], adding: set[int]) -> None:
        """One patch for size and annotations, guarded by the resourceVersion we read."""
        body = {
            "metadata": {
                "resourceVersion": sts.metadata.resource_version,
                "annotations": {
                    REMOVED_ANNOTATION: ",".join(str(o) for o in sorted(removed)),
                    ADDING_ANNOTATION: ",".join(str(o) for o in sorted(adding)),
                },
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
                    if not self._added(ordinal):
                        raise ProvisioningError(
                            f"pod {self.namespace}/{name} was released while it started"
                        )
                    return info
                last = pod_wait(name, pod).describe()
            except KubernetesError as err:
                if not not_found(err):
                    last = str(err)
                elif not self._kept(ordinal):  # released (release_adding): its pod is gone
                    raise ProvisioningError(
                        f"pod {self.namespace}/{name} was released before it was Ready"
                    ) from err
            self.sleep(self.poll)
        raise ProvisioningError(
            f"pod {self.namespace}/{name} not Ready after {self.ready_timeout:.0f}s ({last})"
        )


def pod_wait(name: str, pod: Any, *, adding: bool = False) -> PodWait:
    """Why ``pod`` (a V1Pod, or None when not created) is not Ready: the scheduler's word
    (PodScheduled=False) first, then a container's waiting or terminated state, then the
    Ready condition's; never more than the API's own status text (no env, no Secret)."""
    phase, reason, message = _why(pod)
    return PodWait(name, phase, reason, message, adding)


def _why(pod: Any) -> tuple[str, str, str]:
    if pod is None:
        return "Missing", "NotCreated", "the StatefulSet has not created it"
    status = pod.status
    if pod.metadata.deletion_timestamp is not None:
        return "Terminating", "", ""
    if status is None:
        return "Pending", "", ""
    phase = status.phase or "Pending"
    conditions = {c.type: c for c in status.conditions or []}
    scheduled = conditions.get("PodScheduled")
    if scheduled is not None and scheduled.status == "False":
        return phase, scheduled.reason or "", scheduled.message or ""
    for container in [*(status.init_container_statuses or []), *(status.container_statuses or [])]:
        state = container.state
        detail = (state.waiting or state.terminated) if state is not None else None
        if detail is not None and (detail.reason or detail.message):
            return phase, detail.reason or "", detail.message or ""
    ready = conditions.get("Ready")
    if ready is not None and (ready.reason or ready.message):
        return phase, ready.reason or "", ready.message or ""
    return phase, "NotReady" if phase == "Running" else "", ""
