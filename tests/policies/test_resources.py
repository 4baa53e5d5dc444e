"""headroom.policies.resources: CapacityPolicy/DemandEvent objects -> the core's values."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from headroom.policies.calendar import Calendar, DemandEvent, EventKind
from headroom.policies.driver import DriverState
from headroom.policies.errors import CalendarError, PolicyError
from headroom.policies.planner.values import PlannerState
from headroom.policies.resources import (
    calendar_from_resources,
    driver_state_from_status,
    driver_state_to_status,
    event_object_name,
    imported_resources,
    policy_from_resource,
    read_demand_events,
    surge_resource,
)

POLICY: dict[str, Any] = {
    "apiVersion": "headroom.dev/v1alpha1",
    "kind": "CapacityPolicy",
    "metadata": {"name": "shop", "namespace": "shop", "labels": {"team": "cart"}},
    "spec": {
        "targets": [
            {"name": "cart", "kind": "RedisCluster", "capacityPerUnit": 1000, "minUnits": 3},
            {"name": "web", "kind": "HorizontalPodAutoscaler", "capacityPerUnit": 100},
        ],
        "eventSelector": {"app": "shop"},
    },
}


def event(name: str, ns: str = "shop", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "headroom.dev/v1alpha1",
        "kind": "DemandEvent",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"start": "2026-03-01T20:00:00Z", "duration": "2h", **spec},
    }


def policy(**changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(POLICY)
    obj["spec"].update(changes)
    return obj


def test_policy_takes_name_namespace_and_labels_from_the_object() -> None:
    spec = policy_from_resource(POLICY)
    assert spec.name == "shop"
    assert [(t.namespace, t.name) for t in spec.targets] == [("shop", "cart"), ("shop", "web")]
    assert spec.event_selector == {"team": "cart", "headroom.dev/policy": "shop", "app": "shop"}
    assert policy_from_resource(policy(name="Shop cache")).name == "Shop cache"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            policy(targets=[{"name": "cart", "capacityPerUnit": 0}]),
            "CapacityPolicy shop/shop: spec.targets[0:cart].capacityPerUnit: must be > 0, not 0",
        ),
        (
            policy(targets=[{"name": "cart", "capacityPerUnit": 1, "namespace": "other"}]),
            "CapacityPolicy shop/shop: spec.targets[0:cart].namespace: must be the policy's "
            "namespace 'shop', not 'other'",
        ),
        (
            policy(targets=[{"name": "c", "kind": "LocalRedisCluster", "capacityPerUnit": 1}]),
            "CapacityPolicy shop/shop: spec.targets[0:c].kind: must be a cluster object's kind "
            "(LocalRedisCluster is the local mode's), not 'LocalRedisCluster'",
        ),
        (
            policy(targets=[{"name": "c", "kind": "Pod", "capacityPerUnit": 1}]),
            "CapacityPolicy shop/shop: spec.targets[0:c].kind: must be one of 'Deployment', "
            "'HorizontalPodAutoscaler', 'LocalRedisCluster', 'RedisCluster', 'Scale', "
            "'ScaledObject' or 'StatefulSet', not 'Pod'",
        ),
        (policy(colour="red"), "CapacityPolicy shop/shop: spec.colour: is not a known field"),
        ({"metadata": {"name": "x"}}, "CapacityPolicy x: spec: is required"),
    ],
)
def test_bad_policies_are_one_line_naming_the_field(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as exc:
        policy_from_resource(obj)
    assert str(exc.value) == message


def test_events_select_policies_by_label_and_namespace() -> None:
    labels = policy_from_resource(POLICY).event_selector
    objs = [
        event("all"),
        event("mine", policySelector={"matchLabels": {"headroom.dev/policy": "shop"}}),
        event("team", selector={"matchLabels": {"team": "cart"}}),
        event("other", policySelector={"matchLabels": {"headroom.dev/policy": "web"}}),
        event("elsewhere", ns="ops"),
    ]
    cal = calendar_from_resources(objs, labels, namespace="shop")
    assert [e.name for e in cal.events] == ["all", "mine", "team"]
    assert len(calendar_from_resources(objs)) == 5


def test_one_bad_event_is_reported_and_the_others_kept() -> None:
    objs = [event("good"), event("bad", end="2026-03-01T19:00:00Z", duration=None)]
    objs[1]["spec"].pop("duration")
    read = read_demand_events(objs)
    assert [e.name for e in read.calendar.events] == ["good"]
    (err,) = read.errors
    assert str(err) == 'DemandEvent shop/bad: event "bad": end is before start'
    with pytest.raises(CalendarError, match="end is before start"):
        calendar_from_resources(objs)


def test_import_names_are_stable_and_distinct_per_occurrence() -> None:
    a = DemandEvent("Friday live", EventKind.LIVESTREAM, 1000.0, 2000.0)
    b = DemandEvent("Friday live", EventKind.LIVESTREAM, 1000.0 + 7 * 86400, 2000.0 + 7 * 86400)
    assert event_object_name(a, "shop") == event_object_name(a, "shop")
    assert event_object_name(a, "shop") != event_object_name(b, "shop")
    assert event_object_name(a, "shop") != event_object_name(a, "ops")
    assert event_object_name(a, "shop").startswith("friday-live-")
    objs = imported_resources(Calendar.of([a, b]), "Shop calendar!", "shop")
    assert objs[0]["metadata"]["labels"] == {
        "headroom.dev/managed-by": "calendar-import",
        "headroom.dev/calendar": "Shop-calendar",
    }
    # What is written reads back as the same events.
    assert calendar_from_resources(objs).events == Calendar.of([a, b]).events


def test_surge_event() -> None:
    obj = surge_resource(
        policy="shop", target="cart", factor=2, duration=1800, now=1.7e9, namespace="shop"
    )
    (e,) = calendar_from_resources([obj], {"headroom.dev/policy": "shop"}).events
    assert (e.start, e.end, e.expectation and e.expectation.multiplier) == (1.7e9, 1.7e9 + 1800, 2)
    with pytest.raises(CalendarError, match="surge: factor: must be > 1, not 1"):
        surge_resource(policy="p", target="t", factor=1, duration=60, now=0, namespace="n")


def test_driver_state_round_trips_through_the_status() -> None:
    state = DriverState(
        planner={
            "cart": PlannerState(
                last_scale_out=1.7e9, unit_seconds_used=3600.0, period_start=1.6e9
            ),
            "web": PlannerState(last_scale_in=1.70001e9),
        },
        last_tick=1.7e9 + 5,
        next_full=1.7e9 + 60,
    )
    status = driver_state_to_status(state, {"web": 4, "api": 2})
    assert status["targets"]["web"]["hpaFloor"] == 4
    assert status["lastTick"] == "2023-11-14T22:13:25Z"
    again, floors = driver_state_from_status(status)
    assert again.last_tick == state.last_tick and again.next_full == state.next_full
    assert again.planner["cart"] == state.planner["cart"]
    assert again.planner["web"] == state.planner["web"]
    assert floors == {"web": 4, "api": 2}
    assert driver_state_from_status({"targets": "garbage"}) == (DriverState(), {})
