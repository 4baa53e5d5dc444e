"""Text for people: QPS, durations, local clock times and time zones, one way each.

The planner's reasons, the CLI's tables, the alert messages and the demo's dashboard
all print numbers and times through these helpers, so "410k QPS", "15m" and "20:00"
read the same wherever they appear. Pure functions over plain values; the one
time-zone lookup (:func:`zone`) is cached because plans format dozens of times.
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from headroom.policies.errors import must_be
from headroom.policies.policy import Target, TargetKind


def format_qps(value: float, digits: int = 3) -> str:
    """``410000`` -> ``410k``, ``1250000`` -> ``1.25M``, ``999.9`` -> ``1k`` (``digits``
    significant digits; the suffix is chosen after rounding, so never ``1e+03``)."""
    if not math.isfinite(value):
        return "n/a"
    rounded = float(f"{value:.{digits}g}")
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(rounded) >= scale:
            return f"{rounded / scale:.{digits}g}{suffix}"
    return f"{rounded:.{digits}g}"


def compare_qps(left: str, demand: float, op: str, capacity: float, util: float) -> str:
    """The one way a reason states a comparison: ``p90 12.4 QPS > 12 capacity at 100%``.

    Both sides get as many digits as it takes for the stated ``op`` (``>``, ``≤``) to be
    visibly true of the printed numbers ("12 > 12" never appears)."""
    a, b = format_qps(demand), format_qps(capacity)
    for digits in range(4, 10):
        if op != ">" or a != b:
            break
        a, b = format_qps(demand, digits), format_qps(capacity, digits)
    return f"{left} {a} QPS {op} {b} capacity at {util:.0%}"


def unit_noun(target: Target) -> str:
    """How the units of a target are called: Redis masters, replicas otherwise."""
    if target.kind in (TargetKind.REDIS_CLUSTER, TargetKind.LOCAL_REDIS_CLUSTER):
        return "masters"
    return "replicas"


def target_key(target: Target) -> str:
    """``namespace/name``: how a target is named in reasons, tables and status."""
    return f"{target.namespace}/{target.name}"


def duration_text(seconds: float, digits: int = 6) -> str:
    """``3600`` -> ``1h``, ``900`` -> ``15m``, ``90`` -> ``1.5m``, ``30`` -> ``30s``.

    Whole hours in hours, a minute or more in minutes, less in seconds (``digits``
    significant digits; the default is ``format(x, "g")``'s six)."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60:
        return f"{seconds / 60:.{digits}g}m"
    return f"{seconds:.{digits}g}s"


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(must_be("a time zone name like Asia/Shanghai", name)) from None


def zone(name: Any) -> ZoneInfo:
    """The ZoneInfo of an IANA name, or ValueError naming the bad value (cached)."""
    if not isinstance(name, str):
        raise ValueError(must_be("a time zone name like Asia/Shanghai", name))
    return _zone(name)


def zone_or_utc(name: str) -> ZoneInfo:
    """:func:`zone`, falling back to UTC for a name this machine does not know (for
    text only: a reason still prints when the zone database lacks the policy's zone)."""
    try:
        return zone(name)
    except ValueError:
        return _zone("UTC")


def clock(epoch: float, tz: str) -> str:
    """``20:00``: the local wall-clock time in ``tz`` (UTC when ``tz`` is unknown)."""
    local = datetime.fromtimestamp(epoch, tz=zone_or_utc(tz))
    return f"{local.hour:02d}:{local.minute:02d}"  # strftime("%H:%M"), a plan has dozens


def local_time(epoch: float, tz: str, fmt: str) -> str:
    """``epoch`` as local time in ``tz`` in the strftime format ``fmt``."""
    return datetime.fromtimestamp(epoch, tz=zone(tz)).strftime(fmt)


def local_iso(epoch: float, tz: str) -> str:
    """``epoch`` as ISO-8601 local time in ``tz``, with its offset."""
    return datetime.fromtimestamp(epoch, tz=zone(tz)).isoformat()
