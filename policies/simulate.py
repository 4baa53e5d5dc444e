"""The causal backtest simulator: replays a demand trace against scaling strategies.

Called by ``headroom simulate`` (``headroom.cli.simulate``) and the benchmarks in
``bench/``. Each strategy (``headroom.policies.baselines``) is asked, at the times it
chooses, how many units it wants *ordered*; this module owns everything else, so every
strategy is held to the same rules:

- **Causality, structurally.** A strategy never receives the trace. At a decision at
  time ``s`` it gets a :class:`History` that the engine has filled with exactly the
  samples at ``t < s`` (the calendar, known ahead, is given to strategies that use it
  when they are built). Only the oracle, and static_peak which is defined by the
  trace's peak, are built from the whole trace, on purpose.
- **Provisioning delay, the same for all.** Units ordered at ``s`` when going from
  ``a`` to ``b`` ordered units become ready at ``s + delay(a, b)``. Scale-in takes
  effect at once and removes not-yet-ready units first (newest first), then ready ones,
  as a ReplicaSet deletes pending pods before running ones.
- **Paying starts when you order.** ``unit_hours`` integrates *ordered* units over the
  replay (``ready_unit_hours`` the ready ones, for reference).
- **Accounting in continuous time.** Sample ``i`` holds its demand over
  ``[t[i], t[i+1])`` (the last one for one median step); ready units change at the
  exact times units become ready or are removed, so a unit ready mid-minute covers the
  rest of that minute. ``underprovisioned_minutes`` is the time with
  ``demand > ready * capacity_per_unit`` (``headroom.policies.capacity``),
  ``shortfall_requests`` the integral of ``max(0, demand - ready capacity)`` over it.
  Gaps (NaN demand, or missing rows: across more than two median steps a sample holds
  for one step only) count as neither.
- **Scoring a part.** ``score_from`` replays the whole trace (the earlier part is the
  forecaster's warm-up history) but counts every number from that time on.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from headroom.policies.errors import TraceError
from headroom.policies.policy import Target
from headroom.policies.series import FloatArray, Series

IntArray = npt.NDArray[np.int64]
DelayModel = Callable[[int, int], float]
Progress = Callable[[str, float], None]


def fixed_delay(seconds: float) -> DelayModel:
    """A delay model that ignores the size of the change."""

    def delay(_from_units: int, _to_units: int) -> float:
        return seconds

    return delay


def target_delay(target: Target) -> DelayModel:
    """The delay model a policy declares for ``target`` (``provisioning.delay``)."""
    return target.provisioning.delay


class History:
    """The past a strategy may see: samples strictly before the current decision time.

    Append-only and filled by the engine alone; it never holds a sample from the future,
    so causality does not depend on strategies behaving.
    """

    def __init__(self, capacity: int) -> None:
        self._t = np.empty(capacity, dtype=np.float64)
        self._v = np.empty(capacity, dtype=np.float64)
        self._n = 0
        self._cached: Series | None = None

    def _extend(self, t: FloatArray, v: FloatArray) -> None:
        if not t.size:
            return
        if self._n and t[0] <= self._t[self._n - 1]:
            raise ValueError("History: samples must come in time order")
        end = self._n + t.size
        self._t[self._n : end] = t
        self._v[self._n : end] = v
        self._n = end
        self._cached = None

    def __len__(self) -> int:
        return self._n

    @property
    def first_time(self) -> float:
        return float(self._t[0]) if self._n else math.nan

    @property
    def last_time(self) -> float:
        return float(self._t[self._n - 1]) if self._n else math.nan

    @property
    def last_value(self) -> float:
        """The newest sample's value (NaN if there is none or it is a gap)."""
        return float(self._v[self._n - 1]) if self._n else math.nan

    def series(self) -> Series:
        """The whole past as a :class:`Series` (a copy, cached until the next sample)."""
        if self._cached is None:
            self._cached = Series(self._t[: self._n].copy(), self._v[: self._n].copy())
        return self._cached

    def tail(self, count: int) -> FloatArray:
        """A copy of the last ``count`` values."""
        return self._v[max(0, self._n - count) : self._n].copy()

    def recent(self, count: int) -> tuple[FloatArray, FloatArray]:
        """The times and values of the newest ``count`` samples (views: read only)."""
        lo = max(0, self._n - count)
        return self._t[lo : self._n], self._v[lo : self._n]

    def since(self, start: float) -> Series:
        """The samples at ``t >= start`` (a copy): cheap when ``start`` is recent."""
        lo = int(np.searchsorted(self._t[: self._n], start, side="left"))
        return Series(self._t[lo : self._n].copy(), self._v[lo : self._n].copy())


