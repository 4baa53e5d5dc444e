"""Conformance of what the emulator serves for tools (kubectl) and the operator's chart:
policy/v1 PodDisruptionBudgets, ``fieldValidation``, Table responses, OpenAPI v3 and HTTPS.
Driven through the official client, as the real server would be."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from tests.harness.harness import KubeHarness
from tests.harness.kubeconfig import client_configuration
from tests.harness.tables import human_duration, json_path
from tests.k8s.crds import REDIS_CLUSTER_CRD

pytestmark = pytest.mark.k8s
k8s: Any = client
GROUP, VERSION = "headroom.dev", "v1alpha1"
RC_ARGS = (GROUP, VERSION, "default", "redisclusters")
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest.fixture
def api(kube: KubeHarness) -> Any:
    api = kube.api_client()
    k8s.ApiextensionsV1Api(api).create_custom_resource_definition(REDIS_CLUSTER_CRD)
    return api


def cart(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RedisCluster",
        "metadata": {"name": "cart"},
        "spec": {"masters": 3, **spec},
    }


def message_of(err: ApiException) -> str:
    return str(json.loads(err.body or "{}")["message"])


def get_raw(api: Any, path: str, accept: str = "application/json", **query: str) -> Any:
    """GET ``path`` through the official client's transport (auth included); (code, JSON)."""
    method, url, headers, body, post = api.param_serialize(
        "GET",
        path,
        query_params=list(query.items()),
        header_params={"Accept": accept},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, header_params=headers, body=body, post_params=post)
    response.read()
    return response.status, json.loads(response.data)


def raw(api: Any, path: str, accept: str = "application/json", **query: str) -> Any:
    code, doc = get_raw(api, path, accept, **query)
    assert code == 200, doc
    return doc


# ---- policy/v1 PodDisruptionBudget ---------------------------------------------------
def test_pod_disruption_budgets_are_served(api: Any) -> None:
    policy = k8s.PolicyV1Api(api)
    resources = {r.name: r for r in k8s.PolicyV1Api(api).get_api_resources().resources}
    assert resources["poddisruptionbudgets"].short_names == ["pdb"]
    assert resources["poddisruptionbudgets"].namespaced is True
    assert "poddisruptionbudgets/status" in resources
    pdb = policy.create_namespaced_pod_disruption_budget(
        "default",
        {
            "metadata": {"name": "cart", "labels": {"app": "cart"}},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "cart"}}},
            "status": {"currentHealthy": 9},
        },
    )
    assert pdb.spec.max_unavailable == 1 and pdb.status is None  # status only via /status
    policy.patch_namespaced_pod_disruption_budget(
        "cart", "default", {"spec": {"maxUnavailable": 2}}
    )
    policy.patch_namespaced_pod_disruption_budget_status(
        "cart",
        "default",
        {
            "status": {
                "currentHealthy": 3,
                "desiredHealthy": 1,
                "disruptionsAllowed": 2,
                "expectedPods": 3,
            }
        },
    )
    got = policy.read_namespaced_pod_disruption_budget("cart", "default")
    assert (got.spec.max_unavailable, got.status.disruptions_allowed) == (2, 2)
    assert got.metadata.generation == 2
    listed = policy.list_namespaced_pod_disruption_budget("default", label_selector="app=cart")
    assert [p.metadata.name for p in listed.items] == ["cart"]
    policy.delete_namespaced_pod_disruption_budget("cart", "default")
    with pytest.raises(ApiException) as exc:
        policy.read_namespaced_pod_disruption_budget("cart", "default")
    assert exc.value.status == 404


# ---- fieldValidation -----------------------------------------------------------------
def test_field_validation_strict_refuses_unknown_fields_with_a_400(api: Any) -> None:
    custom = k8s.CustomObjectsApi(api)
    body = cart(replicas=3, extra={"a": 1})
    body["metadata"]["labelz"] = {"x": "y"}
    with pytest.raises(ApiException) as exc:
        custom.create_namespaced_custom_object(*RC_ARGS, body, field_validation="Strict")
    status = json.loads(exc.value.body or "{}")
    assert (exc.value.status, status["reason"]) == (400, "BadRequest")
    assert status["message"] == (
        'RedisCluster in version "v1alpha1" cannot be handled as a RedisCluster: strict '
        'decoding error: unknown field "metadata.labelz", unknown field "spec.replicas", '
        'unknown field "spec.extra"'
    )
    with pytest.raises(ApiException):
        custom.get_namespaced_custom_object(*RC_ARGS, "cart")  # nothing was created
    custom.create_namespaced_custom_object(*RC_ARGS, cart(), field_validation="Strict")
    with pytest.raises(ApiException) as exc:
        custom.patch_namespaced_custom_object(
            *RC_ARGS, "cart", {"spec": {"mastrs": 6}}, field_validation="Strict"
        )
    assert exc.value.status == 400 and message_of(exc.value).endswith('unknown field "spec.mastrs"')
    with pytest.raises(ApiException) as exc:
        custom.patch_namespaced_custom_object_status(
            *RC_ARGS, "cart", {"status": {"ready": 3}}, field_validation="Strict"
        )
    assert message_of(exc.value).endswith('unknown field "status.ready"')
    # A known field is fine, and kopf's bookkeeping under status.kopf is kept.
    custom.patch_namespaced_custom_object_status(
        *RC_ARGS, "cart", {"status": {"kopf": {"progress": {"x": 1}}}}, field_validation="Strict"
    )
    assert custom.get_namespaced_custom_object(*RC_ARGS, "cart")["status"]["kopf"] == {
        "progress": {"x": 1}
    }


