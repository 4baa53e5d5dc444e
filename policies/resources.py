"""CapacityPolicy and DemandEvent custom resources <-> the core's values. Pure.

Called by the operator's CapacityPolicy controller (``controller/operator/``) and by the
CLI (``headroom calendar import``, ``headroom surge``); it does no I/O, so it is tested
without a cluster and the cluster-facing code stays thin.

- :func:`policy_from_resource` turns a CapacityPolicy object into a :class:`PolicySpec`
  (its ``name`` and targets' ``namespace`` default to the object's; a target in another
  namespace or of the local mode's kind is refused; the labels events select the policy
  by are its ``metadata.labels``, ``headroom.dev/policy: <name>`` and
  ``spec.eventSelector``). Bad specs raise one :class:`PolicyError` line naming the field.
- :func:`calendar_from_resources` turns DemandEvent objects into one :class:`Calendar`,
  keeping those whose ``policySelector`` selects the policy's labels;
  :func:`read_demand_events` keeps going past a bad event and returns its error too.
- :func:`imported_resources` / :func:`surge_resource` build the DemandEvents the CLI
  writes, with stable names and the labels that mark them as managed.
- :class:`CapacityPolicyStatus` is the status the CRD's schema is generated from
  (:mod:`headroom.policies.crd_schema`); :func:`driver_state_to_status` and
  :func:`driver_state_from_status` keep the driver's state in it across restarts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from headroom.policies.calendar import Calendar, DemandEvent
from headroom.policies.calendars import event_from_resource, event_to_resource
from headroom.policies.calendars.yaml import API_VERSION
from headroom.policies.calendars.yaml import KIND as EVENT_KIND
from headroom.policies.driver import DriverState
from headroom.policies.errors import CalendarError, PolicyError, excerpt, field_error, must_be
from headroom.policies.planner.values import PlannerState
from headroom.policies.policy import PolicySpec, TargetKind, _field_path
from headroom.policies.validation import first_error

POLICY_KIND = "CapacityPolicy"
POLICY_LABEL = "headroom.dev/policy"  # every CapacityPolicy is selectable by its name
MANAGED_BY_LABEL = "headroom.dev/managed-by"
CALENDAR_LABEL = "headroom.dev/calendar"
IMPORTED_BY = "calendar-import"
SURGED_BY = "surge"
TARGET_LABEL = "headroom.dev/target"  # on a surge event: the target it was raised for
SURGE_LABEL = "surge"  # in a surge event's spec.labels: learned apart from real events
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return dict(meta) if isinstance(meta, dict) else {}


def describe_object(obj: Mapping[str, Any], kind: str) -> str:
    """``CapacityPolicy shop/cart``: how messages name a resource."""
    meta = _meta(obj)
    ns, name = meta.get("namespace"), meta.get("name")
    who = f"{ns}/{name}" if isinstance(ns, str) and ns else str(name or "?")
    return f"{kind} {who}"


# ---- CapacityPolicy ------------------------------------------------------------------


def policy_labels(obj: Mapping[str, Any], spec: PolicySpec | None = None) -> dict[str, str]:
    """The labels a DemandEvent's ``policySelector`` is matched against: the object's
    ``metadata.labels``, ``headroom.dev/policy: <metadata.name>`` and ``spec.eventSelector``
    (the latter wins)."""
    meta = _meta(obj)
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if isinstance(v, str)}
    if isinstance(meta.get("name"), str):
        labels[POLICY_LABEL] = meta["name"]
    if spec is not None:
        labels.update(spec.event_selector)
    return labels


def policy_from_resource(obj: Mapping[str, Any]) -> PolicySpec:
    """The :class:`PolicySpec` of a CapacityPolicy object, or one :class:`PolicyError` line
    (``CapacityPolicy shop/cart: spec.targets[0:web].capacityPerUnit: must be > 0, not 0``).

    ``spec.name`` defaults to ``metadata.name`` and each target's ``namespace`` to the
    policy's; the returned spec's ``event_selector`` holds :func:`policy_labels`, so the
    driver's and planner's own event filters select what the policy's labels select."""
    source = describe_object(obj, POLICY_KIND)
    if not isinstance(obj, Mapping):
        raise PolicyError(f"{source}: expected an object")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise PolicyError(field_error(source, "spec", "is required"))
    meta = _meta(obj)
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else None
    raw: dict[str, Any] = dict(spec)
    if isinstance(meta.get("name"), str):
        raw.setdefault("name", meta["name"])
    if namespace and isinstance(raw.get("targets"), list):
        raw["targets"] = [
            {"namespace": namespace, **t} if isinstance(t, dict) else t for t in raw["targets"]
        ]
    try:
        parsed = PolicySpec.model_validate(raw)
    except ValidationError as err:
        where, problem = first_error(err, lambda loc: "spec." + _field_path(loc, raw))
        raise PolicyError(field_error(source, where, problem)) from None
    for i, target in enumerate(parsed.targets):
        where = f"spec.targets[{i}:{target.name}]"
        if target.kind is TargetKind.LOCAL_REDIS_CLUSTER:
            raise PolicyError(
                field_error(
                    source,
                    f"{where}.kind",
                    must_be(
                        "a cluster object's kind (LocalRedisCluster is the local mode's)",
                        target.kind.value,
                    ),
                )
            )
        if namespace and target.namespace != namespace:
            raise PolicyError(
                field_error(
                    source,
                    f"{where}.namespace",
                    must_be(f"the policy's namespace {excerpt(namespace)}", target.namespace),
                )
            )
    return parsed.model_copy(update={"event_selector": policy_labels(obj, parsed)})


