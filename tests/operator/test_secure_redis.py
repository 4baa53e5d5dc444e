"""Redis Clusters the operator creates are secure by default.

The chart's example RedisCluster (no ``spec.auth``) gets a generated password in a Secret
the RedisCluster owns; every pod refuses an unauthenticated client with NOAUTH and runs
with protected mode on; the password is on no process's command line (``/proc``), nor in
the operator's log, the Events or the status. ``spec.auth`` names a Secret of one's own
instead. The probe the StatefulSet declares really tells NOAUTH from PONG. With
``spec.tls`` the nodes speak only TLS (clients, replication, the bus) and the operator
forms and scales the cluster over it.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from headroom.controller.operator.resources import readiness_command
from headroom.controller.operator.specs import RedisClusterSpec
from headroom.controller.redis.connection import NodeAddr, RedisAuth, make_cluster_client
from tests.harness.tls import node_certs
from tests.operator.support import GROUP, NS, PLURAL, VERSION, OperatorEnv, wait_for
from tests.support.chart import example
from tests.support.procs import free_port, kill_group, spawn, wait_until
from tests.support.redis_auth import anonymous_reply, assert_refuses_unauthenticated, cmdlines_with

pytestmark = [pytest.mark.k8s, pytest.mark.redis, pytest.mark.slow]


def _secret_text(env: OperatorEnv, name: str, key: str) -> str:
    secret = env.core.read_namespaced_secret(name, NS)
    return base64.b64decode(secret.data[key]).decode()


def test_the_chart_example_cluster_requires_a_password_that_nothing_shows(
    env: OperatorEnv,
) -> None:
    op = env.start_operator("op-a")
    body = example("rediscluster-cart.yaml")
    assert "auth" not in body["spec"]
    env.custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
    wait_for(env.ready_with("cart", 3), 180, "cart Ready with 3 masters")

    # The generated password, in a Secret the RedisCluster owns (garbage-collected with it).
    secret = env.core.read_namespaced_secret("cart-redis-auth", NS)
    owners = secret.metadata.owner_references
    assert [(o.kind, o.name, o.uid) for o in owners] == [
        ("RedisCluster", "cart", env.get("cart")["metadata"]["uid"])
    ]
    assert secret.metadata.labels["headroom.dev/managed-by"] == "headroom"
    password = _secret_text(env, "cart-redis-auth", "password")
    assert len(password) >= 32

    # Every pod: NOAUTH without it, protected mode on, requirepass/masterauth set.
    nodes = env.pods("cart").nodes
    assert len(nodes) == 6
    for node in nodes:
        assert_refuses_unauthenticated(node.host, node.port, password)

    # The pod template: no --protected-mode no, no password in command, args or probes.
    sts = env.apps.read_namespaced_stateful_set("cart", NS)
    container = sts.spec.template.spec.containers[0]
    words = [*container.command, *container.args, *container.readiness_probe._exec.command]
    assert "--protected-mode" not in words and "--requirepass" not in words
    assert not any(password in w for w in words)
    (auth_env,) = [e for e in container.env if e.name == "REDISCLI_AUTH"]
    assert auth_env.value_from.secret_key_ref.name == "cart-redis-auth"

    # Nowhere to be seen: /proc/*/cmdline (redis-servers, operator), log, Events, status.
    pids = env.kubelet.pids()
    assert len(pids) == 6 and cmdlines_with(password, pids) == []
    assert cmdlines_with(password) == []
    assert password not in op.text()
    events = env.core.list_namespaced_event(NS).items
    assert any(e.reason == "AuthSecretCreated" for e in events)
    assert not any(password in (e.message or "") for e in events)
    assert password not in json.dumps(env.get("cart"))
    for proc in env.kubelet.processes.values():
        assert password not in (proc.workdir / "redis.log").read_text(errors="replace")


def test_spec_auth_names_a_secret_of_ones_own(env: OperatorEnv) -> None:
    env.start_operator("op-a")
    mine = "a-password-of-my-own-0123456789"
    env.core.create_namespaced_secret(
        NS,
        {
            "metadata": {"name": "shop-redis"},
            "data": {"pw": base64.b64encode(mine.encode()).decode()},
        },
    )
    env.create_cluster(
        "shop", masters=3, replicas=0, auth={"secretName": "shop-redis", "key": "pw"}
    )
    wait_for(env.ready_with("shop", 3), 180, "shop Ready with 3 masters")
    assert _secret_text(env, "shop-redis-auth", "password") == mine
    for node in env.pods("shop").nodes:
        assert_refuses_unauthenticated(node.host, node.port, mine)


def test_the_readiness_probe_needs_the_password_from_the_environment(tmp_path: Path) -> None:
    """The StatefulSet's probe command, run as the kubelet runs it: only the right
    REDISCLI_AUTH makes it pass (redis-cli itself exits 0 on NOAUTH)."""
    port = free_port()
    server = spawn(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--requirepass", "probe-pw"],  # a test server: its own argv is not under test
        tmp_path,
        tmp_path / "redis.log",
    )  # fmt: skip
    try:
        wait_until(lambda: anonymous_reply("127.0.0.1", port).startswith(b"-NOAUTH"), 10, "redis")
        probe = readiness_command(RedisClusterSpec(masters=3, port=port))
        assert not any("probe-pw" in w for w in probe)

        def run(password: str | None) -> int:
            env = {k: v for k, v in os.environ.items() if k != "REDISCLI_AUTH"}
            if password is not None:
                env["REDISCLI_AUTH"] = password
            return subprocess.run(probe, env=env, capture_output=True, timeout=10).returncode

        assert run("probe-pw") == 0
        assert run(None) != 0
        assert run("wrong") != 0
    finally:
        kill_group(server)


def _plain_reply(host: str, port: int) -> bytes:
    """What a client without TLS gets: the node waits for a TLS handshake, then hangs up."""
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64)
    except OSError:
        return b""


def test_a_tls_cluster_speaks_only_tls_and_scales_over_it(env: OperatorEnv, tmp_path: Path) -> None:
    certs = node_certs()
    env.core.create_namespaced_secret(
        NS,
        {
            "metadata": {"name": "cart-tls"},
            "type": "kubernetes.io/tls",
            "data": certs.secret_data(),
        },
    )
    op = env.start_operator("op-a")
    env.create_cluster("cart", masters=3, replicas=1, tls={"secretName": "cart-tls"})
    wait_for(env.ready_with("cart", 3), 180, "TLS cart Ready with 3 masters")
    password = _secret_text(env, "cart-redis-auth", "password")
    ca = tmp_path / "ca.crt"
    ca.write_bytes(certs.ca_pem)
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False  # pods are reached by IP; the chain is what is checked
    verify: dict[str, Any] = {"ssl": True, "ssl_ca_certs": str(ca), "ssl_check_hostname": False}

    nodes = env.pods("cart").nodes
    assert len(nodes) == 6
    for node in nodes:
        assert _plain_reply(node.host, node.port) == b""
        assert_refuses_unauthenticated(node.host, node.port, password, tls=ctx, **verify)

    # Replication runs over TLS (tls-replication): every replica's link to its master is up.
    # Ready means the cluster is formed; a replica's first sync (a full resync over TLS)
    # can still be under way, so wait for the links, bounded by that sync.
    def links() -> list[str]:
        found = []
        for node in nodes:
            c = redis.Redis(host=node.host, port=node.port, password=password, **verify)
            info = c.info("replication")
            if info["role"] == "slave":
                found.append(info["master_link_status"])
            c.close()
        return found

    wait_for(lambda: links() == ["up"] * 3, 60, "every replica's TLS link up")

    # Keys written over TLS survive a scale-out whose MIGRATEs go over TLS (tls-cluster).
    auth = RedisAuth(password=password, tls=True, tls_ca=str(ca), tls_check_hostname=False)
    client = make_cluster_client(NodeAddr(nodes[0].host, nodes[0].port), auth)
    values = {f"t:{i}": f"v{i}" for i in range(3000)}
    for key, value in values.items():
        client.set(key, value)
    client.close()
    env.scale("cart", 4)
    wait_for(env.ready_with("cart", 4), 240, "TLS cart Ready with 4 masters")
    assert len(env.pods("cart").nodes) == 8
    client = make_cluster_client(NodeAddr(nodes[0].host, nodes[0].port), auth)
    keys = list(values)
    got = client.mget_nonatomic(keys)
    client.close()
    assert [g.decode() if g else None for g in got] == [values[k] for k in keys]
    assert password not in op.text()
    sts = env.apps.read_namespaced_stateful_set("cart", NS)
    probe = sts.spec.template.spec.containers[0].readiness_probe._exec.command
    assert "--tls --cacert /etc/redis/tls/ca.crt" in probe[-1]
