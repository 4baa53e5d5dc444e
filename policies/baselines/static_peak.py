"""``static_peak``: a constant fleet sized for the trace's peak, the over-provisioning baseline.

Defined by the whole trace (its peak), so it is built from the trace on purpose. It
applies the same sizing rule as every strategy, :func:`headroom.policies.capacity.units_for`
of the peak demand, and is ready at the start of the replay: it pays no provisioning
delay, because a static fleet would have been running long before.
"""

from __future__ import annotations

import numpy as np

from headroom.policies.capacity import units_for
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray, Series
from headroom.policies.simulate import Fleet, History


class StaticPeak:
    """Always ``units_for(max demand)`` units."""

    name = "static_peak"

    def __init__(self, trace: Series, target: Target, spec: PolicySpec) -> None:
        values = trace.v[~np.isnan(trace.v)]
        peak = float(values.max()) if values.size else 0.0
        self.units = units_for(peak, target, spec)

    def initial_units(self, default: int) -> int:
        return self.units

    def decision_times(self, grid: FloatArray) -> FloatArray:
        return grid[:1]

    def decide(self, now: float, past: History, fleet: Fleet) -> int:
        return self.units
