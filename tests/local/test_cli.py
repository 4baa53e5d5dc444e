"""`headroom local ...`: CliRunner for behaviour and bad input, one real subprocess run."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headroom.cli.main import app
from tests.local.conftest import free_base_port, kill_recorded, pid_alive

pytestmark = pytest.mark.redis

HEADROOM = Path(sys.executable).parent / "headroom"


@pytest.fixture
def state(tmp_path: Path):
    where = tmp_path / "state"
    yield where
    kill_recorded(where)


def run(*args: str):
    return CliRunner().invoke(app, ["local", *args])


def test_up_status_scale_down_through_the_cli(state: Path) -> None:
    base = free_base_port(8)
    result = run("up", "--masters", "2", "--base-port", str(base), "--dir", str(state), "--json")
    assert result.exit_code == 0, result.output
    up = json.loads(result.stdout)
    assert up["cluster"]["healthy"] and up["cluster"]["masters"] == 2
    assert up["spec"] == {"masters": 2, "replicas": 0}
    assert sorted(int(n["addr"].rsplit(":", 1)[1]) for n in up["cluster"]["nodes"]) == [
        base,
        base + 1,
    ]

    result = run("scale", "--masters", "3", "--dir", str(state), "--json")
    assert result.exit_code == 0, result.output
    scaled = json.loads(result.stdout)
    assert scaled["scale"]["masters_before"] == 2 and scaled["scale"]["masters_after"] == 3
    assert scaled["cluster"]["slots_covered"] == 16384

    result = run("status", "--dir", str(state))
    assert result.exit_code == 0, result.output
    assert "masters 3" in result.stdout and "cluster ok" in result.stdout

    pids = [
        n["pid"]
        for n in json.loads(run("status", "--dir", str(state), "--json").stdout)["cluster"]["nodes"]
    ]
    assert len(pids) == 3 and all(pid_alive(p) for p in pids)
    result = run("down", "--dir", str(state))
    assert result.exit_code == 0, result.output
    assert not any(pid_alive(p) for p in pids)
    assert not state.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--masters", "0"], "--masters must be at least 1, got 0"),
        (["up", "--masters", "2", "--replicas", "-1"], "--replicas must be 0 or more"),
        (["scale", "--masters", "2"], "no local cluster is up"),
        (["status"], "no local cluster is up"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_changes_nothing(
    state: Path, args: list[str], message: str
) -> None:
    result = run(*args, "--dir", str(state))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not state.exists()


def test_up_refuses_a_taken_port_before_starting_anything(state: Path) -> None:
    base = free_base_port(4)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", base + 2))
        blocker.listen()
        result = run("up", "--masters", "3", "--base-port", str(base), "--dir", str(state))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert f"port {base + 2}" in result.stderr and "in use" in result.stderr
    assert not state.exists()


def test_down_without_a_cluster_is_a_no_op(state: Path) -> None:
    result = run("down", "--dir", str(state))
    assert result.exit_code == 0
    assert "nothing to stop" in result.stderr


def test_real_subprocess_up_status_down(state: Path) -> None:
    base = free_base_port(6)

    def headroom(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(HEADROOM), "local", *args, "--dir", str(state)],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    up = headroom("up", "--masters", "3", "--base-port", str(base))
    assert up.returncode == 0, up.stderr
    status = headroom("status", "--json")
    assert status.returncode == 0, status.stderr
    cluster = json.loads(status.stdout)["cluster"]
    assert cluster["healthy"] and cluster["masters"] == 3
    pids = [n["pid"] for n in cluster["nodes"]]
    assert all(pid_alive(p) for p in pids)
    again = headroom("up", "--masters", "3", "--base-port", str(base + 3))
    assert again.returncode == 2 and "already up" in again.stderr
    down = headroom("down")
    assert down.returncode == 0, down.stderr
    assert not any(pid_alive(p) for p in pids)
