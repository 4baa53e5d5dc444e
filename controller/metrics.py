"""The operator's own Prometheus metrics: what Headroom forecast, planned and did.

The control loop (``headroom demo``, the operator's reconcile pass, the resharder's
progress callback) calls :class:`OperatorMetrics`; :func:`serve` exposes its
registry over HTTP for Prometheus to scrape. Every series is documented in
``docs/metrics.md``; keep the two in step. Names follow Prometheus conventions:
``headroom_`` prefix, base units in the name, ``_total`` counters. Label values
must stay low-cardinality: ``target`` is a scale target's name, ``reason`` a
CamelCase reason word (``ScheduledEvent``), never free text.

Each instance owns its own :class:`CollectorRegistry` (never the global one), so
tests and several loops in one process do not collide.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from headroom.policies.policy import AlertName


class OperatorMetrics:
    """Typed setters for every operator series, on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry

        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            return Gauge(name, doc, labels, registry=r)

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=r)

        self._capacity_method: dict[str, str] = {}
        self.forecast = gauge(
            "headroom_forecast_requests_per_second",
            "Forecast demand for the next decision horizon, by quantile (0.5, 0.9, ...).",
            "target",
            "quantile",
        )
        self.demand = gauge(
            "headroom_demand_requests_per_second",
            "Demand measured by the policy's signal source on the last pass.",
            "target",
        )
        self.event_start = gauge(
            "headroom_event_start_timestamp_seconds",
            "Unix start time of each DemandEvent in a policy's forecast horizon.",
            "policy",
            "event",
        )
        self._events: dict[str, set[str]] = {}
        self.ready = gauge("headroom_ready_units", "Units of the target ready to serve.", "target")
        self.desired = gauge(
            "headroom_desired_units", "Units the target was last asked for.", "target"
        )
        self.planned = gauge(
            "headroom_planned_units",
            "Units the plan wants now (before step limits, cooldowns and freezes apply).",
            "target",
        )
        self.next_action = gauge(
            "headroom_next_action_timestamp_seconds",
            "Unix time of the next planned scaling action; 0 when none is planned.",
            "target",
        )
        self.capacity = gauge(
            "headroom_capacity_per_unit_requests_per_second",
            "QPS one unit serves at the SLO (declared or learned) that the plan uses.",
            "target",
            "method",
        )
        self.actions = counter(
            "headroom_scaling_actions",
            "Scaling actions taken, by target and reason.",
            "target",
            "reason",
        )
        self.keys_moved = counter(
            "headroom_resharding_keys_moved",
            "Keys migrated between Redis masters by the resharder.",
            "target",
        )
        self.slots_moved = counter(
            "headroom_resharding_slots_moved",
            "Hash slots migrated between Redis masters by the resharder.",
            "target",
        )
        self.source_up = gauge(
            "headroom_signal_source_up",
            "1 if the metric source answered on its last read, 0 if it was unavailable.",
            "source",
        )
        self.leader = gauge(
            "headroom_operator_leader",
            "1 while this operator process holds the leader Lease, 0 while it stands by.",
        )
        self.cluster_lost_nodes = gauge(
            "headroom_rediscluster_lost_nodes",
            "Members of a RedisCluster that are gone and not yet healed",
            "cluster",
        )
        self.cluster_slots_lost = gauge(
            "headroom_rediscluster_slots_lost",
            "Slots whose master is gone with no replica (data lost unless its volume returns)",
            "cluster",
        )
        self.cluster_pods_stuck = gauge(
            "headroom_rediscluster_pods_stuck",
            "Pods of a RedisCluster not Ready for longer than the operator's "
            "--pods-ready-deadline (alert on > 0)",
            "cluster",
        )
        self.reconciles = counter(
            "headroom_reconciles",
            "Reconcile passes by kind (RedisCluster, ...) and result (done, requeued, "
            "invalid, failed).",
            "kind",
            "result",
        )
        self.source_last_success = gauge(
            "headroom_signal_source_last_success_timestamp_seconds",
            "Unix time the metric source last answered.",
            "source",
        )

        self.alerts_sent = counter(
            "headroom_alerts_sent",
            "Alert notifications a sink accepted, by sink, alert name and status.",
            "sink",
            "alert",
            "status",
        )
        self.alerts_dropped = counter(
            "headroom_alerts_dropped",
            "Alert notifications given up on (QueueFull, RetriesExhausted, Rejected, "
            "SinkError, ShuttingDown), by sink, alert name and reason.",
            "sink",
            "alert",
            "reason",
        )
        self.alerts_firing = gauge(
            "headroom_alerts_firing",
            "Alerts that hold after the last pass, by policy and alert name.",
            "policy",
            "alert",
        )
        self.alert_queue = gauge(
            "headroom_alert_queue_depth",
            "Alert notifications waiting in a sink's delivery queue.",
            "sink",
        )

    def record_alert_sent(self, sink: str, alert: str, status: str) -> None:
        self.alerts_sent.labels(sink=sink, alert=alert, status=status).inc()

    def record_alert_dropped(self, sink: str, alert: str, reason: str) -> None:
        self.alerts_dropped.labels(sink=sink, alert=alert, reason=reason).inc()

    def set_alerts_firing(self, policy: str, names: list[str]) -> None:
        """Set every known alert name of ``policy`` to how many of ``names`` hold now."""
        for name in AlertName:
            self.alerts_firing.labels(policy=policy, alert=name.value).set(
                sum(1 for n in names if n == name.value)
            )

    def set_alert_queue_depth(self, sink: str, depth: int) -> None:
        self.alert_queue.labels(sink=sink).set(depth)

    def observe_demand(self, target: str, qps: float) -> None:
        self.demand.labels(target=target).set(qps)

    def set_events(self, policy: str, starts: dict[str, float]) -> None:
        """The events ahead of ``policy`` (name -> unix start); the ones gone are removed."""
        for gone in self._events.get(policy, set()) - set(starts):
            self.event_start.remove(policy, gone)
        self._events[policy] = set(starts)
        for name, at in starts.items():
            self.event_start.labels(policy=policy, event=name).set(at)

    def observe_forecast(self, target: str, quantile: float, qps: float) -> None:
        self.forecast.labels(target=target, quantile=_quantile_label(quantile)).set(qps)

    def set_units(
        self, target: str, ready: int, desired: int | None = None, planned: int | None = None
    ) -> None:
        self.ready.labels(target=target).set(ready)
        if desired is not None:
            self.desired.labels(target=target).set(desired)
        if planned is not None:
            self.planned.labels(target=target).set(planned)

    def set_next_action(self, target: str, at: float | None) -> None:
        """``at`` in unix seconds; ``None`` (nothing planned) is exported as 0."""
        self.next_action.labels(target=target).set(at or 0.0)

    def set_capacity(self, target: str, qps_per_unit: float, method: str) -> None:
        """``method`` is how it was obtained: declared, crossing, extrapolated."""
        old = self._capacity_method.get(target)
        if old is not None and old != method:
            self.capacity.remove(target, old)
        self._capacity_method[target] = method
        self.capacity.labels(target=target, method=method).set(qps_per_unit)

    def record_action(self, target: str, reason: str) -> None:
        self.actions.labels(target=target, reason=reason).inc()

    def set_cluster_damage(self, cluster: str, lost_nodes: int, slots_lost: int) -> None:
        """A RedisCluster's lost members and the slots no node can serve (alert on > 0)."""
        self.cluster_lost_nodes.labels(cluster=cluster).set(lost_nodes)
        self.cluster_slots_lost.labels(cluster=cluster).set(slots_lost)

    def set_cluster_pods_stuck(self, cluster: str, pods: int) -> None:
        """A RedisCluster's pods not Ready past the deadline (0 while within it)."""
        self.cluster_pods_stuck.labels(cluster=cluster).set(pods)

    def record_reconcile(self, kind: str, result: str) -> None:
        """``result``: done, requeued (converging), invalid (spec refused) or failed."""
        self.reconciles.labels(kind=kind, result=result).inc()

    def set_leader(self, leader: bool) -> None:
        self.leader.set(1 if leader else 0)

    def record_resharding(self, target: str, keys: int = 0, slots: int = 0) -> None:
        """Add keys/slots moved since the last call (counters only go up)."""
        if keys:
            self.keys_moved.labels(target=target).inc(keys)
        if slots:
            self.slots_moved.labels(target=target).inc(slots)

    def set_source_available(self, source: str, available: bool, at: float | None = None) -> None:
        """Record a read of ``source``; ``at`` (unix seconds) stamps a successful one."""
        self.source_up.labels(source=source).set(1 if available else 0)
        if available and at is not None:
            self.source_last_success.labels(source=source).set(at)

    def touch(self, target: str, sources: tuple[str, ...] = ()) -> None:
        """Create every labelled series for ``target`` (and ``sources``) so they exist at 0."""
        self.ready.labels(target=target)
        self.desired.labels(target=target)
        self.planned.labels(target=target)
        self.next_action.labels(target=target)
        self.keys_moved.labels(target=target)
        self.slots_moved.labels(target=target)
        for source in sources:
            self.source_up.labels(source=source)


def _quantile_label(q: float) -> str:
    return f"{q:g}"


@dataclass(frozen=True)
class MetricsEndpoint:
    """A running ``/metrics`` server; call it (or :meth:`stop`) to shut it down."""

    host: str
    port: int
    _server: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __call__(self) -> None:
        self.stop()


def serve(registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 0) -> MetricsEndpoint:
    """Serve ``registry`` at ``http://host:port/metrics`` (port 0: any free port).

    Binds loopback unless told otherwise: exposing metrics beyond the machine (e.g.
    ``0.0.0.0`` in a pod) is a deliberate choice of the caller.
    """
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsEndpoint(host, int(server.server_port), server, thread)
