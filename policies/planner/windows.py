"""Calendar and freeze windows as sorted, merged intervals (cached: ``decide`` is hot).

The planner blocks scale-in inside them (``sizing.build``); the combined rule
(``headroom.policies.combined``) reads the same windows.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from headroom.policies.calendar import Calendar
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray

Intervals = tuple[FloatArray, FloatArray]
_CACHE_SIZE = 32
_event_cache: OrderedDict[
    tuple[int, tuple[tuple[str, str], ...], float, float, float | None],
    tuple[object, Intervals, str],
]
_event_cache = OrderedDict()


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


def event_windows(
    calendar: Calendar,
    labels: dict[str, str],
    cooldown: float,
    before: float = 0.0,
    settle: float | None = None,
) -> tuple[Intervals, str]:
    """``[window_start - before, end + cooldown)`` of every event applying to ``labels``,
    merged, and the zone those events are written in (reasons show local times).

    ``before`` is the longest lead: from the moment the pre-scale for an event may be
    ordered, scaling in would only undo it (and a reshard cannot be undone cheaply).
    ``settle`` (``scaleIn.duringEvents: nowcast``): the block ends ``settle`` after the
    event's start instead, once the nowcast has measured the event."""
    key = (id(calendar), tuple(sorted(labels.items())), cooldown, before, settle)
    hit = _event_cache.get(key)
    # The cache holds the calendar itself, so its id cannot be reused while cached.
    if hit is not None and hit[0] is calendar:
        _event_cache.move_to_end(key)
        return hit[1], hit[2]
    applying = [e for e in calendar.events if e.applies_to(labels)]
    if settle is None:
        pairs = [(e.window_start - before, e.end + cooldown) for e in applying]
    else:
        pairs = [(e.window_start - before, min(e.start + settle, e.end)) for e in applying]
    value = _merge(pairs)
    tz = applying[0].tz if applying else "UTC"
    _event_cache[key] = (calendar, value, tz)
    if len(_event_cache) > _CACHE_SIZE:
        _event_cache.popitem(last=False)
    return value, tz


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
