"""Shared synthetic traces for the forecast tests."""

from __future__ import annotations

from headroom.policies.calendar import DemandEvent, EventKind

DAY = 86400.0
HOUR = 3600.0
# A Monday 00:00 UTC, so weekdays in the traces are easy to reason about.
START = 1_700_438_400.0


def livestream(
    day: float, name: str = "", host: str = "big", hour: float = 20.0, hours: float = 2.0, **kw
) -> DemandEvent:
    """A livestream on day ``day`` after START from ``hour`` for ``hours``, ramp 30 min."""
    start = START + day * DAY + hour * HOUR
    return DemandEvent(
        name or f"{host} show day {day:g}",
        kw.pop("kind", EventKind.LIVESTREAM),
        start,
        start + hours * HOUR,
        ramp=kw.pop("ramp", 1800.0),
        labels={"host": host},
        **kw,
    )
