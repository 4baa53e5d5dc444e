"""The test data helpers say what went wrong: the live client's errors carry their message."""

from __future__ import annotations

import time

import pytest

from tests.redis.data import LiveClient, load
from tests.support.procs import wait_until

pytestmark = [pytest.mark.redis]


def test_live_client_errors_say_what_happened(redis_cluster_factory) -> None:
    cluster = redis_cluster_factory(masters=3)
    load(cluster, 100)
    with LiveClient(cluster, 100) as live:
        wait_until(lambda: live.ops > 10, 30, "the live client to run")
        for node in cluster.nodes:
            node.stop()
        wait_until(lambda: len(live.errors) > 0, 30, "the live client to meet the outage")
        time.sleep(0.2)
    # Type and message: redis-py 8's repr of an error is only its category and type.
    assert any("Connection refused" in e for e in live.errors), live.errors
    assert all(e.split(":", 1)[1].strip() for e in live.errors), live.errors
