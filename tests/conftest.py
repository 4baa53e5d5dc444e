"""Fixtures shared by every suite."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support import durations
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


@pytest.hookimpl(trylast=True)  # after -m/-k deselected what will not run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ``long`` tests one after another on one worker (their claims run against the
    wall clock: two at once, with lint beside them, missed their deadlines on a loaded
    machine), the others spread longest first over ``make test``'s workers (``--dist
    worksteal``), so each worker starts on a long test and ends on short ones that idle
    workers steal. Seconds are measured (tests/durations.json) or guessed from the
    ``slow`` marker. Every worker computes the same order (xdist requires it) from the
    same file and worker count: see ``tests.support.durations.worker_order``."""
    known = durations.load()
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))

    def seconds(item: pytest.Item) -> float:
        return durations.expected(item.nodeid, {m.name for m in item.iter_markers()}, known)

    def chained(item: pytest.Item) -> bool:
        return item.get_closest_marker("long") is not None

    items[:] = durations.worker_order(items, seconds, workers, chained)


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
