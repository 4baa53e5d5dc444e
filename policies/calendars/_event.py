"""One event's fields, validated the same way whichever format they came from.

The YAML parser, the ICS parser and the DemandEvent CRD reader hand raw fields to
:func:`build_event`; it validates them with pydantic, resolves times (ISO-8601 with an
offset, or naive plus a time zone), and turns every problem into one
``CalendarError`` line naming the file, the event and the field.

:class:`EventSpec` is also the DemandEvent CRD's ``spec``: the chart's schema is generated
from it (``headroom.policies.crd_schema``). Where the Kubernetes spelling differs from the
YAML calendars' (``timeZone``/``timezone``, ``policySelector``/``selector``) the field
accepts both, the CRD spelling first; ``end`` may be given as a ``duration`` instead.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from headroom.policies.bounds import EARLIEST, LATEST, MAX_MULTIPLIER, MAX_QPS
from headroom.policies.calendar import DemandEvent, EventKind, Expectation, event_kind
from headroom.policies.errors import REQUIRED, CalendarError, excerpt, field_error, must_be
from headroom.policies.quantities import Duration
from headroom.policies.text import zone
from headroom.policies.validation import LabelMap, as_label, first_error


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", allow_inf_nan=False
    )


class ExpectationSpec(_Model):
    """What the organiser expects; absent: learned from similar past events."""

    # expected peak over normal traffic
    multiplier: float | None = Field(None, gt=0, le=MAX_MULTIPLIER)
    peak_qps: float | None = Field(None, gt=0, le=MAX_QPS)  # expected peak QPS


class SelectorSpec(_Model):
    """A label selector (matchLabels only)."""

    match_labels: LabelMap = {}  # every pair must be among the labels


# Fields spelt two ways: the CRD's name (first) and the YAML calendars'.
_SPELLINGS = (("timeZone", "timezone"), ("policySelector", "selector"))


class EventSpec(_Model):
    """The fields of one event (YAML entry, DemandEvent ``spec``, or ICS properties)."""

    name: Annotated[str, BeforeValidator(as_label)] = Field(min_length=1)  # in plans and reasons
    kind: Annotated[str, AfterValidator(event_kind)] = (
        EventKind.CUSTOM
    )  # any name; learned per kind
    start: Any  # ISO-8601 with an offset, or naive in timeZone
    end: Any = None  # after start; or give duration instead
    duration: Duration | None = None  # how long it lasts, instead of end
    ramp: Duration = 0.0  # before start, demand already rises
    labels: LabelMap = {}  # host, channel, region, ...: similar past events share labels
    expectation: ExpectationSpec | None = None  # absent: learned from similar past events
    # The policies (and targets) the event applies to, by their labels; absent: all.
    selector: SelectorSpec | None = Field(
        None, validation_alias=AliasChoices("policySelector", "selector")
    )
    applies_to: SelectorSpec | LabelMap | None = None  # shorthand: {app: cart}
    timezone: str | None = Field(  # IANA zone of times written without an offset
        None, validation_alias=AliasChoices("timeZone", "timezone")
    )
    description: str | None = None  # free text, kept out of the model


def zone_name(when: datetime) -> str:
    """A display zone for an aware datetime: its IANA name, or Etc/GMT±h for an offset."""
    tz = when.tzinfo
    for attr in ("key", "zone"):
        name = getattr(tz, attr, None)
        if isinstance(name, str):
            return name
    offset = when.utcoffset() or timedelta(0)
    hours = offset.total_seconds() / 3600
    if hours == 0:
        return "UTC"
    if hours.is_integer():
        # The Etc zones' signs are inverted (POSIX): UTC+8 is Etc/GMT-8.
        return f"Etc/GMT{-int(hours):+d}"
    return "UTC"


def resolve_time(value: Any, tz: str | None) -> tuple[float, str | None]:
    """Epoch seconds and the zone name it was written in (None when it was epoch).

    Accepts epoch numbers, aware datetimes, ISO-8601 strings with an offset, and naive
    strings/datetimes/dates when ``tz`` names the zone they are in.
    """
    if isinstance(value, bool):
        raise ValueError(must_be("an ISO-8601 time", value))
    if isinstance(value, int | float):
        return float(value), None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(must_be("an ISO-8601 time", value)) from None
    else:
        raise ValueError(must_be("an ISO-8601 time", value))
    if when.tzinfo is None or when.utcoffset() is None:
        if tz is None:
            raise ValueError(
                f"{excerpt(str(value))} has no time zone (add an offset like +08:00 or a "
                "timezone: field)"
            )
        when = when.replace(tzinfo=zone(tz))
        return when.timestamp(), tz
    return when.timestamp(), tz or zone_name(when)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for item in loc:
        if item == "[key]":  # pydantic's marker for an error in a mapping's key
            continue
        name = str(item) if item != "" else "''"
        out += f"[{item}]" if isinstance(item, int) else ("." if out else "") + name
    return out or "event"


def event_label(fields: Any, index: int) -> str:
    name = fields.get("name") if isinstance(fields, dict) else None
    if isinstance(name, int | float) and not isinstance(name, bool):
        name = str(name)
    return f'event "{name}"' if isinstance(name, str) and name else f"event #{index + 1}"


def build_event(
    fields: Any, *, source: str, index: int, default_tz: str | None = None
) -> DemandEvent:
    """A :class:`DemandEvent` from raw fields, or a one-line :class:`CalendarError`."""
    where = f"{source}: {event_label(fields, index)}"
    if not isinstance(fields, dict):
        raise CalendarError(f"{where}: expected a mapping of event fields")
    for crd, yaml_name in _SPELLINGS:
        if crd in fields and yaml_name in fields:
            raise CalendarError(field_error(where, crd, f"give {crd} or {yaml_name}, not both"))
    try:
        spec = EventSpec.model_validate(fields)
    except ValidationError as err:
        raise CalendarError(field_error(where, *first_error(err, _loc))) from None
    # A file-level zone (``default_tz``) is checked by the file's parser, once, and
    # blamed on the file rather than on whichever event comes first.
    tz = spec.timezone or default_tz
    if spec.timezone is not None:
        try:
            zone(spec.timezone)
        except ValueError as err:
            field = "timeZone" if "timeZone" in fields else "timezone"
            raise CalendarError(field_error(where, field, str(err))) from None
    if spec.end is None and spec.duration is None:
        raise CalendarError(field_error(where, "end", REQUIRED))
    if spec.end is not None and spec.duration is not None:
        raise CalendarError(field_error(where, "duration", "give end or duration, not both"))
    times: list[tuple[float, str | None]] = []
    for field in ("start", "end") if spec.end is not None else ("start",):
        try:
            times.append(resolve_time(getattr(spec, field), tz))
        except ValueError as err:
            raise CalendarError(f"{where}: {field}: {err}") from None
    start, start_tz = times[0]
    end = times[1][0] if spec.end is not None else start + (spec.duration or 0.0)
    for field, at in (("start", start), ("end", end)):
        if not EARLIEST <= at <= LATEST:
            raise CalendarError(field_error(where, field, "must be in the years 1970..9999"))
    if spec.duration is not None and spec.duration <= 0:
        raise CalendarError(field_error(where, "duration", must_be("> 0", spec.duration)))
    if end < start:
        raise CalendarError(f"{where}: end is before start")
    if end == start:
        raise CalendarError(f"{where}: end equals start (an event needs a duration)")
    selector: dict[str, str] = {}
    if spec.selector is not None:
        selector.update(spec.selector.match_labels)
    if isinstance(spec.applies_to, SelectorSpec):
        selector.update(spec.applies_to.match_labels)
    elif spec.applies_to is not None:
        selector.update(spec.applies_to)
    expectation = None
    if spec.expectation is not None and (
        spec.expectation.multiplier is not None or spec.expectation.peak_qps is not None
    ):
        expectation = Expectation(spec.expectation.multiplier, spec.expectation.peak_qps)
    return DemandEvent(
        name=spec.name,
        kind=spec.kind,
        start=start,
        end=end,
        ramp=spec.ramp,
        labels=spec.labels,
        expectation=expectation,
        selector=selector,
        tz=start_tz or "UTC",
    )


def event_to_fields(event: DemandEvent) -> dict[str, Any]:
    """The DemandEvent ``spec`` form of an event (times in its own zone; CRD spellings,
    which the YAML calendars read too)."""
    try:
        tz: Any = zone(event.tz)
    except ValueError:
        tz = UTC
    out: dict[str, Any] = {
        "name": event.name,
        "kind": str(event.kind),
        "start": datetime.fromtimestamp(event.start, tz=tz).isoformat(),
        "end": datetime.fromtimestamp(event.end, tz=tz).isoformat(),
    }
    if event.tz != "UTC":
        out["timeZone"] = event.tz
    if event.ramp:
        out["ramp"] = f"{event.ramp:g}s"
    if event.labels:
        out["labels"] = dict(event.labels)
    if event.expectation is not None:
        exp: dict[str, float] = {}
        if event.expectation.multiplier is not None:
            exp["multiplier"] = event.expectation.multiplier
        if event.expectation.peak_qps is not None:
            exp["peakQps"] = event.expectation.peak_qps
        out["expectation"] = exp
    if event.selector:
        out["policySelector"] = {"matchLabels": dict(event.selector)}
    return out
