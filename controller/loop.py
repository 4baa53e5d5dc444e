"""The control loop: one reconcile pass reads demand, forecasts, decides and acts.

``headroom demo`` (local Redis target, Redis INFO, scaled clock) and the operator
(Kubernetes targets, Prometheus, real clock) run this same class. A pass is
level-triggered and idempotent: it reads everything it needs (history up to now,
the calendar, each target's current size), hands them to the one
:class:`~headroom.policies.driver.Driver` (forecast, planner, state: the same driver
the backtest simulator runs), asks targets whose decision differs to scale, tells the
driver what was ordered, and returns a
:class:`PassReport` that the caller renders (dashboard, CRD status, metrics).
Nothing in a pass depends on why it runs (timer, watch event, restart).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from headroom.controller.clock import Clock
from headroom.controller.targets.base import ScaleStatus, ScaleTarget, TargetBusy
from headroom.policies.calendar import Calendar
from headroom.policies.driver import Cadence, Driver, DriverState, SeriesPast, TargetTick, Tick
from headroom.policies.errors import HeadroomError, SourceUnavailable
from headroom.policies.forecast.base import Forecast, Forecaster
from headroom.policies.planner.values import Decision, Plan, PlannedAction
from headroom.policies.policy import PolicySpec
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
    p99_now: float | None = None  # the newest p99 latency (seconds), when a source gives it


class NoSink:
    """Drops events (the operator posts them from the pass report instead)."""

    def record(self, event: LoopEvent) -> None:
        return None


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
        state: DriverState | None = None,
        observer: Callable[[PassReport], None] | None = None,
        latency: HistoryProvider | None = None,
    ) -> None:
        """``state``: the driver's state from before a restart (the operator keeps it in the
        CapacityPolicy's status), so budgets and cooldowns carry over. ``latency``: p99
        latency (seconds) history, for the SLO-breach alert; None: not measured."""
        unknown = set(targets) - {t.name for t in spec.targets}
        if unknown:
            raise HeadroomError(f"actuators for targets not in the policy: {sorted(unknown)}")
        self.spec = spec
        self.targets = dict(targets)
        self.history = history
        self.calendar = calendar
        self.clock = clock
        self.sink = sink
        self.step = step
        self.observer = observer  # e.g. the AlertNotifier: sees every report, must not block
        self.latency = latency
        # Every pass is a full decision: the pass interval is the loop's own cadence.
        self.driver = Driver(
            spec, forecaster(), step=step, cadence=Cadence(decide_every=0.0), state=state
        )

    @property
    def state(self) -> DriverState:
        """The driver's state (per target: budget used, last scale-out and scale-in)."""
        return self.driver.state

    def horizon(self) -> float:
        """How far each forecast reaches: the driver's horizon, from the spec."""
        return self.driver.horizon()

    def reconcile(self) -> PassReport:
        """One level-triggered pass: read, forecast, decide, act; never raises for a bad source."""
        now = self.clock.now()
        events: list[LoopEvent] = []
        conditions: list[Condition] = []
        statuses = {
            t.name: (a.status() if (a := self.targets.get(t.name)) else ScaleStatus(0, 0))
            for t in self.spec.targets
        }
        units = {name: status.desired for name, status in statuses.items()}
        tick: Tick | None = None
        demand_now: float | None = None
        try:
            history = self.history.history(now).before(now)
            if not len(history) or not np.isfinite(history.v).any():
                raise SourceUnavailable("no demand samples yet")
            finite = history.v[np.isfinite(history.v)]
            demand_now = float(finite[-1])
            tick = self.driver.decide(
                now,
                SeriesPast(history),
                units,
                self.calendar(),
                with_plan=True,
                ready={name: status.ready for name, status in statuses.items()},
            )
        except SourceUnavailable as err:
            conditions.append(Condition("Forecasting", "False", "NoMetrics", str(err)))
            conditions.append(Condition("MetricsUnavailable", "True", err.reason, str(err)))
            events.append(LoopEvent(now, self.spec.name, "SourceUnavailable", str(err)))
        else:
            if tick.forecast is None:
                conditions.append(
                    Condition("Forecasting", "False", "TooLittleHistory", "reactive guard only")
                )
            else:
                conditions.append(Condition("Forecasting", "True", "ForecastReady"))
            conditions.append(Condition("MetricsUnavailable", "False", "MetricsFresh"))

        if tick is None:
            self.driver.idle(now, units)
            reports = [TargetReport(name, status, None, None) for name, status in statuses.items()]
        else:
            reports = [
                self._act(tick.targets[t.name], statuses[t.name], now, events)
                for t in self.spec.targets
            ]
            self.driver.commit(tick, {r.name: r.status.desired for r in reports})
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
        forecast = tick.forecast if tick is not None else None
        report = PassReport(
            now,
            demand_now,
            forecast,
            tuple(reports),
            tuple(conditions),
            tuple(events),
            self._p99(now),
        )
        if self.observer is not None:
            self.observer(report)
        return report

    def _p99(self, now: float) -> float | None:
        """The newest p99 latency before ``now``; None without a source or when it is down."""
        if self.latency is None:
            return None
        try:
            series = self.latency.history(now).before(now)
        except SourceUnavailable:
            return None
        finite = series.v[np.isfinite(series.v)]
        return float(finite[-1]) if finite.size else None

    def _act(
        self, tt: TargetTick, status: ScaleStatus, now: float, events: list[LoopEvent]
    ) -> TargetReport:
        """Carry out one target's decision (unless dry run); the report has the units ordered."""
        actuator = self.targets.get(tt.name)
        if actuator is None:
            return TargetReport(tt.name, status, None, None)
        decision = tt.decision
        action = decision.action
        if decision.desired_units != status.desired:
            if self.spec.dry_run:
                log.info(
                    "Planned (dry run) %s units=%d->%d reason=%s",
                    tt.name, status.desired, decision.desired_units, decision.reason,
                )  # fmt: skip
            else:
                try:
                    actuator.scale(decision.desired_units, decision.reason)
                except TargetBusy as err:
                    # Not a failure: the target refused to stack an order on a change
                    # still converging; the next pass asks again (nothing was ordered).
                    log.info("Deferred %s units=%d reason=%s", tt.name, decision.desired_units, err)
                except HeadroomError as err:
                    events.append(LoopEvent(now, tt.name, "ScaleFailed", str(err)))
                else:
                    log.info(
                        "Scaled %s units=%d->%d reason=%s",
                        tt.name, status.desired, decision.desired_units, decision.reason,
                    )  # fmt: skip
                    events.append(
                        LoopEvent(
                            now,
                            tt.name,
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
            events.append(LoopEvent(now, tt.name, "Capped", decision.reason))
        return TargetReport(tt.name, status, decision, tt.required_now, tt.plan)
