"""ScaleSubresourceTarget against the API emulator with the real ``kubernetes`` client:
a Deployment and a StatefulSet (pods made Ready by the kubelet emulator) and a CRD with
/scale shaped like Cluster API's MachineDeployment; conflicts, missing objects, bounds."""

from __future__ import annotations

import time

import pytest

from headroom.controller.kube import Kube, Retries
from headroom.controller.targets.base import ScaleStatus
from headroom.controller.targets.scale_subresource import ObjectRef, ScaleSubresourceTarget
from headroom.policies.errors import ConflictError, InputError, KubernetesError
from tests.harness.harness import KubeHarness
from tests.harness.kubelet import Kubelet
from tests.targets.support import (
    MACHINE_DEPLOYMENT_CRD,
    MD_GROUP,
    MD_PLURAL,
    MD_VERSION,
    NS,
    machine_deployment,
    patches,
    wait_for,
    wait_status,
    workload,
)

pytestmark = pytest.mark.k8s


@pytest.mark.parametrize(
    ("kind", "resource"), [("Deployment", "deployments"), ("StatefulSet", "statefulsets")]
)
def test_apps_workload_scales_and_reports_ready_pods(
    kube: KubeHarness, kubelet: Kubelet, api: Kube, kind: str, resource: str
) -> None:
    kube.apply(workload(kind, "web", 1))
    target = ScaleSubresourceTarget(api, ObjectRef("apps/v1", kind, "web", NS))
    assert target.name == f"{kind.lower()}/{NS}/web"
    assert wait_for(lambda: target.status() == ScaleStatus(1, 1, False, ""), 10, "1 pod ready")

    target.scale(4, "livestream at 20:00")
    first = target.status()
    assert first.desired == 4  # the order is visible at once, before the pods are
    obj = kube.get("apps/v1", kind, "web", NS)
    assert obj is not None and obj["spec"]["replicas"] == 4
    final = wait_status(target, lambda s: s.ready == 4 and not s.busy, 15, "4 ready")
    assert final == ScaleStatus(4, 4, False, "")
    # The write went through the scale subresource, once; asking again writes nothing.
    assert patches(kube, resource, "scale") == 1
    target.scale(4, "again")
    assert patches(kube, resource, "scale") == 1

    target.scale(2, "event over")
    assert wait_for(lambda: target.status() == ScaleStatus(2, 2, False, ""), 15, "2 ready")


def test_busy_while_pods_start(kube: KubeHarness, api: Kube) -> None:
    kube.start_kubelet(startup_delay=3.0)  # long enough on a busy machine
    kube.apply(workload("Deployment", "slow", 1))
    target = ScaleSubresourceTarget(api, ObjectRef("apps/v1", "Deployment", "slow", NS))
    wait_for(lambda: target.status().ready == 1, 10, "the first pod")
    target.scale(3, "test")
    status = target.status()
    assert status.busy and status.desired == 3 and status.ready < 3
    assert status.detail == f"{status.ready}/3 ready"
    wait_for(lambda: not target.status().busy, 15, "the new pods")


def test_custom_resource_with_scale_like_a_machine_deployment(kube: KubeHarness, api: Kube) -> None:
    kube.apply(MACHINE_DEPLOYMENT_CRD)
    kube.apply(machine_deployment("edge-workers", 2))
    ref = ObjectRef(f"{MD_GROUP}/{MD_VERSION}", "MachineDeployment", "edge-workers", NS)
    assert ref.resource == MD_PLURAL
    target = ScaleSubresourceTarget(api, ref)

    def controller_reports(replicas: int, ready: int) -> None:  # what Cluster API would write
        api.custom.patch_namespaced_custom_object_status(
            MD_GROUP, MD_VERSION, NS, MD_PLURAL, "edge-workers",
            {"status": {"replicas": replicas, "readyReplicas": ready}},
        )  # fmt: skip

    # No status yet: nothing ready, and a change is pending.
    assert target.status() == ScaleStatus(2, 0, True, "0/2 ready")
    controller_reports(2, 2)
    assert target.status() == ScaleStatus(2, 2, False, "")

    target.scale(5, "promotion")
    obj = kube.get(f"{MD_GROUP}/{MD_VERSION}", "MachineDeployment", "edge-workers", NS)
    assert obj is not None and obj["spec"]["replicas"] == 5
    assert patches(kube, MD_PLURAL, "scale") == 1
    assert target.status() == ScaleStatus(5, 2, True, "2/5 ready")
    controller_reports(5, 3)  # machines still booting: status.replicas counts, 3 ready
    assert target.status() == ScaleStatus(5, 3, True, "3/5 ready")
    controller_reports(5, 5)
    assert target.status() == ScaleStatus(5, 5, False, "")


