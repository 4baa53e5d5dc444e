"""Real Redis Clusters for tests, built with the peer tool (``redis-cli --cluster create``).

Using redis-cli here (not Headroom's own provisioner) means the resharder and the
signal sources are tested on clusters that Headroom did not build itself.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.support.procs import free_ports, kill_group, spawn, wait_until

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


@dataclass
class RedisNode:
    host: str
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes]

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, socket_timeout=5, decode_responses=True)

    def node_id(self) -> str:
        return str(self.client().execute_command("CLUSTER MYID"))

    def stop(self) -> None:
        kill_group(self.proc)


@dataclass
class RedisTestCluster:
    """Processes of one test cluster; ``stop()`` kills every one of them."""

    base_dir: Path
    host: str = "127.0.0.1"
    nodes: list[RedisNode] = field(default_factory=list)

    @property
    def seed(self) -> str:
        return self.nodes[0].addr

    def start_node(self, extra_args: tuple[str, ...] = ()) -> RedisNode:
        """Start one empty cluster-enabled redis-server that has not met anyone."""
        (port,) = free_ports(1, self.host)
        workdir = self.base_dir / f"node-{port}"
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            REDIS_SERVER,
            "--port", str(port),
            "--bind", self.host,
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "5000",
            "--cluster-allow-replica-migration", "no",
            "--appendonly", "no",
            "--save", "",
            "--dir", str(workdir),
            "--daemonize", "no",
            *extra_args,
        ]  # fmt: skip
        node = RedisNode(self.host, port, workdir, spawn(argv, workdir, workdir / "redis.log"))
        self.nodes.append(node)
        wait_until(lambda: bool(node.client().ping()), 10, f"redis-server on {node.addr}")
        return node

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster(
    base_dir: Path, masters: int = 3, replicas: int = 0, extra_args: tuple[str, ...] = ()
) -> RedisTestCluster:
    """A cluster of ``masters`` masters with ``replicas`` replicas each, state ok everywhere."""
    cluster = RedisTestCluster(base_dir)
    try:
        for _ in range(masters * (1 + replicas)):
            cluster.start_node(extra_args)
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *[n.addr for n in cluster.nodes],
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

        def all_ok() -> bool:
            return all(n.client().cluster("info")["cluster_state"] == "ok" for n in cluster.nodes)

        wait_until(all_ok, 30, "cluster_state:ok on every node")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def start_plain_redis(workdir: Path, host: str = "127.0.0.1", port: int | None = None) -> RedisNode:
    """One standalone (not cluster-enabled) redis-server; ``stop()`` it when done.
    ``port``: a given one (restart a stopped node at its address), else a free one."""
    if port is None:
        (port,) = free_ports(1, host)
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [REDIS_SERVER, "--port", str(port), "--bind", host, "--save", "", "--appendonly",
            "no", "--dir", str(workdir)]  # fmt: skip
    node = RedisNode(host, port, workdir, spawn(argv, workdir, workdir / "redis.log"))
    try:
        wait_until(lambda: bool(node.client().ping()), 10, f"plain redis-server on {node.addr}")
    except BaseException:
        node.stop()
        raise
    return node
