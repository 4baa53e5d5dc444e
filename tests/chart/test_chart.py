"""The Helm chart rendered offline: valid Kubernetes objects, strict values, secure defaults."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
from kubernetes import client
from kubernetes.client import ApiException

from tests.harness.harness import KubeHarness
from tests.support.chart import (
    CHART_DIR,
    ChartError,
    chart_crd,
    example,
    of_kind,
    render_chart,
    render_manifests,
    validate_values,
)
from tests.support.image import REPO_ROOT, version

k8s: Any = client
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas
# kubernetes-validate ships.
KUBE_VERSIONS = ("1.25", kubernetes_validate.utils.latest_version())
VALUE_SETS: dict[str, dict[str, Any] | None] = {
    "defaults": None,
    "cluster-wide": {"rbac": {"clusterWide": True}},
    "two-replicas": {"operator": {"replicaCount": 2}},
    "everything-on": {
        "rbac": {
            "clusterWide": True,
            "scaleTargets": [{"apiGroup": "cluster.x-k8s.io", "resource": "machinedeployments"}],
        },
        "operator": {
            "replicaCount": 2,
            "image": {"digest": "sha256:" + "ab" * 32},
            "extraArgs": ["--dry-run"],
            "extraEnv": [{"name": "HEADROOM_LOG", "value": "debug"}],
            "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
            "nodeSelector": {"kubernetes.io/os": "linux"},
        },
        "serviceAccount": {"annotations": {"iam.example/role": "headroom"}},
        "metrics": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
            "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
        },
        "networkPolicy": {
            "enabled": True,
            "extraFrom": [{"namespaceSelector": {"matchLabels": {"team": "shop"}}}],
        },
    },
}


def deployment(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (dep,) = of_kind(objs, "Deployment")
    return dep


@pytest.mark.parametrize("name", VALUE_SETS)
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_rendered_object_passes_kubernetes_validate_strict(
    name: str, kube_version: str
) -> None:
    objs = render_chart(VALUE_SETS[name])
    unvalidated = []
    for obj in objs:
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unvalidated.append(obj)
    # Only the prometheus-operator kinds have no schema in kubernetes-validate; check a
    # ServiceMonitor's shape against the Service it scrapes instead (rules: below).
    assert sorted(o["kind"] for o in unvalidated) == (
        ["PrometheusRule", "ServiceMonitor"] if name == "everything-on" else []
    )
    for monitor in of_kind(unvalidated, "ServiceMonitor"):
        (svc,) = of_kind(objs, "Service")
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert (
            monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        )
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == [
            p["name"] for p in svc["spec"]["ports"]
        ]
        assert monitor["metadata"]["labels"]["release"] == "prom"


def test_kubernetes_validate_strict_does_catch_a_misspelt_field() -> None:
    dep = deployment(render_chart())
    dep["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="securityContxt"):
        kubernetes_validate.validate(dep, KUBE_VERSIONS[0], strict=True)


def test_helm_lint_strict_finds_no_error_or_warning() -> None:
    for values in VALUE_SETS.values():
        report = helm.lint(CHART_DIR, values, strict=True, namespace="headroom")
        assert report["errors"] == []
        # Severity 1 is info ("icon is recommended"); 2 warning, 3 error.
        assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"operator": {"replicaCount": "two"}},
            "at '/operator/replicaCount': got string, want integer",
        ),
        ({"replicaCount": 2}, "additional properties 'replicaCount' not allowed"),
        ({"operator": {"image": {"pullPolicy": "Sometimes"}}}, "/operator/image/pullPolicy"),
        ({"rbac": {"clusterwide": True}}, "additional properties 'clusterwide' not allowed"),
        ({"rbac": {"scaleTargets": [{"apiGroup": "x.io"}]}}, "/rbac/scaleTargets/0"),
        ({"rbac": {"scaleTargets": [{"apiGroup": "x", "resource": "Pods/*"}]}}, "resource"),
        ({"metrics": {"service": {"port": 70000}}}, "/metrics/service/port"),
        ({"operator": {"podsReadyDeadlineSeconds": 30}}, "/operator/podsReadyDeadlineSeconds"),
        ({"operator": {"podAddTimeoutSeconds": 1}}, "/operator/podAddTimeoutSeconds"),
        ({"networkPolicy": {"enable": True}}, "additional properties 'enable' not allowed"),
        ({"networkPolicy": {"clientLabels": {"tier": 1}}}, "/networkPolicy/clientLabels/tier"),
        (
            {"metrics": {"serviceMonitor": {"interval": "often"}}},
            "/metrics/serviceMonitor/interval",
        ),
    ],
)
def test_values_schema_rejects_bad_values_before_anything_renders(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ChartError, match="values don't meet the specifications") as exc:
        render_manifests(values)
    assert message in str(exc.value)
    with pytest.raises(ChartError) as exc:
        validate_values(values)
    assert message in str(exc.value)


def test_default_values_satisfy_the_schema() -> None:
    validate_values(None)
    for values in VALUE_SETS.values():
        validate_values(values)


def test_rendering_is_deterministic() -> None:
    for values in VALUE_SETS.values():
        first = render_manifests(values)
        assert all(render_manifests(values) == first for _ in range(3))


def test_operator_runs_locked_down() -> None:
    for values in VALUE_SETS.values():
        pod = deployment(render_chart(values))["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert "privileged" not in sc
        assert container["resources"]["requests"] and container["resources"]["limits"]
        probes = {
            kind: (container[kind]["httpGet"]["path"], container[kind]["httpGet"]["port"])
            for kind in ("livenessProbe", "readinessProbe")
        }
        assert probes == {
            "livenessProbe": ("/healthz", "metrics"),
            "readinessProbe": ("/readyz", "metrics"),
        }
        assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [("metrics", 8080)]
        env = {e["name"]: e for e in container["env"]}
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
        # The only writable path is an emptyDir for /tmp.
        assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]


def test_the_pods_ready_deadline_reaches_the_operator_in_seconds() -> None:
    """operator.podsReadyDeadlineSeconds is the operator's --pods-ready-deadline (its env)."""
    for values, seconds in (({}, "600"), ({"operator": {"podsReadyDeadlineSeconds": 900}}, "900")):
        (c,) = deployment(render_chart(values))["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["HEADROOM_PODS_READY_DEADLINE_SECONDS"] == seconds


def test_the_pod_add_timeout_reaches_the_operator_in_seconds() -> None:
    """operator.podAddTimeoutSeconds is the operator's --pod-add-timeout (its env)."""
    for values, seconds in (({}, "180"), ({"operator": {"podAddTimeoutSeconds": 600}}, "600")):
        (c,) = deployment(render_chart(values))["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["HEADROOM_POD_ADD_TIMEOUT_SECONDS"] == seconds


def test_operator_command_follows_the_rbac_scope() -> None:
    namespaced = deployment(render_chart(namespace="shop"))["spec"]["template"]["spec"]
    (c,) = namespaced["containers"]
    assert [*c["command"], *c["args"]] == ["headroom", "operator", "run", "--namespace", "shop"]
    assert namespaced["serviceAccountName"] == "headroom-operator"
    wide = deployment(
        render_chart({"rbac": {"clusterWide": True}, "operator": {"replicaCount": 2}})
    )
    (c,) = wide["spec"]["template"]["spec"]["containers"]
    assert [*c["command"], *c["args"]] == ["headroom", "operator", "run", "--all-namespaces"]
    assert wide["spec"]["replicas"] == 2
    lease = {e["name"]: e.get("value") for e in c["env"]}["HEADROOM_LEASE_NAME"]
    assert lease == "headroom-operator"
    (election,) = [
        r
        for r in of_kind(render_chart(), "Role")
        if r["metadata"]["name"].endswith("leader-election")
    ]
    assert any(lease in (rule.get("resourceNames") or []) for rule in election["rules"])


def test_replicas_prefer_different_nodes_unless_affinity_is_given() -> None:
    assert "affinity" not in deployment(render_chart())["spec"]["template"]["spec"]
    two = deployment(render_chart({"operator": {"replicaCount": 2}}))["spec"]["template"]
    (term,) = two["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    selector = term["podAffinityTerm"]["labelSelector"]["matchLabels"]
    assert selector.items() <= two["metadata"]["labels"].items()
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    mine = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["ops"]}]}
                ]
            }
        }
    }
    given = render_chart({"operator": {"replicaCount": 2, "affinity": mine}})
    assert deployment(given)["spec"]["template"]["spec"]["affinity"] == mine


