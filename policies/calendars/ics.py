"""iCalendar (.ics) calendars -> :class:`Calendar`, recurring events expanded.

Parsing is icalendar's, recurrence (RRULE, RDATE, EXDATE, TZID with DST) is
recurring-ical-events'; this module only maps properties onto event fields.
Headroom's fields come from ``X-HEADROOM-KIND``, ``X-HEADROOM-MULTIPLIER``,
``X-HEADROOM-PEAK-QPS``, ``X-HEADROOM-RAMP``, ``X-HEADROOM-LABELS`` (``k=v,k=v``) and
``X-HEADROOM-SELECTOR``, or from ``key: value`` lines in DESCRIPTION (X- properties
win). Floating times take ``X-WR-TIMEZONE`` or the caller's default zone; without
either they are an error. Called by ``load_calendar``.

Expansion is bounded, so no rule can take the machine's memory or minutes of CPU: a
rule's steps from DTSTART to the end of the window (what the expansion walks through,
estimated from FREQ, INTERVAL, COUNT, UNTIL and the BY* lists) are at most
:data:`MAX_RULE_STEPS`; one event yields at most :data:`MAX_OCCURRENCES_PER_EVENT`
occurrences in the window, and a calendar :data:`MAX_EVENTS_PER_CALENDAR` events.
Each limit is a one-line error naming the event.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import icalendar
import recurring_ical_events

from headroom.policies.calendar import MAX_EVENTS_PER_CALENDAR, Calendar, DemandEvent
from headroom.policies.calendars._event import build_event
from headroom.policies.errors import CalendarError, field_error, must_be
from headroom.policies.text import zone

MAX_OCCURRENCES_PER_EVENT = 5_000  # a daily event over the default 2-year window is 731
MAX_RULE_STEPS = 100_000  # candidate times one RRULE may walk through (~1 s, listed at once)
_YEAR = 365.25 * 86400.0
_PER_YEAR = {  # FREQ -> steps per year
    "YEARLY": 1.0,
    "MONTHLY": 12.0,
    "WEEKLY": 53.0,
    "DAILY": 366.0,
    "HOURLY": 366.0 * 24,
    "MINUTELY": 366.0 * 24 * 60,
    "SECONDLY": 366.0 * 24 * 3600,
}
_EXPANDING = ("BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY", "BYHOUR",
              "BYMINUTE", "BYSECOND")  # fmt: skip

_X_FIELDS = {
    "X-HEADROOM-KIND": "kind",
    "X-HEADROOM-MULTIPLIER": "multiplier",
    "X-HEADROOM-PEAK-QPS": "peak_qps",
    "X-HEADROOM-RAMP": "ramp",
    "X-HEADROOM-LABELS": "labels",
    "X-HEADROOM-SELECTOR": "selector",
}
_DESCRIPTION_KEYS = {
    "kind": "kind",
    "multiplier": "multiplier",
    "peak_qps": "peak_qps",
    "peakqps": "peak_qps",
    "peak-qps": "peak_qps",
    "ramp": "ramp",
    "labels": "labels",
    "selector": "selector",
    "appliesto": "selector",
    "applies_to": "selector",
}


def _pairs(text: str, field: str) -> dict[str, str]:
    """``k=v,k=v`` (or ``k: v``) -> mapping; ValueError names the bad item."""
    out: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{field}: {item!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def _headroom_props(component: Any) -> dict[str, str]:
    props: dict[str, str] = {}
    description = component.get("DESCRIPTION")
    if description is not None:
        for line in str(description).splitlines():
            key, sep, value = line.partition(":")
            norm = key.strip().lower()
            if sep and norm in _DESCRIPTION_KEYS:
                props[_DESCRIPTION_KEYS[norm]] = value.strip()
    for prop, field in _X_FIELDS.items():
        value = component.get(prop)
        if value is not None:
            props[field] = str(value).strip()
    return props


def _fields(props: dict[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "kind" in props:
        fields["kind"] = props["kind"].lower()
    if "ramp" in props:
        fields["ramp"] = props["ramp"]
    expectation: dict[str, str] = {}
    for key in ("multiplier", "peak_qps"):
        if key in props:
            expectation[key] = props[key]
    if expectation:
        fields["expectation"] = expectation
    for key in ("labels", "selector"):
        if key in props:
            fields["labels" if key == "labels" else "applies_to"] = _pairs(props[key], key)
    return fields


def _time(value: Any, tz: str | None, what: str) -> datetime:
    """An aware datetime for DTSTART/DTEND; dates are midnight in the calendar's zone."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            if tz is None:
                raise ValueError(
                    f"{what}: floating time {value.isoformat()} has no time zone "
                    "(add TZID or X-WR-TIMEZONE)"
                )
            return value.replace(tzinfo=zone(tz))
        return value
    if isinstance(value, date):
        if tz is None:
            raise ValueError(
                f"{what}: all-day date {value.isoformat()} needs a time zone (X-WR-TIMEZONE)"
            )
        return datetime(value.year, value.month, value.day, tzinfo=zone(tz))
    raise ValueError(f"{what}: is missing")


def _malformed(prop: Any, problem: Any) -> str:
    """The wording for a property icalendar could not parse (``Wrong datetime format: X``)."""
    value = str(problem).rpartition(": ")[2]
    if str(prop).upper() in ("DTSTART", "DTEND", "RECURRENCE-ID", "EXDATE", "RDATE"):
        return must_be("an iCalendar date or date-time like 20251110T200000Z", value)
    if str(prop).upper() == "DURATION":
        return must_be("an iCalendar duration like PT2H", value)
    return must_be(f"a valid {prop} value", value)


