"""The demo's outcome: its timeline, its report and the summary tests and the CLI read.

:class:`Outcome` judges a finished run (pure over the timeline and the loop's actions):
underprovisioned minutes against a reactive HPA replayed on the same measured traffic
and delay, when capacity was ready for the event, the alerts the demo's receiver got, and
the measurement check (:mod:`.demo_check`). :mod:`.demo` runs the demo and writes it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from headroom.controller.demo_check import measurement_check
from headroom.controller.loadgen import LoadStats, Verification
from headroom.controller.loop import LoopEvent
from headroom.controller.redis.reports import ClusterStatus
from headroom.policies.baselines.hpa import ReactiveHpa
from headroom.policies.calendar import DemandEvent
from headroom.policies.capacity import capacity_of
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray, Series
from headroom.policies.simulate import StrategyResult, fixed_delay, run_strategy

SLOTS = 16384


@dataclass(frozen=True)
class DemoSample:
    """One point of the demo's timeline (simulated epoch seconds)."""

    t: float
    wanted_qps: float  # what the generated traffic asks for
    measured_qps: float  # what Redis INFO measured (NaN when unavailable)
    forecast_p50: float
    forecast_p90: float
    desired: int
    masters: int
    capacity_units: float  # SLOTS / most slots on one master: the bottleneck master decides
    busy: bool
    detail: str
    client_errors: int = 0  # cumulative
    # What the load generator really sent (ops/s over the source's rate window): the truth
    # the measured QPS is judged against.
    sent_qps: float = math.nan


@dataclass
class DemoReport:
    """The demo's outcome; ``to_json`` is the contract tests read."""

    out_dir: Path
    summary: dict[str, Any]
    timeline: list[DemoSample] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary, "timeline": [asdict(s) for s in self.timeline]}


def covers(capacity_units: float, masters: int) -> bool:
    """Whether a balanced map's capacity counts as ``masters`` (16384/5 is not a whole slot)."""
    return capacity_units >= masters * (1 - 1e-3)


def capacity_units(status: ClusterStatus) -> float:
    """Masters' worth of capacity: keys spread evenly, so the busiest master is the limit."""
    slots = [n.slots for n in status.nodes if n.role == "master" and n.slots > 0]
    return SLOTS / max(slots) if slots else 0.0


