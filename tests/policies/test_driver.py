"""The one driver: the control loop and the simulator's headroom strategy run it alike.

The loop (a recording target on a manual clock, as in tests/controller/test_loop.py) and
the backtest strategy replay the same trace with the same policy; deciding on the same
cadence they must place the same orders at the same times, with one rule call per
target per tick. The driver's state is plain values (what a CapacityPolicy status holds).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from headroom.controller.loop import ControlLoop, ListSink
from headroom.controller.targets.base import ScaleStatus
from headroom.policies.baselines.headroom import HeadroomStrategy
from headroom.policies.calendar import Calendar, DemandEvent, EventKind
from headroom.policies.combined import TargetRule
from headroom.policies.driver import Cadence, Driver, SeriesPast
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import Budget, FreezeWindow, PolicySpec, parse_policy
from headroom.policies.series import Series
from headroom.policies.simulate import run_strategy, target_delay
from headroom.policies.synthetic import DailyShape, generate_trace
from tests.controller.test_loop import ManualClock, RecordingTarget, StaticHistory

DAY = 86400.0
T0 = 1_700_006_400.0  # a midnight UTC
STEP = 300.0


def _spec() -> PolicySpec:
    return parse_policy(
        {
            "name": "shop",
            "targets": [
                {
                    "name": "cart",
                    "capacityPerUnit": 1000,
                    "minUnits": 2,
                    "maxUnits": 20,
                    "provisioning": {"fixedSeconds": "20m"},
                }
            ],
            "leadTime": "5m",
            "forecast": {"history": "7d", "horizon": "6h", "quantile": 0.95},
            "scaleIn": {"cooldown": "20m", "interval": "10m", "stabilization": "10m"},
        }
    )


def _calendar() -> Calendar:
    return Calendar.of(
        DemandEvent(f"live {d}", EventKind.LIVESTREAM, T0 + d * DAY + 20 * 3600,
                    T0 + d * DAY + 21.5 * 3600, ramp=1800, labels={"host": "a"})
        for d in (1, 2, 3)
    )  # fmt: skip


def _trace() -> Series:
    return generate_trace(
        T0, 4, STEP, 3000.0, _calendar().events, [3.0, 3.5, 4.0], noise=0.08, seed=11
    )


class LaggingTarget(RecordingTarget):
    """A recording target whose added units serve after the provisioning delay, and whose
    scale-in removes pending units first, as the simulator's fleet does."""

    def __init__(self, name: str, units: int, clock: ManualClock, delay: float) -> None:
        super().__init__(name, units)
        self.clock, self.delay, self.ready = clock, delay, units
        self.pending: list[tuple[float, int]] = []

    def status(self) -> ScaleStatus:
        now = self.clock.now()
        self.ready += sum(n for at, n in self.pending if at <= now)
        self.pending = [(at, n) for at, n in self.pending if at > now]
        return ScaleStatus(desired=self.units, ready=self.ready)

    def scale(self, units: int, reason: str) -> None:
        if units > self.units:
            self.pending.append((self.clock.now() + self.delay, units - self.units))
        else:
            remove = self.units - units
            while remove and self.pending:
                at, n = self.pending.pop()
                if n > remove:
                    self.pending.append((at, n - remove))
                remove -= min(n, remove)
            self.ready -= remove
        super().scale(units, reason)


def test_the_loop_and_the_backtest_strategy_place_the_same_orders() -> None:
    spec, calendar, trace = _spec(), _calendar(), _trace()
    target = spec.targets[0]
    # The strategy decides fully on every sample here, as the loop does on every pass.
    strategy = HeadroomStrategy(spec, target, calendar, decide_every=STEP)
    replay = run_strategy(
        trace, strategy, target=target, delay=target_delay(target), initial_units=3
    )
    simulated = [(o.t, o.to_units) for o in replay.orders]

    clock = ManualClock(float(trace.t[0]))
    recording = LaggingTarget("cart", 3, clock, target.provisioning.delay(3, 4))
    loop = ControlLoop(
        spec,
        targets={"cart": recording},
        history=StaticHistory(trace),
        calendar=lambda: calendar,
        clock=clock,
        forecaster=lambda: HeadroomForecaster(spec.forecast),
        sink=ListSink(),
        step=STEP,
    )
    ran: list[tuple[float, int]] = []
    for t in trace.t:
        clock.t = float(t)
        seen = len(recording.calls)
        loop.reconcile()
        ran += [(float(t), units) for units, _ in recording.calls[seen:]]
    assert len(simulated) >= 6  # pre-scales and scale-ins around three livestreams
    assert ran == simulated
    # Same state too (budget accounting aside, which starts at the first tick for both).
    assert loop.state.for_target("cart").last_scale_out == (
        strategy.state.for_target("cart").last_scale_out
    )


