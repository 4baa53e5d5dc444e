"""ScaledObjectFloorTarget against the API emulator with a KEDA ScaledObject CRD: the
floor (``spec.minReplicaCount``) goes up ahead of an event and back to the user's own
value afterwards, nothing else in the ScaledObject or the workload is written, ``ready``
is the workload's, KEDA's defaults apply to unset fields, and a ScaledObject Headroom
cannot use is a one-line error. No KEDA controller runs: where a test needs the replicas
KEDA's HPA would add, it scales the Deployment itself."""

from __future__ import annotations

from typing import Any

import pytest

from headroom.controller import assembly
from headroom.controller.kube import Kube
from headroom.controller.targets.hpa_floor import APPLIED, UNITS, USER_FLOOR
from headroom.controller.targets.keda_floor import ScaledObjectFloorTarget
from headroom.controller.targets.scale_subresource import ObjectRef, ScaleSubresourceTarget
from headroom.policies.errors import ConflictError, KubernetesError
from headroom.policies.policy import parse_policy
from tests.harness.harness import KubeHarness
from tests.harness.kubelet import Kubelet
from tests.support.chart import of_kind, render_chart
from tests.targets.support import (
    NS,
    SCALED_OBJECT_CRD,
    SO_GROUP,
    SO_VERSION,
    patches,
    scaled_object,
    wait_for,
    wait_status,
    workload,
)

pytestmark = pytest.mark.k8s


def _so(kube: KubeHarness, name: str = "web") -> dict[str, Any]:
    obj = kube.get(f"{SO_GROUP}/{SO_VERSION}", "ScaledObject", name, NS)
    assert obj is not None
    return obj


def _world(kube: KubeHarness, so: dict[str, Any], replicas: int = 2) -> None:
    kube.apply(SCALED_OBJECT_CRD)
    kube.apply(workload("Deployment", "web", replicas))
    kube.apply(so)


def test_floor_rises_then_restores_and_nothing_else_is_written(
    kube: KubeHarness, kubelet: Kubelet, api: Kube
) -> None:
    _world(kube, scaled_object("web", "web", min_count=1, max_count=10))
    target = ScaledObjectFloorTarget(api, "web", NS)
    assert target.name == f"scaledobject/{NS}/web"
    status = wait_status(target, lambda s: s.ready == 2, 10, "2 ready")
    assert (status.desired, status.busy) == (1, False)  # never touched: the user's floor
    before = _so(kube)

    target.scale(6, "sale at 20:00")
    after = _so(kube)
    assert after["spec"] == {**before["spec"], "minReplicaCount": 6}  # only the floor
    notes = after["metadata"].get("annotations") or {}
    assert notes == {USER_FLOOR: "1", APPLIED: "6", UNITS: "6"}
    dep = kube.get("apps/v1", "Deployment", "web", NS)
    assert dep is not None and dep["spec"]["replicas"] == 2  # KEDA's HPA brings the pods
    raised = target.status()
    assert (raised.desired, raised.ready, raised.busy) == (6, 2, True)
    assert raised.detail == "2/6 ready, floor 6 (user's 1)"
    target.scale(6, "again")
    assert patches(kube, "scaledobjects") == 1  # idempotent

    ScaleSubresourceTarget(api, ObjectRef("apps/v1", "Deployment", "web", NS)).scale(6, "hpa")
    wait_for(lambda: not target.status().busy, 15, "6 ready")
    assert target.status().ready == 6

    restarted = ScaledObjectFloorTarget(api, "web", NS)  # an operator restart
    assert (restarted.status().desired, restarted.user_floor()) == (6, 1)
    restarted.scale(0, "sale over")
    assert _so(kube)["spec"]["minReplicaCount"] == 1


def test_kedas_defaults_floor_zero_ceiling_100(kube: KubeHarness, api: Kube) -> None:
    _world(kube, scaled_object("web", "web", min_count=None), replicas=1)
    target = ScaledObjectFloorTarget(api, "web", NS)
    assert target.user_floor() == 0
    target.scale(150, "flash crowd")
    spec = _so(kube)["spec"]
    assert spec["minReplicaCount"] == 100 and "maxReplicaCount" not in spec
    assert "floor capped at maxReplicaCount 100" in target.status().detail
    target.scale(0, "over")
    assert _so(kube)["spec"]["minReplicaCount"] == 0


def test_conflicts_are_reread(kube: KubeHarness, api: Kube) -> None:
    _world(kube, scaled_object("web", "web", min_count=2))
    target = ScaledObjectFloorTarget(api, "web", NS)
    rule = kube.faults.fail(r"/scaledobjects/web$", status=409, times=2, methods="PATCH")
    target.scale(5, "test")
    assert rule.hits == 2 and _so(kube)["spec"]["minReplicaCount"] == 5
    kube.faults.fail(r"/scaledobjects/web$", status=409, times=None, methods="PATCH")
    with pytest.raises(ConflictError) as err:
        target.scale(7, "test")
    assert str(err.value).startswith(f"Failed to patch ScaledObject {NS}/web: 409")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ({}, f"ScaledObject {NS}/web: spec.scaleTargetRef.name is required"),
        ({"name": "ghost"}, f"Failed to read deployment/{NS}/ghost: 404 Not Found"),
        (
            {"name": "web", "kind": "StatefulSet"},
            f"Failed to read statefulset/{NS}/web: 404 Not Found",
        ),
    ],
)
def test_a_bad_scale_target_ref_is_a_one_line_error(
    kube: KubeHarness, api: Kube, ref: dict[str, str], message: str
) -> None:
    so = scaled_object("web", None, min_count=1)
    so["spec"]["scaleTargetRef"] = ref
    _world(kube, so)
    target = ScaledObjectFloorTarget(api, "web", NS)
    with pytest.raises(KubernetesError) as err:
        target.status()
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    if not ref:  # a ScaledObject without a target is not written either
        with pytest.raises(KubernetesError, match="scaleTargetRef.name is required"):
            target.scale(4, "test")
        assert patches(kube, "scaledobjects") == 0


def test_missing_scaled_object_is_a_one_line_error(kube: KubeHarness, api: Kube) -> None:
    kube.apply(SCALED_OBJECT_CRD)
    kube.ensure_namespace(NS)
    with pytest.raises(KubernetesError) as err:
        ScaledObjectFloorTarget(api, "ghost", NS).scale(3, "test")
    assert str(err.value).startswith(f"Failed to read ScaledObject {NS}/ghost: 404 Not Found")


def test_a_policy_builds_it_and_the_chart_grants_exactly_its_rules(api: Kube) -> None:
    spec = parse_policy(
        {
            "name": "keda",
            "targets": [
                {"name": "web", "kind": "ScaledObject", "namespace": NS, "capacityPerUnit": 50}
            ],
        }
    )
    built = assembly.build_targets(spec, assembly.World(kube=api))
    assert isinstance(built["web"], ScaledObjectFloorTarget)
    assert built["web"].name == f"scaledobject/{NS}/web"
    floor = {"apiGroups": ["keda.sh"], "resources": ["scaledobjects"], "verbs": ["get", "patch"]}
    assert floor in assembly.required_rules(spec.targets[0])
    granted = [
        rule
        for role in of_kind(render_chart({"rbac": {"clusterWide": True}}), "Role", "ClusterRole")
        for rule in role.get("rules") or []
        if "keda.sh" in rule["apiGroups"]
    ]
    assert granted == [floor]