@dataclass(frozen=True)
class Outcome:
    """What a run is judged against: its policy, target, event and knobs."""

    spec: PolicySpec
    target: Target
    event: DemandEvent
    tz: str
    end: float  # the simulated span's end
    masters: int  # the cluster's masters at the start
    tick: float  # simulated seconds between control-loop passes
    sample_every: float  # wall seconds between timeline samples
    speed: float

    def summary(
        self,
        timeline: list[DemoSample],
        events: list[LoopEvent],
        load: LoadStats,
        verification: Verification,
        final: ClusterStatus,
    ) -> dict[str, Any]:
        t = np.array([s.t for s in timeline])
        dt = np.diff(np.append(t, self.end))
        measured = np.array([s.measured_qps for s in timeline])
        wanted = np.array([s.wanted_qps for s in timeline])
        demand = np.where(np.isfinite(measured), measured, wanted)
        cap = np.array([capacity_of(s.capacity_units, self.target) for s in timeline])
        under = float(np.sum(dt[demand > cap]) / 60.0)
        actions = [e for e in events if e.kind == "Scaled"]
        event = self.event
        peak_desired = max(
            (s.desired for s in timeline if event.window_start <= s.t < event.end), default=0
        )
        at_ramp = next((s for s in timeline if s.t >= event.window_start), timeline[-1])
        at_start = next((s for s in timeline if s.t >= event.start), timeline[-1])
        # The size planned for the event: scale-outs the plan meant to be serving by the
        # start (their ``ready_by``). Corrections ordered later (the ramp turning out
        # hotter than forecast) cannot be ready in time under any policy; the summary
        # still counts any shortfall they leave in the underprovisioned minutes.
        planned = max(
            (
                e.to_units or 0
                for e in actions
                if e.at < event.start and e.ready_by is not None and e.ready_by <= event.start
            ),
            default=0,
        )
        ready_at = next((s.t for s in timeline if covers(s.capacity_units, planned)), None)
        scale_outs = [e for e in actions if (e.to_units or 0) > (e.from_units or 0)]
        delay = self.observed_delay(timeline, scale_outs)
        hpa = self.reactive(t, demand, delay)
        reactive = hpa.underprovisioned_minutes
        desired = np.array([s.desired for s in timeline], dtype=np.float64)
        unit_hours = float(np.sum(desired * dt) / 3600.0)
        return {
            "event": {
                "name": event.name,
                "start": event.start,
                "ramp_start": event.window_start,
                "end": event.end,
                "tz": self.tz,
            },
            "keys_lost": verification.keys_lost,
            "keys_checked": verification.dataset_expected + verification.writes_expected,
            "writes_acknowledged": verification.writes_expected,
            "client_errors": load.errors,
            "client_rebuilds": load.rebuilds,
            "client_ops": load.ops,
            "last_client_error": load.last_error,
            "underprovisioned_minutes": round(under, 1),
            "reactive_hpa_underprovisioned_minutes": round(reactive, 1),
            "unit_hours": round(unit_hours, 2),  # masters ordered, over the (simulated) run
            "reactive_hpa_unit_hours": round(hpa.unit_hours, 2),
            # The replayed HPA's ready units, [[t, units], ...] from each change: the chart
            # draws the HPA the minutes are quoted for.
            "reactive_hpa_ready": [
                [float(at), int(units)] for at, units in zip(hpa.ready_t, hpa.ready_v, strict=True)
            ],
            "capacity_ready_before_event": bool(
                planned > self.masters and covers(at_start.capacity_units, planned)
            ),
            "planned_masters_for_event": planned,
            "capacity_at_ramp_start": round(at_ramp.capacity_units, 2),
            "capacity_at_event_start": round(at_start.capacity_units, 2),
            "peak_desired_masters": peak_desired,
            "ready_minutes_before_start": (
                round((event.start - ready_at) / 60.0, 1) if ready_at is not None else None
            ),
            "observed_provisioning_delay_minutes": round(delay / 60.0, 1),
            "final_masters": final.masters_serving,
            "final_cluster_healthy": final.healthy,
            "actions": [
                {
                    "at": e.at,
                    "minutes_from_event_start": round((e.at - event.start) / 60.0, 1),
                    "from": e.from_units,
                    "to": e.to_units,
                    "reason": e.reason,
                }
                for e in actions
            ],
            "demand_peak_qps": round(float(np.nanmax(demand)), 1),
            "measurement": measurement_check(
                timeline,
                actions,
                self.tick,
                load.dropped,
                # Peaks sustained over 5 wall seconds (half a simulated hour at 360x).
                peak_samples=max(1, round(5.0 / self.sample_every)),
            ),
            "speed": self.speed,
        }

    def alerts(self, received: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What the demo's webhook receiver got (verified), relative to the event start."""
        start = self.event.start
        return [
            {
                "name": a["name"],
                "status": a["status"],
                "severity": a["severity"],
                "target": a["target"],
                "event": a["event"],
                "minutes_from_event_start": round(
                    (datetime.fromisoformat(a["at"].replace("Z", "+00:00")).timestamp() - start)
                    / 60.0, 1,
                ),
                "summary": a["summary"],
            }
            for a in received
        ]  # fmt: skip

    def observed_delay(self, timeline: list[DemoSample], scale_outs: list[LoopEvent]) -> float:
        """Simulated seconds from the first scale-out order until it had converged."""
        if not scale_outs:
            return self.target.provisioning.delay(self.masters, self.masters + 1)
        first = scale_outs[0]
        goal = first.to_units or 0
        after = [s for s in timeline if s.t > first.at]
        done = next(
            (s.t for s in after if covers(s.capacity_units, goal) or not s.busy),
            None,
        )
        return (done - first.at) if done is not None else self.end - first.at

    def reactive(self, t: FloatArray, demand: FloatArray, delay: float) -> StrategyResult:
        """A Kubernetes HPA (v2 defaults) on the same measured traffic and delay."""
        grid = np.arange(t[0], t[-1], 60.0)
        per_minute = Series(grid, np.interp(grid, t, demand))
        result = run_strategy(
            per_minute,
            ReactiveHpa(self.target, self.spec),
            target=self.target,
            delay=fixed_delay(delay),
            initial_units=self.masters,
        )
        return result
