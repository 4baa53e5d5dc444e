"""Day two: pods die and the operator heals the RedisCluster, losing no acknowledged write.

Real operator processes with the chart's RBAC, real redis-server pods (the kubelet emulator
gives a re-created pod a new process, a new IP and an empty disk, as a StatefulSet without
volumeClaimTemplates does) and a live cluster-aware client that WAITs for one replica after
each write, so "acknowledged" means "replicated". Each scenario records its time to heal
(pod deleted -> Ready with every replica in place) and the client's error window; they are
printed (``-s``) and written to ``$HEADROOM_HEAL_REPORT`` when set.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from kubernetes import client as k8s
from kubernetes.client import ApiException

from tests.operator.support import NS, OperatorEnv, OperatorProcess, PodCluster, wait_for
from tests.redis.data import LiveClient, digest, load, total_keys
from tests.support.procs import until_equal

pytestmark = [pytest.mark.k8s, pytest.mark.redis, pytest.mark.slow]

KEYS = 20_000
RESULTS: dict[str, dict[str, float]] = {}


def _record(
    scenario: str, heal_seconds: float, live: LiveClient | None, since: float = 0.0
) -> None:
    """One scenario's time to heal; the client's errors and their window since ``since``."""
    row: dict[str, float] = {"heal_seconds": round(heal_seconds, 1)}
    if live is not None:
        times = [t for t in live.error_times if t >= since]
        row["client_errors"] = len(times)
        row["client_error_window_seconds"] = round(times[-1] - times[0], 1) if times else 0.0
    RESULTS[scenario] = row
    print(f"HEAL {scenario}: {json.dumps(row)}")
    out = os.environ.get("HEADROOM_HEAL_REPORT")
    if out:
        Path(out).write_text(json.dumps(RESULTS, indent=2))


def _pod_ips(env: OperatorEnv) -> dict[str, str]:
    """The IPs of the cluster's kept pods (not those of ordinals the operator removed)."""
    removed = env.pods("cart").removed
    pods = env.core.list_namespaced_pod(NS, label_selector="headroom.dev/cluster=cart").items
    return {
        p.status.pod_ip: p.metadata.name
        for p in pods
        if p.status and p.status.pod_ip and p.metadata.name not in removed
    }


def _nodes(env: OperatorEnv) -> list[dict[str, Any]]:
    """CLUSTER NODES as every live pod sees it: (pod, id, flags, master id, slots?)."""
    rows = []
    for node in env.pods("cart").nodes:
        text = node.client().execute_command("CLUSTER", "NODES").decode()
        for line in text.splitlines():
            parts = line.split()
            rows.append(
                {
                    "seen_by": node.host,
                    "id": parts[0],
                    "addr": parts[1].split("@")[0],
                    "flags": parts[2],
                    "master": parts[3],
                    "slots": len(parts) > 8,
                }
            )
    return rows


def _owner_pod(env: OperatorEnv, slot: int) -> str:
    """The pod of the master serving ``slot``."""
    for node in env.pods("cart").nodes:
        try:
            for first, last, master, *_ in node.client().execute_command("CLUSTER", "SLOTS"):
                if first <= slot <= last:
                    return _pod_ips(env)[master[0].decode()]
        except redis.RedisError:
            continue
    raise AssertionError(f"no master serves slot {slot}")


def _replica_pod_of(env: OperatorEnv, master_pod: str) -> str:
    ips = _pod_ips(env)
    master_ip = next(ip for ip, name in ips.items() if name == master_pod)
    rows = _nodes(env)
    master_id = next(r["id"] for r in rows if r["addr"].startswith(f"{master_ip}:"))
    replica = next(r for r in rows if r["master"] == master_id and "slave" in r["flags"])
    return ips[replica["addr"].rsplit(":", 1)[0]]


class _Verdict:
    """A poll's answer that says why it is not yet true (``wait_for`` prints the last one)."""

    def __init__(self, why: str = "") -> None:
        self.why = why

    def __bool__(self) -> bool:
        return not self.why

    def __repr__(self) -> str:
        return self.why or "whole"


