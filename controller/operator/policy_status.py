"""What one CapacityPolicy pass writes: the status fields (forecast summary, the planned
timeline ahead with reasons, last actions, per-target units, the driver state, alerts)
and the Ready condition, from the pass's report; and the pass on ``/metrics``.

:mod:`.capacitypolicy` (the controller) runs the pass and writes what this builds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from headroom.controller.alerts.notifier import AlertNotifier
from headroom.controller.loop import Condition, ControlLoop, PassReport
from headroom.controller.metrics import OperatorMetrics
from headroom.controller.targets.hpa_floor import HpaFloorTarget
from headroom.policies.policy import PolicySpec
from headroom.policies.resources import (
    ActionRecord,
    CapacityPolicyStatus,
    ForecastPoint,
    ForecastSummary,
    PlannedActionStatus,
    TargetStatus,
    driver_state_to_status,
)

LAST_ACTIONS = 20  # how many actions the status keeps, newest last
SUMMARY_HOURS = 6  # how far the status's forecast summary reaches


def pass_status(
    spec: PolicySpec,
    loop: ControlLoop,
    notifier: AlertNotifier | None,
    report: PassReport,
    status: Mapping[str, Any],
) -> tuple[dict[str, Any], list[Condition]]:
    """The status fields one pass writes over ``status`` (the one it read), and its
    conditions, Ready first."""
    conds = list(report.conditions)
    failing = [e for e in report.events if e.kind == "ScaleFailed"]
    metrics_down = any(c.type == "MetricsUnavailable" and c.status == "True" for c in conds)
    if failing:
        ready = Condition("Ready", "False", "ScaleFailed", failing[0].reason)
    elif metrics_down:
        ready = Condition("Ready", "False", "MetricsUnavailable", "holding current capacity")
    else:
        ready = Condition("Ready", "True", "Reconciled", "")
    plan = _timeline(report)
    upcoming = [row for row in plan if row.at > _when(report.at)]  # after this pass's order
    records = [
        ActionRecord(
            at=_when(e.at),
            target=e.target,
            from_units=e.from_units or 0,
            to_units=e.to_units or 0,
            reason=e.reason,
            event=e.event,
            result="DryRun" if spec.dry_run else "Scaled",
        )
        for e in report.events
        if e.kind == "Scaled"
    ]
    if spec.dry_run:  # what it would do: the decisions that differ from the size now
        records = [
            ActionRecord(
                at=_when(report.at),
                target=r.name,
                from_units=r.status.desired,
                to_units=r.decision.desired_units,
                reason=r.decision.reason,
                event=r.decision.action.event if r.decision.action else None,
                result="DryRun",
            )
            for r in report.targets
            if r.decision is not None and r.decision.desired_units != r.status.desired
        ]
    old_records = [dict(a) for a in status.get("lastActions") or ()]
    new_records = [a.model_dump(mode="json", by_alias=True, exclude_none=True) for a in records]
    kinds = {t.name: t.kind.value for t in spec.targets}
    fields = CapacityPolicyStatus(
        target_count=len(spec.targets),
        next_action=_one_line(upcoming[0]) if upcoming else "",
        forecast=_forecast_summary(report, spec),
        targets=[
            TargetStatus(
                name=r.name,
                kind=kinds.get(r.name, ""),
                current_units=r.status.desired,
                ready_units=r.status.ready,
                required_units=r.required_now,
                busy=r.status.busy,
                detail=r.status.detail,
            )
            for r in report.targets
        ],
        plan=plan,
    ).model_dump(mode="json", by_alias=True, exclude_none=True)
    fields.pop("observedGeneration", None)
    fields.pop("conditions", None)
    # The users' own HPA floors, as this pass read them (kept on the HPAs themselves).
    floors = {
        n: a.last.user_floor
        for n, a in loop.targets.items()
        if isinstance(a, HpaFloorTarget) and a.last is not None
    }
    fields["driver"] = driver_state_to_status(loop.state, floors)
    if notifier is not None:
        fields["alerts"] = notifier.state()
    fields["lastActions"] = (old_records + new_records)[-LAST_ACTIONS:]
    return fields, [ready, *conds]


def export_pass(spec: PolicySpec, report: PassReport, metrics: OperatorMetrics) -> None:
    """The pass on /metrics: per target the measured demand, the forecast for now (p50,
    p90), capacity per unit and units; the events in the forecast's horizon; actions."""
    fc = report.forecast
    now = int(np.searchsorted(fc.t, report.at)) if fc is not None and len(fc.t) else None
    declared = {t.name: t.capacity_per_unit for t in spec.targets}
    for r in report.targets:
        planned = r.decision.desired_units if r.decision is not None else None
        metrics.set_units(r.name, r.status.ready, r.status.desired, planned)
        nxt = r.next_action(report.at)
        metrics.set_next_action(r.name, nxt.at if nxt else None)
        if report.demand_now is not None and math.isfinite(report.demand_now):
            metrics.observe_demand(r.name, report.demand_now)
        if fc is not None and now is not None:
            i = min(now, len(fc.t) - 1)
            for q in (0.5, 0.9):
                metrics.observe_forecast(r.name, q, float(fc.level(q)[i]))
        per_unit = declared.get(r.name)
        if per_unit:
            metrics.set_capacity(r.name, per_unit, "declared")
    if fc is not None:
        starts = {e.name: e.start for e in fc.drivers if e is not None and e.end > report.at}
        metrics.set_events(spec.name, starts)
    for e in report.events:
        if e.kind == "Scaled":
            metrics.record_action(e.target, "ScheduledEvent" if e.event else "Demand")


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _forecast_summary(report: PassReport, spec: PolicySpec) -> ForecastSummary | None:
    """Hourly p50 and the policy's quantile for the next hours, and the peak, in QPS."""
    fc = report.forecast
    if fc is None or not fc.t.size:
        return None
    q = spec.forecast.quantile
    ahead = (fc.t >= report.at) & (fc.t < report.at + SUMMARY_HOURS * 3600)
    if not ahead.any():
        return None
    t, p50, upper = fc.t[ahead], fc.level(0.5)[ahead], fc.level(q)[ahead]
    points = []
    for hour in range(SUMMARY_HOURS):
        mask = (t >= report.at + hour * 3600) & (t < report.at + (hour + 1) * 3600)
        if mask.any():
            i = int(np.argmax(upper[mask]))
            points.append(
                ForecastPoint(
                    at=_when(float(t[mask][i])),
                    p50=_round(float(p50[mask][i])),
                    p90=_round(float(upper[mask][i])),
                )
            )
    peak = int(np.argmax(upper))
    return ForecastSummary(
        made_at=_when(report.at),
        quantile=q,
        demand_now=None if report.demand_now is None else _round(report.demand_now),
        peak_p90=_round(float(upper[peak])),
        peak_at=_when(float(t[peak])),
        points=points,
    )


def _round(x: float) -> float:
    return round(x, 1) if math.isfinite(x) else 0.0


def _timeline(report: PassReport) -> list[PlannedActionStatus]:
    """The next planned actions of every target (at most 5 each), time order."""
    rows: list[PlannedActionStatus] = []
    for r in report.targets:
        if r.plan is None:
            continue
        for a in [a for a in r.plan.actions if a.at >= report.at][:5]:
            rows.append(
                PlannedActionStatus(
                    at=_when(a.at),
                    ready_by=_when(a.ready_by),
                    target=r.name,
                    from_units=a.from_units,
                    to_units=a.to_units,
                    reason=a.reason,
                    event=a.event,
                    capped=a.capped,
                )
            )
    return sorted(rows, key=lambda row: (row.at, row.target))


def _one_line(action: PlannedActionStatus) -> str:
    return f"{action.at:%Y-%m-%d %H:%M}Z {action.target} {action.from_units}->{action.to_units}"
