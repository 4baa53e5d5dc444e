"""A history CSV file (``timestamp,qps``, the ``simulate`` trace format) as a signal source.

The CLI and the backtest read recorded history through the same
:class:`~headroom.controller.signals.base.SignalSource` interface as live sources.
Parsing is the pure :func:`headroom.policies.trace.parse_trace_csv`; this module only
reads the file (again when it changes, at most ``max_bytes`` of it: ``controller/files.py``)
and maps metrics to columns. A missing, oversized or invalid file is reported as
:class:`Unavailable`, not raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from headroom.controller.files import TRACE_MAX_BYTES, read_bounded
from headroom.controller.signals.base import Metric, Reading, Unavailable, resample
from headroom.controller.world import World
from headroom.policies.errors import PolicyError, TraceError, field_error
from headroom.policies.policy import Metrics
from headroom.policies.series import Series
from headroom.policies.trace import parse_trace_csv


class CsvSource:
    """Serves the columns of one CSV file; by default QPS from the ``qps``/``value`` column."""

    def __init__(
        self,
        path: Path | str,
        columns: Mapping[Metric, str | None] | None = None,
        name: str = "csv",
        now: Callable[[], float] = time.time,
        *,
        max_bytes: int = TRACE_MAX_BYTES,
        quote: bool = True,
    ) -> None:
        """``max_bytes``: a bigger file is Unavailable, unread; ``quote=False``: errors
        never quote the file (the operator's, which reach a policy's status)."""
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.quote = quote
        self._columns: dict[Metric, str | None] = dict(columns or {Metric.QPS: None})
        self._name = name
        self._now = now
        self._cache: dict[Metric, tuple[float, Series]] = {}

    @property
    def name(self) -> str:
        return self._name

    def series(self, metric: Metric) -> Series | Unavailable:
        """Every sample of ``metric`` in the file, as recorded."""
        if metric not in self._columns:
            return Unavailable(
                self.name, f"{self.path.name} has no column for {metric}", self._now()
            )
        try:
            mtime = self.path.stat().st_mtime
            cached = self._cache.get(metric)
            if cached and cached[0] == mtime:
                return cached[1]
            data = read_bounded(self.path, self.max_bytes, TraceError, "trace CSV")
            parsed = parse_trace_csv(data, str(self.path), self._columns[metric], quote=self.quote)
        except OSError as err:
            return Unavailable(self.name, f"cannot read {self.path}: {err.strerror}", self._now())
        except TraceError as err:
            return Unavailable(self.name, str(err), self._now())
        self._cache[metric] = (mtime, parsed)
        return parsed

    def instant(self, metric: Metric) -> Reading | Unavailable:
        """The last non-gap sample in the file (stamped with its own time)."""
        series = self.series(metric)
        if isinstance(series, Unavailable):
            return series
        ok = np.nonzero(~np.isnan(series.v))[0]
        if not ok.size:
            return Unavailable(self.name, f"{self.path.name} holds only gaps", self._now())
        last = int(ok[-1])
        return Reading(metric, float(series.v[last]), float(series.t[last]), self.name)

    def range(self, metric: Metric, start: float, end: float, step: float) -> Series | Unavailable:
        series = self.series(metric)
        if isinstance(series, Unavailable):
            return series
        return resample(series, start, end, step)


# -- from a policy: the csv row of signals/registry.py --------------------------------------


def csv_file(metrics: Metrics, world: World) -> CsvSource:
    if not metrics.qps.url:
        raise PolicyError(
            field_error("policy", "metrics.qps.url", "is required for source csv (a file path)")
        )
    path = world.access.file(metrics.qps.url, "metrics.qps.url")
    return CsvSource(path, now=world.now, quote=world.access.quote)
