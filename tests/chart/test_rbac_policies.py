"""The chart's RBAC for CapacityPolicies, DemandEvents and scale targets, in the emulator:
the operator may read policies, write their status, add events, resize through /scale and
move an HPA's floor -- and may not create, delete or edit the workloads themselves."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.chart.test_rbac import forbidden, rules_of
from tests.harness.chart_install import OperatorAccess, install_chart
from tests.harness.harness import KubeHarness
from tests.support.chart import example, of_kind, render_chart

pytestmark = pytest.mark.k8s
k8s: Any = client
GV = ("headroom.dev", "v1alpha1")


def deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }


def hpa(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 2,
            "maxReplicas": 10,
        },
    }


def test_the_operator_may_run_policies_in_its_namespace(
    kube: KubeHarness, chart_operator: OperatorAccess
) -> None:
    ns = chart_operator.namespace
    op = kube.api_client(chart_operator.token)
    custom, apps = k8s.CustomObjectsApi(op), k8s.AppsV1Api(op)
    scaling = k8s.AutoscalingV2Api(op)
    policy = {**example("capacitypolicy-shop.yaml")}
    policy["metadata"] = {**policy["metadata"], "namespace": ns}
    kube.apply([policy, {**deployment("web"), "metadata": {"name": "web", "namespace": ns}}])
    kube.apply({**hpa("web"), "metadata": {"name": "web", "namespace": ns}})
    (item,) = custom.list_namespaced_custom_object(*GV, ns, "capacitypolicies")["items"]
    custom.patch_namespaced_custom_object_status(
        *GV, ns, "capacitypolicies", "shop", {"status": {"targetCount": 2, "nextAction": "-"}}
    )
    assert (
        custom.get_namespaced_custom_object_status(*GV, ns, "capacitypolicies", "shop")["status"][
            "targetCount"
        ]
        == 2
    )
    event = {**example("demandevent-launch.yaml")}
    event["metadata"] = {"name": "surge-web", "namespace": ns}
    custom.create_namespaced_custom_object(*GV, ns, "demandevents", event)
    custom.delete_namespaced_custom_object(*GV, ns, "demandevents", "surge-web")
    # Scale targets: read the object, resize through /scale only.
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 2
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 5}})
    assert apps.read_namespaced_deployment_scale("web", ns).spec.replicas == 5
    # HPA floor.
    scaling.patch_namespaced_horizontal_pod_autoscaler("web", ns, {"spec": {"minReplicas": 6}})
    assert scaling.read_namespaced_horizontal_pod_autoscaler("web", ns).spec.min_replicas == 6
    assert item["metadata"]["name"] == "shop"


def test_the_operator_may_not_edit_workloads_or_policies_beyond_that(
    kube: KubeHarness, chart_operator: OperatorAccess
) -> None:
    ns = chart_operator.namespace
    op = kube.api_client(chart_operator.token)
    custom, apps = k8s.CustomObjectsApi(op), k8s.AppsV1Api(op)
    scaling = k8s.AutoscalingV2Api(op)
    kube.apply({**deployment("web"), "metadata": {"name": "web", "namespace": ns}})
    kube.apply({**hpa("web"), "metadata": {"name": "web", "namespace": ns}})
    forbidden(apps.create_namespaced_deployment, ns, deployment("api"))
    forbidden(apps.patch_namespaced_deployment, "web", ns, {"spec": {"replicas": 9}})
    forbidden(apps.delete_namespaced_deployment, "web", ns)
    forbidden(scaling.delete_namespaced_horizontal_pod_autoscaler, "web", ns)
    forbidden(scaling.create_namespaced_horizontal_pod_autoscaler, ns, hpa("api"))
    policy = {**example("capacitypolicy-shop.yaml")}
    forbidden(custom.create_namespaced_custom_object, *GV, ns, "capacitypolicies", policy)
    forbidden(custom.delete_namespaced_custom_object, *GV, ns, "capacitypolicies", "shop")


def test_extra_scale_targets_get_their_scale_subresource_only(kube: KubeHarness) -> None:
    values = {
        "rbac": {
            "scaleTargets": [{"apiGroup": "cluster.x-k8s.io", "resource": "machinedeployments"}]
        }
    }
    rules = [r for r in rules_of(values) if "cluster.x-k8s.io" in r["apiGroups"]]
    assert [(r["resources"], r["verbs"]) for r in rules] == [
        (["machinedeployments"], ["get"]),
        (["machinedeployments/scale"], ["get", "patch"]),  # exactly what the target calls
    ]
    assert not [r for r in rules_of() if "cluster.x-k8s.io" in r["apiGroups"]]
    access = install_chart(kube, values)
    assert access.token


def test_editor_and_viewer_roles_for_the_new_kinds() -> None:
    roles = {r["metadata"]["name"]: r for r in of_kind(render_chart(), "ClusterRole")}
    for kind, plural in (("capacitypolicy", "capacitypolicies"), ("demandevent", "demandevents")):
        editor = roles[f"headroom-{kind}-editor"]
        assert editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
        assert set(editor["rules"][0]["verbs"]) == {
            "create",
            "delete",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        }
        viewer = roles[f"headroom-{kind}-viewer"]
        assert viewer["rules"][0] == {
            "apiGroups": ["headroom.dev"],
            "resources": [plural],
            "verbs": ["get", "list", "watch"],
        }
        # Nobody but the operator writes a policy's status.
        for role in (editor, viewer, roles[f"headroom-{kind}-admin"]):
            for rule in role["rules"]:
                if any(r.endswith("/status") for r in rule["resources"]):
                    assert rule["verbs"] == ["get"]
