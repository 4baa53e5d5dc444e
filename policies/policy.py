"""The capacity policy schema: what Headroom keeps ahead of demand, and how.

One pydantic model serves the YAML policy file, the CapacityPolicy CRD ``spec``
(camelCase, as Kubernetes writes it) and the backtest simulator. Durations accept
seconds or strings like ``90s``, ``10m``, ``2h``, ``1d`` (``headroom.policies.quantities``
parses them, sizes and steps). Loading turns pydantic's errors into one-line
:class:`PolicyError` messages naming the file and the field.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from headroom.policies.bounds import (
    MAX_BYTES,
    MAX_DURATION,
    MAX_HORIZON,
    MAX_MULTIPLIER,
    MAX_PROVISIONING,
    MAX_QPS,
    MAX_UNITS,
)
from headroom.policies.errors import PolicyError, excerpt, field_error

# The plug-in names (generated from the registries by `make registry`), re-exported.
from headroom.policies.plugins import AlertSinkKind as AlertSinkKind
from headroom.policies.plugins import SourceKind as SourceKind
from headroom.policies.plugins import TargetKind as TargetKind
from headroom.policies.quantities import Bytes, Duration, Instant, parse_instant, parse_step
from headroom.policies.validation import (
    ICS,
    POLICY,
    LabelMap,
    decode_text,
    document_kind,
    first_error,
    load_yaml_documents,
)


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,  # 1e400 is infinity in YAML: refused (policies/bounds.py)
    )


class Provisioning(_Model):
    """How long new units take to serve: lead time is computed from this, per action."""

    # scheduling + boot + readiness of any change
    fixed_seconds: Duration = Field(60.0, le=MAX_PROVISIONING)
    # extra per unit added (pods start in parallel: often 0)
    per_unit_seconds: Duration = Field(0.0, le=3600.0)
    # Redis: dataset size that a reshard moves a share of
    data_bytes: Bytes = Field(0.0, ge=0, le=MAX_BYTES)
    # Redis: measured migration throughput
    reshard_bytes_per_second: Bytes = Field(50e6, gt=0, le=MAX_BYTES)

    def delay(self, from_units: int, to_units: int) -> float:
        """Seconds until ``to_units`` are ready when changing from ``from_units``."""
        added = max(0, to_units - from_units)
        seconds = self.fixed_seconds + self.per_unit_seconds * added
        if self.data_bytes and to_units > 0 and from_units != to_units:
            moved_share = abs(to_units - from_units) / max(to_units, from_units)
            seconds += self.data_bytes * moved_share / self.reshard_bytes_per_second
        return min(seconds, MAX_PROVISIONING)  # policies/bounds.py


class Target(_Model):
    """One thing Headroom sizes, in units (Redis masters, pod replicas, an HPA floor)."""

    name: str = Field(min_length=1)
    kind: TargetKind = TargetKind.DEPLOYMENT
    namespace: str = "default"
    api_version: str | None = None  # needed for kind Scale (e.g. cluster.x-k8s.io/v1beta1)
    scale_kind: str | None = None  # kind of the object behind a generic Scale target
    # QPS one unit serves within the SLO (declared)
    capacity_per_unit: float = Field(gt=0, le=MAX_QPS)
    learn_capacity: bool = False  # replace the declared value by the learned one when confident
    min_units: int = Field(1, ge=0, le=MAX_UNITS)
    max_units: int = Field(100, ge=1, le=MAX_UNITS)
    # most units added or removed per action; 0 = no limit
    max_step: int = Field(0, ge=0, le=MAX_UNITS)
    provisioning: Provisioning = Provisioning()
    labels: LabelMap = {}

    @model_validator(mode="after")
    def _bounds(self) -> Target:
        if self.min_units > self.max_units:
            raise ValueError(f"minUnits {self.min_units} is above maxUnits {self.max_units}")
        if self.kind is TargetKind.SCALE and not (self.api_version and self.scale_kind):
            raise ValueError("kind Scale needs apiVersion and scaleKind")
        return self


class MetricQuery(_Model):
    """Where a signal comes from; ``query`` is PromQL for source prometheus."""

    source: str = Field("redis", pattern=f"^({'|'.join(SourceKind)})$")
    query: str | None = None
    url: str | None = None
    # Source redis, in the operator: read the RedisCluster of this name in the policy's
    # namespace, with its own password (and TLS); the address comes from its pods.
    redis_cluster: str | None = Field(
        None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    )

    @model_validator(mode="after")
    def _cluster_source(self) -> MetricQuery:
        if self.redis_cluster is not None:
            if self.source != "redis":
                raise ValueError("redisCluster needs source redis")
            if self.url:
                raise ValueError("redisCluster and url are exclusive (the cluster has the address)")
        return self


class Metrics(_Model):
    qps: MetricQuery = MetricQuery()
    latency_p99: MetricQuery | None = None


class Slo(_Model):
    latency_p99_ms: float = Field(5.0, gt=0, le=MAX_DURATION * 1000)
    target_utilization: float = Field(0.8, gt=0, le=1)  # also the reactive HPA baseline's target


# Inside an event's window the forecast is provisioned at this share of the utilisation
# outside (forecast.eventTargetUtilization when unset): 0.8 x 0.8 = 0.64 by default.
EVENT_MARGIN = 0.8
# Outside events the forecast's median keeps this share of the SLO's margin (0: none, it
# is sized at 100 %: the reactive half's margin covers the measured level, the forecast
# adds only a rise within the lead time larger than that margin). On NASA (no events
# but one) half the margin (0.9 at 0.8) cost unit-hours that the same spent on the
# reactive half bought more minutes with.
FORECAST_MARGIN = 0.0


class Reactive(_Model):
    """The reactive half of the rule: the Kubernetes HPA v2 rule on measured demand."""

    target_utilization: float | None = Field(None, gt=0, le=1)  # None: the SLO's
    tolerance: float = Field(0.1, ge=0, lt=1)  # the HPA's: no change within this ratio
    # Away from events, when the history is bursty (often one sample past the tolerance
    # above its neighbours), scale up to the lowest need of this window (at most a fifth
    # of the provisioning delay): a burst shorter than the delay is over before what it
    # orders is ready. 0: the HPA's rule everywhere (its
    # behavior.scaleUp.stabilizationWindowSeconds, 0 by default).
    burst_window: Duration = Field(120.0, ge=0, le=1800.0)


class Forecasting(_Model):
    quantile: float = Field(0.9, gt=0, lt=1)  # provision for this forecast quantile
    # The quantile of an event's learned size its pre-scale buys (None: ``quantile``):
    # the knob trading unit-hours before event starts for minutes at them.
    event_quantile: float | None = Field(0.6, gt=0, lt=1)
    history: Duration = Field(28 * 86400.0, gt=0)  # how much history to learn from
    horizon: Duration = Field(24 * 3600.0, gt=0, le=MAX_HORIZON)
    # an event with no similar past event
    default_event_multiplier: float = Field(1.5, ge=1, le=MAX_MULTIPLIER)
    default_ramp: Duration = 1800.0  # pre-event ramp when the event does not say
    # The predictive half of the rule (units = max(reactive, predictive)); False: the
    # reactive half alone, i.e. the Kubernetes HPA.
    enabled: bool = True
    # Utilisation the forecast's median is provisioned at outside event windows (None:
    # the SLO's target utilisation) ...
    target_utilization: float | None = Field(None, gt=0, le=1)
    # ... and inside them, from the pre-event lead to the event's demand-determined end
    # (None: EVENT_MARGIN x the forecast's): the margin is bought where events are.
    event_target_utilization: float | None = Field(None, gt=0, le=1)


class ScaleIn(_Model):
    cooldown: Duration = 0.0  # after an event ends before scaling in (an option; 0: none)
    # Units removed per scale-in action: a number, or a share of the units ordered then
    # (``"10%"``, at least one unit); "100%" (the default) as the HPA.
    step_units: Annotated[int | str, BeforeValidator(parse_step)] = "100%"
    interval: Duration = 0.0  # between scale-in actions (an option; 0: none)
    # Scale-in goes to the highest need of this long a window (the HPA's stabilisation
    # window), the forecast's need within the lead time included.
    stabilization: Duration = 300.0
    # In an event's window: "follow" = no hold (capacity stays while the forecast or the
    # measured demand needs it); "hold" = no scale-in until end + cooldown; "nowcast" =
    # no scale-in until one stabilization after the start.
    during_events: Literal["follow", "hold", "nowcast"] = "follow"

    def step_for(self, units: int) -> int:
        """Units one scale-in action removes when ``units`` are ordered."""
        if isinstance(self.step_units, int):
            return self.step_units
        share = float(self.step_units.rstrip("%")) / 100.0
        return max(1, math.ceil(units * share - 1e-9))


class FreezeWindow(_Model):
    """No scale-in, and scale-out only for demand now, between ``start`` and ``end``."""

    start: Instant  # ISO-8601 with offset
    end: Instant
    reason: str = "freeze"

    @model_validator(mode="after")
    def _times(self) -> FreezeWindow:
        if parse_instant(self.end) <= parse_instant(self.start):
            raise ValueError(f"end {excerpt(self.end)} is not after start {excerpt(self.start)}")
        return self

    @property
    def start_epoch(self) -> float:
        return parse_instant(self.start)

    @property
    def end_epoch(self) -> float:
        return parse_instant(self.end)


class Budget(_Model):
    max_unit_hours: float = Field(gt=0, le=MAX_UNITS * MAX_DURATION / 3600)
    period: Duration = 86400.0  # rolling window the cap applies to


class AlertName(StrEnum):
    """The alerts Headroom raises (``alerts[].on``); each fires and later resolves."""

    FORECAST_MISS = "forecastMiss"  # actual demand above the forecast's upper band for a while
    SLO_BREACH = "sloBreach"  # demand above what the ready units serve
    SCALE_FAILED = "scaleFailed"  # a scale call failed, or a change is not converging
    CAPACITY_CAPPED = "capacityCapped"  # the plan wants more than maxUnits or the budget allows
    SIGNALS_UNAVAILABLE = "signalsUnavailable"  # the demand signal cannot be read
    PLAN_CHANGED = "planChanged"  # the size planned for an imminent event moved a lot


def _alert_names(value: Any) -> Any:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError("on must be a list of alert names")
    known = [n.value for n in AlertName]
    for name in value:
        if name not in known:
            raise ValueError(f"unknown alert {name!r} (use any of: {', '.join(known)})")
    return value


class AlertHook(_Model):
    """Where one policy's alerts go: a named sink of the global alerts config (which holds
    its secrets), or an inline ``url`` of a sink that needs no secret."""

    sink: str | None = Field(None, min_length=1)
    type: AlertSinkKind = AlertSinkKind.WEBHOOK  # of an inline url
    url: str | None = Field(None, pattern=r"^https?://")
    on: Annotated[list[AlertName], BeforeValidator(_alert_names)] = list(AlertName)

    @model_validator(mode="after")
    def _one_destination(self) -> AlertHook:
        if (self.sink is None) == (self.url is None):
            raise ValueError("give either sink (a name from the alerts config) or url")
        # Only the sinks that need no secret take an inline url (an allowlist: a sink added
        # to the registry is refused here until it is known to need none).
        if self.url is not None and self.type not in (
            AlertSinkKind.WEBHOOK,
            AlertSinkKind.ALERTMANAGER,
        ):
            raise ValueError(
                f"type: an inline url takes a webhook or alertmanager sink; a {self.type.value} "
                "sink holds a secret: name it in the alerts config and refer to it with sink"
            )
        return self


class AlertRules(_Model):
    """When a condition becomes an alert (how long it must hold) and how far surges go."""

    forecast_miss_for: Duration = 600.0  # demand above the upper band this long ...
    # ... by more than this share of it
    forecast_miss_margin: float = Field(0.1, ge=0, le=MAX_MULTIPLIER)
    slo_breach_for: Duration = 300.0  # demand above ready capacity this long
    stuck_for: Duration = 1800.0  # a change not converged this long past its expected delay
    unavailable_for: Duration = 300.0  # no demand signal this long
    plan_change_within: Duration = 7200.0  # watch the plan for events starting this soon
    # relative change of the planned peak
    plan_change_ratio: float = Field(0.25, gt=0, le=MAX_MULTIPLIER)
    resolve_after: Duration = 600.0  # a firing alert resolves once clear this long
    # inbound emergency scale-up: largest factor
    surge_max_factor: float = Field(3.0, ge=1, le=MAX_MULTIPLIER)
    surge_max_duration: Duration = 3600.0  # and longest surge


class PolicySpec(_Model):
    """The CapacityPolicy spec (and the YAML policy file's content)."""

    name: str = "default"
    targets: list[Target] = Field(min_length=1)
    metrics: Metrics = Metrics()
    slo: Slo = Slo()
    headroom_factor: float = Field(1.0, ge=1, le=MAX_MULTIPLIER)
    lead_time: Duration = 0.0  # extra margin added to every computed provisioning delay
    forecast: Forecasting = Forecasting()
    reactive: Reactive = Reactive()
    scale_in: ScaleIn = ScaleIn()
    freeze_windows: list[FreezeWindow] = []
    budget: Budget | None = None
    alerts: list[AlertHook] = []
    alert_rules: AlertRules = AlertRules()
    event_selector: LabelMap = {}  # labels DemandEvents select this policy by
    dry_run: bool = False
    paused: bool = False  # the operator does nothing for this policy (not even plan)

    @property
    def reactive_utilization(self) -> float:
        """The reactive half's target utilisation (the HPA's ``averageValue`` share)."""
        return self.reactive.target_utilization or self.slo.target_utilization

    @property
    def forecast_utilization(self) -> float:
        """The utilisation the forecast's median is provisioned at outside event windows:
        by default none of the SLO's margin (the reactive half keeps the margin on what
        is measured; the forecast only adds what the lead time cannot wait for)."""
        explicit = self.forecast.target_utilization
        if explicit is not None:
            return explicit
        return 1.0 - FORECAST_MARGIN * (1.0 - self.slo.target_utilization)

    @property
    def event_size_quantile(self) -> float:
        """The quantile of an event's learned size its pre-scale buys (the frontier's
        ``q``): ``forecast.eventQuantile``, else ``forecast.quantile``."""
        q = self.forecast.event_quantile
        return q if q is not None else self.forecast.quantile

    @property
    def event_utilization(self) -> float:
        """The utilisation inside event windows: lower (more margin) than outside."""
        explicit = self.forecast.event_target_utilization
        if explicit is not None:
            return explicit
        return EVENT_MARGIN * self.slo.target_utilization

    @model_validator(mode="after")
    def _unique_targets(self) -> PolicySpec:
        seen: set[str] = set()
        for target in self.targets:
            key = f"{target.namespace}/{target.name}"
            if key in seen:
                raise ValueError(f"target {key} is listed twice")
            seen.add(key)
        return self


def _field_path(loc: tuple[int | str, ...], raw: Any) -> str:
    """Pydantic's location as a readable path: ``targets[0].capacityPerUnit`` (target name too)."""
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, dict) and isinstance(node.get("name"), str):
                    label = f"[{item}:{node['name']}]"
            parts.append(label)
        else:
            parts.append(("." if parts else "") + item)
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "spec"


