"""Client demand from INFO commandstats: data commands count, admin and wrappers do not."""

from __future__ import annotations

import pytest

from headroom.controller.signals.redis_samples import demand_calls
from tests.support.redis_cluster import RedisNode

pytestmark = pytest.mark.redis


def test_scripts_and_transactions_count_by_their_inner_commands(plain_redis: RedisNode) -> None:
    r = plain_redis.client()
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
