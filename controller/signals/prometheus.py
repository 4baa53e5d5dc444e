"""Prometheus as a signal source, through prometheus-api-client's ``PrometheusConnect``.

The operator and ``headroom capacity learn --prometheus`` read QPS, p99 latency,
memory, CPU and keys with PromQL. :data:`REDIS_EXPORTER` and :data:`HTTP_SERVER`
are default query sets; a policy overrides any query. Query templates may use two
tokens (``$`` never occurs in PromQL): ``$window`` (the rate window, e.g. ``1m``)
and ``$by`` (grouping labels: empty for the target's total, ``instance`` for one
series per unit), e.g. ``sum by ($by) (rate(x_total[$window]))``.

Range queries are cut into chunks below Prometheus' 11,000-points-per-series limit,
aligned to the step (``k*step``), and placed on one grid: a step Prometheus has no
value for stays NaN. A Prometheus that is down, slow (``timeout`` is the budget for
the whole call, retries included) or returns no series is answered with
:class:`Unavailable` and its reason; nothing escapes as an exception.

Facts about Debian's ``prometheus-redis-exporter`` 1.45 behind the defaults: no
instantaneous-ops metric (rate ``redis_commands_processed_total``), and
``redis_latency_percentiles_usec`` is a summary accumulated since server start,
not a window. The Redis default p99 is therefore the worst data command's p99
since start; for a windowed latency (which the capacity learner needs), override
it with a client-side histogram or use the Redis INFO source's probe latency.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.adapters import Retry
from tenacity import RetryError, Retrying, stop_after_attempt, stop_after_delay, wait_fixed

from headroom.controller.signals.base import Metric, Reading, Unavailable, grid
from headroom.controller.world import World
from headroom.policies.errors import PolicyError, field_error
from headroom.policies.policy import Metrics
from headroom.policies.series import Series, to_datetime

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 32 * 1024 * 1024  # an answer past this is refused unread (10k points ~1 MB)
MAX_POINTS = 11_000  # Prometheus refuses range queries with more points per series
CHUNK_POINTS = 10_000

# Data commands only: the exporter's and operators' own INFO/CONFIG/CLUSTER calls are slow
# and rare, and would dominate a max() over commands.
_REDIS_DATA_CMD = 'cmd!~"info|ping|config.*|cluster.*|client.*|slowlog.*|latency.*|command.*|hello"'


@dataclass(frozen=True)
class QuerySet:
    """PromQL templates per metric; see the module docstring for ``$window`` and ``$by``."""

    queries: Mapping[Metric, str]
    window: str = "1m"
    unit_label: str = "instance"

    def render(self, metric: Metric, per_unit: bool = False) -> str | None:
        template = self.queries.get(metric)
        if template is None:
            return None
        by = self.unit_label if per_unit else ""
        return template.replace("$window", self.window).replace("$by", by)

    def override(self, queries: Mapping[Metric, str] | None = None, **kw: Any) -> QuerySet:
        """These defaults with some queries (or the window / unit label) replaced."""
        merged = {**self.queries, **(queries or {})}
        return replace(self, queries=merged, **kw)


REDIS_EXPORTER = QuerySet(
    {
        Metric.QPS: "sum by ($by) (rate(redis_commands_processed_total[$window]))",
        Metric.P99_LATENCY: (
            f'max by ($by) (redis_latency_percentiles_usec{{quantile="99",{_REDIS_DATA_CMD}}})'
            " / 1e6"
        ),
        Metric.MEMORY: "sum by ($by) (redis_memory_used_bytes)",
        Metric.CPU: (
            "sum by ($by) (rate(redis_cpu_sys_seconds_total[$window])"
            " + rate(redis_cpu_user_seconds_total[$window]))"
        ),
        Metric.KEYS: "sum by ($by) (redis_db_keys)",
    }
)

HTTP_SERVER = QuerySet(
    {
        Metric.QPS: "sum by ($by) (rate(http_requests_total[$window]))",
        Metric.P99_LATENCY: (
            "histogram_quantile(0.99, sum by (le, $by) "
            "(rate(http_request_duration_seconds_bucket[$window])))"
        ),
        Metric.MEMORY: "sum by ($by) (process_resident_memory_bytes)",
        Metric.CPU: "sum by ($by) (rate(process_cpu_seconds_total[$window]))",
    },
    window="5m",
)

PRESETS: Mapping[str, QuerySet] = {"redis": REDIS_EXPORTER, "http": HTTP_SERVER}


class PromClient(Protocol):
    """The two calls of ``PrometheusConnect`` this source uses (pass the network in)."""

    def custom_query(
        self, query: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any: ...

    def custom_query_range(
        self,
        query: str,
        start_time: datetime,
        end_time: datetime,
        step: str,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any: ...


class _QueryFailed(Exception):
    """Internal: one attempt failed; the message becomes the Unavailable reason."""


@dataclass
class PrometheusSource:
    """Instant and range PromQL over one Prometheus; never raises for an outage."""

    client: PromClient
    queries: QuerySet = REDIS_EXPORTER
    timeout: float = 5.0
    attempts: int = 2
    chunk_points: int = CHUNK_POINTS
    name: str = "prometheus"
    now: Callable[[], float] = field(default=time.time)
    # sent with every query: what an API compatible with Prometheus' takes besides
    # (VictoriaMetrics' deny_partial_response)
    params: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def connect(cls, url: str, **kw: Any) -> PrometheusSource:
        """A source on ``url``; retries are this class's (tenacity), not urllib3's."""
        session = requests.Session()
        session.hooks["response"].append(_bounded_answer)
        client = PrometheusConnect(
            url=url.rstrip("/"), retry=Retry(total=0), disable_ssl=False, session=session
        )
        return cls(client=client, **kw)

    # -- the SignalSource interface -----------------------------------------------------

    def instant(self, metric: Metric) -> Reading | Unavailable:
        promql = self.queries.render(metric)
        if promql is None:
            return Unavailable(self.name, f"no query configured for {metric}", self.now())
        result = self.query(promql)
        if isinstance(result, Unavailable):
            return result
        values = [v for v in result.values() if not math.isnan(v[1])]
        if not values:
            return Unavailable(self.name, f"no series (no data or stale) for {promql}", self.now())
        at = max(t for t, _ in values)
        return Reading(metric, math.fsum(v for _, v in values), at, self.name)

    def range(self, metric: Metric, start: float, end: float, step: float) -> Series | Unavailable:
        promql = self.queries.render(metric)
        if promql is None:
            return Unavailable(self.name, f"no query configured for {metric}", self.now())
        result = self.query_range(promql, start, end, step)
        if isinstance(result, Unavailable):
            return result
        if not result:
            return Unavailable(self.name, f"no series (no data) for {promql}", self.now())
        if len(result) == 1:
            return next(iter(result.values()))
        # Several series for a total query: sum where all are present, else a gap.
        stacked = np.vstack([s.v for s in result.values()])
        return Series(next(iter(result.values())).t, stacked.sum(axis=0))

    # -- per unit and raw PromQL --------------------------------------------------------

    def range_per_unit(
        self, metric: Metric, start: float, end: float, step: float
    ) -> dict[str, Series] | Unavailable:
        """One series per unit (value of ``queries.unit_label``), same grid for all."""
        promql = self.queries.render(metric, per_unit=True)
        if promql is None:
            return Unavailable(self.name, f"no query configured for {metric}", self.now())
        result = self.query_range(promql, start, end, step)
        if isinstance(result, Unavailable):
            return result
        label = self.queries.unit_label
        return {dict(k).get(label, ""): s for k, s in result.items()}

    def query(
        self, promql: str
    ) -> dict[tuple[tuple[str, str], ...], tuple[float, float]] | Unavailable:
        """Instant query: labels -> (sample time, value)."""
        try:
            raw = self._call(
                lambda timeout: self.client.custom_query(
                    promql, params=dict(self.params) or None, timeout=timeout
                )
            )
        except _QueryFailed as err:
            return Unavailable(self.name, str(err), self.now())
        out: dict[tuple[tuple[str, str], ...], tuple[float, float]] = {}
        for item in raw:
            labels = tuple(sorted(item.get("metric", {}).items()))
            t, v = item["value"]
            out[labels] = (float(t), float(v))
        return out

    def query_range(
        self, promql: str, start: float, end: float, step: float
    ) -> dict[tuple[tuple[str, str], ...], Series] | Unavailable:
        """Range query on the grid ``k*step`` in ``[start, end]``, chunked; NaN where absent."""
        if step < 1 or step != int(step):
            # PrometheusConnect rounds start/end to whole seconds; keep the grid exact.
            return Unavailable(self.name, f"step must be whole seconds, got {step}", self.now())
        t = grid(start, end, step)
        if not t.size:
            return {}
        out: dict[tuple[tuple[str, str], ...], np.ndarray[Any, np.dtype[np.float64]]] = {}
        size = max(1, min(self.chunk_points, MAX_POINTS))
        for lo in range(0, int(t.size), size):
            c0, c1 = float(t[lo]), float(t[min(lo + size, t.size) - 1])
            chunk = functools.partial(
                self.client.custom_query_range,
                promql,
                to_datetime(c0),
                to_datetime(c1),
                f"{int(step)}s",
                params=dict(self.params) or None,
            )
            try:
                raw = self._call(lambda timeout: chunk(timeout=timeout))  # noqa: B023
            except _QueryFailed as err:
                return Unavailable(self.name, str(err), self.now())
            for item in raw:
                labels = tuple(sorted(item.get("metric", {}).items()))
                v = out.setdefault(labels, np.full(t.shape, np.nan, dtype=np.float64))
                for ts, val in item.get("values", []):
                    i = int(round((float(ts) - float(t[0])) / step))
                    if 0 <= i < t.size:
                        v[i] = float(val)
        return {k: Series(t, v) for k, v in out.items()}

    def _call(self, fn: Callable[[float], Any]) -> Any:
        """Run ``fn(timeout)`` with bounded retries inside the ``timeout`` budget."""
        deadline = time.monotonic() + self.timeout
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.timeout),
            wait=wait_fixed(0.2),
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0.05:
                        raise _QueryFailed(f"timed out after {self.timeout:.1f}s")
                    try:
                        return fn(remaining)
                    except requests.Timeout as err:
                        raise _QueryFailed(f"timed out after {self.timeout:.1f}s") from err
                    except requests.ConnectionError as err:
                        raise _QueryFailed(f"cannot connect: {_root(err)}") from err
                    except PrometheusApiClientException as err:
                        raise _QueryFailed(f"query refused: {_refusal(err)}") from err
                    except (ValueError, KeyError) as err:
                        raise _QueryFailed(f"unreadable answer: {err}") from err
        except RetryError as err:
            last = err.last_attempt.exception()
            raise _QueryFailed(str(last) if last else "failed") from last
        raise _QueryFailed("no attempt made")


def _bounded_answer(response: requests.Response, *_: Any, **__: Any) -> requests.Response:
    """A session hook: refuse a redirect (a policy's Prometheus must not send the operator
    elsewhere) and read at most :data:`MAX_ANSWER_BYTES` of an answer, decoded."""
    if 300 <= response.status_code < 400:
        response.close()
        raise ValueError(f"answered a redirect (HTTP {response.status_code}), not followed")
    data = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
    response.close()
    if len(data) > MAX_ANSWER_BYTES:
        raise ValueError(f"the answer is over {MAX_ANSWER_BYTES // (1024 * 1024)} MiB")
    response._content = data
    setattr(response, "_content_consumed", True)  # noqa: B010 - requests has no public way
    return response


def _refusal(err: PrometheusApiClientException) -> str:
    """Why Prometheus refused, without quoting the answer's body (which a URL pointed at
    another service would fill with that service's content): the HTTP status, and
    Prometheus' own ``errorType`` when the body is a Prometheus error."""
    text = str(err)
    match = re.match(r"HTTP Status Code (\d+)", text)
    if match is None:
        return "not a Prometheus answer"
    kind = re.search(
        r'"errorType":"(bad_data|timeout|canceled|execution|internal|unavailable|not_found)"', text
    )
    return f"HTTP {match[1]}" + (f" ({kind[1]})" if kind else "")


