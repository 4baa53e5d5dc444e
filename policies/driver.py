"""The driver: forecast -> decide -> advance state, the one sequence that runs a policy.

The control loop (:mod:`headroom.controller.loop`: ``headroom demo`` and the operator)
calls it once per reconcile pass; the backtest simulator's ``headroom`` strategy
(:mod:`headroom.policies.baselines.headroom`) calls it every 15 s, the operator's and
the HPA's cadence. So a backtest measures what users run: the same forecast cadence,
horizon, calendar filter, lead time and rule. A tick has two halves:

1. :meth:`Driver.decide` ``(now, past, units, calendar)`` refreshes the forecast when it
   is due (see :class:`Cadence`), then for every target runs the combined rule
   (:mod:`headroom.policies.combined`: ``max(reactive, predictive)`` through the HPA's
   stabilisation and limits) on the forecast it has, and returns a :class:`Tick`: the
   forecast used, and per target the :class:`~headroom.policies.planner.values.Decision`,
   the units the predictive half needs *now* and, when asked for, the plan ahead (the
   rule's own projection over the forecast's timeline,
   :meth:`~headroom.policies.combined.TargetRule.plan_ahead`).
2. :meth:`Driver.commit` ``(tick, ordered)``: the caller says what it did order per
   target (an actuator may fail, a dry run orders nothing) and the driver advances its
   :class:`DriverState` (and the HPA rule's rate-limit periods).

Cadence. The model is refitted once per ``refit_every`` (hourly while there is less
than a day of history; at once when the calendar changes); between refits only its
level follows new samples (``update``, when the forecaster has it). A forecast is made
every ``forecast_every`` and reaches that much further than the longest lead, except
that a newest sample above the cached forecast's band (or, inside an event's window,
two below its mirror) brings a fresh forecast forward, at most once per
``surprise_interval``. Every tick runs the whole rule on the cached forecast (cheap:
what follows from the samples is computed once per new sample); ``decide_every`` only
spaces the attempts to refresh the forecast and the plan ahead.

The horizon comes from the spec: what a decision needs (:meth:`Driver.reach`: the longest
lead — provisioning delay at the largest change plus the lead time — twice, the scale-in
stabilisation, one forecast interval and ``horizon_margin``), and for a caller that
shows the plan ahead (the loop) at least ``forecast.horizon``. Decisions depend only on
the reach, so both give the same orders; the simulator, deciding only, forecasts less.

State. :class:`DriverState` holds plain values only (per target the planner's
:class:`~headroom.policies.planner.values.PlannerState`: budget used in the period, last
scale-out and scale-in; the time of the last tick and of the next full decision), so the
operator can keep it in a CapacityPolicy's status and hand it back after a restart
(``Driver(..., state=...)``). The fitted model, the cached forecast and the HPA rule's
windows are not state: a restarted driver refits on its first tick and starts its windows
empty, as a restarted HPA controller does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, Self, runtime_checkable

import numpy as np

from headroom.policies.calendar import Calendar
from headroom.policies.combined import ANCHOR_WINDOW, TargetRule
from headroom.policies.forecast.base import Forecast, Forecaster
from headroom.policies.forecast.uplift import event_window
from headroom.policies.measured import Anchor, anchor_of
from headroom.policies.planner.budget import advance_state
from headroom.policies.planner.values import Decision, Plan, PlannerState
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray, Series
from headroom.policies.text import target_key

HOUR = 3600.0
DAY = 86400.0
_EMPTY = Forecast(np.empty(0, dtype=np.float64), np.empty(0, dtype=np.float64), {})


class Past(Protocol):
    """The samples a tick may see (all before ``now``): the simulator's ``History``, or a
    :class:`Series` through :class:`SeriesPast`."""

    def __len__(self) -> int: ...

    @property
    def first_time(self) -> float: ...

    @property
    def last_time(self) -> float: ...

    @property
    def last_value(self) -> float: ...

    def series(self) -> Series:
        """Every sample (what a refit learns from)."""
        ...

    def since(self, start: float) -> Series:
        """The samples at ``t >= start`` (what moves the level between refits)."""
        ...

    def recent(self, count: int) -> tuple[FloatArray, FloatArray]:
        """The times and values of the newest ``count`` samples (read-only views)."""
        ...


class SeriesPast:
    """A :class:`Series` (the loop's history up to now) seen as a :class:`Past`."""

    def __init__(self, series: Series) -> None:
        self._series = series

    def __len__(self) -> int:
        return len(self._series)

    @property
    def first_time(self) -> float:
        return self._series.start

    @property
    def last_time(self) -> float:
        return self._series.end

    @property
    def last_value(self) -> float:
        return float(self._series.v[-1]) if len(self._series) else math.nan

    def series(self) -> Series:
        return self._series

    def since(self, start: float) -> Series:
        return self._series.between(start, math.inf)

    def recent(self, count: int) -> tuple[FloatArray, FloatArray]:
        n = len(self._series)
        return self._series.t[max(0, n - count) :], self._series.v[max(0, n - count) :]


@runtime_checkable
class UpdatingForecaster(Forecaster, Protocol):
    """A forecaster whose level can follow new samples without a refit."""

    def update(self, recent: Series) -> Self: ...


@dataclass(frozen=True)
class Cadence:
    """How often a driver forecasts and decides (seconds); see the module docstring."""

    decide_every: float = 0.0  # the full rule at most this often; 0 = every tick
    forecast_every: float = 900.0
    refit_every: float = DAY
    min_history: float = HOUR  # less history than this: the reactive guard alone
    surprise_interval: float = 60.0
    horizon_margin: float = HOUR


@dataclass(frozen=True)
class DriverState:
    """What a driver carries between ticks: plain values (serialisable into a status)."""

    planner: Mapping[str, PlannerState] = field(default_factory=dict)  # by target name
    last_tick: float | None = None
    next_full: float | None = None  # the full rule's next run (None: at the next tick)

    def for_target(self, name: str) -> PlannerState:
        return self.planner.get(name, PlannerState())


@dataclass(frozen=True)
class TargetTick:
    """One target at one tick: what to order now and why."""

    name: str
    current_units: int
    decision: Decision
    required_now: int | None  # units the planner's sizing rule needs at ``now`` (None: no forecast)
    plan: Plan | None  # the timeline ahead, when asked for on a full decision


@dataclass(frozen=True)
class Tick:
    """What :meth:`Driver.decide` returns; hand it back to :meth:`Driver.commit`."""

    at: float
    forecast: Forecast | None  # the forecast the decisions used (None: too little history)
    observed: float | None  # the newest sample, if it is not a gap (the guard's input)
    full: bool  # the full forecast rule ran (False: only the reactive guard)
    targets: Mapping[str, TargetTick]


class Driver:
    """Runs one policy: forecast (cached, refreshed on its cadence) -> planner -> state."""

    def __init__(
        self,
        spec: PolicySpec,
        forecaster: Forecaster,
        *,
        step: float = 60.0,
        cadence: Cadence = Cadence(),  # noqa: B008 - frozen, so a shared default is safe
        state: DriverState | None = None,
    ) -> None:
        self.policy = spec
        self.forecaster = forecaster
        self.step = step
        self.cadence = cadence
        self.state = state if state is not None else DriverState()
        self.spec = spec
        self._rules = self._new_rules()
        self._reach: float | None = None
        self._anchor_count = max(2, math.ceil(ANCHOR_WINDOW / step) + 2)
        self._seen: tuple[int, float] = (-1, math.nan)  # the samples at the last tick
        self._observed: float | None = None
        self._anchor: Anchor | None = None
        self._surprise_pending = False
        self.levels = (0.5, spec.forecast.quantile)  # the planner sizes the median too
        self._raw_calendar: Calendar | None = None
        self._calendar = Calendar()
        self._fitted_calendar: Calendar | None = None
        self._fitted_at: float | None = None
        self._updated_to = -math.inf
        self._forecast: Forecast | None = None
        self._forecast_at = -math.inf

    # -- the horizon and the calendar ----------------------------------------------------

    def reach(self) -> float:
        """How far a decision looks (seconds): the longest lead (the provisioning delay
        of the largest change plus the lead time), twice, the scale-in stabilisation, one
        forecast interval and ``horizon_margin``."""
        spec = self.spec
        longest = max(t.provisioning.delay(t.min_units, t.max_units) for t in spec.targets)
        reach = 2 * (longest + spec.lead_time) + spec.scale_in.stabilization
        return reach + self.cadence.forecast_every + self.cadence.horizon_margin

    def horizon(self, with_plan: bool = True) -> float:
        """How far each forecast reaches (seconds): the spec's ``forecast.horizon`` for a
        plan ahead (or the reach, if longer); the reach alone when only deciding."""
        if self._reach is None:
            self._reach = self.reach()  # from the spec alone: once
        return max(self.spec.forecast.horizon, self._reach) if with_plan else self._reach

    def _events(self, calendar: Calendar) -> Calendar:
        """The events that select this policy (filtered once per calendar object)."""
        if calendar is not self._raw_calendar:
            self._raw_calendar = calendar
            filtered = calendar.for_labels(self.spec.event_selector)
            if filtered.events != self._calendar.events:
                self._calendar = filtered
        return self._calendar

    # -- the forecast --------------------------------------------------------------------

    def _must_refit(self, now: float, past: Past, calendar: Calendar) -> bool:
        span = past.last_time - past.first_time
        refit = self.cadence.refit_every if span >= DAY else min(self.cadence.refit_every, HOUR)
        return (
            self._fitted_at is None
            or now - self._fitted_at >= refit
            or calendar is not self._fitted_calendar
            or not isinstance(self.forecaster, UpdatingForecaster)
        )

    def fit_stale(self, now: float) -> bool:
        """A cheap look (no history needed): the model was never fitted or is a refit
        period old, so a batch refit is worth gathering."""
        return self._fitted_at is None or now - self._fitted_at >= self.cadence.refit_every

    def refit_due(self, now: float, past: Past, calendar: Calendar) -> Calendar | None:
        """The events the model would be refitted on at ``now`` (``calendar``: the full
        calendar, as for :meth:`decide`), or None when no refit is due. A caller with many
        drivers (the operator's pass) gathers these, fits the models in one batch
        (``HeadroomForecaster.fit_many``) and hands each back with :meth:`adopt`."""
        events = self._events(calendar)
        enough = len(past) >= 2 and past.last_time - past.first_time >= self.cadence.min_history
        return events if enough and self._must_refit(now, past, events) else None

    def adopt(self, model: Forecaster, now: float, events: Calendar, past: Past) -> None:
        """Use ``model``, fitted elsewhere on ``past`` and ``events`` (from
        :meth:`refit_due`), as this driver's fit at ``now``: the next tick only forecasts."""
        self.forecaster = model
        self._fitted_at = now
        self._fitted_calendar = events
        self._updated_to = past.last_time
        self._forecast, self._forecast_at = None, -math.inf

    def _refresh(self, now: float, past: Past, calendar: Calendar) -> bool:
        """Refit or move the level; False while there is too little history to forecast."""
        span = past.last_time - past.first_time if len(past) else 0.0
        if len(past) < 2 or span < self.cadence.min_history:
            return False
        model = self.forecaster
        if self._must_refit(now, past, calendar):
            model.fit(past.series(), calendar)
            self._fitted_at = now
            self._fitted_calendar = calendar
        elif isinstance(model, UpdatingForecaster) and past.last_time > self._updated_to:
            model.update(past.since(self._updated_to + 1e-6))
        self._updated_to = past.last_time
        return True

    def _surprised(self, now: float, past: Past, events: Calendar) -> bool:
        """Forecast again now: the newest sample is above the cached forecast's band, or,
        inside an event's window (ramp, event, tail), the two newest are as far below the
        median as the band reaches above it (the event ran smaller or ended sooner than
        forecast: its nowcast shrinks the rest of it, so capacity is not held for demand
        that left; one low sample alone is not enough)."""
        fc = self._forecast
        if fc is None or not len(past) or not past.last_value == past.last_value:
            return False
        if now - self._forecast_at < self.cadence.surprise_interval:
            return False
        i = int(np.searchsorted(fc.t, past.last_time, side="right")) - 1
        if i < 0:
            return False
        upper_band = fc.level(self.spec.forecast.quantile)
        if past.last_value > float(upper_band[i]):
            return True
        # Below: the two newest samples, both (one low sample is a scrape gap or a stall
        # as often as demand that left, and shrinking an event under way on it is costly).
        rt, rv = past.recent(2)
        if rt.size < 2 or rt[0] < past.last_time - 1.5 * self.step:
            return False
        at = np.searchsorted(fc.t, rt, side="right") - 1
        if int(at[0]) < 0:
            return False
        median = fc.level(0.5)[at]
        lower = 2 * median - upper_band[at]
        if not bool(np.all(rv < lower)):  # NaN compares False: not below
            return False
        ramp = self.spec.forecast.default_ramp
        return any(
            lo <= past.last_time < hi for lo, hi in (event_window(e, ramp) for e in events.events)
        )

    def _forecast_for(
        self, now: float, past: Past, calendar: Calendar, surprised: bool, horizon: float
    ) -> None:
        due = now - self._forecast_at >= self.cadence.forecast_every
        fc = self._forecast
        # A changed calendar (a DemandEvent added, a surge, an event moved) is a new forecast
        # at once: an emergency surge must not wait for the next forecast interval.
        changed = calendar is not self._fitted_calendar
        if fc is not None and not due and not surprised and not changed:
            reaches = float(fc.t[-1]) + self.step >= now + horizon - self.cadence.forecast_every
            if reaches:
                return
        if not self._refresh(now, past, calendar):
            self._forecast = None
            return
        self._forecast = self.forecaster.predict(now, horizon, self.step, self.levels)
        self._forecast_at = now

    def forget(self) -> None:
        """Drop the fitted model's age, the cached forecast and the HPA rule's windows: the
        next tick refits and forecasts afresh (as a restarted driver does; the state is
        kept)."""
        self._fitted_at = None
        self._fitted_calendar = None
        self._forecast = None
        self._forecast_at = -math.inf
        self._rules = self._new_rules()
        self._seen = (-1, math.nan)

    def _new_rules(self) -> dict[str, TargetRule]:
        """Each target's combined rule, with empty HPA windows (as a restarted HPA has)."""
        rules = {t.name: TargetRule(self.spec, t) for t in self.spec.targets}
        for rule in rules.values():
            rule.step = self.step
        return rules

    # -- a tick --------------------------------------------------------------------------

    def decide(
        self,
        now: float,
        past: Past,
        units: Mapping[str, int],
        calendar: Calendar,
        *,
        with_plan: bool = False,
        ready: Mapping[str, int] | None = None,
    ) -> Tick:
        """What every target (``units``: name -> units ordered now) should order at ``now``.

        ``past`` holds only samples before ``now``; ``calendar`` may be the full calendar
        (the events selecting this policy are taken from it); ``ready``: name -> units
        serving now (the HPA rule's unready pods; default: all ordered units are ready).
        ``with_plan``: also return each target's plan ahead on a full decision."""
        events = self._events(calendar)
        # What the samples are: their count and the newest time (a loop's history may be a
        # sliding window of constant length).
        seen = (len(past), past.last_time if len(past) else math.nan)
        if seen != self._seen:  # what follows from the samples: once per new sample
            self._seen = seen
            last = past.last_value if seen[0] else math.nan
            self._observed = last if math.isfinite(last) else None
            self._anchor = None
            if seen[0]:
                t, v = past.recent(self._anchor_count)
                keep = t > past.last_time - ANCHOR_WINDOW
                self._anchor = anchor_of(t[keep], v[keep])
            self._surprise_pending = True
        observed = self._observed
        forecasting = self.spec.forecast.enabled
        surprised = False
        if forecasting and self._surprise_pending:
            if now - self._forecast_at >= self.cadence.surprise_interval:
                surprised = self._surprised(now, past, events)
                self._surprise_pending = False
        nxt = self.state.next_full
        full = nxt is None or now >= nxt or surprised
        if full and forecasting:
            self._forecast_for(now, past, events, surprised, self.horizon(with_plan))
        forecast = self._forecast if forecasting else None
        anchor = self._anchor
        last_tick = self.state.last_tick
        dt = 0.0 if last_tick is None else min(max(0.0, now - last_tick), self.step)
        ticks: dict[str, TargetTick] = {}
        for target in self.spec.targets:
            u = units[target.name]
            st = self.state.for_target(target.name)
            result = self._rules[target.name].decide(
                now,
                units=u,
                ready=u if ready is None else ready.get(target.name, u),
                observed=observed,
                anchor=anchor,
                forecast=forecast,
                calendar=events,
                state=st,
                dt=dt,
                since=past.since,
                seen=seen,
            )
            plan: Plan | None = None
            if full and with_plan:
                plan = self._plan_ahead(
                    target, forecast, now, u, result.decision.desired_units, anchor, past, st
                )
            ticks[target.name] = TargetTick(
                target.name, u, result.decision, result.required_now, plan
            )
        return Tick(now, forecast, observed, full, ticks)

    def _plan_ahead(
        self,
        target: Target,
        forecast: Forecast | None,
        now: float,
        units: int,
        decided: int,
        anchor: Anchor | None,
        past: Past,
        state: PlannerState,
    ) -> Plan:
        """The rule's own timeline ahead (what it will order), or an empty one."""
        if forecast is None or not forecast.t.size:
            empty = np.empty(0, dtype=np.int64)
            key = target_key(target)
            return Plan(key, _EMPTY.t, empty, empty, (), False, ("no forecast",))
        rule = self._rules[target.name]
        return rule.plan_ahead(forecast, now, units=units, decided=decided, anchor=anchor,
                               since=past.since, state=state)  # fmt: skip

    def commit(self, tick: Tick, ordered: Mapping[str, int]) -> DriverState:
        """Advance the state after ``tick``: ``ordered`` (name -> units) is what the caller
        has ordered now; a target whose order differs from the decision (the actuator
        failed, a dry run) counts as no action."""
        dt = 0.0 if self.state.last_tick is None else max(0.0, tick.at - self.state.last_tick)
        planner = dict(self.state.planner)
        for name, tt in tick.targets.items():
            units = ordered.get(name, tt.current_units)
            action = tt.decision.action
            if action is not None and units != action.to_units:
                action = None
            rule = self._rules.get(name)
            if rule is not None:
                rule.record(tick.at, tt.current_units, units)
            planner[name] = advance_state(
                self.state.for_target(name), now=tick.at, units=units, dt=dt, action=action,
                spec=self.spec,
            )  # fmt: skip
        nxt = self.state.next_full
        if tick.full:
            nxt = tick.at + self.cadence.decide_every - 1e-6 if self.cadence.decide_every else None
        self.state = DriverState(planner, tick.at, nxt)  # built directly: once per sample
        return self.state

    def idle(self, now: float, units: Mapping[str, int]) -> DriverState:
        """Advance the state over a tick with no decision (the demand source was down)."""
        idle = Tick(
            now,
            None,
            None,
            False,
            {
                name: TargetTick(name, u, Decision(u, None, False, "hold: no metrics"), None, None)
                for name, u in units.items()
            },
        )
        return self.commit(idle, units)
