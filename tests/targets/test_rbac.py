"""The scale targets under RBAC: with only the rules :func:`assembly.required_rules`
declares (bound to a ServiceAccount in the emulator, which enforces them), every target
reads and scales; without one verb the error is the API's one-line 403. When the chart
grants these rules (its CapacityPolicy RBAC), the same run uses the chart's own
ServiceAccount; until then that test is skipped and says why."""

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
    hpa,
    machine_deployment,
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
    """Every target: read, scale to 4 (the HPA floor and RedisCluster too), read again."""
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
    assert _exercise(targets) == {"web": 4, "db": 4, "api": 4, "cart": 4, "edge": 4}
    denied = [r for r in kube.audit if r.code == 403]
    assert not denied, denied


@pytest.mark.parametrize(
    ("resource", "verb", "target"),
    [
        ("deployments/scale", "patch", "web"),
        ("horizontalpodautoscalers", "patch", "api"),
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


def test_with_the_charts_own_rbac(kube: KubeHarness) -> None:
    """The chart's operator ServiceAccount sizes every built-in kind (a Cluster API kind
    only if the chart was told to grant it, which the default values do not)."""
    rendered = render_chart({"rbac": {"clusterWide": True}})
    bound = {  # the roles bound to the operator's ServiceAccount, not the users' ones
        (b["roleRef"]["kind"], b["roleRef"]["name"])
        for b in of_kind(rendered, "RoleBinding", "ClusterRoleBinding")
        if any(sub.get("kind") == "ServiceAccount" for sub in b.get("subjects") or [])
    }
    granted = [
        rule
        for role in of_kind(rendered, "Role", "ClusterRole")
        if (role["kind"], role["metadata"]["name"]) in bound
        for rule in role.get("rules") or []
    ]
    full = _spec()
    covered = [
        t for t in full.targets if all(_covers(granted, r) for r in assembly.required_rules(t))
    ]
    missing = sorted({t.kind.value for t in full.targets} - {t.kind.value for t in covered})
    if set(missing) - {"Scale"}:
        pytest.skip(f"the chart does not grant the rules of these kinds yet: {missing}")
    spec = full.model_copy(update={"targets": covered})
    access = install_chart(kube, {"rbac": {"clusterWide": True}})  # the targets are in NS
    _world(kube)
    targets = assembly.build_targets(spec, assembly.World(kube=Kube(kube.api_client(access.token))))
    assert set(_exercise(targets).values()) == {4}
