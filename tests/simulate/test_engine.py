"""The replay engine's accounting on tiny traces, computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from headroom.policies.errors import TraceError
from headroom.policies.series import Series
from headroom.policies.simulate import fixed_delay, run_strategy
from tests.simulate.helpers import Schedule, policy, trace


def run(values, units, delay, initial=1, every=1, max_units=10):
    spec = policy(capacity=100, min_units=1, max_units=max_units)
    target = spec.targets[0]
    strategy = Schedule(units, every)
    result = run_strategy(
        trace(values), strategy, target=target, delay=fixed_delay(delay), initial_units=initial
    )
    return result, strategy


def test_units_are_paid_from_the_order_and_serve_after_the_delay() -> None:
    # Ordered 1 -> 3 at t0, ready at t0 + 120 s; demand 300 at [60, 120) is short by 200.
    r, _ = run([100, 300, 300, 100], [3], delay=120)
    assert r.unit_hours == pytest.approx(3 * 240 / 3600)
    assert r.ready_unit_hours == pytest.approx((1 * 120 + 3 * 120) / 3600)
    assert r.underprovisioned_minutes == pytest.approx(1.0)
    assert r.shortfall_requests == pytest.approx(200 * 60)
    assert (r.peak_units, r.actions) == (3, 1)
    assert r.under_seconds.tolist() == [0.0, 60.0, 0.0, 0.0]


def test_units_ready_mid_minute_cover_the_rest_of_it() -> None:
    r, _ = run([100, 300, 300, 100], [3], delay=90)
    assert r.underprovisioned_minutes == pytest.approx(0.5)
    assert r.shortfall_requests == pytest.approx(200 * 30)


def test_demand_equal_to_capacity_is_not_a_shortfall() -> None:
    r, _ = run([100, 100], [1, 1], delay=60)
    assert r.underprovisioned_minutes == 0 and r.shortfall_requests == 0


def test_scale_in_removes_pending_units_first() -> None:
    # 1 -> 3 at 0 (2 pending until 120), 3 -> 2 at 60 drops one pending unit: 2 ready at 120.
    r, _ = run([100, 100, 200, 200], [3, 2, 2, 2], delay=120)
    assert r.ready_at(r.ordered_t).tolist()[:1] == [1]
    assert r.ready_v.tolist() == [1, 2]
    assert r.ready_t.tolist() == [r.ordered_t[0], r.ordered_t[0] + 120]
    assert r.unit_hours == pytest.approx((3 * 60 + 2 * 180) / 3600)
    assert r.ready_unit_hours == pytest.approx((1 * 120 + 2 * 120) / 3600)
    assert r.underprovisioned_minutes == 0
    assert r.actions == 2


def test_scale_in_of_ready_units_is_immediate() -> None:
    r, _ = run([150, 150], [1], delay=600, initial=3)
    assert r.ready_v.tolist() == [1]
    assert r.underprovisioned_minutes == pytest.approx(2.0)
    assert r.shortfall_requests == pytest.approx(50 * 120)


def test_gaps_count_neither_as_shortfall_nor_as_demand() -> None:
    r, _ = run([500, math.nan, 500], [1, 1, 1], delay=60)
    assert r.underprovisioned_minutes == pytest.approx(2.0)
    assert r.shortfall_requests == pytest.approx(2 * 400 * 60)


def test_orders_are_clamped_to_the_target_bounds() -> None:
    r, _ = run([100, 100], [50, 0], delay=0, max_units=10)
    assert [(o.from_units, o.to_units) for o in r.orders] == [(1, 10), (10, 1)]
    assert r.peak_units == 10


def test_a_decision_sees_exactly_the_samples_before_it() -> None:
    _, strategy = run([1, 2, 3, 4, 5, 6], [1] * 6, delay=60)
    assert [seen for _, seen in strategy.seen] == [0, 1, 2, 3, 4, 5]
    _, sparse = run([1, 2, 3, 4, 5, 6], [1] * 3, delay=60, every=2)
    assert [seen for _, seen in sparse.seen] == [0, 2, 4]


def test_a_single_sample_cannot_be_replayed() -> None:
    with pytest.raises(TraceError, match="at least two samples"):
        run([1], [1], delay=0)


def test_missing_rows_are_gaps_not_the_last_sample_held_over_them() -> None:
    spec = policy(capacity=100, min_units=1, max_units=10)
    target = spec.targets[0]
    t = [0.0, 60.0, 120.0, 3 * 3600.0, 3 * 3600.0 + 60.0]  # three hours of rows missing
    tr = Series(1_700_000_000.0 + np.asarray(t), np.asarray([500.0, 500.0, 500.0, 500.0, 500.0]))
    r = run_strategy(tr, Schedule([1] * 5), target=target, delay=fixed_delay(60), initial_units=1)
    assert r.underprovisioned_minutes == pytest.approx(5.0)  # one minute per sample
    assert r.shortfall_requests == pytest.approx(5 * 400 * 60)
    assert r.unit_hours == pytest.approx((3 * 3600.0 + 120.0) / 3600.0)  # units are still paid


def test_jittery_sampling_is_not_a_gap() -> None:
    """Scrapes 50-70 s apart (median 60): every second is still held by a sample."""
    spec = policy(capacity=100, min_units=1, max_units=10)
    target = spec.targets[0]
    t = np.cumsum([0.0, 70.0, 50.0, 70.0, 50.0, 60.0])
    tr = Series(1_700_000_000.0 + t, np.full(t.size, 500.0))
    r = run_strategy(tr, Schedule([1] * 6), target=target, delay=fixed_delay(60), initial_units=1)
    assert r.underprovisioned_minutes == pytest.approx((t[-1] - t[0] + 60.0) / 60.0)
