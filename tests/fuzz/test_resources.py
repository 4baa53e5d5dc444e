"""Fuzzing CapacityPolicy and DemandEvent objects through both gates a cluster has.

Every case is a valid sample object (``charts/headroom/examples``) with one mistake: a
wrong type at any field, an unknown key anywhere, a required field dropped, an unknown
target kind, end before start, minUnits above maxUnits, a target in another namespace.
Each must be refused by the chart's CRD schema (the API emulator's admission: a 422
naming ``spec.<field>``, so nothing is stored), or -- when the schema cannot see the
mistake -- by the shared validation the operator runs (``policy_from_resource`` /
``calendar_from_resources``) with one printable line naming the field, before anything
is applied. An unknown key, which a server prunes, must be reported as unknown (a
``fieldValidation=Strict`` write, kubectl's default, is refused) and is refused by the
shared validation that ``headroom calendar import`` runs on a file. And whatever the
schema refuses the model refuses too (one model, not two): the schema is never the only
thing between a user and a bad spec. Valid variations pass both.

Admission runs in-process (``tests.harness.schema.admit``, the emulator's own code), so
~1,500 cases take a few seconds; ``--hypothesis-profile=long`` runs ten times as many.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headroom.policies.errors import InputError
from headroom.policies.resources import calendar_from_resources, policy_from_resource
from tests.harness.schema import admit
from tests.support.chart import chart_crd, example

SCALE = max(1, (settings.default.max_examples if settings.default else 100) // 100)


def fuzz(n: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(
        max_examples=n * SCALE,
        deadline=None,
        derandomize=SCALE == 1,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )


def _schema(name: str) -> dict[str, Any]:
    crd = chart_crd(name)
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


POLICY_SCHEMA = _schema("capacitypolicies.headroom.dev")
EVENT_SCHEMA = _schema("demandevents.headroom.dev")


def _with_ns(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["metadata"]["namespace"] = "shop"
    return obj


POLICY = _with_ns(example("capacitypolicy-shop.yaml"))
EVENT = _with_ns(example("demandevent-launch.yaml"))


def wrong_for(value: Any) -> st.SearchStrategy[Any]:
    """Values no field holding ``value`` accepts: another JSON shape, or (every number in
    the samples has a lower bound of 0 or more) a negative number."""
    if isinstance(value, dict):
        return st.sampled_from([[1], "ten", 5])
    if isinstance(value, list):
        return st.sampled_from([{"x": 1}, "ten", 5])
    if isinstance(value, bool):
        return st.sampled_from([[1], {"x": 1}, "maybe", 2])
    if isinstance(value, int | float):
        return st.sampled_from([[1], {"x": 1}, -1, -0.5, "ten"])
    return st.sampled_from([[1], {"x": 1}])


def leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every value under ``node`` (mappings and lists, and the values)."""
    out = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += leaves(value, (*path, i))
    return out


