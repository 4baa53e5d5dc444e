"""HpaFloorTarget against the API emulator: the floor goes up ahead of an event and back
to the user's own value afterwards, the user's value survives a restart (a new
instance), a user edit becomes the new user floor, maxReplicas is never raised, 409s are
re-read and retried. The emulator has no HPA controller: where a test needs the replicas
an HPA would add, it scales the Deployment itself, as the HPA controller would."""

from __future__ import annotations

from typing import Any

import pytest

from headroom.controller.kube import Kube
from headroom.controller.targets.hpa_floor import APPLIED, UNITS, USER_FLOOR, HpaFloorTarget
from headroom.controller.targets.scale_subresource import ObjectRef, ScaleSubresourceTarget
from headroom.policies.errors import ConflictError, InputError, KubernetesError
from tests.harness.harness import KubeHarness
from tests.harness.kubelet import Kubelet
from tests.targets.support import NS, hpa, patches, wait_for, wait_status, workload

pytestmark = pytest.mark.k8s


def _hpa(kube: KubeHarness, name: str = "web") -> dict[str, Any]:
    obj = kube.get("autoscaling/v2", "HorizontalPodAutoscaler", name, NS)
    assert obj is not None
    return obj


def _min(kube: KubeHarness) -> int:
    return int(_hpa(kube)["spec"]["minReplicas"])


def _user_edits_min(kube: KubeHarness, value: int) -> None:
    """``kubectl edit hpa web``: minReplicas changed, Headroom's annotations kept."""
    obj = _hpa(kube)
    obj["spec"]["minReplicas"] = value
    kube.apply(obj)


def _hpa_controller_follows(api: Kube, kube: KubeHarness) -> None:
    """What the HPA controller would do once the floor rose: replicas up to minReplicas."""
    scale = ScaleSubresourceTarget(api, ObjectRef("apps/v1", "Deployment", "web", NS))
    scale.scale(max(_min(kube), scale.status().desired), "hpa controller (test)")


def test_floor_rises_then_restores_the_users_value_after_a_restart(
    kube: KubeHarness, kubelet: Kubelet, api: Kube
) -> None:
    kube.apply(workload("Deployment", "web", 2))
    kube.apply(hpa("web", "web", min_replicas=2, max_replicas=20))
    target = HpaFloorTarget(api, "web", NS)
    assert target.name == f"hpa/{NS}/web"
    status = wait_status(target, lambda s: s.ready == 2, 10, "2 ready")
    assert (status.desired, status.busy) == (2, False)  # never touched: the user's floor

    target.scale(8, "livestream at 20:00")
    obj = _hpa(kube)
    assert obj["spec"]["minReplicas"] == 8
    notes = obj["metadata"]["annotations"]
    assert (notes[USER_FLOOR], notes[APPLIED], notes[UNITS]) == ("2", "8", "8")
    # Headroom never touches the Deployment: the HPA controller brings the pods.
    dep = kube.get("apps/v1", "Deployment", "web", NS)
    assert dep is not None and dep["spec"]["replicas"] == 2
    raised = target.status()
    assert raised.desired == 8 and raised.busy and raised.ready == 2
    assert raised.detail == "2/8 ready, floor 8 (user's 2)"
    _hpa_controller_follows(api, kube)
    wait_for(lambda: target.status().ready == 8, 15, "8 ready")
    assert not target.status().busy

    # The operator restarts: a new instance (no state shared with the old one) knows the
    # user's floor from the annotation.
    after = HpaFloorTarget(api, "web", NS)
    assert after.status().desired == 8
    assert after.user_floor() == 2
    after.scale(1, "event over")  # asking below the user's floor restores the floor
    assert _min(kube) == 2
    assert after.status().desired == 1  # what was asked; the floor held is the user's
    after.scale(1, "again")
    assert patches(kube, "horizontalpodautoscalers") == 2  # idempotent