def test_kind_without_readiness_counts_scale_status_replicas(kube: KubeHarness, api: Kube) -> None:
    kube.apply(MACHINE_DEPLOYMENT_CRD)
    kube.apply(machine_deployment("pool", 3))
    api.custom.patch_namespaced_custom_object_status(
        MD_GROUP, MD_VERSION, NS, MD_PLURAL, "pool", {"status": {"replicas": 3}}
    )
    ref = ObjectRef(f"{MD_GROUP}/{MD_VERSION}", "MachineDeployment", "pool", NS)
    assert ScaleSubresourceTarget(api, ref, ready_path=None).status() == ScaleStatus(
        3, 3, False, ""
    )
    # By default readiness is status.readyReplicas, and Kubernetes omits a zero count.
    assert ScaleSubresourceTarget(api, ref).status() == ScaleStatus(3, 0, True, "0/3 ready")


def test_conflict_is_reread_and_retried(kube: KubeHarness, api: Kube) -> None:
    kube.apply(workload("Deployment", "web", 2))
    target = ScaleSubresourceTarget(api, ObjectRef("apps/v1", "Deployment", "web", NS))
    rule = kube.faults.fail(r"/deployments/web/scale$", status=409, times=2, methods="PATCH")
    target.scale(6, "test")
    assert rule.hits == 2  # two conflicts, then a fresh read and a write that landed
    obj = kube.get("apps/v1", "Deployment", "web", NS)
    assert obj is not None and obj["spec"]["replicas"] == 6
    time.sleep(0.2)  # the emulator records a request just after answering it
    reads = [r for r in kube.audit if r.verb == "get" and r.subresource == "scale"]
    assert len(reads) == 3  # re-read before each attempt, never a blind resend


def test_a_real_conflict_recomputes_from_the_new_size(kube: KubeHarness, api: Kube) -> None:
    """Someone else scales between our read and write: the stale write is refused (409
    from the resourceVersion precondition), and the re-read sees the new size."""
    kube.apply(workload("Deployment", "web", 2))
    target = ScaleSubresourceTarget(api, ObjectRef("apps/v1", "Deployment", "web", NS))
    stale = target.read()
    kube.apply(workload("Deployment", "web", 5))  # a human ran kubectl scale
    with pytest.raises(ConflictError):
        target.scale_once(5, "stale", seen=stale)
    target.scale(5, "fresh")  # re-reads: already 5, nothing to write
    assert patches(kube, "deployments", "scale") == 1  # only the refused one


def test_conflict_every_time_is_one_line_error(kube: KubeHarness, api: Kube) -> None:
    kube.apply(workload("Deployment", "web", 2))
    target = ScaleSubresourceTarget(
        api, ObjectRef("apps/v1", "Deployment", "web", NS), retries=Retries(conflicts=3)
    )
    rule = kube.faults.fail(r"/deployments/web/scale$", status=409, times=None, methods="PATCH")
    with pytest.raises(ConflictError) as err:
        target.scale(6, "test")
    assert rule.hits == 3
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"Failed to scale deployment/{NS}/web: 409 Conflict")
    obj = kube.get("apps/v1", "Deployment", "web", NS)
    assert obj is not None and obj["spec"]["replicas"] == 2


def test_missing_object_and_rejected_size_are_one_line_errors(kube: KubeHarness, api: Kube) -> None:
    kube.ensure_namespace(NS)
    target = ScaleSubresourceTarget(api, ObjectRef("apps/v1", "Deployment", "nope", NS))
    with pytest.raises(KubernetesError) as err:
        target.status()
    assert str(err.value).startswith(f"Failed to read deployment/{NS}/nope: 404 Not Found")
    assert getattr(err.value, "status", None) == 404
    with pytest.raises(InputError, match="replicas must be 0 or more, got -1"):
        target.scale(-1, "test")
    kube.apply(MACHINE_DEPLOYMENT_CRD)
    kube.apply(machine_deployment("pool", 1))
    md = ScaleSubresourceTarget(
        api, ObjectRef(f"{MD_GROUP}/{MD_VERSION}", "MachineDeployment", "pool", NS)
    )
    md.scale(0, "scale to zero is allowed by this CRD")
    assert md.status().desired == 0


def test_bad_reference_is_refused_before_any_call() -> None:
    with pytest.raises(InputError, match="name is required"):
        ObjectRef("apps/v1", "Deployment", "", NS)
    with pytest.raises(InputError, match="apiVersion must be group/version"):
        ObjectRef("a/b/c", "Thing", "x", NS)
