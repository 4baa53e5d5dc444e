"""The signal-source registry: one row per ``metrics.qps.source`` (and
``metrics.latencyP99.source``): the builder that turns a policy's ``metrics`` into its
:class:`~headroom.controller.signals.base.SignalSource`, and a line for the docs.

:data:`SOURCES` is the only list of sources. The policy schema's
:class:`~headroom.policies.plugins.SourceKind` (and so ``MetricQuery.source``'s pattern
and the CRD) and the table in ``docs/adding-a-source.md`` are written from it by
``make registry`` (``tests/support/registry_files.py``); a test fails while they are
stale. Adding a source is one file in ``controller/signals/`` (the class and its
builder) plus one row here (``docs/adding-a-source.md``): the rows below name each
file's builder, nothing else is written here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from headroom.controller.signals.base import SamplingSource, SignalSource
from headroom.controller.signals.csv import csv_file
from headroom.controller.signals.prometheus import prometheus_server
from headroom.controller.signals.redis_info import redis_info
from headroom.controller.signals.victoriametrics import victoria_metrics
from headroom.controller.world import World
from headroom.policies.errors import PolicyError, field_error
from headroom.policies.policy import Metrics

SourceBuilder = Callable[[Metrics, World], SignalSource]


@dataclass(frozen=True)
class SourceRow:
    """One source: how it is built from a policy's ``metrics``, and one line for the
    docs and the schema (what ``url`` and ``query`` are, which class)."""

    build: SourceBuilder
    doc: str


# One row per source, alphabetical: adding one is a file in controller/signals/ and one
# row here, then `make registry` (docs/adding-a-source.md).
SOURCES: Mapping[str, SourceRow] = {
    "csv": SourceRow(csv_file, "`url`: a CSV file of `timestamp,qps` (`csv.py`)"),
    "prometheus": SourceRow(
        prometheus_server, "`url`: the Prometheus base URL; `query`: PromQL (`prometheus.py`)"
    ),
    "redis": SourceRow(
        redis_info, "`url`: a seed `host:port`, or `redisCluster`; sampled INFO (`redis_info.py`)"
    ),
    "victoriametrics": SourceRow(
        victoria_metrics,
        "`url`: the server, or vmselect's `…/select/<tenant>/prometheus`; `query`: PromQL "
        "(`victoriametrics.py`)",
    ),
}


def build_source(metrics: Metrics, world: World) -> SignalSource:
    """The demand source of a policy's ``metrics`` (QPS, and p99 where the source has it)."""
    row = SOURCES.get(metrics.qps.source)
    if row is None:
        raise PolicyError(
            field_error("policy", "metrics.qps.source", f"unknown source {metrics.qps.source!r}")
        )
    return row.build(metrics, world)


def start_sampling(source: SignalSource, interval: float) -> bool:
    """Start a source that samples in the background (a :class:`SamplingSource`, e.g.
    Redis INFO); others need nothing. True when it samples (then a gap in its newest
    sample is a gap now)."""
    if isinstance(source, SamplingSource):
        source.start(interval=interval)
        return True
    return False


def stop_sampling(source: SignalSource) -> None:
    if isinstance(source, SamplingSource):
        source.stop()
