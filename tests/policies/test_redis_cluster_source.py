"""``metrics.qps.redisCluster``: a one-line error naming the field for every misuse, and
outside the operator (no RedisCluster to read) a refusal rather than a guess."""

from __future__ import annotations

import pytest

from headroom.controller.assembly import World, build_source
from headroom.policies.errors import PolicyError
from headroom.policies.policy import load_policy

POLICY = "targets:\n  - {name: cart, kind: RedisCluster, capacityPerUnit: 100}\n"


@pytest.mark.parametrize(
    ("qps", "line"),
    [
        (
            "{source: csv, redisCluster: cart}",
            "p.yaml: metrics.qps: redisCluster needs source redis",
        ),
        (
            "{source: redis, url: '10.0.0.1:6379', redisCluster: cart}",
            "p.yaml: metrics.qps: redisCluster and url are exclusive (the cluster has the address)",
        ),
        ("{redisCluster: Cart_1}", "p.yaml: metrics.qps.redisCluster: must be a string matching"),
    ],
)
def test_a_misused_redis_cluster_field_is_one_line_naming_it(qps: str, line: str) -> None:
    with pytest.raises(PolicyError) as err:
        load_policy(POLICY + f"metrics: {{qps: {qps}}}\n", "p.yaml")
    assert str(err.value).startswith(line), str(err.value)
    assert "\n" not in str(err.value)


def test_outside_the_operator_a_named_cluster_is_refused() -> None:
    spec = load_policy(POLICY + "metrics: {qps: {source: redis, redisCluster: cart}}\n")
    assert spec.metrics.qps.redis_cluster == "cart"
    with pytest.raises(PolicyError, match=r"metrics\.qps\.redisCluster: needs the operator"):
        build_source(spec.metrics, World())
