"""reactive_hpa against decisions computed by hand from the Kubernetes HPA algorithm.

Target per pod: capacity 100 QPS x target utilisation 0.5 = 50 QPS; usageRatio =
(demand / ready pods) / 50. Syncs are 15 s apart.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from headroom.policies.baselines.hpa import ReactiveHpa
from headroom.policies.simulate import fixed_delay, run_strategy
from tests.simulate.helpers import policy, trace


def hpa(min_units: int = 1, max_units: int = 100) -> ReactiveHpa:
    spec = policy(capacity=100, utilization=0.5, min_units=min_units, max_units=max_units)
    return ReactiveHpa(spec.targets[0], spec)


def test_no_change_within_the_ten_percent_tolerance() -> None:
    h = hpa()
    assert h.reconcile(0, 218.0, current=4, ready=4) == 4  # ratio 1.09
    assert hpa().reconcile(0, 222.0, current=4, ready=4) == 5  # ratio 1.11: ceil(4.44)
    assert hpa().reconcile(0, 455.0, current=10, ready=10) == 10  # ratio 0.91
    assert hpa().reconcile(0, 445.0, current=10, ready=10) == 9  # ratio 0.89: ceil(8.9)


def test_scale_up_is_limited_to_four_pods_at_small_sizes() -> None:
    h = hpa()
    # ratio 20 asks for 20 pods; max(100% of 1, 4 pods) allows 1 + 4.
    assert h.reconcile(0, 1000.0, current=1, ready=1) == 5
    # 15 s later: 4 pods pending count at 0 usage: ratio 1000/5/50 = 4 -> 20, limit 5 + 5.
    assert h.reconcile(15, 1000.0, current=5, ready=1) == 10


def test_scale_up_doubles_at_large_sizes() -> None:
    assert hpa().reconcile(0, 5000.0, current=10, ready=10) == 20  # wants 100
    assert hpa().reconcile(0, 5000.0, current=3, ready=3) == 7  # max(3 + 3, 3 + 4)


def test_scale_ups_within_one_period_share_the_limit() -> None:
    h = hpa()
    assert h.reconcile(0, 5000.0, current=10, ready=10) == 20
    # 5 s later (inside the 15 s period) the period started at 10: limit is 20 again.
    assert h.reconcile(5, 5000.0, current=20, ready=10) == 20
    assert h.reconcile(15, 5000.0, current=20, ready=10) == 40


def test_unready_pods_hold_back_a_scale_up_that_they_already_cover() -> None:
    # 2 ready pods at ratio 2.1, but with the 2 pending pods at 0 the ratio is 1.05: hold.
    assert hpa().reconcile(0, 210.0, current=4, ready=2) == 4


def test_scale_down_waits_for_the_300s_stabilisation_window() -> None:
    h = hpa()
    assert h.reconcile(0, 500.0, current=10, ready=10) == 10  # ratio 1: recommends 10
    current = 10
    for now in range(15, 300, 15):
        current = h.reconcile(now, 100.0, current=current, ready=current)  # recommends 2
        assert current == 10, now
    # The recommendation of t=0 leaves the window (it must be *after* now - 300).
    assert h.reconcile(300, 100.0, current=10, ready=10) == 2


def test_scale_down_takes_the_highest_recommendation_in_the_window() -> None:
    h = hpa()
    assert h.reconcile(0, 500.0, current=10, ready=10) == 10  # recommends 10
    assert h.reconcile(15, 300.0, current=10, ready=10) == 10  # recommends 6; window max 10
    for now in range(30, 300, 15):
        assert h.reconcile(now, 100.0, current=10, ready=10) == 10  # recommends 2
    assert h.reconcile(300, 100.0, current=10, ready=10) == 6  # 10 left; 6 (t=15) is highest
    assert h.reconcile(315, 100.0, current=6, ready=6) == 2


def test_a_fresh_hpa_has_no_window_to_wait_for() -> None:
    # As upstream: no recommendation is remembered before the first sync.
    assert hpa().reconcile(0, 300.0, current=10, ready=10) == 6


def test_bounds() -> None:
    low = hpa(min_units=3)
    assert low.reconcile(0, 0.0, current=5, ready=5) == 3  # recommends 0, floor at minReplicas
    high = hpa(max_units=10)
    assert high.reconcile(0, 5000.0, current=8, ready=8) == 10
    # A spec outside the bounds is brought inside without looking at metrics.
    assert hpa(max_units=10).reconcile(0, 0.0, current=12, ready=12) == 10
    assert hpa(min_units=3).reconcile(0, math.nan, current=1, ready=1) == 3


def test_no_metric_no_scaling() -> None:
    assert hpa().reconcile(0, math.nan, current=4, ready=4) == 4
    assert hpa().reconcile(0, 1000.0, current=4, ready=0) == 4


def test_in_the_simulator_it_syncs_every_15s_on_the_last_sample() -> None:
    spec = policy(capacity=100, utilization=0.5, min_units=1, max_units=100)
    target = spec.targets[0]
    # One minute at 50 QPS (1 pod at target), then 1000 QPS; pods are ready after 30 s.
    values = [50.0, 1000.0, 1000.0, 1000.0]
    r = run_strategy(
        trace(values),
        ReactiveHpa(target, spec),
        target=target,
        delay=fixed_delay(30),
        initial_units=1,
    )
    t0 = float(r.ordered_t[0])
    steps = [(o.t - t0, o.from_units, o.to_units) for o in r.orders]
    # The 1000 QPS sample (t0+60) is first seen by the sync at t0+75, not the one at t0+60.
    assert steps[0] == (75.0, 1, 5)
    # t0+90: 4 pods pending -> ratio 1000/5/50 = 4 -> 20, limit 10.
    assert steps[1] == (90.0, 5, 10)
    # t0+105: 5 ready, 5 pending: ratio 1000/10/50 = 2 -> 20, limit 20.
    assert steps[2] == (105.0, 10, 20)
    assert len(steps) == 3
    assert np.all(np.diff([s[0] for s in steps]) % 15 == 0)


@pytest.mark.parametrize("demand", [0.0, 49.0, 51.0, 400.0, 4000.0])
def test_recommendation_is_the_documented_formula_without_unready_pods(demand: float) -> None:
    h = hpa()
    ratio = (demand / 8) / 50
    expected = 8 if abs(1 - ratio) <= 0.1 else math.ceil(ratio * 8)
    assert h.metric_recommendation(demand, current=8, ready=8) == expected
