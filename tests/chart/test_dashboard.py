"""The chart's Grafana dashboard: a sidecar ConfigMap, optional, and every query names only
series the operator exports (a renamed metric would leave a panel silently empty)."""

from __future__ import annotations

import json
import re
from typing import Any

from prometheus_client.metrics_core import Metric

from headroom.controller.metrics import OperatorMetrics
from tests.support.chart import of_kind, render_chart

SERIES = re.compile(r"\bheadroom_[a-z0-9_]+\b")


def _dashboard_configmaps(values: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [
        o for o in of_kind(render_chart(values), "ConfigMap")
        if o["metadata"]["name"].endswith("-dashboard")
    ]  # fmt: skip


def exported_series() -> set[str]:
    """Every sample name the operator's registry exposes (counters with ``_total``)."""
    names: set[str] = set()
    family: Metric
    for family in OperatorMetrics().registry.collect():
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


def queries(dashboard: dict[str, Any]) -> list[str]:
    out = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            out.append(var["definition"])
    return out


def test_the_dashboard_is_optional_and_labelled_for_the_grafana_sidecar() -> None:
    assert _dashboard_configmaps(None) == []
    values = {"metrics": {"grafanaDashboard": {"enabled": True, "namespace": "monitoring"}}}
    (cm,) = _dashboard_configmaps(values)
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "monitoring"
    dashboard = json.loads(cm["data"]["headroom.json"])
    assert dashboard["uid"] == "headroom-operator"


def test_every_dashboard_query_names_only_series_the_operator_exports() -> None:
    values = {"metrics": {"grafanaDashboard": {"enabled": True}}}
    dashboard = json.loads(_dashboard_configmaps(values)[0]["data"]["headroom.json"])
    exported = exported_series()
    assert "headroom_demand_requests_per_second" in exported
    used: set[str] = set()
    for expr in queries(dashboard):
        names = set(SERIES.findall(expr))
        assert names, f"a query without a Headroom series: {expr}"
        assert names <= exported, f"{expr}: not exported: {names - exported}"
        used |= names
    # What the dashboard is for, per target: forecast vs demand vs ready capacity, events,
    # actions, alerts, resharding.
    assert {
        "headroom_forecast_requests_per_second",
        "headroom_demand_requests_per_second",
        "headroom_ready_units",
        "headroom_capacity_per_unit_requests_per_second",
        "headroom_event_start_timestamp_seconds",
        "headroom_next_action_timestamp_seconds",
        "headroom_scaling_actions_total",
        "headroom_alerts_firing",
        "headroom_alerts_dropped_total",
        "headroom_resharding_slots_moved_total",
    } <= used
    titles = [p["title"] for p in dashboard["panels"]]
    assert len(titles) == len(set(titles)) and all(titles)
