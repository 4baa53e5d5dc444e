"""The signal-source seam: what the forecast/plan loop reads about measured demand.

One Protocol, :class:`SignalSource`, with two questions: *what is it now*
(:meth:`~SignalSource.instant`) and *what was it* (:meth:`~SignalSource.range`).
Implementations live one per file next to this one (``prometheus.py``,
``redis_info.py``, ``csv.py``); the control loop (``headroom demo``), the operator
and ``headroom capacity learn`` call them.

"No data" is never zero traffic. A source that is down, slow or stale does not
raise out of these two methods: it *returns* :class:`Unavailable` with the reason,
so a periodic loop cannot be killed by a flaky source and cannot mistake an
outage for an idle cluster. Callers that prefer an exception (one-shot CLI
commands) pass the result through :func:`require`, which raises
:class:`~headroom.policies.errors.SourceUnavailable`. Inside a range, missing
samples are NaN (gaps), never zeros.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

from headroom.policies.errors import SourceUnavailable
from headroom.policies.series import Series


class Metric(StrEnum):
    """The signals Headroom decides from, with their units in the name."""

    QPS = "qps"  # requests (commands) per second, summed over the target
    P99_LATENCY = "p99_latency_seconds"  # 99th percentile latency over a recent window
    MEMORY = "memory_bytes"  # used memory, summed over the target
    CPU = "cpu_seconds_rate"  # CPU seconds per second, summed over the target
    KEYS = "keys"  # stored keys, summed over the target


@dataclass(frozen=True)
class Reading:
    """One measured value of ``metric`` at epoch seconds ``at`` (the source's clock)."""

    metric: Metric
    value: float
    at: float
    source: str = ""


@dataclass(frozen=True)
class Unavailable:
    """The source could not answer; ``reason`` is one line for status and logs."""

    source: str
    reason: str
    at: float

    def error(self) -> SourceUnavailable:
        return SourceUnavailable(f"{self.source}: {self.reason}")


class SignalSource(Protocol):
    """A place Headroom reads demand from. Neither method raises for an outage."""

    @property
    def name(self) -> str:
        """Stable identity for logs, status and the availability metric (``prometheus``)."""
        ...

    def instant(self, metric: Metric) -> Reading | Unavailable:
        """The current value of ``metric``, or why there is none."""
        ...

    def range(self, metric: Metric, start: float, end: float, step: float) -> Series | Unavailable:
        """Samples on the grid ``k*step`` within ``[start, end]``; NaN = gap."""
        ...


@runtime_checkable
class SamplingSource(Protocol):
    """A source that samples in the background (Redis INFO): started by
    ``build_runtime`` once it is built, stopped when the policy goes."""

    def start(self, interval: float = 1.0) -> None: ...

    def stop(self) -> None: ...


T = TypeVar("T", Reading, Series)


def require(result: T | Unavailable) -> T:
    """The reading or series, or raise :class:`SourceUnavailable` naming the source and reason."""
    if isinstance(result, Unavailable):
        raise result.error()
    return result


def grid(start: float, end: float, step: float) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
    """Epoch seconds ``k*step`` with ``start <= k*step <= end`` (Prometheus-style alignment)."""
    if not step > 0 or not math.isfinite(step):
        raise ValueError(f"step must be a positive number of seconds, got {step}")
    first = math.ceil(start / step - 1e-9) * step
    count = int(math.floor((end - first) / step + 1e-9)) + 1
    if count <= 0:
        return np.empty(0, dtype=np.float64)
    return first + step * np.arange(count, dtype=np.float64)


def resample(series: Series, start: float, end: float, step: float) -> Series:
    """Mean of the samples in each ``(g - step, g]`` bucket on :func:`grid`; empty bucket = NaN.

    Used by sources that keep raw samples (Redis INFO history, CSV files) to answer
    :meth:`SignalSource.range` on the same grid Prometheus would use.
    """
    t = grid(start, end, step)
    v = np.full(t.shape, np.nan, dtype=np.float64)
    if t.size and len(series):
        ok = ~np.isnan(series.v)
        st, sv = series.t[ok], series.v[ok]
        # Bucket i holds samples with t[i] - step < ts <= t[i].
        idx = np.searchsorted(t, st, side="left")
        inside = (idx < t.size) & (st > t[np.minimum(idx, t.size - 1)] - step)
        if np.any(inside):
            sums = np.bincount(idx[inside], weights=sv[inside], minlength=t.size)
            counts = np.bincount(idx[inside], minlength=t.size)
            filled = counts > 0
            v[filled] = sums[filled] / counts[filled]
    return Series(t, v)
