"""Scale-out and scale-in of real Redis Clusters with a live cluster-aware client."""

from __future__ import annotations

import subprocess

import pytest

from headroom.controller.redis.resharder import Resharder, ReshardProgress
from headroom.controller.redis.topology import SLOTS
from tests.redis.data import LiveClient, digest, load, total_keys, verify
from tests.support.redis_cluster import REDIS_CLI

pytestmark = [pytest.mark.redis, pytest.mark.slow]

KEYS = 50_000
BIG = 3
HASHES = 2_000


def check_ok(seed: str) -> str:
    out = subprocess.run(
        [REDIS_CLI, "--cluster", "check", seed], capture_output=True, text=True, timeout=30
    ).stdout
    assert "[OK] All 16384 slots covered." in out, out[-2000:]
    assert "[WARNING]" not in out and "[ERR]" not in out, out[-2000:]
    return out


def test_scale_out_3_to_5_keeps_every_key_and_the_client_working(redis_cluster_factory):
    cluster = redis_cluster_factory(masters=3)
    load(cluster, KEYS, big=BIG, hashes=HASHES)
    before = digest(cluster, KEYS)
    new = [cluster.start_node(), cluster.start_node()]
    seen: list[ReshardProgress] = []
    r = Resharder(cluster.seed, progress=seen.append)
    r.meet(*[n.addr for n in new])

    with LiveClient(cluster, KEYS) as live:
        report = r.rebalance(use_empty_masters=True)
    assert live.ops > 50
    assert live.errors == []
    assert live.lost_writes() == []

    topo = r.topology()
    counts = sorted(len(m.slots) for m in topo.masters)
    assert len(counts) == 5 and sum(counts) == SLOTS
    assert counts[-1] - counts[0] <= 1  # balanced: within one slot
    assert topo.open_slots() == [] and topo.healthy
    assert report.slots_moved == report.plan.slots >= 6553
    assert report.keys_moved > 0 and report.errors == []
    assert seen and seen[-1].slots_done == seen[-1].slots_total == report.slots_moved
    assert verify(cluster, KEYS, big=BIG, hashes=HASHES) == []
    assert digest(cluster, KEYS) == before
    assert total_keys(cluster) == KEYS + BIG + HASHES + len(live.written)
    check_ok(cluster.seed)
    # Balanced already: a second run plans nothing.
    assert r.plan_rebalance().empty


def test_drain_two_of_five_masters_with_forget(redis_cluster_factory):
    cluster = redis_cluster_factory(masters=3)
    load(cluster, 20_000, big=1)
    new = [cluster.start_node(), cluster.start_node()]
    r = Resharder(cluster.seed)
    r.meet(*[n.addr for n in new])
    r.rebalance(use_empty_masters=True)
    leaving = [cluster.nodes[1].node_id(), new[0].node_id()]

    with LiveClient(cluster, 20_000) as live:
        for node_id in leaving:
            report = r.drain(node_id[:10], forget=True)
            assert report.forgotten == [node_id]
    assert live.errors == [] and live.lost_writes() == []

    topo = r.topology()
    assert {m.id for m in topo.masters}.isdisjoint(leaving)
    assert len(topo.masters) == 3 and topo.healthy
    counts = sorted(len(m.slots) for m in topo.masters)
    assert sum(counts) == SLOTS and counts[-1] - counts[0] <= 1
    for node in cluster.nodes:
        if node.node_id() in leaving:
            continue
        known = node.client().execute_command("CLUSTER", "NODES")
        assert not any(x in known for x in leaving)
    # The drained nodes were reset: alone, empty, new ids, reusable.
    for node in (cluster.nodes[1], new[0]):
        assert node.client().dbsize() == 0
        assert node.node_id() not in leaving
    assert verify(cluster, 20_000, big=1) == []
    check_ok(topo.masters[0].addr)