def _root(err: BaseException) -> str:
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return str(err)[:200] or type(err).__name__


# -- building one from a policy (the prometheus row of signals/registry.py, and any source
# with a PromQL-compatible API) ----------------------------------------------------------


def http_url(metrics: Metrics, world: World) -> str:
    """``metrics.qps.url`` of an HTTP source, checked against the operator's allowed
    addresses; a one-line error naming the field when it is missing or not http(s)."""
    url = metrics.qps.url
    if not url:
        raise PolicyError(
            field_error("policy", "metrics.qps.url", f"is required for source {metrics.qps.source}")
        )
    if not url.startswith(("http://", "https://")):
        raise PolicyError(field_error("policy", "metrics.qps.url", "must be an http(s) URL"))
    world.access.address(url, "metrics.qps.url", "http")
    return url


def promql_source(metrics: Metrics, world: World, url: str, name: str) -> PrometheusSource:
    """A PromQL source over ``url`` (Prometheus, or an API compatible with it) with the
    policy's QPS and p99 queries over the Redis exporter's defaults."""
    queries: dict[Metric, str] = {}
    if metrics.qps.query:
        queries[Metric.QPS] = metrics.qps.query
    latency = metrics.latency_p99
    if latency is not None and latency.query and latency.source == metrics.qps.source:
        queries[Metric.P99_LATENCY] = latency.query
    query_set = REDIS_EXPORTER.override(queries)
    if world.prometheus is not None:
        return PrometheusSource(
            world.prometheus(url),
            queries=query_set,
            timeout=world.source_timeout,
            name=name,
            now=world.now,
        )
    return PrometheusSource.connect(
        url, queries=query_set, timeout=world.source_timeout, name=name, now=world.now
    )


def prometheus_server(metrics: Metrics, world: World) -> PrometheusSource:
    """The ``prometheus`` row of ``signals/registry.py``: ``metrics.qps.url`` is the base
    URL, ``query`` the PromQL over the Redis exporter's defaults."""
    return promql_source(metrics, world, http_url(metrics, world), "prometheus")


def unit_pairs(
    source: PrometheusSource, start: float, end: float, step: float
) -> tuple[list[float], list[float]] | Unavailable:
    """(QPS, p99 seconds) per unit per step where both are present: the learner's input."""
    qps = source.range_per_unit(Metric.QPS, start, end, step)
    if isinstance(qps, Unavailable):
        return qps
    p99 = source.range_per_unit(Metric.P99_LATENCY, start, end, step)
    if isinstance(p99, Unavailable):
        return p99
    xs: list[float] = []
    ys: list[float] = []
    for unit, q in qps.items():
        lat = p99.get(unit)
        if lat is None:
            continue
        both = ~np.isnan(q.v) & ~np.isnan(lat.v)
        xs.extend(q.v[both].tolist())
        ys.extend(lat.v[both].tolist())
    return xs, ys
