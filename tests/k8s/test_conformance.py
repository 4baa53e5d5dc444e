"""Conformance of the Kubernetes API emulator, driven only through the official client."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client import ApiException

from tests.harness import apiserver
from tests.harness.apiserver import AuditRecord
from tests.harness.harness import KubeHarness
from tests.k8s.crds import CLUSTER_SCOPED_CRD, DEMAND_EVENT_CRD, REDIS_CLUSTER_CRD

pytestmark = pytest.mark.k8s

GROUP, VERSION = "headroom.dev", "v1alpha1"
# The generated client's Optional-everywhere models add nothing but casts to these tests.
k8s: Any = client
# Speed (harness start < 2 s, this module < 60 s) is measured by bench/harness_speed.py,
# not asserted here: a loaded 2-core machine must not fail a behaviour test on time.


def status_of(err: ApiException) -> dict[str, Any]:
    body = json.loads(err.body or "{}")
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["status"] == "Failure" and body["code"] == err.status
    return dict(body)


def deployment(name: str, replicas: int = 1, image: str = "nginx:1.27") -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": image,
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 80, "name": "http"}],
                        }
                    ]
                },
            },
        },
    }


@pytest.fixture
def api(kube: KubeHarness) -> Any:
    return kube.api_client()


@pytest.fixture
def core(api: Any) -> Any:
    return k8s.CoreV1Api(api)


@pytest.fixture
def apps(api: Any) -> Any:
    return k8s.AppsV1Api(api)


@pytest.fixture
def custom(api: Any) -> Any:
    return k8s.CustomObjectsApi(api)


@pytest.fixture
def crds(api: Any) -> Any:
    ext = k8s.ApiextensionsV1Api(api)
    for crd in (REDIS_CLUSTER_CRD, DEMAND_EVENT_CRD, CLUSTER_SCOPED_CRD):
        ext.create_custom_resource_definition(crd)
    return ext


# ---- startup and discovery -----------------------------------------------------------
def test_harness_starts_ready_and_serves_the_client(tmp_path: Path) -> None:
    with KubeHarness(tmp_path) as kube:
        with urllib.request.urlopen(f"{kube.url}/readyz", timeout=5) as resp:
            assert resp.read() == b"ok"
        assert k8s.CoreV1Api(kube.api_client()).list_namespace().items


def test_discovery_lists_groups_resources_and_subresources(api: Any, crds: Any) -> None:
    assert k8s.VersionApi(api).get_code().git_version.startswith("v1.")
    assert k8s.CoreApi(api).get_api_versions().versions == ["v1"]
    groups = {g.name: g for g in k8s.ApisApi(api).get_api_versions().groups}
    for name in (
        "apps",
        "autoscaling",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
        "rbac.authorization.k8s.io",
        "events.k8s.io",
        GROUP,
    ):
        assert name in groups
    assert groups[GROUP].preferred_version.group_version == f"{GROUP}/{VERSION}"
    core = {r.name: r for r in k8s.CoreV1Api(api).get_api_resources().resources}
    assert core["pods"].namespaced and not core["namespaces"].namespaced
    assert "pods/status" in core
    apps = {r.name: r for r in k8s.AppsV1Api(api).get_api_resources().resources}
    assert apps["statefulsets/scale"].kind == "Scale"
    assert apps["statefulsets/scale"].group == "autoscaling"
    custom = k8s.CustomObjectsApi(api).get_api_resources(GROUP, VERSION)
    names = {r.name for r in custom.resources}
    assert {"redisclusters", "redisclusters/status", "redisclusters/scale"} <= names
    assert "demandevents/scale" not in names


# ---- CRUD, errors, metadata ----------------------------------------------------------
def test_create_get_replace_delete_and_status_bodies(core: Any) -> None:
    cm = core.create_namespaced_config_map(
        "default", {"metadata": {"name": "a"}, "data": {"k": "v"}}
    )
    assert cm.metadata.uid and cm.metadata.creation_timestamp and cm.metadata.resource_version
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    body = status_of(exc.value)
    assert (exc.value.status, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'configmaps "a" already exists'
    assert body["details"] == {"name": "a", "kind": "configmaps"}

    cm.data = {"k": "v2"}
    replaced = core.replace_namespaced_config_map("a", "default", cm)
    assert replaced.data == {"k": "v2"}
    assert int(replaced.metadata.resource_version) > int(cm.metadata.resource_version)

    generated = core.create_namespaced_config_map("default", {"metadata": {"generateName": "gen-"}})
    assert generated.metadata.name.startswith("gen-") and len(generated.metadata.name) == 9

    deleted = core.delete_namespaced_config_map("a", "default")
    deleted = deleted if isinstance(deleted, dict) else deleted.to_dict()
    assert deleted["status"] == "Success" and deleted["details"]["name"] == "a"
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("a", "default")
    body = status_of(exc.value)
    assert (exc.value.status, body["reason"]) == (404, "NotFound")
    assert body["message"] == 'configmaps "a" not found'

    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("nowhere", {"metadata": {"name": "a"}})
    assert status_of(exc.value)["message"] == 'namespaces "nowhere" not found'
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("default", {"metadata": {"name": "Bad_Name"}})
    body = status_of(exc.value)
    assert (exc.value.status, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_resource_version_is_one_global_counter_and_stale_writes_conflict(
    core: Any, apps: Any
) -> None:
    a = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    d = apps.create_namespaced_deployment("default", deployment("web"))
    s = core.create_namespaced_secret("default", {"metadata": {"name": "s"}})
    rvs = [int(o.metadata.resource_version) for o in (a, d, s)]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    assert int(core.list_namespaced_config_map("default").metadata.resource_version) >= rvs[-1]

    fresh = core.patch_namespaced_config_map("a", "default", {"data": {"x": "1"}})
    a.data = {"y": "2"}
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("a", "default", a)  # carries the old RV
    body = status_of(exc.value)
    assert (exc.value.status, body["reason"]) == (409, "Conflict")
    assert "the object has been modified" in body["message"]
    stale_patch = {"metadata": {"resourceVersion": a.metadata.resource_version}, "data": {"z": "3"}}
    with pytest.raises(ApiException) as exc:
        core.patch_namespaced_config_map("a", "default", stale_patch)
    assert exc.value.status == 409
    # A write that changes nothing does not bump the resourceVersion (as etcd-backed servers).
    same = core.patch_namespaced_config_map("a", "default", {"data": {"x": "1"}})
    assert same.metadata.resource_version == fresh.metadata.resource_version


def test_generation_bumps_on_spec_changes_only(apps: Any) -> None:
    d = apps.create_namespaced_deployment("default", deployment("web"))
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"x": "y"}}})
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment_status("web", "default", {"status": {"replicas": 1}})
    assert d.metadata.generation == 1 and d.status.replicas == 1
    d = apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 3}})
    assert d.metadata.generation == 2


def test_status_and_spec_are_written_through_their_own_endpoints(apps: Any) -> None:
    body = deployment("web")
    body["status"] = {"replicas": 9}
    d = apps.create_namespaced_deployment("default", body)
    assert d.status is None or d.status.replicas is None  # status is dropped on create
    d = apps.patch_namespaced_deployment_status("web", "default", {"status": {"replicas": 2}})
    d.spec.replicas = 7
    d.status.replicas = 5
    d = apps.replace_namespaced_deployment("web", "default", d)
    assert (d.spec.replicas, d.status.replicas) == (7, 2)  # main endpoint ignores status
    d.spec.replicas = 1
    d.status.replicas = 4
    d = apps.replace_namespaced_deployment_status("web", "default", d)
    assert (d.spec.replicas, d.status.replicas) == (7, 4)  # /status ignores spec


def test_label_and_field_selectors(core: Any) -> None:
    def pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
        return {
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }

    core.create_namespaced_pod("default", pod("a", {"env": "prod", "tier": "web"}))
    core.create_namespaced_pod("default", pod("b", {"env": "dev", "tier": "db"}))
    core.create_namespaced_pod("default", pod("c", {"env": "qa"}))
    core.patch_namespaced_pod_status("b", "default", {"status": {"phase": "Running"}})

    def names(**kw: Any) -> list[str]:
        return sorted(p.metadata.name for p in core.list_namespaced_pod("default", **kw).items)

    assert names(label_selector="env=prod") == ["a"]
    assert names(label_selector="env==prod") == ["a"]
    assert names(label_selector="env!=prod") == ["b", "c"]
    assert names(label_selector="env in (prod,dev)") == ["a", "b"]
    assert names(label_selector="env notin (prod, dev)") == ["c"]
    assert names(label_selector="tier") == ["a", "b"]
    assert names(label_selector="!tier") == ["c"]
    assert names(label_selector="tier,env in (dev)") == ["b"]
    assert names(field_selector="metadata.name=c") == ["c"]
    assert names(field_selector="status.phase=Running") == ["b"]
    assert names(field_selector="status.phase!=Running,metadata.name!=a") == ["c"]
    assert [
        p.metadata.name
        for p in core.list_pod_for_all_namespaces(
            field_selector="metadata.namespace=default,metadata.name=a"
        ).items
    ] == ["a"]
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_pod("default", field_selector="spec.bogus=1")
    assert exc.value.status == 400


def test_list_pagination_with_limit_and_continue(core: Any) -> None:
    for i in range(5):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"cm{i}"}})
    seen: list[str] = []
    token = None
    while True:
        page = core.list_namespaced_config_map("default", limit=2, _continue=token)
        seen += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert seen == [f"cm{i}" for i in range(5)]


def test_finalizers_keep_an_object_until_they_are_removed(core: Any) -> None:
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "f", "finalizers": ["headroom.dev/cleanup"]}}
    )
    core.delete_namespaced_config_map("f", "default")
    kept = core.read_namespaced_config_map("f", "default")
    assert kept.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map(
        "f", "default", [{"op": "remove", "path": "/metadata/finalizers"}]
    )
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("f", "default")
    assert exc.value.status == 404


def test_namespace_deletion_removes_its_objects(core: Any) -> None:
    core.create_namespace({"metadata": {"name": "tmp"}})
    core.create_namespaced_config_map("tmp", {"metadata": {"name": "x"}})
    assert core.read_namespace("tmp").status.phase == "Active"
    core.delete_namespace("tmp")
    assert core.list_namespaced_config_map("tmp").items == []


# ---- patches -------------------------------------------------------------------------
def test_merge_strategic_and_json_patches(api: Any, apps: Any) -> None:
    apps.create_namespaced_deployment("default", deployment("web"))
    # Strategic merge (the client's default for dicts): containers and env merge by name.
    d = apps.patch_namespaced_deployment(
        "web",
        "default",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "main",
                                "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                            },
                            {"name": "sidecar", "image": "redis-exporter"},
                        ]
                    }
                }
            }
        },
    )
    containers = d.spec.template.spec.containers
    assert [c.name for c in containers] == ["main", "sidecar"]
    assert containers[0].image == "nginx:1.27"
    assert [(e.name, e.value) for e in containers[0].env] == [("A", "1"), ("B", "3"), ("C", "4")]
    d = apps.patch_namespaced_deployment(
        "web",
        "default",
        {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}},
    )
    assert [c.name for c in d.spec.template.spec.containers] == ["main"]

    # Merge patch: lists replace, null deletes.
    d = apps.patch_namespaced_deployment(
        "web",
        "default",
        {
            "metadata": {"labels": {"app": None, "x": "1"}},
            "spec": {"template": {"spec": {"containers": [{"name": "only", "image": "redis:7"}]}}},
        },
        _content_type="application/merge-patch+json",
    )
    assert d.metadata.labels == {"x": "1"}
    assert [c.name for c in d.spec.template.spec.containers] == ["only"]

    # JSON patch.
    d = apps.patch_namespaced_deployment(
        "web",
        "default",
        [
            {"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/metadata/labels/y", "value": "2"},
            {"op": "remove", "path": "/metadata/labels/x"},
        ],
    )
    assert (d.spec.replicas, d.metadata.labels) == (3, {"y": "2"})
    with pytest.raises(ApiException) as exc:
        apps.patch_namespaced_deployment(
            "web", "default", [{"op": "test", "path": "/spec/replicas", "value": 99}]
        )
    assert exc.value.status == 422
    with pytest.raises(ApiException) as exc:
        apps.patch_namespaced_deployment(
            "web", "default", {"spec": {}}, _content_type="application/apply-patch+yaml"
        )
    assert exc.value.status == 415


def test_strategic_merge_of_conditions_by_type(core: Any) -> None:
    core.create_namespaced_pod(
        "default",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
    )
    core.patch_namespaced_pod_status(
        "p",
        "default",
        {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "False"},
                    {"type": "Initialized", "status": "True"},
                ]
            }
        },
    )
    p = core.patch_namespaced_pod_status(
        "p", "default", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    )
    assert {c.type: c.status for c in p.status.conditions} == {
        "Ready": "True",
        "Initialized": "True",
    }


# ---- scale, HPA, leases, events ------------------------------------------------------
def test_scale_subresource_of_deployments_and_statefulsets(apps: Any) -> None:
    apps.create_namespaced_deployment("default", deployment("web", replicas=2))
    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert (scale.spec.replicas, scale.status.selector) == (2, "app=web")
    scale = apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 4}})
    assert scale.spec.replicas == 4
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 4
    scale.spec.replicas = 6
    apps.replace_namespaced_deployment_scale("web", "default", scale)
    assert apps.read_namespaced_deployment("web", "default").metadata.generation == 3
    scale.spec.replicas = 1  # scale still carries the old resourceVersion
    with pytest.raises(ApiException) as exc:
        apps.replace_namespaced_deployment_scale("web", "default", scale)
    assert exc.value.status == 409

    sts = deployment("db")
    sts["spec"]["serviceName"] = "db"
    apps.create_namespaced_stateful_set("default", sts)
    apps.patch_namespaced_stateful_set_scale("db", "default", {"spec": {"replicas": 3}})
    assert apps.read_namespaced_stateful_set("db", "default").spec.replicas == 3


def test_horizontal_pod_autoscalers(api: Any, apps: Any) -> None:
    hpa_api = k8s.AutoscalingV2Api(api)
    apps.create_namespaced_deployment("default", deployment("web"))
    hpa_api.create_namespaced_horizontal_pod_autoscaler(
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 10,
            },
        },
    )
    hpa = hpa_api.patch_namespaced_horizontal_pod_autoscaler(
        "web", "default", {"spec": {"minReplicas": 5}}
    )
    assert (hpa.spec.min_replicas, hpa.metadata.generation) == (5, 2)
    hpa_api.patch_namespaced_horizontal_pod_autoscaler_status(
        "web", "default", {"status": {"currentReplicas": 5, "desiredReplicas": 5}}
    )
    listed = hpa_api.list_horizontal_pod_autoscaler_for_all_namespaces().items
    assert [(h.metadata.name, h.status.desired_replicas) for h in listed] == [("web", 5)]


def test_leases_for_leader_election(api: Any) -> None:
    coord = k8s.CoordinationV1Api(api)
    lease = coord.create_namespaced_lease(
        "default",
        {
            "metadata": {"name": "headroom"},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
        },
    )
    lease.spec.holder_identity = "b"
    coord.replace_namespaced_lease("headroom", "default", lease)
    lease.spec.holder_identity = "c"  # a second candidate with the same stale read loses
    with pytest.raises(ApiException) as exc:
        coord.replace_namespaced_lease("headroom", "default", lease)
    assert exc.value.status == 409
    assert coord.read_namespaced_lease("headroom", "default").spec.holder_identity == "b"


def test_events_in_both_groups(api: Any, core: Any) -> None:
    core.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "e1"},
            "reason": "Scaled",
            "message": "masters=3->6",
            "type": "Normal",
            "involvedObject": {"kind": "RedisCluster", "name": "cart", "namespace": "default"},
        },
    )
    core.create_namespaced_event(
        "default",
        {"metadata": {"name": "e2"}, "reason": "Other", "involvedObject": {"name": "other"}},
    )
    listed = core.list_namespaced_event("default", field_selector="involvedObject.name=cart")
    assert [e.reason for e in listed.items] == ["Scaled"]
    ev = k8s.EventsV1Api(api)
    ev.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "n1"},
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "reason": "Scaled",
            "action": "Scale",
            "reportingController": "headroom.dev/operator",
            "reportingInstance": "op-0",
            "type": "Normal",
            "regarding": {"name": "cart"},
        },
    )
    assert [e.reason for e in ev.list_namespaced_event("default").items] == ["Scaled"]


# ---- custom resources ----------------------------------------------------------------
def test_custom_resources_are_defaulted_and_validated(crds: Any, custom: Any) -> None:
    crd = crds.read_custom_resource_definition("redisclusters.headroom.dev")
    assert {c.type: c.status for c in crd.status.conditions}["Established"] == "True"
    rc = custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        "default",
        "redisclusters",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RedisCluster",
            "metadata": {"name": "cart"},
            "spec": {
                "masters": 3,
                "unknownField": 1,
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "cpu": "2"},
                "auth": {"secretName": "cart-auth"},
            },
        },
    )
    assert rc["spec"] == {
        "masters": 3,
        "replicasPerMaster": 1,
        "maxmemory": "256mb",
        "image": "redis:7.2",
        "port": 6379,
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
        "auth": {"secretName": "cart-auth", "key": "password"},
    }
    assert rc["metadata"]["generation"] == 1

    def rejected(spec: dict[str, Any]) -> dict[str, Any]:
        with pytest.raises(ApiException) as exc:
            custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                "default",
                "redisclusters",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "RedisCluster",
                    "metadata": {"name": "bad"},
                    "spec": spec,
                },
            )
        body = status_of(exc.value)
        assert (exc.value.status, body["reason"]) == (422, "Invalid")
        assert body["details"]["kind"] == "RedisCluster" and body["details"]["group"] == GROUP
        return body

    body = rejected({"masters": 0})
    assert body["message"] == (
        'RedisCluster.headroom.dev "bad" is invalid: spec.masters: Invalid '
        "value: 0: spec.masters in body should be greater than or equal "
        "to 3"
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec.masters",
            "message": "Invalid value: 0: spec.masters in body should be greater than or "
            "equal to 3",
        }
    ]
    assert rejected({})["details"]["causes"][0] == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.masters",
    }
    assert rejected({"masters": "three"})["details"]["causes"][0]["reason"] == (
        "FieldValueTypeInvalid"
    )
    assert rejected({"masters": 3, "auth": {}})["details"]["causes"][0] == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.auth.secretName",
    }
    causes = rejected(
        {"masters": 1001, "maxmemory": "lots", "resources": {"limits": {"cpu": "x"}}}
    )["details"]["causes"]
    assert sorted(c["field"] for c in causes) == [
        "spec.masters",
        "spec.maxmemory",
        "spec.resources.limits.cpu",
    ]

    with pytest.raises(ApiException) as exc:
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            "default",
            "demandevents",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "DemandEvent",
                "metadata": {"name": "e"},
                "spec": {"start": "tomorrow", "end": "2025-03-01T20:00:00Z", "labels": {"host": 7}},
            },
        )
    causes = status_of(exc.value)["details"]["causes"]
    assert sorted(c["field"] for c in causes) == ["spec.labels.host", "spec.start"]
    ok = custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        "default",
        "demandevents",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DemandEvent",
            "metadata": {"name": "e"},
            "spec": {
                "start": "2025-03-01T18:00:00+01:00",
                "end": "2025-03-01T20:00:00Z",
                "labels": {"host": "ana"},
            },
        },
    )
    assert ok["spec"]["kind"] == "custom"

    # An update is validated too, and strategic merge patch is refused for custom resources.
    with pytest.raises(ApiException) as exc:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, "default", "redisclusters", "cart", {"spec": {"masters": -1}}
        )
    assert exc.value.status == 422
    with pytest.raises(ApiException) as exc:
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            "default",
            "redisclusters",
            "cart",
            {"spec": {"masters": 4}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert exc.value.status == 415


def test_custom_resource_status_and_scale_subresources(crds: Any, custom: Any) -> None:
    args = (GROUP, VERSION, "default", "redisclusters")
    custom.create_namespaced_custom_object(
        *args,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RedisCluster",
            "metadata": {"name": "cart"},
            "spec": {"masters": 3},
            "status": {"masters": 99},
        },
    )
    rc = custom.get_namespaced_custom_object(*args, "cart")
    assert "status" not in rc
    rc = custom.patch_namespaced_custom_object_status(
        *args,
        "cart",
        {
            "status": {
                "masters": 3,
                "readyMasters": 3,
                "selector": "app=cart",
                "phase": "Ready",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "ClusterFormed",
                        "lastTransitionTime": "2025-01-01T00:00:00Z",
                    }
                ],
            }
        },
    )
    assert rc["status"]["readyMasters"] == 3 and rc["metadata"]["generation"] == 1
    rc = custom.patch_namespaced_custom_object(
        *args, "cart", {"status": {"readyMasters": 0}, "metadata": {"labels": {"a": "b"}}}
    )
    assert rc["status"]["readyMasters"] == 3 and rc["metadata"]["generation"] == 1
    with pytest.raises(ApiException) as exc:
        custom.patch_namespaced_custom_object_status(
            *args,
            "cart",
            {
                "status": {
                    "phase": "Happy",
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "Maybe",
                            "reason": "Formed",
                            "lastTransitionTime": "2025-01-01T00:00:00Z",
                        }
                    ],
                }
            },
        )
    assert exc.value.status == 422
    assert sorted((c["field"], c["reason"]) for c in status_of(exc.value)["details"]["causes"]) == [
        ("status.conditions[0].status", "FieldValueNotSupported"),
        ("status.phase", "FieldValueNotSupported"),
    ]

    scale = custom.get_namespaced_custom_object_scale(*args, "cart")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 3}
    assert scale["status"] == {"replicas": 3, "selector": "app=cart"}
    custom.patch_namespaced_custom_object_scale(*args, "cart", {"spec": {"replicas": 6}})
    rc = custom.get_namespaced_custom_object(*args, "cart")
    assert rc["spec"]["masters"] == 6 and rc["metadata"]["generation"] == 2
    scale = custom.get_namespaced_custom_object_scale(*args, "cart")
    scale["spec"]["replicas"] = 2  # violates the CRD's minimum of 3 masters
    with pytest.raises(ApiException) as exc:
        custom.replace_namespaced_custom_object_scale(*args, "cart", scale)
    assert exc.value.status == 422  # the wording: test_conformance_tooling.py

    # A cluster-scoped kind without a schema keeps unknown fields.
    pool = custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "pools",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Pool",
            "metadata": {"name": "p"},
            "spec": {"anything": [1, 2]},
        },
    )
    assert pool["spec"] == {"anything": [1, 2]} and "namespace" not in pool["metadata"]
    listed = custom.list_cluster_custom_object(GROUP, VERSION, "pools")
    assert [p["metadata"]["name"] for p in listed["items"]] == ["p"]


def test_deleting_a_crd_stops_serving_its_kind(crds: Any, custom: Any) -> None:
    crds.delete_custom_resource_definition("pools.headroom.dev")
    with pytest.raises(ApiException) as exc:
        custom.list_cluster_custom_object(GROUP, VERSION, "pools")
    assert exc.value.status == 404


# ---- watch ---------------------------------------------------------------------------
def test_watch_streams_and_resumes_from_a_resource_version(core: Any) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    w = watch.Watch()
    first = [
        (e["type"], e["object"].metadata.name)
        for e in w.stream(core.list_namespaced_config_map, "default", timeout_seconds=1)
    ]
    assert first == [("ADDED", "a")]
    resume_from = w.resource_version
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "b", "labels": {"x": "1"}}})
    core.delete_namespaced_config_map("a", "default")
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map,
            "default",
            resource_version=resume_from,
            timeout_seconds=1,
        )
    ]
    assert events == [("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    selected = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map,
            "default",
            resource_version=resume_from,
            label_selector="x=1",
            timeout_seconds=1,
        )
    ]
    assert selected == [("ADDED", "b")]


def test_watch_survives_dropped_streams_and_sees_bookmarks(kube: KubeHarness, core: Any) -> None:
    kube.server.bookmark_interval = 0.2
    w = watch.Watch()
    seen: list[tuple[str, str]] = []

    def consume() -> None:
        for e in w.stream(core.list_namespaced_config_map, "default", allow_watch_bookmarks=True):
            seen.append((e["type"], "" if e["type"] == "BOOKMARK" else e["object"].metadata.name))
            if ("ADDED", "after") in seen:
                w.stop()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    core.create_namespaced_config_map("default", {"metadata": {"name": "before"}})
    time.sleep(0.5)
    assert kube.drop_watches() == 1
    core.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
    t.join(10)
    assert not t.is_alive()
    names = [n for typ, n in seen if typ != "BOOKMARK"]
    assert names == ["before", "after"]  # resumed from the last RV: nothing lost, nothing twice
    assert ("BOOKMARK", "") in seen


def test_too_old_resource_version_is_gone(core: Any, kube: KubeHarness) -> None:
    cm = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})
    kube.compact()
    with pytest.raises(ApiException) as exc:
        list(
            watch.Watch().stream(
                core.list_namespaced_config_map,
                "default",
                resource_version=cm.metadata.resource_version,
                timeout_seconds=1,
            )
        )
    assert exc.value.status == 410
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_config_map(
            "default", resource_version=cm.metadata.resource_version, resource_version_match="Exact"
        )
    assert exc.value.status == 410
    # Without a timeout the client re-lists nothing itself, but retries once and gives up too.
    with pytest.raises(ApiException):
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map,
            "default",
            resource_version=cm.metadata.resource_version,
        ):
            pass


def test_watch_history_is_bounded(tmp_path: Path) -> None:
    with KubeHarness(tmp_path, history_size=5) as kube:
        core = k8s.CoreV1Api(kube.api_client())
        first = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
        for i in range(6):
            core.patch_namespaced_config_map("a", "default", {"data": {"i": str(i)}})
        events = list(
            watch.Watch().stream(
                core.list_namespaced_config_map,
                "default",
                watch=True,
                resource_version=str(int(first.metadata.resource_version) + 3),
                timeout_seconds=1,
                deserialize=False,
            )
        )
        assert [e["type"] for e in events] == ["MODIFIED"] * 3
        with pytest.raises(ApiException) as exc:
            list(
                watch.Watch().stream(
                    core.list_namespaced_config_map,
                    "default",
                    resource_version=first.metadata.resource_version,
                    timeout_seconds=1,
                )
            )
        assert exc.value.status == 410


# ---- RBAC ----------------------------------------------------------------------------
RBAC_YAML = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-reader, namespace: app}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: op-reads-cm, namespace: app}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-reader}
subjects:
- {kind: ServiceAccount, name: operator, namespace: headroom}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: scaler}
rules:
- apiGroups: [apps]
  resources: [statefulsets/scale]
  verbs: [get, patch]
- apiGroups: [apps]
  resources: [statefulsets]
  resourceNames: [db]
  verbs: [get]
- apiGroups: [headroom.dev]
  resources: ["*"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: op-scales}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: scaler}
subjects:
- {kind: ServiceAccount, name: operator, namespace: headroom}
"""


