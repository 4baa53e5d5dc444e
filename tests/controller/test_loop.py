"""The control loop on a manual clock: pre-scales before an event, is idempotent, survives outages.

The loop is orchestration over pure parts, so a recording target and an in-memory
history are the honest fakes here; ``tests/controller/test_demo.py`` runs the same
loop against a real Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from headroom.controller.loop import ControlLoop, ListSink
from headroom.controller.targets.base import ScaleStatus
from headroom.policies.calendar import Calendar, DemandEvent, EventKind
from headroom.policies.errors import SourceUnavailable
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import PolicySpec, parse_policy
from headroom.policies.series import Series
from headroom.policies.synthetic import generate_trace

DAY = 86400.0
T0 = 1_700_006_400.0  # a midnight UTC


@dataclass
class ManualClock:
    t: float

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class RecordingTarget:
    name: str
    units: int
    calls: list[tuple[int, str]] = field(default_factory=list)

    def status(self) -> ScaleStatus:
        return ScaleStatus(desired=self.units, ready=self.units)

    def scale(self, units: int, reason: str) -> None:
        self.calls.append((units, reason))
        self.units = units


@dataclass
class StaticHistory:
    series: Series
    down: bool = False

    def history(self, end: float) -> Series:
        if self.down:
            raise SourceUnavailable("prometheus: connection refused")
        return self.series.before(end)


def _spec(dry_run: bool = False) -> PolicySpec:
    return parse_policy(
        {
            "name": "shop",
            "targets": [
                {
                    "name": "cart",
                    "kind": "RedisCluster",
                    "capacityPerUnit": 1000,
                    "minUnits": 3,
                    "maxUnits": 20,
                    "provisioning": {"fixedSeconds": "30m"},
                }
            ],
            "leadTime": "10m",
            "forecast": {"history": "14d", "horizon": "8h"},
            "dryRun": dry_run,
        }
    )


def _events() -> list[DemandEvent]:
    return [
        DemandEvent(f"live {d}", EventKind.LIVESTREAM, T0 + d * DAY + 20 * 3600,
                    T0 + d * DAY + 22 * 3600, ramp=1800, labels={"host": "a"})
        for d in (2, 5, 8, 11, 14)
    ]  # fmt: skip


def _loop(spec: PolicySpec, history: StaticHistory, clock: ManualClock, target: RecordingTarget):
    calendar = Calendar.of(_events())
    sink = ListSink()
    loop = ControlLoop(
        spec,
        targets={"cart": target},
        history=history,
        calendar=lambda: calendar,
        clock=clock,
        forecaster=lambda: HeadroomForecaster(spec.forecast),
        sink=sink,
    )
    return loop, sink


def _trace() -> Series:
    return generate_trace(T0, 15, 60.0, 1500.0, _events(), [4.0] * 5, noise=0.05, seed=3)


def test_scales_out_before_the_event_and_only_once() -> None:
    clock = ManualClock(T0 + 14 * DAY + 12 * 3600)
    target = RecordingTarget("cart", 3)
    loop, sink = _loop(_spec(), StaticHistory(_trace()), clock, target)
    event = _events()[-1]
    orders: list[tuple[float, int, str]] = []
    while clock.now() < event.start:
        seen = len(target.calls)
        loop.reconcile()
        orders += [(clock.now(), units, reason) for units, reason in target.calls[seen:]]
        clock.sleep(300)
    for_event = [(t, units) for t, units, reason in orders if "live 14" in reason]
    assert for_event, f"never scaled out for the event: {orders}"
    # Ordered early enough: provisioning (30m) + lead time (10m) before the livestream's
    # step at its start, and big enough for a 4x livestream on ~1.5k QPS at 80% of 1k/unit.
    assert for_event[0][0] <= event.start - 40 * 60
    assert max(units for _, units in for_event) >= 6, orders
    scaled = [e for e in sink.events if e.kind == "Scaled"]
    assert len(scaled) == len(target.calls)
    # Level-triggered: another pass at the same instant changes nothing.
    before = list(target.calls)
    loop.reconcile()
    assert target.calls == before


def test_source_outage_is_reported_not_raised_and_nothing_scales() -> None:
    clock = ManualClock(T0 + 14 * DAY + 19 * 3600)
    target = RecordingTarget("cart", 3)
    loop, sink = _loop(_spec(), StaticHistory(_trace(), down=True), clock, target)
    report = loop.reconcile()
    assert target.calls == []
    conditions = {c.type: c for c in report.conditions}
    assert conditions["MetricsUnavailable"].status == "True"
    assert "connection refused" in conditions["MetricsUnavailable"].message
    assert conditions["Forecasting"].status == "False"
    assert [e.kind for e in sink.events] == ["SourceUnavailable"]
    assert report.forecast is None and report.demand_now is None


def test_dry_run_decides_but_does_not_act() -> None:
    # 19:20: the lead (30m + 10m) reaches the livestream's pre-scale (from 5 min before
    # its 20:00 start).
    clock = ManualClock(T0 + 14 * DAY + 19 * 3600 + 20 * 60)
    target = RecordingTarget("cart", 3)
    loop, _ = _loop(_spec(dry_run=True), StaticHistory(_trace()), clock, target)
    report = loop.reconcile()
    decision = report.targets[0].decision
    assert decision is not None and decision.desired_units > 3
    assert target.calls == []


def test_actuator_for_unknown_target_is_refused() -> None:
    with pytest.raises(Exception, match="not in the policy"):
        ControlLoop(
            _spec(),
            targets={"nope": RecordingTarget("nope", 1)},
            history=StaticHistory(_trace()),
            calendar=Calendar,
            clock=ManualClock(T0),
            forecaster=HeadroomForecaster,
            sink=ListSink(),
        )


def test_report_carries_the_plan_ahead_with_the_next_action() -> None:
    clock = ManualClock(T0 + 14 * DAY + 12 * 3600)
    target = RecordingTarget("cart", 3)
    loop, _ = _loop(_spec(), StaticHistory(_trace()), clock, target)
    report = loop.reconcile()
    upcoming = report.targets[0].next_action(clock.now())
    assert upcoming is not None
    event = _events()[-1]
    assert clock.now() < upcoming.at <= event.start - 40 * 60
    assert upcoming.to_units > 3 and "live 14" in upcoming.reason
