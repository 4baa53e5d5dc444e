"""LocalProvisioner: real redis-server processes, state shared through the JSON file."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import redis

from headroom.controller.provisioning.local import LocalProvisioner
from headroom.policies.errors import InputError, ProvisioningError
from tests.local.conftest import (
    LocalFactory,
    cluster_client,
    free_base_port,
    load_keys,
    missing_keys,
    pid_alive,
)
from tests.support.redis_auth import assert_refuses_unauthenticated, cmdlines_with

pytestmark = pytest.mark.redis


def test_up_three_masters_serves_a_cluster_client_and_down_leaves_no_process(
    local_factory: LocalFactory,
) -> None:
    provisioner, scaler = local_factory(masters=3)

    nodes = provisioner.list_nodes()
    assert [n.ordinal for n in nodes] == [0, 1, 2]
    assert len({n.addr for n in nodes}) == 3
    for node in nodes:
        client = redis.Redis(
            host=node.addr.host,
            port=node.addr.port,
            decode_responses=True,
            password=provisioner.auth.password,
        )
        assert client.cluster("myid") == node.node_id
        client.close()
    status = scaler.status()
    assert status.healthy and status.masters_serving == 3
    assert sorted(n.slots for n in status.nodes) == [5461, 5461, 5462]

    cluster = cluster_client(provisioner)
    values = load_keys(cluster, 3000)
    assert missing_keys(provisioner, values) == []
    cluster.close()

    # A second handle on the same dir (another CLI invocation) sees the same nodes.
    again = LocalProvisioner.open(provisioner.state_dir)
    assert again.list_nodes() == nodes
    pids = [p.pid for p in again.processes()]
    assert all(pid is not None and pid_alive(pid) for pid in pids)

    stopped = again.destroy()
    assert sorted(stopped) == sorted(p for p in pids if p is not None)
    assert not any(pid_alive(pid) for pid in stopped)
    assert not provisioner.state_dir.exists()


def test_nodes_require_a_generated_password_that_no_command_line_shows(
    local_factory: LocalFactory,
) -> None:
    provisioner, scaler = local_factory(masters=3, replicas=1)
    password = provisioner.auth.password
    assert password and len(password) >= 32
    assert scaler.status().healthy  # replicas authenticated to their masters (masterauth)
    for node in provisioner.list_nodes():
        assert_refuses_unauthenticated(node.addr.host, node.addr.port, password)
    pids = [p.pid for p in provisioner.processes() if p.pid is not None]
    assert len(pids) == 6
    assert cmdlines_with(password, pids) == []
    assert cmdlines_with(password) == []  # nor any other process's (this test's included)
    for name in ("password", "redis-auth.conf"):
        assert (provisioner.state_dir / name).stat().st_mode & 0o077 == 0
    other = LocalProvisioner.create(provisioner.state_dir.with_name("other"), base_port=1)
    assert other.auth.password != password  # one password per cluster
    other.destroy()


def test_a_stale_pid_is_never_killed_and_the_node_counts_as_down(tmp_path: Path) -> None:
    provisioner = LocalProvisioner.create(tmp_path / "local", base_port=free_base_port(4))
    try:
        node = provisioner.add_node()
        (proc,) = provisioner.processes()
        assert proc.pid is not None
        os.kill(proc.pid, 9)
        # The pid now points at this very test process: a stranger that must survive.
        (proc.workdir / "redis.pid").write_text(f"{os.getpid()}\n")
        state = (provisioner.state_dir / "state.json").read_text()
        (provisioner.state_dir / "state.json").write_text(
            state.replace(f'"pid": {proc.pid}', f'"pid": {os.getpid()}')
        )
        assert [p.pid for p in provisioner.processes()] == [None]
        provisioner.remove_node(node.name)
        assert provisioner.list_nodes() == []
        assert pid_alive(os.getpid())
    finally:
        provisioner.destroy()


def test_a_taken_port_fails_clearly_and_records_nothing(tmp_path: Path) -> None:
    base = free_base_port(2)
    provisioner = LocalProvisioner.create(tmp_path / "local", base_port=base)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", base))
        blocker.listen()
        with pytest.raises(ProvisioningError, match=f"port {base} on 127.0.0.1 is in use"):
            provisioner.add_node(port=base)
        assert provisioner.list_nodes() == []
        # Without an explicit port the provisioner steps over the taken one.
        node = provisioner.add_node()
        assert node.addr.port != base
    provisioner.destroy()


def test_open_without_state_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no local cluster is up"):
        LocalProvisioner.open(tmp_path / "nothing")
