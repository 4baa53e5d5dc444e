"""RedisScalerTarget: scale() returns at once, status() shows the work until it is done."""

from __future__ import annotations

import time

import pytest

from headroom.controller.targets.redis_scaler import RedisScalerTarget
from headroom.policies.errors import InputError
from tests.local.conftest import LocalFactory, cluster_client, load_keys, missing_keys

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_scale_returns_at_once_and_status_goes_from_busy_to_ready(
    local_factory: LocalFactory,
) -> None:
    provisioner, scaler = local_factory(masters=2)
    client = cluster_client(provisioner)
    values = load_keys(client, 10_000)
    client.close()
    target = RedisScalerTarget(scaler, name="redis/test")
    try:
        assert target.status().desired == 2 and target.status().ready == 2

        started = time.monotonic()
        target.scale(3, reason="test")
        assert time.monotonic() - started < 0.5
        first = target.status()
        assert first.desired == 3 and first.busy

        seen: list[str] = []
        deadline = time.monotonic() + 60
        while True:
            status = target.status()
            seen.append(status.detail)
            if not status.busy:
                break
            assert time.monotonic() < deadline, f"still busy: {status}"
            time.sleep(0.05)
        assert status.desired == status.ready == 3
        assert status.detail == ""
        assert any(d for d in seen), "status never said what it was doing"
        assert target.last_error is None
        assert missing_keys(provisioner, values) == []

        with pytest.raises(InputError):
            target.scale(0, reason="test")
    finally:
        target.close()
