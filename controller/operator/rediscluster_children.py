"""The Kubernetes objects a RedisCluster owns, made to exist and kept in step with its spec.

``resources.py`` builds them (pure); the RedisCluster reconciler (``rediscluster.py``)
calls :func:`ensure_children` every pass, and :func:`allow_evictions` to let one pod
be evicted at a time only while the cluster is whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from headroom.controller.kube import Kube, call, not_found
from headroom.controller.operator import resources
from headroom.controller.operator.specs import RedisClusterSpec
from headroom.policies.errors import KubernetesError

log = logging.getLogger(__name__)


def ensure_children(
    kube: Kube, ns: str, name: str, spec: RedisClusterSpec, owner: dict[str, Any]
) -> None:
    """The Services, the PodDisruptionBudget and the StatefulSet exist; an existing
    StatefulSet's pod template follows the spec (its replicas are the provisioner's)."""
    core, apps, policy = kube.core, kube.apps, kube.policy
    _ensure(
        f"Service {ns}/{resources.headless_service_name(name)}",
        lambda: core.read_namespaced_service(resources.headless_service_name(name), ns),
        lambda: core.create_namespaced_service(ns, resources.headless_service(name, spec, owner)),
    )
    _ensure(
        f"Service {ns}/{name}",
        lambda: core.read_namespaced_service(name, ns),
        lambda: core.create_namespaced_service(ns, resources.client_service(name, spec, owner)),
    )
    _ensure(
        f"PodDisruptionBudget {ns}/{name}",
        lambda: policy.read_namespaced_pod_disruption_budget(name, ns),
        lambda: policy.create_namespaced_pod_disruption_budget(
            ns, resources.disruption_budget(name, owner)
        ),
    )
    manifest = resources.statefulset(name, spec, owner, replicas=spec.pods)
    existing = _ensure(
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
        _keep_claim_retention(apps, ns, name, existing, manifest)


def _keep_claim_retention(apps: Any, ns: str, name: str, existing: Any, manifest: Any) -> None:
    """A StatefulSet with claims made before the retention policy was set gets it (the
    field is mutable; its volumeClaimTemplates are not, so nothing else changes)."""
    want = manifest["spec"].get("persistentVolumeClaimRetentionPolicy")
    if want is None or not existing.spec.volume_claim_templates:
        return
    have = existing.spec.persistent_volume_claim_retention_policy
    if have is not None and (have.when_deleted, have.when_scaled) == (
        want["whenDeleted"],
        want["whenScaled"],
    ):
        return
    patch = {"spec": {"persistentVolumeClaimRetentionPolicy": want}}
    call(
        lambda: apps.patch_namespaced_stateful_set(name, ns, patch),
        f"update StatefulSet {ns}/{name} claim retention",
    )
    log.info("Updated StatefulSet %s/%s claim retention %s", ns, name, want)


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


def allow_evictions(kube: Kube, ns: str, name: str, allow: bool) -> None:
    """The cluster's PodDisruptionBudget: one pod may be evicted, or none (``allow``)."""
    want = 1 if allow else 0
    policy = kube.policy
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
