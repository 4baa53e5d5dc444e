"""A calendar change reaches the driver's next decision (the state's trip through a
CapacityPolicy status is tested with policies/resources.py)."""

from __future__ import annotations

from headroom.policies.calendar import Calendar, DemandEvent, EventKind
from headroom.policies.driver import (
    Cadence,
    Driver,
    SeriesPast,
)
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import parse_policy
from headroom.policies.synthetic import generate_trace


def test_a_new_event_is_forecast_at_the_next_tick_not_the_next_interval() -> None:
    """A DemandEvent created (or a surge started) between two forecast intervals changes
    the very next decision: the cached forecast is not kept past a calendar change."""
    day, t0 = 86400.0, 1_700_006_400.0
    spec = parse_policy(
        {
            "name": "shop",
            "targets": [{"name": "cart", "capacityPerUnit": 1000, "minUnits": 2,
                         "maxUnits": 20}],
            "forecast": {"history": "7d", "horizon": "6h", "defaultEventMultiplier": 3},
        }
    )  # fmt: skip
    trace = generate_trace(t0, 4, 300.0, 1500.0, [], [], noise=0.05, seed=5)
    driver = Driver(spec, HeadroomForecaster(spec.forecast), step=300.0, cadence=Cadence())
    now = t0 + 4 * day
    past = SeriesPast(trace.before(now))
    first = driver.decide(now, past, {"cart": 2}, Calendar(), with_plan=True)
    driver.commit(first, {"cart": first.targets["cart"].decision.desired_units})
    show = DemandEvent("flash sale", EventKind.PROMOTION, now + 1800, now + 5400)
    second = driver.decide(now + 60, past, {"cart": 2}, Calendar.of([show]), with_plan=True)
    assert first.forecast is not None and second.forecast is not None
    assert second.forecast is not first.forecast
    assert float(second.forecast.level(0.9).max()) > 2 * float(first.forecast.level(0.9).max())
