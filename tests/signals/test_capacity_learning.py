"""The knee estimator on synthetic latency curves with noise, thin data and no crossing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom.policies.capacity_learning import isotonic_increasing, learn_capacity

P99_OVER_MEAN = 4.6  # p99 of an exponential distribution is ~4.6 times its mean


def mm1_p99(q, capacity, service):
    return P99_OVER_MEAN * service / (1 - q / capacity)


def test_noisy_queueing_curve_crossing_is_found():
    rng = np.random.default_rng(7)
    capacity, service, slo = 10_000.0, 0.0002, 0.004
    truth = capacity * (1 - P99_OVER_MEAN * service / slo)  # where the p99 curve meets the SLO
    q = rng.uniform(0.05, 0.97, 600) * capacity
    p99 = mm1_p99(q, capacity, service) * rng.lognormal(0, 0.25, q.size)
    est = learn_capacity(q, p99, slo, declared=5_000)
    assert est.method == "crossing" and est.crossed and est.confidence == "high"
    assert est.qps_per_unit == pytest.approx(truth, rel=0.08)
    assert est.learned == est.qps_per_unit and est.declared == 5_000
    assert est.points == 600 and est.points_near > 50
    fitted = [b.p99_fitted for b in est.bins]
    assert fitted == sorted(fitted)


def test_saturation_wall_gives_the_saturated_throughput():
    """A server that stops gaining QPS while latency climbs (what redis-server does)."""
    rng = np.random.default_rng(3)
    saturation = 80_000.0
    clients = np.repeat([1, 2, 4, 8, 16, 32, 64, 128, 256], 12).astype(float)
    q = np.minimum(clients * 9_000, saturation) * rng.normal(1, 0.03, clients.size)
    p99 = np.maximum(0.0003, clients / saturation * 2.5) * rng.lognormal(0, 0.15, clients.size)
    est = learn_capacity(q, p99, slo_seconds=0.002)
    assert est.crossed and est.method == "crossing"
    assert est.qps_per_unit == pytest.approx(saturation, rel=0.10)


def closed_loop(saturation, clients, slo, rng):
    """Windows of a closed-loop sweep: QPS flat past saturation, p99 growing with clients."""
    c = np.repeat(clients, 12).astype(float)
    q = np.minimum(c * 3_000, saturation) * rng.normal(1, 0.04, c.size)
    p99 = np.maximum(0.0003, c / saturation * 2.5) * rng.lognormal(0, 0.15, c.size)
    return q, p99


def test_saturation_wall_hidden_from_the_medians_is_found():
    """Most windows at the wall meet the SLO (few client counts pushed past it): the bin
    medians never cross, the windows over the SLO at the top QPS still show the wall."""
    rng = np.random.default_rng(4)
    saturation, slo = 13_000.0, 0.010
    q, p99 = closed_loop(saturation, [1, 2, 4, 8, 16, 32, 64, 128, 256], slo, rng)
    est = learn_capacity(q, p99, slo, declared=50_000)
    assert est.method == "crossing" and est.crossed and "saturation wall" in est.reason
    assert est.qps_per_unit == pytest.approx(saturation, rel=0.05)
    assert all(b.p99_fitted <= slo for b in est.bins)  # the medians alone never crossed


def test_a_few_slow_windows_at_the_top_are_not_a_wall():
    rng = np.random.default_rng(6)
    q, p99 = closed_loop(13_000.0, [1, 2, 4, 8, 16, 32], 0.010, rng)  # p99 <= ~6 ms
    p99[np.argsort(q)[-2:]] = 0.050  # two stalls among the busiest windows
    est = learn_capacity(q, p99, 0.010)
    assert est.method == "extrapolated" and not est.crossed


def test_thin_data_falls_back_to_declared():
    est = learn_capacity([100, 200, 300], [0.001, 0.002, 0.009], 0.005, declared=1234)
    assert est.qps_per_unit == 1234 and est.method == "declared" and est.confidence == "none"
    assert "thin data" in est.reason and est.points == 3
    none = learn_capacity([100, 200, 300], [0.001, 0.002, 0.009], 0.005)
    assert none.qps_per_unit is None and none.method == "none"


def test_gaps_and_zero_traffic_are_not_evidence():
    q = [np.nan, 0.0, 10.0, np.nan] * 20
    p99 = [0.001, 0.001, np.nan, np.nan] * 20
    est = learn_capacity(q, p99, 0.005, declared=50)
    assert est.points == 0 and est.qps_per_unit == 50


def test_never_crossed_extrapolates_or_uses_declared():
    rng = np.random.default_rng(11)
    capacity, service, slo = 10_000.0, 0.0002, 0.004
    truth = capacity * (1 - P99_OVER_MEAN * service / slo)
    q = rng.uniform(0.05, 0.6, 300) * capacity  # never near the knee
    p99 = mm1_p99(q, capacity, service) * rng.lognormal(0, 0.05, q.size)
    est = learn_capacity(q, p99, slo)
    assert not est.crossed and est.method == "extrapolated" and est.confidence == "low"
    assert est.qps_per_unit is not None and est.qps_per_unit >= est.max_observed_qps
    assert est.qps_per_unit == pytest.approx(truth, rel=0.25)
    with_declared = learn_capacity(q, p99, slo, declared=4_000)
    assert with_declared.qps_per_unit == 4_000 and with_declared.learned == est.learned


def test_flat_latency_never_crossed_without_growth_falls_back():
    q = np.linspace(100, 1000, 100)
    est = learn_capacity(q, np.full(q.size, 0.001), 0.005, declared=700)
    assert est.qps_per_unit == 700 and est.method == "declared"


def test_over_slo_at_lowest_load_is_low_confidence():
    q = np.linspace(100, 1000, 100)
    est = learn_capacity(q, np.full(q.size, 0.010), 0.005)
    assert est.crossed and est.confidence == "low"
    safe = learn_capacity(q, np.full(q.size, 0.010), 0.005, declared=300)
    assert safe.qps_per_unit == 300 and safe.method == "declared" and safe.learned == est.learned


def test_estimate_json_has_no_nan():
    est = learn_capacity([1.0] * 5, [0.001] * 5, 0.005)
    doc = est.to_json()
    assert doc["method"] == "none" and doc["bins"] == []


def test_isotonic_pools_violators():
    y = np.array([1.0, 3.0, 2.0, 4.0])
    assert isotonic_increasing(y, np.ones(4)).tolist() == [1.0, 2.5, 2.5, 4.0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=1, max_size=40))
def test_isotonic_is_monotone_and_keeps_the_mean(values):
    y = np.array(values)
    fit = isotonic_increasing(y, np.ones(y.size))
    assert np.all(np.diff(fit) >= -1e-9)
    assert fit.mean() == pytest.approx(y.mean(), abs=1e-6)
