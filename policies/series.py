"""Time series of one metric: the currency between signals, forecasts and the simulator.

Signal sources (``headroom.controller.signals``) produce a :class:`Series`; the
forecasters, the capacity learner and the simulator consume it. Inside, times are
epoch seconds and values float64 numpy arrays; a NaN value is a *gap* (no data),
never zero traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Series:
    """Samples ``v[i]`` at epoch seconds ``t[i]``; ``t`` strictly increasing, NaN = gap."""

    t: FloatArray
    v: FloatArray

    def __post_init__(self) -> None:
        if self.t.shape != self.v.shape or self.t.ndim != 1:
            raise ValueError(f"Series: t{self.t.shape} and v{self.v.shape} must be equal 1-D")
        if self.t.size > 1 and not bool(np.all(np.diff(self.t) > 0)):
            raise ValueError("Series: timestamps must be strictly increasing")

    @classmethod
    def empty(cls) -> Series:
        return cls(np.empty(0, dtype=np.float64), np.empty(0, dtype=np.float64))

    @classmethod
    def from_lists(cls, t: list[float], v: list[float]) -> Series:
        return cls(np.asarray(t, dtype=np.float64), np.asarray(v, dtype=np.float64))

    def __len__(self) -> int:
        return int(self.t.size)

    @property
    def step(self) -> float:
        """Median spacing between samples in seconds (0.0 with fewer than two)."""
        if self.t.size < 2:
            return 0.0
        return float(np.median(np.diff(self.t)))

    @property
    def start(self) -> float:
        return float(self.t[0]) if self.t.size else float("nan")

    @property
    def end(self) -> float:
        return float(self.t[-1]) if self.t.size else float("nan")

    def between(self, start: float, end: float) -> Series:
        """Samples with ``start <= t < end``."""
        lo = int(np.searchsorted(self.t, start, side="left"))
        hi = int(np.searchsorted(self.t, end, side="left"))
        return Series(self.t[lo:hi], self.v[lo:hi])

    def before(self, end: float) -> Series:
        """Samples strictly before ``end``: what a causal decision at ``end`` may see."""
        hi = int(np.searchsorted(self.t, end, side="left"))
        return Series(self.t[:hi], self.v[:hi])

    def append(self, other: Series) -> Series:
        """This series followed by the samples of ``other`` that come after its end."""
        if not len(self):
            return other
        tail = other.between(self.end + 1e-9, float("inf")) if len(other) else other
        return Series(np.concatenate([self.t, tail.t]), np.concatenate([self.v, tail.v]))


def to_datetime(epoch: float) -> datetime:
    """Epoch seconds to an aware UTC datetime (the edge representation)."""
    return datetime.fromtimestamp(epoch, tz=UTC)


def to_epoch(when: datetime) -> float:
    """An aware datetime to epoch seconds; naive datetimes are refused."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when.isoformat()} has no time zone")
    return when.timestamp()