@dataclass(frozen=True)
class Fleet:
    """What a strategy knows about its own units at a decision."""

    ordered: int  # the spec: units paid for, ready or not (what an HPA calls currentReplicas)
    ready: int  # units serving now

    @property
    def pending(self) -> int:
        return self.ordered - self.ready


class Strategy(Protocol):
    """A scaling strategy under test: one file each in ``headroom.policies.baselines``."""

    name: str

    def initial_units(self, default: int) -> int:
        """Units ready at the start of the replay (``default`` unless defined otherwise)."""
        ...

    def decision_times(self, grid: FloatArray) -> FloatArray:
        """When the strategy decides, given the trace's sample times (its clock)."""
        ...

    def decide(self, now: float, past: History, fleet: Fleet) -> int:
        """Units wanted ordered from ``now`` on; ``past`` holds the samples before ``now``."""
        ...


@dataclass(frozen=True)
class Order:
    """One change of the ordered units."""

    t: float
    from_units: int
    to_units: int
    ready_at: float  # when the added units serve (== t for scale-in)


@dataclass(frozen=True)
class StrategyResult:
    """The outcome of one strategy over one replay."""

    name: str
    underprovisioned_minutes: float
    shortfall_requests: float
    unit_hours: float
    ready_unit_hours: float
    peak_units: int
    actions: int
    orders: tuple[Order, ...]
    # Step functions: ordered/ready units from change_t[k] until the next change.
    ordered_t: FloatArray = field(repr=False)
    ordered_v: IntArray = field(repr=False)
    ready_t: FloatArray = field(repr=False)
    ready_v: IntArray = field(repr=False)
    # Per trace sample: seconds of that sample's interval spent underprovisioned.
    under_seconds: FloatArray = field(repr=False)

    def metrics(self) -> dict[str, Any]:
        """The contract's numbers (``headroom simulate --json``)."""
        return {
            "underprovisioned_minutes": round(self.underprovisioned_minutes, 3),
            "shortfall_requests": round(self.shortfall_requests, 1),
            "unit_hours": round(self.unit_hours, 3),
            "ready_unit_hours": round(self.ready_unit_hours, 3),
            "peak_units": self.peak_units,
            "actions": self.actions,
        }

    def ordered_at(self, t: FloatArray) -> IntArray:
        """Ordered units at each time in ``t``."""
        return _step_at(self.ordered_t, self.ordered_v, t)

    def ready_at(self, t: FloatArray) -> IntArray:
        """Ready units at each time in ``t``."""
        return _step_at(self.ready_t, self.ready_v, t)


@dataclass(frozen=True)
class Simulation:
    """All strategies on one trace, same target, same delay model, same start."""

    trace: Series
    end: float  # the replay covers [trace.start, end)
    target: Target
    initial_units: int
    results: Mapping[str, StrategyResult]


def _step_at(change_t: FloatArray, change_v: IntArray, t: FloatArray) -> IntArray:
    idx = np.searchsorted(change_t, t, side="right") - 1
    return change_v[np.clip(idx, 0, None)]