def _whole(env: OperatorEnv, masters: int, replicas: int) -> _Verdict:
    """Ready, every master with its replicas, no failed or unknown member anywhere."""
    if not env.ready_with("cart", masters)():
        return _Verdict(f"not Ready with {masters} masters: {env.reason('cart', 'Ready')}")
    healing = env.condition("cart", "Healing").get("status")
    if healing != "False":
        return _Verdict(f"Healing={healing}")
    pods = masters * (1 + replicas)
    ips = _pod_ips(env)
    nodes = env.pods("cart").nodes
    if len(nodes) != pods or len(ips) != pods:
        return _Verdict(f"{len(nodes)} nodes, {len(ips)} pod IPs, want {pods}")
    for node in nodes:
        info = node.client().execute_command("CLUSTER", "INFO").decode()
        if "cluster_state:ok" not in info:
            return _Verdict(f"{node.host} cluster_state not ok")
    rows = _nodes(env)
    bad = [r for r in rows if "fail" in r["flags"] or "noaddr" in r["flags"]]
    if bad:
        return _Verdict(f"failed members: {bad[:3]}")
    stale = [r for r in rows if r["addr"].rsplit(":", 1)[0] not in ips]
    if stale:
        return _Verdict(f"members at addresses no pod has: {stale[:3]}")
    ids = {r["id"] for r in rows}
    return _Verdict("" if len(ids) == pods else f"{len(ids)} node ids, want {pods}")


def _replacement(env: OperatorEnv, lost: str, got: str) -> str:
    """The replica that took ``lost``'s place (returned): its re-created pod, or, when that
    pod came back only after the healer had given the shard a new one (a loaded machine),
    the new pod, with ``lost``'s ordinal retired (marked removed, outside the cluster)."""
    if got != lost:
        removed = env.pods("cart").removed
        assert lost in removed, f"{got} replaced {lost}, whose pod is not retired ({removed})"
    return got


def _delete_and_heal(
    env: OperatorEnv, pod: str, scenario: str, live: LiveClient | None, timeout: float = 180
) -> float:
    uid = env.core.read_namespaced_pod(pod, NS).metadata.uid
    started = time.monotonic()
    env.core.delete_namespaced_pod(pod, NS)
    wait_for(
        lambda: (
            env.condition("cart", "Healing").get("status") == "True"
            or env.reason("cart", "Ready") in ("Healing", "PodsNotReady", "SlotsLost")
        ),
        60,
        f"{scenario}: the operator to see the loss",
    )
    wait_for(lambda: _whole(env, 3, 1), timeout, f"{scenario}: cart whole again")
    took = time.monotonic() - started
    assert env.core.read_namespaced_pod(pod, NS).metadata.uid != uid
    _record(scenario, took, live, since=started)
    return took


def _formed(
    env: OperatorEnv, replicas: int, keys: int = KEYS, **spec: Any
) -> tuple[OperatorProcess, PodCluster, str]:
    """The operator running, cart formed with 3 masters, ``keys`` loaded; their digest."""
    op = env.start_operator("op-a")
    env.create_cluster("cart", masters=3, replicas=replicas, **spec)
    wait_for(env.ready_with("cart", 3), 120, "cart Ready with 3 masters")
    wait_for(lambda: _whole(env, 3, replicas), 60, "cart whole")
    pods = env.pods("cart")
    load(pods, keys)
    return op, pods, digest(pods, keys)


@pytest.mark.timeout(900)
def test_master_then_promoted_master_then_replica_lost_heals_without_losing_a_write(
    env: OperatorEnv,
) -> None:
    op, pods, before = _formed(env, replicas=1)
    with LiveClient(pods, KEYS, wait_replicas=1, rate=lambda: 100.0) as live:
        time.sleep(2)
        # 1. The master of slot 0 dies: its replica takes over, the re-created pod (empty,
        # new IP) joins as the new master's replica, the dead id is forgotten everywhere.
        first = _owner_pod(env, 0)
        replica = _replica_pod_of(env, first)
        _delete_and_heal(env, first, "master lost", live)
        assert _owner_pod(env, 0) == replica  # promoted, not an empty node given the slots
        first = _replacement(env, first, _replica_pod_of(env, replica))
        events = {e.reason for e in env.events("cart")}
        assert {"NodeLost", "Healed"} <= events

        # 2. The same shard's promoted master dies too: the cluster was really healed.
        _delete_and_heal(env, replica, "promoted master lost", live)
        assert _owner_pod(env, 0) == first
        _replacement(env, replica, _replica_pod_of(env, first))

        # 3. A replica dies: its replacement re-attaches to the same master.
        other_master = _owner_pod(env, 16383)
        other_replica = _replica_pod_of(env, other_master)
        _delete_and_heal(env, other_replica, "replica lost", live)
        _replacement(env, other_replica, _replica_pod_of(env, other_master))
        time.sleep(1)

    assert live.ops > 100
    assert live.lost_writes() == []  # every acknowledged (replicated) write is there
    assert digest(pods, KEYS) == before  # the preloaded keys, checksum identical
    # A write whose WAIT failed (mid-failover) was never acknowledged: it may or may not be
    # there. Every acknowledged one is.
    assert (
        KEYS + len(live.written) <= total_keys(pods) <= KEYS + len(live.written) + len(live.errors)
    )
    lines = op.text().splitlines()
    assert [line for line in lines if "Traceback" in line] == []
    assert "SlotsLost" not in {e.reason for e in env.events("cart")}  # no false alarm