def parse_policy(data: Any, source: str = "policy") -> PolicySpec:
    """Validate a policy document (a bare spec, or a CapacityPolicy object with ``spec``)."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: expected a mapping at the top level")
    raw = data
    if "spec" in data and isinstance(data["spec"], dict):
        raw = dict(data["spec"])
        name = (data.get("metadata") or {}).get("name")
        if isinstance(name, str) and "name" not in raw:
            raw["name"] = name
    try:
        return PolicySpec.model_validate(raw)
    except ValidationError as err:
        where, problem = first_error(err, lambda loc: _field_path(loc, raw))
        raise PolicyError(field_error(source, where, problem)) from None


def load_policy(text: str | bytes, source: str = "policy") -> PolicySpec:
    """A policy from YAML text (a bare spec or a CapacityPolicy object)."""
    text = decode_text(text, source, PolicyError)
    if document_kind(text) == ICS:
        raise PolicyError(f"{source}: is {ICS}, not a capacity policy")
    docs = load_yaml_documents(text, source, PolicyError)
    for doc in docs:
        if (kind := document_kind(doc)) not in (None, POLICY):
            raise PolicyError(f"{source}: is {kind}, not a capacity policy")
    if not docs:
        raise PolicyError(f"{source}: is empty (a policy needs targets:)")
    if len(docs) != 1:
        raise PolicyError(f"{source}: expected one YAML document, found {len(docs)}")
    return parse_policy(docs[0], source)
