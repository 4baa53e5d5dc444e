"""VictoriaMetrics as a signal source, through its Prometheus-compatible query API.

VictoriaMetrics answers ``/api/v1/query`` and ``/api/v1/query_range`` as Prometheus
does (PromQL, and its superset MetricsQL), so :class:`PrometheusSource` reads it; what
is VictoriaMetrics' own is here:

- ``url``: single-node, the server itself (``http://victoria-metrics:8428``); a cluster,
  vmselect with the tenant (``http://vmselect:8481/select/<accountID>/prometheus``).
- Every query asks for ``deny_partial_response=1``. A cluster whose vmstorage nodes do
  not all answer otherwise returns the sum over the ones that did (``isPartial``): less
  demand than there is, which a planner would read as a reason to scale in. Refused,
  the answer is an error, so the source says :class:`Unavailable` ("no data is never
  zero traffic"). A single node accepts the parameter and has nothing partial to deny.

Facts of VictoriaMetrics (1.79, Debian's ``victoria-metrics``) behind the defaults: it
hides samples newer than ``-search.latencyOffset`` (30 s) from queries, so the newest
reading is up to 30 s old; its errors carry a numeric ``errorType`` ("422"), reported
as the HTTP status only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from headroom.controller.signals.base import SignalSource
from headroom.controller.signals.prometheus import PromClient, http_url, promql_source
from headroom.controller.world import World
from headroom.policies.policy import Metrics

NAME = "victoriametrics"
_WHOLE = {"deny_partial_response": "1"}


class WholeAnswers:
    """A :class:`PromClient` that asks VictoriaMetrics for whole answers or an error."""

    def __init__(self, client: PromClient) -> None:
        self.client = client

    def custom_query(
        self, query: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        return self.client.custom_query(query, params={**(params or {}), **_WHOLE}, timeout=timeout)

    def custom_query_range(
        self,
        query: str,
        start_time: datetime,
        end_time: datetime,
        step: str,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        return self.client.custom_query_range(
            query,
            start_time,
            end_time,
            step,
            params={**(params or {}), **_WHOLE},
            timeout=timeout,
        )


def victoria_metrics(metrics: Metrics, world: World) -> SignalSource:
    """The ``victoriametrics`` row of ``signals/registry.py``: ``metrics.qps.url`` is the
    server (or vmselect's tenant URL), ``query`` PromQL/MetricsQL over the defaults."""
    source = promql_source(metrics, world, http_url(metrics, world), NAME)
    source.client = WholeAnswers(source.client)
    return source
