"""What the forecaster's batch path computes once for many models.

:meth:`~headroom.policies.forecast.model.HeadroomForecaster.fit_many` shares a
:class:`SharedAxes` between histories sampled at the same times (the :class:`FitAxis`
and each past event's slice of the history), and ``predict_many`` a
:class:`SharedPredict` between models predicting the same times (forecast times, zone
offsets, time indexes, the calendar's events in the horizon and their positions). The
results equal one ``fit``/``predict`` per model: the same code computes them.
"""

from __future__ import annotations

import numpy as np

from headroom.policies.calendar import Calendar, DemandEvent
from headroom.policies.forecast.seasonal.axis import FitAxis
from headroom.policies.forecast.seasonal.baseline import Baseline, TimeIndex
from headroom.policies.forecast.seasonal.localtime import utc_offsets
from headroom.policies.forecast.seasonal.profile import Stencil
from headroom.policies.forecast.uplift import EventBins, event_position, event_window
from headroom.policies.series import FloatArray


def _same_times(a: FloatArray, b: FloatArray) -> bool:
    """Whether two time arrays are equal: by identity of their memory, else by value."""
    if a.shape != b.shape:
        return False
    if a is b or (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.strides == b.strides
    ):
        return True
    return bool(np.array_equal(a, b))


class SharedAxes:
    """Per-time-axis work shared by :meth:`HeadroomForecaster.fit_many` between histories
    sampled at the same times: the :class:`FitAxis` and, per past event, the slice of the
    history it covers, its grid positions and the profile stencil there."""

    MAX_AXES = 4  # distinct time axes kept (a fleet scraped together has one)

    def __init__(self) -> None:
        self._axes: list[tuple[FloatArray, tuple[object, ...], FitAxis, dict[int, EventCut]]] = []

    def get(
        self, t: FloatArray, key: tuple[object, ...], build: FitAxis | None = None
    ) -> tuple[FitAxis | None, dict[int, EventCut]]:
        for t0, k0, axis, cuts in self._axes:
            if k0 == key and _same_times(t0, t):
                return axis, cuts
        if build is None:
            return None, {}
        cuts = {}
        self._axes.append((t, key, build, cuts))
        if len(self._axes) > self.MAX_AXES:
            self._axes.pop(0)
        return build, cuts


# Slice a:b of the history an event covers, the grid bins there, the profile stencil there.
EventCut = tuple[int, int, EventBins, Stencil]


class SharedPredict:
    """What :meth:`HeadroomForecaster.predict_many` computes once for all its models: the
    forecast times, zone offsets, per-baseline-kind :class:`TimeIndex`, the calendar's
    events in the horizon and their grid positions. Keys hold object ids: the objects
    (models' calendars and events, the time arrays) live at least as long as the call."""

    def __init__(self) -> None:
        self._times: dict[tuple[float, int, float], FloatArray] = {}
        self._offsets: dict[tuple[int, str | None], FloatArray] = {}
        self._index: dict[tuple[int, tuple[float, str | None, float, int, int]], TimeIndex] = {}
        self._events: dict[tuple[int, float, float, float], list[DemandEvent]] = {}
        self._positions: dict[tuple[int, int, float], FloatArray] = {}
        self._spans: dict[int, FloatArray] = {}

    def times(self, start: float, n: int, step: float) -> FloatArray:
        key = (start, n, step)
        hit = self._times.get(key)
        if hit is None:
            hit = self._times[key] = start + np.arange(n, dtype=np.float64) * step
        return hit

    def offsets(self, t: FloatArray, tz: str | None) -> FloatArray:
        key = (id(t), tz)
        hit = self._offsets.get(key)
        if hit is None:
            hit = self._offsets[key] = utc_offsets(t, tz)
        return hit

    def index(self, base: Baseline, t: FloatArray) -> TimeIndex:
        key = (id(t), base.index_key())
        hit = self._index.get(key)
        if hit is None:
            hit = self._index[key] = base.index(t, self.offsets(t, base.profile.tz))
        return hit

    def events(
        self, calendar: Calendar, ramp: float, start: float, end: float
    ) -> list[DemandEvent]:
        key = (id(calendar), ramp, start, end)
        hit = self._events.get(key)
        if hit is None:
            hit = self._events[key] = events_in(calendar, ramp, start, end)
        return hit

    def position(self, event: DemandEvent, t: FloatArray, ramp: float) -> FloatArray:
        key = (id(event), id(t), ramp)
        hit = self._positions.get(key)
        if hit is None:
            hit = self._positions[key] = event_position(event, t, ramp)
        return hit

    def span_times(self, event: DemandEvent) -> FloatArray:
        hit = self._spans.get(id(event))
        if hit is None:
            hit = self._spans[id(event)] = span_times(event)
        return hit


def events_in(calendar: Calendar, ramp: float, start: float, end: float) -> list[DemandEvent]:
    """Events whose window (ramp, event, tail) overlaps ``[start, end)``."""
    return [e for e in calendar.events if (w := event_window(e, ramp))[0] < end and w[1] > start]


def span_times(event: DemandEvent) -> FloatArray:
    """Eight times across the event: where its baseline demand is averaged."""
    return np.linspace(event.start, max(event.end, event.start + 1), 8)
