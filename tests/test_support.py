"""The shared test cluster really is a working Redis Cluster, and it cleans up."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster

from tests.conftest import ClusterFactory

pytestmark = pytest.mark.redis


def test_cluster_factory_starts_and_stops(redis_cluster_factory: ClusterFactory) -> None:
    cluster = redis_cluster_factory(masters=3)
    host, port = cluster.seed.split(":")
    client = RedisCluster(host=host, port=int(port), decode_responses=True)
    for i in range(100):
        client.set(f"k{i}", i)
    assert client.dbsize(target_nodes=RedisCluster.PRIMARIES) == 100
    assert [client.get(f"k{i}") for i in range(100)] == [str(i) for i in range(100)]
    client.close()
    cluster.stop()
    assert all(n.proc.poll() is not None for n in cluster.nodes)
    with pytest.raises(redis.ConnectionError):
        cluster.nodes[0].client().ping()
