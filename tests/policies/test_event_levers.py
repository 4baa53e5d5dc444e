"""A policy option for spending less on events (issue 11): a quantile of its own for an
event's uncertain size (``forecast.eventQuantile``). The other, scale-in during an event
once the nowcast has measured it (``scaleIn.duringEvents: nowcast``), is checked on the
rule in tests/policies/test_rule_options.py."""

from __future__ import annotations

import numpy as np

from headroom.policies.calendar import Calendar, DemandEvent, EventKind
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import Forecasting
from headroom.policies.synthetic import generate_trace


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
