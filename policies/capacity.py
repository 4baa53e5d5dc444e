"""The capacity model: how many units a demand needs, and what units can serve.

One small pure module so the rule, the simulator (and its baselines) and the CLI
agree on the two definitions everything is measured by:

- *needed* units for demand ``d``: ``ceil(d * headroom_factor / (capacity_per_unit *
  slo.target_utilization))`` clamped to ``[min_units, max_units]`` — the target
  utilisation is the safety margin a policy provisions with;
- *underprovisioned*: ``d > ready_units * capacity_per_unit`` — capacity counts at 100 %
  utilisation, so running hot is not yet a shortfall.

The baselines (static_peak, the HPA's target, ``oracle_at_slo``) size a *known* demand with
:func:`units_for`. The rule that orders units (``headroom.policies.combined``) sizes a
forecast's median (:func:`median_level`) anchored on the measured level.

A NaN demand (a gap in the data) needs ``min_units`` and is never underprovisioned.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from headroom.policies.forecast.base import Forecast
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray

IntArray = npt.NDArray[np.int64]

# Float noise (e.g. 40 / (50 * 0.8) = 1.0000000000000002) must not cost a whole unit.
_EPS = 1e-9


def _ceil(x: float) -> int:
    return math.ceil(x - _EPS)


def _demand(x: FloatArray) -> FloatArray:
    """``np.nan_to_num(np.maximum(x, 0.0), nan=0.0)``: negative and NaN demand count as 0
    (infinite as the largest float); the common all-finite case skips nan_to_num's wrapper."""
    d = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    if not bool(np.isfinite(d).all()):
        d = np.nan_to_num(d, nan=0.0)
    return d


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
    d = _demand(demand)
    raw = np.ceil(d * spec.headroom_factor / per_unit - _EPS).astype(np.int64)
    return np.clip(raw, target.min_units, target.max_units)


def median_level(forecast: Forecast) -> FloatArray:
    """The forecast's median: the 0.5 band, interpolated if bracketed, else the mean."""
    levels = sorted(forecast.quantiles)
    if 0.5 in forecast.quantiles or (levels and levels[0] < 0.5 < levels[-1]):
        return np.asarray(forecast.level(0.5), dtype=np.float64)
    return np.asarray(forecast.mean, dtype=np.float64)


def covering_units(demand: float, target: Target) -> int:
    """The fewest units with no shortfall at ``demand`` (100 % utilisation), unclamped."""
    if math.isnan(demand) or demand <= 0:
        return 0
    return _ceil(demand / target.capacity_per_unit)


def covering_units_array(demand: FloatArray, target: Target) -> IntArray:
    """:func:`covering_units` over an array (NaN -> 0), unclamped."""
    return np.ceil(_demand(demand) / target.capacity_per_unit - _EPS).astype(np.int64)


def capacity_of(units: int | float, target: Target) -> float:
    """Demand ``units`` ready units serve before requests fall short (100 % utilisation)."""
    return float(units) * target.capacity_per_unit


def is_underprovisioned(demand: float, ready_units: int | float, target: Target) -> bool:
    """Whether ``demand`` exceeds what ``ready_units`` serve (a NaN demand never does)."""
    return not math.isnan(demand) and demand > capacity_of(ready_units, target)
