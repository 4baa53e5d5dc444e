"""One event's fields, validated the same way whichever format they came from.

The YAML parser, the ICS parser and the DemandEvent CRD reader hand raw fields to
:func:`build_event`; it validates them with pydantic, resolves times (ISO-8601 with an
offset, or naive plus a time zone), and turns every problem into one
``CalendarError`` line naming the file, the event and the field.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from headroom.policies.calendar import DemandEvent, EventKind, Expectation, event_kind
from headroom.policies.errors import CalendarError
from headroom.policies.policy import Duration


def _as_label(value: Any) -> Any:
    """Labels are strings; YAML turns ``region: 1`` into an int, which still means "1"."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return value


LabelMap = dict[str, Annotated[str, BeforeValidator(_as_label)]]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ExpectationSpec(_Model):
    multiplier: float | None = Field(None, gt=0)
    peak_qps: float | None = Field(None, gt=0)


class SelectorSpec(_Model):
    match_labels: LabelMap = {}


class EventSpec(_Model):
    """The fields of one event (YAML entry, DemandEvent ``spec``, or ICS properties)."""

    name: Annotated[str, BeforeValidator(_as_label)] = Field(min_length=1)  # `name: 618`
    kind: Annotated[str, AfterValidator(event_kind)] = EventKind.CUSTOM  # any kind name
    start: Any
    end: Any
    ramp: Duration = 0.0
    labels: LabelMap = {}
    expectation: ExpectationSpec | None = None
    selector: SelectorSpec | None = None
    applies_to: SelectorSpec | LabelMap | None = None
    timezone: str | None = None
    description: str | None = None  # free text, kept out of the model


def zone(name: str) -> ZoneInfo:
    """A ZoneInfo, or ValueError naming the zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


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
        raise ValueError("is a boolean, not a time")
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
            raise ValueError(f"{value!r} is not an ISO-8601 time") from None
    else:
        raise ValueError(f"{value!r} is not a time")
    if when.tzinfo is None or when.utcoffset() is None:
        if tz is None:
            raise ValueError(
                f"{value!s} has no time zone (add an offset like +08:00 or a timezone: field)"
            )
        when = when.replace(tzinfo=zone(tz))
        return when.timestamp(), tz
    return when.timestamp(), tz or zone_name(when)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for item in loc:
        out += f"[{item}]" if isinstance(item, int) else ("." if out else "") + str(item)
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
    try:
        spec = EventSpec.model_validate(fields)
    except ValidationError as err:
        first = err.errors()[0]
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "missing":
            msg = "is required"
        elif first["type"] == "extra_forbidden":
            msg = "is not a known field"
        raise CalendarError(f"{where}: {_loc(tuple(first['loc']))}: {msg}") from None
    tz = spec.timezone or default_tz
    if tz is not None:
        try:
            zone(tz)
        except ValueError as err:
            field = "timezone" if spec.timezone else "file timezone"
            raise CalendarError(f"{where}: {field}: {err}") from None
    times: list[tuple[float, str | None]] = []
    for field in ("start", "end"):
        try:
            times.append(resolve_time(getattr(spec, field), tz))
        except ValueError as err:
            raise CalendarError(f"{where}: {field}: {err}") from None
    (start, start_tz), (end, _) = times
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
    """The YAML / DemandEvent ``spec`` form of an event (times in its own zone)."""
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
        out["timezone"] = event.tz
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
        out["selector"] = {"matchLabels": dict(event.selector)}
    return out
