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

from dataclasses import replace

from headroom.controller.signals.base import SignalSource
from headroom.controller.signals.prometheus import http_url, promql_source
from headroom.controller.world import World
from headroom.policies.policy import Metrics

NAME = "victoriametrics"
WHOLE_ANSWERS = {"deny_partial_response": "1"}  # whole answers, or an error


def victoria_metrics(metrics: Metrics, world: World) -> SignalSource:
    """The ``victoriametrics`` row of ``signals/registry.py``: ``metrics.qps.url`` is the
    server (or vmselect's tenant URL), ``query`` PromQL/MetricsQL over the defaults."""
    source = promql_source(metrics, world, http_url(metrics, world), NAME)
    return replace(source, params=WHOLE_ANSWERS)
