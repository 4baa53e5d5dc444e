"""A `headroom local scale` killed with SIGKILL mid-way is finished by the next run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from headroom.controller.provisioning.local import LocalProvisioner
from tests.local.conftest import LocalFactory, cluster_client, load_keys, missing_keys

pytestmark = [pytest.mark.redis, pytest.mark.slow]

HEADROOM = Path(sys.executable).parent / "headroom"


def new_master_owns_slots(provisioner: LocalProvisioner, count: int) -> bool:
    """Whether the cluster has grown past its first three nodes and one of them owns a slot."""
    nodes = provisioner.list_nodes()
    if len(nodes) < count:
        return False
    for node in nodes[3:]:
        try:
            c = redis.Redis(
                host=node.addr.host,
                port=node.addr.port,
                socket_timeout=1,
                password=provisioner.auth.password,
            )
            line = next(
                x
                for x in c.execute_command("CLUSTER", "NODES").decode().splitlines()
                if "myself" in x
            )
            c.close()
        except (redis.RedisError, StopIteration):
            continue
        if len(line.split()) > 8:
            return True
    return False


def test_scale_out_killed_mid_rebalance_converges_on_the_next_run(
    local_factory: LocalFactory,
) -> None:
    provisioner, scaler = local_factory(masters=3)
    client = cluster_client(provisioner)
    values = load_keys(client, 20_000)
    client.close()

    proc = subprocess.Popen(
        [str(HEADROOM), "local", "scale", "--masters", "5", "--dir", str(provisioner.state_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not new_master_owns_slots(provisioner, 5):
            assert proc.poll() is None, "scale finished before it could be interrupted"
            assert time.monotonic() < deadline, "scale never reached the rebalance"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    # Killed after the nodes joined and the rebalance began, before it ended.
    interrupted = scaler.status()
    assert len(provisioner.list_nodes()) == 5
    slots = sorted(n.slots for n in interrupted.nodes if n.role == "master")
    assert slots != [3276, 3277, 3277, 3277, 3277], "the kill came too late to test anything"

    again = subprocess.run(
        [str(HEADROOM), "local", "scale", "--masters", "5", "--dir", str(provisioner.state_dir),
         "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    cluster = json.loads(again.stdout)["cluster"]
    assert cluster["healthy"] and cluster["open_slots"] == 0
    assert sorted(n["slots"] for n in cluster["nodes"]) == [3276, 3277, 3277, 3277, 3277]
    assert cluster["keys"] == 20_000
    assert missing_keys(provisioner, values) == []
