"""The plan's projection (policies/projection.py) orders and holds as the rule does."""

from __future__ import annotations

import numpy as np

from headroom.policies.policy import parse_policy
from headroom.policies.projection import Positions, project

STEP = 60.0
T0 = 1_700_000_000.0
DELAY = 3600.0  # a reshard's hour


def _plan(need: np.ndarray) -> np.ndarray:
    spec = parse_policy(
        {
            "name": "p",
            "targets": [
                {
                    "name": "cache",
                    "capacityPerUnit": 100,
                    "minUnits": 3,
                    "maxUnits": 20,
                    "provisioning": {"fixedSeconds": "1h"},
                }
            ],
        }
    )
    n = need.size
    t = np.asarray(T0 + np.arange(n) * STEP, dtype=np.float64)
    median = np.asarray(need * 20.0 * spec.forecast_utilization, dtype=np.float64)
    pos = Positions(
        t, need.astype(np.int64), median, np.full(n, 1.0), np.full(n, -1, dtype=np.int64),
        (), need.astype(np.int64),
    )  # fmt: skip
    plan = project(spec, spec.targets[0], t, pos, now=T0, units=3, decided=3,
                   delay=lambda a, b: DELAY)  # fmt: skip
    return np.asarray(plan.units)


def test_a_pre_scale_ordered_a_delay_ahead_is_held_through_the_need_it_is_for() -> None:
    """A 10-minute need for 7 units two hours ahead, on a target whose change takes an hour:
    ordered an hour ahead of it and held until it has passed, not dropped in the hour
    between (as the rule holds units a coming need wants); a need over before a change
    ordered at its start could be ready is not ordered there, but that changes nothing
    for units already ordered."""
    need = np.full(240, 3)
    need[120:130] = 7
    units = _plan(need)
    assert units[:55].max() == 3  # not yet: ordered one delay (and a tick) ahead
    assert (units[61:130] == 7).all(), units[55:135].tolist()
    assert units[140:].max() == 3  # released after it (and the stabilisation window)


def test_a_need_over_before_a_change_could_be_ready_orders_nothing_from_inside_it() -> None:
    """The same short need, but already under way when the plan starts: what a change
    ordered now would be ready for is the level after it, so nothing is ordered."""
    need = np.full(240, 3)
    need[0:10] = 7
    assert _plan(need)[1:].max() == 3
