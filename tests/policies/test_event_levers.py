"""Two policy options for spending less on events (issue 11): scale-in during an event once
the nowcast has measured it (``scaleIn.duringEvents: nowcast``), and a quantile of its own
for an event's uncertain size (``forecast.eventQuantile``)."""

from __future__ import annotations

import numpy as np

from headroom.policies.calendar import Calendar, DemandEvent, EventKind
from headroom.policies.forecast.base import Forecast
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.planner.entry import plan_target
from headroom.policies.policy import Forecasting
from headroom.policies.synthetic import generate_trace
from tests.policies.test_planner import CAL, EVENT, STEP, T0, policy


def _overshot() -> Forecast:
    """Pre-scaled for 900k, but from 20:10 the (nowcast) forecast says the event runs at 400k."""
    t = T0 + np.arange(0, 14 * 3600, STEP)
    d = np.full(t.size, 150e3)
    d[(t >= EVENT.window_start) & (t < EVENT.end)] = 900e3
    d[(t >= EVENT.start + 600) & (t < EVENT.end)] = 400e3
    return Forecast(t, d * 0.9, {0.5: d * 0.9, 0.9: d})


def test_nowcast_mode_scales_in_during_the_event_after_one_stabilization() -> None:
    scale_in = {"cooldown": "30m", "stepUnits": 3, "interval": "5m", "stabilization": "15m"}
    fc = _overshot()
    for mode, first_in_after in (("hold", EVENT.end + 1800), ("nowcast", EVENT.start + 900)):
        spec = policy(scaleIn={**scale_in, "duringEvents": mode})
        plan = plan_target(fc, spec, spec.targets[0], now=T0, current_units=3, calendar=CAL)
        ins = [a for a in plan.actions if not a.is_scale_out and a.at > EVENT.window_start]
        assert ins and ins[0].at >= first_in_after, (mode, ins[:1])
        if mode == "nowcast":
            assert ins[0].at < EVENT.end  # while the event runs, down toward 400k's units
            assert min(a.to_units for a in ins if a.at < EVENT.end) >= 4  # never below the need


def test_the_event_quantile_is_the_rules_knob_and_leaves_the_forecast_band_alone() -> None:
    """``eventQuantile`` sizes the rule's pre-scale (policies/forecast/eventsize.py); the
    forecaster's band (what plan, status and forecastMiss read) stays at ``quantile``."""
    day = 86400.0
    start = 1_700_006_400.0
    events = [
        DemandEvent(f"e{d}", EventKind.LIVESTREAM, start + d * day + 20 * 3600,
                    start + d * day + 22 * 3600, ramp=1800)
        for d in (1, 3, 5, 8)
    ]  # fmt: skip
    trace = generate_trace(start, 8, 60.0, 1000.0, events, [2.0, 4.0, 3.0, 3.0], seed=2)
    cal = Calendar.of(events)
    now = start + 8 * day + 12 * 3600
    bands = {}
    for eq in (0.3, 0.9):
        spec = Forecasting(quantile=0.99, event_quantile=eq, history=14 * day)
        model = HeadroomForecaster(spec).fit(trace.before(now), cal)
        bands[eq] = model.predict(now, 12 * 3600, 60.0, (0.5, 0.99)).level(0.99)
    assert np.allclose(bands[0.3], bands[0.9])
