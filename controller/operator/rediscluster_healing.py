"""A RedisCluster's healing episode: from the first lost node until the cluster is whole.

The RedisCluster reconciler (``rediscluster.py``) keeps one :class:`Healing` per
cluster and calls :meth:`Healing.track` every pass: it starts an episode (a NodeLost
Event), reports slots lost for good once every pod is back (SlotsLost), ends it when
the cluster is whole with every replica in place (Healed, with the time it took), and
says the Healing condition meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from headroom.controller.kube import now_rfc3339
from headroom.controller.loop import Condition
from headroom.controller.metrics import OperatorMetrics
from headroom.controller.operator.conditions import EventRecorder, object_key
from headroom.controller.operator.rediscluster_shape import Shape, whole
from headroom.controller.operator.specs import RedisClusterSpec
from headroom.controller.redis.heal import Damage

log = logging.getLogger(__name__)


@dataclass
class Healing:
    """One cluster's healing episode (``since`` None: the cluster is whole)."""

    since: str | None = None  # RFC 3339, when a lost node was first seen
    started: float = 0.0  # monotonic, for the time to heal
    nodes: tuple[str, ...] = ()  # what was lost (for the Healed event)
    slots_lost_reported: bool = False

    def track(
        self,
        body: Mapping[str, Any],
        damage: Damage,
        shape: Shape | None,
        spec: RedisClusterSpec,
        *,
        complete: bool,
        record: EventRecorder,
        metrics: OperatorMetrics | None,
    ) -> list[Condition]:
        """Start, report and end a healing episode; the Healing condition while pods wait."""
        ns, name = object_key(body)
        key = f"{ns}/{name}"
        if metrics is not None:
            lost = len(damage.failing_over) + len(damage.slots_lost) + len(damage.gone)
            metrics.set_cluster_damage(key, lost, damage.lost_slots if complete else 0)
        if not damage.whole and self.since is None:
            self.since = now_rfc3339()
            self.started = time.monotonic()
            self.nodes = tuple(
                n.describe() for n in (*damage.failing_over, *damage.slots_lost, *damage.gone)
            )
            record(body, "Warning", "NodeLost", f"healing: {damage.describe()}")
            log.warning("Lost node RedisCluster %s damage=%s", key, damage.describe())
        if damage.slots_lost and complete and not self.slots_lost_reported:
            self.slots_lost_reported = True
            message = slots_lost_message(damage)
            record(body, "Warning", "SlotsLost", message)
            log.error("Lost slots RedisCluster %s %s", key, message)
        if self.since is not None and damage.whole and whole(shape, spec):
            took = time.monotonic() - self.started
            record(
                body,
                "Normal",
                "Healed",
                f"whole again after {took:.1f}s: " + ", ".join(self.nodes),
            )
            log.info(
                "Healed RedisCluster %s seconds=%.1f lost=%s",
                key, took, ",".join(self.nodes),
            )  # fmt: skip
            self.since, self.nodes = None, ()
            self.slots_lost_reported = False
            return [Condition("Healing", "False", "Whole", "")]
        if self.since is None:
            return [Condition("Healing", "False", "Whole", "")]
        return [Condition("Healing", "True", "WaitingForPods", f"since {self.since}")]


def slots_lost_message(damage: Damage) -> str:
    """``N slots lost: <masters> gone with no replica`` (the SlotsLost Event and condition)."""
    gone = ", ".join(n.describe() for n in damage.slots_lost)
    return f"{damage.lost_slots} slots lost: {gone} gone with no replica"
