"""The capacity model: the demand-cleaning fast path against its plain reference, and a
forecast's median."""

from __future__ import annotations

import numpy as np

from headroom.policies.capacity import _demand, median_level
from headroom.policies.forecast.base import Forecast


def test_demand_cleaning_is_nan_to_num_of_the_non_negative_part() -> None:
    cases = [
        np.array([1.0, -2.0, np.nan, np.inf, -np.inf, 0.0]),
        np.array([3.0, 4.5]),
        np.array([], dtype=np.float64),
        np.array([np.nan]),
    ]
    for x in cases:
        want = np.nan_to_num(np.maximum(x, 0.0), nan=0.0)
        got = _demand(x)
        assert got.dtype == np.float64
        assert np.array_equal(got, want)


def test_the_median_level_is_the_half_band_bracketed_or_else_the_mean() -> None:
    t = np.arange(3, dtype=np.float64) * 60.0
    mean, low, high = np.full(3, 5.0), np.full(3, 2.0), np.full(3, 10.0)
    assert np.array_equal(median_level(Forecast(t, mean, {0.5: low, 0.9: high})), low)
    assert np.allclose(median_level(Forecast(t, mean, {0.2: low, 0.8: high})), 6.0)
    assert np.array_equal(median_level(Forecast(t, mean, {0.9: high})), mean)