# ---- DemandEvent ---------------------------------------------------------------------


@dataclass(frozen=True)
class EventRead:
    """DemandEvent objects read: the good ones as a calendar, and one error per bad one."""

    calendar: Calendar
    errors: tuple[CalendarError, ...]


def read_demand_events(
    objs: Iterable[Mapping[str, Any]], *, namespace: str | None = None
) -> EventRead:
    """Every DemandEvent object (in ``namespace``, if given) as an event; a bad one is
    skipped and its one-line error kept, so one typo does not hide the other events."""
    events: list[DemandEvent] = []
    errors: list[CalendarError] = []
    for i, obj in enumerate(objs):
        meta = _meta(obj)
        if namespace is not None and meta.get("namespace") not in (None, namespace):
            continue
        try:
            events.append(event_from_resource(dict(obj), describe_object(obj, EVENT_KIND), i))
        except CalendarError as err:
            errors.append(err)
    return EventRead(Calendar.of(events), tuple(errors))


def calendar_from_resources(
    objs: Iterable[Mapping[str, Any]],
    policy_labels: Mapping[str, str] | None = None,
    *,
    namespace: str | None = None,
) -> Calendar:
    """The DemandEvents (in ``namespace``, if given) whose ``policySelector`` selects
    ``policy_labels`` (an empty selector selects every policy; ``None``: keep all), as one
    :class:`Calendar`. The first bad event raises its :class:`CalendarError` line."""
    read = read_demand_events(objs, namespace=namespace)
    if read.errors:
        raise read.errors[0]
    if policy_labels is None:
        return read.calendar
    return read.calendar.for_labels(policy_labels)


def label_value(text: str) -> str:
    """``text`` as a Kubernetes label value (<= 63 of ``[-A-Za-z0-9_.]``, alphanumeric ends)."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63].strip("-_.")
    return value if _LABEL_VALUE.match(value) else "x"


def _slug(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-") or "event"


def event_object_name(event: DemandEvent, calendar_name: str) -> str:
    """A stable DemandEvent name: a slug of the event's name and a hash of its identity
    (calendar, name, start), so importing the same file again finds the same objects and a
    recurring event's occurrences get one each."""
    identity = f"{calendar_name}\0{event.name}\0{event.start:.3f}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"{_slug(event.name, 40)}-{digest}"


