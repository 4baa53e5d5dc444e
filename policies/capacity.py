"""The capacity model: how many units a demand needs, and what units can serve.

One small pure module so the planner, the simulator (and its baselines) and the CLI
agree on the two definitions everything is measured by:

- *needed* units for demand ``d``: ``ceil(d * headroom_factor / (capacity_per_unit *
  slo.target_utilization))`` clamped to ``[min_units, max_units]`` — the target
  utilisation is the safety margin a policy provisions with;
- *underprovisioned*: ``d > ready_units * capacity_per_unit`` — capacity counts at 100 %
  utilisation, so running hot is not yet a shortfall.

The baselines (static_peak, the HPA's target, ``oracle_at_slo``) size a *known* demand with
:func:`units_for`. The planner sizes an *uncertain* one, a forecast with a median and an
upper quantile, with :func:`planned_units_array`::

    planned = max(units_for(p50), ceil(p_q * headroom_factor / capacity_per_unit))

Two margins, each applied once: the SLO's target utilisation is the latency margin for the
demand we *expect* (the median runs at or below target utilisation), and the policy's
forecast quantile ``q`` covers the *uncertainty* (demand up to ``p_q`` is served without
shortfall, possibly hotter than the target for those minutes). Applying the utilisation
margin to ``p_q`` as well would pay for both at once: at a 0.8 target and a p99 forecast,
25 % over p99, more than a perfect-foresight schedule at the target utilisation.

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


def planned_units_array(
    median: FloatArray, upper: FloatArray, target: Target, spec: PolicySpec
) -> IntArray:
    """Units the planner provisions for a forecast (see the module docstring), clamped.

    ``median``: the p50 forecast (sized at the SLO's target utilisation); ``upper``: the
    policy-quantile forecast (sized at 100 % utilisation). NaN in both -> ``min_units``.
    """
    return np.clip(
        planned_units_raw(median, upper, target, spec), target.min_units, target.max_units
    )


def planned_units_raw(
    median: FloatArray, upper: FloatArray, target: Target, spec: PolicySpec
) -> IntArray:
    """:func:`planned_units_array` before clamping to the bounds (to report capping)."""
    cap = target.capacity_per_unit
    hf = spec.headroom_factor
    m = _demand(median)
    u = _demand(upper)
    at_slo = np.ceil(m * hf / (cap * spec.slo.target_utilization) - _EPS)
    at_full = np.ceil(u * hf / cap - _EPS)
    return np.maximum(at_slo, at_full).astype(np.int64)


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
