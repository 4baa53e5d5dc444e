"""The plan ahead: what the rule (:mod:`headroom.policies.combined`) will order over the
forecast's horizon, projected from the same inputs as its decision now.

``headroom plan``, the operator's status (``nextAction``, the plan) and the alert rules read
this timeline, so what they show is the rule that runs, not a second one. Per forecast
position ``t[i]`` from now on:

- ``required[i]``: what the rule wants ready at ``t[i]``: the predictive need there (the
  measured level moved by the forecast's shape, an event's pre-scale and margin, as the
  rule sizes them) and the reactive half's need on that demand when it is measured;
- ``units[i]``: what is ordered at ``t[i]``: every predictive need the change's delay (and
  the lead time) reaches, ordered ahead as the rule orders it; the reactive need when it is
  measured (it cannot be ordered earlier); scaled in only to the highest order of the last
  ``scaleIn.stabilization`` (the HPA's window), by ``scaleIn.stepUnits``, never where
  ``scaleIn.duringEvents`` or ``cooldown`` hold. The first position is the decision now.

What the projection leaves to the ticks: the HPA's tolerance and rate limits, freeze
windows, the scale-in interval, a budget's running use and anything measured later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from headroom.policies.calendar import DemandEvent
from headroom.policies.planner.values import Plan, PlannedAction
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.text import clock, compare_qps, duration_text, target_key, unit_noun

_EPS = 1e-9

# A position of the rule's look-ahead: time, units needed, median demand, utilisation, event.
Row = tuple[float, int, float, float, DemandEvent | None]


def best_within(
    rows: Sequence[Row], now: float, reach: float, step: float
) -> tuple[int, float, float, DemandEvent | None]:
    """The largest need among the positions that hold demand within ``[now, now + reach)``."""
    best: Row | None = None
    end = now + reach
    for row in rows:
        if row[0] + step <= now:
            continue
        if row[0] >= end and best is not None:
            break
        if best is None or row[1] > best[1]:
            best = row
    if best is None:  # past the forecast's end: its last position
        best = rows[-1]
    return best[1], best[2], best[3], best[4]


def project(
    spec: PolicySpec,
    target: Target,
    t: np.ndarray,
    rows: Sequence[Row],
    *,
    now: float,
    units: int,
    decided: int,
    delay: Callable[[int, int], float] | None = None,
    blocked: Callable[[float], bool] | None = None,
) -> Plan:
    """The plan on the forecast's times ``t`` from the rule's positions ``rows`` (from the
    position holding ``now`` onward); ``units`` are ordered now and ``decided`` is the
    rule's decision now (the plan's first position)."""
    key, noun = target_key(target), unit_noun(target)
    n = int(t.size)
    lo_u, hi_u = target.min_units, target.max_units
    delay = delay or target.provisioning.delay
    per_unit = target.capacity_per_unit / spec.headroom_factor
    reactive_util = spec.reactive_utilization
    required = np.full(n, units, dtype=np.int64)
    ordered = np.full(n, units, dtype=np.int64)
    if n == 0 or not rows:
        return Plan(key, t, required, ordered, (), False, ("no forecast",) if n == 0 else ())
    first = max(0, int(np.searchsorted(t, rows[0][0], side="left")))
    count = min(len(rows), n - first)
    need = np.empty(count, dtype=np.int64)
    react = np.empty(count, dtype=np.int64)
    events: list[DemandEvent | None] = []
    capped = False
    for j in range(count):
        _, units_j, median, util, event = rows[j]
        r = math.ceil(median / (per_unit * reactive_util) - _EPS) if median > 0 else lo_u
        p = math.ceil(median / (per_unit * util) - _EPS) if median > 0 else lo_u
        capped = capped or max(r, p) > hi_u
        react[j] = min(max(r, lo_u), hi_u)
        need[j] = units_j
        events.append(event)
    required[first : first + count] = np.maximum(need, react)
    # Orders: each predictive need is ordered as soon as its change's delay (and the lead
    # time) reaches it; the reactive need when it is measured.
    tt = t[first : first + count]
    ahead = np.array(react)
    cause = list(range(count))  # the position whose need an order is for
    lead = spec.lead_time
    for j in range(count):
        k = j
        while k < count and tt[k] - tt[j] <= delay(int(ahead[j]), int(need[k])) + lead:
            if need[k] > ahead[j]:
                ahead[j] = need[k]
                cause[j] = k
            k += 1
    ahead[0] = decided
    # Scale-in to the highest order of the last stabilisation window (the HPA's).
    window = spec.scale_in.stabilization
    out = ahead.copy()
    start = 0
    for j in range(1, count):
        while tt[j] - tt[start] > window:
            start += 1
        out[j] = max(int(ahead[start : j + 1].max()), int(ahead[j]))
    out[0] = decided
    # The policy's scale-in options: holds in and after events, and the step.
    for j in range(1, count):
        if out[j] < out[j - 1]:
            if blocked is not None and blocked(float(tt[j])):
                out[j] = out[j - 1]
            else:
                prev_j = int(out[j - 1])
                out[j] = max(int(out[j]), prev_j - spec.scale_in.step_for(prev_j))
    ordered[first : first + count] = out
    ordered[:first] = units
    actions: list[PlannedAction] = []
    prev = units
    for j in range(count):
        now_j = float(tt[j]) if j else now
        to = int(out[j])
        if to == prev:
            continue
        k = cause[j]
        event = events[k]
        median, util = rows[k][2], rows[k][3]
        if to > prev:
            if need[k] >= react[k]:
                label = "forecast p50" + (f" for '{event.name}'" if event is not None else "")
            else:
                label, util = "reactive: forecast p50", reactive_util
            why = compare_qps(label, median, ">", prev * per_unit * util, util)
            ready = now_j + delay(prev, to)
        else:
            why = f"the highest need of the last {duration_text(window)} is {to} {noun}: " + (
                compare_qps("forecast p50", median, "≤", to * per_unit * util, util)
            )
            ready = now_j
        head = f"{key} {prev}→{to} {noun} at {clock(now_j, 'UTC')}"
        actions.append(
            PlannedAction(
                now_j,
                ready,
                key,
                prev,
                to,
                f"{head}: {why}",
                event.name if event is not None and to > prev else None,
                to >= hi_u and capped,
            )
        )
        prev = to
    return Plan(key, t, required, ordered, tuple(actions), capped)
