"""The operator metrics endpoint, read with a real `curl`, exposes every documented series."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from headroom.controller.metrics import OperatorMetrics, serve

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
CURL = shutil.which("curl")


def documented_series() -> set[str]:
    """Series names in the table of docs/metrics.md (first column, in backticks)."""
    return set(re.findall(r"^\| `(headroom_[a-z_]+)`", DOC.read_text(), re.M))


def curl(url: str) -> str:
    assert CURL, "curl is not installed"
    return subprocess.run(
        [CURL, "-sS", "--max-time", "5", url], check=True, capture_output=True, text=True
    ).stdout


def test_curl_returns_every_documented_series_with_values():
    metrics = OperatorMetrics()
    metrics.observe_forecast("redis/cart", 0.9, 1234.5)
    metrics.observe_forecast("redis/cart", 0.5, 1000.0)
    metrics.set_units("redis/cart", ready=3, desired=4, planned=6)
    metrics.set_next_action("redis/cart", 1_800_000_000.0)
    metrics.set_capacity("redis/cart", 80_000.0, "declared")
    metrics.set_capacity("redis/cart", 75_000.0, "crossing")
    metrics.record_action("redis/cart", "ScheduledEvent")
    metrics.record_action("redis/cart", "ScheduledEvent")
    metrics.record_resharding("redis/cart", keys=1500, slots=40)
    metrics.set_source_available("prometheus", False)
    metrics.set_source_available("redis-info", True, at=1_799_999_000.0)
    metrics.set_leader(True)
    metrics.record_reconcile("RedisCluster", "requeued")
    metrics.set_cluster_damage("shop/cart", lost_nodes=1, slots_lost=0)
    metrics.set_cluster_pods_stuck("shop/cart", 2)
    metrics.record_alert_sent("oncall-slack", "forecastMiss", "firing")
    metrics.record_alert_dropped("pd", "sloBreach", "RetriesExhausted")
    metrics.set_alerts_firing("cart", ["forecastMiss"])
    metrics.set_alert_queue_depth("pd", 3)
    metrics.observe_demand("redis/cart", 980.0)
    metrics.set_events("shop", {"Spring sale": 1_800_000_000.0, "Launch": 1_800_003_600.0})
    metrics.set_events("shop", {"Launch": 1_800_003_600.0})  # the sale left the horizon
    endpoint = serve(metrics.registry)  # loopback, any free port
    try:
        assert endpoint.host == "127.0.0.1"
        body = curl(endpoint.url)
    finally:
        endpoint()
    documented = documented_series()
    assert len(documented) >= 10
    exposed = set(re.findall(r"^(headroom_[a-z_]+)[{ ]", body, re.M))
    assert documented <= exposed, documented - exposed
    # Undocumented series are a bug too (``_created`` is prometheus_client's own companion).
    assert {s for s in exposed if not s.endswith("_created")} <= documented
    assert (
        'headroom_forecast_requests_per_second{quantile="0.9",target="redis/cart"} 1234.5' in body
    )
    assert 'headroom_scaling_actions_total{reason="ScheduledEvent",target="redis/cart"} 2.0' in body
    assert 'headroom_signal_source_up{source="prometheus"} 0.0' in body
    assert 'headroom_resharding_keys_moved_total{target="redis/cart"} 1500.0' in body
    assert 'headroom_next_action_timestamp_seconds{target="redis/cart"} 1.8e+09' in body
    assert (
        'headroom_alerts_dropped_total{alert="sloBreach",reason="RetriesExhausted",sink="pd"} 1.0'
        in body
    )
    assert 'headroom_alerts_firing{alert="forecastMiss",policy="cart"} 1.0' in body
    assert 'headroom_alerts_firing{alert="sloBreach",policy="cart"} 0.0' in body
    assert 'method="declared"' not in body and 'method="crossing"' in body
    assert "headroom_operator_leader 1.0" in body
    assert 'headroom_reconciles_total{kind="RedisCluster",result="requeued"} 1.0' in body
    assert 'headroom_demand_requests_per_second{target="redis/cart"} 980.0' in body
    assert 'headroom_rediscluster_pods_stuck{cluster="shop/cart"} 2.0' in body
    assert 'headroom_event_start_timestamp_seconds{event="Launch",policy="shop"}' in body
    assert "Spring sale" not in body


def test_endpoint_stops_and_registries_are_separate():
    a, b = OperatorMetrics(), OperatorMetrics()
    a.set_units("x", ready=1)
    b.set_units("x", ready=2)  # no "Duplicated timeseries" error: own registries
    endpoint = serve(b.registry)
    assert 'headroom_ready_units{target="x"} 2.0' in curl(endpoint.url)
    endpoint.stop()
    with pytest.raises(subprocess.CalledProcessError):
        curl(endpoint.url)