def replay_end(trace: Series) -> float:
    """The end of the replay: one step past the last sample."""
    if len(trace) < 2:
        raise TraceError("trace: needs at least two samples to replay")
    return trace.end + trace.step


class _Run:
    """The mutable fleet of one strategy during one replay."""

    def __init__(self, t0: float, units: int, delay: DelayModel) -> None:
        self.delay = delay
        self.ordered = units
        self.ready = units
        self.pending: list[tuple[float, int]] = []  # (ready_at, count), sorted by ready_at
        self.ordered_changes: list[tuple[float, int]] = [(t0, units)]
        self.ready_changes: list[tuple[float, int]] = [(t0, units)]
        self.orders: list[Order] = []

    def promote(self, now: float) -> None:
        """Units whose delay has passed by ``now`` become ready (at their exact time)."""
        while self.pending and self.pending[0][0] <= now:
            ready_at, count = self.pending.pop(0)
            self.ready += count
            self.ready_changes.append((ready_at, self.ready))

    def order(self, now: float, units: int) -> None:
        current = self.ordered
        if units == current:
            return
        if units > current:
            ready_at = now + self.delay(current, units)
            bisect.insort(self.pending, (ready_at, units - current))
        else:
            ready_at = now
            remove = current - units
            # Not-yet-ready units go first, the latest to become ready first.
            while remove and self.pending:
                at, count = self.pending[-1]
                taken = min(count, remove)
                remove -= taken
                if taken == count:
                    self.pending.pop()
                else:
                    self.pending[-1] = (at, count - taken)
            if remove:
                self.ready -= remove
                self.ready_changes.append((now, self.ready))
        self.ordered = units
        self.ordered_changes.append((now, units))
        self.orders.append(Order(now, current, units, ready_at))


def _steps(changes: list[tuple[float, int]]) -> tuple[FloatArray, IntArray]:
    """Change points to a step function; later changes at the same time win."""
    t = np.asarray([c[0] for c in changes], dtype=np.float64)
    v = np.asarray([c[1] for c in changes], dtype=np.int64)
    keep = np.append(t[1:] != t[:-1], True)
    return t[keep], v[keep]


def _integral(
    change_t: FloatArray, change_v: IntArray, end: float, start: float = -math.inf
) -> float:
    """Integral of a step function from ``start`` (or its first change) to ``end``
    (unit-seconds)."""
    inside = change_t < end
    t = np.maximum(change_t[inside], start)
    bounds = np.append(t, max(end, start))
    return float(np.sum(change_v[inside] * np.diff(bounds)))


def _account(
    trace: Series,
    end: float,
    target: Target,
    ready_t: FloatArray,
    ready_v: IntArray,
    since: float = -math.inf,
) -> tuple[FloatArray, float]:
    """Per-sample underprovisioned seconds and total shortfall requests (exact), counting
    only the time from ``since`` on."""
    inner = ready_t[(ready_t > trace.start) & (ready_t < end)]
    if trace.start < since < end:
        inner = np.append(inner, since)
    cuts = np.union1d(trace.t, inner)
    seg_end = np.append(cuts[1:], end)
    sample = np.searchsorted(trace.t, cuts, side="right") - 1
    # Missing rows: a sample holds its demand until the next one, but across a hole (more
    # than two median steps) only for one step.
    step = trace.step
    gap = np.diff(np.append(trace.t, end))
    hold = np.where(gap <= 2.0 * step, gap, step)
    held = np.minimum(seg_end, trace.t[sample] + hold[sample])
    dur = np.maximum(held - cuts, 0.0)
    demand = trace.v[sample]
    capacity = _step_at(ready_t, ready_v, cuts).astype(np.float64) * target.capacity_per_unit
    with np.errstate(invalid="ignore"):
        gap = np.where(np.isnan(demand), 0.0, demand - capacity)
    short = (gap > 0) & (cuts >= since)
    under_seconds = np.bincount(sample[short], weights=dur[short], minlength=len(trace))
    shortfall = float(np.sum(gap[short] * dur[short]))
    return under_seconds.astype(np.float64), shortfall


