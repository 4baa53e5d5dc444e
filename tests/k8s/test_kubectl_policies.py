"""The real ``kubectl`` with the chart's CapacityPolicy and DemandEvent CRDs: the samples
apply, ``get`` shows the printer columns (short names cp and de), a typo is a strict
decoding error, and a bad value is refused with the field named."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.harness.harness import KubeHarness
from tests.support.chart import EXAMPLES_DIR, of_kind, render_chart
from tests.support.kubectl import (
    SERVER_SIDE_VALIDATION,
    Kubectl,
    have_kubectl,
    kubectl_minor,
    make_kubectl,
    table,
)

pytestmark = [
    pytest.mark.k8s,
    pytest.mark.skipif(not have_kubectl(), reason="needs kubectl (Debian's kubernetes-client)"),
]
k8s: Any = client
NS = "shop"


@pytest.fixture
def kubectl(kube: KubeHarness, tmp_path: Path) -> Kubectl:
    return make_kubectl(kube.kubeconfig(tmp_path / "admin.kubeconfig", tls=True), tmp_path)


def test_kubectl_applies_and_lists_policies_and_events(
    kube: KubeHarness, kubectl: Kubectl, tmp_path: Path
) -> None:
    crds = tmp_path / "crds.yaml"
    crds.write_text(yaml.safe_dump_all(of_kind(render_chart(), "CustomResourceDefinition")))
    kubectl("apply", "-f", str(crds))
    namespace = yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    kubectl("apply", "-f", "-", stdin=namespace)
    policy = EXAMPLES_DIR / "capacitypolicy-shop.yaml"
    event = EXAMPLES_DIR / "demandevent-launch.yaml"
    assert kubectl("apply", "-n", NS, "-f", str(policy)).stdout.strip() == (
        "capacitypolicy.headroom.dev/shop created"
    )
    assert kubectl("apply", "-n", NS, "-f", str(event)).stdout.strip() == (
        "demandevent.headroom.dev/autumn-launch created"
    )
    k8s.CustomObjectsApi(kube.api_client()).patch_namespaced_custom_object_status(
        "headroom.dev",
        "v1alpha1",
        NS,
        "capacitypolicies",
        "shop",
        {
            "status": {
                "targetCount": 2,
                "nextAction": "cart 3->6 at 18:36 for 'Autumn launch livestream'",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Planned",
                        "lastTransitionTime": "2026-09-10T16:00:00Z",
                    }
                ],
            }
        },
    )
    rows = table(kubectl("get", "cp", "-n", NS).stdout)
    assert rows[0] == ["NAME", "TARGETS", "READY", "NEXT ACTION", "AGE"]
    assert rows[1][:4] == ["shop", "2", "True", "cart 3->6 at 18:36 for 'Autumn launch livestream'"]
    rows = table(kubectl("get", "de", "-n", NS).stdout)
    assert rows[0] == ["NAME", "KIND", "START", "END", "AGE"]
    assert rows[1][:3] == ["autumn-launch", "livestream", "2026-09-10T19:00:00"]
    assert re.fullmatch(r"\d+s", rows[1][-1])
    bad = event.read_text().replace("kind: livestream", "kind: [livestream]")  # not a name
    refused = kubectl("apply", "-n", NS, "-f", "-", stdin=bad, ok=False)
    assert refused.returncode != 0 and "spec.kind" in refused.stderr
    if kubectl_minor() >= SERVER_SIDE_VALIDATION:
        typo = policy.read_text().replace("capacityPerUnit: 1500", "capacityPerUnt: 1500")
        refused = kubectl("apply", "-n", NS, "-f", "-", stdin=typo, ok=False)
        assert 'strict decoding error: unknown field "spec.targets[1].capacityPerUnt"' in (
            refused.stderr
        ), refused.stderr