def test_a_master_without_replica_or_volume_is_slots_lost_never_a_silent_ready(
    env: OperatorEnv,
) -> None:
    op, _, _ = _formed(env, replicas=0)
    victim = _owner_pod(env, 0)
    started = time.monotonic()
    env.core.delete_namespaced_pod(victim, NS)
    wait_for(env.has_reason("cart", "Degraded", "SlotsLost"), 90, "Degraded/SlotsLost")
    _record(
        "master lost, no replica, no volume: SlotsLost reported", time.monotonic() - started, None
    )
    status = env.status("cart")
    assert status["phase"] == "Degraded"
    assert env.reason("cart", "Ready") == "SlotsLost"
    assert env.condition("cart", "Ready")["status"] == "False"
    assert status["healing"]["slotsLost"] > 5000
    events = [e for e in env.events("cart") if e.reason == "SlotsLost"]
    assert events and events[0].type == "Warning" and "slots lost" in events[0].message
    # The alert: the operator's gauge an alerting rule fires on.
    assert re.search(
        r'headroom_rediscluster_slots_lost\{cluster="headroom/cart"\} [1-9]', op.metrics()
    )
    # Held, not papered over: some 30 s later still Degraded, the empty replacement owns no
    # slot, and the lost slots are not served by anyone else.
    time.sleep(30)
    assert env.reason("cart", "Degraded") == "SlotsLost"
    replacement_ip = next(ip for ip, name in _pod_ips(env).items() if name == victim)
    rows = [r for r in _nodes(env) if r["addr"].startswith(f"{replacement_ip}:")]
    assert not any(r["slots"] for r in rows)


def test_a_master_with_a_volume_comes_back_with_its_keys_and_its_node_id(
    env: OperatorEnv,
) -> None:
    _, pods, before = _formed(env, replicas=0, persistence={"size": "1Gi"})
    sts = env.apps.read_namespaced_stateful_set("cart", NS)
    assert [t.metadata.name for t in sts.spec.volume_claim_templates] == ["data"]
    assert (
        "yes"
        == sts.spec.template.spec.containers[0].args[
            sts.spec.template.spec.containers[0].args.index("--appendonly") + 1
        ]
    )
    policy = sts.spec.persistent_volume_claim_retention_policy
    assert (policy.when_scaled, policy.when_deleted) == ("Delete", "Retain")
    # A StatefulSet an older operator made (claims kept when scaled) gets the policy back.
    retain = {"whenDeleted": "Retain", "whenScaled": "Retain"}
    env.apps.patch_namespaced_stateful_set(
        "cart", NS, {"spec": {"persistentVolumeClaimRetentionPolicy": retain}}
    )
    victim = _owner_pod(env, 0)
    ip = next(ip for ip, name in _pod_ips(env).items() if name == victim)
    node_id = next(r["id"] for r in _nodes(env) if r["addr"].startswith(f"{ip}:"))
    started = time.monotonic()
    uid = env.core.read_namespaced_pod(victim, NS).metadata.uid
    env.core.delete_namespaced_pod(victim, NS)
    wait_for(
        lambda: env.core.read_namespaced_pod(victim, NS).metadata.uid != uid,
        60,
        "the StatefulSet to re-create the pod",
    )
    wait_for(lambda: _whole(env, 3, 0), 180, "cart whole again")
    _record("master lost, no replica, with volume", time.monotonic() - started, None)
    new_ip = next(ip for ip, name in _pod_ips(env).items() if name == victim)
    assert new_ip != ip
    assert next(r["id"] for r in _nodes(env) if r["addr"].startswith(f"{new_ip}:")) == node_id
    assert digest(pods, KEYS) == before
    assert total_keys(pods) == KEYS
    assert "SlotsLost" not in {e.reason for e in env.events("cart")}  # it was never lost

    def scaled_away() -> str:
        got = env.apps.read_namespaced_stateful_set("cart", NS)
        return str(got.spec.persistent_volume_claim_retention_policy.when_scaled)

    wait_for(until_equal(scaled_away, "Delete"), 60, "the claim retention policy restored")

    def claims() -> list[str]:
        items = env.core.list_namespaced_persistent_volume_claim(NS).items
        return sorted(c.metadata.name for c in items if c.metadata.name.startswith("data-cart-"))

    # Scaled out and in again, the ordinal that left was drained first: its claim goes (it
    # held nothing), the kept ones stay with every key.
    env.scale("cart", 4)
    wait_for(env.ready_with("cart", 4), 240, "cart Ready with 4 masters")
    assert claims() == [f"data-cart-{i}" for i in range(4)]
    env.scale("cart", 3)
    wait_for(env.ready_with("cart", 3), 240, "cart Ready with 3 masters again")
    assert env.apps.read_namespaced_stateful_set("cart", NS).spec.replicas == 3
    kept = [f"data-cart-{i}" for i in range(3)]
    wait_for(until_equal(claims, kept), 30, "data-cart-3 to go")
    assert digest(pods, KEYS) == before
    assert total_keys(pods) == KEYS


