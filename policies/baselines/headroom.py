"""``headroom``: this engine as a strategy in the backtest simulator, through the driver.

Each decision is one tick of :class:`~headroom.policies.driver.Driver`, the same driver
the control loop and the operator run (forecast cadence, horizon, calendar filter, the
combined rule of :mod:`headroom.policies.combined`, state): the simulator hands it the
past (never the trace), the ordered and the ready units, and the strategy orders what
the tick decided. It decides at the operator's cadence, every ``decide_every`` seconds
(15 s, the HPA's sync period, by default); the forecast is refreshed every
``forecast_every`` (or sooner on a surprise) and each tick only sizes the cached one.
The driver's forecaster is ``HeadroomForecaster`` on the policy's ``forecast`` settings.
"""

from __future__ import annotations

import numpy as np

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
        decide_every: float = 15.0,
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
        self.driver = Driver(self.policy, self.forecaster, step=step, cadence=self.cadence)
        end = float(grid[-1]) + step
        every = self.cadence.decide_every
        if every <= 0:
            return grid
        return np.arange(float(grid[0]), end, every, dtype=np.float64)

    def decide(self, now: float, past: History, fleet: Fleet) -> int:
        name = self.target.name
        tick = self.driver.decide(
            now, past, {name: fleet.ordered}, self.calendar, ready={name: fleet.ready}
        )
        decision = tick.targets[name].decision
        self.driver.commit(tick, {name: decision.desired_units})
        if decision.action is not None:
            self.reasons.append((now, decision.reason))
        return decision.desired_units
