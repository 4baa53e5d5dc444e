"""Headroom's alerts in a real Alertmanager (Debian's, on loopback): they appear with the
documented labels, are grouped by policy into one notification, resolve, and a silence
created in Alertmanager silences them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headroom.controller.alerts.alertmanager import AlertmanagerSink
from headroom.controller.alerts.notifier import AlertNotifier, DeliveryOptions, SinkBinding
from headroom.policies.policy import AlertName
from tests.alerts.reports import report, spec
from tests.support.procs import wait_until
from tests.support.receivers import Receiver, start_alertmanager

pytestmark = [pytest.mark.alertmanager, pytest.mark.slow]
ALL = frozenset(n.value for n in AlertName)
FAST = DeliveryOptions(attempts=20, backoff=0.05, backoff_max=0.5, rate_per_minute=6000)


def _bad_pass(at: float):
    return report(at, demand=3500.0, upper=1500.0, ready=3, capped=True)


@pytest.fixture
def stack(tmp_path: Path):
    hook = Receiver()
    am = start_alertmanager(tmp_path / "am", webhook=hook.url + "/notify")
    yield am, hook
    am.stop()
    hook.stop()


def test_alerts_appear_grouped_resolve_and_can_be_silenced(stack) -> None:
    am, hook = stack
    policy = spec(alertRules={"forecastMissFor": 0, "sloBreachFor": 0})
    notifier = AlertNotifier(policy, [SinkBinding(AlertmanagerSink("team-am", am.url), ALL)],
                             options=FAST)  # fmt: skip
    now = time.time()
    try:
        notifier.observe(_bad_pass(now))
        assert notifier.flush(10)
        wait_until(lambda: len(am.alerts()) == 3, 15, "three Headroom alerts in Alertmanager")
        by_name = {a["labels"]["alertname"]: a for a in am.alerts()}
        assert set(by_name) == {"HeadroomForecastMiss", "HeadroomSloBreach",
                                "HeadroomCapacityCapped"}  # fmt: skip
        breach = by_name["HeadroomSloBreach"]
        assert breach["labels"] == {
            "alertname": "HeadroomSloBreach", "severity": "critical",
            "headroom_policy": "shop", "headroom_target": "cart",
        }  # fmt: skip
        assert breach["annotations"]["headroom_key"] == "shop/cart/sloBreach"
        assert breach["status"]["state"] == "active"
        # Grouped by headroom_policy: one notification to the team's receiver with all three.
        wait_until(lambda: len(hook.received) >= 1, 15, "Alertmanager's webhook notification")
        first = hook.bodies()[0]
        assert first["groupLabels"] == {"headroom_policy": "shop"}
        assert first["status"] == "firing" and len(first["alerts"]) == 3
        (group,) = am.get("/api/v2/alerts/groups")
        assert group["labels"] == {"headroom_policy": "shop"} and len(group["alerts"]) == 3

        notifier.observe(report(time.time()))  # all clear
        assert notifier.flush(10)
        wait_until(lambda: am.alerts() == [], 15, "the alerts resolved in Alertmanager")
        wait_until(lambda: any(b["status"] == "resolved" for b in hook.bodies()), 15,
                   "the resolved notification")  # fmt: skip

        # A silence made by a human in Alertmanager covers Headroom's next alerts.
        start = datetime.now(UTC)
        silence = am.post("/api/v2/silences", {
            "matchers": [{"name": "headroom_policy", "value": "shop", "isRegex": False,
                          "isEqual": True}],
            "startsAt": start.isoformat(), "endsAt": (start + timedelta(hours=1)).isoformat(),
            "createdBy": "oncall", "comment": "known: load test",
        })  # fmt: skip
        notified = len(hook.received)
        notifier.observe(_bad_pass(time.time()))
        assert notifier.flush(10)
        wait_until(lambda: len(am.alerts()) == 3, 15, "the alerts back in Alertmanager")
        for alert in am.alerts():
            assert alert["status"]["state"] == "suppressed"
            assert alert["status"]["silencedBy"] == [silence["silenceID"]]
        assert am.alerts(silenced="false") == []
        time.sleep(2.5)  # two group intervals: a notification would have gone out by now
        assert len(hook.received) == notified
    finally:
        notifier.close()


def test_firing_alerts_are_resent_so_alertmanager_keeps_them(stack) -> None:
    am, _hook = stack
    policy = spec(alertRules={"sloBreachFor": 0})
    sink = AlertmanagerSink("team-am", am.url, resend_interval=0.3)
    notifier = AlertNotifier(policy, [SinkBinding(sink, ALL)], options=FAST)
    try:
        notifier.observe(report(time.time(), demand=3500.0, upper=5000.0, ready=3))
        wait_until(lambda: len(notifier.deliveries) >= 3, 10, "two re-sends")
        assert {d.key for d in notifier.deliveries} == {"shop/cart/sloBreach"}
        assert all(d.ok for d in notifier.deliveries)
        assert len(am.alerts()) == 1
    finally:
        notifier.close()