@pytest.mark.timeout(900)
def test_draining_two_nodes_through_evictions_never_takes_two_pods(env: OperatorEnv) -> None:
    _, pods, before = _formed(env, replicas=1)
    # The hardest pair: a master and its own replica (a shard gone if both go at once).
    master = _owner_pod(env, 0)
    drain = [master, _replica_pod_of(env, master)]
    down_max = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal down_max
        while not stop.is_set():
            items = env.core.list_namespaced_pod(NS, label_selector="headroom.dev/cluster=cart")
            ready = sum(
                1
                for p in items.items
                if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
            )
            down_max = max(down_max, 6 - ready)
            stop.wait(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    refused = 0
    started = time.monotonic()
    with LiveClient(pods, KEYS, wait_replicas=1, rate=lambda: 100.0) as live:
        for pod in drain:  # kubectl drain: evict, and retry a 429 every 5 s
            deadline = time.monotonic() + 240
            while True:
                try:
                    env.core.create_namespaced_pod_eviction(
                        pod, NS, k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name=pod, namespace=NS))
                    )
                    break
                except ApiException as err:
                    assert err.status == 429, err
                    refused += 1
                    assert time.monotonic() < deadline, f"{pod} never evicted"
                    time.sleep(5)
        wait_for(lambda: _whole(env, 3, 1), 180, "cart whole after the drain")
    stop.set()
    watcher.join(5)
    _record("drain of a master and its replica", time.monotonic() - started, live, started)
    assert refused >= 1  # the second eviction waited for the first pod's replacement
    assert down_max <= 1, down_max
    assert live.lost_writes() == []
    assert digest(pods, KEYS) == before


@pytest.mark.timeout(900)
def test_a_master_lost_mid_scale_out_completes_the_scale_and_loses_nothing(
    env: OperatorEnv,
) -> None:
    _, pods, before = _formed(env, replicas=1, keys=100_000)
    original = _owner_pod(env, 0)
    with LiveClient(pods, 100_000, wait_replicas=1, rate=lambda: 100.0) as live:
        env.scale("cart", 6)
        wait_for(
            lambda: (env.status("cart").get("migration") or {}).get("keysMoved", 0) > 0,
            120,
            "the migration to be moving keys",
        )
        started = time.monotonic()
        env.core.delete_namespaced_pod(original, NS)
        wait_for(lambda: _whole(env, 6, 1), 280, "cart whole with 6 masters")
    _record("master lost mid 3->6 scale-out", time.monotonic() - started, live, started)
    assert live.lost_writes() == []
    assert digest(pods, 100_000) == before


@pytest.mark.timeout(900)
def test_a_scale_order_during_healing_waits_until_the_cluster_is_whole(env: OperatorEnv) -> None:
    _, pods, before = _formed(env, replicas=1)
    victim = _owner_pod(env, 0)
    env.core.delete_namespaced_pod(victim, NS)
    wait_for(lambda: env.condition("cart", "Healing").get("status") == "True", 60, "Healing=True")
    env.scale("cart", 4)
    held = wait_for(
        env.has_reason("cart", "Scaling", "WaitingForHealing"), 60, "the order to be held"
    )
    assert held
    assert env.status("cart").get("migration") is None  # nothing moves while healing
    wait_for(env.ready_with("cart", 4), 300, "cart Ready with 4 masters after healing")
    wait_for(lambda: _whole(env, 4, 1), 120, "cart whole with 4 masters")
    at = {e.reason: e.last_timestamp or e.event_time for e in env.events("cart")}
    assert at["ScalingStarted"] >= at["Healed"]  # the order ran once the cluster was whole
    assert digest(pods, KEYS) == before
