"""Demand history for the control loop, read from a signal source.

:class:`SourceHistory` implements the loop's ``HistoryProvider`` over any
:class:`~headroom.controller.signals.base.SignalSource`: the operator points it at
Prometheus, the demo at Redis INFO. An optional *prior* series (a CSV export, the
weeks before the source existed) is prepended, so a new cluster still forecasts
from the shape of past weeks.

A *live* source (one sampling in the background: Redis INFO) is also asked whether it
has a value now: when its newest sample is a gap (a counter reset, a restarted or
unreachable node, stalled sampling) :meth:`SourceHistory.history` raises
:class:`~headroom.policies.errors.MetricsGap`, so the loop holds capacity exactly as
for an outage instead of deciding from the last good value.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import numpy as np

from headroom.controller.signals.base import Metric, SignalSource, Unavailable
from headroom.policies.errors import MetricsGap
from headroom.policies.series import Series


@dataclass(eq=False)
class SourceHistory:
    """``history(end)``: prior samples, then the source's samples up to ``end`` on a grid."""

    source: SignalSource
    _: KW_ONLY
    lookback: float
    step: float
    metric: Metric = Metric.QPS
    prior: Series | None = None  # samples from before the source (a CSV export), prepended
    live: bool = False  # the source samples now, so a gap in its newest sample is a gap now

    def history(self, end: float) -> Series:
        start = end - self.lookback
        prior = self.prior.between(start, end) if self.prior is not None else Series.empty()
        live_start = max(start, prior.end + self.step) if len(prior) else start
        live = self.source.range(self.metric, live_start, end, self.step)
        if isinstance(live, Unavailable):
            if len(prior) and prior.end >= end - 2 * self.step:
                return prior  # the source has nothing newer yet; the prior is still fresh
            raise live.error()
        if self.live and np.isfinite(live.v).any():
            # The grid's last good value may predate a gap: ask the source about now.
            current = self.source.instant(self.metric)
            if isinstance(current, Unavailable):
                raise MetricsGap(f"{current.source}: {current.reason} (a gap in its samples)")
        series = prior.append(live) if len(prior) else live
        # A source answers on a grid over the whole lookback, NaN before its first sample:
        # history starts at the first value (so its span is what was observed).
        finite = np.flatnonzero(np.isfinite(series.v))
        if finite.size and finite[0] > 0:
            series = Series(series.t[finite[0] :], series.v[finite[0] :])
        return series
