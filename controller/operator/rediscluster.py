"""The RedisCluster controller: keep a StatefulSet of redis pods and the slot map in step.

One level-triggered :meth:`RedisClusterReconciler.reconcile` serves create,
update, resume after a restart and the timer: it validates the spec, makes the
owned objects exist (Services, PodDisruptionBudget, StatefulSet), hands the
wanted shape to a :class:`RedisScalerTarget` — the same background worker over
:class:`ClusterScaler` that ``headroom demo`` uses, here over a
:class:`StatefulSetProvisioner` — and writes the status once. It never waits for
a migration: while the worker converges it returns "requeue after N s" and
reports progress. A worker killed with the operator is finished by the next
leader's worker, because the scaler repairs open slots before it moves any.

Beside it: ``rediscluster_auth.py`` (the password and TLS Secrets, and where a
CapacityPolicy reads the cluster), ``rediscluster_children.py`` (the owned objects),
``rediscluster_shape.py`` (what a pass reads of the cluster), ``rediscluster_healing.py``
(a healing episode's Events and condition), ``rediscluster_pods.py`` (pods not Ready past
the deadline: PodsStuck) and ``rediscluster_kopf.py``, whose
``register`` wires the reconciler into a kopf registry: ``on.resume``,
``on.create``, ``on.update`` and a timer all call the same ``reconcile()``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from headroom.controller.clock import Clock, RealClock
from headroom.controller.kube import (
    call,
    not_found,
    now_rfc3339,
    owner_reference,
)
from headroom.controller.loop import Condition
from headroom.controller.operator import resources
from headroom.controller.operator.conditions import (
    Reconciler,
    StatusWriter,
    condition,
    object_key,
    observed,
)
from headroom.controller.operator.rediscluster_auth import cluster_auth
from headroom.controller.operator.rediscluster_children import allow_evictions, ensure_children
from headroom.controller.operator.rediscluster_healing import Healing, slots_lost_message
from headroom.controller.operator.rediscluster_pods import (
    DEFAULT_ADD_TIMEOUT,
    DEFAULT_DEADLINE,
    PODS_STUCK,
    PodsWait,
    check_add_timeout,
    check_deadline,
)
from headroom.controller.operator.rediscluster_shape import (
    converged,
    progress_detail,
    read_shape,
)
from headroom.controller.operator.specs import (
    KIND,
    PLURAL,
    InvalidSpec,
    RedisClusterSpec,
    parse_spec,
)
from headroom.controller.provisioning.statefulset import StatefulSetProvisioner
from headroom.controller.redis.connection import RedisAuth
from headroom.controller.redis.heal import Damage
from headroom.controller.redis.scaler import ClusterScaler
from headroom.controller.redis.topology import SLOTS
from headroom.controller.targets.redis_scaler import RedisScalerTarget
from headroom.policies.errors import HeadroomError, KubernetesError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a pass wants next: ``requeue_after`` seconds (None: only on change or timer)."""

    requeue_after: float | None = None
    phase: str = ""
    message: str = ""


