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

:func:`register` wires the reconciler into a kopf registry: ``on.resume``,
``on.create``, ``on.update`` and a timer all call the same ``reconcile()``.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from headroom.controller.kube import (
    GROUP,
    VERSION,
    Kube,
    call,
    not_found,
    now_rfc3339,
    owner_reference,
)
from headroom.controller.loop import Condition
from headroom.controller.metrics import OperatorMetrics
from headroom.controller.operator import resources
from headroom.controller.operator.conditions import StatusWriter, condition, route
from headroom.controller.operator.specs import InvalidSpec, RedisClusterSpec, parse_spec
from headroom.controller.provisioning.statefulset import StatefulSetProvisioner
from headroom.controller.redis.connection import NodeAddr, RedisAuth, generate_password
from headroom.controller.redis.heal import Damage
from headroom.controller.redis.scaler import ClusterScaler, ClusterStatus
from headroom.controller.redis.topology import SLOTS
from headroom.controller.targets.redis_scaler import RedisScalerTarget
from headroom.policies.errors import HeadroomError, KubernetesError, SourceUnavailable

log = logging.getLogger(__name__)

PLURAL = "redisclusters"
KIND = "RedisCluster"

#: ``record(body, type, reason, message)``: post a Kubernetes Event about ``body``.
EventRecorder = Callable[[Mapping[str, Any], str, str, str], None]


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
    healing_since: str | None = None  # RFC 3339, when a lost node was first seen
    healing_started: float = 0.0  # monotonic, for the time to heal
    healing_nodes: tuple[str, ...] = ()  # what was lost (for the Healed event)
    slots_lost_reported: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class RedisClusterReconciler:
    """Reconciles ``headroom.dev/v1alpha1`` RedisClusters; one instance per operator."""

    def __init__(
        self,
        kube: Kube,
        *,
        record: EventRecorder | None = None,
        metrics: OperatorMetrics | None = None,
        busy_requeue: float = 2.0,
        ready_timeout: float = 180.0,
        dry_run: bool = False,
    ) -> None:
        """``dry_run``: change nothing but the status, which says what a pass would do."""
        self.kube = kube
        self._write_status = StatusWriter(kube, PLURAL, KIND)
        self.record: EventRecorder = record or (lambda body, type_, reason, message: None)
        self.metrics = metrics
        self.busy_requeue = busy_requeue
        self.ready_timeout = ready_timeout
        self.dry_run = dry_run
        self._clusters: dict[str, _Cluster] = {}
        self._lock = threading.Lock()

    # -- the pass ------------------------------------------------------------------------------

    def reconcile(self, body: Mapping[str, Any]) -> Outcome:
        """Read the world, make it match the spec a step further, write status once."""
        meta = body["metadata"]
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        generation = int(meta.get("generation") or 0)
        status = dict(body.get("status") or {})
        try:
            spec = parse_spec(body.get("spec"))
            auth = None if self.dry_run else self._auth(body, spec)
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
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        owner = owner_reference(dict(body))
        self._ensure_children(ns, name, spec, owner)
        ready_pods, wanted_pods = cluster.provisioner.pods_ready()
        target = cluster.target
        shape = _read_shape(target)
        damage = shape.damage if shape is not None else Damage()
        # A master gone with no replica is lost only once every pod is back and none of them
        # is it: with a volume, its pod may still be on its way back with its slots.
        complete = ready_pods >= wanted_pods
        healing = self._track_healing(body, cluster, damage, shape, spec, complete=complete)
        if ready_pods < wanted_pods and not target.running:
            # Pods are starting or restarting: the scaler would see missing nodes and add
            # more. Kubernetes brings them back; wait for it.
            message = f"waiting for pods: {ready_pods}/{wanted_pods} Ready"
            self._write_status(
                ns,
                name,
                status,
                generation,
                {
                    "phase": status.get("phase") or "Pending",
                    "podsReady": f"{ready_pods}/{wanted_pods}",
                },
                [
                    Condition("Ready", "False", "PodsNotReady", message),
                    Condition("Scaling", "False", "PodsNotReady", message),
                    Condition(
                        "Degraded",
                        "True" if cluster.masters_seen else "False",
                        "PodsNotReady",
                        message,
                    ),
                    *healing,
                ],
            )
            return Outcome(self.busy_requeue, "Pending", message)
        # Evictions wait while a node is lost or a pod is not back: a drain must never take
        # a shard's second node before the first one's replacement has joined.
        self.guard_disruptions(
            ns, name, cluster.healing_since is None and ready_pods >= wanted_pods
        )
        target.set_replicas(spec.replicas_per_master)
        held = ""
        if cluster.healing_since is not None:
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
        if not running and error is None and not _converged(shape, spec):
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
            lost = (
                f"{damage.lost_slots} slots lost: "
                + ", ".join(n.describe() for n in damage.slots_lost)
                + " gone with no replica; not Ready until restored"
            )
            conds = [
                Condition("Ready", "False", "SlotsLost", lost),
                Condition(
                    "Scaling", "False", "SlotsLost", held or "nothing moves while slots are lost"
                ),
                Condition("Degraded", "True", "SlotsLost", lost),
                Condition(
                    "Healing", "False", "SlotsLost", f"since {cluster.healing_since}: {lost}"
                ),
            ]
        elif cluster.healing_since is not None:
            phase = "Degraded"
            what = damage.describe() if not damage.whole else (target.phase or "rejoining")
            message = f"since {cluster.healing_since}: {what}"
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
            detail = _detail(progress) or target.phase or "converging"
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
        if not any(c.type == "Healing" for c in conds):
            conds += healing
        cluster.last_error = error
        fields["phase"] = phase
        fields["healing"] = (
            {
                "since": cluster.healing_since,
                "nodes": list(cluster.healing_nodes),
                "slotsLost": damage.lost_slots if complete else 0,
            }
            if cluster.healing_since is not None
            else None
        )
        self._write_status(ns, name, status, generation, fields, conds)
        if phase == "Ready":
            return Outcome(None, phase)
        return Outcome(self.busy_requeue, phase, conds[0].message)

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

    def _track_healing(
        self,
        body: Mapping[str, Any],
        cluster: _Cluster,
        damage: Damage,
        shape: _Shape | None,
        spec: RedisClusterSpec,
        *,
        complete: bool,
    ) -> list[Condition]:
        """Start, report and end a healing episode; the Healing condition while pods wait."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        key = f"{ns}/{name}"
        if self.metrics is not None:
            lost = len(damage.failing_over) + len(damage.slots_lost) + len(damage.gone)
            self.metrics.set_cluster_damage(key, lost, damage.lost_slots if complete else 0)
        if not damage.whole and cluster.healing_since is None:
            cluster.healing_since = now_rfc3339()
            cluster.healing_started = time.monotonic()
            cluster.healing_nodes = tuple(
                n.describe() for n in (*damage.failing_over, *damage.slots_lost, *damage.gone)
            )
            self.record(body, "Warning", "NodeLost", f"healing: {damage.describe()}")
            log.warning("Lost node RedisCluster %s damage=%s", key, damage.describe())
        if damage.slots_lost and complete and not cluster.slots_lost_reported:
            cluster.slots_lost_reported = True
            message = (
                f"{damage.lost_slots} slots lost: "
                + ", ".join(n.describe() for n in damage.slots_lost)
                + " gone with no replica"
            )
            self.record(body, "Warning", "SlotsLost", message)
            log.error("Lost slots RedisCluster %s %s", key, message)
        if cluster.healing_since is not None and damage.whole and _whole(shape, spec):
            took = time.monotonic() - cluster.healing_started
            self.record(
                body,
                "Normal",
                "Healed",
                f"whole again after {took:.1f}s: " + ", ".join(cluster.healing_nodes),
            )
            log.info(
                "Healed RedisCluster %s seconds=%.1f lost=%s",
                key, took, ",".join(cluster.healing_nodes),
            )  # fmt: skip
            cluster.healing_since, cluster.healing_nodes = None, ()
            cluster.slots_lost_reported = False
            return [Condition("Healing", "False", "Whole", "")]
        if cluster.healing_since is None:
            return [Condition("Healing", "False", "Whole", "")]
        return [Condition("Healing", "True", "WaitingForPods", f"since {cluster.healing_since}")]

    def guard_disruptions(self, ns: str, name: str, allow: bool) -> None:
        """The cluster's PodDisruptionBudget: one pod may be evicted, or none (``allow``)."""
        if self.dry_run:
            return
        want = 1 if allow else 0
        policy = self.kube.policy
        try:
            pdb = call(
                lambda: policy.read_namespaced_pod_disruption_budget(name, ns),
                f"read PodDisruptionBudget {ns}/{name}",
            )
        except KubernetesError as err:
            if not_found(err):
                return  # created by the next pass
            raise
        if pdb.spec.max_unavailable == want:
            return
        call(
            lambda: policy.patch_namespaced_pod_disruption_budget(
                name, ns, {"spec": {"maxUnavailable": want}}
            ),
            f"patch PodDisruptionBudget {ns}/{name}",
        )
        log.info(
            "%s evictions RedisCluster %s/%s maxUnavailable=%d",
            "Allowed" if allow else "Blocked", ns, name, want,
        )  # fmt: skip

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
            cluster = self._clusters.setdefault(uid, _Cluster(target, provisioner))
        if cluster.target is not target:
            target.close()
        return cluster

    def _auth(self, body: Mapping[str, Any], spec: RedisClusterSpec) -> RedisAuth:
        """The password (and with ``spec.tls`` the CA) the operator connects with."""
        return _with_tls(self.kube, body["metadata"]["namespace"], spec, self._password(body, spec))

    def _password(self, body: Mapping[str, Any], spec: RedisClusterSpec) -> str:
        """The cluster's password, from the auth Secret the operator owns; creating that
        Secret first (from ``spec.auth``'s Secret, or a generated password) if it is new.

        The pods read the password from the owned Secret, so the operator does too: a
        later change to ``spec.auth``'s Secret is reported, not half-applied.
        """
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        owned = resources.auth_secret_name(name)
        given = self._given_password(ns, spec) if spec.auth is not None else None
        password = _owned_password(self.kube, ns, name)
        if password is None:
            password = given or generate_password()
            manifest = resources.auth_secret(name, password, owner_reference(dict(body)))
            try:
                call(
                    lambda: self.kube.core.create_namespaced_secret(ns, manifest),
                    f"create Secret {ns}/{owned}",
                )
            except KubernetesError as err:
                if getattr(err, "status", None) != 409:
                    raise
                return self._password(body, spec)  # created meanwhile (another pass): use it
            origin = f"from Secret {spec.auth.secret_name}" if spec.auth else "generated"
            log.info("Created Secret %s/%s password=%s", ns, owned, origin)
            self.record(body, "Normal", "AuthSecretCreated", f"Secret {owned}: password {origin}")
            return password
        if given is not None and given != password:
            log.warning(
                "Kept RedisCluster %s/%s password: Secret %s changed after the cluster was "
                "created; rotation is not supported",
                ns,
                name,
                spec.auth.secret_name if spec.auth else "",
            )
        return password

    def _given_password(self, ns: str, spec: RedisClusterSpec) -> str:
        assert spec.auth is not None
        ref = spec.auth
        raw = _secret_data(self.kube, ns, ref.secret_name, "spec.auth.secretName").get(ref.key)
        if raw is None:
            raise InvalidSpec(f"spec.auth.key: Secret {ref.secret_name} has no key {ref.key!r}")
        password = base64.b64decode(raw).decode()
        if not password:
            raise InvalidSpec(
                f"spec.auth.key: key {ref.key!r} of Secret {ref.secret_name} is empty"
            )
        return password

    def _ensure_children(
        self, ns: str, name: str, spec: RedisClusterSpec, owner: dict[str, Any]
    ) -> None:
        core, apps, policy = self.kube.core, self.kube.apps, self.kube.policy
        self._ensure(
            f"Service {ns}/{resources.headless_service_name(name)}",
            lambda: core.read_namespaced_service(resources.headless_service_name(name), ns),
            lambda: core.create_namespaced_service(
                ns, resources.headless_service(name, spec, owner)
            ),
        )
        self._ensure(
            f"Service {ns}/{name}",
            lambda: core.read_namespaced_service(name, ns),
            lambda: core.create_namespaced_service(ns, resources.client_service(name, spec, owner)),
        )
        self._ensure(
            f"PodDisruptionBudget {ns}/{name}",
            lambda: policy.read_namespaced_pod_disruption_budget(name, ns),
            lambda: policy.create_namespaced_pod_disruption_budget(
                ns, resources.disruption_budget(name, owner)
            ),
        )
        manifest = resources.statefulset(name, spec, owner, replicas=spec.pods)
        existing = self._ensure(
            f"StatefulSet {ns}/{name}",
            lambda: apps.read_namespaced_stateful_set(name, ns),
            lambda: apps.create_namespaced_stateful_set(ns, manifest),
        )
        if existing is not None:
            # The provisioner owns spec.replicas; only the pod template follows the spec.
            want = manifest["spec"]["template"]["spec"]["containers"][0]
            have = existing.spec.template.spec.containers[0]
            if (
                have.image != want["image"]
                or list(have.args or []) != want["args"]
                or list(have.command or []) != want["command"]
            ):
                patch = {"spec": {"template": manifest["spec"]["template"]}}
                call(
                    lambda: apps.patch_namespaced_stateful_set(name, ns, patch),
                    f"update StatefulSet {ns}/{name} template",
                )
                log.info("Updated StatefulSet %s/%s pod template image=%s", ns, name, spec.image)

    @staticmethod
    def _ensure(what: str, read: Callable[[], Any], create: Callable[[], Any]) -> Any:
        """Return the existing object, or create it and return None."""
        try:
            return call(read, f"read {what}")
        except KubernetesError as err:
            if not not_found(err):
                raise
        try:
            call(create, f"create {what}")
            log.info("Created %s", what)
        except KubernetesError as err:
            if getattr(err, "status", None) != 409:  # created meanwhile: fine
                raise
        return None


