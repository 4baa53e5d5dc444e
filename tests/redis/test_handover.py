"""kill -9 of the migrating process at each step of a chunk's hand-over leaves every slot
claimed, in every node's view, with every key kept.

The hand-over is ``SETSLOT NODE`` on the target (which bumps its config epoch), then the
source, then every other master (redis-cli's order). A process killed after any of these
leaves the rest to gossip: at every instant some master must claim each slot and every
node must map each slot to a master (a node that maps a slot to nobody answers
CLUSTERDOWN, and redis-py raises ClusterError). Watched for two node timeouts after each
kill (every node pings every other at least once per half node timeout), on 3 masters with
a replica each (whose views count too) and a live cluster-aware client; then
``headroom redis fix`` closes what is open and no key is lost.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field

import pytest

from headroom.controller.redis.nodes import CLUSTER_NODE_ARGS
from headroom.controller.redis.resharder import Resharder
from headroom.controller.redis.topology import SLOTS
from tests.redis.data import LiveClient, digest, load, total_keys
from tests.redis.test_repair import headroom
from tests.redis.test_reshard import check_ok
from tests.support.redis_cluster import RedisTestCluster

pytestmark = [pytest.mark.redis, pytest.mark.slow]

KEYS = 20_000
NODE_TIMEOUT_S = int(CLUSTER_NODE_ARGS[CLUSTER_NODE_ARGS.index("--cluster-node-timeout") + 1]) / 1e3
WATCH_S = 2 * NODE_TIMEOUT_S
# (step, n): killed right after the n-th such step of the run. The first hand-overs are
# the new masters' first slots, one pair at a time; later ones run on parallel pairs.
KILLS = (("target", 1), ("source", 1), ("other", 1), ("target", 9), ("source", 9), ("other", 9))


@dataclass
class Gaps:
    """Moments when a slot was claimed by no master, or mapped to nobody by some node."""

    seen: list[str] = field(default_factory=list)
    polls: int = 0


def _slots(fields: list[str]) -> set[int]:
    out: set[int] = set()
    for item in fields[8:]:
        if not item.startswith("["):
            a, _, b = item.partition("-")
            out.update(range(int(a), int(b or a) + 1))
    return out


def _watch(cluster: RedisTestCluster, seconds: float, gaps: Gaps) -> None:
    """Poll every node's CLUSTER NODES for ``seconds``; record each gap with its views."""
    clients = [n.client() for n in cluster.nodes]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        views = [str(c.execute_command("CLUSTER", "NODES")) for c in clients]
        gaps.polls += 1
        claimed: set[int] = set()
        for text in views:
            me = next(x.split() for x in text.splitlines() if "myself" in x)
            if "master" in me[2]:
                claimed |= _slots(me)
        if len(claimed) < SLOTS:
            nobody = sorted(set(range(SLOTS)) - claimed)
            gaps.seen.append(f"no master claims {len(nobody)} slots (first {nobody[0]})")
        for node, text in zip(cluster.nodes, views, strict=True):
            mapped: set[int] = set()
            for line in text.splitlines():
                mapped |= _slots(line.split())
            if len(mapped) < SLOTS:
                nobody = sorted(set(range(SLOTS)) - mapped)
                gaps.seen.append(
                    f"{node.addr} maps {len(nobody)} slots to nobody (first {nobody[0]})"
                )
        time.sleep(0.05)
    for c in clients:
        c.close()


def test_kill_9_at_each_hand_over_step_leaves_every_slot_claimed(redis_cluster_factory):
    cluster = redis_cluster_factory(masters=3, replicas=1)  # the replicas' views count too
    load(cluster, KEYS)
    before = digest(cluster, KEYS)
    new = [cluster.start_node() for _ in range(3)]
    Resharder(cluster.seed).meet(*[n.addr for n in new])
    seed = cluster.seed
    gaps = Gaps()
    with LiveClient(cluster, KEYS) as live:
        for step, n in KILLS:
            run = headroom(
                "rebalance", "--seed", seed, "--use-empty-masters", "--json",
                env={"HEADROOM_RESHARD_CRASH_AT_HANDOVER": f"{step}:{n}"},
            )  # fmt: skip
            assert run.returncode == -signal.SIGKILL, (step, n, run.stderr[-2000:])
            assert "Killing myself at hand-over" in run.stderr, run.stderr[-2000:]
            _watch(cluster, WATCH_S, gaps)
            assert gaps.seen == [], f"after kill at {step}:{n}: {gaps.seen[:10]}"
            fixed = headroom("fix", "--seed", seed, "--json")
            assert fixed.returncode == 0, fixed.stderr[-2000:]
        done = headroom("rebalance", "--seed", seed, "--use-empty-masters", "--json")
        assert done.returncode == 0, done.stderr[-2000:]
    assert gaps.polls > len(KILLS) * 10, "the watch hardly ran"
    check_ok(seed)
    assert live.errors == [], live.errors[:10]
    assert digest(cluster, KEYS) == before
    assert live.lost_writes() == []
    assert total_keys(cluster) == KEYS + len(live.written)
    assert len([m for m in Resharder(seed).topology().masters if m.slots]) == 6
