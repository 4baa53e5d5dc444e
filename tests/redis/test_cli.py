"""`headroom redis` on bad input: one stderr line, non-zero exit, the cluster unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headroom.cli.main import app
from headroom.controller.redis.resharder import Resharder
from tests.support.procs import free_port, wait_until
from tests.support.redis_cluster import RedisTestCluster

pytestmark = [pytest.mark.redis]

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["redis", *args])


def one_error_line(result, code: int) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return str(lines[0])


def slot_map(seed: str) -> dict[int, str]:
    return Resharder(seed).topology().owners()


@pytest.fixture
def cluster(redis_cluster_factory):
    return redis_cluster_factory(masters=3)


def test_unreachable_seed():
    port = free_port()
    line = one_error_line(run("status", "--seed", f"127.0.0.1:{port}"), 1)
    assert f"127.0.0.1:{port}" in line


def test_unreachable_seed_from_a_real_process():
    port = free_port()
    headroom = str(Path(sys.executable).parent / "headroom")
    proc = subprocess.run(
        [headroom, "redis", "rebalance", "--seed", f"127.0.0.1:{port}", "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: cannot reach")
    assert proc.stdout == ""


def test_not_a_cluster(plain_redis):
    line = one_error_line(run("rebalance", "--seed", plain_redis.addr), 1)
    assert "not running in cluster mode" in line


def test_unknown_node_zero_weights_bad_weight_leave_the_cluster_unchanged(cluster):
    before = slot_map(cluster.seed)
    line = one_error_line(run("drain", "--seed", cluster.seed, "--node", "deadbeef"), 1)
    assert "deadbeef" in line
    ids = [n.node_id() for n in cluster.nodes]
    weights = [a for i in ids for a in ("--weight", f"{i[:12]}=0")]
    line = one_error_line(run("rebalance", "--seed", cluster.seed, *weights), 2)
    assert "sum to zero" in line
    one_error_line(run("rebalance", "--seed", cluster.seed, "--weight", "oops"), 2)
    one_error_line(run("rebalance", "--seed", cluster.seed, "--weight", "nobody=2"), 1)
    assert slot_map(cluster.seed) == before


def test_draining_every_master_at_once_is_refused(cluster):
    before = slot_map(cluster.seed)
    nodes = [a for n in cluster.nodes for a in ("--node", n.node_id()[:10])]
    line = one_error_line(run("drain", "--seed", cluster.seed, *nodes), 1)
    assert "last masters" in line
    assert slot_map(cluster.seed) == before


def test_dry_run_prints_the_plan_and_touches_nothing(cluster):
    ids = [n.node_id() for n in cluster.nodes]
    before = slot_map(cluster.seed)
    result = run(
        "rebalance", "--seed", cluster.seed, "--dry-run", "--json", "--weight", f"{ids[0]}=2"
    )
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)["plan"]
    assert plan["after"][ids[0]] == 8192 and plan["slots"] > 0
    assert sum(p["slots"] for p in plan["pairs"]) == plan["slots"]
    assert slot_map(cluster.seed) == before
    status = json.loads(run("status", "--seed", cluster.seed, "--json").stdout)
    assert status["healthy"] and status["masters"] == 3 and status["slots_covered"] == 16384


def test_dry_run_on_a_balanced_cluster_says_so(cluster):
    result = run("rebalance", "--seed", cluster.seed, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "already balanced: no slot would move\n"
    result = run("rebalance", "--seed", cluster.seed, "--dry-run", "--json")
    out = json.loads(result.stdout)
    assert out["balanced"] is True and out["plan"]["slots"] == 0
    weighted = run(
        "rebalance", "--seed", cluster.seed, "--dry-run", "--json",
        "--weight", f"{cluster.nodes[0].node_id()}=2",
    )  # fmt: skip
    assert json.loads(weighted.stdout)["balanced"] is False


def test_draining_the_last_master_is_refused(tmp_path):
    single = RedisTestCluster(tmp_path)
    try:
        node = single.start_node()
        node.client().execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        wait_until(lambda: node.client().cluster("info")["cluster_state"] == "ok", 20, "ok")
        line = one_error_line(run("drain", "--seed", node.addr, "--node", node.node_id()), 1)
        assert "last master" in line
        assert len(slot_map(node.addr)) == 16384
    finally:
        single.stop()
