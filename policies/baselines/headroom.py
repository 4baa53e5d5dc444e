"""``headroom``: this engine (forecast + planner) as a strategy in the backtest simulator.

At each decision it forecasts from the past the simulator hands it (never the trace)
and the calendar (known ahead), then orders what :func:`headroom.policies.planner.decide`
says, carrying :class:`~headroom.policies.planner.PlannerState` between decisions the
way the operator keeps it in status. The forecaster is refitted once per
``refit_every`` (hourly while it has less than a day of history) and between refits
only its level follows new samples (``HeadroomForecaster.update``), which keeps a
30-day replay within seconds. The forecast covers the longest provisioning lead plus
the scale-in stabilisation plus ``horizon_margin``, on the trace's own step.

It runs the planner's full rule every ``decide_every`` seconds (5 minutes by default:
forecast + plan cost about a millisecond, too much for every minute of a month) and the
planner's reactive guard (:func:`~headroom.policies.planner.reactive_guard`, microseconds)
on every new sample in between, so a surprise is scaled for at the next sample, as an HPA
would; the full rule passes the newest sample to ``decide`` too. It forecasts every
``forecast_every`` (15 minutes; each forecast reaches that much further, and the
forecaster's level moves over hours, so a decision sees the same numbers it would
have computed itself) — except that a sample above the cached forecast's band triggers a
fresh forecast at once, so a surprise is acted on at the next decision (at most once per
``SURPRISE_INTERVAL``: on a 1-second trace a noisy band is crossed every few seconds,
and the guard already acts on every sample). A need that
arises between
two decisions must already be ordered at the earlier one, so the planner's ``lead_time``
is extended by the decision interval minus one trace step; the policy is otherwise used
as written.
"""

from __future__ import annotations

import math

import numpy as np

from headroom.policies.calendar import Calendar
from headroom.policies.forecast.base import Forecast
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.planner import PlannerState, advance_state, decide, reactive_guard
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray
from headroom.policies.simulate import Fleet, History

_HOUR = 3600.0
_DAY = 86400.0
_EMPTY = np.empty(0, dtype=np.float64)
SURPRISE_INTERVAL = 60.0  # at most one surprise-triggered forecast per this many seconds


class HeadroomStrategy:
    """Forecast (quantile) -> planner -> order, on the simulator's clock."""

    name = "headroom"

    def __init__(
        self,
        spec: PolicySpec,
        target: Target,
        calendar: Calendar,
        *,
        decide_every: float = 300.0,
        forecast_every: float = 900.0,
        refit_every: float = _DAY,
        horizon_margin: float = _HOUR,
        min_history: float = _HOUR,
    ) -> None:
        self.spec = spec
        self._policy = spec
        self.target = target
        labels = {**spec.event_selector, **target.labels}
        self.calendar = calendar.for_labels(labels)
        self.decide_every = decide_every
        self.refit_every = refit_every
        self.forecast_every = forecast_every
        self.min_history = min_history
        longest = target.provisioning.delay(target.min_units, target.max_units)
        self.horizon = longest + spec.lead_time + spec.scale_in.stabilization + horizon_margin
        self.horizon += forecast_every
        self.levels = (0.5, spec.forecast.quantile)  # the planner sizes the median too
        self.forecaster = HeadroomForecaster(spec.forecast)
        self.state = PlannerState()
        self.reasons: list[tuple[float, str]] = []  # (time, reason) of every order
        self._fitted_at: float | None = None
        self._updated_to = -math.inf
        self._step = 60.0
        self._forecast: Forecast | None = None
        self._forecast_at = -math.inf
        self._next_full: float | None = None  # when the forecast rule runs next

    def initial_units(self, default: int) -> int:
        return default

    def decision_times(self, grid: FloatArray) -> FloatArray:
        self._step = float(grid[1] - grid[0]) if grid.size > 1 else 60.0
        every = max(1, round(self.decide_every / self._step))
        self.decide_every = every * self._step
        extra = self.decide_every - self._step
        self.spec = self._policy.model_copy(update={"lead_time": self._policy.lead_time + extra})
        # Every sample: the reactive guard looks at each new one (cheap); the forecast
        # rule runs every ``decide_every`` (see decide).
        return grid

    def _refresh(self, now: float, past: History) -> bool:
        """Refit or move the level; False while there is too little history to forecast."""
        span = past.last_time - past.first_time if len(past) else 0.0
        if len(past) < 2 or span < self.min_history:
            return False
        interval = self.refit_every if span >= _DAY else min(self.refit_every, _HOUR)
        if self._fitted_at is None or now - self._fitted_at >= interval:
            self.forecaster.fit(past.series(), self.calendar)
            self._fitted_at = now
        elif past.last_time > self._updated_to:
            self.forecaster.update(past.since(self._updated_to + 1e-6))
        self._updated_to = past.last_time
        return True

    def _surprised(self, now: float, past: History) -> bool:
        """The newest sample is above the cached forecast's band: forecast again now."""
        fc = self._forecast
        if fc is None or not len(past) or not past.last_value == past.last_value:
            return False
        if now - self._forecast_at < SURPRISE_INTERVAL:
            return False
        i = int(np.searchsorted(fc.t, past.last_time, side="right")) - 1
        if i < 0:
            return False
        return past.last_value > float(fc.level(self.spec.forecast.quantile)[i])

    def decide(self, now: float, past: History, fleet: Fleet) -> int:
        dt = self._step
        observed = past.last_value if len(past) else None
        surprised = self._surprised(now, past)
        if self._next_full is not None and now < self._next_full and not surprised:
            # Between full decisions only the reactive guard runs, on the newest sample;
            # a sample above the forecast's band brings the full rule (and a fresh
            # forecast, whose nowcast resizes an event under way) forward to now.
            guard = reactive_guard(
                observed, self.spec, self.target, now=now, current_units=fleet.ordered
            )
            units = fleet.ordered if guard is None else guard.to_units
            self.state = advance_state(
                self.state, now=now, units=units, dt=dt, action=guard, spec=self.spec
            )
            if guard is not None:
                self.reasons.append((now, guard.reason))
            return units
        self._next_full = now + self.decide_every - 1e-6
        if self._forecast is None or now - self._forecast_at >= self.forecast_every or surprised:
            if not self._refresh(now, past):
                # Too little history to forecast: the guard alone (an empty forecast).
                self._forecast = None
                forecast = Forecast(_EMPTY, _EMPTY, {})
                return self._order(forecast, now, observed, fleet, dt)
            self._forecast = self.forecaster.predict(now, self.horizon, self._step, self.levels)
            self._forecast_at = now
        return self._order(self._forecast, now, observed, fleet, dt)

    def _order(
        self, forecast: Forecast, now: float, observed: float | None, fleet: Fleet, dt: float
    ) -> int:
        decision = decide(
            forecast,
            self.spec,
            self.target,
            now=now,
            current_units=fleet.ordered,
            calendar=self.calendar,
            state=self.state,
            observed_demand=observed,
        )
        self.state = advance_state(
            self.state,
            now=now,
            units=decision.desired_units,
            dt=dt,
            action=decision.action,
            spec=self.spec,
        )
        if decision.action is not None:
            self.reasons.append((now, decision.reason))
        return decision.desired_units
