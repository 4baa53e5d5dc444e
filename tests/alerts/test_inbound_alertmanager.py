"""The inbound path end to end: a real Alertmanager whose webhook receiver points at
Headroom's ``/hooks/alertmanager`` (bearer token), a firing alert posted to Alertmanager's
API scales the mapped target up through the control loop, and resolving it ends the surge."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from headroom.controller.alerts.inbound import PATH, AlertmanagerReceiver, serve_inbound
from headroom.controller.loop import ControlLoop, ListSink
from headroom.controller.surge import LocalSurges
from headroom.policies.calendar import Calendar
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.synthetic import generate_trace
from tests.alerts.reports import spec
from tests.controller.test_loop import ManualClock, RecordingTarget, StaticHistory
from tests.support.procs import wait_until
from tests.support.receivers import start_alertmanager

pytestmark = [pytest.mark.alertmanager, pytest.mark.slow]
DAY = 86400.0
T0 = 1_700_006_400.0
TOKEN = "am-to-headroom-token"


def test_alertmanager_alert_triggers_a_surge_scale_up_and_its_resolve_ends_it(
    tmp_path: Path,
) -> None:
    policy = spec(forecast={"history": "14d", "horizon": "8h"},
                  alertRules={"surgeMaxFactor": 4, "surgeMaxDuration": "2h"})  # fmt: skip
    clock = ManualClock(T0 + 14 * DAY + 12 * 3600)
    surges = LocalSurges(base=Calendar, now=clock.now)
    receiver = AlertmanagerReceiver(lambda: {"shop": policy}, surges, token=SecretStr(TOKEN),
                                    now=clock.now)  # fmt: skip
    server = serve_inbound(receiver)
    am = start_alertmanager(tmp_path / "am", webhook=server.url(PATH), bearer=TOKEN)
    target = RecordingTarget("cart", 3)
    trace = generate_trace(T0, 15, 60.0, 1500.0, [], [], noise=0.05, seed=3)
    loop = ControlLoop(
        policy, targets={"cart": target}, history=StaticHistory(trace),
        calendar=surges.calendar, clock=clock,
        forecaster=lambda: HeadroomForecaster(policy.forecast), sink=ListSink(),
    )  # fmt: skip
    alert = {"labels": {"alertname": "CheckoutQpsJump", "headroom_policy": "shop",
                        "headroom_target": "cart", "headroom_factor": "3"},
             "annotations": {"summary": "checkout QPS doubled in 5 minutes"}}  # fmt: skip
    try:
        loop.reconcile()
        before = target.units
        assert before <= 3  # 1.5k QPS: two or three units are plenty
        am.post("/api/v2/alerts", [alert])
        wait_until(lambda: len(surges.active()) == 1, 20, "the surge from Alertmanager's webhook")
        (surge,) = surges.active()
        assert (surge.policy, surge.target, surge.factor) == ("shop", "cart", 3.0)
        assert surge.end - surge.start == 2 * 3600  # bounded by surgeMaxDuration
        clock.sleep(60)
        report = loop.reconcile()
        assert target.units > before, target.calls
        assert "surge CheckoutQpsJump" in target.calls[-1][1]
        plan = report.targets[0].plan
        assert plan is not None
        peak = int(plan.required.max())
        assert peak >= 5  # 4.5k QPS at 80 % of 1k per unit

        ended = dict(alert, endsAt=datetime.now(UTC).isoformat())
        am.post("/api/v2/alerts", [ended])
        wait_until(lambda: surges.active() == [], 20, "the resolve to end the surge")
        clock.sleep(60)
        after = loop.reconcile()
        plan = after.targets[0].plan
        assert plan is not None and int(plan.required.max()) < peak
        assert surges.calendar() == Calendar()
    finally:
        am.stop()
        server.stop()
