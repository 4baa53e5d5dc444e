"""The forecaster interface (statsforecast-style ``fit`` / ``predict``) and its result.

The planner, the simulator, ``headroom forecast`` and the control loop only see
:class:`Forecaster` and :class:`Forecast`. A forecast made at time ``t`` must use
only history before ``t`` plus the calendar (which is known ahead).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, Self

import numpy as np

from headroom.policies.calendar import Calendar, DemandEvent
from headroom.policies.series import FloatArray, Series


@dataclass(frozen=True)
class Forecast:
    """Demand forecast on times ``t``: the mean and quantile bands (e.g. 0.5, 0.9, 0.99)."""

    t: FloatArray
    mean: FloatArray
    quantiles: Mapping[float, FloatArray]
    # Per time step, the event (if any) that drives the uplift there: for plan reasons.
    drivers: tuple[DemandEvent | None, ...] = field(default=())
    # The median without any event uplift (None if the model has no such notion): charts.
    baseline: FloatArray | None = None
    # The median with each event's uplift as learned, not rescaled by what an event under
    # way has shown so far (None: the median): what the rule moves a measured level by.
    # The measured level already says how big this event is; the rescaled shape would
    # say it twice (a log-uplift scaled by r is the multiplier to the power r).
    shape: FloatArray | None = None

    def level(self, q: float) -> FloatArray:
        """The band for quantile ``q``, interpolated between stored levels."""
        if q in self.quantiles:
            return self.quantiles[q]
        levels = sorted(self.quantiles)
        if not levels:
            return self.mean
        if q <= levels[0]:
            return self.quantiles[levels[0]]
        if q >= levels[-1]:
            return self.quantiles[levels[-1]]
        hi = next(i for i, lv in enumerate(levels) if lv > q)
        lo_q, hi_q = levels[hi - 1], levels[hi]
        w = (q - lo_q) / (hi_q - lo_q)
        return np.asarray(
            (1 - w) * self.quantiles[lo_q] + w * self.quantiles[hi_q], dtype=np.float64
        )

    def driver_at(self, index: int) -> DemandEvent | None:
        return self.drivers[index] if index < len(self.drivers) else None


class Forecaster(Protocol):
    """Learns from history (before ``now``) and the calendar, predicts ahead."""

    def fit(self, history: Series, calendar: Calendar) -> Self:
        """Learn the baseline shape and event uplifts from ``history``."""
        ...

    def predict(
        self, start: float, horizon: float, step: float, levels: Sequence[float] = (0.5, 0.9, 0.99)
    ) -> Forecast:
        """Forecast ``[start, start + horizon)`` every ``step`` seconds at quantile ``levels``."""
        ...