def test_rbac_allows_only_what_the_roles_grant(kube: KubeHarness, apps: Any) -> None:
    kube.apply(RBAC_YAML)
    kube.ensure_namespace("app")
    apps.create_namespaced_stateful_set("app", deployment("db"))
    apps.create_namespaced_stateful_set("app", deployment("other"))
    op = kube.api_client(kube.service_account_token("headroom", "operator"))
    op_core, op_apps = k8s.CoreV1Api(op), k8s.AppsV1Api(op)

    assert op_core.list_namespaced_config_map("app").items == []
    with pytest.raises(ApiException) as exc:
        op_core.create_namespaced_config_map("app", {"metadata": {"name": "x"}})
    body = status_of(exc.value)
    assert (exc.value.status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == (
        'configmaps is forbidden: User "system:serviceaccount:headroom:operator" cannot create '
        'resource "configmaps" in API group "" in the namespace "app"'
    )
    with pytest.raises(ApiException) as exc:
        op_core.list_namespaced_config_map("default")  # the Role binds in "app" only
    assert exc.value.status == 403

    op_apps.patch_namespaced_stateful_set_scale("db", "app", {"spec": {"replicas": 2}})
    assert op_apps.read_namespaced_stateful_set("db", "app").spec.replicas == 2
    with pytest.raises(ApiException) as exc:
        op_apps.read_namespaced_stateful_set("other", "app")  # resourceNames: [db]
    assert status_of(exc.value)["message"] == (
        'statefulsets.apps "other" is forbidden: User "system:serviceaccount:headroom:operator" '
        'cannot get resource "statefulsets" in API group "apps" in the namespace "app"'
    )
    with pytest.raises(ApiException) as exc:
        op_apps.patch_namespaced_stateful_set("db", "app", {"spec": {"replicas": 3}})
    assert exc.value.status == 403  # scale rights do not include the main resource
    with pytest.raises(ApiException) as exc:
        op_core.list_namespace()
    assert "at the cluster scope" in status_of(exc.value)["message"]

    nobody = kube.api_client(kube.service_account_token("headroom", "nobody"))
    with pytest.raises(ApiException) as exc:
        k8s.CoreV1Api(nobody).list_namespaced_config_map("app")
    assert exc.value.status == 403
    assert k8s.VersionApi(nobody).get_code().major == "1"  # discovery is public
    with pytest.raises(ApiException) as exc:
        k8s.CoreV1Api(kube.api_client("not-a-token")).list_namespace()
    assert exc.value.status == 401
    denied = [a for a in kube.audit if a.code == 403]
    assert any(a.verb == "patch" and a.resource == "statefulsets" for a in denied)


def test_an_answered_request_is_already_in_the_audit(
    kube: KubeHarness, core: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests read ``kube.audit`` right after a client (kubectl) has its answer, so the record
    # must be written before the reply goes out, not after it on a thread that may lag: a
    # slow record (a loaded machine descheduling that thread) must not be missed.
    def slow_record(*fields: Any) -> AuditRecord:
        time.sleep(0.05)
        return AuditRecord(*fields)

    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    monkeypatch.setattr(apiserver, "AuditRecord", slow_record)
    for i in range(5):
        seen = len(kube.audit)
        core.read_namespaced_config_map("a", "default")
        got = [(a.verb, a.resource, a.name, a.code) for a in kube.audit[seen:]]
        assert got == [("get", "configmaps", "a", 200)], f"request {i}: {got}"


# ---- faults and outages --------------------------------------------------------------
def test_injected_failures_then_success(kube: KubeHarness, core: Any) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    kube.faults.fail(r"/configmaps/a$", status=500, times=2)
    for _ in range(2):
        with pytest.raises(ApiException) as exc:
            core.read_namespaced_config_map("a", "default")
        assert (exc.value.status, status_of(exc.value)["reason"]) == (500, "InternalError")
    assert core.read_namespaced_config_map("a", "default").metadata.name == "a"

    kube.faults.fail(r"/configmaps", status=429, times=1)
    with pytest.raises(ApiException) as exc:
        core.list_namespaced_config_map("default")
    assert exc.value.status == 429 and (exc.value.headers or {})["Retry-After"] == "1"
    core.list_namespaced_config_map("default")

    kube.faults.fail(r"/configmaps/a$", status=409, times=1, methods="PATCH")
    core.read_namespaced_config_map("a", "default")  # GET is not affected
    with pytest.raises(ApiException) as exc:
        core.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})
    assert exc.value.status == 409
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})

    kube.faults.delay(r"/configmaps/a$", seconds=0.3, times=1)
    started = time.monotonic()
    core.read_namespaced_config_map("a", "default")
    assert time.monotonic() - started >= 0.3


