"""The planner's fast paths against their plain references."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from headroom.policies.capacity import _demand
from headroom.policies.planner.sizing import fwd_max


@pytest.mark.parametrize("width", [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 100, 257])
def test_forward_max_by_doubling_equals_the_window_maximum(width: int) -> None:
    rng = np.random.default_rng(width)
    for count in (1, 2, 5, 300):
        x = rng.integers(0, 50, count + width + 3).astype(np.int64)
        want = sliding_window_view(x[: count + width], width + 1).max(axis=1)
        got = fwd_max(x, width, count)
        assert got.dtype == np.int64
        assert np.array_equal(got, want), (width, count)


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
