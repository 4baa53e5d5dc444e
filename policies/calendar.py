"""The calendar model: scheduled demand events (livestreams, promotions, custom).

Parsers (YAML, ICS) and the DemandEvent CRD produce :class:`DemandEvent` values;
the forecaster learns uplift per kind and labels from past events and applies it
to future ones; the planner names events in its reasons. Times are epoch seconds
inside; ``tz`` keeps the zone the event was written in, for display only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class EventKind(StrEnum):
    """The well-known kinds; any other name (``flash-sale``, ``launch``, ``concert``) is a
    kind too (:func:`event_kind`). Events of one kind are learned from together."""

    LIVESTREAM = "livestream"
    PROMOTION = "promotion"
    CUSTOM = "custom"


MAX_EVENTS_PER_CALENDAR = 20_000  # events one calendar may hold (a year of hourly ~8,800)
_KIND_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$")


def event_kind(name: str) -> str:
    """A kind from its name: a well-known :class:`EventKind`, or any other lower-case name
    of letters, digits, ``-``, ``_`` and ``.`` (at most 63, as a Kubernetes label value)."""
    text = name.strip().lower()
    if not _KIND_NAME.match(text):
        raise ValueError(
            f"{name!r} is not a kind name (lower-case letters, digits, '-', '_', '.'; "
            "e.g. livestream, flash-sale)"
        )
    try:
        return EventKind(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class Expectation:
    """What the organiser expects: a multiplier over the normal baseline, or a peak QPS.

    ``None`` everywhere (or no Expectation at all) means: learn it from similar past events.
    """

    multiplier: float | None = None
    peak_qps: float | None = None


def _frozen(mapping: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class DemandEvent:
    """One scheduled event. ``ramp`` seconds before ``start`` demand begins to gather."""

    name: str
    kind: str  # an EventKind or any other kind name (event_kind)
    start: float
    end: float
    ramp: float = 0.0
    labels: Mapping[str, str] = field(default_factory=lambda: _frozen(None))
    expectation: Expectation | None = None
    selector: Mapping[str, str] = field(default_factory=lambda: _frozen(None))
    tz: str = "UTC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "selector", _frozen(self.selector))

    @property
    def window_start(self) -> float:
        """When demand starts to rise: ``start - ramp``."""
        return self.start - self.ramp

    def overlaps(self, start: float, end: float) -> bool:
        """Whether ``[window_start, end)`` of the event meets ``[start, end)``."""
        return self.window_start < end and self.end > start

    def applies_to(self, labels: Mapping[str, str]) -> bool:
        """Label-selector match: every selector pair is present in ``labels`` (empty = all)."""
        return all(labels.get(k) == v for k, v in self.selector.items())

    def similarity_key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Kind plus sorted labels: events with equal keys are 'the same kind of event'."""
        return (str(self.kind), tuple(sorted(self.labels.items())))


@dataclass(frozen=True)
class Calendar:
    """An ordered collection of events (by start)."""

    events: tuple[DemandEvent, ...] = ()

    @classmethod
    def of(cls, events: Iterable[DemandEvent]) -> Calendar:
        return cls(tuple(sorted(events, key=lambda e: (e.start, e.name))))

    def __len__(self) -> int:
        return len(self.events)

    def between(self, start: float, end: float) -> Sequence[DemandEvent]:
        """Events whose window (ramp included) meets ``[start, end)``."""
        return [e for e in self.events if e.overlaps(start, end)]

    def for_labels(self, labels: Mapping[str, str]) -> Calendar:
        """The events whose selector matches a policy's or target's labels."""
        return Calendar(tuple(e for e in self.events if e.applies_to(labels)))

    def merged(self, other: Calendar) -> Calendar:
        return Calendar.of((*self.events, *other.events))
