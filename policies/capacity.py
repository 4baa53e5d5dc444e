"""The capacity model: how many units a demand needs, and what units can serve.

One small pure module so the planner, the simulator (and its baselines) and the CLI
agree on the two definitions everything is measured by:

- *needed* units for demand ``d``: ``ceil(d * headroom_factor / (capacity_per_unit *
  slo.target_utilization))`` clamped to ``[min_units, max_units]`` — the target
  utilisation is the safety margin a policy provisions with;
- *underprovisioned*: ``d > ready_units * capacity_per_unit`` — capacity counts at 100 %
  utilisation, so running hot is not yet a shortfall.

A NaN demand (a gap in the data) needs ``min_units`` and is never underprovisioned.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray

IntArray = npt.NDArray[np.int64]

# Float noise (e.g. 40 / (50 * 0.8) = 1.0000000000000002) must not cost a whole unit.
_EPS = 1e-9


def _ceil(x: float) -> int:
    return math.ceil(x - _EPS)


def units_for(demand: float, target: Target, spec: PolicySpec) -> int:
    """Units that serve ``demand`` at the SLO's target utilisation with the headroom factor."""
    if math.isnan(demand):
        return target.min_units
    per_unit = target.capacity_per_unit * spec.slo.target_utilization
    raw = _ceil(max(0.0, demand) * spec.headroom_factor / per_unit)
    return min(target.max_units, max(target.min_units, raw))


def units_for_array(demand: FloatArray, target: Target, spec: PolicySpec) -> IntArray:
    """:func:`units_for` over an array (NaN -> ``min_units``)."""
    per_unit = target.capacity_per_unit * spec.slo.target_utilization
    d = np.nan_to_num(np.maximum(np.asarray(demand, dtype=np.float64), 0.0), nan=0.0)
    raw = np.ceil(d * spec.headroom_factor / per_unit - _EPS).astype(np.int64)
    return np.clip(raw, target.min_units, target.max_units)


def covering_units(demand: float, target: Target) -> int:
    """The fewest units with no shortfall at ``demand`` (100 % utilisation), unclamped."""
    if math.isnan(demand) or demand <= 0:
        return 0
    return _ceil(demand / target.capacity_per_unit)


def covering_units_array(demand: FloatArray, target: Target) -> IntArray:
    """:func:`covering_units` over an array (NaN -> 0), unclamped."""
    d = np.nan_to_num(np.maximum(np.asarray(demand, dtype=np.float64), 0.0), nan=0.0)
    return np.ceil(d / target.capacity_per_unit - _EPS).astype(np.int64)


def capacity_of(units: int | float, target: Target) -> float:
    """Demand ``units`` ready units serve before requests fall short (100 % utilisation)."""
    return float(units) * target.capacity_per_unit


def is_underprovisioned(demand: float, ready_units: int | float, target: Target) -> bool:
    """Whether ``demand`` exceeds what ``ready_units`` serve (a NaN demand never does)."""
    return not math.isnan(demand) and demand > capacity_of(ready_units, target)
