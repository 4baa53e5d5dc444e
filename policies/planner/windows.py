"""Freeze windows as sorted, merged intervals, and the labels events are matched against.

The combined rule (``headroom.policies.combined``) and its options
(``headroom.policies.options``) read them.
"""

from __future__ import annotations

import numpy as np

from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray

Intervals = tuple[FloatArray, FloatArray]


def _merge(pairs: list[tuple[float, float]]) -> Intervals:
    pairs.sort()
    merged: list[list[float]] = []
    for start, end in pairs:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    starts = np.array([m[0] for m in merged], dtype=np.float64)
    ends = np.array([m[1] for m in merged], dtype=np.float64)
    return starts, ends


def labels_for(spec: PolicySpec, target: Target) -> dict[str, str]:
    """The labels an event selector is matched against: the policy's, then the target's."""
    return {**spec.event_selector, **target.labels}


def freeze_windows(spec: PolicySpec) -> tuple[Intervals, tuple[str, ...]]:
    pairs = [(w.start_epoch, w.end_epoch) for w in spec.freeze_windows]
    return _merge(pairs), tuple(w.reason for w in spec.freeze_windows)


def inside(t: FloatArray, windows: Intervals) -> np.ndarray:
    starts, ends = windows
    if starts.size == 0:
        return np.zeros(t.shape, dtype=bool)
    idx = np.searchsorted(starts, t, side="right") - 1
    safe = np.maximum(idx, 0)
    return (idx >= 0) & (t < ends[safe])
