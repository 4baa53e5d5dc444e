"""A RedisCluster's pods that are not all Ready: the ordinary wait, and past a deadline, stuck.

The RedisCluster reconciler (``rediscluster.py``) calls :meth:`PodsWait.track` every
pass. While some pods are not Ready it keeps ``status.podsNotReady.since`` (in the API
server, so an operator restart does not reset the clock); once that is older than the
operator's ``--pods-ready-deadline`` the wait is *stuck*: one Warning Event
``PodsStuck`` names each pod that is not Ready and why (the scheduler's or the
kubelet's reason: ``redis-a-3 Pending: Unschedulable: 0/3 nodes are available ...``),
the reconciler says ``Ready=False reason=PodsStuck``, and the gauge
``headroom_rediscluster_pods_stuck`` (the chart's ``HeadroomRedisClusterPodsStuck``
alert) counts the pods. When every pod is Ready again a Normal ``PodsReady`` Event says
how long it took. Like a Deployment's ``progressDeadlineSeconds``, the deadline reports
and nothing more: the operator keeps waiting, and nothing is removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from headroom.controller.metrics import OperatorMetrics
from headroom.controller.operator.conditions import EventRecorder, condition, object_key
from headroom.controller.provisioning.statefulset import PodWait

log = logging.getLogger(__name__)

#: Seconds pods may stay not Ready before the wait is reported stuck (``--pods-ready-deadline``).
DEFAULT_DEADLINE = 600.0
DEADLINE_MIN, DEADLINE_MAX = 1.0, 86400.0
#: Seconds a scale-out waits for the pod it added to be Ready before that attempt fails and
#: is retried (the retry waits for the same pod): ``--pod-add-timeout``. A new node from a
#: cluster autoscaler or a cold image pull may take longer than the default.
DEFAULT_ADD_TIMEOUT = 180.0
ADD_TIMEOUT_MIN, ADD_TIMEOUT_MAX = 5.0, 3600.0
PODS_STUCK = "PodsStuck"
_PODS_NAMED = 5  # in the Event, the condition and the status; the rest are counted
_MESSAGE_CHARS = 1024  # Kubernetes truncates an Event's message at 1 KiB


def check_deadline(seconds: float, where: str = "--pods-ready-deadline") -> float:
    """``seconds`` if it is a sane deadline, else a one-line :class:`ValueError`."""
    return _within(seconds, DEADLINE_MIN, DEADLINE_MAX, where)


def check_add_timeout(seconds: float, where: str = "--pod-add-timeout") -> float:
    """``seconds`` if it is a sane wait for an added pod, else a one-line :class:`ValueError`."""
    return _within(seconds, ADD_TIMEOUT_MIN, ADD_TIMEOUT_MAX, where)


def _within(seconds: float, lo: float, hi: float, where: str) -> float:
    if not lo <= seconds <= hi:  # also refuses nan
        raise ValueError(f"{where}: {seconds:g} is outside {lo:g}..{hi:g} seconds")
    return seconds


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class PodsVerdict:
    """What one pass found: ``since`` None while every pod is Ready."""

    since: str | None = None
    stuck: bool = False
    message: str = ""  # for the condition, when stuck
    pods: tuple[str, ...] = ()  # the pods not Ready and why, when stuck

    def status(self) -> dict[str, Any] | None:
        """``status.podsNotReady`` (None: the field goes)."""
        if self.since is None:
            return None
        return {"since": self.since, "stuck": self.stuck, "pods": list(self.pods)}


@dataclass
class PodsWait:
    """One cluster's wait for its pods; the deadline is the operator's."""

    deadline: float = DEFAULT_DEADLINE
    # ``since`` of the episode whose stuck / recovery Event this process posted: a pass
    # may read a status older than its own last write (the status covers a restart).
    reported: str | None = None
    recovered: str | None = None

    def track(
        self,
        body: Mapping[str, Any],
        status: Mapping[str, Any],
        ready: int,
        wanted: int,
        *,
        unready: Callable[[], Sequence[PodWait]],
        now: float,
        record: EventRecorder,
        metrics: OperatorMetrics | None,
    ) -> PodsVerdict:
        """Start, report and end an episode of pods not all Ready (see the module)."""
        ns, name = object_key(body)
        key = f"{ns}/{name}"
        before = dict(status.get("podsNotReady") or {})
        if ready >= wanted:
            if metrics is not None:
                metrics.set_cluster_pods_stuck(key, 0)
            episode = str(before.get("since") or self.reported)
            if (before.get("stuck") or self.reported is not None) and episode != self.recovered:
                self.recovered = episode
                started = _epoch(before.get("since") or self.reported)
                took = f" after {now - started:.0f}s" if started is not None else ""
                record(body, "Normal", "PodsReady", f"all {wanted} pods Ready again{took}")
                log.info("Pods Ready again RedisCluster %s pods=%d%s", key, wanted, took)
            self.reported = None
            return PodsVerdict()
        since = str(before["since"]) if _epoch(before.get("since")) is not None else None
        if since is None:
            # An operator that wrote only the condition (an older version) started the
            # clock when Ready turned False for this reason.
            cond = condition(status, "Ready") or {}
            started = cond.get("lastTransitionTime")
            waiting = cond.get("reason") in ("PodsNotReady", PODS_STUCK)
            since = str(started) if waiting and _epoch(started) is not None else rfc3339(now)
        waited = now - (_epoch(since) or now)
        if waited < self.deadline:
            if metrics is not None:
                metrics.set_cluster_pods_stuck(key, 0)
            return PodsVerdict(since)
        waits = list(unready())
        named = tuple(w.describe() for w in waits[:_PODS_NAMED])
        more = f"; and {len(waits) - len(named)} more" if len(waits) > len(named) else ""
        # No running count in it: a condition that does not change is not written again.
        message = (
            f"{ready}/{wanted} pods Ready, not all since {since}, past the "
            f"{self.deadline:g}s deadline: " + "; ".join(named) + more
        )
        if len(message) > _MESSAGE_CHARS:
            message = message[: _MESSAGE_CHARS - 3] + "..."
        if metrics is not None:
            metrics.set_cluster_pods_stuck(key, max(len(waits), wanted - ready))
        if not before.get("stuck") and self.reported != since:
            record(body, "Warning", PODS_STUCK, message)
            log.warning("Pods stuck RedisCluster %s since=%s %s", key, since, message)
        self.reported = since
        return PodsVerdict(since, True, message, named)
