"""The signal-source registry: one row per ``metrics.qps.source`` (and
``metrics.latencyP99.source``), and the builders that turn a policy's ``metrics`` into
its :class:`~headroom.controller.signals.base.SignalSource`.

:data:`SOURCES` is the only list of sources. The policy schema's
:class:`~headroom.policies.plugins.SourceKind` (and so ``MetricQuery.source``'s pattern
and the CRD) and the table in ``docs/adding-a-source.md`` are written from it by
``make registry`` (``tests/support/registry_files.py``); a test fails while they are
stale. Adding a source is one file in ``controller/signals/`` (the class and its
builder) plus one row here (``docs/adding-a-source.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from headroom.controller.redis.connection import RedisAuth
from headroom.controller.signals.base import SamplingSource, SignalSource
from headroom.controller.signals.csv import CsvSource
from headroom.controller.signals.prometheus import http_url, promql_source
from headroom.controller.signals.redis_info import RedisInfoSource, default_connect
from headroom.controller.signals.victoriametrics import victoria_metrics
from headroom.controller.world import World
from headroom.policies.errors import PolicyError, field_error
from headroom.policies.policy import Metrics

SourceBuilder = Callable[[Metrics, World], SignalSource]


def _strip_scheme(url: str, *schemes: str) -> str:
    for scheme in schemes:
        if url.startswith(scheme):
            return url[len(scheme) :]
    return url


def _csv(metrics: Metrics, world: World) -> SignalSource:
    if not metrics.qps.url:
        raise PolicyError(
            field_error("policy", "metrics.qps.url", "is required for source csv (a file path)")
        )
    path = world.access.file(metrics.qps.url, "metrics.qps.url")
    return CsvSource(path, now=world.now, quote=world.access.quote)


def _prometheus(metrics: Metrics, world: World) -> SignalSource:
    return promql_source(metrics, world, http_url(metrics, world), "prometheus")


def _redis(metrics: Metrics, world: World) -> SignalSource:
    seed, auth = _redis_seed(metrics, world)
    return RedisInfoSource(
        seed,
        connect=default_connect(auth=auth),
        now=world.now,
        stale_after=world.stale_after,
    )


def _redis_seed(metrics: Metrics, world: World) -> tuple[str, RedisAuth | None]:
    """The Redis INFO seed and the password/TLS to read it with."""
    cluster = metrics.qps.redis_cluster
    if cluster is not None:
        if world.redis_cluster is None:
            raise PolicyError(
                field_error(
                    "policy", "metrics.qps.redisCluster", "needs the operator (a RedisCluster)"
                )
            )
        # The address is the cluster's own, never a policy's url: its password goes
        # nowhere else.
        addr, auth = world.redis_cluster(cluster)
        return str(addr), auth
    seed = metrics.qps.url or world.redis_seed
    if not seed:
        raise PolicyError(
            field_error(
                "policy", "metrics.qps.url", "is required for source redis (a seed host:port)"
            )
        )
    world.access.address(seed, "metrics.qps.url", "redis")
    return _strip_scheme(seed, "redis://"), world.redis_auth


@dataclass(frozen=True)
class SourceRow:
    """One source: how it is built from a policy's ``metrics``, and one line for the
    docs and the schema (what ``url`` and ``query`` are, which class)."""

    build: SourceBuilder
    doc: str


# One row per source, alphabetical: adding one is a file in controller/signals/ and one
# row here, then `make registry` (docs/adding-a-source.md).
SOURCES: Mapping[str, SourceRow] = {
    "csv": SourceRow(_csv, "`url`: a CSV file of `timestamp,qps` (`csv.py`)"),
    "prometheus": SourceRow(
        _prometheus, "`url`: the Prometheus base URL; `query`: PromQL (`prometheus.py`)"
    ),
    "redis": SourceRow(
        _redis, "`url`: a seed `host:port`, or `redisCluster`; sampled INFO (`redis_info.py`)"
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
