"""The emulator's HPA controller follows the autoscaling/v2 rules the e2e tests rely on: a
floor raised above the replicas takes effect before any metric, metrics scale within the
bounds, scale-down waits out its stabilisation window, and no metric means no change."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

from tests.harness.harness import KubeHarness
from tests.harness.hpa import HpaController

pytestmark = [pytest.mark.k8s]

k8s: Any = client


def _setup(kube: KubeHarness, down_window: int) -> tuple[Any, Any]:
    api = kube.api_client()
    apps, auto = k8s.AppsV1Api(api), k8s.AutoscalingV2Api(api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": "web", "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "shop/web:1"}]},
                },
            },
        },
    )
    auto.create_namespaced_horizontal_pod_autoscaler(
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 10,
                "metrics": [
                    {
                        "type": "External",
                        "external": {
                            "metric": {"name": "qps"},
                            "target": {"type": "AverageValue", "averageValue": "100"},
                        },
                    }
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": down_window}},
            },
        },
    )
    return apps, auto


def test_the_hpa_controller_applies_floor_metrics_bounds_and_stabilisation(
    kube: KubeHarness,
) -> None:
    apps, auto = _setup(kube, down_window=2)
    qps: dict[str, float | None] = {"qps": 450.0}
    hpa = HpaController(kube.store, lambda ns, name: qps[name], sync_period=3600)

    def replicas() -> int:
        return int(apps.read_namespaced_deployment("web", "default").spec.replicas)

    hpa.sync()
    assert replicas() == 5  # ceil(450 / 100)
    qps["qps"] = 5000.0
    hpa.sync()
    assert replicas() == 10  # capped at maxReplicas
    qps["qps"] = 120.0  # wants 2: held by the stabilisation window first
    hpa.sync()
    assert replicas() == 10
    time.sleep(2.2)
    hpa.sync()
    assert replicas() == 2
    # A floor raised above the replicas takes effect even with no metric at all.
    qps["qps"] = None
    auto.patch_namespaced_horizontal_pod_autoscaler("web", "default", {"spec": {"minReplicas": 7}})
    hpa.sync()
    assert replicas() == 7
    status = auto.read_namespaced_horizontal_pod_autoscaler("web", "default").status
    assert status.desired_replicas == 7 and status.current_replicas == 2
    hpa.sync()  # inside the bounds, no metric: no change, and it says so
    assert replicas() == 7
    conds = {
        c.type: c.status
        for c in auto.read_namespaced_horizontal_pod_autoscaler("web", "default").status.conditions
    }
    assert conds["ScalingActive"] == "False"
    assert [(f, t) for _, _, f, t in hpa.scales] == [(2, 5), (5, 10), (10, 2), (2, 7)]
    assert hpa.errors == []