@dataclass(frozen=True)
class _Shape:
    masters: int
    ready_masters: int
    replicas: dict[str, int]
    slots_per_master: list[dict[str, Any]]
    healthy: bool
    damage: Damage = field(default_factory=Damage)


def _secret_data(kube: Kube, ns: str, name: str, where: str) -> dict[str, str]:
    """A Secret's ``data`` (base64 values) that a spec field names."""
    try:
        secret = call(
            lambda: kube.core.read_namespaced_secret(name, ns), f"read Secret {ns}/{name}"
        )
    except KubernetesError as err:
        if not_found(err):
            raise InvalidSpec(f"{where}: Secret {name!r} not found in {ns}") from err
        raise
    return dict(secret.data or {})


def _owned_password(kube: Kube, ns: str, name: str) -> str | None:
    """The password in the auth Secret the operator owns for RedisCluster ``name`` (None:
    not created yet)."""
    owned = resources.auth_secret_name(name)
    try:
        secret = call(
            lambda: kube.core.read_namespaced_secret(owned, ns), f"read Secret {ns}/{owned}"
        )
    except KubernetesError as err:
        if not_found(err):
            return None
        raise
    raw = (secret.data or {}).get(resources.PASSWORD_KEY)
    if not raw:
        raise InvalidSpec(f"Secret {owned}: has no key {resources.PASSWORD_KEY!r}")
    return base64.b64decode(raw).decode()