def imported_resources(
    calendar: Calendar, calendar_name: str, namespace: str
) -> list[dict[str, Any]]:
    """The DemandEvents for every event of ``calendar``, labelled as managed by
    ``headroom calendar import`` for ``calendar_name``, in start order."""
    labels = {MANAGED_BY_LABEL: IMPORTED_BY, CALENDAR_LABEL: label_value(calendar_name)}
    out: dict[str, dict[str, Any]] = {}
    for event in calendar.events:
        name = event_object_name(event, calendar_name)
        obj = event_to_resource(event, name, namespace, labels)
        # Always explicit: without spec.labels a reader takes metadata.labels, and the
        # management labels would become the event's (and steer what is learned).
        obj["spec"]["labels"] = dict(event.labels)
        out[name] = obj
    return list(out.values())


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def surge_resource(
    *,
    policy: str,
    target: str,
    factor: float,
    duration: float,
    now: float,
    namespace: str,
    reason: str = "",
) -> dict[str, Any]:
    """An immediate DemandEvent: from ``now`` for ``duration`` seconds demand is expected
    at ``factor`` times normal, for the CapacityPolicy named ``policy``."""
    if not factor > 1 or factor != factor:
        raise CalendarError(field_error("surge", "factor", must_be("> 1", factor)))
    if not duration > 0:
        raise CalendarError(field_error("surge", "for", must_be("> 0", duration)))
    stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%Y%m%d-%H%M%S")
    spec: dict[str, Any] = {
        "name": f"surge {target} x{factor:g}",
        "kind": "custom",
        "start": _rfc3339(now),
        "end": _rfc3339(now + duration),
        "labels": {SURGE_LABEL: "true"},
        "expectation": {"multiplier": factor},
        "policySelector": {"matchLabels": {POLICY_LABEL: policy}},
    }
    if reason:
        spec["description"] = reason
    return {
        "apiVersion": API_VERSION,
        "kind": EVENT_KIND,
        "metadata": {
            "name": f"surge-{_slug(target, 30)}-{stamp}",
            "namespace": namespace,
            "labels": {
                MANAGED_BY_LABEL: SURGED_BY,
                POLICY_LABEL: label_value(policy),
                TARGET_LABEL: label_value(target),
            },
        },
        "spec": spec,
    }


# ---- CapacityPolicy status -----------------------------------------------------------


