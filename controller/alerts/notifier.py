"""Turns each control-loop pass into alert deliveries, without ever blocking the pass.

:class:`AlertNotifier` is called with every :class:`~headroom.controller.loop.PassReport`
(the loop's ``observer``). It runs the pure rules (:func:`~.rules.evaluate`), diffs the
alerts that hold with those already sent (new keys fire once, vanished keys resolve
once, to the sinks that got them firing) and puts the deliveries on one **bounded queue
per sink**; it returns at once. Each sink has a worker thread that groups what is
queued (one request per group where the sink's API allows it), waits for the sink's
rate limit (a token bucket), and retries failures with exponential backoff (tenacity).
A delivery given up on (queue full, retries exhausted, rejected by the sink) is logged
and counted in ``headroom_alerts_dropped_total`` — never silently lost. Sinks that
forget alerts unless told again (Alertmanager) get the firing ones re-sent.

What was delivered and still fires is kept in :class:`AlertState`, a small
JSON-serialisable value (:meth:`AlertNotifier.state`): the operator stores it in the
policy status and passes it back after a restart, so a restart does not re-fire.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
)

from headroom.controller.alerts.base import Alert, AlertSink, Severity, Status
from headroom.controller.alerts.rules import RuleMemory, evaluate
from headroom.controller.loop import PassReport
from headroom.controller.metrics import OperatorMetrics
from headroom.policies.errors import AlertDeliveryError
from headroom.policies.forecast.base import Forecast
from headroom.policies.policy import PolicySpec

log = logging.getLogger("headroom.alerts")


@dataclass(frozen=True)
class SinkBinding:
    """A sink and the alert names a policy sends it."""

    sink: AlertSink
    on: frozenset[str]


@dataclass(frozen=True)
class DeliveryOptions:
    queue_size: int = 1000  # per sink; beyond it new deliveries are dropped (and counted)
    attempts: int = 6  # tries per delivery, the first included
    backoff: float = 1.0  # first retry delay, doubling per retry
    backoff_max: float = 60.0
    rate_per_minute: float = 30.0  # requests per sink (a burst of as many is allowed)
    batch: int = 20  # alerts per request at most


@dataclass(frozen=True)
class Delivery:
    """One finished delivery attempt chain, for summaries and ``alerts test``."""

    sink: str
    key: str
    name: str
    status: str
    ok: bool
    attempts: int
    error: str | None
    wall: float  # unix seconds (real time) it finished
    at: float  # the alert's pass time (loop clock)
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {
            "sink": self.sink, "key": self.key, "name": self.name, "status": self.status,
            "ok": self.ok, "attempts": self.attempts, "error": self.error, "at": self.at,
            "summary": self.summary,
        }  # fmt: skip


@dataclass
class AlertState:
    """Firing alerts and the sinks that have them, plus the rules' memory."""

    firing: dict[str, Alert] = field(default_factory=dict)
    delivered: dict[str, set[str]] = field(default_factory=dict)
    memory: RuleMemory = field(default_factory=RuleMemory)
    clearing: dict[str, float] = field(default_factory=dict)  # firing key -> clear since

    def to_json(self) -> dict[str, Any]:
        return {
            "firing": [_alert_state(a, sorted(self.delivered.get(k, ()))) for k, a in
                       sorted(self.firing.items())],
            "clearing": dict(sorted(self.clearing.items())),
            "rules": self.memory.to_json(),
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> AlertState:
        state = cls()
        if not data:
            return state
        for item in data.get("firing") or []:
            alert = Alert(
                str(item["name"]), str(item["policy"]), item.get("target"),
                Severity(item["severity"]), str(item["summary"]), float(item["since"]),
                float(item["at"]), Status.FIRING, item.get("event"),
                {str(k): float(v) for k, v in (item.get("numbers") or {}).items()},
                item.get("link"),
            )  # fmt: skip
            state.firing[alert.key] = alert
            state.delivered[alert.key] = set(item.get("deliveredTo") or [])
        state.memory = RuleMemory.from_json(data.get("rules") or {})
        state.clearing = {
            str(k): float(v) for k, v in dict(data.get("clearing") or {}).items()
            if str(k) in state.firing
        }  # fmt: skip
        return state


def _alert_state(alert: Alert, delivered: list[str]) -> dict[str, Any]:
    return {
        "name": alert.name, "policy": alert.policy, "target": alert.target,
        "severity": alert.severity.value, "summary": alert.summary, "since": alert.since,
        "at": alert.at, "event": alert.event, "numbers": dict(alert.numbers),
        "link": alert.link, "deliveredTo": delivered,
    }  # fmt: skip


class _TokenBucket:
    def __init__(self, per_minute: float) -> None:
        self.capacity = max(1.0, per_minute)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def wait_time(self) -> float:
        """Seconds until a token is free (0: take one now)."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate if self.rate > 0 else 3600.0


class _SinkWorker:
    """One sink's bounded queue and the thread that drains it."""

    def __init__(self, notifier: AlertNotifier, binding: SinkBinding) -> None:
        self.notifier = notifier
        self.sink = binding.sink
        self.on = binding.on
        self.queue: queue.Queue[Alert] = queue.Queue(notifier.options.queue_size)
        self.queued: set[tuple[str, str]] = set()  # (key, status) queued or in flight
        self.lock = threading.Lock()
        self.busy = False
        self.bucket = _TokenBucket(notifier.options.rate_per_minute)
        self.last_resend = time.monotonic()
        self.thread = threading.Thread(
            target=self._run, name=f"alerts-{self.sink.name}", daemon=True
        )

    def offer(self, alert: Alert) -> None:
        ident = (alert.key, alert.status.value)
        with self.lock:
            if ident in self.queued:
                return
            try:
                self.queue.put_nowait(alert)
            except queue.Full:
                self.notifier._dropped(self.sink.name, alert, "QueueFull", "the queue is full")
                return
            self.queued.add(ident)
        self.notifier._depth(self.sink.name, self.queue.qsize())

    def idle(self) -> bool:
        with self.lock:
            return self.queue.empty() and not self.busy

    def _take(self, first: Alert) -> list[Alert]:
        group = [first]
        while len(group) < self.notifier.options.batch:
            try:
                group.append(self.queue.get_nowait())
            except queue.Empty:
                break
        with self.lock:
            self.busy = True
        self.notifier._depth(self.sink.name, self.queue.qsize())
        return group

    def _run(self) -> None:
        stop = self.notifier._stop
        while not stop.is_set():
            try:
                first = self.queue.get(timeout=0.1)
            except queue.Empty:
                self._maybe_resend()
                continue
            group = self._take(first)
            try:
                self._deliver(group)
            finally:
                with self.lock:  # in flight counts as queued: no second copy meanwhile
                    self.busy = False
                    for alert in group:
                        self.queued.discard((alert.key, alert.status.value))
        while True:  # closing: whatever is left is dropped, and counted
            try:
                alert = self.queue.get_nowait()
            except queue.Empty:
                break
            self.notifier._dropped(self.sink.name, alert, "ShuttingDown", "the notifier stopped")

    def _maybe_resend(self) -> None:
        interval = self.sink.resend_interval
        if not interval or time.monotonic() - self.last_resend < interval:
            return
        self.last_resend = time.monotonic()
        for alert in self.notifier._firing_for(self.sink.name):
            self.offer(alert)

    def _deliver(self, group: list[Alert]) -> None:
        stop = self.notifier._stop
        wait = self.bucket.wait_time()
        while wait > 0 and not stop.is_set():
            stop.wait(min(wait, 1.0))
            wait = self.bucket.wait_time()
        if wait > 0:  # stopped while waiting for the rate limit
            for alert in group:
                self.notifier._dropped(
                    self.sink.name, alert, "ShuttingDown", "the notifier stopped"
                )
            return
        options = self.notifier.options
        attempts = [0]

        def attempt() -> None:
            attempts[0] += 1
            self.sink.send(group)

        def sleep(seconds: float) -> None:
            stop.wait(seconds)

        retrying = Retrying(
            stop=stop_after_attempt(options.attempts) | stop_when_event_set(stop),
            wait=wait_exponential(multiplier=options.backoff, max=options.backoff_max),
            retry=retry_if_exception(
                lambda err: isinstance(err, AlertDeliveryError) and err.retryable
            ),
            sleep=sleep,
            reraise=True,
        )
        try:
            retrying(attempt)
        except AlertDeliveryError as err:
            reason = "RetriesExhausted" if err.retryable else "Rejected"
            for alert in group:
                self.notifier._dropped(self.sink.name, alert, reason, str(err), attempts[0])
            return
        except Exception as err:  # noqa: BLE001 - a sink bug must not kill the worker
            for alert in group:
                self.notifier._dropped(
                    self.sink.name, alert, "SinkError", type(err).__name__, attempts[0]
                )
            return
        self.last_resend = time.monotonic()
        for alert in group:
            self.notifier._sent(self.sink.name, alert, attempts[0])


class AlertNotifier:
    """Call it with each pass's report; deliveries happen on background threads."""

    def __init__(
        self,
        spec: PolicySpec,
        bindings: Sequence[SinkBinding],
        *,
        metrics: OperatorMetrics | None = None,
        state: AlertState | None = None,
        options: DeliveryOptions = DeliveryOptions(),
        link: str | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
    ) -> None:
        self.spec = spec
        self.options = options
        self.metrics = metrics
        self.link = link
        self.on_delivery = on_delivery
        self._state = state or AlertState()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # Earlier passes' forecasts, for the forecast-miss rule (what capacity was ordered
        # against one lead time ago); in memory only: after a restart it starts afresh.
        self._past: deque[tuple[float, Forecast]] = deque()
        self._offered: dict[str, set[str]] = {}  # key -> sinks its firing was queued for
        self._given_up: set[tuple[str, str]] = set()  # (key, sink) dropped: not offered again
        self.deliveries: deque[Delivery] = deque(maxlen=1000)
        self.dropped = 0
        self._workers = [_SinkWorker(self, b) for b in bindings]
        for worker in self._workers:
            worker.thread.start()

    # -- called by the loop ------------------------------------------------------------------

    def __call__(self, report: PassReport) -> None:
        """The loop's observer: a fault in the alert path is logged, never the pass's."""
        try:
            self.observe(report)
        except Exception:  # noqa: BLE001 - reconciliation must go on without alerts
            log.exception("Failed to evaluate alerts policy=%s at=%.0f", self.spec.name, report.at)

    def observe(self, report: PassReport) -> list[Alert]:
        """Evaluate ``report`` and queue what changed; returns the alerts that hold."""
        with self._lock:
            holding, memory = evaluate(
                report,
                self.spec,
                self._state.memory,
                tuple(self._past),
                self.link,
                frozenset(self._state.firing),
            )
            self._state.memory = memory
            if report.forecast is not None:
                self._remember(report.at, report.forecast)
            now = {a.key: a for a in holding}
            fire = [a for k, a in now.items() if k not in self._state.firing]
            kept = {k: a for k, a in now.items() if k in self._state.firing}
            # A condition must stay clear for resolveAfter before its alert resolves, so a
            # value hovering at a threshold does not page, resolve and page again.
            clearing = self._state.clearing
            for key in now:
                clearing.pop(key, None)
            due = []
            for key in self._state.firing:
                if key not in now:
                    since = clearing.setdefault(key, report.at)
                    if report.at - since >= self.spec.alert_rules.resolve_after:
                        due.append(key)
            # A resolve goes wherever the firing went or is on its way (in flight now).
            resolve = [
                (
                    self._state.firing[k].resolved(report.at),
                    self._state.delivered.get(k, set()) | self._offered.pop(k, set()),
                )
                for k in due
            ]
            for key, alert in kept.items():  # fresh numbers, the original start
                old = self._state.firing[key]
                self._state.firing[key] = Alert(
                    alert.name, alert.policy, alert.target, alert.severity, alert.summary,
                    old.since, alert.at, Status.FIRING, alert.event, alert.numbers, alert.link,
                )  # fmt: skip
            for alert in fire:
                self._state.firing[alert.key] = alert
                self._state.delivered.setdefault(alert.key, set())
            for alert, sinks in resolve:
                self._state.firing.pop(alert.key, None)
                self._state.delivered.pop(alert.key, None)
                clearing.pop(alert.key, None)
                for sink in list(sinks):
                    if (alert.key, sink) in self._given_up:
                        self._given_up.discard((alert.key, sink))
                        sinks.discard(sink)
            pending = [
                (a, w)
                for a in self._state.firing.values()
                for w in self._workers
                if a.name in w.on
                and w.sink.name not in self._state.delivered.get(a.key, ())
                and (a.key, w.sink.name) not in self._given_up
            ]
            for alert, worker in pending:
                self._offered.setdefault(alert.key, set()).add(worker.sink.name)
        for alert, worker in pending:  # new alerts, and any a restart or a drop left unsent
            worker.offer(alert)
        for alert, sinks in resolve:
            for worker in self._workers:
                if worker.sink.name in sinks:
                    worker.offer(alert)
        if self.metrics is not None:
            self.metrics.set_alerts_firing(self.spec.name, [a.name for a in holding])
        return holding

    def _remember(self, at: float, forecast: Forecast) -> None:
        self._past.append((at, forecast))
        keep = max(t.provisioning.delay(t.min_units, t.max_units) for t in self.spec.targets)
        keep += self.spec.lead_time
        # Drop what the rule can no longer pick: anything older than the newest forecast
        # made before the longest lead; at most 1000 kept, whatever the pass rate.
        while len(self._past) > 1000 or (len(self._past) > 1 and self._past[1][0] <= at - keep):
            self._past.popleft()

    # -- results -----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The serialisable state to persist (policy status) and pass back after a restart."""
        with self._lock:
            return self._state.to_json()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queue is drained (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(w.idle() for w in self._workers):
                return True
            time.sleep(0.02)
        return all(w.idle() for w in self._workers)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued for up to ``timeout`` seconds, then stop every worker."""
        self.flush(timeout)
        self._stop.set()
        for worker in self._workers:
            worker.thread.join(timeout=5.0)

    # -- worker callbacks --------------------------------------------------------------------

    def _firing_for(self, sink: str) -> list[Alert]:
        with self._lock:
            return [
                a for k, a in self._state.firing.items() if sink in self._state.delivered.get(k, ())
            ]

    def _sent(self, sink: str, alert: Alert, attempts: int) -> None:
        with self._lock:
            if alert.status is Status.FIRING and alert.key in self._state.firing:
                self._state.delivered.setdefault(alert.key, set()).add(sink)
        if self.metrics is not None:
            self.metrics.record_alert_sent(sink, alert.name, alert.status.value)
        self._record(Delivery(sink, alert.key, alert.name, alert.status.value, True, attempts,
                              None, time.time(), alert.at, alert.summary))  # fmt: skip
        log.info("Sent alert %s status=%s sink=%s attempts=%d", alert.key, alert.status.value,
                 sink, attempts)  # fmt: skip

    def _dropped(self, sink: str, alert: Alert, reason: str, error: str, attempts: int = 0) -> None:
        self.dropped += 1
        if alert.status is Status.FIRING:
            with self._lock:
                self._given_up.add((alert.key, sink))
        if self.metrics is not None:
            self.metrics.record_alert_dropped(sink, alert.name, reason)
        self._record(Delivery(sink, alert.key, alert.name, alert.status.value, False, attempts,
                              error, time.time(), alert.at, alert.summary))  # fmt: skip
        log.warning("Dropped alert %s status=%s sink=%s reason=%s attempts=%d error=%s",
                    alert.key, alert.status.value, sink, reason, attempts, error)  # fmt: skip

    def _depth(self, sink: str, depth: int) -> None:
        if self.metrics is not None:
            self.metrics.set_alert_queue_depth(sink, depth)

    def _record(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        if self.on_delivery is not None:
            self.on_delivery(delivery)
