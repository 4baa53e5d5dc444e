"""`headroom redis` on a password/ACL-protected cluster and on a TLS-only cluster."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from headroom.cli.main import app
from headroom.controller.redis.connection import RedisAuth
from headroom.controller.redis.migrate import MigrateOptions
from headroom.controller.redis.resharder import Resharder
from tests.redis.data import digest, load
from tests.redis.test_reshard import check_ok
from tests.support.procs import free_ports, kill_group, spawn, wait_until
from tests.support.redis_cluster import REDIS_SERVER

pytestmark = [pytest.mark.redis]

runner = CliRunner()
PASSWORD = "s3cret-pw"


def run(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["redis", *args], env=env)


@pytest.mark.slow
def test_password_and_acl_user_on_every_command(redis_cluster_factory):
    keys = 20_000
    cluster = redis_cluster_factory(masters=3)
    load(cluster, keys, big=1)
    before = digest(cluster, keys, big=1)
    extra = cluster.start_node()
    Resharder(cluster.seed).meet(extra.addr)
    extra_id = extra.node_id()
    for node in cluster.nodes:
        c = node.client()
        c.execute_command("ACL", "SETUSER", "ops", "on", ">ops-pw", "~*", "&*", "+@all")
        c.config_set("masterauth", PASSWORD)
        c.config_set("requirepass", PASSWORD)  # last: this client is now unauthenticated
    seed = cluster.seed

    refused = run("status", "--seed", seed)
    assert refused.exit_code == 1
    assert refused.stderr.count("\n") == 1 and "authentication" in refused.stderr.lower()

    # The password comes from the environment (REDISCLI_AUTH, as redis-cli), never argv.
    flag = run("status", "--seed", seed, "--password", PASSWORD)
    assert flag.exit_code == 2 and "--password: is not a known option" in flag.output
    unset = run("status", "--seed", seed, "--password-env", "NOT_SET_ANYWHERE")
    assert unset.exit_code == 2
    assert unset.stderr.strip().endswith(
        "--password-env NOT_SET_ANYWHERE: the environment variable is not set"
    )
    status = run("status", "--seed", seed, "--json", env={"REDISCLI_AUTH": PASSWORD})
    assert status.exit_code == 0, status.stderr
    topo = json.loads(status.stdout)
    assert topo["healthy"] and topo["masters"] == 4 and topo["keys"] == keys + 1

    # MIGRATE carries AUTH (default user) to the target ...
    grown = run("rebalance", "--seed", seed, "--use-empty-masters", "--password-env", "PW",
                "--json", env={"PW": PASSWORD})  # fmt: skip
    assert grown.exit_code == 0, grown.stderr
    report = json.loads(grown.stdout)
    assert report["ok"] and report["slots_moved"] == 4096 and report["keys_moved"] > 4000
    # ... and AUTH2 (an ACL user).
    ops = {"REDISCLI_AUTH": "ops-pw"}
    drained = run("drain", "--seed", seed, "--node", extra_id, "--user", "ops", "--json",
                  env=ops)  # fmt: skip
    assert drained.exit_code == 0, drained.stderr
    assert json.loads(drained.stdout)["slots_moved"] == 4096
    fixed = run("fix", "--seed", seed, "--user", "ops", "--json", env=ops)
    assert fixed.exit_code == 0, fixed.stderr

    for node in cluster.nodes:
        c = redis.Redis(host=node.host, port=node.port, password=PASSWORD)
        c.config_set("requirepass", "")
    assert extra.client().dbsize() == 0
    assert digest(cluster, keys, big=1) == before
    check_ok(seed)


# -- TLS ------------------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certs(d: Path) -> dict[str, str]:
    """A throwaway CA and one certificate for 127.0.0.1, used by servers and client alike."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.crt", "-days", "1", "-subj", "/CN=headroom-test-ca", cwd=d)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "node.key", "-out", "node.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "node.crt", "-days", "1", "-extfile", "san.ext",
             cwd=d)  # fmt: skip
    return {"ca": str(d / "ca.crt"), "cert": str(d / "node.crt"), "key": str(d / "node.key")}


