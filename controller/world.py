"""The outside world a policy's plug-ins are built over (:class:`World`).

The three registries (``targets/registry.py``, ``signals/registry.py``,
``alerts/config.py``) build each plug-in from its policy section and a World; the
network is always passed in through it, never built from globals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from headroom.controller.kube import Kube
from headroom.controller.redis.connection import NodeAddr, RedisAuth
from headroom.controller.redis.scaler import ClusterScaler
from headroom.controller.signals.access import UNRESTRICTED, SourceAccess
from headroom.policies.errors import PolicyError, field_error
from headroom.policies.policy import Target

if TYPE_CHECKING:  # prometheus.py builds its sources over a World
    from headroom.controller.signals.prometheus import PromClient


@dataclass(frozen=True)
class World:
    """The outside world a policy's parts are built over; every field is optional, and a
    kind that needs a missing one is refused with a one-line error."""

    kube: Kube | None = None  # Kubernetes targets (the operator)
    local_scaler: Callable[[Target], ClusterScaler] | None = None  # LocalRedisCluster
    redis_seed: str | None = None  # Redis INFO seed when metrics.qps.url gives none
    redis_auth: RedisAuth | None = None  # Redis INFO: the cluster's password/TLS
    # Redis INFO of metrics.qps.redisCluster: that RedisCluster's address and own
    # password/TLS, by name (the operator: in the policy's namespace)
    redis_cluster: Callable[[str], tuple[NodeAddr, RedisAuth]] | None = None
    prometheus: Callable[[str], PromClient] | None = None  # client per URL (tests pass one)
    now: Callable[[], float] = field(default=time.time)  # the sources' clock (scaled: demo)
    stale_after: float = 30.0  # Redis INFO: samples older than this are "stale"
    source_timeout: float = 5.0  # Prometheus: the budget of one call, retries included
    access: SourceAccess = UNRESTRICTED  # files and addresses sources may use (operator: few)

    def kube_for(self, target: Target) -> Kube:
        """The Kubernetes client a target of ``target``'s kind is built over, or a
        one-line error naming the target."""
        if self.kube is None:
            raise kind_error(
                target, f"{target.kind} needs a Kubernetes cluster (run it with the operator)"
            )
        return self.kube


def kind_error(target: Target, message: str) -> PolicyError:
    """A one-line error on the target's ``kind``: ``policy: targets[web].kind: ...``."""
    return PolicyError(field_error("policy", f"targets[{target.name}].kind", message))