@dataclass
class _Cluster:
    """What the controller keeps per RedisCluster between passes (rebuilt after a restart)."""

    target: RedisScalerTarget
    provisioner: StatefulSetProvisioner
    masters_seen: int | None = None
    last_error: str | None = None
    migration_started: str | None = None
    healing: Healing = field(default_factory=Healing)
    pods: PodsWait = field(default_factory=PodsWait)  # the deadline is the reconciler's
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(eq=False)
class RedisClusterReconciler(Reconciler):
    """Reconciles ``headroom.dev/v1alpha1`` RedisClusters; one instance per operator."""

    _: KW_ONLY
    busy_requeue: float = 2.0
    ready_timeout: float = DEFAULT_ADD_TIMEOUT  # --pod-add-timeout
    # Pods not all Ready for longer than this are reported stuck (rediscluster_pods.py).
    pods_ready_deadline: float = DEFAULT_DEADLINE
    stuck_requeue: float = 10.0  # a wait past the deadline is looked at less often
    clock: Clock = field(default_factory=RealClock)

    def __post_init__(self) -> None:
        check_deadline(self.pods_ready_deadline)
        check_add_timeout(self.ready_timeout)
        self._write_status = StatusWriter(self.kube, PLURAL, KIND)
        self._clusters: dict[str, _Cluster] = {}
        self._lock = threading.Lock()

    # -- the pass ------------------------------------------------------------------------------

    def reconcile(self, body: Mapping[str, Any]) -> Outcome:
        """Read the world, make it match the spec a step further, write status once."""
        ns, name, uid, generation, status = observed(body)
        try:
            spec = parse_spec(body.get("spec"))
            auth = None if self.dry_run else cluster_auth(self.kube, body, spec, self.record)
        except InvalidSpec as err:
            self._write_status(
                ns,
                name,
                status,
                generation,
                {"phase": "Invalid"},
                [
                    Condition("Ready", "False", "InvalidSpec", str(err)),
                    Condition(
                        "Scaling", "False", "InvalidSpec", "nothing is changed until the spec is"
                    ),
                    Condition("Degraded", "Unknown", "InvalidSpec", ""),
                ],
            )
            ready = condition(status, "Ready") or {}
            if status.get("phase") != "Invalid" or ready.get("message") != str(err):
                self.record(body, "Warning", "InvalidSpec", str(err))
            log.warning("Rejected RedisCluster %s/%s spec error=%s", ns, name, err)
            raise
        if self.dry_run:
            return self._dry_pass(ns, name, spec, status, generation)
        assert auth is not None
        cluster = self._cluster(ns, name, uid, spec, auth)
        with cluster.lock:
            try:
                return self._pass(body, spec, cluster, status, generation)
            except KubernetesError as err:
                # Say it where people look; the handler retries after a delay.
                self._report_failure(ns, name, status, generation, str(err))
                raise

    def _report_failure(
        self, ns: str, name: str, status: Mapping[str, Any], generation: int, message: str
    ) -> None:
        try:
            self._write_status(
                ns,
                name,
                status,
                generation,
                {"phase": "Degraded" if status.get("masters") else "Pending"},
                [
                    Condition("Ready", "False", "ReconcileFailed", message),
                    Condition("Scaling", "False", "ReconcileFailed", message),
                    Condition("Degraded", "True", "ReconcileFailed", message),
                ],
            )
        except KubernetesError as err:
            log.warning("Failed to report failure RedisCluster %s/%s error=%s", ns, name, err)

    def forget(self, namespace: str, name: str, uid: str) -> None:
        """The RedisCluster is gone: stop its worker (its objects are garbage-collected)."""
        with self._lock:
            cluster = self._clusters.pop(uid, None)
        if cluster is not None:
            cluster.target.close()
            log.info("Forgot RedisCluster %s/%s", namespace, name)

    def close(self) -> None:
        with self._lock:
            clusters, self._clusters = list(self._clusters.values()), {}
        for cluster in clusters:
            cluster.target.close(wait=False)

    def _pass(
        self,
        body: Mapping[str, Any],
        spec: RedisClusterSpec,
        cluster: _Cluster,
        status: dict[str, Any],
        generation: int,
    ) -> Outcome:
        ns, name = object_key(body)
        owner = owner_reference(dict(body))
        ensure_children(self.kube, ns, name, spec, owner)
        counts = cluster.provisioner.pod_counts()
        ready_pods, wanted_pods = counts.ready, counts.wanted
        target = cluster.target
        shape = read_shape(target)
        damage = shape.damage if shape is not None else Damage()
        # A master gone with no replica is lost only once every pod is back and none of them
        # is it: with a volume, its pod may still be on its way back with its slots.
        # A pod a scale-out added that was never Ready holds nothing: the cluster is whole
        # without it (evictions, healing and SlotsLost need not wait for it).
        complete = counts.ready_met >= counts.wanted_met
        healing = cluster.healing.track(
            body, damage, shape, spec, complete=complete, record=self.record, metrics=self.metrics
        )
        pods = cluster.pods.track(
            body,
            status,
            ready_pods,
            wanted_pods,
            unready=cluster.provisioner.unready_pods,
            now=self.clock.now(),
            record=self.record,
            metrics=self.metrics,
        )
        pod_fields = {"podsReady": f"{ready_pods}/{wanted_pods}", "podsNotReady": pods.status()}
        if ready_pods < wanted_pods and wanted_pods > spec.pods:
            # A scale-out given up on (spec.masters set back) while its new pods never came:
            # release those pods (never met, no slot); the next pass sees the rest.
            self._release_unwanted(body, spec, cluster)
        if ready_pods < wanted_pods and not target.running:
            # Pods are starting or restarting: the scaler would see missing nodes and add
            # more. Kubernetes brings them back; wait for it, and say so once it takes
            # longer than the deadline.
            if complete:  # only never-Ready added pods are missing
                self.guard_disruptions(ns, name, cluster.healing.since is None)
            reason = PODS_STUCK if pods.stuck else "PodsNotReady"
            message = pods.message or f"waiting for pods: {ready_pods}/{wanted_pods} Ready"
            self._write_status(
                ns,
                name,
                status,
                generation,
                {"phase": status.get("phase") or "Pending", **pod_fields},
                [
                    Condition("Ready", "False", reason, message),
                    Condition("Scaling", "False", reason, message),
                    Condition(
                        "Degraded",
                        "True" if cluster.masters_seen or pods.stuck else "False",
                        reason,
                        message,
                    ),
                    *healing,
                ],
            )
            requeue = (
                max(self.busy_requeue, self.stuck_requeue) if pods.stuck else self.busy_requeue
            )
            return Outcome(requeue, "Pending", message)
        # Evictions wait while a node is lost or a pod is not back: a drain must never take
        # a shard's second node before the first one's replacement has joined.
        self.guard_disruptions(ns, name, cluster.healing.since is None and complete)
        target.set_replicas(spec.replicas_per_master)
        held = ""
        if cluster.healing.since is not None:
            # Heal at the size the cluster has; a new size waits until it is whole.
            current = (shape.masters if shape else 0) + len(damage.failing_over)
            current += len(damage.slots_lost)
            if target.desired is None and current:
                target.scale(current, reason="healing at the current size")
            if spec.masters != target.desired:
                held = f"masters {target.desired}->{spec.masters} waits until the cluster is whole"
        elif target.desired != spec.masters:
            if cluster.masters_seen is not None:
                self.record(
                    body,
                    "Normal",
                    "ScalingStarted",
                    f"masters {cluster.masters_seen}->{spec.masters}",
                )
            target.scale(spec.masters, reason=f"spec.masters={spec.masters}")
        running = target.running
        error = target.last_error
        if not running and error is None and not converged(shape, spec):
            target.recheck()  # the world drifted (a node replaced, an open slot): level again
            running = True
        busy = running or target.pending
        progress = target.progress
        fields: dict[str, Any] = {
            "masters": shape.masters if shape else 0,
            "readyMasters": shape.ready_masters if shape else 0,
            "selector": resources.selector(name),
            "slotsPerMaster": shape.slots_per_master if shape else [],
        }
        if busy and progress is not None and progress.slots_total:
            started = cluster.migration_started or now_rfc3339()
            cluster.migration_started = started
            fields["migration"] = {
                "fromMasters": cluster.masters_seen or 0,
                "toMasters": spec.masters,
                "slotsLeft": progress.slots_total - progress.slots_done,
                "keysMoved": progress.keys_moved,
                "startedAt": started,
                "updatedAt": now_rfc3339(),
            }
        else:
            cluster.migration_started = None
            fields["migration"] = None
        conds: list[Condition]
        if damage.slots_lost and complete:
            phase = "Degraded"
            lost = f"{slots_lost_message(damage)}; not Ready until restored"
            conds = [
                Condition("Ready", "False", "SlotsLost", lost),
                Condition(
                    "Scaling", "False", "SlotsLost", held or "nothing moves while slots are lost"
                ),
                Condition("Degraded", "True", "SlotsLost", lost),
                Condition(
                    "Healing", "False", "SlotsLost", f"since {cluster.healing.since}: {lost}"
                ),
            ]
        elif cluster.healing.since is not None:
            phase = "Degraded"
            what = damage.describe() if not damage.whole else (target.phase or "rejoining")
            message = f"since {cluster.healing.since}: {what}"
            reason = (
                "FailingOver"
                if damage.failing_over
                else "ForgettingLostNodes"
                if damage.gone
                else "Rejoining"
            )
            conds = [
                Condition("Ready", "False", "Healing", message),
                Condition("Scaling", "False", "WaitingForHealing" if held else "Healing", held),
                Condition("Degraded", "True", "NodeLost", message),
                Condition("Healing", "True", reason, message),
            ]
        elif error is not None and not running:
            phase = "Degraded"
            conds = [
                Condition("Ready", "False", "ScaleFailed", error),
                Condition(
                    "Scaling", "False", "RetryScheduled", f"retrying in {target.retry_after:.0f}s"
                ),
                Condition("Degraded", "True", "ScaleFailed", error),
            ]
            if cluster.last_error != error:
                self.record(body, "Warning", "ScaleFailed", error)
        elif busy:
            phase = "Forming" if not shape or shape.masters == 0 else "Scaling"
            detail = progress_detail(progress) or target.phase or "converging"
            conds = [
                Condition("Ready", "False", phase, detail),
                Condition("Scaling", "True", "Migrating" if progress else phase, detail),
                Condition("Degraded", "False", "AsExpected", ""),
            ]
        else:
            phase = "Ready"
            assert shape is not None
            conds = [
                Condition(
                    "Ready",
                    "True",
                    "ClusterReady",
                    f"{shape.masters} masters own all {SLOTS} slots, "
                    f"{spec.replicas_per_master} replicas each",
                ),
                Condition("Scaling", "False", "Converged", ""),
                Condition("Degraded", "False", "AsExpected", ""),
                Condition("Healing", "False", "Whole", ""),
            ]
            if cluster.masters_seen != shape.masters:
                before = "-" if cluster.masters_seen is None else str(cluster.masters_seen)
                self.record(
                    body, "Normal", "Scaled", f"masters {before}->{shape.masters}, slots balanced"
                )
                log.info(
                    "Scaled RedisCluster %s/%s masters=%s->%d replicas=%d",
                    ns,
                    name,
                    before,
                    shape.masters,
                    spec.replicas_per_master,
                )
                if self.metrics is not None:
                    self.metrics.record_action(f"rediscluster/{ns}/{name}", "SpecChanged")
            cluster.masters_seen = shape.masters
        if pods.stuck and conds[0].reason != "SlotsLost":
            # A scale-out or a replacement waits on a pod that does not come: the wait
            # goes on (nothing is removed), but Ready and Degraded say why.
            conds[0] = Condition("Ready", "False", PODS_STUCK, pods.message)
            conds = [
                Condition("Degraded", "True", PODS_STUCK, pods.message)
                if c.type == "Degraded"
                else c
                for c in conds
            ]
        if not any(c.type == "Healing" for c in conds):
            conds += healing
        cluster.last_error = error
        fields["phase"] = phase
        fields.update(pod_fields)
        fields["healing"] = (
            {
                "since": cluster.healing.since,
                "nodes": list(cluster.healing.nodes),
                "slotsLost": damage.lost_slots if complete else 0,
            }
            if cluster.healing.since is not None
            else None
        )
        self._write_status(ns, name, status, generation, fields, conds)
        if phase == "Ready":
            return Outcome(None, phase)
        return Outcome(self.busy_requeue, phase, conds[0].message)

    def _release_unwanted(
        self, body: Mapping[str, Any], spec: RedisClusterSpec, cluster: _Cluster
    ) -> None:
        released = cluster.provisioner.release_adding(keep=spec.pods)
        if released:
            # The worker's next run aims at the spec's size, or it would add them again (a
            # run under way that waits for one of them fails at once and is retried).
            target = cluster.target
            if cluster.healing.since is None and target.desired not in (None, spec.masters):
                target.scale(spec.masters, reason=f"spec.masters={spec.masters}")
            self.record(
                body,
                "Normal",
                "PodsReleased",
                f"released {', '.join(released)}: added by a scale-out, never Ready, no "
                f"longer wanted (spec wants {spec.pods} pods); they held no slots",
            )

    def _dry_pass(
        self,
        ns: str,
        name: str,
        spec: RedisClusterSpec,
        status: dict[str, Any],
        generation: int,
    ) -> Outcome:
        try:
            call(
                lambda: self.kube.apps.read_namespaced_stateful_set(name, ns),
                f"read StatefulSet {ns}/{name}",
            )
        except KubernetesError as err:
            if not not_found(err):
                raise
            would = (
                f"would create a StatefulSet of {spec.pods} pods and form {spec.masters} masters"
            )
        else:
            have = int(status.get("masters") or 0)
            would = (
                f"would scale masters {have}->{spec.masters}"
                if have != spec.masters
                else "nothing to do"
            )
        self._write_status(
            ns,
            name,
            status,
            generation,
            {"phase": status.get("phase") or "Pending"},
            [
                Condition("Ready", "Unknown", "DryRun", would),
                Condition("Scaling", "False", "DryRun", would),
                Condition("Degraded", "Unknown", "DryRun", ""),
            ],
        )
        log.info("Dry run RedisCluster %s/%s %s", ns, name, would)
        return Outcome(None, "DryRun", would)

    def guard_disruptions(self, ns: str, name: str, allow: bool) -> None:
        """The cluster's PodDisruptionBudget: one pod may be evicted, or none (``allow``)."""
        if not self.dry_run:
            allow_evictions(self.kube, ns, name, allow)

    def pod_lost(self, ns: str, cluster: str) -> None:
        """A pod of ``cluster`` went (deleted, evicted) or stopped being Ready: block further
        evictions at once; the next pass allows them again when the cluster is whole."""
        try:
            self.guard_disruptions(ns, cluster, False)
        except HeadroomError as err:
            log.warning("Failed to block evictions RedisCluster %s/%s error=%s", ns, cluster, err)

    # -- the world -----------------------------------------------------------------------------

    def _cluster(
        self, ns: str, name: str, uid: str, spec: RedisClusterSpec, auth: RedisAuth
    ) -> _Cluster:
        with self._lock:
            cluster = self._clusters.get(uid)
            if cluster is not None:
                return cluster
        provisioner = StatefulSetProvisioner(
            self.kube, ns, name, port=spec.port, ready_timeout=self.ready_timeout
        )
        scaler = ClusterScaler(
            provisioner,
            replicas_per_master=spec.replicas_per_master,
            auth=auth,
        )
        label = f"rediscluster/{ns}/{name}"
        metrics = self.metrics
        target = RedisScalerTarget(
            scaler,
            name=label,
            on_moved=(
                (lambda slots, keys: metrics.record_resharding(label, keys=keys, slots=slots))
                if metrics is not None
                else None
            ),
        )
        with self._lock:
            cluster = self._clusters.setdefault(
                uid, _Cluster(target, provisioner, pods=PodsWait(self.pods_ready_deadline))
            )
        if cluster.target is not target:
            target.close()
        return cluster


__all__ = ["Outcome", "RedisClusterReconciler"]