def test_object_names_follow_the_release() -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in render_chart(release="cache")}
    assert ("Deployment", "cache-headroom-operator") in names
    assert ("CustomResourceDefinition", "redisclusters.headroom.dev") in names
    objs = render_chart({"fullnameOverride": "hr"}, namespace="ops")
    assert {o["metadata"]["name"] for o in of_kind(objs, "Deployment", "Service")} == {
        "hr-operator",
        "hr-operator-metrics",
    }
    assert {
        o["metadata"].get("namespace")
        for o in objs
        if o["kind"] not in ("CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding")
    } == {"ops"}


def test_crds_can_be_left_out_and_are_kept_on_uninstall() -> None:
    assert of_kind(render_chart({"crd": {"enable": False}}), "CustomResourceDefinition") == []
    crd = chart_crd("redisclusters.headroom.dev")
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_redis_cluster_crd_shape() -> None:
    crd = chart_crd("redisclusters.headroom.dev")
    spec = crd["spec"]
    assert (spec["group"], spec["scope"], spec["names"]["kind"], spec["names"]["shortNames"]) == (
        "headroom.dev",
        "Namespaced",
        "RedisCluster",
        ["rc"],
    )
    (version,) = spec["versions"]
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.masters",
            "statusReplicasPath": ".status.masters",
            "labelSelectorPath": ".status.selector",
        },
    }
    assert [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]] == [
        ("Masters", ".spec.masters"),
        ("Ready", ".status.readyMasters"),
        ("Phase", ".status.phase"),
        ("Pods", ".status.podsReady"),
        ("Reason", '.status.conditions[?(@.type=="Ready")].reason'),
        ("Age", ".metadata.creationTimestamp"),
    ]
    # The default kubectl get stays as it was; -o wide adds why a cluster is not Ready.
    wide = {c["name"] for c in version["additionalPrinterColumns"] if c.get("priority")}
    assert wide == {"Pods", "Reason"}


