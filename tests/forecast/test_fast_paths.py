"""The forecaster's fast paths against the plain computations they replace."""

from __future__ import annotations

import numpy as np

from headroom.policies.calendar import Calendar
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.forecast.seasonal.numerics import block_log_means, fast_mean, fast_var
from headroom.policies.series import Series
from headroom.policies.synthetic import generate_trace
from tests.forecast.conftest import DAY, START


def test_block_log_means_equal_the_mean_of_logs_within_rounding() -> None:
    rng = np.random.default_rng(1)
    for k in (1, 2, 7, 8, 9, 10, 16, 17, 32):
        v = rng.lognormal(5, 2, size=(400, k))
        got = block_log_means(v, 3.0)
        assert got is not None
        want = np.log(v + 3.0).mean(axis=1)
        assert np.allclose(got, want, rtol=1e-13, atol=1e-13)


def test_block_log_means_give_way_when_a_product_leaves_the_float_range() -> None:
    huge = np.full((5, 10), 1e60)
    assert block_log_means(huge, 1.0) is None  # 8 factors of 1e60 would overflow
    tiny = np.full((5, 10), 1e-200)
    assert block_log_means(tiny, 0.0) is None  # ... or underflow to 0


def test_mean_and_var_are_numpys_to_the_bit() -> None:
    rng = np.random.default_rng(2)
    for n in (1, 5, 96, 672, 2048, 4097):
        a = rng.normal(size=n) * rng.uniform(0.01, 100)
        assert fast_mean(a) == float(np.mean(a))
        assert fast_var(a) == float(np.var(a))


def test_a_history_of_huge_values_fits_like_a_scaled_one() -> None:
    """Values beyond the products' range take the one-log-per-sample path, same model."""
    trace = generate_trace(START, 14, 60, 1000, noise=0.05, seed=3)
    now = START + 14 * DAY
    small = HeadroomForecaster().fit(trace, Calendar()).predict(now, DAY, 300)
    huge = HeadroomForecaster().fit(Series(trace.t, trace.v * 1e40), Calendar())
    big = huge.predict(now, DAY, 300)
    assert np.allclose(big.level(0.5) / 1e40, small.level(0.5), rtol=1e-9)
    assert np.allclose(big.level(0.99) / 1e40, small.level(0.99), rtol=1e-9)
