"""``oracle``: perfect foresight, the cheapest schedule with no shortfall.

The lower bound the other strategies are measured against. It is built from the whole
trace on purpose (it sees the future) but gets the same provisioning delay, the same
bounds and the same starting units as everyone, and decides on the trace's own clock.

Rule, at sample time ``t[i]`` with delay ``d``: keep ordered the most units any sample
``j`` with ``t[i] <= t[j] < t[i+1] + d`` requires (``required[j]`` = the fewest units that
serve ``demand[j]`` at 100 % utilisation, clamped to the target's bounds). Samples before
``t[i+1] + d`` cannot be served by anything ordered later, so no schedule without
shortfall can hold fewer units at ``t[i]``; and holding exactly that many is enough,
because scale-in removes the newest units first, so the oldest ``required[j]`` units stay
from ``t[j] - d`` to ``t[j]``. Hence, for a delay that does not depend on the size of the
change and decisions on the trace's clock, it minimises unit-hours among schedules
without shortfall (tests/simulate check it by brute force). Where no schedule avoids
shortfall (demand above ``max_units``, or a rise within ``d`` of the start) it still
orders what the rule says. For size-dependent delays (a Redis reshard takes longer the
more it moves) it orders the largest level some sample needs within ``delay(ordered,
level)`` of the next decision, never cancels an order under way, and lets units go only
down to a level from which no such order would already be due (fewer units make every
later order bigger, so slower): a good schedule, not a proven optimum.

``utilization`` < 1 sizes for that utilisation instead (e.g. the SLO's target), an
"oracle with the same safety margin" for comparisons; the default is the true bound.
"""

from __future__ import annotations

import numpy as np

from headroom.policies.capacity import covering_units_array
from headroom.policies.policy import Target
from headroom.policies.series import FloatArray, Series
from headroom.policies.simulate import DelayModel, Fleet, History, replay_end


class Oracle:
    """Knows every future sample; orders each unit exactly one delay before it is needed."""

    name = "oracle"

    def __init__(
        self, trace: Series, target: Target, delay: DelayModel, utilization: float = 1.0
    ) -> None:
        if not 0 < utilization <= 1:
            raise ValueError(f"oracle utilization {utilization} must be in (0, 1]")
        self._t = trace.t
        self._end = replay_end(trace)
        scaled = np.asarray(trace.v, dtype=np.float64) / utilization
        needed = covering_units_array(scaled, target)
        self._required = np.clip(needed, target.min_units, target.max_units)
        self._delay = delay
        self._max = target.max_units
        # A delay that is the same for any change: the proven rule applies.
        lo, hi = target.min_units, target.max_units
        probes = {delay(lo, lo + 1), delay(lo, hi), delay(hi - 1, hi), delay(lo, lo)}
        self._fixed: float | None = probes.pop() if len(probes) == 1 else None

    def initial_units(self, default: int) -> int:
        return default

    def decision_times(self, grid: FloatArray) -> FloatArray:
        return grid

    def _window_max(self, i: int, horizon: float) -> int:
        hi = int(np.searchsorted(self._t, horizon, side="left"))
        return int(self._required[i : max(hi, i + 1)].max())

    def decide(self, now: float, past: History, fleet: Fleet) -> int:
        i = int(np.searchsorted(self._t, now, side="left"))
        if i >= self._t.size:
            return fleet.ordered
        nxt = float(self._t[i + 1]) if i + 1 < self._t.size else self._end
        if self._fixed is not None:
            return self._window_max(i, nxt + self._fixed)  # the proven rule
        current = fleet.ordered
        out = self._scale_out(i, now, nxt, current)
        if out > current:
            return out
        if fleet.pending:
            return current  # cancelling an order under way would restart its clock
        wanted = self._window_max(i, nxt + self._delay(current, current))
        # Letting units go makes every later order bigger, so slower: keep the fewest units
        # from which no order would already be due (the scale-out rule finds none).
        for level in range(wanted, current):
            if self._scale_out(i, now, nxt, level) <= level:
                return level
        return current

    def _scale_out(self, i: int, now: float, nxt: float, current: int) -> int:
        """Size-dependent delays: what to order now, or ``current`` when nothing is due.

        A level ``k`` is *due* when some sample needs ``k`` before an order for it placed
        at the next decision could be ready (``delay(current, k)``). A bigger order takes
        longer and its units all arrive together, so it orders the largest level, up to
        the largest due one, that is still ready for the first sample needing more than
        ``current``; else that first level (the rest follows from it, with shorter
        delays)."""
        far = nxt + self._delay(current, self._max)
        hi = max(int(np.searchsorted(self._t, far, side="left")), i + 1)
        seg = self._required[i:hi]
        if int(seg.max()) <= current:
            return current
        running = np.maximum.accumulate(seg)
        levels = np.unique(seg[seg > current]).tolist()
        first = [float(self._t[i + int(np.searchsorted(running, k, side="left"))]) for k in levels]
        due = [
            k for k, when in zip(levels, first, strict=True) if when < nxt + self._delay(current, k)
        ]
        if not due:
            return current
        best = int(levels[0])
        for k in levels:
            if k > due[-1] or now + self._delay(current, k) > first[0]:
                break
            best = int(k)
        return best
