"""Fixtures for the local provisioner suites: free port ranges and clusters always torn down."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from headroom.controller.provisioning.local import LocalProvisioner, port_in_use
from headroom.controller.redis.connection import make_cluster_client
from headroom.controller.redis.scaler import ClusterScaler
from tests.support.procs import free_port

LocalFactory = Callable[..., tuple[LocalProvisioner, ClusterScaler]]


def free_base_port(count: int, host: str = "127.0.0.1") -> int:
    """A port P such that P .. P+count-1 and their bus ports are all free right now."""
    for _ in range(200):
        base = free_port(host)
        if base + count + 10000 < 65536 and not any(
            port_in_use(host, p) for p in range(base, base + count)
        ):
            return base
    raise RuntimeError(f"no run of {count} free ports found")


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie left for an absent reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def kill_recorded(state_dir: Path) -> None:
    """Last-resort teardown: stop whatever a state dir still records."""
    if not LocalProvisioner.exists(state_dir):
        return
    try:
        LocalProvisioner.open(state_dir).destroy()
    except Exception:  # noqa: BLE001 - teardown must go on
        for proc in LocalProvisioner.open(state_dir).processes():
            if proc.pid is not None:
                os.kill(proc.pid, 9)


@pytest.fixture
def local_factory(tmp_path: Path) -> Iterator[LocalFactory]:
    """Build local clusters with a ClusterScaler; every process is stopped at teardown."""
    made: list[tuple[LocalProvisioner, ClusterScaler]] = []

    def make(
        masters: int = 3, replicas: int = 0, spare_ports: int = 8
    ) -> tuple[LocalProvisioner, ClusterScaler]:
        base = free_base_port(masters * (1 + replicas) + spare_ports)
        provisioner = LocalProvisioner.create(tmp_path / f"local{len(made)}", base_port=base)
        scaler = ClusterScaler(provisioner, replicas_per_master=replicas, auth=provisioner.auth)
        made.append((provisioner, scaler))
        scaler.scale_masters(masters)
        return provisioner, scaler

    yield make
    for provisioner, scaler in made:
        scaler.close()
        kill_recorded(provisioner.state_dir)


def cluster_client(provisioner: LocalProvisioner) -> redis.RedisCluster:
    addr = provisioner.list_nodes()[0].addr
    return make_cluster_client(addr, provisioner.auth, decode_responses=True)


def load_keys(client: redis.RedisCluster, count: int, prefix: str = "k") -> dict[str, str]:
    values = {f"{prefix}:{i}": f"v{i}" for i in range(count)}
    pipe = client.pipeline()
    for key, value in values.items():
        pipe.set(key, value)
    pipe.execute()
    return values


def missing_keys(provisioner: LocalProvisioner, values: dict[str, str]) -> list[str]:
    """Keys whose value is not (or no longer) there, read with a fresh cluster client.

    Fresh, because redis-py's non-atomic MGET does not refresh a slot table that
    still names a node that has since been stopped.
    """
    client = cluster_client(provisioner)
    keys = list(values)
    found: list[str | None] = []
    for i in range(0, len(keys), 2000):
        found += client.mget_nonatomic(keys[i : i + 2000])
    client.close()
    return [k for k, v in zip(keys, found, strict=True) if v != values[k]]