class _Status(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class ForecastPoint(_Status):
    """The forecast at one time."""

    at: datetime
    p50: float  # median demand, QPS
    p90: float  # the 90th percentile, QPS


class ForecastSummary(_Status):
    """The forecast the last pass used, summarised for the next hours."""

    made_at: datetime
    quantile: float  # the quantile provisioned for (spec.forecast.quantile)
    demand_now: float | None = None  # the newest sample, QPS
    peak_p90: float | None = None  # highest p90 in the summarised hours, QPS
    peak_at: datetime | None = None
    points: list[ForecastPoint] = []  # hourly, the next hours


class PlannedActionStatus(_Status):
    """One order on the planned capacity timeline."""

    at: datetime  # when it will be ordered
    ready_by: datetime | None = None  # when the units must serve
    target: str
    from_units: int = Field(ge=0)
    to_units: int = Field(ge=0)
    reason: str  # names the event and the numbers
    event: str | None = None  # the DemandEvent it is for
    capped: bool = False  # a bound or the budget cut it


class ActionRecord(_Status):
    """One thing the operator did (or, in dryRun, would have done)."""

    at: datetime
    target: str
    from_units: int = Field(ge=0)
    to_units: int = Field(ge=0)
    reason: str
    event: str | None = None
    result: Literal["Scaled", "DryRun", "Capped", "ScaleFailed"] = "Scaled"


class TargetStatus(_Status):
    """A target as last seen."""

    name: str
    kind: str
    current_units: int = Field(ge=0)  # asked for now (spec.replicas, spec.masters, minReplicas)
    ready_units: int = Field(ge=0)  # serving
    required_units: int | None = Field(None, ge=0)  # the plan's size for now
    busy: bool = False  # a change is still converging
    detail: str = ""  # e.g. migrating slots 1200/5461


class TargetDriverState(_Status):
    """What the driver remembers about one target between passes."""

    last_scale_out: datetime | None = None
    last_scale_in: datetime | None = None
    unit_seconds_used: float = Field(0.0, ge=0)  # in the current budget period
    period_start: datetime | None = None  # of the budget period
    hpa_floor: int | None = Field(None, ge=0)  # the user's own HPA minReplicas, restored after


class DriverStatus(_Status):
    """The driver's state, so a restart or a spec update loses nothing."""

    last_tick: datetime | None = None
    next_full: datetime | None = None  # the next full planning pass
    targets: dict[str, TargetDriverState] = {}  # by target name


class ConditionStatus(_Status):
    """A metav1.Condition: Ready, Forecasting, MetricsUnavailable, Scaling, CapacityCapped."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str  # CamelCase, e.g. InvalidSpec
    message: str = ""
    last_transition_time: datetime
    observed_generation: int | None = Field(None, ge=0)


class CapacityPolicyStatus(_Status):
    """What the operator last observed, planned and did."""

    observed_generation: int | None = Field(None, ge=0)  # the metadata.generation described
    target_count: int = Field(0, ge=0)  # the Targets printer column
    next_action: str = ""  # the first planned action, one line (the Next action column)
    forecast: ForecastSummary | None = None
    targets: list[TargetStatus] = []
    plan: list[PlannedActionStatus] = []  # the planned capacity timeline, next actions first
    last_actions: list[ActionRecord] = []  # newest last, a bounded number
    driver: DriverStatus = DriverStatus()
    conditions: list[ConditionStatus] = []


CONDITION_TYPES = ("Ready", "Forecasting", "MetricsUnavailable", "Scaling", "CapacityCapped")


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


def _epoch(when: datetime | None) -> float | None:
    return None if when is None else when.timestamp()


# PlannerState's times, kept in status as datetimes (its other field is a plain number).
_PLANNER_TIMES = ("last_scale_out", "last_scale_in", "period_start")


def _planner_fields(state: Any, convert: Callable[[Any], Any]) -> dict[str, Any]:
    """PlannerState's fields of ``state`` (a PlannerState or a TargetDriverState), with
    ``convert`` applied to the times: the one mapping both ways go through."""
    times = {name: convert(getattr(state, name)) for name in _PLANNER_TIMES}
    return {**times, "unit_seconds_used": state.unit_seconds_used}


def driver_state_to_status(
    state: DriverState, hpa_floors: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """``status.driver`` for a :class:`DriverState` (and the users' HPA floors by target)."""
    floors = dict(hpa_floors or {})
    targets = {
        name: TargetDriverState(**_planner_fields(p, _when), hpa_floor=floors.pop(name, None))
        for name, p in state.planner.items()
    }
    targets.update({name: TargetDriverState(hpa_floor=floor) for name, floor in floors.items()})
    status = DriverStatus(
        last_tick=_when(state.last_tick), next_full=_when(state.next_full), targets=targets
    )
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def driver_state_from_status(status: Any) -> tuple[DriverState, dict[str, int]]:
    """The :class:`DriverState` and the HPA floors kept in ``status.driver``; an absent or
    unreadable one (an older operator wrote it) is a fresh state, never an error."""
    try:
        driver = DriverStatus.model_validate(status or {})
    except ValidationError:
        return DriverState(), {}
    planner = {n: PlannerState(**_planner_fields(t, _epoch)) for n, t in driver.targets.items()}
    floors = {n: t.hpa_floor for n, t in driver.targets.items() if t.hpa_floor is not None}
    state = DriverState(
        planner=planner, last_tick=_epoch(driver.last_tick), next_full=_epoch(driver.next_full)
    )
    return state, floors
