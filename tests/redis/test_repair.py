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

from headroom.controller.redis.connection import make_connect
from headroom.controller.redis.migrate import MigrateOptions
from headroom.controller.redis.reports import ReshardProgress
from headroom.controller.redis.resharder import Resharder
from headroom.controller.redis.topology import SLOTS
from headroom.policies.errors import MigrationError
from tests.redis.data import digest, load, total_keys, verify
from tests.redis.test_reshard import check_ok
from tests.support.procs import wait_until
from tests.support.redis_cluster import RedisNode

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
    # A fourth slot holds a stale copy on the target (a MIGRATE whose reply was lost):
    # the source's copy is the one clients saw, so it must win (BUSYKEY -> REPLACE).
    dup = next(
        x for x in sorted(src.slots)
        if x not in slots and s.execute_command("CLUSTER", "COUNTKEYSINSLOT", x) >= 2
    )  # fmt: skip
    t.execute_command("CLUSTER", "SETSLOT", dup, "IMPORTING", src.id)
    s.execute_command("CLUSTER", "SETSLOT", dup, "MIGRATING", tgt.id)
    dup_key = s.execute_command("CLUSTER", "GETKEYSINSLOT", dup, 1)[0]
    s.execute_command("SET", dup_key, b"stale")
    s.execute_command("MIGRATE", tgt.host, tgt.port, "", 0, 5000, "COPY", "KEYS", dup_key)
    s.execute_command("SET", dup_key, b"v:" + dup_key[2:])  # the copy clients were served
    open_before = r.topology().open_slots()
    assert [o.slot for o in open_before] == sorted([*slots, dup])

    report = r.fix()
    assert len(report.repaired) == 4
    topo = r.topology()
    assert topo.open_slots() == [] and topo.healthy
    owners = topo.owners()
    assert owners[slots[0]] == src.id  # nothing had moved: rolled back
    assert owners[slots[1]] == tgt.id and owners[slots[2]] == tgt.id  # completed
    assert verify(cluster, 20_000) == []
    check_ok(cluster.seed)


def _new_keys(nodes: list[RedisNode]) -> int:
    return sum(int(n.client().dbsize()) for n in nodes)


def test_kill_9_at_any_point_then_fix_and_rebalance_converge(redis_cluster_factory):
    keys, big, hashes = 150_000, 2, 2_000
    cluster = redis_cluster_factory(masters=3)
    ds = load(cluster, keys, big=big, hashes=hashes)
    before = digest(cluster, keys, big=big, hashes=hashes)
    new = [cluster.start_node() for _ in range(3)]
    Resharder(cluster.seed).meet(*[n.addr for n in new])
    seed = cluster.seed

    # Worst case, deterministically: it kills itself half-way through a slot's keys.
    run = headroom(
        "rebalance", "--seed", seed, "--use-empty-masters", "--json",
        env={"HEADROOM_RESHARD_CRASH_AFTER_KEYS": "20000"},
    )  # fmt: skip
    assert run.returncode == -signal.SIGKILL, run.stderr
    opened = Resharder(seed).topology().open_slots()
    assert opened, "the crash should leave slots open"
    assert total_keys(cluster) == ds.total
    fixed = headroom("fix", "--seed", seed, "--json")
    assert fixed.returncode == 0, fixed.stderr
    check_ok(seed)
    assert digest(cluster, keys, big=big, hashes=hashes) == before

    # Then from the outside, at random moments while keys are moving.
    rnd = random.Random(2)
    kills = 0
    for _ in range(2):
        moved = _new_keys(new)
        proc = subprocess.Popen(
            [HEADROOM, "redis", "rebalance", "--seed", seed, "--use-empty-masters", "--json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def moving(m: int = moved, p: subprocess.Popen[bytes] = proc) -> bool:
            return _new_keys(new) > m or p.poll() is not None

        wait_until(moving, 60, "keys moving")
        time.sleep(rnd.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        kills += proc.wait(10) == -signal.SIGKILL
        assert total_keys(cluster) == ds.total
        fixed = headroom("fix", "--seed", seed)
        assert fixed.returncode == 0, fixed.stderr
        check_ok(seed)
    assert kills >= 1, "no kill landed while the rebalance ran"

    # A new rebalance repairs whatever is open, then completes.
    done = headroom("rebalance", "--seed", seed, "--use-empty-masters", "--json")
    assert done.returncode == 0, done.stderr
    topo = Resharder(seed).topology()
    counts = sorted(len(m.slots) for m in topo.masters)
    assert sum(counts) == SLOTS and counts[-1] - counts[0] <= 1 and len(counts) == 6
    assert topo.open_slots() == []
    assert digest(cluster, keys, big=big, hashes=hashes) == before
    assert total_keys(cluster) == ds.total
    check_ok(seed)


def test_a_target_that_stops_answering_stops_the_move_clearly_and_fix_repairs(
    redis_cluster_factory,
):
    keys = 100_000
    # A node timeout longer than our detection, so the cluster itself stays up meanwhile.
    node_timeout_s = 15.0
    cluster = redis_cluster_factory(
        masters=3, extra_args=("--cluster-node-timeout", str(int(node_timeout_s * 1000)))
    )
    ds = load(cluster, keys, big=1)
    before = digest(cluster, keys, big=1)
    new = [cluster.start_node() for _ in range(3)]
    Resharder(cluster.seed).meet(*[n.addr for n in new])
    frozen = new[1]
    stopped: list[float] = []

    def freeze(p: ReshardProgress) -> None:
        if p.keys_moved >= 5_000 and not stopped:
            os.kill(frozen.proc.pid, signal.SIGSTOP)
            stopped.append(time.monotonic())

    short = MigrateOptions(
        timeout_ms=500, max_timeout_ms=1000, script_timeout_ms=500, ping_timeout_s=1.0
    )
    r = Resharder(
        cluster.seed, connect=make_connect(socket_timeout=2.0), progress=freeze, options=short
    )
    try:
        with pytest.raises(MigrationError) as caught:
            r.rebalance(use_empty_masters=True)
        waited = time.monotonic() - stopped[0]
    finally:
        os.kill(frozen.proc.pid, signal.SIGCONT)
    message = str(caught.value)
    assert "\n" not in message and frozen.addr in message, message
    assert "stopped answering" in message and "headroom redis fix" in message
    # The bound that matters: noticed (about 3 s here, from the 0.5-2 s timeouts above)
    # before the cluster's own node timeout would fail the node behind our back.
    assert waited < node_timeout_s, f"took {waited:.1f}s to notice"
    # Keys whose MIGRATE timed out may now exist on both sides (the target read them
    # after SIGCONT); clients are served the source's copy until fix completes the move.
    assert total_keys(cluster) >= ds.total

    fixed = headroom("fix", "--seed", cluster.seed, "--json")
    assert fixed.returncode == 0, fixed.stderr
    check_ok(cluster.seed)
    assert digest(cluster, keys, big=1) == before
    assert total_keys(cluster) == ds.total
    done = headroom("rebalance", "--seed", cluster.seed, "--use-empty-masters", "--json")
    assert done.returncode == 0, done.stderr
    assert len([m for m in Resharder(cluster.seed).topology().masters if m.slots]) == 6
    assert digest(cluster, keys, big=1) == before
    check_ok(cluster.seed)
