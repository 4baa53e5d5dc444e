"""The victoriametrics source against Debian's real ``victoria-metrics`` on loopback: a
policy naming it gets it from the registry, it reads demand VictoriaMetrics was given
(the policy's query and the Redis exporter's default, a counter's rate), and an outage
is Unavailable, never zero."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from headroom.controller.assembly import World, build_history, build_source
from headroom.controller.signals.base import Metric, Reading, Unavailable
from headroom.controller.signals.prometheus import PrometheusSource
from headroom.controller.signals.victoriametrics import WHOLE_ANSWERS
from headroom.policies.errors import PolicyError
from headroom.policies.policy import PolicySpec, parse_policy
from tests.support.procs import free_port, kill_group, spawn, wait_until

VM = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
pytestmark = [
    pytest.mark.victoriametrics,
    pytest.mark.skipif(not Path(VM).exists(), reason="needs Debian's victoria-metrics"),
]
STEP = 60.0


@dataclass
class Victoria:
    url: str
    proc: subprocess.Popen[bytes]

    def load(self, name: str, labels: dict[str, str], at: list[float], values: list[float]) -> None:
        """Import raw samples (``/api/v1/import``) and flush them to be searchable now."""
        line = {
            "metric": {"__name__": name, **labels},
            "values": values,
            "timestamps": [int(t * 1000) for t in at],
        }
        body = json.dumps(line).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/import", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback
            assert resp.status == 204
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10):  # noqa: S310
            pass


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[Victoria]:
    port = free_port()
    argv = [
        VM,
        f"-storageDataPath={tmp_path / 'data'}",
        f"-httpListenAddr=127.0.0.1:{port}",
        "-retentionPeriod=100y",
        "-search.disableCache",  # a range read right after an import sees it
    ]
    proc = spawn(argv, tmp_path, tmp_path / "victoria-metrics.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ok(f"{url}/health"), 60, f"victoria-metrics on {url}", 0.1)
        yield Victoria(url, proc)
    finally:
        kill_group(proc)


def _ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
        return bool(resp.status == 200)


def _policy(url: str, query: str | None = None) -> PolicySpec:
    qps: dict[str, str] = {"source": "victoriametrics", "url": url}
    if query is not None:
        qps["query"] = query
    return parse_policy(
        {
            "name": "shop",
            "targets": [{"name": "web", "capacityPerUnit": 1000}],
            "metrics": {"qps": qps},
        }
    )


def _grid_hour() -> np.ndarray[tuple[int], np.dtype[np.float64]]:
    """An hour of minute steps ending 90 to 150 s ago: older than VictoriaMetrics'
    search latency offset (30 s), newer than its staleness lookback (5 min)."""
    end = math.floor((time.time() - 90) / STEP) * STEP
    return end - STEP * np.arange(59, -1, -1, dtype=np.float64)


def test_the_policys_query_reads_what_victoria_metrics_holds(victoria: Victoria) -> None:
    t = _grid_hour()
    demand = [1000.0 + 10 * i for i in range(t.size)]
    victoria.load("shop_qps", {"job": "shop"}, t.tolist(), demand)
    source = build_source(_policy(victoria.url, "sum(shop_qps)").metrics, World())
    assert isinstance(source, PrometheusSource) and source.name == "victoriametrics"
    assert source.params == WHOLE_ANSWERS
    series = source.range(Metric.QPS, float(t[0]), float(t[-1]), STEP)
    assert not isinstance(series, Unavailable), series
    assert series.t.tolist() == t.tolist() and series.v.tolist() == demand
    reading = source.instant(Metric.QPS)
    assert isinstance(reading, Reading) and reading.value == demand[-1], reading
    # The loop's history over it: the policy's window, the same numbers.
    history = build_history(_policy(victoria.url, "sum(shop_qps)"), source, step=STEP)
    past = history.history(float(t[-1]))
    assert past.v[~np.isnan(past.v)][-len(demand) :].tolist() == demand


def test_the_redis_exporter_default_is_a_counters_rate(victoria: Victoria) -> None:
    """No query: the Redis exporter's QPS (rate of redis_commands_processed_total summed
    over the nodes), which VictoriaMetrics computes as Prometheus would on an even rate."""
    t = np.arange(_grid_hour()[0], _grid_hour()[-1] + 1, 15.0)
    for node, per_second in (("10.0.0.1:6379", 300.0), ("10.0.0.2:6379", 200.0)):
        counts = (per_second * (t - t[0])).tolist()
        victoria.load("redis_commands_processed_total", {"instance": node}, t.tolist(), counts)
    source = build_source(_policy(victoria.url).metrics, World())
    end = float(t[-1])
    series = source.range(Metric.QPS, end - 1800, end, STEP)
    assert not isinstance(series, Unavailable), series
    assert np.allclose(series.v[-10:], 500.0), series.v


def test_an_outage_is_unavailable_never_zero(victoria: Victoria) -> None:
    source = build_source(_policy(victoria.url, "sum(shop_qps)").metrics, World())
    kill_group(victoria.proc)
    now = time.time()
    reading = source.instant(Metric.QPS)
    assert isinstance(reading, Unavailable) and reading.source == "victoriametrics"
    assert "cannot connect" in reading.reason
    assert isinstance(source.range(Metric.QPS, now - 3600, now, STEP), Unavailable)


def test_a_bad_url_is_a_one_line_error_naming_the_field() -> None:
    with pytest.raises(PolicyError, match=r"^policy: metrics.qps.url: must be an http\(s\) URL$"):
        build_source(_policy("victoria:8428").metrics, World())


def test_the_sources_params_reach_victoria_metrics(victoria: Victoria) -> None:
    """What carries deny_partial_response carries any parameter: VictoriaMetrics'
    extra_label filter, sent with every query, leaves another job's demand out."""
    t = _grid_hour()
    victoria.load("shop_qps", {"job": "shop"}, t.tolist(), [5.0] * t.size)
    source = build_source(_policy(victoria.url, "sum(shop_qps)").metrics, World())
    assert isinstance(source, PrometheusSource)
    elsewhere = replace(source, params={**source.params, "extra_label": "job=other"})
    for reader in (source, elsewhere):
        series = reader.range(Metric.QPS, float(t[0]), float(t[-1]), STEP)
        if reader is source:
            assert not isinstance(series, Unavailable) and series.v.tolist() == [5.0] * t.size
        else:
            assert isinstance(series, Unavailable) and "no series" in series.reason
