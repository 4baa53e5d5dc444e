"""Delivery: off the loop's thread, retried until a receiver recovers (each alert exactly
once), counted when given up on, de-duplicated, grouped, restart-safe, and secret-free."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from typing import Any

from prometheus_client import generate_latest
from pydantic import SecretStr

from headroom.controller.alerts.notifier import (
    AlertNotifier,
    AlertState,
    DeliveryOptions,
    SinkBinding,
)
from headroom.controller.alerts.pagerduty import PagerDutySink
from headroom.controller.alerts.slack import SlackSink
from headroom.controller.alerts.webhook import WebhookSink
from headroom.controller.loop import ControlLoop, ListSink
from headroom.controller.metrics import OperatorMetrics
from headroom.policies.calendar import Calendar
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import AlertName
from headroom.policies.synthetic import generate_trace
from tests.alerts.reports import T0, report, spec
from tests.controller.test_loop import ManualClock, RecordingTarget, StaticHistory
from tests.support.procs import wait_until
from tests.support.receivers import Receiver

ALL = frozenset(n.value for n in AlertName)
FAST = DeliveryOptions(attempts=40, backoff=0.02, backoff_max=0.1, rate_per_minute=6000)


def _bad_pass(at: float):
    """A pass where three alerts hold at once (holds of 0 in this policy)."""
    return report(at, demand=3500.0, upper=1500.0, ready=3, capped=True,
                  failed="RedisCluster cart: API answered 500")  # fmt: skip


def _quick_spec():
    return spec(alertRules={"forecastMissFor": 0, "sloBreachFor": 0, "stuckFor": 0})


def _sent(receiver: Receiver) -> Counter[tuple[str, str]]:
    return Counter((a["key"], a["status"]) for b in receiver.bodies() for a in b["alerts"])


def test_receiver_down_then_up_gets_every_alert_exactly_once() -> None:
    receiver = Receiver(up=False)
    notifier = AlertNotifier(
        _quick_spec(), [SinkBinding(WebhookSink("hook", receiver.url), ALL)], options=FAST
    )
    try:
        fired = notifier.observe(_bad_pass(T0))
        assert {a.name for a in fired} == {"forecastMiss", "sloBreach", "scaleFailed",
                                           "capacityCapped"}  # fmt: skip
        for i in range(1, 4):  # passes go on while the receiver is down: nothing new to send
            notifier.observe(_bad_pass(T0 + i * 60))
        threading.Timer(0.4, receiver.start).start()
        assert notifier.flush(20)
        notifier.observe(report(T0 + 300))  # all clear: four resolves
        assert notifier.flush(20)
    finally:
        notifier.close()
        receiver.stop()
    sent = _sent(receiver)
    assert set(sent.values()) == {1}, sent
    assert len(sent) == 8 and {s for _k, s in sent} == {"firing", "resolved"}
    assert notifier.dropped == 0
    assert len(receiver.bodies()[0]["alerts"]) == 4  # grouped: one request for the pass


def test_receiver_down_for_good_is_a_counted_drop_and_the_pass_does_not_wait() -> None:
    metrics = OperatorMetrics()
    down = Receiver(up=False)
    hung = Receiver()
    hung.hold = threading.Event()
    options = DeliveryOptions(attempts=3, backoff=0.01, backoff_max=0.02, rate_per_minute=6000)
    notifier = AlertNotifier(
        _quick_spec(),
        [SinkBinding(WebhookSink("gone", down.url), ALL),
         SinkBinding(WebhookSink("hung", hung.url), ALL)],
        metrics=metrics, options=options,
    )  # fmt: skip
    try:
        notifier.observe(_bad_pass(T0))
        wait_until(lambda: hung.attempts == 1, 10, "the hung receiver to get its request")
        # The pass returns while a delivery hangs: observe() never waits for a sink.
        notifier.observe(_bad_pass(T0 + 60))
        assert hung.attempts == 1 and not hung.received
        wait_until(lambda: notifier.dropped >= 4, 10, "the drops of the dead sink")
    finally:
        hung.hold.set()
        notifier.close()
        hung.stop()
    text = generate_latest(metrics.registry).decode()
    assert ('headroom_alerts_dropped_total{alert="sloBreach",reason="RetriesExhausted",'
            'sink="gone"} 1.0') in text  # fmt: skip
    assert 'headroom_alerts_sent_total{alert="sloBreach",sink="hung",status="firing"} 1.0' in text
    drops = [d for d in notifier.deliveries if not d.ok]
    assert {d.sink for d in drops} == {"gone"} and all(d.attempts == 3 for d in drops)


def test_a_full_queue_drops_and_counts() -> None:
    metrics = OperatorMetrics()
    hung = Receiver()
    hung.hold = threading.Event()
    options = DeliveryOptions(queue_size=1, batch=1, rate_per_minute=6000)
    notifier = AlertNotifier(_quick_spec(), [SinkBinding(WebhookSink("slow", hung.url), ALL)],
                             metrics=metrics, options=options)  # fmt: skip
    try:
        notifier.observe(_bad_pass(T0))  # 4 alerts: one in flight, one queued, two dropped
        wait_until(lambda: notifier.dropped >= 2, 10, "QueueFull drops")
    finally:
        hung.hold.set()
        notifier.close()
        hung.stop()
    assert 'reason="QueueFull"' in generate_latest(metrics.registry).decode()


def test_a_restart_with_the_saved_state_does_not_refire() -> None:
    receiver = Receiver()
    policy = _quick_spec()
    first = AlertNotifier(policy, [SinkBinding(WebhookSink("hook", receiver.url), ALL)],
                          options=FAST)  # fmt: skip
    first.observe(_bad_pass(T0))
    assert first.flush(10)
    saved = json.loads(json.dumps(first.state()))  # what the operator writes to the status
    first.close()
    assert len(saved["firing"]) == 4 and all(f["deliveredTo"] == ["hook"] for f in saved["firing"])
    second = AlertNotifier(policy, [SinkBinding(WebhookSink("hook", receiver.url), ALL)],
                           state=AlertState.from_json(saved), options=FAST)  # fmt: skip
    try:
        second.observe(_bad_pass(T0 + 60))
        assert second.flush(10)
        assert len(_sent(receiver)) == 4  # nothing re-fired
        second.observe(report(T0 + 120))
        assert second.flush(10)
    finally:
        second.close()
        receiver.stop()
    sent = _sent(receiver)
    assert len(sent) == 8 and set(sent.values()) == {1}


def test_only_subscribed_alerts_reach_a_sink_and_resolves_only_where_fired() -> None:
    pages, everything = Receiver(), Receiver()
    notifier = AlertNotifier(
        _quick_spec(),
        [SinkBinding(WebhookSink("pages", pages.url), frozenset({"sloBreach"})),
         SinkBinding(WebhookSink("all", everything.url), ALL)],
        options=FAST,
    )  # fmt: skip
    try:
        notifier.observe(_bad_pass(T0))
        notifier.observe(report(T0 + 60))
        assert notifier.flush(10)
    finally:
        notifier.close()
        pages.stop()
        everything.stop()
    assert set(_sent(pages)) == {("shop/cart/sloBreach", "firing"),
                                 ("shop/cart/sloBreach", "resolved")}  # fmt: skip
    assert len(_sent(everything)) == 8


def test_secrets_never_reach_logs_state_metrics_or_deliveries(caplog) -> None:
    slack_secret = "T000/B000/XOXB-SUPER-SECRET-PATH"
    pd_secret = "PD-ROUTING-KEY-SECRET-0123456789"
    down = Receiver(up=False)
    rejecting = Receiver(status=400, reply=pd_secret.encode())  # even an echoing server
    metrics = OperatorMetrics()
    options = DeliveryOptions(attempts=2, backoff=0.01, backoff_max=0.01, rate_per_minute=6000)
    caplog.set_level(logging.DEBUG)
    notifier = AlertNotifier(
        _quick_spec(),
        [SinkBinding(SlackSink("oncall-slack", SecretStr(f"{down.url}/{slack_secret}")), ALL),
         SinkBinding(PagerDutySink("pd", SecretStr(pd_secret), rejecting.url), ALL)],
        metrics=metrics, options=options,
    )  # fmt: skip
    try:
        notifier.observe(_bad_pass(T0))
        wait_until(lambda: notifier.dropped == 8, 10, "every delivery dropped")
    finally:
        notifier.close()
        rejecting.stop()
    outputs = [
        caplog.text,
        json.dumps(notifier.state()),
        json.dumps([d.to_json() for d in notifier.deliveries]),
        generate_latest(metrics.registry).decode(),
        repr(notifier.__dict__),
    ]
    assert "Dropped alert shop/cart/sloBreach" in caplog.text
    for text in outputs:
        assert slack_secret not in text and pd_secret not in text and "XOXB" not in text
        # The Slack URL is the secret, address included (its bare port digits could
        # appear in a metric's value by chance; ":port" only in an address).
        assert down.url not in text and f":{down.port}" not in text


def test_an_alert_resolves_only_after_it_stayed_clear(tmp_path) -> None:
    receiver = Receiver()
    policy = spec(alertRules={"sloBreachFor": 0, "resolveAfter": "10m"})
    notifier = AlertNotifier(policy, [SinkBinding(WebhookSink("hook", receiver.url), ALL)],
                             options=FAST)  # fmt: skip
    breach: dict[str, Any] = {"demand": 3500.0, "upper": 5000.0, "ready": 3}
    try:
        notifier.observe(report(T0, **breach))
        notifier.observe(report(T0 + 300))  # clear for 5 min ...
        notifier.observe(report(T0 + 600, **breach))  # ... and back: still the same alert
        notifier.observe(report(T0 + 900))
        saved = json.loads(json.dumps(notifier.state()))
        assert saved["clearing"] == {"shop/cart/sloBreach": T0 + 900}
        notifier.observe(report(T0 + 1200))
        assert notifier.flush(10)
        assert list(_sent(receiver)) == [("shop/cart/sloBreach", "firing")]
        notifier.observe(report(T0 + 1500))  # clear for 10 min: resolved
        assert notifier.flush(10)
        # While clearing, the condition's return keeps the alert (no new hold to wait out).
        held = spec(alertRules={"sloBreachFor": "10m", "resolveAfter": "10m"})
        again = AlertNotifier(held, [SinkBinding(WebhookSink("hook", receiver.url), ALL)],
                              options=FAST)  # fmt: skip
        for minute, bad in ((0, 1), (10, 1), (20, 0), (25, 1), (30, 0), (35, 0), (40, 0)):
            again.observe(report(T0 + 7200 + minute * 60, **(breach if bad else {})))
        assert again.flush(10)
        again.close()
    finally:
        notifier.close()
        receiver.stop()
    assert [(a["status"], a["at"][11:16]) for b in receiver.bodies() for a in b["alerts"]] == [
        ("firing", "08:00"), ("resolved", "08:25"),
        ("firing", "10:10"), ("resolved", "10:40"),  # fired at 10 min; cleared 30..40
    ]  # fmt: skip


def test_the_rate_limit_holds_back_a_second_request() -> None:
    metrics = OperatorMetrics()
    receiver = Receiver()
    options = DeliveryOptions(rate_per_minute=1, batch=1)  # one request a minute per sink
    notifier = AlertNotifier(_quick_spec(), [SinkBinding(WebhookSink("hook", receiver.url), ALL)],
                             metrics=metrics, options=options)  # fmt: skip
    try:
        notifier.observe(_bad_pass(T0))  # four alerts, one request each
        wait_until(lambda: len(receiver.received) == 1, 10, "the first request")
        assert not notifier.flush(1.0)  # the others wait for a token, off the loop's thread
        assert len(receiver.received) == 1
    finally:
        notifier.close(timeout=0.0)
        receiver.stop()
    assert len(receiver.received) == 1 and notifier.dropped == 3  # counted, not lost
    assert 'reason="ShuttingDown"' in generate_latest(metrics.registry).decode()


def test_the_control_loop_feeds_the_notifier_and_carries_on_past_a_dead_sink() -> None:
    policy = spec(alertRules={"unavailableFor": "5m"})
    down = Receiver(up=False)
    options = DeliveryOptions(attempts=2, backoff=0.01, backoff_max=0.01, rate_per_minute=6000)
    notifier = AlertNotifier(policy, [SinkBinding(WebhookSink("gone", down.url), ALL)],
                             options=options)  # fmt: skip
    day = 86400.0
    history = StaticHistory(generate_trace(T0 - 15 * day, 15, 60.0, 1500.0, [], [], seed=3))
    clock = ManualClock(T0)
    loop = ControlLoop(
        policy, targets={"cart": RecordingTarget("cart", 3)}, history=history,
        calendar=Calendar, clock=clock, forecaster=lambda: HeadroomForecaster(policy.forecast),
        sink=ListSink(), observer=notifier,
    )  # fmt: skip
    try:
        history.down = True  # Prometheus is gone: after 5 min, signalsUnavailable
        reports = []
        for _ in range(4):
            reports.append(loop.reconcile())
            clock.sleep(180)
        wait_until(lambda: notifier.dropped == 1, 10, "the dead sink's drop")
        assert [r.demand_now for r in reports] == [None] * 4  # every pass ran to its end
        (firing,) = json.loads(json.dumps(notifier.state()))["firing"]
        assert firing["name"] == "signalsUnavailable" and firing["deliveredTo"] == []
    finally:
        notifier.close()
