"""Scale-out 3->6 and scale-in 6->3 of a real Redis Cluster with 200k+ keys and a live client."""

from __future__ import annotations

import subprocess

import pytest

from headroom.controller.redis.reports import ReshardProgress
from headroom.controller.redis.resharder import Resharder
from headroom.controller.redis.topology import SLOTS
from tests.redis.data import LiveClient, digest, load, total_keys, verify
from tests.support.redis_cluster import REDIS_CLI

pytestmark = [pytest.mark.redis, pytest.mark.slow]

KEYS = 200_000
HASHES = 5_000
BIG = 3  # of 10 MB each


def check_ok(seed: str) -> str:
    out = subprocess.run(
        [REDIS_CLI, "--cluster", "check", seed], capture_output=True, text=True, timeout=30
    ).stdout
    assert "[OK] All 16384 slots covered." in out, out[-2000:]
    assert "[WARNING]" not in out and "[ERR]" not in out, out[-2000:]
    return out


def balanced(r: Resharder, masters: int) -> None:
    topo = r.topology()
    counts = sorted(len(m.slots) for m in topo.masters if m.slots)
    assert len(counts) == masters and sum(counts) == SLOTS
    assert counts[-1] - counts[0] <= 1  # within one slot
    assert topo.open_slots() == [] and topo.healthy, topo.problems()


def test_scale_out_3_to_6_then_in_6_to_3_keeps_every_key_and_the_client_working(
    redis_cluster_factory,
):
    cluster = redis_cluster_factory(masters=3)
    ds = load(cluster, KEYS, big=BIG, hashes=HASHES)
    before = digest(cluster, KEYS, big=BIG, hashes=HASHES)
    assert total_keys(cluster) == ds.total > 200_000
    new = [cluster.start_node() for _ in range(3)]
    seen: list[ReshardProgress] = []
    r = Resharder(cluster.seed, progress=seen.append)
    r.meet(*[n.addr for n in new])

    # 3 -> 6, with a cluster-aware client reading and writing all along.
    with LiveClient(cluster, KEYS, prefix="out") as out:
        grown = r.rebalance(use_empty_masters=True)
    assert out.ops > 50 and out.errors == [] and out.lost_writes() == []
    assert out.issue_4015 <= 3  # at most one client rebuild per master added
    balanced(r, 6)
    assert grown.errors == [] and grown.slots_moved == grown.plan.slots >= 8190
    assert grown.keys_moved >= ds.total // 2 - 5_000  # about half the keys moved
    assert seen and seen[-1].slots_done == seen[-1].slots_total == grown.slots_moved
    assert digest(cluster, KEYS, big=BIG, hashes=HASHES) == before
    assert total_keys(cluster) == ds.total + len(out.written)
    assert all(n.client().dbsize() > 0 for n in new)
    check_ok(cluster.seed)
    assert r.plan_rebalance().empty  # balanced already: a second run plans nothing

    # 6 -> 3: the three new masters drain together (parallel pairs) and are forgotten.
    leaving = [n.node_id() for n in new]
    with LiveClient(cluster, KEYS, prefix="in") as into:
        shrunk = r.drain([i[:12] for i in leaving], forget=True)
    assert into.ops > 50 and into.errors == [] and into.lost_writes() == []
    assert into.issue_4015 == 0  # a drain adds no master a client could not know
    assert out.lost_writes() == []
    assert shrunk.errors == [] and sorted(shrunk.forgotten) == sorted(leaving)
    assert shrunk.slots_moved == 8192 or abs(shrunk.slots_moved - 8192) <= 3
    balanced(r, 3)
    topo = r.topology()
    assert {m.id for m in topo.masters}.isdisjoint(leaving)
    for node in cluster.nodes[:3]:
        known = node.client().execute_command("CLUSTER", "NODES")
        assert not any(x in known for x in leaving)
    for node in new:  # reset: alone, empty, a new id, reusable
        assert node.client().dbsize() == 0 and node.node_id() not in leaving
    assert digest(cluster, KEYS, big=BIG, hashes=HASHES) == before
    assert verify(cluster, KEYS, big=BIG, hashes=HASHES) == []
    assert total_keys(cluster) == ds.total + len(out.written) + len(into.written)
    check_ok(cluster.seed)
