"""``reactive_hpa``: the Kubernetes HorizontalPodAutoscaler (autoscaling/v2) with its defaults.

The baseline every Headroom result is measured against, so it follows the upstream
controller (``pkg/controller/podautoscaler``: ``horizontal.go``,
``replica_calculator.go``) step by step rather than an idealised formula:

- It syncs every 15 s (``--horizontal-pod-autoscaler-sync-period``) and sees the metric as
  of the sync: the newest trace sample before the sync time. (That is fresher than a
  real metrics pipeline, whose scrape and rate windows add 30-60 s: generous to the HPA.)
- The metric is a Pods metric, requests per second per pod with target ``averageValue =
  capacity_per_unit * slo.target_utilization``. Demand is served by the *ready* pods,
  so each ready pod sees ``demand / ready``; ``usageRatio = that / target``.
- ``currentReplicas`` is the spec (units ordered). Pods ordered but not yet ready are
  Pending, i.e. "unready": their metrics are dropped; if ``usageRatio > 1`` they are
  added back at 0 and the ratio recomputed; no scaling if the recomputed ratio is within
  tolerance or reverses direction, nor if the new count moves against it. Without
  unready pods the recommendation is ``ceil(usageRatio * readyPods)``.
- Tolerance 0.1: no change while ``|usageRatio - 1| <= 0.1``.
- Behaviour defaults: scale-up with no stabilisation, at most ``max(100 %, 4 pods)`` more
  than the replicas at the start of the 15 s period (``selectPolicy: Max``); scale-down
  to the highest recommendation of the last 300 s (stabilisation window), at most 100 %
  per 15 s. Bounds ``[minReplicas, maxReplicas]`` last; a spec outside them is first
  brought inside without metrics, as the controller does.

Simplifications, documented: no missing-metric pods (every ready pod reports); the
HPA's ``minReplicas`` is at least 1 (scale to zero is an alpha feature); this is the
documented default ``behavior`` — an HPA created with no ``behavior`` at all takes the
controller's legacy path, whose scale-up limit is ``max(2 * current, 4)`` instead of
``max(2 * current, current + 4)``: the two differ only below 4 replicas.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray
from headroom.policies.simulate import Fleet, History


@dataclass(frozen=True)
class HpaBehavior:
    """The HPA knobs; the defaults are Kubernetes' own."""

    sync_period: float = 15.0
    tolerance: float = 0.1
    scale_up_window: float = 0.0
    scale_up_percent: float = 100.0
    scale_up_pods: int = 4
    scale_up_period: float = 15.0
    scale_down_window: float = 300.0
    scale_down_percent: float = 100.0
    scale_down_period: float = 15.0


class ReactiveHpa:
    """Kubernetes HPA v2 on demand per ready unit against the policy's target utilisation."""

    name = "reactive_hpa"

    def __init__(
        self, target: Target, spec: PolicySpec, behavior: HpaBehavior | None = None
    ) -> None:
        self.behavior = behavior or HpaBehavior()
        self.target_per_pod = target.capacity_per_unit * spec.slo.target_utilization
        self.min_replicas = max(1, target.min_units)
        self.max_replicas = target.max_units
        self._recommendations: deque[tuple[float, int]] = deque()
        self._scale_events: deque[tuple[float, int]] = deque()  # (time, replica change)

    def initial_units(self, default: int) -> int:
        return default

    def decision_times(self, grid: FloatArray) -> FloatArray:
        end = float(grid[-1]) + (float(grid[-1] - grid[-2]) if grid.size > 1 else 0.0)
        return np.arange(float(grid[0]), end, self.behavior.sync_period, dtype=np.float64)

    # -- replica_calculator.go: calcPlainMetricReplicas ---------------------------------

    def metric_recommendation(self, demand: float, current: int, ready: int) -> int | None:
        """Replicas the metric asks for; ``None`` when the HPA cannot compute (no metrics)."""
        if ready <= 0 or math.isnan(demand):
            return None
        tol = self.behavior.tolerance
        usage_ratio = (demand / ready) / self.target_per_pod
        unready = max(0, current - ready)
        if not (unready > 0 and usage_ratio > 1.0):
            if abs(1.0 - usage_ratio) <= tol:
                return current
            return math.ceil(usage_ratio * ready)
        # Scale-up with unready pods: count them at zero usage and recompute.
        pods = ready + unready
        new_ratio = (demand / pods) / self.target_per_pod
        if abs(1.0 - new_ratio) <= tol or new_ratio < 1.0:
            return current
        replicas = math.ceil(new_ratio * pods)
        return current if replicas < current else replicas

    # -- horizontal.go: normalizeDesiredReplicasWithBehaviors ---------------------------

    def _stabilize(self, now: float, current: int, desired: int) -> int:
        b = self.behavior
        up_cutoff, down_cutoff = now - b.scale_up_window, now - b.scale_down_window
        up, down = desired, desired
        for at, rec in self._recommendations:
            if at > up_cutoff:
                up = min(up, rec)
            if at > down_cutoff:
                down = max(down, rec)
        keep_after = min(up_cutoff, down_cutoff)
        while self._recommendations and self._recommendations[0][0] < keep_after:
            self._recommendations.popleft()
        self._recommendations.append((now, desired))
        stabilized = current
        if stabilized < up:
            stabilized = up
        if stabilized > down:
            stabilized = down
        return stabilized

    def _changes_since(self, cutoff: float) -> tuple[int, int]:
        added = sum(c for at, c in self._scale_events if at > cutoff and c > 0)
        removed = sum(-c for at, c in self._scale_events if at > cutoff and c < 0)
        return added, removed

    def _rate_limit(self, now: float, current: int, desired: int) -> int:
        b = self.behavior
        if desired > current:
            added, removed = self._changes_since(now - b.scale_up_period)
            start = current - added + removed
            by_percent = math.ceil(start * (1.0 + b.scale_up_percent / 100.0))
            limit = max(current, max(start + b.scale_up_pods, by_percent))
            return min(desired, min(self.max_replicas, limit))
        if desired < current:
            added, removed = self._changes_since(now - b.scale_down_period)
            start = current - added + removed
            limit = min(current, int(start * (1.0 - b.scale_down_percent / 100.0)))
            return max(desired, max(self.min_replicas, limit))
        return desired

    def reconcile(self, now: float, demand: float, current: int, ready: int) -> int:
        """One HPA sync: the new spec replicas (``current`` when it does not scale)."""
        if current > self.max_replicas:
            desired = self.max_replicas
        elif current < self.min_replicas:
            desired = self.min_replicas
        else:
            metric = self.metric_recommendation(demand, current, ready)
            if metric is None:
                return current
            stabilized = self._stabilize(now, current, metric)
            desired = self._rate_limit(now, current, stabilized)
        if desired != current:
            self._scale_events.append((now, desired - current))
            horizon = now - max(self.behavior.scale_up_period, self.behavior.scale_down_period)
            while self._scale_events and self._scale_events[0][0] <= horizon:
                self._scale_events.popleft()
        return desired

    def decide(self, now: float, past: History, fleet: Fleet) -> int:
        return self.reconcile(now, past.last_value, fleet.ordered, fleet.ready)
