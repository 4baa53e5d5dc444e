"""Fixtures shared by every suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.redis_cluster import (
    RedisNode,
    RedisTestCluster,
    start_cluster,
    start_plain_redis,
)

ClusterFactory = Callable[..., RedisTestCluster]

# `pytest --hypothesis-profile=long` runs every property test with ten times the cases
# (the fuzz suite in tests/fuzz scales its per-parser counts by the same factor).
# Registered here, in the first conftest pytest loads, so the option can select it.
settings.register_profile("long", max_examples=1000, deadline=None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that run for minutes first, then the slow ones (stable otherwise). ``make
    test`` gives each of its two workers half of this list (``--dist worksteal``) and an
    idle worker takes queued tests from the other: the long one starts at once on one
    worker and everything else is shared around it, instead of one long test running
    alone at the end."""
    items.sort(
        key=lambda item: (
            0 if item.get_closest_marker("long") else 1 if item.get_closest_marker("slow") else 2
        )
    )


@pytest.fixture
def redis_cluster_factory(tmp_path: Path) -> Iterator[ClusterFactory]:
    """Start real Redis Clusters on loopback; every process is killed at teardown."""
    started: list[RedisTestCluster] = []

    def make(
        masters: int = 3, replicas: int = 0, extra_args: tuple[str, ...] = ()
    ) -> RedisTestCluster:
        cluster = start_cluster(tmp_path / f"cluster{len(started)}", masters, replicas, extra_args)
        started.append(cluster)
        return cluster

    yield make
    for cluster in started:
        cluster.stop()


@pytest.fixture
def plain_redis(tmp_path: Path) -> Iterator[RedisNode]:
    """A standalone redis-server on loopback (not a cluster); killed at teardown."""
    node = start_plain_redis(tmp_path / "plain")
    yield node
    node.stop()
