"""The level: the mean residual over a trailing window, one window per lead bucket.

The window (1 h .. 1 week) is chosen per lead-time bucket by back-testing on the history
itself (``baseline.fit_on_axis``): short windows win when traffic drifts, long ones when
it is noisy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from headroom.policies.forecast.seasonal.localtime import HOUR, BoolArray, IntArray
from headroom.policies.series import FloatArray

# Lead-time buckets: (upper bound of lead in seconds, lag in hours used to back-test them).
LEAD_BUCKETS: tuple[tuple[float, int], ...] = ((2 * HOUR, 1), (8 * HOUR, 4), (math.inf, 16))
LEVEL_WINDOWS_H: tuple[int, ...] = (1, 3, 6, 12, 24, 72, 168)
RECENCY_HALF_LIFE_H = 48.0


@dataclass(frozen=True)
class Trail:
    """What :func:`trailing_levels` derives from the hourly counts and windows alone."""

    jp1: IntArray  # j + 1
    lo: IntArray  # per window and hour: first bin of the window (cumulative index)
    den: FloatArray  # samples in the window (1 where none)
    flat: IntArray  # flat index of the last hour with samples, per window and hour
    known: BoolArray  # some hour up to here had samples

    @classmethod
    def of(cls, rn: FloatArray, windows: list[int]) -> Trail:
        cn = np.concatenate(([0.0], np.cumsum(rn)))
        j = np.arange(rn.size)
        lo = np.maximum(0, j[None, :] + 1 - np.asarray(windows)[:, None])
        cnt = cn[j + 1][None, :] - cn[lo]
        have = cnt > 0
        last = np.maximum.accumulate(np.where(have, j[None, :], -1), axis=1)
        rows = np.arange(len(windows))[:, None] * rn.size
        return cls(j + 1, lo, np.where(have, cnt, 1.0), np.maximum(last, 0) + rows, last >= 0)

    def levels(self, rs: FloatArray, fallback: float) -> FloatArray:
        cs = np.concatenate(([0.0], np.cumsum(rs)))
        level = (cs[self.jp1][None, :] - cs[self.lo]) / self.den
        filled = level.ravel()[self.flat]
        return np.asarray(np.where(self.known, filled, fallback), dtype=np.float64)


def trailing_levels(
    rs: FloatArray, rn: FloatArray, windows: list[int], fallback: float
) -> FloatArray:
    """Mean of the last ``w`` hourly bins (inclusive), one row per window ``w``.

    Empty stretches keep the last known level, so event windows and gaps do not pull it.
    """
    return Trail.of(rn, windows).levels(rs, fallback)
