"""The ranges every number a user gives must lie in: one place, used by the policy and
calendar models (and so the CRD schemas generated from them) and by the CLI's options.

A number outside its range is a one-line error naming the field, before anything runs:
``1e400`` (infinity), NaN, ``maxUnits: 1e23`` or ``--horizon 99999999999d`` used to
reach NumPy or the planner and crash there, or silently plan nothing.

=====================================  ======================================
what                                   range
=====================================  ======================================
durations (history, delays, windows)   0 .. 400 days
forecast horizon (policy, --horizon)   > 0 .. 31 days
provisioning delay (fixed, computed)   0 .. 1 day (per unit: 1 hour)
units (min/max/step, --current-units)  0 .. 100,000
QPS (capacityPerUnit, peakQps)         > 0 .. 1e12
multipliers (events, surges, factors)  > 0 .. 1,000
times (events, traces)                 1970-01-01 .. 9999-12-31 (UTC)
=====================================  ======================================
"""

from __future__ import annotations

DAY = 86400.0
MAX_DURATION = 400 * DAY
MAX_DURATION_TEXT = "400d"
MAX_HORIZON = 31 * DAY
MAX_PROVISIONING = DAY  # a delay past a day is no plan (400d ran simulate for >5 min)
MAX_UNITS = 100_000
MAX_QPS = 1e12
MAX_MULTIPLIER = 1000.0
MAX_BYTES = 1e15  # a petabyte: data sizes and migration rates
EARLIEST = 0.0  # 1970-01-01T00:00:00Z
LATEST = 253402300799.0  # 9999-12-31T23:59:59Z: beyond it no calendar date exists
