"""``headroom``: this engine as a strategy in the backtest simulator, through the driver.

Each decision is one tick of :class:`~headroom.policies.driver.Driver`, the same driver
the control loop runs (forecast cadence, horizon, calendar filter, planner calls and
state): the simulator hands it the past (never the trace) and the ordered units, and the
strategy orders what the tick decided. The only difference from the loop is the cadence:
the loop decides fully on every pass, the simulator runs the planner's full rule every
``decide_every`` seconds (5 minutes by default: forecast + plan cost about a millisecond,
too much for every minute of a month) and the reactive guard on every new sample in
between, so a surprise is scaled for at the next sample, as an HPA would (the driver
extends the lead time by the interval, see its docstring). The driver's forecaster is
``HeadroomForecaster`` on the policy's ``forecast`` settings.
"""

from __future__ import annotations

from dataclasses import replace

from headroom.policies.calendar import Calendar
from headroom.policies.driver import HOUR, Cadence, Driver, DriverState
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray
from headroom.policies.simulate import Fleet, History

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
        refit_every: float = 24 * HOUR,
        horizon_margin: float = HOUR,
        min_history: float = HOUR,
    ) -> None:
        self.policy = spec.model_copy(update={"targets": [target]})
        self.target = target
        self.calendar = calendar
        self.cadence = Cadence(
            decide_every=decide_every,
            forecast_every=forecast_every,
            refit_every=refit_every,
            min_history=min_history,
            surprise_interval=SURPRISE_INTERVAL,
            horizon_margin=horizon_margin,
        )
        self.forecaster = HeadroomForecaster(spec.forecast)
        self.driver = Driver(self.policy, self.forecaster, cadence=self.cadence)
        self.reasons: list[tuple[float, str]] = []  # (time, reason) of every order

    @property
    def state(self) -> DriverState:
        return self.driver.state

    def initial_units(self, default: int) -> int:
        return default

    def decision_times(self, grid: FloatArray) -> FloatArray:
        step = float(grid[1] - grid[0]) if grid.size > 1 else 60.0
        every = max(1, round(self.cadence.decide_every / step))
        cadence = replace(self.cadence, decide_every=every * step)
        self.driver = Driver(self.policy, self.forecaster, step=step, cadence=cadence)
        # Every sample: the driver runs the reactive guard on each new one (cheap) and the
        # full forecast rule every ``decide_every``.
        return grid

    def decide(self, now: float, past: History, fleet: Fleet) -> int:
        name = self.target.name
        tick = self.driver.decide(now, past, {name: fleet.ordered}, self.calendar)
        decision = tick.targets[name].decision
        self.driver.commit(tick, {name: decision.desired_units})
        if decision.action is not None:
            self.reasons.append((now, decision.reason))
        return decision.desired_units
