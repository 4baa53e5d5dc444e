"""The planner's fast paths against their plain references."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from headroom.policies.planner import _fwd_max


@pytest.mark.parametrize("width", [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 100, 257])
def test_forward_max_by_doubling_equals_the_window_maximum(width: int) -> None:
    rng = np.random.default_rng(width)
    for count in (1, 2, 5, 300):
        x = rng.integers(0, 50, count + width + 3).astype(np.int64)
        want = sliding_window_view(x[: count + width], width + 1).max(axis=1)
        got = _fwd_max(x, width, count)
        assert got.dtype == np.int64
        assert np.array_equal(got, want), (width, count)
