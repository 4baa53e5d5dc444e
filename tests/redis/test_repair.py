"""Crash safety: kill -9 of the real `headroom` process, redis-cli-style open slots, fix."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from headroom.controller.redis.resharder import Resharder
from headroom.controller.redis.topology import SLOTS
from tests.redis.data import load, total_keys, verify
from tests.redis.test_reshard import check_ok

pytestmark = [pytest.mark.redis, pytest.mark.slow]

HEADROOM = str(Path(sys.executable).parent / "headroom")


def headroom(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [HEADROOM, "redis", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_fix_closes_a_redis_cli_style_half_done_migration(redis_cluster_factory):
    cluster = redis_cluster_factory(masters=3)
    load(cluster, 20_000)
    r = Resharder(cluster.seed)
    topo = r.topology()
    src, tgt = topo.masters[0], topo.masters[1]
    s, t = (redis.Redis(host=n.host, port=n.port) for n in (src, tgt))
    # Three slots left open the way an interrupted `redis-cli --cluster reshard` leaves them:
    # none, some and all of the keys moved.
    slots = [
        x for x in sorted(src.slots) if s.execute_command("CLUSTER", "COUNTKEYSINSLOT", x) >= 2
    ][:3]
    for slot, share in zip(slots, (0.0, 0.5, 1.0), strict=True):
        t.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src.id)
        s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", tgt.id)
        keys = s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
        assert keys, "the test needs keys in these slots"
        part = keys[: int(len(keys) * share)]
        if part:
            s.execute_command("MIGRATE", tgt.host, tgt.port, "", 0, 5000, "KEYS", *part)
    open_before = r.topology().open_slots()
    assert [o.slot for o in open_before] == slots

    report = r.fix()
    assert len(report.repaired) == 3
    topo = r.topology()
    assert topo.open_slots() == [] and topo.healthy
    owners = topo.owners()
    assert owners[slots[0]] == src.id  # nothing had moved: rolled back
    assert owners[slots[1]] == tgt.id and owners[slots[2]] == tgt.id  # completed
    assert verify(cluster, 20_000) == []
    check_ok(cluster.seed)


def test_kill_9_at_any_point_then_fix_and_rebalance_converge(redis_cluster_factory):
    keys, big = 30_000, 2
    cluster = redis_cluster_factory(masters=3)
    load(cluster, keys, big=big)
    new = [cluster.start_node(), cluster.start_node()]
    Resharder(cluster.seed).meet(*[n.addr for n in new])
    seed = cluster.seed

    # Worst case, deterministically: it kills itself half-way through a slot's keys.
    run = headroom(
        "rebalance", "--seed", seed, "--use-empty-masters", "--json",
        env={"HEADROOM_RESHARD_CRASH_AFTER_KEYS": "3000"},
    )  # fmt: skip
    assert run.returncode == -signal.SIGKILL, run.stderr
    opened = Resharder(seed).topology().open_slots()
    assert opened, "the crash should leave slots open"
    assert total_keys(cluster) == keys + big
    fixed = headroom("fix", "--seed", seed, "--json")
    assert fixed.returncode == 0, fixed.stderr
    check_ok(seed)
    assert verify(cluster, keys, big=big) == []

    # Then at random moments, from the outside.
    rnd = random.Random(2)
    for _ in range(2):
        proc = subprocess.Popen(
            [HEADROOM, "redis", "rebalance", "--seed", seed, "--use-empty-masters", "--json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(rnd.uniform(0.6, 1.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert total_keys(cluster) == keys + big
        fixed = headroom("fix", "--seed", seed)
        assert fixed.returncode == 0, fixed.stderr
        check_ok(seed)

    # A new rebalance repairs whatever is open, then completes.
    done = headroom("rebalance", "--seed", seed, "--use-empty-masters", "--json")
    assert done.returncode == 0, done.stderr
    topo = Resharder(seed).topology()
    counts = sorted(len(m.slots) for m in topo.masters)
    assert sum(counts) == SLOTS and counts[-1] - counts[0] <= 1 and len(counts) == 5
    assert topo.open_slots() == []
    assert verify(cluster, keys, big=big) == []
    assert total_keys(cluster) == keys + big
    check_ok(seed)
