"""Surges: short emergency demand events that someone outside the calendar asks for.

An inbound alert (``POST /hooks/alertmanager``, :mod:`headroom.controller.alerts.inbound`)
or an operator tells Headroom "demand on this target is about to jump by this factor":
that is a :class:`Surge`, and :class:`SurgeEvents` is the seam that turns it into a
short :class:`~headroom.policies.calendar.DemandEvent` the control loop plans for like
any other event (the planner still bounds it by ``maxUnits`` and the budget). A surge
is identified by ``key`` (the alert's fingerprint), so a re-sent alert renews it
instead of adding a second, and a resolved alert ends it early.

:class:`LocalSurges` implements the seam for local mode: it keeps the surges in memory
and adds them to the loop's calendar (``ControlLoop(calendar=surges.calendar)``). The
operator implements the same protocol with DemandEvent objects.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from headroom.policies.calendar import Calendar, DemandEvent, EventKind, Expectation

SURGE_LABEL = "headroom_surge"  # on a surge's DemandEvent: the reason (the alert's name)


@dataclass(frozen=True)
class Surge:
    """Raise ``policy``'s demand by ``factor`` from ``start`` to ``end`` (unix seconds)."""

    key: str
    policy: str
    target: str
    factor: float
    start: float
    end: float
    reason: str
    selector: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    namespace: str | None = None  # the policy's namespace (the operator: where the event goes)

    def event(self) -> DemandEvent:
        """The demand event the loop plans for (selected by the policy's event selector)."""
        return DemandEvent(
            name=f"surge {self.reason} ({self.key[:12]})",
            kind=EventKind.CUSTOM,
            start=self.start,
            end=self.end,
            labels={SURGE_LABEL: self.reason, "headroom_target": self.target},
            expectation=Expectation(multiplier=self.factor),
            selector=self.selector,
        )


class SurgeEvents(Protocol):
    """Creates and ends surge events; both idempotent by ``key``."""

    def start_surge(self, surge: Surge) -> None:
        """Create the surge, or renew it (factor, end) if ``surge.key`` is active."""
        ...

    def end_surge(
        self, key: str, at: float, *, policy: str | None = None, namespace: str | None = None
    ) -> bool:
        """End the surge ``key`` of ``policy`` (in ``namespace``) at ``at``; False if no
        such surge is active -- a surge of another policy with the same key is left alone."""
        ...


class LocalSurges:
    """Surges in memory, added to a base calendar: the local mode's :class:`SurgeEvents`."""

    def __init__(
        self, base: Callable[[], Calendar] = Calendar, now: Callable[[], float] = time.time
    ) -> None:
        self._base = base
        self._now = now
        self._lock = threading.Lock()
        self._surges: dict[str, Surge] = {}

    def start_surge(self, surge: Surge) -> None:
        with self._lock:
            old = self._surges.get(surge.key)
            if old is not None:  # a re-sent alert keeps its start
                surge = Surge(surge.key, surge.policy, surge.target, surge.factor, old.start,
                              surge.end, surge.reason, surge.selector, surge.namespace)  # fmt: skip
            self._surges[surge.key] = surge

    def end_surge(
        self, key: str, at: float, *, policy: str | None = None, namespace: str | None = None
    ) -> bool:
        with self._lock:
            surge = self._surges.get(key)
            if surge is None or (policy is not None and surge.policy != policy):
                return False
            del self._surges[key]
            return True

    def active(self) -> list[Surge]:
        """Surges that have not ended (expired ones are forgotten here)."""
        now = self._now()
        with self._lock:
            for key in [k for k, s in self._surges.items() if s.end <= now]:
                del self._surges[key]
            return sorted(self._surges.values(), key=lambda s: (s.start, s.key))

    def calendar(self) -> Calendar:
        """The base calendar plus every active surge: pass this to the control loop."""
        surges = Calendar.of(s.event() for s in self.active())
        return self._base().merged(surges) if len(surges) else self._base()