@pytest.mark.parametrize("mode", ["Warn", None])
def test_field_validation_warn_prunes_and_warns(api: Any, mode: str | None) -> None:
    custom = k8s.CustomObjectsApi(api)
    kwargs = {"field_validation": mode} if mode else {}
    obj, code, headers = custom.create_namespaced_custom_object_with_http_info(
        *RC_ARGS, cart(replicas=3, resources={"cpu": "1"}), **kwargs
    )
    assert code == 201 and "replicas" not in obj["spec"] and "resources" in obj["spec"]
    # urllib3 joins repeated headers with ", ".
    assert headers["Warning"] == (
        '299 - "unknown field \\"spec.replicas\\"", 299 - "unknown field \\"spec.resources.cpu\\""'
    )


def test_field_validation_ignore_and_bad_directives(api: Any) -> None:
    custom = k8s.CustomObjectsApi(api)
    obj, code, headers = custom.create_namespaced_custom_object_with_http_info(
        *RC_ARGS, cart(replicas=3), field_validation="Ignore"
    )
    assert code == 201 and "replicas" not in obj["spec"] and "Warning" not in headers
    with pytest.raises(ApiException) as exc:
        custom.patch_namespaced_custom_object(
            *RC_ARGS, "cart", {"spec": {"masters": 4}}, field_validation="Loud"
        )
    assert exc.value.status == 400
    assert custom.get_namespaced_custom_object(*RC_ARGS, "cart")["spec"]["masters"] == 3


# ---- /scale validated against the schema ---------------------------------------------
def test_scale_is_validated_against_the_crd_schema(api: Any) -> None:
    custom = k8s.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(*RC_ARGS, cart())
    for replicas, bound in (
        (2, "greater than or equal to 3"),
        (1001, "less than or equal to 1000"),
    ):
        with pytest.raises(ApiException) as exc:
            custom.patch_namespaced_custom_object_scale(
                *RC_ARGS, "cart", {"spec": {"replicas": replicas}}
            )
        status = json.loads(exc.value.body or "{}")
        assert (exc.value.status, status["reason"]) == (422, "Invalid")
        assert status["message"] == (
            f'RedisCluster.headroom.dev "cart" is invalid: spec.masters: Invalid value: '
            f"{replicas}: spec.masters in body should be {bound}"
        )
        assert status["details"]["causes"][0]["field"] == "spec.masters"
    scale = custom.patch_namespaced_custom_object_scale(*RC_ARGS, "cart", {"spec": {"replicas": 6}})
    assert scale["spec"]["replicas"] == 6


# ---- Table ---------------------------------------------------------------------------
def test_tables_use_the_crd_printer_columns(api: Any) -> None:
    custom = k8s.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(*RC_ARGS, cart())
    custom.patch_namespaced_custom_object_status(
        *RC_ARGS, "cart", {"status": {"masters": 3, "readyMasters": 2, "phase": "Forming"}}
    )
    path = f"/apis/{GROUP}/{VERSION}/namespaces/default/redisclusters"
    table = raw(api, path, TABLE)
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"),
        ("Masters", "integer"),
        ("Ready", "integer"),
        ("Phase", "string"),
        ("Pods", "string"),
        ("Reason", "string"),
        ("Age", "date"),
    ]
    # The two `-o wide` columns: kubectl shows a column of priority 0 by default only.
    assert [c.get("priority", 0) for c in table["columnDefinitions"]] == [0, 0, 0, 0, 1, 1, 0]
    (row,) = table["rows"]
    assert row["cells"][:4] == ["cart", 3, 2, "Forming"]
    assert row["cells"][-1].endswith("s")  # an age such as "0s"
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["name"] == "cart"
    assert table["metadata"]["resourceVersion"] == row["object"]["metadata"]["resourceVersion"]
    one = raw(api, f"{path}/cart", TABLE, includeObject="Object")
    assert one["kind"] == "Table" and one["rows"][0]["object"]["spec"]["masters"] == 3
    assert "object" not in raw(api, path, TABLE, includeObject="None")["rows"][0]
    # Without the Table media type, a list is a list.
    assert raw(api, path)["kind"] == "RedisClusterList"


