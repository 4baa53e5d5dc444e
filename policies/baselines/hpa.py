"""``reactive_hpa``: the Kubernetes HorizontalPodAutoscaler (autoscaling/v2) with its defaults.

The baseline every Headroom result is measured against. The rule itself is
:class:`~headroom.policies.reactive.HpaRule` (one copy: Headroom's reactive half runs the
same code); this strategy feeds it as the controller would:

- It syncs every 15 s (``--horizontal-pod-autoscaler-sync-period``) and sees the metric as
  of the sync: the newest trace sample before the sync time. (That is fresher than a
  real metrics pipeline, whose scrape and rate windows add 30-60 s: generous to the HPA.)
- The metric is a Pods metric, requests per second per pod with target ``averageValue =
  capacity_per_unit * slo.target_utilization``. Demand is served by the *ready* pods,
  so each ready pod sees ``demand / ready``. ``currentReplicas`` is the spec (units
  ordered); pods ordered but not yet ready are Pending, i.e. "unready".

Simplifications, documented: no missing-metric pods (every ready pod reports); the
HPA's ``minReplicas`` is at least 1 (scale to zero is an alpha feature); this is the
documented default ``behavior`` — an HPA created with no ``behavior`` at all takes the
controller's legacy path, whose scale-up limit is ``max(2 * current, 4)`` instead of
``max(2 * current, current + 4)``: the two differ only below 4 replicas.
"""

from __future__ import annotations

import numpy as np

from headroom.policies.policy import PolicySpec, Target
from headroom.policies.reactive import HpaBehavior, HpaRule
from headroom.policies.series import FloatArray
from headroom.policies.simulate import Fleet, History

__all__ = ["HpaBehavior", "ReactiveHpa"]


class ReactiveHpa(HpaRule):
    """Kubernetes HPA v2 on demand per ready unit against the policy's target utilisation."""

    name = "reactive_hpa"

    def __init__(
        self, target: Target, spec: PolicySpec, behavior: HpaBehavior | None = None
    ) -> None:
        super().__init__(
            target.capacity_per_unit * spec.slo.target_utilization,
            max(1, target.min_units),
            target.max_units,
            behavior,
        )

    def initial_units(self, default: int) -> int:
        return default

    def decision_times(self, grid: FloatArray) -> FloatArray:
        end = float(grid[-1]) + (float(grid[-1] - grid[-2]) if grid.size > 1 else 0.0)
        return np.arange(float(grid[0]), end, self.behavior.sync_period, dtype=np.float64)

    def decide(self, now: float, past: History, fleet: Fleet) -> int:
        return self.reconcile(now, past.last_value, fleet.ordered, fleet.ready)