def test_sample_redis_cluster_is_admitted_by_the_chart_crd(kube: KubeHarness) -> None:
    kube.apply(of_kind(render_chart(), "CustomResourceDefinition"))
    custom = k8s.CustomObjectsApi(kube.api_client())
    sample = example("rediscluster-cart.yaml")
    assert (sample["metadata"]["name"], sample["spec"]["masters"]) == ("cart", 3)
    assert sample["spec"]["replicasPerMaster"] == 1
    created = custom.create_namespaced_custom_object(
        "headroom.dev", "v1alpha1", "default", "redisclusters", sample
    )
    assert created["spec"] == {**sample["spec"], "port": 6379}  # nothing pruned, port defaulted
    for bad, field in (
        ({"masters": 2}, "spec.masters"),
        ({"masters": 3, "replicasPerMaster": -1}, "spec.replicasPerMaster"),
        ({"masters": 3, "replicasPerMaster": 6}, "spec.replicasPerMaster"),
        ({"masters": 3, "port": 0}, "spec.port"),
        ({"masters": 3, "maxmemory": "256 MB"}, "spec.maxmemory"),
        (
            {"masters": 3, "resources": {"requests": {"memory": "lots"}}},
            "spec.resources.requests.memory",
        ),
    ):
        with pytest.raises(ApiException) as exc:
            custom.create_namespaced_custom_object(
                "headroom.dev",
                "v1alpha1",
                "default",
                "redisclusters",
                {**sample, "metadata": {"name": "bad"}, "spec": bad},
            )
        assert exc.value.status == 422
        causes = json.loads(exc.value.body or "{}")["details"]["causes"]
        assert [c["field"] for c in causes] == [field]
    for ok in ("1gb", "512K", "100", "256Mi", "1Gi", "2G"):
        custom.create_namespaced_custom_object(
            "headroom.dev",
            "v1alpha1",
            "default",
            "redisclusters",
            {
                **sample,
                "metadata": {"name": f"m-{ok.lower()}"},
                "spec": {"masters": 3, "maxmemory": ok},
            },
        )


