"""The loop reports the newest p99 latency its latency source measured (for the SLO-breach
alert), and says nothing when the source is down or absent — never a made-up value."""

from __future__ import annotations

import numpy as np

from headroom.controller.loop import ControlLoop, ListSink
from headroom.policies.calendar import Calendar
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import parse_policy
from headroom.policies.series import Series
from tests.controller.test_loop import ManualClock, RecordingTarget, StaticHistory

T0 = 1_700_006_400.0


def _loop(latency: StaticHistory | None) -> ControlLoop:
    spec = parse_policy({"targets": [{"name": "cart", "capacityPerUnit": 1000}]})
    t = np.arange(T0 - 86400.0, T0, 60.0)
    return ControlLoop(
        spec,
        targets={"cart": RecordingTarget("cart", 2)},
        history=StaticHistory(Series(t, np.full(t.shape, 1500.0))),
        calendar=Calendar,
        clock=ManualClock(T0),
        forecaster=lambda: HeadroomForecaster(spec.forecast),
        sink=ListSink(),
        latency=latency,
    )


def test_the_newest_measured_p99_is_reported() -> None:
    t = np.arange(T0 - 600.0, T0, 60.0)
    v = np.full(t.shape, 0.001)
    v[-1], v[-2] = np.nan, 0.004  # the newest sample is a gap: the last measured one counts
    assert _loop(StaticHistory(Series(t, v))).reconcile().p99_now == 0.004


def test_no_source_or_a_down_source_reports_no_latency() -> None:
    t = np.arange(T0 - 600.0, T0, 60.0)
    down = StaticHistory(Series(t, np.full(t.shape, 0.004)), down=True)
    assert _loop(down).reconcile().p99_now is None
    assert _loop(None).reconcile().p99_now is None