def test_tables_of_built_in_kinds(api: Any) -> None:
    core = k8s.CoreV1Api(api)
    core.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "cart.1"},
            "involvedObject": {"kind": "RedisCluster", "name": "cart", "namespace": "default"},
            "reason": "Scaled",
            "message": "masters=3->6",
            "type": "Normal",
        },
    )
    events = raw(api, "/api/v1/namespaces/default/events", TABLE)
    assert [c["name"] for c in events["columnDefinitions"] if c["priority"] == 0] == [
        "Last Seen",
        "Type",
        "Reason",
        "Object",
        "Message",
    ]
    assert events["rows"][0]["cells"][1:5] == [
        "Normal",
        "Scaled",
        "rediscluster/cart",
        "masters=3->6",
    ]
    crds = raw(api, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", TABLE)
    assert [c["name"] for c in crds["columnDefinitions"]] == ["Name", "Created At"]
    namespaces = raw(api, "/api/v1/namespaces", TABLE)
    assert ["default", "Active"] in [r["cells"][:2] for r in namespaces["rows"]]
    config = raw(api, "/api/v1/namespaces/default/configmaps", TABLE)
    assert [c["name"] for c in config["columnDefinitions"]] == ["Name", "Age"]


def test_ages_and_json_paths_read_as_kubectl_shows_them() -> None:
    cases = [(0, "0s"), (119, "119s"), (200, "3m20s"), (600, "10m"), (3 * 3600 + 300, "3h5m")]
    cases += [(30 * 3600, "30h"), (3 * 86400 + 4 * 3600, "3d4h"), (40 * 86400, "40d")]
    cases += [(-5, "<invalid>"), (800 * 86400, "2y70d")]
    assert [human_duration(s) for s, _ in cases] == [want for _, want in cases]
    obj = {
        "status": {
            "conditions": [
                {"type": "Scaling", "status": "False"},
                {"type": "Ready", "status": "True"},
            ]
        }
    }
    assert json_path(obj, '.status.conditions[?(@.type=="Ready")].status') == "True"
    assert json_path(obj, ".status.conditions[0].type") == "Scaling"
    assert json_path(obj, ".status.missing.deeper") is None


def test_protobuf_and_cbor_bodies_are_unsupported_media(kube: KubeHarness) -> None:
    for media in ("application/vnd.kubernetes.protobuf", "application/cbor"):
        request = urllib.request.Request(
            f"{kube.url}/api/v1/namespaces",
            data=b"k8s\x00\x0a\x0f",
            method="POST",
            headers={"Content-Type": media, "Authorization": f"Bearer {kube.admin_token}"},
        )
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(request, timeout=5)
        body = json.loads(exc.value.read())
        assert (exc.value.code, body["reason"]) == (415, "UnsupportedMediaType")
        assert body["message"].endswith(f'got "{media}"')


# ---- OpenAPI v3 and HTTPS ------------------------------------------------------------
def test_openapi_v3_declares_field_validation_on_every_patch(api: Any) -> None:
    root = raw(api, "/openapi/v3")
    assert {"api/v1", f"apis/{GROUP}/{VERSION}", "apis/policy/v1"} <= set(root["paths"])
    url = root["paths"][f"apis/{GROUP}/{VERSION}"]["serverRelativeURL"]
    path, _, query = url.partition("?")
    doc = raw(api, path, hash=query.removeprefix("hash="))
    item = doc["paths"][f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/redisclusters/{{name}}"]
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": GROUP,
        "version": VERSION,
        "kind": "RedisCluster",
    }
    assert "fieldValidation" in [p["name"] for p in patch["parameters"] if p["in"] == "query"]
    schema = doc["components"]["schemas"]["dev.headroom.v1alpha1.RedisCluster"]
    assert schema["properties"]["spec"]["properties"]["masters"]["minimum"] == 3
    core = raw(api, "/openapi/v3/api/v1")
    ns_patch = core["paths"]["/api/v1/namespaces/{name}"]["patch"]
    assert ns_patch["x-kubernetes-group-version-kind"]["kind"] == "Namespace"
    assert get_raw(api, "/openapi/v3/apis/nothing.example/v1")[0] == 404
    assert get_raw(api, "/openapi/v2")[0] == 404  # kubectl does without it once v3 is served


def test_https_listener_serves_the_same_api_and_survives_restarts(
    kube: KubeHarness, tmp_path: Any
) -> None:
    token = kube.user_token("nobody")
    path = kube.kubeconfig(tmp_path / "kubeconfig", tls=True)
    assert kube.server.tls_url.startswith("https://127.0.0.1:")
    ca = tmp_path / "ca.crt"
    ca.write_bytes(kube.enable_tls())

    def over_tls(token: str) -> Any:
        cfg = client_configuration(kube.server.tls_url, token)
        cfg.ssl_ca_cert = str(ca)
        return kube.track(client.ApiClient(cfg))

    admin = k8s.CoreV1Api(over_tls(kube.admin_token))
    admin.create_namespaced_config_map("default", {"metadata": {"name": "over-tls"}})
    assert "over-tls" in [
        c.metadata.name for c in admin.list_namespaced_config_map("default").items
    ]
    with pytest.raises(ApiException) as exc:
        k8s.CoreV1Api(over_tls(token)).list_namespaced_config_map("default")
    assert exc.value.status == 403  # RBAC is the same on both listeners
    port = kube.server.tls_port
    with kube.api_down():
        pass
    assert kube.server.tls_port == port
    assert admin.read_namespaced_config_map("over-tls", "default").metadata.name == "over-tls"
    assert "certificate-authority-data" in path.read_text()
