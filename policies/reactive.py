"""The Kubernetes HorizontalPodAutoscaler's rule (autoscaling/v2), in one place.

Two users: the ``reactive_hpa`` baseline (:mod:`headroom.policies.baselines.hpa`) runs it
alone, and the driver (:mod:`headroom.policies.driver`) runs it as the reactive half of
Headroom's rule, ``max(reactive, predictive)``, with the predictive need fed through the
same stabilisation and rate limits. So Headroom with no forecast *is* the HPA.

It follows the upstream controller (``pkg/controller/podautoscaler``: ``horizontal.go``,
``replica_calculator.go``) step by step rather than an idealised formula:

- The metric is requests per second per ready pod against a target ``averageValue``
  (``capacity_per_unit * target utilisation``); ``usageRatio = demand / ready / target``.
- Pods ordered but not yet ready are "unready": their metrics are dropped; if
  ``usageRatio > 1`` they are added back at 0 and the ratio recomputed; no scaling if the
  recomputed ratio is within tolerance or reverses direction, nor if the new count moves
  against it. Without unready pods the recommendation is ``ceil(usageRatio * ready)``.
- Tolerance (0.1): no change while ``|usageRatio - 1| <= tolerance``.
- Behaviour defaults: scale-up with no stabilisation, at most ``max(100 %, 4 pods)`` more
  than the replicas at the start of the 15 s period (``selectPolicy: Max``); scale-down
  to the highest recommendation of the last 300 s (stabilisation window), at most 100 %
  per 15 s. Bounds ``[minReplicas, maxReplicas]`` last; a spec outside them is first
  brought inside without metrics, as the controller does.

The recommendations and scale events of the windows live in the :class:`HpaRule`
object, as they live in the controller's memory (a restarted controller starts them
empty, and so does a restarted driver).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


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


class HpaRule:
    """One HPA's rule and its windows: metric recommendation, stabilisation, rate limits."""

    def __init__(
        self,
        target_per_pod: float,
        min_replicas: int,
        max_replicas: int,
        behavior: HpaBehavior | None = None,
    ) -> None:
        self.behavior = behavior or HpaBehavior()
        self.target_per_pod = target_per_pod
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self._recommendations: deque[tuple[float, int]] = deque()
        self._scale_events: deque[tuple[float, int]] = deque()  # (time, replica change)

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

    def stabilize(
        self, now: float, current: int, desired: int, up_window: float | None = None
    ) -> int:
        """Scale-down to the highest recommendation of the window (records ``desired``)."""
        b = self.behavior
        up_w = b.scale_up_window if up_window is None else up_window
        up_cutoff, down_cutoff = now - up_w, now - b.scale_down_window
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

    def rate_limit(self, now: float, current: int, desired: int) -> int:
        """The scale-up and scale-down limits per period, then the bounds."""
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

    def bounded(self, current: int) -> int | None:
        """A spec outside the bounds is brought inside first, without metrics."""
        if current > self.max_replicas:
            return self.max_replicas
        if current < self.min_replicas:
            return self.min_replicas
        return None

    def normalize(self, now: float, current: int, recommendation: int) -> int:
        """Stabilise and rate-limit ``recommendation`` (the bounds included)."""
        stabilized = self.stabilize(now, current, recommendation)
        return self.rate_limit(now, current, stabilized)

    def record(self, now: float, current: int, desired: int) -> None:
        """Remember a change that was made (for the rate limits' periods)."""
        if desired != current:
            self._scale_events.append((now, desired - current))
        horizon = now - max(self.behavior.scale_up_period, self.behavior.scale_down_period)
        while self._scale_events and self._scale_events[0][0] <= horizon:
            self._scale_events.popleft()

    def reconcile(self, now: float, demand: float, current: int, ready: int) -> int:
        """One HPA sync: the new spec replicas (``current`` when it does not scale)."""
        desired = self.bounded(current)
        if desired is None:
            metric = self.metric_recommendation(demand, current, ready)
            if metric is None:
                return current
            desired = self.normalize(now, current, metric)
        self.record(now, current, desired)
        return desired