def test_api_goes_away_and_comes_back_on_the_same_port(kube: KubeHarness, core: Any) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    url = kube.url
    errors: list[BaseException] = []

    def watch_until_broken() -> None:
        try:
            for _ in watch.Watch().stream(core.list_namespaced_config_map, "default"):
                pass
        except (urllib3.exceptions.HTTPError, ApiException) as err:
            errors.append(err)

    t = threading.Thread(target=watch_until_broken, daemon=True)
    t.start()
    time.sleep(0.3)
    with kube.api_down():
        with pytest.raises(urllib3.exceptions.HTTPError):
            core.read_namespaced_config_map("a", "default")
        t.join(5)
        assert errors, "the open watch should break when the API goes away"
    assert kube.url == url
    assert core.read_namespaced_config_map("a", "default").metadata.name == "a"


def test_concurrent_writers_get_distinct_resource_versions(core: Any) -> None:
    rvs: list[int] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for i in range(10):
            cm = core.create_namespaced_config_map("default", {"metadata": {"name": f"w{n}-{i}"}})
            with lock:
                rvs.append(int(cm.metadata.resource_version))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rvs) == len(set(rvs)) == 40
    assert len(core.list_namespaced_config_map("default").items) == 40


def test_kubeconfig_file_works_with_load_kube_config(kube: KubeHarness, tmp_path: Path) -> None:
    from kubernetes import config

    path = kube.kubeconfig(tmp_path / "kubeconfig")
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        names = [n.metadata.name for n in k8s.CoreV1Api(api).list_namespace().items]
    assert "default" in names
