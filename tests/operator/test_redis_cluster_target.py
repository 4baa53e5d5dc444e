"""RedisClusterTarget against the real RedisCluster operator (a process, the chart's RBAC)
and real redis pods: the masters go 3 -> 4 -> 3 through /scale, the target is busy while
the operator migrates slots and refuses a second order meanwhile (nothing written), and
no key is lost. The target's client is the test's admin client (the operator's own
ServiceAccount is not the one a CapacityPolicy uses here)."""

from __future__ import annotations

import pytest

from headroom.controller.kube import Kube
from headroom.controller.targets.base import ScaleStatus, TargetBusy
from headroom.controller.targets.redis_cluster import RedisClusterTarget
from tests.operator.support import NS, OperatorEnv, wait_for
from tests.redis.data import load, total_keys

pytestmark = [pytest.mark.k8s, pytest.mark.redis, pytest.mark.slow]
KEYS = 20_000


def test_target_follows_the_operator_and_never_stacks_orders(env: OperatorEnv) -> None:
    env.start_operator("op-a")
    env.create_cluster("cart", masters=3, replicas=0)
    wait_for(env.ready_with("cart", 3), 120, "cart Ready with 3 masters")
    load(env.pods("cart"), KEYS)
    target = RedisClusterTarget(Kube(env.admin), "cart", NS)
    assert target.status() == ScaleStatus(3, 3, False, "")

    target.scale(4, "livestream at 20:00")
    assert env.get("cart")["spec"]["masters"] == 4
    seen_busy: list[ScaleStatus] = []
    refused: list[str] = []

    def converged() -> bool:
        status = target.status()
        if status.busy:
            seen_busy.append(status)
        # The second order once, while busy: asked again and again, one would land in the
        # moment between a busy read and the end of the migration, and rightly be taken.
        if status.busy and not refused:
            try:
                target.scale(5, "a second order while migrating")
            except TargetBusy as err:
                refused.append(str(err))
        return status == ScaleStatus(4, 4, False, "")

    wait_for(converged, 180, "4 masters ready", poll=0.1)
    assert seen_busy and refused, "never saw the migration"
    assert seen_busy[0].desired == 4
    assert all("not scaling to 5 masters" in r for r in refused)
    assert env.get("cart")["spec"]["masters"] == 4  # the second order was never written
    assert env.status("cart")["readyMasters"] == 4

    target.scale(3, "event over")
    wait_for(lambda: target.status() == ScaleStatus(3, 3, False, ""), 180, "back to 3 masters")
    assert total_keys(env.pods("cart")) == KEYS
