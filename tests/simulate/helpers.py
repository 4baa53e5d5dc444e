"""Small builders shared by the simulator tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from headroom.policies.policy import PolicySpec, parse_policy
from headroom.policies.series import FloatArray, Series
from headroom.policies.simulate import Fleet, History


def policy(
    capacity: float = 100.0,
    min_units: int = 1,
    max_units: int = 10,
    utilization: float = 0.8,
    delay: float = 60.0,
    **extra: object,
) -> PolicySpec:
    return parse_policy(
        {
            "targets": [
                {
                    "name": "web",
                    "capacityPerUnit": capacity,
                    "minUnits": min_units,
                    "maxUnits": max_units,
                    "provisioning": {"fixedSeconds": delay},
                }
            ],
            "slo": {"targetUtilization": utilization},
            **extra,
        }
    )


def trace(values: Sequence[float], step: float = 60.0, start: float = 1_700_000_000.0) -> Series:
    t = start + np.arange(len(values), dtype=np.float64) * step
    return Series(t, np.asarray(values, dtype=np.float64))


class Schedule:
    """A fixed schedule: ``units[k]`` ordered at the k-th sample time (tests only)."""

    name = "schedule"

    def __init__(self, units: Sequence[int], every: int = 1) -> None:
        self.units = list(units)
        self.every = every
        self.seen: list[tuple[float, int]] = []  # (decision time, samples visible)

    def initial_units(self, default: int) -> int:
        return default

    def decision_times(self, grid: FloatArray) -> FloatArray:
        return grid[:: self.every][: len(self.units)]

    def decide(self, now: float, past: History, fleet: Fleet) -> int:
        self.seen.append((now, len(past)))
        if len(past):
            assert past.last_time < now
        return self.units[len(self.seen) - 1]