def test_units_below_the_hpa_replicas_are_fine(
    kube: KubeHarness, kubelet: Kubelet, api: Kube
) -> None:
    """The HPA scaled out above the floor on its own; a lower floor order does not fight it."""
    kube.apply(workload("Deployment", "web", 9))
    kube.apply(hpa("web", "web", min_replicas=2, max_replicas=20))
    target = HpaFloorTarget(api, "web", NS)
    target.scale(4, "prewarm")
    assert _min(kube) == 4
    dep = kube.get("apps/v1", "Deployment", "web", NS)
    assert dep is not None and dep["spec"]["replicas"] == 9  # the HPA's 9 stay
    status = wait_status(target, lambda s: s.ready == 9, 15, "9 ready")
    assert (status.desired, status.ready, status.busy) == (4, 9, False)


def test_user_edit_becomes_the_new_user_floor(kube: KubeHarness, api: Kube) -> None:
    kube.apply(workload("Deployment", "web", 2))
    kube.apply(hpa("web", "web", min_replicas=2, max_replicas=20))
    target = HpaFloorTarget(api, "web", NS)
    target.scale(10, "promotion")

    # A GitOps re-apply lowers the floor mid-event: the loop sees it and re-orders.
    _user_edits_min(kube, 3)
    status = target.status()
    assert status.desired == 3 and "minReplicas edited to 3" in status.detail
    assert target.user_floor() == 3
    target.scale(10, "promotion")  # the loop's next pass: event floor back, user's 3 kept
    notes = _hpa(kube)["metadata"]["annotations"]
    assert (_min(kube), notes[USER_FLOOR]) == (10, "3")
    target.scale(2, "event over")
    assert _min(kube) == 3  # the user's new value, not the one before

    # A user raising the floor above Headroom's order keeps it.
    _user_edits_min(kube, 12)
    target.scale(6, "smaller event")
    assert _min(kube) == 12 and target.user_floor() == 12
    assert target.status().desired == 6
    target.scale(1, "over")
    assert _min(kube) == 12


def test_floor_is_capped_at_max_replicas_and_unset_min_means_one(
    kube: KubeHarness, api: Kube
) -> None:
    kube.apply(workload("Deployment", "web", 1))
    kube.apply(hpa("web", "web", min_replicas=None, max_replicas=6))
    target = HpaFloorTarget(api, "web", NS)
    assert target.user_floor() == 1
    target.scale(9, "big event")
    obj = _hpa(kube)
    assert obj["spec"]["minReplicas"] == 6 and obj["spec"]["maxReplicas"] == 6
    assert "floor capped at maxReplicas 6" in target.status().detail
    target.scale(0, "over")
    assert _min(kube) == 1
    with pytest.raises(InputError, match="units must be 0 or more"):
        target.scale(-2, "bad")


def test_conflict_is_reread_and_the_users_concurrent_edit_kept(
    kube: KubeHarness, api: Kube
) -> None:
    kube.apply(workload("Deployment", "web", 2))
    kube.apply(hpa("web", "web", min_replicas=2, max_replicas=20))
    target = HpaFloorTarget(api, "web", NS)
    rule = kube.faults.fail(r"/horizontalpodautoscalers/web$", status=409, times=2, methods="PATCH")
    target.scale(7, "test")
    assert rule.hits == 2 and _min(kube) == 7

    # A real race: the user edits between our read and our write -> 409 -> re-read sees it.
    stale = target.read_object()
    _user_edits_min(kube, 4)
    body = {"metadata": {"resourceVersion": stale["metadata"]["resourceVersion"]}}
    with pytest.raises(Exception, match="409"):
        api.autoscaling.patch_namespaced_horizontal_pod_autoscaler("web", NS, body)
    target.scale(7, "test")
    assert _min(kube) == 7 and target.user_floor() == 4

    kube.faults.fail(r"/horizontalpodautoscalers/web$", status=409, times=None, methods="PATCH")
    with pytest.raises(ConflictError) as err:
        target.scale(9, "test")
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(f"Failed to patch HorizontalPodAutoscaler {NS}/web: 409")


def test_missing_hpa_is_a_one_line_error(kube: KubeHarness, api: Kube) -> None:
    kube.ensure_namespace(NS)
    with pytest.raises(KubernetesError) as err:
        HpaFloorTarget(api, "ghost", NS).scale(3, "test")
    assert str(err.value).startswith(
        f"Failed to read HorizontalPodAutoscaler {NS}/ghost: 404 Not Found"
    )