@pytest.fixture
def tls_cluster(tmp_path: Path) -> Iterator[tuple[list[int], dict[str, str]]]:
    """Three TLS-only cluster nodes (no plain port, TLS on the bus): two own slots, one empty."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificates")
    certs = _certs(tmp_path)
    ports = free_ports(3)
    procs = []
    try:
        for port in ports:
            wd = tmp_path / f"node-{port}"
            wd.mkdir()
            argv = [
                REDIS_SERVER, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "5000", "--tls-cluster", "yes",
                "--tls-replication", "yes", "--tls-cert-file", certs["cert"],
                "--tls-key-file", certs["key"], "--tls-ca-cert-file", certs["ca"],
                "--save", "", "--appendonly", "no", "--dir", str(wd),
            ]  # fmt: skip
            procs.append(spawn(argv, wd, wd / "redis.log"))
        clients = [_tls_client(p, certs) for p in ports]
        for c in clients:
            wait_until(functools.partial(c.ping), 15, "TLS redis-server")
        clients[0].execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 8191)
        clients[1].execute_command("CLUSTER", "ADDSLOTSRANGE", 8192, 16383)
        for p in ports[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", p)

        def ok() -> bool:
            return all(
                c.cluster("info")["cluster_state"] == "ok"
                and str(c.execute_command("CLUSTER", "NODES")).count("connected") == 3
                for c in clients
            )

        wait_until(ok, 30, "TLS cluster ok")
        yield ports, certs
    finally:
        for proc in procs:
            kill_group(proc)


def _tls_client(port: int, certs: dict[str, str]) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=certs["ca"],
        ssl_certfile=certs["cert"], ssl_keyfile=certs["key"], socket_timeout=10,
        decode_responses=True,
    )  # fmt: skip


@pytest.mark.slow
def test_tls_only_cluster_status_and_rebalance(tls_cluster):
    ports, certs = tls_cluster
    seed = f"127.0.0.1:{ports[0]}"
    tls = ["--tls", "--tls-ca", certs["ca"], "--tls-cert", certs["cert"], "--tls-key", certs["key"]]
    rc = redis.RedisCluster(
        host="127.0.0.1", port=ports[0], ssl=True, ssl_ca_certs=certs["ca"],
        ssl_certfile=certs["cert"], ssl_keyfile=certs["key"],
    )  # fmt: skip
    pipe = rc.pipeline()
    for i in range(3000):
        pipe.set(f"t:{i}", i)
    pipe.execute()

    plain = run("status", "--seed", seed)
    assert plain.exit_code == 1 and plain.stderr.count("\n") == 1, plain.stderr

    status = run("status", "--seed", seed, *tls, "--json")
    assert status.exit_code == 0, status.stderr
    topo = json.loads(status.stdout)
    assert topo["healthy"] and topo["masters"] == 3 and topo["keys"] == 3000

    # MIGRATE between the nodes goes over TLS too (tls-cluster yes).
    grown = run("rebalance", "--seed", seed, "--use-empty-masters", *tls, "--json")
    assert grown.exit_code == 0, grown.stderr
    report = json.loads(grown.stdout)
    assert report["ok"] and report["slots_moved"] >= 5461 and report["keys_moved"] > 500
    after = json.loads(run("status", "--seed", seed, *tls, "--json").stdout)
    assert after["healthy"] and after["keys"] == 3000
    assert sorted(n["slots"] for n in after["nodes"]) == [5461, 5461, 5462]
    assert [rc.get(f"t:{i}") for i in range(3000)] == [str(i).encode() for i in range(3000)]
    rc.close()


def test_no_password_in_the_text_of_settings_or_a_refusal() -> None:
    """What a log line or an error could print of the settings never holds the password."""
    secret = "do-not-print-me"
    auth = RedisAuth(username="ops", password=secret, tls=True)
    options = MigrateOptions(username="ops", password=secret)
    for text in (repr(auth), str(auth), f"{auth}", repr(options), str(options)):
        assert secret not in text
    assert "***" in repr(auth) and "ops" in repr(options)
