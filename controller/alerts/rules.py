"""The alert rules: which alerts hold after a control-loop pass (pure, no I/O).

:func:`evaluate` is level-triggered like the loop itself: from one
:class:`~headroom.controller.loop.PassReport`, the policy and a small
:class:`RuleMemory` (when each condition was first seen; the size planned for imminent
events) it returns every alert that holds now and the next memory. The notifier diffs
that set with what it has already sent: new keys fire, vanished keys resolve. A
condition becomes an alert once it has held for the policy's ``alertRules`` duration.

The rules (``AlertName``):

- ``forecastMiss``: demand above the forecast's upper band (the policy quantile; by more
  than ``forecastMissMargin``, so noise at the band does not count) as it
  was predicted for now one lead time ago — the forecast the capacity serving now was
  ordered against (the target's provisioning delay plus ``leadTime``) — for
  ``forecastMissFor``;
- ``sloBreach``: demand above what the target's ready units serve, for ``sloBreachFor``;
- ``scaleFailed``: a scale call failed in this pass, or a change has been converging for
  ``stuckFor`` beyond its expected provisioning delay;
- ``capacityCapped``: the plan wants more than ``maxUnits`` or the budget allows (the plan
  holds a need to either);
- ``signalsUnavailable``: the demand signal could not be read, for ``unavailableFor``;
- ``planChanged``: the peak size planned for an event starting within
  ``planChangeWithin`` moved by ``planChangeRatio`` or more from what was first planned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from headroom.controller.alerts.base import Alert, Severity
from headroom.controller.loop import PassReport, TargetReport
from headroom.policies.capacity import capacity_of
from headroom.policies.forecast.base import Forecast
from headroom.policies.policy import AlertName, PolicySpec, Target
from headroom.policies.text import format_qps


@dataclass(frozen=True)
class RuleMemory:
    """What the rules remember between passes; small and JSON-serialisable."""

    pending: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    planned_peak: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, Any]:
        return {"pending": dict(self.pending), "plannedPeak": dict(self.planned_peak)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RuleMemory:
        pending = {str(k): float(v) for k, v in dict(data.get("pending") or {}).items()}
        peaks = {str(k): int(v) for k, v in dict(data.get("plannedPeak") or {}).items()}
        return cls(MappingProxyType(pending), MappingProxyType(peaks))


@dataclass(frozen=True)
class _Candidate:
    name: AlertName
    target: str | None
    severity: Severity
    summary: str
    hold: float
    event: str | None = None
    numbers: Mapping[str, float] = field(default_factory=dict)
    variant: str = ""  # two conditions raising the same alert keep their own timers

    @property
    def key(self) -> str:
        return f"{self.target or '-'}/{self.name.value}{self.variant}"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60.0:.0f} min"


def evaluate(
    report: PassReport,
    spec: PolicySpec,
    memory: RuleMemory,
    past: Sequence[tuple[float, Forecast]] = (),
    link: str | None = None,
    firing: AbstractSet[str] = frozenset(),
) -> tuple[list[Alert], RuleMemory]:
    """Every alert that holds after ``report``, and the memory for the next pass.

    ``past`` holds earlier passes' forecasts (``(made_at, forecast)``, oldest first): the
    forecast-miss rule compares demand with the newest made a lead time ago or earlier
    (else the oldest there is; else this pass's own). ``firing`` holds the keys of alerts
    already firing: their condition holds again at once, without waiting out the hold.
    """
    rules = spec.alert_rules
    targets = {t.name: t for t in spec.targets}
    candidates: list[_Candidate] = []
    peaks: dict[str, int] = {}
    unavailable = next(
        (c for c in report.conditions if c.type == "MetricsUnavailable" and c.status == "True"),
        None,
    )
    if unavailable is not None:
        candidates.append(
            _Candidate(
                AlertName.SIGNALS_UNAVAILABLE, None, Severity.WARNING,
                f"{spec.name}: demand signal unavailable ({unavailable.message}); "
                "Headroom keeps the current size",
                rules.unavailable_for,
            )
        )  # fmt: skip
    p99 = report.p99_now
    if p99 is not None and p99 * 1000.0 > spec.slo.latency_p99_ms:
        # The service's latency is the policy's, not one target's: one alert, policy-wide.
        candidates.append(
            _Candidate(
                AlertName.SLO_BREACH, None, Severity.CRITICAL,
                f"{spec.name}: p99 latency {p99 * 1000.0:.3g} ms is above the SLO's "
                f"{spec.slo.latency_p99_ms:g} ms",
                rules.slo_breach_for, None,
                {"p99_ms": p99 * 1000.0, "slo_p99_ms": spec.slo.latency_p99_ms},
            )
        )  # fmt: skip
    for tr in report.targets:
        target = targets.get(tr.name)
        if target is None:
            continue
        lead = target.provisioning.delay(tr.status.desired, tr.status.desired + 1)
        reference = _made_before(past, report.at - lead - spec.lead_time)
        candidates += _target_candidates(report, spec, target, tr, reference)
        change = _plan_change(report, spec, target, tr, memory, peaks)
        if change is not None:
            candidates.append(change)

    now = report.at
    pending: dict[str, float] = {}
    alerts: list[Alert] = []
    for c in candidates:
        since = memory.pending.get(c.key, now)
        pending[c.key] = since
        key = f"{spec.name}/{c.target or '-'}/{c.name.value}"
        if now - since >= c.hold or key in firing:
            alerts.append(
                Alert(
                    c.name.value, spec.name, c.target, c.severity, c.summary, since, now,
                    event=c.event, numbers=c.numbers, link=link,
                )
            )  # fmt: skip
    # One alert per key: a failed call and a stuck change on one target are one scaleFailed.
    unique: dict[str, Alert] = {}
    for alert in alerts:
        unique.setdefault(alert.key, alert)
    return list(unique.values()), RuleMemory(MappingProxyType(pending), MappingProxyType(peaks))


def _made_before(past: Sequence[tuple[float, Forecast]], when: float) -> Forecast | None:
    chosen = None
    for made_at, forecast in past:
        if chosen is None or made_at <= when:
            chosen = forecast
        else:
            break
    return chosen


def _target_candidates(
    report: PassReport,
    spec: PolicySpec,
    target: Target,
    tr: TargetReport,
    reference: Forecast | None,
) -> list[_Candidate]:
    rules = spec.alert_rules
    out: list[_Candidate] = []
    demand = report.demand_now
    name = tr.name
    forecast = reference if reference is not None and reference.t.size else report.forecast
    if demand is not None and forecast is not None and forecast.t.size:
        q = spec.forecast.quantile
        upper = float(np.interp(report.at, forecast.t, forecast.level(q)))
        median = float(np.interp(report.at, forecast.t, forecast.level(0.5)))
        if upper > 0 and demand > upper * (1.0 + rules.forecast_miss_margin):
            index = min(int(np.searchsorted(forecast.t, report.at)), forecast.t.size - 1)
            driver = forecast.driver_at(index)
            event = driver.name if driver is not None else None
            over = 100.0 * (demand / upper - 1.0)
            during = f" during {event}" if event else ""
            out.append(
                _Candidate(
                    AlertName.FORECAST_MISS, name, Severity.WARNING,
                    f"{name}: demand {format_qps(demand)} QPS is {over:.0f}% above the "
                    f"forecast's p{q * 100:g} band ({format_qps(upper)} QPS) for "
                    f"{_minutes(rules.forecast_miss_for)}+{during}",
                    rules.forecast_miss_for, event,
                    {"demand_qps": demand, "forecast_upper_qps": upper,
                     "forecast_median_qps": median, "over_percent": over},
                )
            )  # fmt: skip
    if demand is not None:
        ready_qps = capacity_of(tr.status.ready, target)
        if demand > ready_qps:
            out.append(
                _Candidate(
                    AlertName.SLO_BREACH, name, Severity.CRITICAL,
                    f"{name}: demand {format_qps(demand)} QPS exceeds the {tr.status.ready} "
                    f"ready units' capacity ({format_qps(ready_qps)} QPS)",
                    rules.slo_breach_for, None,
                    {"demand_qps": demand, "ready_units": float(tr.status.ready),
                     "ready_capacity_qps": ready_qps},
                )
            )  # fmt: skip
    failed = [e for e in report.events if e.kind == "ScaleFailed" and e.target == name]
    if failed:
        out.append(
            _Candidate(
                AlertName.SCALE_FAILED, name, Severity.CRITICAL,
                f"{name}: scaling to {tr.decision.desired_units if tr.decision else '?'} units "
                f"failed: {failed[-1].reason}",
                0.0, None,
                {"desired_units": float(tr.status.desired), "ready_units": float(tr.status.ready)},
            )
        )  # fmt: skip
    if tr.status.busy:
        expected = target.provisioning.delay(tr.status.ready, tr.status.desired)
        out.append(
            _Candidate(
                AlertName.SCALE_FAILED, name, Severity.WARNING,
                f"{name}: scaling to {tr.status.desired} units has not converged after "
                f"{_minutes(expected + rules.stuck_for)} ({tr.status.detail or 'in progress'})",
                expected + rules.stuck_for, None,
                {"desired_units": float(tr.status.desired), "ready_units": float(tr.status.ready)},
                variant="#stuck",
            )
        )  # fmt: skip
    plan = tr.plan
    capped = (tr.decision is not None and tr.decision.capped) or (plan is not None and plan.capped)
    if capped:
        wanted = int(plan.required.max()) if plan is not None and plan.required.size else 0
        event = next((a.event for a in plan.actions if a.event), None) if plan else None
        if event is None and report.forecast is not None:
            event = next((d.name for d in report.forecast.drivers if d is not None), None)
        ahead = f" ahead of {event}" if event else ""
        out.append(
            _Candidate(
                AlertName.CAPACITY_CAPPED, name, Severity.WARNING,
                f"{name}: the plan wants {wanted} units{ahead} but is capped at "
                f"{target.max_units} (maxUnits) or by the budget",
                0.0, event,
                {"wanted_units": float(wanted), "max_units": float(target.max_units),
                 "desired_units": float(tr.status.desired)},
            )
        )  # fmt: skip
    return out


def _plan_change(
    report: PassReport,
    spec: PolicySpec,
    target: Target,
    tr: TargetReport,
    memory: RuleMemory,
    peaks: dict[str, int],
) -> _Candidate | None:
    """The plan for the next imminent event, compared with what was first planned for it."""
    rules = spec.alert_rules
    forecast, plan, now = report.forecast, tr.plan, report.at
    if forecast is None or plan is None or not plan.t.size:
        return None
    upcoming = {
        d.name + f"@{d.start:.0f}": d
        for d in forecast.drivers
        if d is not None and now <= d.start <= now + rules.plan_change_within
    }
    if not upcoming:
        return None
    ident, event = min(upcoming.items(), key=lambda kv: kv[1].start)
    inside = (plan.t >= event.window_start) & (plan.t < event.end)
    if not inside.any():
        return None
    peak = int(plan.units[inside].max())
    key = f"{tr.name}/{ident}"
    reference = memory.planned_peak.get(key, peak)
    peaks[key] = reference
    if abs(peak - reference) < max(1.0, rules.plan_change_ratio * reference):
        return None
    minutes = (event.start - now) / 60.0
    return _Candidate(
        AlertName.PLAN_CHANGED, tr.name, Severity.WARNING,
        f"{tr.name}: the plan for {event.name} (in {minutes:.0f} min) moved from "
        f"{reference} to {peak} units",
        0.0, event.name,
        {"first_planned_units": float(reference), "planned_units": float(peak),
         "minutes_to_event": minutes},
    )  # fmt: skip
