"""Writing the inputs ``headroom plan``/``forecast`` and a csv metrics source read: a trace
CSV (``timestamp,qps``) and a YAML calendar of events, as a user would have them."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from headroom.policies.calendar import DemandEvent
from headroom.policies.series import Series


def write_trace_csv(path: Path, trace: Series, before: float = math.inf) -> Path:
    """``trace``'s samples before ``before``, one decimal, epoch seconds."""
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["timestamp", "qps"])
        for t, v in zip(trace.t, trace.v, strict=True):
            if t < before:
                out.writerow([int(t), f"{v:.1f}"])
    return path


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_events_yaml(path: Path, events: Iterable[DemandEvent]) -> Path:
    """A calendar file of ``events`` (name, kind, start and end in UTC)."""
    rows = [
        {"name": e.name, "kind": str(e.kind), "start": _iso(e.start), "end": _iso(e.end)}
        for e in events
    ]
    path.write_text(yaml.safe_dump({"events": rows}))
    return path