def _with_tls(kube: Kube, ns: str, spec: RedisClusterSpec, password: str) -> RedisAuth:
    """The :class:`RedisAuth` of a cluster with ``password``: with ``spec.tls``, its CA too."""
    if spec.tls is None:
        return RedisAuth(password=password)
    ref = spec.tls
    data = _secret_data(kube, ns, ref.secret_name, "spec.tls.secretName")
    for field_name, key in (("certKey", ref.cert_key), ("keyKey", ref.key_key)):
        if not data.get(key):
            raise InvalidSpec(f"spec.tls.{field_name}: Secret {ref.secret_name} has no key {key!r}")
    ca = data.get(ref.ca_key)
    if not ca:
        raise InvalidSpec(f"spec.tls.caKey: Secret {ref.secret_name} has no key {ref.ca_key!r}")
    # Nodes are reached by pod IP, which no certificate issued ahead of the pods names:
    # the chain is verified against the cluster's CA, the host name is not.
    return RedisAuth(
        password=password,
        tls=True,
        tls_ca_data=base64.b64decode(ca).decode(),
        tls_check_hostname=False,
    )


def cluster_endpoint(kube: Kube, ns: str, name: str) -> tuple[NodeAddr, RedisAuth]:
    """Where and how the operator reads RedisCluster ``ns/name`` (a CapacityPolicy's Redis
    INFO source): a Ready pod's address, and the cluster's own password and TLS settings
    from the Secrets its controller keeps. Nothing is created; a cluster that is not
    there or not ready yet raises :class:`SourceUnavailable` (the pass is retried)."""
    try:
        body = call(
            lambda: kube.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name),
            f"read RedisCluster {ns}/{name}",
        )
    except KubernetesError as err:
        if not_found(err):
            raise SourceUnavailable(f"RedisCluster {ns}/{name} not found") from err
        raise
    try:
        spec = parse_spec(body.get("spec"))
        password = _owned_password(kube, ns, name)
        if password is None:
            raise SourceUnavailable(f"RedisCluster {ns}/{name} has no password Secret yet")
        auth = _with_tls(kube, ns, spec, password)
    except InvalidSpec as err:
        raise SourceUnavailable(f"RedisCluster {ns}/{name}: {err}") from err
    nodes = StatefulSetProvisioner(kube, ns, name, port=spec.port).list_nodes()
    if not nodes:
        raise SourceUnavailable(f"RedisCluster {ns}/{name} has no Ready pod yet")
    return nodes[0].addr, auth


