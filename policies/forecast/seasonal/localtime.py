"""Local time for the seasonal baseline: UTC offsets of a zone at epoch times (DST aware).

The profile's bins are taken in local time; :func:`utc_offsets` turns epochs into it with
a few dozen zone lookups whatever the length of the series. Also used by the synthetic
traces (``headroom.policies.synthetic``) and the forecaster.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from headroom.policies.series import FloatArray
from headroom.policies.text import zone as _zone

HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _offset(zone: ZoneInfo, epoch: float) -> float:
    delta = datetime.fromtimestamp(epoch, tz=UTC).astimezone(zone).utcoffset()
    return delta.total_seconds() if delta is not None else 0.0


def utc_offsets(t: FloatArray, tz: str | None) -> FloatArray:
    """UTC offset (seconds) of zone ``tz`` at each epoch time; DST transitions found exactly.

    Checks the offset once a day over the span and bisects days where it changes, so the
    cost is a few dozen zone lookups whatever the length of ``t``.
    """
    if not tz or tz in ("UTC", "Etc/UTC", "Z") or t.size == 0:
        return np.zeros_like(t)
    zone = _zone(tz)
    days = np.arange(math.floor(t[0] / DAY), math.floor(t[-1] / DAY) + 2) * DAY
    offs = [_offset(zone, float(d)) for d in days]
    if all(o == offs[0] for o in offs):
        return np.full_like(t, offs[0])
    bounds: list[float] = []
    values = [offs[0]]
    for i in range(len(days) - 1):
        if offs[i + 1] == offs[i]:
            continue
        lo, hi = float(days[i]), float(days[i + 1])
        while hi - lo > 1.0:
            mid = math.floor((lo + hi) / 2)
            if _offset(zone, mid) == offs[i]:
                lo = mid
            else:
                hi = mid
        bounds.append(hi)
        values.append(offs[i + 1])
    idx = np.searchsorted(np.asarray(bounds), t, side="right")
    return np.asarray(np.asarray(values)[idx], dtype=np.float64)
