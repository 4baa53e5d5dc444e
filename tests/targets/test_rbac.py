"""The scale targets under RBAC: with only the rules :func:`assembly.required_rules`
declares (bound to a ServiceAccount in the emulator, which enforces them), every target
reads and scales; without one verb the error is the API's one-line 403. The rendered
chart grants every one of those rules (a Cluster API kind through
``rbac.scaleTargets``), and the same run passes with the chart's own ServiceAccount."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from headroom.controller import assembly
from headroom.controller.kube import GROUP, VERSION, Kube
from headroom.controller.targets.base import ScaleTarget
from headroom.policies.errors import KubernetesError
from headroom.policies.policy import PolicySpec, parse_policy
from tests.harness.chart_install import install_chart
from tests.harness.harness import KubeHarness
from tests.support.chart import chart_crd, of_kind, render_chart
from tests.targets.support import (
    MACHINE_DEPLOYMENT_CRD,
    MD_GROUP,
    MD_VERSION,
    NS,
    SCALED_OBJECT_CRD,
    hpa,
    machine_deployment,
    scaled_object,
    workload,
)

pytestmark = pytest.mark.k8s
Rule = dict[str, Any]


def _spec() -> PolicySpec:
    base = {"namespace": NS, "capacityPerUnit": 100, "minUnits": 1, "maxUnits": 20}
    return parse_policy(
        {
            "name": "rbac",
            "targets": [
                {**base, "name": "web", "kind": "Deployment"},
                {**base, "name": "db", "kind": "StatefulSet"},
                {**base, "name": "api", "kind": "HorizontalPodAutoscaler"},
                {**base, "name": "cart", "kind": "RedisCluster", "minUnits": 3},
                {**base, "name": "jobs", "kind": "ScaledObject"},
                {
                    **base,
                    "name": "edge",
                    "kind": "Scale",
                    "apiVersion": f"{MD_GROUP}/{MD_VERSION}",
                    "scaleKind": "MachineDeployment",
                },
            ],
        }
    )


def _world(kube: KubeHarness) -> None:
    kube.apply(workload("Deployment", "web", 1))
    kube.apply(workload("StatefulSet", "db", 1))
    kube.apply(workload("Deployment", "api", 1))
    kube.apply(hpa("api", "api", min_replicas=1, max_replicas=20))
    kube.apply(workload("Deployment", "jobs", 1))
    kube.apply(SCALED_OBJECT_CRD)
    kube.apply(scaled_object("jobs", "jobs", min_count=1))
    kube.apply(chart_crd("redisclusters.headroom.dev"))
    kube.apply(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RedisCluster",
            "metadata": {"name": "cart", "namespace": NS},
            "spec": {"masters": 3},
        }
    )
    cart = kube.get(f"{GROUP}/{VERSION}", "RedisCluster", "cart", NS)
    assert cart is not None
    status = {"phase": "Ready", "masters": 3, "readyMasters": 3}
    status["observedGeneration"] = cart["metadata"]["generation"]  # the operator formed it
    kube.store.update(
        kube.store.type(GROUP, "redisclusters"),
        NS,
        "cart",
        {**cart, "status": status},
        subresource="status",
        internal=True,
    )
    kube.apply(MACHINE_DEPLOYMENT_CRD)
    kube.apply(machine_deployment("edge", 1))


def _required(spec: PolicySpec) -> list[Rule]:
    return [rule for t in spec.targets for rule in assembly.required_rules(t)]


def _bind(kube: KubeHarness, rules: list[Rule], name: str = "targets") -> str:
    """A Role with ``rules`` in NS, bound to ServiceAccount headroom/NAME; its token."""
    token = kube.service_account_token("headroom", name)
    kube.apply(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": NS},
                "rules": rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": NS},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "headroom"}],
            },
        ]
    )
    return token


def _exercise(targets: dict[str, ScaleTarget]) -> dict[str, int]:
    """Every target: read, scale to 4 (the floors and RedisCluster too), read again."""
    sizes = {}
    for name, target in targets.items():
        target.status()
        target.scale(4, "rbac test")
        sizes[name] = target.status().desired
    return sizes


def _covers(granted: list[Rule], wanted: Rule) -> bool:
    def has(values: list[str] | None, value: str) -> bool:
        return bool(values) and ("*" in values or value in values)  # type: ignore[operator]

    return all(
        any(
            has(g.get("apiGroups"), group)
            and has(g.get("resources"), resource)
            and all(has(g.get("verbs"), verb) for verb in wanted["verbs"])
            and not g.get("resourceNames")
            for g in granted
        )
        for group in wanted["apiGroups"]
        for resource in wanted["resources"]
    )


def test_targets_work_with_exactly_the_declared_rules(kube: KubeHarness) -> None:
    spec = _spec()
    _world(kube)
    token = _bind(kube, _required(spec))
    targets = assembly.build_targets(spec, assembly.World(kube=Kube(kube.api_client(token))))
    assert _exercise(targets) == {"web": 4, "db": 4, "api": 4, "cart": 4, "jobs": 4, "edge": 4}
    denied = [r for r in kube.audit if r.code == 403]
    assert not denied, denied


@pytest.mark.parametrize(
    ("resource", "verb", "target"),
    [
        ("deployments/scale", "patch", "web"),
        ("horizontalpodautoscalers", "patch", "api"),
        ("scaledobjects", "patch", "jobs"),
        ("scaledobjects", "get", "jobs"),
        ("redisclusters/scale", "patch", "cart"),
        ("machinedeployments", "get", "edge"),
    ],
)
def test_a_missing_verb_is_a_one_line_403(
    kube: KubeHarness, resource: str, verb: str, target: str
) -> None:
    spec = _spec()
    _world(kube)
    rules = _required(spec)
    for rule in rules:
        if resource in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
    token = _bind(kube, rules)
    built = assembly.build_targets(spec, assembly.World(kube=Kube(kube.api_client(token))))
    act: Callable[[], object] = (
        built[target].status if verb == "get" else lambda: built[target].scale(4, "rbac")
    )
    with pytest.raises(KubernetesError) as err:
        act()
    message = str(err.value)
    assert "\n" not in message and "403 Forbidden" in message
    assert f'cannot {verb} resource "{resource}"' in message


CHART_VALUES = {  # cluster-wide: the targets live in NS, not the release namespace
    "rbac": {
        "clusterWide": True,
        "scaleTargets": [{"apiGroup": MD_GROUP, "resource": "machinedeployments"}],
    }
}


def _operator_rules(values: dict[str, Any]) -> list[Rule]:
    """The rules of the roles the rendered chart binds to a ServiceAccount (not the
    aggregated roles for users)."""
    rendered = render_chart(values)
    bound = {
        (b["roleRef"]["kind"], b["roleRef"]["name"])
        for b in of_kind(rendered, "RoleBinding", "ClusterRoleBinding")
        if any(sub.get("kind") == "ServiceAccount" for sub in b.get("subjects") or [])
    }
    return [
        rule
        for role in of_kind(rendered, "Role", "ClusterRole")
        if (role["kind"], role["metadata"]["name"]) in bound
        for rule in role.get("rules") or []
    ]


def test_the_chart_grants_every_targets_rules() -> None:
    granted = _operator_rules(CHART_VALUES)
    assert [r for r in _required(_spec()) if not _covers(granted, r)] == []
    # A Cluster API kind only when the values name it.
    default = _operator_rules({"rbac": {"clusterWide": True}})
    missing = [r for r in _required(_spec()) if not _covers(default, r)]
    assert {g for r in missing for g in r["apiGroups"]} == {MD_GROUP}


def test_targets_work_with_the_charts_own_service_account(kube: KubeHarness) -> None:
    access = install_chart(kube, CHART_VALUES)
    _world(kube)
    targets = assembly.build_targets(
        _spec(), assembly.World(kube=Kube(kube.api_client(access.token)))
    )
    assert _exercise(targets) == {"web": 4, "db": 4, "api": 4, "cart": 4, "jobs": 4, "edge": 4}
    operator = [r for r in kube.audit if "headroom" in r.user]
    assert operator and not [r for r in operator if r.code == 403]