def _read_shape(target: RedisScalerTarget) -> _Shape | None:
    try:
        st: ClusterStatus = target.cluster_status()
    except HeadroomError as err:
        log.warning("Failed to read cluster target=%s error=%s", target.name, err)
        return None
    masters = [n for n in st.nodes if n.role == "master" and n.slots > 0]
    replicas = {m.node_id or m.addr: 0 for m in masters}
    for n in st.nodes:
        if n.role == "replica" and n.master_id in replicas:
            replicas[n.master_id] += 1
    ready = len(masters) if st.healthy else sum(1 for m in masters if not m.open_slots)
    return _Shape(
        masters=len(masters),
        ready_masters=ready,
        replicas=replicas,
        slots_per_master=sorted(
            (
                {
                    "node": m.name or m.addr,
                    "nodeId": m.node_id or "",
                    "address": m.addr,
                    "slots": m.slots,
                }
                for m in masters
            ),
            key=lambda row: _ordinal_key(str(row["node"])),
        ),
        healthy=st.healthy,
        damage=st.damage,
    )


def _ordinal_key(pod: str) -> tuple[int, str]:
    number = pod.rpartition("-")[2]
    return (int(number), pod) if number.isdigit() else (1 << 30, pod)


def _whole(shape: _Shape | None, spec: RedisClusterSpec) -> bool:
    """Healthy with every replica in place, whatever the size (healing ends here)."""
    return (
        shape is not None
        and shape.healthy
        and all(r == spec.replicas_per_master for r in shape.replicas.values())
    )


