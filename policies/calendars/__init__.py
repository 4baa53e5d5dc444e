"""Calendar parsers: YAML, iCalendar and DemandEvent resources -> :class:`Calendar`.

``load_calendar`` is what ``headroom calendar``, ``headroom forecast/plan/simulate``
and the local demo call with a file's content (the CLI reads the file; this package
does no I/O). The operator turns DemandEvent objects into events with
:func:`event_from_resource`.
"""

from __future__ import annotations

import time
from datetime import datetime

from headroom.policies.calendar import Calendar
from headroom.policies.calendars._event import event_to_fields, resolve_time
from headroom.policies.calendars.ics import parse_ics_calendar
from headroom.policies.calendars.yaml import (
    event_from_resource,
    event_to_resource,
    parse_yaml_calendar,
)
from headroom.policies.errors import CalendarError
from headroom.policies.text import zone
from headroom.policies.validation import decode_text

YEAR = 365 * 86400.0

__all__ = [
    "YEAR",
    "describe_time",
    "detect_format",
    "event_from_resource",
    "event_to_fields",
    "event_to_resource",
    "load_calendar",
    "parse_time",
]


def detect_format(data: str | bytes, source: str) -> str:
    """``ics`` or ``yaml``, from the file name, else from the content."""
    lower = source.lower()
    if lower.endswith((".ics", ".ical", ".ifb")):
        return "ics"
    if lower.endswith((".yaml", ".yml", ".json")):
        return "yaml"
    head = data[:64].lstrip()
    if (
        (head.decode(errors="replace") if isinstance(head, bytes) else head)
        .upper()
        .startswith("BEGIN:VCALENDAR")
    ):
        return "ics"
    return "yaml"


def load_calendar(
    data: str | bytes,
    source: str,
    fmt: str | None = None,
    *,
    window: tuple[float, float] | None = None,
    now: float | None = None,
    default_tz: str | None = None,
) -> Calendar:
    """Parse a calendar (YAML or ICS). Recurring ICS events are expanded in ``window``
    (epoch seconds), by default one year either side of ``now`` (the wall clock). A UTF-8
    byte-order mark (files saved by some editors) is ignored; binary or non-UTF-8 data is
    refused before either parser sees it."""
    data = decode_text(data, source, CalendarError)
    kind = fmt or detect_format(data, source)
    if kind == "yaml":
        return parse_yaml_calendar(data, source)
    if kind != "ics":
        raise CalendarError(f"{source}: unknown calendar format {kind!r} (use yaml or ics)")
    if window is None:
        centre = time.time() if now is None else now
        window = (centre - YEAR, centre + YEAR)
    return parse_ics_calendar(data, source, window=window, default_tz=default_tz)


def parse_time(text: str, default_tz: str | None = None) -> float:
    """Epoch seconds from ISO-8601 (an offset, or naive in ``default_tz``) or epoch digits.

    For ``--from``, ``--to`` and ``--at`` options: raises ValueError with a short message.
    """
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    if default_tz is None and value and "T" not in value and len(value) == 10:
        # A bare date with no zone: midnight UTC is the least surprising reading.
        default_tz = "UTC"
    epoch, _ = resolve_time(value, default_tz)
    return epoch


def describe_time(epoch: float, tz: str) -> str:
    """``2025-06-18 20:00 +0800`` in ``tz`` (for tables)."""
    return datetime.fromtimestamp(epoch, tz=zone(tz)).strftime("%Y-%m-%d %H:%M %z")