def _occurrence(component: Any, *, source: str, index: int, tz: str | None) -> DemandEvent:
    name = str(component.get("SUMMARY") or "").strip()
    label = f'event "{name}"' if name else f"event #{index + 1}"
    for prop, problem in getattr(component, "errors", ()):
        # icalendar keeps a malformed property out of the component and notes it here,
        # so without this a bad DTSTART would read as a missing one.
        raise CalendarError(field_error(f"{source}: {label}", str(prop), _malformed(prop, problem)))
    try:
        props = _headroom_props(component)
        fields: dict[str, Any] = {"name": name, **_fields(props)}
        start_prop = component.get("DTSTART")
        start = _time(start_prop.dt if start_prop is not None else None, tz, "DTSTART")
        end_prop = component.get("DTEND")
        if end_prop is not None:
            end = _time(end_prop.dt, tz, "DTEND")
        elif component.get("DURATION") is not None:
            end = start + component.get("DURATION").dt
        elif not isinstance(start_prop.dt, datetime):
            end = start + timedelta(days=1)
        else:
            raise ValueError("DTEND: is missing (or give DURATION)")
    except ValueError as err:
        raise CalendarError(f"{source}: {label}: {err}") from None
    fields["start"] = start
    fields["end"] = end
    return build_event(fields, source=source, index=index)


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    return None


def _check_rules(component: Any, label: str, end: float) -> None:
    """Refuse an RRULE whose expansion up to ``end`` would walk more than
    :data:`MAX_RULE_STEPS` candidate times (dateutil walks from DTSTART, in the window
    or not: ``FREQ=SECONDLY`` since 1970 is 1.8 billion steps)."""
    rules = component.get("RRULE")
    start_prop = component.get("DTSTART")
    start = _epoch(start_prop.dt) if start_prop is not None else None
    if rules is None or start is None:
        return
    for rule in rules if isinstance(rules, list) else [rules]:
        freq = str((rule.get("FREQ") or ["?"])[0]).upper()
        per_year = _PER_YEAR.get(freq)
        if per_year is None:
            raise CalendarError(field_error(label, "RRULE", must_be("a known FREQ", freq)))
        interval = max(1, int((rule.get("INTERVAL") or [1])[0]))
        fan_out = 1
        for part in _EXPANDING:
            fan_out *= max(1, len(rule.get(part) or ()))
        until = _epoch((rule.get("UNTIL") or [None])[0])
        last = end if until is None else min(until, end)
        steps = max(0.0, last - start) / _YEAR * per_year / interval * fan_out
        count = rule.get("COUNT")
        if count:
            steps = min(steps, float(count[0]) * fan_out)
        if steps > MAX_RULE_STEPS:
            raise CalendarError(
                f"{label}: RRULE: FREQ={freq} repeats about {steps:,.0f} times from DTSTART "
                f"to the window's end (at most {MAX_RULE_STEPS:,}; add UNTIL or COUNT, or "
                "repeat less often)"
            )


def _expand(cal: Any, source: str, lo: datetime, hi: datetime) -> list[Any]:
    """Every occurrence in ``[lo, hi)``, counted as it is made: at most
    :data:`MAX_OCCURRENCES_PER_EVENT` per event, :data:`MAX_EVENTS_PER_CALENDAR` in all."""
    query = recurring_ical_events.of(cal)
    components: list[Any] = []
    for series in query.series:
        made = 0
        for occurrence in series.between(lo, hi):
            component = occurrence.as_component(False)
            made += 1
            if made > MAX_OCCURRENCES_PER_EVENT:
                name = str(component.get("SUMMARY") or "").strip() or "?"
                raise CalendarError(
                    f'{source}: event "{name[:60]}": repeats more than '
                    f"{MAX_OCCURRENCES_PER_EVENT:,} times in the window"
                )
            components.append(component)
            if len(components) > MAX_EVENTS_PER_CALENDAR:
                raise CalendarError(
                    f"{source}: has more than {MAX_EVENTS_PER_CALENDAR:,} events in the window"
                )
    return components


def parse_ics_calendar(
    data: str | bytes,
    source: str,
    *,
    window: tuple[float, float],
    default_tz: str | None = None,
) -> Calendar:
    """Occurrences of every VEVENT in ``[window[0], window[1])`` (epoch seconds)."""
    try:
        cal = icalendar.Calendar.from_ical(data)
    except (ValueError, IndexError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CalendarError(f"{source}: not a valid iCalendar file: {first}") from None
    wr_tz = cal.get("X-WR-TIMEZONE")
    tz = str(wr_tz) if wr_tz is not None else default_tz
    if tz is not None:
        try:
            zone(tz)
        except ValueError as err:
            raise CalendarError(f"{source}: X-WR-TIMEZONE: {err}") from None
    masters = list(cal.walk("VEVENT"))
    # Validate each master once, so a bad property is reported even when no
    # occurrence falls inside the window.
    if len(masters) > MAX_EVENTS_PER_CALENDAR:
        raise CalendarError(f"{source}: has more than {MAX_EVENTS_PER_CALENDAR:,} events")
    for i, component in enumerate(masters):
        event = _occurrence(component, source=source, index=i, tz=tz)
        _check_rules(component, f'{source}: event "{event.name[:60]}"', window[1])
    lo = datetime.fromtimestamp(window[0], tz=UTC)
    hi = datetime.fromtimestamp(window[1], tz=UTC)
    try:
        occurrences = _expand(cal, source, lo, hi)
    except (ValueError, TypeError) as err:
        raise CalendarError(f"{source}: cannot expand recurring events: {err}") from None
    return Calendar.of(
        _occurrence(component, source=source, index=i, tz=tz)
        for i, component in enumerate(occurrences)
    )
