"""Objects the scale-target tests create: workloads, an HPA, a Cluster API-shaped CRD, a
KEDA ScaledObject CRD."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from headroom.controller.targets.base import ScaleStatus, ScaleTarget
from tests.harness.harness import KubeHarness

T = TypeVar("T")

NS = "shop"
MD_GROUP, MD_VERSION, MD_PLURAL = "cluster.x-k8s.io", "v1beta1", "machinedeployments"


def workload(kind: str, name: str, replicas: int, namespace: str = NS) -> dict[str, Any]:
    """A Deployment or StatefulSet of non-Redis pods (the kubelet makes them Ready)."""
    labels = {"app": name}
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        },
    }
    if kind == "StatefulSet":
        spec["serviceName"] = name
        spec["podManagementPolicy"] = "Parallel"
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def hpa(name: str, target: str, min_replicas: int | None, max_replicas: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "maxReplicas": max_replicas,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70},
                },
            }
        ],
    }
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def _crd(
    group: str, version: str, kind: str, properties: dict[str, Any], subresources: dict[str, Any]
) -> dict[str, Any]:
    """A namespaced CustomResourceDefinition of one version, served and stored (what the
    emulator installs, as a cluster would, when a test applies it)."""
    plural = f"{kind.lower()}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "subresources": subresources,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": properties}},
                }
            ],
        },
    }


# Shaped like Cluster API's MachineDeployment (cluster.x-k8s.io/v1beta1): replicas through
# /scale, readiness in status.readyReplicas. No Cluster API controller runs: tests write
# the status a controller would.
MACHINE_DEPLOYMENT_CRD = _crd(
    MD_GROUP,
    MD_VERSION,
    "MachineDeployment",
    {
        "spec": {
            "type": "object",
            "properties": {
                "clusterName": {"type": "string"},
                "replicas": {"type": "integer", "minimum": 0},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer"},
                "readyReplicas": {"type": "integer"},
                "selector": {"type": "string"},
                "observedGeneration": {"type": "integer"},
                "phase": {"type": "string"},
            },
        },
    },
    {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    },
)


def machine_deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{MD_GROUP}/{MD_VERSION}",
        "kind": "MachineDeployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"clusterName": "edge", "replicas": replicas},
    }


# KEDA's ScaledObject (keda.sh/v1alpha1), the fields Headroom reads and writes; the
# schema keeps unknown fields, as KEDA's own CRD carries many more. No KEDA controller
# runs: the floor is only read and written.
SO_GROUP, SO_VERSION = "keda.sh", "v1alpha1"
_KEEP = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_REF = {
    "type": "object",
    "properties": {k: {"type": "string"} for k in ("apiVersion", "kind", "name")},
}
SCALED_OBJECT_CRD = _crd(
    SO_GROUP,
    SO_VERSION,
    "ScaledObject",
    {
        "spec": {
            **_KEEP,
            "properties": {
                "scaleTargetRef": _REF,
                "minReplicaCount": {"type": "integer"},
                "maxReplicaCount": {"type": "integer"},
            },
        },
        "status": _KEEP,
    },
    {"status": {}},
)


def scaled_object(
    name: str, target: str | None, min_count: int | None, max_count: int | None = None
) -> dict[str, Any]:
    """A ScaledObject on Deployment ``target`` (kind left to KEDA's default; None: no
    name), with a cron trigger as a user would have one."""
    ref = {"name": target} if target is not None else {}
    spec: dict[str, Any] = {
        "scaleTargetRef": ref,
        "triggers": [
            {
                "type": "cron",
                "metadata": {
                    "timezone": "UTC",
                    "start": "0 8 * * *",
                    "end": "0 20 * * *",
                    "desiredReplicas": "3",
                },
            }
        ],
    }
    if min_count is not None:
        spec["minReplicaCount"] = min_count
    if max_count is not None:
        spec["maxReplicaCount"] = max_count
    return {
        "apiVersion": f"{SO_GROUP}/{SO_VERSION}",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def wait_for(check: Callable[[], T], timeout: float, what: str, poll: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail the test with ``what``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def patches(kube: KubeHarness, resource: str, subresource: str = "") -> int:
    """How many PATCH requests the API served (any code) for ``resource``/``subresource``.

    The emulator records a request just after sending its response, so a caller that
    already has the answer may be a moment ahead of the record: settle first.
    """
    time.sleep(0.2)
    return sum(
        1
        for r in kube.audit
        if r.verb == "patch" and r.resource == resource and r.subresource == subresource
    )


def wait_status(
    target: ScaleTarget, ok: Callable[[ScaleStatus], bool], timeout: float, what: str
) -> ScaleStatus:
    """Poll ``target.status()`` until ``ok`` holds; returns that status."""
    found: list[ScaleStatus] = []

    def check() -> bool:
        status = target.status()
        found[:] = [status]
        return ok(status)

    wait_for(check, timeout, what)
    return found[0]
