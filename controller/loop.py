"""The control loop: one reconcile pass reads demand, forecasts, decides and acts.

``headroom demo`` (local Redis target, Redis INFO, scaled clock) and the operator
(Kubernetes targets, Prometheus, real clock) run this same class. A pass is
level-triggered and idempotent: it reads everything it needs (history up to now,
the calendar, each target's current size), computes the desired size per target
with the pure planner, asks targets that differ to scale, and returns a
:class:`PassReport` that the caller renders (dashboard, CRD status, metrics).
Nothing in a pass depends on why it runs (timer, watch event, restart).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from headroom.controller.clock import Clock
from headroom.controller.targets.base import ScaleStatus, ScaleTarget
from headroom.policies.calendar import Calendar
from headroom.policies.capacity import planned_units_array
from headroom.policies.errors import HeadroomError, SourceUnavailable
from headroom.policies.forecast.base import Forecast, Forecaster
from headroom.policies.planner import (
    Decision,
    Plan,
    PlannedAction,
    PlannerState,
    advance_state,
    decide,
    median_level,
    plan_target,
)
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import Series

log = logging.getLogger("headroom.loop")


class HistoryProvider(Protocol):
    """Demand history (QPS) up to ``end``; raises :class:`SourceUnavailable` when it cannot."""

    def history(self, end: float) -> Series: ...


class ActionSink(Protocol):
    """Where a pass records what it did: Kubernetes Events, the demo's log, alert hooks."""

    def record(self, event: LoopEvent) -> None: ...


@dataclass(frozen=True)
class LoopEvent:
    """One thing worth telling a human: a scale action, a cap, a source outage."""

    at: float
    target: str
    kind: str  # "Scaled" | "Capped" | "SourceUnavailable" | "ScaleFailed"
    reason: str
    from_units: int | None = None
    to_units: int | None = None
    event: str | None = None
    ready_by: float | None = None  # when the plan needs the new units serving


@dataclass(frozen=True)
class Condition:
    """A Kubernetes-style condition (type, status True/False/Unknown, CamelCase reason)."""

    type: str
    status: str
    reason: str
    message: str = ""


@dataclass(frozen=True)
class TargetReport:
    name: str
    status: ScaleStatus
    decision: Decision | None
    required_now: int | None
    # The timeline ahead (after this pass's action): next actions with their reasons.
    plan: Plan | None = None

    def next_action(self, now: float) -> PlannedAction | None:
        """The next planned change after ``now``, if the plan has one."""
        if self.plan is None:
            return None
        return next((a for a in self.plan.actions if a.at > now), None)


@dataclass(frozen=True)
class PassReport:
    """Everything one pass saw and decided, for dashboards, status and metrics."""

    at: float
    demand_now: float | None
    forecast: Forecast | None
    targets: tuple[TargetReport, ...]
    conditions: tuple[Condition, ...]
    events: tuple[LoopEvent, ...] = ()


@dataclass
class _TargetState:
    planner: PlannerState = field(default_factory=PlannerState)
    last_pass: float | None = None


class ListSink:
    """Keeps every event in memory (the demo's action log; tests)."""

    def __init__(self) -> None:
        self.events: list[LoopEvent] = []

    def record(self, event: LoopEvent) -> None:
        self.events.append(event)


