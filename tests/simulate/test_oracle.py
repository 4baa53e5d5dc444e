"""The oracle is the cheapest schedule without shortfall: checked by brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from headroom.policies.baselines.oracle import Oracle
from headroom.policies.baselines.static_peak import StaticPeak
from headroom.policies.capacity import units_for
from headroom.policies.policy import parse_policy
from headroom.policies.simulate import StrategyResult, fixed_delay, run_strategy, target_delay
from tests.simulate.helpers import Schedule, policy, trace


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("delay", [0.0, 60.0, 120.0])
def test_oracle_is_a_lower_bound_among_schedules_without_shortfall(seed: int, delay: float) -> None:
    rng = np.random.default_rng(seed)
    spec = policy(capacity=10, min_units=0, max_units=3)
    target = spec.targets[0]
    # The first samples need the 1 initial unit, so every delay has feasible schedules.
    values = [8.0, 8.0] + rng.integers(0, 31, size=4).astype(float).tolist()
    tr = trace(values)

    def run(strategy: Oracle | Schedule) -> StrategyResult:
        return run_strategy(tr, strategy, target=target, delay=fixed_delay(delay), initial_units=1)

    oracle = run(Oracle(tr, target, fixed_delay(delay)))
    best: float | None = None
    for units in itertools.product(range(4), repeat=len(values)):
        r = run(Schedule(units))
        if r.underprovisioned_minutes == 0 and (best is None or r.unit_hours < best):
            best = r.unit_hours
    assert best is not None
    assert oracle.underprovisioned_minutes == 0
    assert oracle.unit_hours == pytest.approx(best)


def test_where_no_schedule_avoids_shortfall_the_oracle_still_does_its_best() -> None:
    spec = policy(capacity=10, min_units=1, max_units=3)
    target = spec.targets[0]
    tr = trace([8, 25, 45, 8])  # 25 arrives before anything can be ready; 45 > max capacity
    r = run_strategy(
        tr,
        Oracle(tr, target, fixed_delay(120)),
        target=target,
        delay=fixed_delay(120),
        initial_units=1,
    )
    # 3 units ordered at t0 are ready at t0+120: [60, 120) is short (25 > 10), and so is
    # [120, 180) (45 > 30, the most maxUnits serve).
    assert r.under_seconds.tolist() == [0.0, 60.0, 60.0, 0.0]
    assert r.peak_units == 3


def test_oracle_orders_one_delay_ahead_and_scales_in_at_once() -> None:
    spec = policy(capacity=10, min_units=1, max_units=10)
    target = spec.targets[0]
    tr = trace([10, 10, 10, 50, 50, 10, 10])
    r = run_strategy(
        tr,
        Oracle(tr, target, fixed_delay(120)),
        target=target,
        delay=fixed_delay(120),
        initial_units=1,
    )
    t0 = tr.start
    assert [(o.t - t0, o.from_units, o.to_units) for o in r.orders] == [(60, 1, 5), (300, 5, 1)]
    assert r.underprovisioned_minutes == 0


def test_static_peak_is_sized_by_the_shared_rule_and_never_moves() -> None:
    spec = policy(capacity=100, utilization=0.8, max_units=50)
    target = spec.targets[0]
    tr = trace([100, 900, 250, float("nan")])
    strategy = StaticPeak(tr, target, spec)
    r = run_strategy(tr, strategy, target=target, delay=fixed_delay(600), initial_units=1)
    assert strategy.units == units_for(900, target, spec) == 12  # ceil(900 / 80)
    assert (r.actions, r.peak_units, r.underprovisioned_minutes) == (0, 12, 0)
    assert r.unit_hours == pytest.approx(12 * 4 / 60)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_with_a_reshard_sized_delay_the_oracle_has_no_shortfall(seed: int) -> None:
    """A Redis-style delay (fixed + per unit + a share of the data moved) is longer for
    bigger changes: the oracle must order early enough for the change it makes and must
    not let go of units it could not get back in time. (Before, it waited for the shortest
    delay and cancelled its own pending units: hours short on a day of traffic.)"""
    spec = parse_policy(
        {
            "targets": [
                {
                    "name": "cart",
                    "kind": "RedisCluster",
                    "capacityPerUnit": 100,
                    "minUnits": 3,
                    "maxUnits": 40,
                    "provisioning": {
                        "fixedSeconds": "2m",
                        "perUnitSeconds": "1m",
                        "dataBytes": "20Gi",
                        "reshardBytesPerSecond": "50Mi",
                    },
                }
            ]
        }
    )
    target = spec.targets[0]
    delay = target_delay(target)
    assert delay(3, 4) < delay(3, 10)  # the model really depends on the change
    rng = np.random.default_rng(seed)
    minutes = np.arange(24 * 60)
    level = 900 + 700 * np.sin(2 * np.pi * minutes / 1440) + rng.normal(0, 120, minutes.size)
    level[600:660] *= 2.0  # an hour-long surge
    tr = trace(np.maximum(level, 50.0).tolist())
    start = int(np.ceil(tr.v[:30].max() / 100))  # what the first half hour needs
    r = run_strategy(tr, Oracle(tr, target, delay), target=target, delay=delay, initial_units=start)
    peak = run_strategy(tr, Schedule([40] * len(tr)), target=target, delay=delay, initial_units=40)
    assert r.underprovisioned_minutes == 0
    assert r.unit_hours < 0.75 * peak.unit_hours
