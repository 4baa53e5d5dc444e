"""The quantities a user writes in a policy or a calendar, parsed one way each.

Durations (``90s``, ``10m``, ``2h``), sizes (``50Gi``), scale-in steps (``2`` or
``10%``) and ISO-8601 instants with an offset, as pydantic field types (``Duration``,
``Bytes``, ``Instant``) for the policy schema (``headroom.policies.policy``), the calendar
(``calendars/_event.py``) and the alert sinks' config, and as functions for the CLI's
options. The ``*_HINT`` texts are what an error (and the CRD schema's description) says
a value must be.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from headroom.policies.bounds import MAX_DURATION, MAX_DURATION_TEXT
from headroom.policies.errors import must_be

DURATION_HINT = "a duration (seconds, or e.g. 90s, 10m, 2h)"
SIZE_HINT = "a size (bytes, or e.g. 50Gi, 100Mi, 2G)"
STEP_HINT = "a number of units or a percentage like 10%"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as ``"90s"``, ``"10m"``, ``"1.5h"``."""
    if isinstance(value, bool):
        raise ValueError(must_be(DURATION_HINT, value))
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    else:
        raise ValueError(must_be(DURATION_HINT, value))
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(must_be("a finite duration >= 0", value))
    if seconds > MAX_DURATION:
        raise ValueError(must_be(f"a duration up to {MAX_DURATION_TEXT}", value))
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]

_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*([KMGTP]i|[kKMGTP])?B?\s*(/s)?\s*$")
_BYTE_UNITS = {
    **{p + "i": 1024.0 ** (i + 1) for i, p in enumerate("KMGTP")},
    **{p: 1000.0 ** (i + 1) for i, p in enumerate("KMGTP")},
    "k": 1000.0,
}


def parse_bytes(value: Any) -> float:
    """Bytes from a number or a Kubernetes-style quantity: ``"50Gi"``, ``"100Mi"``,
    ``"1.5G"``, ``"500k"`` (a trailing ``B`` and, for rates, ``/s`` are allowed)."""
    if isinstance(value, bool):
        raise ValueError(must_be(SIZE_HINT, value))
    if isinstance(value, int | float):
        size = float(value)
    elif isinstance(value, str) and (match := _BYTES.match(value)):
        size = float(match.group(1)) * (_BYTE_UNITS[match.group(2)] if match.group(2) else 1.0)
    else:
        raise ValueError(must_be(SIZE_HINT, value))
    if not math.isfinite(size):
        raise ValueError(must_be("a finite size", value))
    return size


Bytes = Annotated[float, BeforeValidator(parse_bytes)]


_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_step(value: Any) -> int | str:
    """A scale-in step: a whole number of units (>= 1), or a share of the units ordered
    at the time as ``"10%"`` (0 < p <= 100; rounded up, so never less than one unit)."""
    if isinstance(value, bool):
        raise ValueError(must_be(STEP_HINT, value))
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        if value < 1:
            raise ValueError(must_be(">= 1 unit", value))
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_step(int(text))
        if match := _PERCENT.match(text):
            share = float(match.group(1))
            if not 0 < share <= 100:
                raise ValueError(must_be("a percentage in (0, 100]", value))
            return f"{share:g}%"
    raise ValueError(must_be(STEP_HINT, value))


def parse_instant(value: str) -> float:
    """Epoch seconds from ISO-8601 with an offset (``2025-06-18T00:00:00+08:00``)."""
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(must_be("an ISO-8601 time with an offset", value)) from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(must_be("an ISO-8601 time with an offset like +08:00", value))
    return when.timestamp()


def _instant(value: str) -> str:
    parse_instant(value)
    return value


Instant = Annotated[str, AfterValidator(_instant)]
