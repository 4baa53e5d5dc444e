"""The clock seam: real time for the operator, scaled time for the demo and tests.

The control loop asks a :class:`Clock` for ``now()`` and sleeps through it, so one
loop runs against wall time in a cluster and against a compressed day in
``headroom demo`` (e.g. one simulated hour per 10 s).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the control loop needs of time."""

    def now(self) -> float:
        """Current (possibly simulated) time in epoch seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time (may return early if woken)."""
        ...


class RealClock:
    """Wall-clock time."""

    def __init__(self) -> None:
        self._wake = threading.Event()

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        self._wake.wait(max(0.0, seconds))
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()


class ScaledClock:
    """Simulated time that starts at ``start`` and runs ``speed`` times faster than wall time."""

    def __init__(self, start: float, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self.start = start
        self.speed = speed
        self._real0 = time.monotonic()
        self._wake = threading.Event()

    def now(self) -> float:
        return self.start + (time.monotonic() - self._real0) * self.speed

    def real_seconds(self, simulated: float) -> float:
        """Wall seconds that ``simulated`` seconds of this clock take."""
        return simulated / self.speed

    def sleep(self, seconds: float) -> None:
        self._wake.wait(max(0.0, seconds) / self.speed)
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()
