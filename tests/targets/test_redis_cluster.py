"""RedisClusterTarget against the API emulator with the chart's RedisCluster CRD: masters
through /scale, ready from status.readyMasters, busy (and no stacked order) while the
status says a migration or scaling is under way. No operator runs here: each test writes
the status the RedisCluster controller would (its own e2e tests cover the controller)."""

from __future__ import annotations

from typing import Any

import pytest

from headroom.controller.kube import GROUP, VERSION, Kube
from headroom.controller.targets.base import ScaleStatus, TargetBusy
from headroom.controller.targets.redis_cluster import RedisClusterTarget
from headroom.policies.errors import ConflictError, KubernetesError
from tests.harness.harness import KubeHarness
from tests.support.chart import chart_crd
from tests.targets.support import NS, patches

pytestmark = pytest.mark.k8s
PLURAL = "redisclusters"
NOW = "2026-12-02T01:00:00Z"


def _setup(kube: KubeHarness, masters: int = 3) -> None:
    kube.apply(chart_crd("redisclusters.headroom.dev"))
    kube.apply(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RedisCluster",
            "metadata": {"name": "cart", "namespace": NS},
            "spec": {"masters": masters},
        }
    )


def _obj(kube: KubeHarness) -> dict[str, Any]:
    obj = kube.get(f"{GROUP}/{VERSION}", "RedisCluster", "cart", NS)
    assert obj is not None
    return obj


def _operator_reports(
    api: Kube,
    kube: KubeHarness,
    *,
    phase: str,
    ready: int,
    scaling: bool = False,
    migration: dict[str, Any] | None = None,
) -> None:
    """The status the RedisCluster controller writes, observing the current generation."""
    status: dict[str, Any] = {
        "phase": phase,
        "masters": ready,
        "readyMasters": ready,
        "observedGeneration": _obj(kube)["metadata"]["generation"],
        "migration": migration,
        "conditions": [
            {
                "type": "Scaling",
                "status": "True" if scaling else "False",
                "reason": "Migrating" if scaling else "Converged",
                "message": "moving slots" if scaling else "",
                "lastTransitionTime": NOW,
            }
        ],
    }
    api.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, NS, PLURAL, "cart", {"status": status}
    )


def test_scales_masters_and_refuses_to_stack_orders_while_migrating(
    kube: KubeHarness, api: Kube
) -> None:
    _setup(kube)
    target = RedisClusterTarget(api, "cart", NS)
    assert target.name == f"redis/{NS}/cart"
    # Not yet seen by the operator: busy, so the loop waits for it to form.
    assert target.status() == ScaleStatus(3, 0, True, "spec not yet observed by the operator")
    _operator_reports(api, kube, phase="Ready", ready=3)
    assert target.status() == ScaleStatus(3, 3, False, "")

    target.scale(6, "livestream at 20:00")
    assert _obj(kube)["spec"]["masters"] == 6
    assert patches(kube, PLURAL, "scale") == 1
    # The operator has not observed generation 2 yet: busy, and a new size is refused.
    assert target.status().busy
    with pytest.raises(TargetBusy) as err:
        target.scale(9, "bigger")
    assert err.value.retry_after == 30.0
    assert "not scaling to 9 masters while the last change (6 masters) converges" in str(err.value)
    target.scale(6, "same size again")  # idempotent even while busy
    assert patches(kube, PLURAL, "scale") == 1

    migrating = {"fromMasters": 3, "toMasters": 6, "slotsLeft": 5461}
    _operator_reports(api, kube, phase="Scaling", ready=3, scaling=True, migration=migrating)
    assert target.status() == ScaleStatus(6, 3, True, "migrating 3->6 masters, 5461 slots left")
    with pytest.raises(TargetBusy, match="migrating 3->6 masters, 5461 slots left"):
        target.scale(9, "bigger")
    assert _obj(kube)["spec"]["masters"] == 6

    _operator_reports(api, kube, phase="Scaling", ready=5, scaling=True)
    assert target.status() == ScaleStatus(6, 5, True, "Scaling: moving slots")
    _operator_reports(api, kube, phase="Ready", ready=6)
    assert target.status() == ScaleStatus(6, 6, False, "")
    target.scale(9, "bigger")  # converged: the next order goes through
    assert _obj(kube)["spec"]["masters"] == 9


@pytest.mark.parametrize("phase", ["Forming", "Scaling"])
def test_busy_phases(kube: KubeHarness, api: Kube, phase: str) -> None:
    _setup(kube)
    _operator_reports(api, kube, phase=phase, ready=1)
    status = RedisClusterTarget(api, "cart", NS).status()
    assert status.busy and status.detail == phase and status.ready == 1


def test_conflict_rereads_and_a_status_change_is_seen(kube: KubeHarness, api: Kube) -> None:
    _setup(kube)
    _operator_reports(api, kube, phase="Ready", ready=3)
    target = RedisClusterTarget(api, "cart", NS)
    rule = kube.faults.fail(r"/redisclusters/cart/scale$", status=409, times=2, methods="PATCH")
    target.scale(4, "test")
    assert rule.hits == 2 and _obj(kube)["spec"]["masters"] == 4

    # The write is conditional on the reading the busy check saw: a status change in
    # between (the operator started a migration) is a 409, and the re-read refuses.
    _operator_reports(api, kube, phase="Ready", ready=4)
    seen = target.scale_api.read()
    _operator_reports(api, kube, phase="Scaling", ready=4, scaling=True)
    with pytest.raises(ConflictError):
        target.scale_api.scale_once(7, "stale", seen=seen)
    with pytest.raises(TargetBusy):
        target.scale(7, "fresh")
    assert _obj(kube)["spec"]["masters"] == 4


def test_schema_minimum_is_a_one_line_error_naming_the_field(kube: KubeHarness, api: Kube) -> None:
    _setup(kube)
    _operator_reports(api, kube, phase="Ready", ready=3)
    with pytest.raises(KubernetesError) as err:
        RedisClusterTarget(api, "cart", NS).scale(2, "too small")
    message = str(err.value)
    assert "\n" not in message and "spec.masters" in message and "422" in message
    assert _obj(kube)["spec"]["masters"] == 3