def run_strategy(
    trace: Series,
    strategy: Strategy,
    *,
    target: Target,
    delay: DelayModel,
    initial_units: int,
    progress: Progress | None = None,
    score_from: float | None = None,
) -> StrategyResult:
    """Replay ``trace`` with one strategy; see the module docstring for the rules.

    ``score_from``: replay the whole trace (the strategies learn from all of it) but
    count minutes, shortfall, unit-hours, peak units and actions only from that time on."""
    end = replay_end(trace)
    t0 = trace.start
    lo, hi = target.min_units, target.max_units
    run = _Run(t0, min(hi, max(lo, strategy.initial_units(initial_units))), delay)
    past = History(len(trace))
    times = np.asarray(strategy.decision_times(trace.t), dtype=np.float64)
    times = times[(times >= t0) & (times < end)]
    # Index of the first sample at or after each decision time: what it may not see.
    visible = np.searchsorted(trace.t, times, side="left")
    seen = 0
    report_every = max(1, times.size // 200)
    for k in range(times.size):
        now = float(times[k])
        run.promote(now)
        upto = int(visible[k])
        if upto > seen:
            past._extend(trace.t[seen:upto], trace.v[seen:upto])
            seen = upto
        wanted = strategy.decide(now, past, Fleet(run.ordered, run.ready))
        run.order(now, min(hi, max(lo, int(wanted))))
        if progress is not None and k % report_every == 0:
            progress(strategy.name, k / times.size)
    run.promote(end)
    if progress is not None:
        progress(strategy.name, 1.0)

    ordered_t, ordered_v = _steps(run.ordered_changes)
    ready_t, ready_v = _steps(run.ready_changes)
    since = -math.inf if score_from is None else score_from
    under_seconds, shortfall = _account(trace, end, target, ready_t, ready_v, since)
    actions = sum(1 for o in run.orders if o.to_units != o.from_units and o.t >= since)
    scored = ordered_t >= since
    peak = ordered_v[scored].max() if scored.any() else 0
    if since > ordered_t[0]:  # the units held when scoring starts count too
        peak = max(int(peak), int(_step_at(ordered_t, ordered_v, np.array([since]))[0]))
    return StrategyResult(
        name=strategy.name,
        underprovisioned_minutes=float(under_seconds.sum()) / 60.0,
        shortfall_requests=shortfall,
        unit_hours=_integral(ordered_t, ordered_v, end, since) / 3600.0,
        ready_unit_hours=_integral(ready_t, ready_v, end, since) / 3600.0,
        peak_units=int(peak),
        actions=actions,
        orders=tuple(run.orders),
        ordered_t=ordered_t,
        ordered_v=ordered_v,
        ready_t=ready_t,
        ready_v=ready_v,
        under_seconds=under_seconds,
    )


def simulate(
    trace: Series,
    strategies: Sequence[Strategy],
    *,
    target: Target,
    delay: DelayModel,
    initial_units: int,
    progress: Progress | None = None,
    score_from: float | None = None,
) -> Simulation:
    """Replay ``trace`` once per strategy, all from ``initial_units`` with ``delay``
    (scored from ``score_from`` on, see :func:`run_strategy`)."""
    end = replay_end(trace)
    if score_from is not None and not trace.start <= score_from < end:
        raise TraceError(
            f"score-from: {score_from:.0f} is outside the trace ({trace.start:.0f}..{end:.0f})"
        )
    results = {
        s.name: run_strategy(
            trace,
            s,
            target=target,
            delay=delay,
            initial_units=initial_units,
            progress=progress,
            score_from=score_from,
        )
        for s in strategies
    }
    return Simulation(
        trace=trace, end=end, target=target, initial_units=initial_units, results=results
    )
