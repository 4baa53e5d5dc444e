"""Client demand from INFO commandstats: data commands count, admin and wrappers do not."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from headroom.controller.signals.redis_info import demand_calls
from tests.support.procs import free_port, kill_group, spawn, wait_until

pytestmark = pytest.mark.redis


@pytest.fixture
def plain_redis(tmp_path: Path) -> Iterator[redis.Redis]:
    port = free_port()
    server = shutil.which("redis-server") or "redis-server"
    argv = [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
        str(tmp_path),
    ]
    proc = spawn(argv, tmp_path, tmp_path / "redis.log")
    client = redis.Redis(port=port, decode_responses=True)
    try:
        wait_until(lambda: bool(client.ping()), 10, "redis-server")
        yield client
    finally:
        client.close()
        kill_group(proc)


def test_scripts_and_transactions_count_by_their_inner_commands(plain_redis: redis.Redis) -> None:
    r = plain_redis
    r.config_resetstat()
    for i in range(10):
        r.set(f"k{i}", i)
    for i in range(5):
        r.get(f"k{i}")
    r.eval("redis.call('SET', KEYS[1], 'a'); return redis.call('GET', KEYS[1])", 1, "s")
    with r.pipeline(transaction=True) as tx:
        tx.incr("n")
        tx.incr("n")
        tx.execute()
    for _ in range(20):
        r.ping()
    r.dbsize()
    r.memory_usage("k1")
    info = r.info("commandstats")
    # 10 SET + 5 GET + (SET + GET inside the script) + 2 INCR inside MULTI/EXEC.
    assert demand_calls(info) == 19
