"""The StatefulSet provisioner against the API emulator and the kubelet: a scale-out's new pod
that the scheduler cannot place is waited for again, never joined by another."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from headroom.controller.kube import Kube
from headroom.controller.provisioning.statefulset import (
    ADDING_ANNOTATION,
    PodWait,
    StatefulSetProvisioner,
)
from headroom.policies.errors import ProvisioningError
from tests.harness.harness import KubeHarness
from tests.harness.kubelet import Kubelet
from tests.support.procs import wait_until

pytestmark = [pytest.mark.k8s]

NOT_FITTING = "0/3 nodes are available: 3 Insufficient memory."


def _statefulset(name: str) -> dict[str, Any]:
    # Not a Redis image: the kubelet fakes the pod (an IP, Ready), so no process runs.
    labels = {"headroom.dev/cluster": name}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "node", "image": "busybox:1.36"}]},
            },
        },
    }


def test_an_unschedulable_new_pod_is_waited_for_again_and_never_joined_by_another(
    kube: KubeHarness, kubelet: Kubelet
) -> None:
    api = kube.api_client()
    apps: Any = client.AppsV1Api(api)
    apps.create_namespaced_stateful_set("default", _statefulset("shard"))
    provisioner = StatefulSetProvisioner(
        Kube(api), "default", "shard", ready_timeout=1.0, poll=0.05
    )
    wait_until(lambda: provisioner.pods_ready() == (1, 1), 10, "shard-0 Ready")
    kubelet.unschedulable("default", "shard-1", NOT_FITTING)

    def shape() -> tuple[int, str]:
        sts = apps.read_namespaced_stateful_set("shard", "default")
        return sts.spec.replicas, (sts.metadata.annotations or {}).get(ADDING_ANNOTATION, "")

    with pytest.raises(ProvisioningError, match="shard-1 Pending: Unschedulable: 0/3 nodes"):
        provisioner.add_node()
    assert shape() == (2, "1")
    # The retry (the scaler's worker, or a new leader) waits for the same pod.
    with pytest.raises(ProvisioningError, match="shard-1 Pending: Unschedulable"):
        provisioner.add_node()
    assert shape() == (2, "1")
    assert provisioner.unready_pods() == [
        PodWait("shard-1", "Pending", "Unschedulable", NOT_FITTING, adding=True)
    ]
    assert [n.name for n in provisioner.list_nodes()] == ["shard-0"]
    assert provisioner.pods_ready() == (1, 2)
    assert provisioner.pods_ready(adding=False) == (1, 1)  # it holds nothing
    assert provisioner.release_adding(keep=2) == []  # the spec still wants it

    kubelet.schedulable("default", "shard-1")
    provisioner.ready_timeout = 10.0
    assert provisioner.add_node().name == "shard-1"
    assert shape() == (2, "")  # handed out: no longer marked, it may now be met
    assert provisioner.unready_pods() == []
    assert provisioner.add_node().name == "shard-2"  # the next one grows the set again
    assert shape() == (3, "")

    # A scale-out given up on: its never-Ready pod is released, never a Ready one.
    kubelet.unschedulable("default", "shard-3", NOT_FITTING)
    provisioner.ready_timeout = 0.5
    with pytest.raises(ProvisioningError, match="shard-3 Pending: Unschedulable"):
        provisioner.add_node()
    assert shape() == (4, "3")
    assert provisioner.release_adding(keep=2) == ["shard-3"]  # Ready ones are not marked
    assert shape() == (3, "")
    assert [n.name for n in provisioner.list_nodes()] == ["shard-0", "shard-1", "shard-2"]
    assert provisioner.pods_ready() == (3, 3)
