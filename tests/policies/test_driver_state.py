"""The driver's state survives a trip through JSON (a CapacityPolicy status) unchanged."""

from __future__ import annotations

import json

import pytest

from headroom.policies.driver import DriverState, state_from_json, state_to_json
from headroom.policies.errors import PolicyError
from headroom.policies.planner import PlannerState


def test_state_round_trips_through_json_text() -> None:
    state = DriverState(
        {
            "redis/cart": PlannerState(1_800_000_000.0, None, 7200.5, 1_799_990_000.0),
            "deployment/shop/web": PlannerState(None, 1_800_000_600.0, 0.0, None),
        },
        last_tick=1_800_000_660.0,
        next_full=None,
    )
    text = json.dumps(state_to_json(state))
    assert state_from_json(json.loads(text)) == state
    assert state_from_json(state_to_json(DriverState())) == DriverState()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([], "status.driver:"),
        ({"targets": []}, "status.driver.targets:"),
        ({"targets": {"t": 3}}, "status.driver.targets.t:"),
        ({"targets": {"t": {"lastScaleOut": "soon"}}}, "status.driver.targets.t.lastScaleOut:"),
        ({"lastTick": True}, "status.driver.lastTick:"),
        ({"nextFull": float("nan")}, "status.driver.nextFull:"),
    ],
)
def test_a_malformed_state_names_the_field(raw: object, field: str) -> None:
    with pytest.raises(PolicyError) as info:
        state_from_json(raw)
    assert str(info.value).startswith(field)
    assert "\n" not in str(info.value)