def objects(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every mapping under ``node`` (where an unknown key can go)."""
    out = [path] if isinstance(node, dict) else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += objects(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += objects(value, (*path, i))
    return out


def at(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def shown(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path if not isinstance(p, int))


@st.composite
def mistake(
    draw: st.DrawFn, base: dict[str, Any], extra: list[str]
) -> tuple[dict[str, Any], str, str]:
    """(object, what was done, the field a message must name)."""
    obj = copy.deepcopy(base)
    spec = obj["spec"]
    how = draw(st.sampled_from(["wrong", "unknown", "drop", *extra]))
    if how == "wrong":
        path = draw(st.sampled_from(leaves(spec)))
        value = draw(wrong_for(at(spec, path)))
        parent = at(spec, path[:-1])
        parent[path[-1]] = value
        return obj, f"{shown(path)}={value!r}", str(path[-1]) if isinstance(path[-1], str) else ""
    if how == "unknown":
        path = draw(st.sampled_from(objects(spec)))
        key = draw(st.sampled_from(["colour", "replicas", "maxunits", "Start"]))
        at(spec, path)[key] = 1
        return obj, f"unknown {shown((*path, key))}", key
    if how == "drop":
        required = [("targets",), ("targets", 0, "name"), ("targets", 0, "capacityPerUnit")]
        if "start" in spec:
            required = [("start",), ("duration",)]
        path = draw(st.sampled_from(required))
        del at(spec, path[:-1])[path[-1]]
        return obj, f"drop {shown(path)}", "" if path == ("duration",) else str(path[-1])
    if how == "kind":
        spec["targets"][0]["kind"] = draw(
            st.sampled_from(["Pod", "Job", "redis", "LocalRedisCluster"])
        )
        return obj, "kind", "kind"
    if how == "bounds":
        spec["targets"][0]["minUnits"], spec["targets"][0]["maxUnits"] = 9, 4
        return obj, "bounds", "targets"
    if how == "namespace":
        spec["targets"][1]["namespace"] = "other"
        return obj, "namespace", "namespace"
    if how == "end-before-start":
        spec.pop("duration")
        spec["end"] = draw(st.sampled_from(["2026-09-10T18:00:00", "2026-09-10T19:00:00"]))
        return obj, "end", ""
    if how == "event-kind":
        spec["kind"] = draw(st.sampled_from(["Flash Sale!", "", "-x-", 7]))  # not kind names
        return obj, "event-kind", "kind"
    raise AssertionError(how)


def check(
    obj: dict[str, Any], schema: dict[str, Any], read: Callable[[dict[str, Any]], Any], field: str
) -> str:
    """Which gate refused ``obj``; fails when none did or the message is not one line."""
    unknown: list[str] = []
    admitted, causes = admit(copy.deepcopy(obj), schema, unknown)
    model_error: InputError | None = None
    try:
        read(obj)
    except InputError as err:
        model_error = err
    if model_error is not None:
        message = str(model_error)
        assert "\n" not in message and message.isprintable(), message
        assert field in message, (field, message)
    if causes:
        assert all(c["field"].startswith("spec") for c in causes), causes
        if model_error is None:
            # The one leniency the model has over the schema is deliberate: YAML files may
            # write a scalar where a string or number is meant (`name: 618`, `multiplier:
            # true` is not one of them), which the CRD's JSON types do not allow.
            assert all(c["reason"] == "FieldValueTypeInvalid" for c in causes), causes
            assert all(isinstance(at(obj, _path(c["field"])), bool | int | float) for c in causes)
        return "crd"
    if unknown:
        assert model_error is not None, f"pruned {unknown} and the model took it"
        return "strict"
    assert model_error is not None, "neither the CRD schema nor the model refused it"
    return "model"


def _path(field: str) -> tuple[Any, ...]:
    out: list[Any] = []
    for part in field.replace("[", ".").replace("]", "").split("."):
        out.append(int(part) if part.isdigit() else part)
    return tuple(out)


def read_policy(obj: dict[str, Any]) -> Any:
    return policy_from_resource(obj)


def read_event(obj: dict[str, Any]) -> Any:
    return calendar_from_resources([obj])


@fuzz(600)
@given(mistake(POLICY, ["kind", "bounds", "namespace"]))
def test_bad_capacity_policies_are_refused(case: tuple[dict[str, Any], str, str]) -> None:
    obj, _, field = case
    check(obj, POLICY_SCHEMA, read_policy, field)


@fuzz(500)
@given(mistake(EVENT, ["end-before-start", "event-kind"]))
def test_bad_demand_events_are_refused(case: tuple[dict[str, Any], str, str]) -> None:
    obj, _, field = case
    check(obj, EVENT_SCHEMA, read_event, field)


@fuzz(300)
@given(
    capacity=st.one_of(st.integers(1, 10**6), st.floats(0.01, 1e6)),
    lead=st.one_of(st.integers(0, 3600), st.sampled_from(["90s", "1.5m", "2h", "500ms"])),
    step=st.one_of(st.integers(1, 10), st.sampled_from(["10%", "25%", "100%", "3"])),
    dry=st.booleans(),
    multiplier=st.floats(1.01, 50),
    hours=st.integers(1, 48),
)
def test_valid_variations_pass_both(
    capacity: float, lead: Any, step: Any, dry: bool, multiplier: float, hours: int
) -> None:
    obj = copy.deepcopy(POLICY)
    obj["spec"]["targets"][0]["capacityPerUnit"] = capacity
    obj["spec"].update(leadTime=lead, dryRun=dry, scaleIn={"stepUnits": step})
    _, causes = admit(copy.deepcopy(obj), POLICY_SCHEMA, [])
    assert causes == []
    assert policy_from_resource(obj).targets[0].capacity_per_unit == capacity
    event = copy.deepcopy(EVENT)
    event["spec"].update(duration=f"{hours}h", expectation={"multiplier": multiplier})
    _, causes = admit(copy.deepcopy(event), EVENT_SCHEMA, [])
    assert causes == []
    (e,) = calendar_from_resources([event]).events
    assert e.end - e.start == hours * 3600
