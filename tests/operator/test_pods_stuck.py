"""A RedisCluster whose pods are not all Ready past the operator's --pods-ready-deadline: one
PodsStuck Warning naming the pod and why, Ready=False reason=PodsStuck, the alert gauge, a
clock that survives a new leader, no key lost, and PodsReady once the pod comes; a stuck
scale-out given up on (spec.masters set back) releases only its never-Ready pod."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from headroom.controller.provisioning.statefulset import ADDING_ANNOTATION
from tests.operator.support import NS, OperatorEnv, guard_pod_removals, wait_for
from tests.redis.data import digest, load, total_keys
from tests.support.kubectl import have_kubectl, make_kubectl, table

pytestmark = [pytest.mark.k8s, pytest.mark.redis, pytest.mark.slow]

KEYS = 20_000
DEADLINE = "3"
NOT_FITTING = "0/3 nodes are available: 3 Insufficient memory."


def _masters(env: OperatorEnv) -> dict[str, int]:
    return {row["node"]: row["slots"] for row in env.status("cart").get("slotsPerMaster") or ()}


def _warnings(env: OperatorEnv, reason: str) -> list[Any]:
    return [e for e in env.events("cart") if e.type == "Warning" and e.reason == reason]


def _stuck_scale_out(env: OperatorEnv) -> tuple[list[str], Any, str]:
    """3 masters holding KEYS, then a scale-out to 4 whose new pod fits no node, past the
    deadline: (the pod removals seen, the first pods, the keys' digest)."""
    removals = guard_pod_removals(env)
    env.create_cluster("cart", masters=3, replicas=0)
    wait_for(env.ready_with("cart", 3), 120, "cart Ready with 3 masters")
    pods = env.pods("cart")
    load(pods, KEYS)
    before = digest(pods, KEYS)
    env.kubelet.unschedulable(NS, "cart-3", NOT_FITTING)
    env.scale("cart", 4)
    wait_for(env.has_reason("cart", "Ready", "PodsStuck"), 60, "Ready reason PodsStuck")
    return removals, pods, before


def test_a_scale_out_pod_stuck_pending_is_reported_once_and_the_scale_out_resumes(
    env: OperatorEnv, tmp_path: Path
) -> None:
    extra = ("--pods-ready-deadline", DEADLINE, "--lease-duration", "3", "--pod-add-timeout", "5")
    op = env.start_operator("op-a", *extra)
    removals, pods, before = _stuck_scale_out(env)
    # --pod-add-timeout: the scale-out gives up on the pod it added after 5 s (then waits for
    # Kubernetes to bring it, never adding another: checked below).

    def add_timed_out() -> bool:
        said = [line for line in op.text().splitlines() if "not Ready after" in line]
        if not any("cart-3 not Ready after 5s" in line for line in said):
            raise AssertionError(f"the log's add time-outs: {said[-3:] or 'none'}")
        return True

    wait_for(add_timed_out, 30, "the add to time out")
    ready = env.condition("cart", "Ready")
    assert ready["status"] == "False"
    assert "cart-3 Pending: Unschedulable: 0/3 nodes are available" in ready["message"]
    assert "holds no slots" in ready["message"]
    assert env.reason("cart", "Degraded") == "PodsStuck"
    stuck = env.status("cart")["podsNotReady"]
    assert stuck["stuck"] is True and stuck["pods"][0].startswith("cart-3 Pending")
    (warning,) = wait_for(lambda: _warnings(env, "PodsStuck"), 10, "the PodsStuck Event")
    assert "cart-3 Pending: Unschedulable: 0/3 nodes are available" in warning.message
    assert len(warning.message) <= 1024
    assert re.search(r'headroom_rediscluster_pods_stuck\{cluster="headroom/cart"\} 1', op.metrics())
    if have_kubectl():  # the printer columns of kubectl get -o wide
        kubectl = make_kubectl(env.kube.kubeconfig(tmp_path / "admin", tls=True), tmp_path)
        rows = table(kubectl("get", "redisclusters", "-n", NS, "-o", "wide").stdout)
        assert rows[0][-3:] == ["PODS", "REASON", "AGE"]
        assert rows[1][-3:-1] == ["3/4", "PodsStuck"]

    # A new leader keeps the episode's clock and does not report it again; the StatefulSet
    # is not grown past the pod it waits for (the added pod stays marked: it holds no slot).
    op.kill()
    op_b = env.start_operator("op-b", *extra)
    wait_for(lambda: "Started operator" in op_b.text(), 60, "op-b to lead")
    wait_for(lambda: op_b.text().count("past the 3s deadline") >= 4, 60, "op-b's passes over it")
    assert env.status("cart")["podsNotReady"]["since"] == stuck["since"]
    assert env.reason("cart", "Ready") == "PodsStuck"
    assert len(_warnings(env, "PodsStuck")) == 1
    sts = env.apps.read_namespaced_stateful_set("cart", NS)
    assert sts.spec.replicas == 4
    assert sts.metadata.annotations[ADDING_ANNOTATION] == "3"
    assert total_keys(pods) == KEYS and digest(pods, KEYS) == before
    # The pod holds nothing: a drain may take one pod as when the cluster is whole.
    policy: Any = client.PolicyV1Api(env.admin)  # its models are Optional everywhere
    wait_for(
        lambda: policy.read_namespaced_pod_disruption_budget("cart", NS).spec.max_unavailable == 1,
        30,
        "evictions allowed",
    )

    # The pod is placed: the scale-out finishes, the condition and the gauge clear.
    env.kubelet.schedulable(NS, "cart-3")
    wait_for(env.ready_with("cart", 4), 120, "cart Ready with 4 masters")
    assert env.status("cart").get("podsNotReady") is None
    sts = env.apps.read_namespaced_stateful_set("cart", NS)
    assert sts.spec.replicas == 4 and sts.metadata.annotations[ADDING_ANNOTATION] == ""
    assert env.status("cart")["podsReady"] == "4/4"
    assert env.reason("cart", "Degraded") == "AsExpected"
    assert len(_warnings(env, "PodsStuck")) == 1
    recovered = [e for e in env.events("cart") if e.reason == "PodsReady"]
    assert len(recovered) == 1 and recovered[0].type == "Normal"
    assert "all 4 pods Ready again after" in recovered[0].message
    assert re.search(
        r'headroom_rediscluster_pods_stuck\{cluster="headroom/cart"\} 0', op_b.metrics()
    )
    assert digest(pods, KEYS) == before and total_keys(pods) == KEYS
    assert removals == []


def test_a_stuck_scale_out_given_up_releases_only_its_never_ready_pod(env: OperatorEnv) -> None:
    env.start_operator("op-a", "--pods-ready-deadline", DEADLINE)
    removals, pods, before = _stuck_scale_out(env)

    # Set back while the worker still waits for the pod: it is released, the rest stays.
    env.scale("cart", 3)
    wait_for(env.ready_with("cart", 3), 60, "cart Ready with 3 masters again")
    sts = env.apps.read_namespaced_stateful_set("cart", NS)
    assert sts.spec.replicas == 3 and sts.metadata.annotations[ADDING_ANNOTATION] == ""
    (released,) = [e for e in env.events("cart") if e.reason == "PodsReleased"]
    assert released.type == "Normal" and released.message.startswith("released cart-3: ")
    assert len(_warnings(env, "PodsStuck")) == 1
    assert env.status("cart").get("podsNotReady") is None
    assert sorted(_masters(env)) == ["cart-0", "cart-1", "cart-2"]
    assert digest(pods, KEYS) == before and total_keys(pods) == KEYS
    assert removals == []