def _converged(shape: _Shape | None, spec: RedisClusterSpec) -> bool:
    return (
        shape is not None
        and shape.healthy
        and shape.masters == spec.masters
        and all(r == spec.replicas_per_master for r in shape.replicas.values())
    )


def _detail(progress: Any) -> str:
    if progress is None or not progress.slots_total:
        return ""
    return (
        f"migrating slots {progress.slots_done}/{progress.slots_total}, "
        f"{progress.keys_moved} keys moved"
    )


# -- kopf wiring ------------------------------------------------------------------------------

#: Starts the message of the TemporaryError that only asks kopf to come back (converging).
REQUEUE_MARK = "requeue: "
_TEMPORARY = " failed temporarily: "


class ConvergingLogFilter(logging.Filter):
    """Logs kopf's "Handler ... failed temporarily: requeue: ..." at INFO, as what it is.

    kopf has one way to say "call me again in N s" from an on.create/on.update handler:
    raising ``TemporaryError(delay=N)``, which it logs at ERROR (and posts as a Warning
    Event). A pass that returns "requeue after N s" while a migration converges is not an
    error, so its record becomes ``INFO Requeued Handler '...' after=Ns: Scaling: ...``.
    Real failures (any other TemporaryError, PermanentError, exceptions) keep their level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR or not isinstance(record.msg, str):
            return True
        handler, sep, rest = record.msg.partition(_TEMPORARY)
        if sep and rest.startswith(REQUEUE_MARK):
            record.msg = f"Requeued {handler} while converging: {rest.removeprefix(REQUEUE_MARK)}"
            record.args = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_requeues(logger: logging.Logger | None = None) -> None:
    """Install :class:`ConvergingLogFilter` on kopf's per-object logger (once)."""
    logger = logger or logging.getLogger("kopf.objects")
    if not any(isinstance(f, ConvergingLogFilter) for f in logger.filters):
        logger.addFilter(ConvergingLogFilter())


