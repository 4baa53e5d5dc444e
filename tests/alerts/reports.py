"""Hand-built control-loop pass reports for the alert rules' and notifier's tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from headroom.controller.loop import Condition, LoopEvent, PassReport, TargetReport
from headroom.controller.targets.base import ScaleStatus
from headroom.policies.calendar import DemandEvent, EventKind
from headroom.policies.forecast.base import Forecast
from headroom.policies.planner.values import Decision, Plan
from headroom.policies.policy import PolicySpec, parse_policy

T0 = 1_800_000_000.0
STEP = 60.0


def spec(**extra: Any) -> PolicySpec:
    doc: dict[str, Any] = {
        "name": "shop",
        "targets": [{"name": "cart", "capacityPerUnit": 1000, "minUnits": 2, "maxUnits": 10}],
        "alerts": [{"url": "http://127.0.0.1:9/unused"}],
        "alertRules": {"forecastMissFor": "10m", "sloBreachFor": "5m", "stuckFor": "30m",
                       "unavailableFor": "5m", "resolveAfter": 0},
    }  # fmt: skip
    doc["alertRules"].update(extra.pop("alertRules", {}))
    doc.update(extra)
    return parse_policy(doc)


def forecast(at: float, median: float, upper: float, event: DemandEvent | None = None,
             hours: float = 4.0) -> Forecast:  # fmt: skip
    t = at + np.arange(0, hours * 3600, STEP)
    drivers = tuple(
        event if event is not None and event.window_start <= x < event.end else None for x in t
    )
    return Forecast(
        t, np.full(t.size, median), {0.5: np.full(t.size, median), 0.9: np.full(t.size, upper)},
        drivers,
    )  # fmt: skip


def report(
    at: float,
    demand: float | None = 1000.0,
    upper: float = 1500.0,
    ready: int = 3,
    desired: int | None = None,
    busy: bool = False,
    capped: bool = False,
    failed: str | None = None,
    unavailable: bool = False,
    event: DemandEvent | None = None,
    planned: int | None = None,
    p99: float | None = None,
) -> PassReport:
    fc = None if unavailable else forecast(at, upper / 1.3, upper, event)
    desired = ready if desired is None else desired
    plan = None
    if fc is not None:
        units = np.full(fc.t.size, planned or desired, dtype=np.int64)
        plan = Plan("cart", fc.t, units.copy() * (2 if capped else 1), units, (), capped)
    decision = None if fc is None else Decision(desired, None, capped, "steady")
    tr = TargetReport("cart", ScaleStatus(desired, ready, busy, "migrating" if busy else ""),
                      decision, desired, plan)  # fmt: skip
    conditions = [Condition("MetricsUnavailable", "True" if unavailable else "False",
                            "SourceUnavailable" if unavailable else "MetricsFresh",
                            "prometheus: connection refused" if unavailable else "")]  # fmt: skip
    events = [LoopEvent(at, "cart", "ScaleFailed", failed)] if failed else []
    return PassReport(at, None if unavailable else demand, fc, (tr,), tuple(conditions),
                      tuple(events), p99)  # fmt: skip


def live(start: float, hours: float = 2.0) -> DemandEvent:
    return DemandEvent("Friday live", EventKind.LIVESTREAM, start, start + hours * 3600,
                       ramp=1800)  # fmt: skip