def test_notes_tell_how_to_create_and_scale_a_cluster() -> None:
    notes = render_manifests(namespace="shop")["headroom/templates/NOTES.txt"]
    assert "kubectl scale rediscluster/cart -n shop --replicas 6" in notes
    assert "kubectl get secret cart-redis-auth -n shop" in notes
    assert "watches RedisClusters in namespace shop only" in notes
    wide = render_manifests({"rbac": {"clusterWide": True}})["headroom/templates/NOTES.txt"]
    assert "in every namespace" in wide


def test_the_chart_runs_the_image_the_containerfile_builds() -> None:
    """image.repository/tag name the image (the tag defaults to appVersion, the package
    version `make image` tags); the container's command is the image's entrypoint; the
    security contexts are what the image allows: its numeric USER as runAsUser/runAsGroup
    (runAsNonRoot needs a number to check), a read-only root filesystem with /tmp, the
    image's HOME and working directory, an emptyDir."""
    containerfile = (REPO_ROOT / "Containerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", containerfile, re.M)
    entrypoint = re.search(r"^ENTRYPOINT (.+)$", containerfile, re.M)
    assert user is not None and entrypoint is not None
    assert re.search(r"^WORKDIR /tmp$", containerfile, re.M)
    assert re.search(r"^\s+HOME=/tmp \\$", containerfile, re.M)

    default = deployment(render_chart())["spec"]["template"]["spec"]["containers"][0]
    assert default["image"] == f"headroom:{version()}"
    values = {"operator": {"image": {"repository": "registry.example/headroom", "tag": "9.9"}}}
    pod = deployment(render_chart(values))["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/headroom:9.9"
    assert container["command"] == json.loads(entrypoint[1])
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        int(user[1]),
        int(user[2]),
    )
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_healing_alerts_fire_on_series_the_operator_exports() -> None:
    """The PrometheusRule's expressions name gauges OperatorMetrics really serves, with the
    label they aggregate by; a SlotsLost cluster makes the critical one's series > 0."""
    from prometheus_client import generate_latest

    from headroom.controller.metrics import OperatorMetrics

    (rule,) = of_kind(
        render_chart({"metrics": {"prometheusRule": {"enabled": True}}}), "PrometheusRule"
    )
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {
        "HeadroomRedisClusterSlotsLost",
        "HeadroomRedisClusterNotHealed",
        "HeadroomRedisClusterPodsStuck",
    }
    assert alerts["HeadroomRedisClusterSlotsLost"]["labels"]["severity"] == "critical"
    assert alerts["HeadroomRedisClusterNotHealed"]["for"] == "10m"
    metrics = OperatorMetrics()
    metrics.set_cluster_damage("shop/cart", lost_nodes=1, slots_lost=5461)
    metrics.set_cluster_pods_stuck("shop/cart", 1)
    exposed = generate_latest(metrics.registry).decode()
    for alert in alerts.values():
        series = re.search(r"\((headroom_[a-z_]+)\)", alert["expr"])
        assert series is not None
        assert re.search(rf'^{series[1]}{{cluster="shop/cart"}} [1-9]', exposed, re.M), alert
    assert render_chart() and not of_kind(render_chart(), "PrometheusRule")  # off by default
