"""What is measured now, for the rule: a robust recent level and the baseline ratios."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from headroom.policies.series import FloatArray


@dataclass(frozen=True)
class Anchor:
    """What is measured now: a robust recent mean and the time it stands for."""

    value: float
    at: float


def anchor_of(t: FloatArray, v: FloatArray) -> Anchor | None:
    """The median of the finite samples given (the last ``ANCHOR_WINDOW``), at their
    median time: one outlier does not move it, a step is followed within half the window."""
    pairs = sorted((x, y) for x, y in zip(v.tolist(), t.tolist(), strict=True) if x == x)
    if not pairs:
        return None
    n = len(pairs)
    times = sorted(y for _, y in pairs)
    if n % 2:
        return Anchor(pairs[n // 2][0], times[n // 2])
    mid = n // 2
    return Anchor(0.5 * (pairs[mid - 1][0] + pairs[mid][0]), 0.5 * (times[mid - 1] + times[mid]))


def baseline_ratio(
    t: FloatArray, baseline: FloatArray | None, at: float, start: float | None = None
) -> float:
    """A forecast's baseline (no events) at ``at`` over at ``start`` (default: its first
    position), on its times ``t``; 1 without a baseline."""
    if baseline is None or not baseline.size:
        return 1.0
    y = _reference(t, baseline, start)
    if not (y > 0 and math.isfinite(y)):
        return 1.0
    x = _reference(t, baseline, at)  # one time: the arithmetic below without its arrays
    return x / y if x > 0 and math.isfinite(x) else 1.0


def _reference(t: FloatArray, baseline: FloatArray, at: float | None) -> float:
    """The baseline at the position holding ``at`` (its first position for None)."""
    last = baseline.size - 1
    j = 0 if at is None else min(max(0, int(t.searchsorted(at, side="right")) - 1), last)
    return float(baseline[j])


def baseline_ratios(
    t: FloatArray, baseline: FloatArray | None, at: FloatArray, start: float | None = None
) -> FloatArray:
    """:func:`baseline_ratio` at each of the times ``at``: 1 where either side is not a
    positive number."""
    if baseline is None or not baseline.size:
        return np.ones(at.size, dtype=np.float64)
    idx = np.minimum(np.maximum(t.searchsorted(at, side="right") - 1, 0), baseline.size - 1)
    x = baseline[idx]
    y = _reference(t, baseline, start)
    if not (y > 0 and math.isfinite(y)):
        return np.ones(at.size, dtype=np.float64)
    ok = (x > 0) & np.isfinite(x)
    return np.where(ok, x / y, 1.0)


def burst_share(v: FloatArray, tolerance: float) -> float:
    """The share of the samples ``v`` (in time order, NaN = gap) more than ``tolerance``
    above the median of their two neighbours on each side: how often demand jumps past
    the HPA's tolerance for a moment and comes back. 0 with fewer than 5 samples."""
    if v.size < 5:
        return 0.0
    mid = v[2:-2]
    four = np.sort(np.stack((v[:-4], v[1:-3], v[3:-1], v[4:])), axis=0)
    around = 0.5 * (four[1] + four[2])  # their median
    ok = np.isfinite(mid) & np.isfinite(four[3]) & (around > 0)  # NaN sorts last
    if not ok.any():
        return 0.0
    return float(np.mean(mid[ok] > (1.0 + tolerance) * around[ok]))