class ControlLoop:
    """Reconciles one policy's targets against forecast demand."""

    def __init__(
        self,
        spec: PolicySpec,
        *,
        targets: Mapping[str, ScaleTarget],
        history: HistoryProvider,
        calendar: Callable[[], Calendar],
        clock: Clock,
        forecaster: Callable[[], Forecaster],
        sink: ActionSink,
        step: float = 60.0,
        observer: Callable[[PassReport], None] | None = None,
    ) -> None:
        unknown = set(targets) - {t.name for t in spec.targets}
        if unknown:
            raise HeadroomError(f"actuators for targets not in the policy: {sorted(unknown)}")
        self.spec = spec
        self.targets = dict(targets)
        self.history = history
        self.calendar = calendar
        self.clock = clock
        self.make_forecaster = forecaster
        self.sink = sink
        self.step = step
        self.observer = observer  # e.g. the AlertNotifier: sees every report, must not block
        self._state: dict[str, _TargetState] = {t.name: _TargetState() for t in spec.targets}

    def horizon(self) -> float:
        """Far enough ahead to see every action the planner may need to place now."""
        longest = max(t.provisioning.delay(t.min_units, t.max_units) for t in self.spec.targets)
        return max(self.spec.forecast.horizon, 2 * (longest + self.spec.lead_time) + 3600.0)

    def reconcile(self) -> PassReport:
        """One level-triggered pass: read, forecast, decide, act; never raises for a bad source."""
        now = self.clock.now()
        events: list[LoopEvent] = []
        conditions: list[Condition] = []
        calendar = self.calendar().for_labels(self.spec.event_selector)
        forecast: Forecast | None = None
        demand_now: float | None = None
        try:
            history = self.history.history(now).before(now)
            if not len(history) or not np.isfinite(history.v).any():
                raise SourceUnavailable("no demand samples yet")
            finite = history.v[np.isfinite(history.v)]
            demand_now = float(finite[-1])
            model = self.make_forecaster().fit(history, calendar)
            forecast = model.predict(now, self.horizon(), self.step)
            conditions.append(Condition("Forecasting", "True", "ForecastReady"))
            conditions.append(Condition("MetricsUnavailable", "False", "MetricsFresh"))
        except SourceUnavailable as err:
            conditions.append(Condition("Forecasting", "False", "NoMetrics", str(err)))
            conditions.append(
                Condition("MetricsUnavailable", "True", "SourceUnavailable", str(err))
            )
            events.append(LoopEvent(now, self.spec.name, "SourceUnavailable", str(err)))

        reports = [
            self._reconcile_target(t, now, forecast, calendar, events, demand_now)
            for t in self.spec.targets
        ]
        capped = [r.name for r in reports if r.decision is not None and r.decision.capped]
        conditions.append(
            Condition("CapacityCapped", "True", "BoundsOrBudget", ", ".join(capped))
            if capped
            else Condition("CapacityCapped", "False", "WithinBounds")
        )
        busy = [r.name for r in reports if r.status.busy]
        conditions.append(
            Condition("Scaling", "True", "Converging", ", ".join(busy))
            if busy
            else Condition("Scaling", "False", "Stable")
        )
        for event in events:
            self.sink.record(event)
        report = PassReport(
            now, demand_now, forecast, tuple(reports), tuple(conditions), tuple(events)
        )
        if self.observer is not None:
            self.observer(report)
        return report

    def _reconcile_target(
        self,
        target: Target,
        now: float,
        forecast: Forecast | None,
        calendar: Calendar,
        events: list[LoopEvent],
        demand_now: float | None = None,
    ) -> TargetReport:
        actuator = self.targets.get(target.name)
        state = self._state[target.name]
        status = actuator.status() if actuator else ScaleStatus(0, 0)
        dt = 0.0 if state.last_pass is None else max(0.0, now - state.last_pass)
        state.last_pass = now
        if forecast is None or actuator is None:
            state.planner = advance_state(
                state.planner, now=now, units=status.desired, dt=dt, action=None, spec=self.spec
            )
            return TargetReport(target.name, status, None, None)
        decision = decide(
            forecast,
            self.spec,
            target,
            now=now,
            current_units=status.desired,
            calendar=calendar,
            state=state.planner,
            observed_demand=demand_now,
        )
        # The planner's own sizing rule (p50 at target utilisation, quantile at 100%).
        required_now = int(
            planned_units_array(
                median_level(forecast)[:1],
                forecast.level(self.spec.forecast.quantile)[:1],
                target,
                self.spec,
            )[0]
        )
        action = decision.action
        if decision.desired_units != status.desired:
            if self.spec.dry_run:
                log.info(
                    "Planned (dry run) %s units=%d->%d reason=%s",
                    target.name, status.desired, decision.desired_units, decision.reason,
                )  # fmt: skip
            else:
                try:
                    actuator.scale(decision.desired_units, decision.reason)
                except HeadroomError as err:
                    events.append(LoopEvent(now, target.name, "ScaleFailed", str(err)))
                    action = None
                else:
                    log.info(
                        "Scaled %s units=%d->%d reason=%s",
                        target.name, status.desired, decision.desired_units, decision.reason,
                    )  # fmt: skip
                    events.append(
                        LoopEvent(
                            now,
                            target.name,
                            "Scaled",
                            decision.reason,
                            status.desired,
                            decision.desired_units,
                            action.event if action else None,
                            action.ready_by if action else None,
                        )
                    )
                    status = replace(status, desired=decision.desired_units)
        if decision.capped:
            events.append(LoopEvent(now, target.name, "Capped", decision.reason))
        state.planner = advance_state(
            state.planner, now=now, units=status.desired, dt=dt, action=action, spec=self.spec
        )
        plan = plan_target(
            forecast,
            self.spec,
            target,
            now=now,
            current_units=status.desired,
            calendar=calendar,
            state=state.planner,
            observed_demand=demand_now,
        )
        return TargetReport(target.name, status, decision, required_now, plan)