def register(registry: Any, reconciler: RedisClusterReconciler, *, timer: float = 10.0) -> None:
    """Route kopf's resume/create/update/timer/delete for RedisClusters to ``reconciler``."""
    import kopf

    quiet_requeues()

    def count(result: str) -> None:
        if reconciler.metrics is not None:
            reconciler.metrics.record_reconcile(KIND, result)

    def handle(body: Any, **_: Any) -> None:
        try:
            outcome = reconciler.reconcile(body)
        except InvalidSpec as err:
            count("invalid")
            raise kopf.PermanentError(str(err)) from err
        except HeadroomError as err:
            count("failed")
            raise kopf.TemporaryError(str(err), delay=5.0) from err
        count("done" if outcome.requeue_after is None else "requeued")
        if outcome.requeue_after is not None:
            raise kopf.TemporaryError(
                f"{REQUEUE_MARK}{outcome.phase}: {outcome.message}", delay=outcome.requeue_after
            )

    def drift(body: Any, **_: Any) -> None:
        status, meta = body.get("status") or {}, body["metadata"]
        if status.get("phase") == "Invalid" and status.get("observedGeneration") == meta.get(
            "generation"
        ):
            return  # not retried until the spec changes
        try:
            reconciler.reconcile(body)
        except InvalidSpec:
            return  # reported in the status by reconcile()
        except HeadroomError as err:  # the next tick tries again
            log.warning("Timer pass failed RedisCluster %s error=%s", body["metadata"]["name"], err)

    def gone(body: Any, **_: Any) -> None:
        meta = body["metadata"]
        reconciler.forget(meta["namespace"], meta["name"], meta["uid"])

    def pod_event(event: Any, body: Any, **_: Any) -> None:
        meta = body.get("metadata") or {}
        cluster = (meta.get("labels") or {}).get(resources.CLUSTER_LABEL)
        if not cluster or event.get("type") is None:
            return  # the initial listing, not a change
        conditions = (body.get("status") or {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        if event.get("type") == "DELETED" or meta.get("deletionTimestamp") or not ready:
            reconciler.pod_lost(meta.get("namespace", ""), cluster)

    route(registry, PLURAL, handle=handle, timer=drift, gone=gone, interval=timer)
    kopf.on.event(
        "", "v1", "pods", labels={resources.CLUSTER_LABEL: kopf.PRESENT}, registry=registry
    )(pod_event)


__all__ = ["KIND", "PLURAL", "Outcome", "RedisClusterReconciler", "register"]
