"""The chart's RBAC, loaded into the API emulator: enough for the operator, and no more."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from tests.harness.chart_install import OperatorAccess, drop_verb, install_chart
from tests.harness.harness import KubeHarness
from tests.support.chart import REPO_ROOT, of_kind, render_chart

pytestmark = pytest.mark.k8s
k8s: Any = client  # the generated client's Optional-everywhere models add only casts here

RC = ("headroom.dev", "v1alpha1")


def statefulset(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "serviceName": name,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "redis", "image": "redis:7.2"}]},
            },
        },
    }


def forbidden(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ApiException) as exc:
        call(*args, **kwargs)
    assert exc.value.status == 403, exc.value.body
    return str(json.loads(exc.value.body or "{}")["message"])


def rules_of(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    roles = of_kind(render_chart(values), "Role", "ClusterRole")
    return [rule for role in roles for rule in role["rules"]]


@pytest.mark.parametrize("values", [None, {"rbac": {"clusterWide": True}}])
def test_rbac_has_no_wildcards_and_secrets_only_read_or_created(values: Any) -> None:
    rules = rules_of(values)
    assert rules
    for rule in rules:
        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert not any("*" in item for item in rule.get(key) or []), rule
        assert "nonResourceURLs" not in rule
    for rule in rules:
        if "pods" in rule["resources"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
        if "secrets" in rule["resources"]:
            # Read by name (spec.auth's Secret, the cluster's auth Secret) and created (the
            # auth Secret of a new RedisCluster): never listed, watched, changed or deleted.
            assert set(rule["verbs"]) <= {"get", "create"}, rule


def test_namespaced_install_has_no_cluster_roles_for_the_operator() -> None:
    objs = render_chart()
    bound = {b["roleRef"]["name"] for b in of_kind(objs, "ClusterRoleBinding")}
    assert bound == set()
    assert {r["metadata"]["name"] for r in of_kind(objs, "Role")} == {
        "headroom-operator",
        "headroom-leader-election",
    }
    wide = render_chart({"rbac": {"clusterWide": True}})
    assert {b["roleRef"]["name"] for b in of_kind(wide, "ClusterRoleBinding")} == {
        "headroom-operator"
    }
    # The Lease stays namespaced even when the operator watches every namespace, and so
    # do the Secrets (issue 21, item 11).
    assert {r["metadata"]["name"] for r in of_kind(wide, "Role")} == {
        "headroom-leader-election",
        "headroom-operator-secrets",
    }


def test_the_operator_may_do_its_job_in_its_namespace(
    kube: KubeHarness, chart_operator: OperatorAccess
) -> None:
    ns = chart_operator.namespace
    op = kube.api_client(chart_operator.token)
    apps, core, custom = k8s.AppsV1Api(op), k8s.CoreV1Api(op), k8s.CustomObjectsApi(op)
    kube.apply(
        {
            "apiVersion": "headroom.dev/v1alpha1",
            "kind": "RedisCluster",
            "metadata": {"name": "cart", "namespace": ns},
            "spec": {"masters": 3},
        }
    )
    assert [
        i["metadata"]["name"]
        for i in custom.list_namespaced_custom_object(*RC, ns, "redisclusters")["items"]
    ] == ["cart"]
    custom.patch_namespaced_custom_object_status(
        *RC, ns, "redisclusters", "cart", {"status": {"phase": "Forming"}}
    )
    custom.patch_namespaced_custom_object(
        *RC, ns, "redisclusters", "cart", {"metadata": {"finalizers": ["headroom.dev/cleanup"]}}
    )
    apps.create_namespaced_stateful_set(ns, statefulset("cart"))
    apps.patch_namespaced_stateful_set("cart", ns, {"spec": {"replicas": 6}})
    core.create_namespaced_service(
        ns, {"metadata": {"name": "cart"}, "spec": {"clusterIP": "None"}}
    )
    k8s.PolicyV1Api(op).create_namespaced_pod_disruption_budget(
        ns,
        {
            "metadata": {"name": "cart"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "cart"}}},
        },
    )
    assert core.list_namespaced_pod(ns).items == []
    # The cluster's auth Secret: created once, then read by name.
    core.create_namespaced_secret(ns, {"metadata": {"name": "cart-redis-auth"}, "data": {}})
    assert core.read_namespaced_secret("cart-redis-auth", ns).metadata.name == "cart-redis-auth"
    core.create_namespaced_event(
        ns,
        {
            "metadata": {"name": "cart.1"},
            "involvedObject": {"kind": "RedisCluster", "name": "cart", "namespace": ns},
            "reason": "Scaled",
            "message": "masters=3->6",
            "type": "Normal",
        },
    )
    apps.delete_namespaced_stateful_set("cart", ns)

    # Leader election: only the chart's Lease, by name.
    coord = k8s.CoordinationV1Api(op)
    lease = chart_operator.lease_name
    assert lease == "headroom-operator"
    coord.create_namespaced_lease(
        ns, {"metadata": {"name": lease}, "spec": {"holderIdentity": "pod-a"}}
    )
    coord.patch_namespaced_lease(lease, ns, {"spec": {"holderIdentity": "pod-b"}})
    assert coord.read_namespaced_lease(lease, ns).spec.holder_identity == "pod-b"
    kube.apply(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "someone-elses", "namespace": ns},
        }
    )
    assert "cannot get resource" in forbidden(coord.read_namespaced_lease, "someone-elses", ns)


def test_the_operator_may_not_do_more(kube: KubeHarness, chart_operator: OperatorAccess) -> None:
    ns = chart_operator.namespace
    op = kube.api_client(chart_operator.token)
    core, apps = k8s.CoreV1Api(op), k8s.AppsV1Api(op)
    user = f"system:serviceaccount:{ns}:{chart_operator.service_account}"
    assert forbidden(core.list_namespaced_secret, ns) == (
        f'secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" '
        f'in the namespace "{ns}"'
    )
    forbidden(core.delete_namespaced_pod, "x", ns)
    kube.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": ns}})
    forbidden(core.patch_namespaced_secret, "s", ns, {"data": {"password": "eA=="}})
    forbidden(core.delete_namespaced_secret, "s", ns)
    forbidden(core.create_namespaced_config_map, ns, {"metadata": {"name": "x"}})
    # Namespaced install: nothing in another namespace, nothing cluster-wide.
    kube.ensure_namespace("shop")
    forbidden(apps.create_namespaced_stateful_set, "shop", statefulset("cart"))
    forbidden(k8s.CustomObjectsApi(op).list_cluster_custom_object, *RC, "redisclusters")
    forbidden(k8s.ApiextensionsV1Api(op).list_custom_resource_definition)


def test_cluster_wide_install_reaches_every_namespace(kube: KubeHarness) -> None:
    access = install_chart(kube, {"rbac": {"clusterWide": True}})
    assert "--all-namespaces" in access.args and "--namespace" not in access.args
    op = kube.api_client(access.token)
    kube.ensure_namespace("shop")
    k8s.AppsV1Api(op).create_namespaced_stateful_set("shop", statefulset("cart"))
    assert k8s.CustomObjectsApi(op).list_cluster_custom_object(*RC, "redisclusters")["items"] == []
    forbidden(k8s.CoreV1Api(op).list_namespaced_secret, "shop")


def test_cluster_wide_install_reads_secrets_only_where_allowed(kube: KubeHarness) -> None:
    """Issue 21, item 11: the ClusterRole grants no Secret access; the release namespace
    and rbac.secrets.namespaces get a Role each; rbac.secrets.clusterWide opts in."""
    for ns in ("team-a", "shop"):
        kube.ensure_namespace(ns)
        meta = {"name": "cart-redis-auth", "namespace": ns}
        kube.apply({"apiVersion": "v1", "kind": "Secret", "metadata": meta})
    access = install_chart(kube, {"rbac": {"clusterWide": True,
                                           "secrets": {"namespaces": ["team-a"]}}})  # fmt: skip
    (cluster_role,) = [r for r in of_kind(access.objects, "ClusterRole")
                       if r["metadata"]["name"] == "headroom-operator"]  # fmt: skip
    assert not any("secrets" in rule["resources"] for rule in cluster_role["rules"])
    core = k8s.CoreV1Api(kube.api_client(access.token))
    core.read_namespaced_secret("cart-redis-auth", "team-a")
    core.create_namespaced_secret(access.namespace, {"metadata": {"name": "x-redis-auth"}})
    assert "cannot get resource" in forbidden(
        core.read_namespaced_secret, "cart-redis-auth", "shop"
    )
    forbidden(core.create_namespaced_secret, "shop", {"metadata": {"name": "y-redis-auth"}})
    wide = render_chart({"rbac": {"clusterWide": True, "secrets": {"clusterWide": True}}})
    (opted,) = [
        r for r in of_kind(wide, "ClusterRole") if r["metadata"]["name"] == "headroom-operator"
    ]
    assert {v for r in opted["rules"] if "secrets" in r["resources"] for v in r["verbs"]} == {
        "get",
        "create",
    }


def test_removing_one_verb_the_operator_needs_is_a_403(kube: KubeHarness) -> None:
    def without_create(objects: list[dict[str, Any]]) -> None:
        assert drop_verb(objects, "statefulsets", "create") == 1

    access = install_chart(kube, edit_rules=without_create)
    apps = k8s.AppsV1Api(kube.api_client(access.token))
    message = forbidden(apps.create_namespaced_stateful_set, access.namespace, statefulset("cart"))
    assert message == (
        'statefulsets.apps is forbidden: User "system:serviceaccount:headroom:headroom-operator" '
        'cannot create resource "statefulsets" in API group "apps" in the namespace "headroom"'
    )
    apps.list_namespaced_stateful_set(access.namespace)  # the other verbs are still there


def test_readme_lists_every_resource_the_operator_may_touch() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## On Kubernetes") :]
    section = section[: section.index("\n## ", 1)]
    for rule in rules_of({"rbac": {"aggregatedRoles": False}}):
        for resource in rule["resources"]:
            assert f"`{resource}`" in section, resource
        for verb in rule["verbs"]:
            assert verb in section, verb
