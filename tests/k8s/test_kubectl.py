"""The real ``kubectl`` against the API emulator, with the chart's CRDs and sample cluster.

A client nobody here wrote: apply (client-side, with the last-applied annotation), get with
the CRD's printer columns (the Table format kubectl asks for), scale through /scale,
describe with Events, and the chart's aggregated viewer role. Without the operator: the
test writes the status and the Event an operator would.
"""

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
    pytest.mark.skipif(
        not have_kubectl(),
        reason="needs kubectl (Debian's kubernetes-client; .ci/install-system-deps all)",
    ),
]
k8s: Any = client
NS = "shop"
RC_ARGS = ("headroom.dev", "v1alpha1", NS, "redisclusters")


@pytest.fixture
def kubectl(kube: KubeHarness, tmp_path: Path) -> Kubectl:
    return make_kubectl(kube.kubeconfig(tmp_path / "admin.kubeconfig", tls=True), tmp_path)


def test_kubectl_applies_gets_scales_and_describes_a_redis_cluster(
    kube: KubeHarness, kubectl: Kubectl, tmp_path: Path
) -> None:
    crds = tmp_path / "crds.yaml"
    crds.write_text(yaml.safe_dump_all(of_kind(render_chart(), "CustomResourceDefinition")))
    out = kubectl("apply", "-f", str(crds)).stdout
    assert out.splitlines() == [
        f"customresourcedefinition.apiextensions.k8s.io/{plural}.headroom.dev created"
        for plural in ("capacitypolicies", "demandevents", "redisclusters")
    ]
    assert "unchanged" in kubectl("apply", "-f", str(crds)).stdout
    assert table(kubectl("get", "crd").stdout)[0] == ["NAME", "CREATED AT"]

    # apply, not `kubectl create namespace`: from 1.33 the typed create commands send protobuf.
    namespace = yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    assert kubectl("apply", "-f", "-", stdin=namespace).stdout.strip() == f"namespace/{NS} created"
    sample = EXAMPLES_DIR / "rediscluster-cart.yaml"
    assert kubectl("apply", "-n", NS, "-f", str(sample)).stdout.strip() == (
        "rediscluster.headroom.dev/cart created"
    )
    custom = k8s.CustomObjectsApi(kube.api_client())
    rc = custom.get_namespaced_custom_object(*RC_ARGS, "cart")
    assert "kubectl.kubernetes.io/last-applied-configuration" in rc["metadata"]["annotations"]
    assert (rc["spec"]["masters"], rc["spec"]["replicasPerMaster"], rc["spec"]["port"]) == (
        3,
        1,
        6379,
    )

    # What the operator would report once the cluster formed.
    custom.patch_namespaced_custom_object_status(
        *RC_ARGS,
        "cart",
        {"status": {"masters": 3, "readyMasters": 3, "phase": "Ready", "selector": "app=cart"}},
    )
    rows = table(kubectl("get", "redisclusters", "-n", NS).stdout)
    assert rows[0] == ["NAME", "MASTERS", "READY", "PHASE", "AGE"]
    assert rows[1][:4] == ["cart", "3", "3", "Ready"] and re.fullmatch(r"\d+s", rows[1][4])
    assert table(kubectl("get", "rc", "-A").stdout)[1][:2] == [NS, "cart"]

    # kubectl scale goes through the /scale subresource onto spec.masters.
    seen = len(kube.audit)
    assert kubectl("scale", "rediscluster/cart", "--replicas", "6", "-n", NS).stdout.strip() == (
        "rediscluster.headroom.dev/cart scaled"
    )
    rc = custom.get_namespaced_custom_object(*RC_ARGS, "cart")
    assert (rc["spec"]["masters"], rc["metadata"]["generation"]) == (6, 2)
    writes = [a for a in kube.audit[seen:] if a.verb in ("patch", "update")]
    assert [(a.resource, a.subresource, a.code) for a in writes] == [
        ("redisclusters", "scale", 200)
    ]
    refused = kubectl("scale", "rediscluster/cart", "--replicas", "2", "-n", NS, ok=False)
    assert refused.returncode != 0
    assert "spec.masters in body should be greater than or equal to 3" in refused.stderr
    assert custom.get_namespaced_custom_object(*RC_ARGS, "cart")["spec"]["masters"] == 6

    # Re-applying a changed file patches it (three-way, from the last-applied annotation).
    changed = sample.read_text().replace("masters: 3", "masters: 4")
    assert "configured" in kubectl("apply", "-n", NS, "-f", "-", stdin=changed).stdout
    assert custom.get_namespaced_custom_object(*RC_ARGS, "cart")["spec"]["masters"] == 4
    if kubectl_minor() >= SERVER_SIDE_VALIDATION:  # kubectl sends fieldValidation=Strict
        typo = changed.replace("replicasPerMaster:", "replicaPerMaster:")
        bad = kubectl("apply", "-n", NS, "-f", "-", stdin=typo, ok=False)
        assert bad.returncode != 0
        assert 'strict decoding error: unknown field "spec.replicaPerMaster"' in bad.stderr

    # describe shows the object's Events (listed by involvedObject field selectors).
    rc = custom.get_namespaced_custom_object(*RC_ARGS, "cart")
    k8s.CoreV1Api(kube.api_client()).create_namespaced_event(
        NS,
        {
            "metadata": {"name": "cart.scaled"},
            "involvedObject": {
                "apiVersion": "headroom.dev/v1alpha1",
                "kind": "RedisCluster",
                "name": "cart",
                "namespace": NS,
                "uid": rc["metadata"]["uid"],
            },
            "reason": "Scaled",
            "message": "Scaled RedisCluster shop/cart masters=3->6",
            "type": "Normal",
            "source": {"component": "headroom-operator"},
            "count": 1,
        },
    )
    described = kubectl("describe", "rediscluster", "cart", "-n", NS).stdout
    assert re.search(r"^Name:\s+cart$", described, re.M)
    assert re.search(r"^\s+Masters:\s+4$", described, re.M)
    events = described[described.index("Events:") :]
    assert re.search(
        r"Normal\s+Scaled\s+\S+\s+headroom-operator\s+Scaled RedisCluster shop/cart masters=3->6",
        events,
    )
    rows = table(kubectl("get", "events", "-n", NS).stdout)
    assert rows[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert rows[1][1:] == [
        "Normal",
        "Scaled",
        "rediscluster/cart",
        "Scaled RedisCluster shop/cart masters=3->6",
    ]

    assert kubectl("delete", "rediscluster", "cart", "-n", NS).returncode == 0
    assert "No resources found" in kubectl("get", "rc", "-n", NS).stderr


def test_the_charts_viewer_role_may_look_but_not_scale(
    kube: KubeHarness, kubectl: Kubectl, tmp_path: Path
) -> None:
    objs = render_chart()
    kube.apply(of_kind(objs, "CustomResourceDefinition", "ClusterRole"))
    kube.ensure_namespace(NS)
    kube.apply({**yaml.safe_load((EXAMPLES_DIR / "rediscluster-cart.yaml").read_text())}, NS)
    viewer = kube.user_token("ana")
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "ana-views", "namespace": NS},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "headroom-rediscluster-viewer",
            },
            "subjects": [{"kind": "User", "name": "ana", "apiGroup": "rbac.authorization.k8s.io"}],
        }
    )
    ana = make_kubectl(kube.kubeconfig(tmp_path / "ana.kubeconfig", viewer, NS, tls=True), tmp_path)
    assert table(ana("get", "redisclusters").stdout)[1][:2] == ["cart", "3"]
    refused = ana("scale", "rediscluster/cart", "--replicas", "6", ok=False)
    assert refused.returncode != 0
    assert 'User "ana" cannot patch resource "redisclusters/scale"' in refused.stderr
