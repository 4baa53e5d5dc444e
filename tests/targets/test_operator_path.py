"""The operator's CapacityPolicy reconciler over targets built by ``assembly.targets_for``
(its ``TargetsFor``): one reconcile raises a Deployment through /scale and an HPA's floor
in the policy's namespace, and the next one writes nothing (the chart's CapacityPolicy
and DemandEvent CRDs)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from headroom.controller import assembly
from headroom.controller.kube import GROUP, VERSION, Kube
from headroom.controller.operator.capacitypolicy import CapacityPolicyReconciler
from headroom.policies.policy import PolicySpec
from headroom.policies.series import Series
from tests.harness.harness import KubeHarness
from tests.support.chart import chart_crd
from tests.targets.support import NS, hpa, patches, workload

pytestmark = pytest.mark.k8s
T0 = 1_700_006_400.0 + 14 * 86400.0


class Flat:
    """Two weeks of 5,000 QPS (the Prometheus stand-in)."""

    def history(self, end: float) -> Series:
        t = np.arange(end - 14 * 86400.0, end, 60.0)
        return Series(t, np.full(t.shape, 5000.0))


class Fixed:
    def now(self) -> float:
        return T0

    def sleep(self, seconds: float) -> None:  # pragma: no cover - not used by a pass
        raise AssertionError("not used")


def test_reconciler_sizes_assembled_targets(kube: KubeHarness, api: Kube) -> None:
    kube.apply(chart_crd(f"capacitypolicies.{GROUP}"))
    kube.apply(chart_crd(f"demandevents.{GROUP}"))
    kube.apply(workload("Deployment", "web", 2))
    kube.apply(workload("Deployment", "api", 2))
    kube.apply(hpa("api", "api", min_replicas=2, max_replicas=40))
    unit = {"capacityPerUnit": 1000, "minUnits": 2, "maxUnits": 30}
    policy = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "CapacityPolicy",
        "metadata": {"name": "shop", "namespace": NS},
        "spec": {  # no target names a namespace: the policy's (NS) is meant
            "targets": [
                {"name": "web", "kind": "Deployment", **unit},
                {"name": "api", "kind": "HorizontalPodAutoscaler", **unit},
            ],
            "metrics": {"qps": {"source": "prometheus", "url": "http://127.0.0.1:1"}},
        },
    }
    kube.apply(policy)

    def history_for(spec: PolicySpec, ns: str) -> Flat:
        return Flat()

    reconciler = CapacityPolicyReconciler(
        api, targets_for=assembly.targets_for, history_for=history_for, clock=Fixed()
    )

    def body() -> dict[str, Any]:
        obj = kube.get(f"{GROUP}/{VERSION}", "CapacityPolicy", "shop", NS)
        assert obj is not None
        return obj

    outcome = reconciler.reconcile(body())
    assert outcome.report is not None
    wanted = {r.name: r.decision.desired_units for r in outcome.report.targets if r.decision}
    # 5,000 QPS at 80% of 1,000 per unit needs 7; the reactive half (the HPA rule) adds at
    # most max(100 %, 4 units) per sync: 6 from 2, within the HPA's tolerance there.
    assert min(wanted.values()) >= 6
    web = kube.get("apps/v1", "Deployment", "web", NS)
    floor = kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "api", NS)
    assert web is not None and web["spec"]["replicas"] == wanted["web"]
    assert floor is not None and floor["spec"]["minReplicas"] == wanted["api"]

    writes = patches(kube, "deployments", "scale") + patches(kube, "horizontalpodautoscalers")
    assert writes == 2
    again = reconciler.reconcile(body())
    assert again.report is not None
    assert not [e for e in again.report.events if e.kind == "Scaled"]
    assert patches(kube, "deployments", "scale") + patches(kube, "horizontalpodautoscalers") == 2
