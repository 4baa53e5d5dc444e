"""What is measured now, for the rule: a robust recent level and a measured growth rate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from headroom.policies.series import FloatArray

TREND_WINDOW = 600.0  # inside an event's window, the growth measured over this long ...
TREND_REACH = 1200.0  # ... is carried at most this far ahead (and never beyond the lead)
TREND_CAP = 3.0  # ... and lifts the measured level at most this many times


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


def growth_of(t: FloatArray, v: FloatArray) -> float:
    """The measured growth rate (log per second) of the samples given, at its lower
    one-standard-error bound and never below 0: a rise the noise could explain counts for
    nothing, a steady one almost in full."""
    ok = np.isfinite(v) & (v > 0)
    if int(ok.sum()) < 4:
        return 0.0
    x, y = t[ok], np.log(v[ok])
    x = x - x.mean()
    sxx = float(np.dot(x, x))
    if sxx <= 0:
        return 0.0
    slope = float(np.dot(x, y - y.mean())) / sxx
    resid = y - y.mean() - slope * x
    se = math.sqrt(float(np.dot(resid, resid)) / (x.size - 2) / sxx)
    return max(0.0, slope - se)


def carry_growth(anchor: Anchor, rate: float, tw: FloatArray, med: FloatArray) -> None:
    """Carry the measured level forward at ``rate`` (log per second) over the positions
    ``tw``, at most ``TREND_REACH`` ahead and ``TREND_CAP`` times, raising ``med`` in
    place: inside an event's window, an audience gathering before a start or growing to a
    peak the learned shape cannot place, sized as the forecast is (the reactive half keeps
    its margin on what is measured; sized at the reactive target instead, it bought the
    noise of 5-10 %-noisy traces at twice the HPA's minutes at its bill, bench/foresight.py)."""
    if rate <= 0.0:
        return
    ahead = np.minimum(np.maximum(tw - anchor.at, 0.0), TREND_REACH)
    lifted = anchor.value * np.minimum(np.exp(rate * ahead), TREND_CAP)
    np.maximum(med, lifted, out=med, where=~np.isnan(med))


def baseline_ratio(
    t: FloatArray, baseline: FloatArray | None, at: float, start: float | None = None
) -> float:
    """A forecast's baseline (no events) at ``at`` over at ``start`` (default: its first
    position), on its times ``t``; 1 without a baseline."""
    return float(baseline_ratios(t, baseline, np.array([at], dtype=np.float64), start)[0])


def baseline_ratios(
    t: FloatArray, baseline: FloatArray | None, at: FloatArray, start: float | None = None
) -> FloatArray:
    """:func:`baseline_ratio` at each of the times ``at``: 1 where either side is not a
    positive number."""
    if baseline is None or not baseline.size:
        return np.ones(at.size, dtype=np.float64)
    last = baseline.size - 1
    idx = np.clip(np.searchsorted(t, at, side="right") - 1, 0, last)
    x = baseline[idx]
    j = 0 if start is None else min(max(0, int(np.searchsorted(t, start, side="right")) - 1), last)
    y = float(baseline[j])
    if not (y > 0 and math.isfinite(y)):
        return np.ones(at.size, dtype=np.float64)
    ok = (x > 0) & np.isfinite(x)
    return np.where(ok, x / y, 1.0)
