"""No scale-in once an event's pre-scale may be under way: a reshard undone is a reshard lost."""

from __future__ import annotations

import numpy as np

from headroom.policies.calendar import Calendar
from headroom.policies.forecast.base import Forecast
from headroom.policies.planner.entry import decide
from headroom.policies.planner.values import PlannerState
from tests.policies.test_planner import EVENT, STEP, T0, at, policy


def _quiet_then_event() -> Forecast:
    """Low demand until the event's ramp, a peak during it (as the forecaster would say)."""
    t = T0 + np.arange(0, 12 * 3600, STEP)
    d = np.full(t.size, 50e3)
    inside = (t >= EVENT.window_start) & (t < EVENT.end)
    d[inside] = 600e3
    drivers = tuple(EVENT if x else None for x in inside)
    return Forecast(t, d, {0.5: d, 0.9: d}, drivers)


def test_no_scale_in_within_the_longest_lead_before_an_event() -> None:
    spec = policy(
        target={"provisioning": {"fixedSeconds": "40m"}, "maxUnits": 10},
        leadTime="20m",
        scaleIn={"cooldown": "10m", "stabilization": "0s", "interval": "0s"},
    )
    target = spec.targets[0]
    calendar = Calendar.of([EVENT])
    longest = target.provisioning.delay(target.min_units, target.max_units) + spec.lead_time
    # 10 units ordered (say, for the event), forecast low until the ramp: holding is right
    # from the moment a pre-scale for the event may already have been ordered...
    inside = EVENT.window_start - longest + 60
    held = decide(_quiet_then_event(), spec, target, now=inside, current_units=10,
                  calendar=calendar, state=PlannerState())  # fmt: skip
    assert held.desired_units == 10, held.reason
    # ...while well before that window the same surplus is scaled in.
    before = at(13)
    assert before < EVENT.window_start - longest
    shrunk = decide(_quiet_then_event(), spec, target, now=before, current_units=10,
                    calendar=calendar, state=PlannerState())  # fmt: skip
    assert shrunk.desired_units < 10, shrunk.reason