def test_one_rule_call_and_one_plan_per_target_per_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop's pass decides with the rule once and projects the same rule's plan once."""
    spec, calendar, trace = _spec(), _calendar(), _trace()
    calls: list[str] = []
    for module, name in (
        (TargetRule, "decide"),
        (TargetRule, "plan_ahead"),
    ):
        real = getattr(module, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    clock = ManualClock(T0 + 3 * DAY + 18 * 3600)
    loop = ControlLoop(
        spec,
        targets={"cart": RecordingTarget("cart", 3)},
        history=StaticHistory(trace),
        calendar=lambda: calendar,
        clock=clock,
        forecaster=lambda: HeadroomForecaster(spec.forecast),
        sink=ListSink(),
        step=STEP,
    )
    for _ in range(5):
        calls.clear()
        report = loop.reconcile()
        assert calls == ["decide", "plan_ahead"]
        assert report.targets[0].plan is not None and report.targets[0].required_now is not None
        clock.sleep(STEP)


def test_the_state_is_plain_values_and_a_restored_driver_decides_alike() -> None:
    spec, calendar, trace = _spec(), _calendar(), _trace()
    driver = Driver(spec, HeadroomForecaster(spec.forecast), step=STEP)
    units = {"cart": 3}
    end = T0 + 3 * DAY + 22 * 3600
    t = T0 + 2 * DAY
    while t < end:
        tick = driver.decide(t, SeriesPast(trace.before(t)), units, calendar)
        units = {"cart": tick.targets["cart"].decision.desired_units}
        driver.commit(tick, units)
        t += STEP
    state = driver.state
    assert state.for_target("cart").last_scale_out is not None
    text = json.dumps(asdict(state))  # nothing but numbers, strings and None
    assert json.loads(text)["planner"]["cart"]["last_scale_out"] == (
        state.for_target("cart").last_scale_out
    )
    # A driver restarted from that state (refitting on its first tick) decides as the
    # running one does.
    restarted = Driver(spec, HeadroomForecaster(spec.forecast), step=STEP, state=state)
    driver.forget()  # the running one refits too, so both see the same model
    past = SeriesPast(trace.before(end))
    a = driver.decide(end, past, units, calendar).targets["cart"].decision
    b = restarted.decide(end, past, units, calendar).targets["cart"].decision
    assert a == b


def test_every_tick_runs_the_whole_rule_on_the_forecast_it_has() -> None:
    spec, calendar, trace = _spec(), _calendar(), _trace()
    driver = Driver(spec, HeadroomForecaster(spec.forecast), step=STEP,
                    cadence=Cadence(decide_every=3 * STEP, forecast_every=3 * STEP))  # fmt: skip
    assert driver.spec.lead_time == spec.lead_time  # no longer stretched by the cadence
    assert driver.horizon() >= spec.forecast.horizon
    t = T0 + 2 * DAY
    fulls, forecasts = [], []
    for k in range(6):
        now = t + k * STEP
        tick = driver.decide(now, SeriesPast(trace.before(now)), {"cart": 3}, calendar)
        driver.commit(tick, {"cart": 3})
        fulls.append(tick.full)
        forecasts.append(tick.forecast)
        # The predictive half ran on every tick, not only on full ones.
        assert tick.targets["cart"].required_now is not None
    assert fulls == [True, False, False, True, False, False]
    assert forecasts[0] is forecasts[1] is forecasts[2]
    assert forecasts[3] is not forecasts[0]


def test_demand_back_to_normal_inside_an_event_window_brings_a_fresh_forecast() -> None:
    """A 2-minute sale tripled demand on each of 7 days and stopped dead at its end. The
    forecast made before the next sale carries the event grid's tail (its first bin is
    10 minutes long), which would hold the scale-out for about 10 minutes after the end.
    Demand back at normal inside the event's window is a surprise like demand above the
    band: the fresh forecast's nowcast shrinks the rest, and the scale-in comes within
    minutes of the cooldown (before the fix: 580 s after the end)."""
    sale, length = T0 + 7 * DAY + 20 * 3600, 120.0
    events = [
        DemandEvent("Flash sale", EventKind.PROMOTION, sale - k * DAY, sale - k * DAY + length)
        for k in range(7, -1, -1)
    ]
    flat = DailyShape(amplitude=0.0, lunch=0.0, weekend=0.0)
    history = generate_trace(
        sale - 7 * DAY - 3600, 7 + 2 / 24, 60.0, 120.0, noise=0.04, seed=5, shape=flat
    )
    uplift = np.ones(len(history))
    for e in events[:-1]:
        uplift[(history.t >= e.start) & (history.t < e.end)] = 3.0
    spec = parse_policy(
        {
            "name": "shop",
            "targets": [{"name": "cart", "capacityPerUnit": 80, "minUnits": 3, "maxUnits": 8,
                         "provisioning": {"fixedSeconds": "100s"}}],
            "forecast": {"history": "7d", "horizon": "2h", "defaultRamp": "0s"},
            "scaleIn": {"cooldown": "30s", "stabilization": "30s", "interval": "20s",
                        "stepUnits": 8},
        }
    )  # fmt: skip
    driver = Driver(spec, HeadroomForecaster(spec.forecast))
    calendar = Calendar.of(events)
    t_hist, v_hist = history.t, history.v * uplift
    keep = t_hist < sale - 200
    ts, vs = list(t_hist[keep]), list(v_hist[keep])
    units, orders, now = 3, [], sale - 200.0
    while now < sale + length + 900:
        while ts[-1] + 60 <= now:
            ts.append(ts[-1] + 60)
            vs.append(120.0 * (3.0 if sale <= ts[-1] < sale + length else 1.0))
        tick = driver.decide(now, SeriesPast(Series(np.array(ts), np.array(vs))), {"cart": units},
                             calendar)  # fmt: skip
        wanted = tick.targets["cart"].decision.desired_units
        if wanted != units:
            orders.append((now - sale, units, wanted))
            units = wanted
        driver.commit(tick, {"cart": units})
        now += 5.0
    # Ahead of the sale, for the sale (its forecast median on the 1-minute grid is under
    # half its true size: the reactive half and the anchored forecast take it to 8 within
    # the first minute).
    assert orders[0][0] < 0 and orders[0][2] > 3
    assert max(to for _, _, to in orders) == 8
    back = [t for t, _, to in orders if to == 3]
    assert back and back[0] - length <= 400, orders


def test_one_low_sample_inside_an_event_does_not_bring_a_fresh_forecast() -> None:
    """A stall or a scrape gap gives one low sample mid-event; re-forecasting on it would
    let the nowcast shrink an event that is still running. Two low samples do."""
    sale = T0 + 7 * DAY + 20 * 3600
    events = [
        DemandEvent("Flash sale", EventKind.PROMOTION, sale - k * DAY, sale - k * DAY + 3600)
        for k in range(7, -1, -1)
    ]
    flat = DailyShape(amplitude=0.0, lunch=0.0, weekend=0.0)
    history = generate_trace(sale - 7 * DAY - 3600, 7 + 2 / 24, 60.0, 120.0, noise=0.04,
                             seed=5, shape=flat)  # fmt: skip
    v = history.v.copy()
    for e in events[:-1]:
        v[(history.t >= e.start) & (history.t < e.end)] *= 3.0
    spec = parse_policy(
        {"name": "shop", "targets": [{"name": "cart", "capacityPerUnit": 80, "minUnits": 3,
                                      "maxUnits": 8}],
         "forecast": {"history": "7d", "horizon": "2h", "defaultRamp": "0s"}}
    )  # fmt: skip
    driver = Driver(spec, HeadroomForecaster(spec.forecast))
    calendar = Calendar.of(events)
    keep = history.t < sale + 600
    ts, vs = list(history.t[keep]), list(v[keep])

    def tick(now: float) -> float:
        past = SeriesPast(
            Series(
                np.array([t for t in ts if t < now]),
                np.array([x for t, x in zip(ts, vs, strict=True) if t < now]),
            )
        )
        driver.commit(driver.decide(now, past, {"cart": 6}, calendar), {"cart": 6})
        return driver._forecast_at

    made = tick(sale - 30.0)
    fc = driver._forecast
    assert fc is not None
    for t in np.arange(sale, sale + 600, 60.0):  # the sale runs as forecast
        vs[ts.index(t)] = float(fc.level(0.5)[np.searchsorted(fc.t, t, side="right") - 1])
    ts.append(sale + 600.0)
    vs.append(120.0)  # one sample back at normal
    assert tick(sale + 601.0 + 60) == made  # a minute later: still the same forecast
    ts.append(sale + 660.0)
    vs.append(118.0)  # and a second one
    assert tick(sale + 661.0 + 60) > made


def test_the_plan_ahead_is_what_the_rule_then_orders() -> None:
    """Two hours before the last livestream, the plan ahead names the pre-scale the rule
    will order for it; replaying the ticks that follow on the same trace, the rule orders
    that many units within one tick of the planned time (plan == what runs)."""
    spec, calendar, trace = _spec(), _calendar(), _trace()
    driver = Driver(spec, HeadroomForecaster(spec.forecast), step=STEP)
    show = calendar.events[-1]
    units = {"cart": 3}
    t = T0 + 3 * DAY + 12 * 3600
    plan = None
    while t < show.start - 2 * 3600:
        tick = driver.decide(t, SeriesPast(trace.before(t)), units, calendar, with_plan=True)
        units = {"cart": tick.targets["cart"].decision.desired_units}
        driver.commit(tick, units)
        plan = tick.targets["cart"].plan
        t += STEP
    assert plan is not None
    planned = [a for a in plan.actions if a.is_scale_out and a.event == show.name]
    assert planned, plan.actions
    first = planned[0]
    assert first.ready_by <= show.start
    ordered: list[tuple[float, int]] = []
    while t < show.start:
        tick = driver.decide(t, SeriesPast(trace.before(t)), units, calendar)
        desired = tick.targets["cart"].decision.desired_units
        if desired != units["cart"]:
            ordered.append((t, desired))
        units = {"cart": desired}
        driver.commit(tick, units)
        t += STEP
    # Within a unit: the plan measured the show's base two hours early (moved by the
    # daily shape to its start), the tick at the start of the base window.
    up = [(at, n) for at, n in ordered if abs(n - first.to_units) <= 1]
    assert up, (ordered, first)
    assert abs(up[0][0] - first.at) <= STEP, (up[0], first)
    assert max(n for _, n in ordered) <= first.to_units + 1


def test_the_plan_ahead_holds_where_the_policy_holds() -> None:
    """With ``scaleIn.duringEvents: hold`` the plan shows no scale-in from the event's ramp
    to its end (the rule's own hold), and with the default it may follow demand down."""
    held = _spec().model_copy(
        update={"scale_in": _spec().scale_in.model_copy(update={"during_events": "hold"})}
    )
    calendar, trace = _calendar(), _trace()
    show = calendar.events[-1]
    t = show.start - 3 * 3600
    driver = Driver(held, HeadroomForecaster(held.forecast), step=STEP)
    tick = driver.decide(t, SeriesPast(trace.before(t)), {"cart": 3}, calendar, with_plan=True)
    plan = tick.targets["cart"].plan
    assert plan is not None
    ramp = show.start - 1800
    inside = [a for a in plan.actions if ramp <= a.at < show.end]
    assert any(a.is_scale_out for a in plan.actions if a.at < show.start)
    assert not [a for a in inside if not a.is_scale_out], plan.actions
    assert any(not a.is_scale_out and a.at >= show.end for a in plan.actions), plan.actions


def _replay_orders(
    driver: Driver, calendar: Calendar, trace: Series, t: float, until: float, units: int
) -> list[tuple[float, int, str]]:
    """The rule's orders tick by tick from ``t`` to ``until``: (time, units, reason)."""
    ordered: list[tuple[float, int, str]] = []
    now = {"cart": units}
    while t < until:
        tick = driver.decide(t, SeriesPast(trace.before(t)), now, calendar)
        decision = tick.targets["cart"].decision
        if decision.desired_units != now["cart"]:
            ordered.append((t, decision.desired_units, decision.reason))
        now = {"cart": decision.desired_units}
        driver.commit(tick, now)
        t += STEP
    return ordered


def test_the_plan_ahead_keeps_a_freeze_window_as_the_rule_does() -> None:
    """A freeze window over the time the show's pre-scale is due: the plan orders nothing
    for the forecast inside it (a scale-out there only for the demand then, and said so)
    and the pre-scale the moment it ends; the rule, replayed, orders that at that time."""
    calendar, trace = _calendar(), _trace()
    show = calendar.events[-1]
    lo, hi = show.start - 3 * 3600, show.start - 900
    iso = [datetime.fromtimestamp(x, UTC).isoformat() for x in (lo, hi)]
    spec = _spec().model_copy(
        update={"freeze_windows": (FreezeWindow(start=iso[0], end=iso[1], reason="release"),)}
    )
    t = lo - 3600
    driver = Driver(spec, HeadroomForecaster(spec.forecast), step=STEP)
    tick = driver.decide(t, SeriesPast(trace.before(t)), {"cart": 3}, calendar, with_plan=True)
    plan = tick.targets["cart"].plan
    assert plan is not None
    frozen = [a for a in plan.actions if lo <= a.at < hi]
    assert not [a for a in frozen if not a.is_scale_out], plan.actions  # no scale-in
    # A scale-out there is the demand's own (the reactive need then).
    outs = [a for a in frozen if a.is_scale_out]
    assert all(a.event is None and "reactive: forecast p50" in a.reason for a in outs), outs
    planned = [a for a in plan.actions if a.is_scale_out and a.event == show.name]
    assert planned and planned[0].at >= hi, plan.actions
    # The same policy without the freeze orders it earlier: the window moved it.
    free = Driver(_spec(), HeadroomForecaster(spec.forecast), step=STEP)
    unfrozen = free.decide(t, SeriesPast(trace.before(t)), {"cart": 3}, calendar, with_plan=True)
    assert unfrozen.targets["cart"].plan is not None
    early = [a for a in unfrozen.targets["cart"].plan.actions if a.event == show.name]
    assert early and early[0].at < hi
    units = tick.targets["cart"].decision.desired_units
    driver.commit(tick, {"cart": units})
    ordered = _replay_orders(driver, calendar, trace, t + STEP, show.start, units)
    inside = [(at, n, why) for at, n, why in ordered if lo <= at < hi]
    assert all("forecast p50" not in why for _, _, why in inside), inside
    up = [(at, n) for at, n, _ in ordered if at >= hi and abs(n - planned[0].to_units) <= 1]
    assert up and abs(up[0][0] - planned[0].at) <= STEP, (ordered, planned[0])


def test_the_plan_ahead_holds_the_forecast_to_the_budget_as_the_rule_does() -> None:
    """A unit-hour budget too small for the show's pre-scale: the plan's order for it is
    held to the budget's ceiling and says so, as the rule's own order then is."""
    calendar, trace = _calendar(), _trace()
    show = calendar.events[-1]
    t = show.start - 2 * 3600
    wide = Driver(_spec(), HeadroomForecaster(_spec().forecast), step=STEP)
    tick = wide.decide(t, SeriesPast(trace.before(t)), {"cart": 3}, calendar, with_plan=True)
    assert tick.targets["cart"].plan is not None
    want = max(a.to_units for a in tick.targets["cart"].plan.actions if a.event == show.name)
    # A day's budget: the 18 h past the 6-h look-ahead at minUnits (2) are 36 unit-hours,
    # which leaves 40 for the look-ahead: about 6 replicas until the show and not the
    # pre-scale's 16 through it.
    budget = Budget(max_unit_hours=76, period=86400.0)
    spec = _spec().model_copy(update={"budget": budget})
    driver = Driver(spec, HeadroomForecaster(spec.forecast), step=STEP)
    tick = driver.decide(t, SeriesPast(trace.before(t)), {"cart": 3}, calendar, with_plan=True)
    plan = tick.targets["cart"].plan
    assert plan is not None
    cut = [a for a in plan.actions if "the unit-hour budget holds the forecast's" in a.reason]
    assert cut, plan.actions
    assert max(a.to_units for a in plan.actions) < want
    units = tick.targets["cart"].decision.desired_units
    driver.commit(tick, {"cart": units})
    ordered = _replay_orders(driver, calendar, trace, t + STEP, show.start, units)
    assert ordered and max(n for _, n, _ in ordered) < want
    assert any("the unit-hour budget holds the forecast's" in why for _, _, why in ordered)
