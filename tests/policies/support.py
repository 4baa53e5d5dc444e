"""A one-target policy the rule's tests share: a Redis Cluster of 100k QPS a master."""

from __future__ import annotations

from typing import Any

from headroom.policies.policy import PolicySpec, parse_policy


def cart_policy(**over: Any) -> PolicySpec:
    """``redis/cart``: 3..20 masters of 100k QPS, 10 minutes a change; ``target`` updates
    the target's fields, everything else is the policy's."""
    target: dict[str, Any] = {
        "name": "cart",
        "namespace": "redis",
        "kind": "RedisCluster",
        "capacityPerUnit": 100_000,
        "minUnits": 3,
        "maxUnits": 20,
        "provisioning": {"fixedSeconds": "10m"},
    }
    target.update(over.pop("target", {}))
    return parse_policy({"targets": [target], **over}, "test")
