"""The plan ahead: what the rule (:mod:`headroom.policies.combined`) will order over the
forecast's horizon, projected from the same inputs as its decision now.

``headroom plan``, the operator's status (``nextAction``, the plan) and the alert rules read
this timeline, so what they show is the rule that runs, not a second one. Per forecast
position ``t[i]`` from now on:

- ``required[i]``: what the rule wants ready at ``t[i]``: the predictive need there (the
  measured level moved by the forecast's shape, an event's pre-scale and margin, as the
  rule sizes them, before a budget's ceiling) and the reactive half's need on that demand
  when it is measured;
- ``units[i]``: what is ordered at ``t[i]``: every predictive need the change's delay (and
  the lead time) reaches, ordered ahead as the rule orders it; the reactive need when it is
  measured (it cannot be ordered earlier); scaled in only to the highest order of the last
  ``scaleIn.stabilization`` (the HPA's window), by ``scaleIn.stepUnits``, never where
  ``scaleIn.duringEvents`` or ``cooldown`` hold. The first position is the decision now.
- as the decision does: inside a freeze window nothing is scaled in and a scale-out goes
  only as far as the demand then (the reactive need); a unit-hour budget's ceiling now
  holds every predictive need down to it (or to the reactive need, when that is more),
  and an order it cut says so.

What the projection leaves to the ticks: the HPA's tolerance, burst window and rate
limits, the scale-in interval, how a budget's use runs on and anything measured later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from headroom.policies.calendar import DemandEvent
from headroom.policies.capacity import IntArray
from headroom.policies.options import FREEZE_CUT, budget_cut, freeze_allows
from headroom.policies.planner.values import Plan, PlannedAction
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray
from headroom.policies.text import clock, compare_qps, duration_text, target_key, unit_noun

_EPS = 1e-9
T = TypeVar("T")
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Positions:
    """The rule's look-ahead, one column per field: times, units needed, the anchored
    median demand, the utilisation it is sized at and the event sizing each position
    (``which``: an index into ``events``, -1 for none)."""

    t: FloatArray
    need: IntArray  # within the target's bounds
    median: FloatArray
    util: FloatArray
    which: IntArray
    events: Sequence[DemandEvent]
    wanted: IntArray  # the units needed before the bounds (above maxUnits: capped)

    def __len__(self) -> int:
        return int(self.t.size)

    def event(self, k: int) -> DemandEvent | None:
        i = int(self.which[k])
        return self.events[i] if i >= 0 else None

    def at(self, k: int) -> tuple[int, float, float, DemandEvent | None]:
        """Position ``k``'s units needed, median demand, utilisation and event."""
        return int(self.need[k]), float(self.median[k]), float(self.util[k]), self.event(k)


def best_within(
    positions: Positions, now: float, reach: float, step: float, ready: float = -math.inf
) -> tuple[int, float, float, DemandEvent | None]:
    """The largest need (the first, of equals) among the positions that hold demand within
    ``[now, now + reach)`` and after ``ready`` (what is over before a change could be
    ready orders nothing); the first of them holding demand then, always."""
    t = positions.t
    end = now + reach
    first = int((t + step).searchsorted(max(now, ready), side="right"))
    if first == t.size:  # past the forecast's end: its last position
        return positions.at(t.size - 1)
    stop = max(int(t.searchsorted(end, side="left")), first + 1)
    return positions.at(first + int(np.argmax(positions.need[first:stop])))


class _Kept(Generic[T]):
    """A value kept with the inputs it was made from (arrays compared by value, the rest
    by equality): the last one only."""

    def __init__(self) -> None:
        self._arrays: tuple[np.ndarray, ...] = ()
        self._key: tuple[object, ...] | None = None
        self._value: T | None = None

    def get(self, arrays: tuple[np.ndarray, ...], key: tuple[object, ...]) -> T | None:
        """The value kept for these inputs, or None."""
        if self._value is None or key != self._key:
            return None
        if all(np.array_equal(a, b) for a, b in zip(self._arrays, arrays, strict=True)):
            return self._value
        return None

    def put(self, arrays: tuple[np.ndarray, ...], key: tuple[object, ...], value: T) -> None:
        self._arrays, self._key, self._value = tuple(a.copy() for a in arrays), key, value

    def clear(self) -> None:
        self._arrays, self._key, self._value = (), None, None


class Schedules:
    """What :func:`project` made for one target on the last pass, kept by its rule for
    the next. The orders and the scale-in walk follow from the times, the needs, the
    reactive needs, the decision now and the target's delays and holds alone; a pass that
    has them all equal to the last one's (the same forecast and needs in whole units
    unmoved by the new samples) reuses them, and with the same demand, utilisations and
    events as well, the orders' text (but for an order now, at the new time)."""

    def __init__(self) -> None:
        self.schedule: _Kept[tuple[IntArray, IntArray, BoolArray]] = _Kept()
        self.actions: _Kept[tuple[PlannedAction, ...]] = _Kept()


def project(
    spec: PolicySpec,
    target: Target,
    t: np.ndarray,
    positions: Positions,
    *,
    now: float,
    units: int,
    decided: int,
    delay: Callable[[int, int], float] | None = None,
    blocked: Callable[[float], bool] | None = None,
    frozen: Callable[[FloatArray], BoolArray] | None = None,
    ceiling: int | None = None,
    memo: Schedules | None = None,
) -> Plan:
    """The plan on the forecast's times ``t`` from the rule's positions ``positions`` (from the
    position holding ``now`` onward); ``units`` are ordered now and ``decided`` is the
    rule's decision now (the plan's first position); ``blocked``: where scale-in is held,
    ``frozen``: which times are in a freeze window, ``ceiling``: a budget's ceiling on
    the predictive needs; ``memo`` keeps the schedule for the next call
    (:class:`Schedules`)."""
    key, noun = target_key(target), unit_noun(target)
    n = int(t.size)
    lo_u, hi_u = target.min_units, target.max_units
    delay = delay or target.provisioning.delay
    per_unit = target.capacity_per_unit / spec.headroom_factor
    reactive_util = spec.reactive_utilization
    required = np.full(n, units, dtype=np.int64)
    ordered = np.full(n, units, dtype=np.int64)
    if n == 0 or not len(positions):
        return Plan(key, t, required, ordered, (), False, ("no forecast",) if n == 0 else ())
    first = max(0, int(t.searchsorted(positions.t[0], side="left")))
    count = min(len(positions), n - first)
    need = wanted_need = positions.need[:count]
    if ceiling is not None and ceiling < hi_u:
        need = np.maximum(np.minimum(need, ceiling), lo_u)
    median = positions.median[:count]
    utils = positions.util[:count]
    r = np.where(median > 0, np.ceil(median / (per_unit * reactive_util) - _EPS), lo_u)
    capped = bool(max(r.max(initial=0), positions.wanted[:count].max(initial=0)) > hi_u)
    react = np.minimum(np.maximum(r, lo_u), hi_u).astype(np.int64)  # np.clip, without its checks
    # What must be ready is what the rule wants (before a budget: what the alert reads);
    # the plan is capped where maxUnits or the budget holds a need it would order.
    required[first : first + count] = np.maximum(wanted_need, react)
    held = capped or bool((wanted_need > np.maximum(need, react)).any())
    # Orders: each predictive need is ordered as soon as its change's delay (and the lead
    # time) reaches it; the reactive need when it is measured; then scaled in as the HPA
    # and the options do. From the times and needs alone: kept for the next pass (memo;
    # the needs first: what a new sample moves).
    tt = t[first : first + count]
    inputs, arrays = (decided, delay, spec, target, blocked, frozen), (need, react, tt)
    got = memo.schedule.get(arrays, inputs) if memo is not None else None
    if got is None:
        got = _schedule(spec, tt, need, react, delay, decided, blocked, frozen)
        if memo is not None:
            memo.schedule.put(arrays, inputs, got)
            memo.actions.clear()  # made from another schedule
    out, cause, cut = got
    window = spec.scale_in.stabilization
    ordered[first : first + count] = out
    ordered[:first] = units

    def _order(j: int, prev: int) -> PlannedAction:
        """The order at position ``j`` (the first: now), from ``prev`` units."""
        to = int(out[j])
        now_j = float(tt[j]) if j else now
        k = int(cause[j])
        event = positions.event(k)
        qps, util = float(median[k]), float(utils[k])
        notes: tuple[str, ...] = ()
        if to > prev:
            # As the decision: the budget's words where it held this need down, and the
            # forecast leads unless the budget or a freeze window left the reactive need.
            budget = int(wanted_need[k]) > int(need[k])
            if budget:
                notes = (budget_cut(int(wanted_need[k]), max(int(need[k]), int(react[k]))),)
            if cut[j]:
                notes = (*notes, FREEZE_CUT)
            led = not cut[j] and need[k] >= react[k] and not (budget and need[k] <= react[k])
            if led:
                label = "forecast p50" + (f" for '{event.name}'" if event is not None else "")
            else:
                label, util, event = "reactive: forecast p50", reactive_util, None
            within, op, capacity, ready = None, ">", prev * per_unit * util, now_j + delay(prev, to)
        else:
            label, within, op = "forecast p50", window, "≤"
            capacity, ready = to * per_unit * util, now_j
        # Written when read (:class:`PlannedAction`): a plan has dozens of orders.
        why = partial(
            _reason, key, noun, prev, to, now_j, within, label, qps, op, capacity, util, notes
        )
        return PlannedAction(
            now_j,
            ready,
            key,
            prev,
            to,
            why,
            event.name if event is not None and to > prev else None,
            to >= hi_u and capped,
        )

    # The orders: where what is ordered changes (the first position: from ``units``).
    now_first = bool(count) and int(out[0]) != units
    changed = (out[1:] != out[:-1]).nonzero()[0] + 1
    at = np.concatenate([[0], changed]) if now_first else changed
    # An order's text reads the demand, utilisation and event of the position it is for.
    cause_at = cause[at]
    # (and, where a budget cut it, the need it cut)
    texts = (median[cause_at], utils[cause_at], positions.which[cause_at], cut[at],
             wanted_need[cause_at])  # fmt: skip
    said = (units, capped, positions.events, ceiling)
    kept = memo.actions.get(texts, said) if memo is not None else None
    if kept is not None:
        if now_first and kept[0].at != now:  # an order now: at this pass's time
            kept = (_order(0, units), *kept[1:])
        return Plan(key, t, required, ordered, kept, held)
    actions: list[PlannedAction] = []
    prev = units
    for j in at.tolist():
        actions.append(_order(j, prev))
        prev = int(out[j])
    if memo is not None:
        memo.actions.put(texts, said, tuple(actions))
    return Plan(key, t, required, ordered, tuple(actions), held)


def _reason(
    key: str,
    noun: str,
    prev: int,
    to: int,
    at: float,
    window: float | None,
    label: str,
    qps: float,
    op: str,
    capacity: float,
    util: float,
    notes: tuple[str, ...] = (),
) -> str:
    """A planned order's reason: ``prev`` -> ``to`` at ``at`` as ``label``'s demand ``qps``
    compares to ``capacity`` (a scale-in: to the highest need of the last ``window``),
    then ``notes`` (what cut a scale-out), as the decision words them."""
    head = f"{key} {prev}→{to} {noun} at {clock(at, 'UTC')}"
    if window is not None:
        head += f": the highest need of the last {duration_text(window)} is {to} {noun}"
    return f"{head}: {compare_qps(label, qps, op, capacity, util)}" + "".join(
        f"; {note}" for note in notes
    )


def _schedule(
    spec: PolicySpec,
    tt: FloatArray,
    need: IntArray,
    react: IntArray,
    delay: Callable[[int, int], float],
    decided: int,
    blocked: Callable[[float], bool] | None,
    frozen: Callable[[FloatArray], BoolArray] | None = None,
) -> tuple[IntArray, IntArray, BoolArray]:
    """What is ordered at each position of ``tt``, the position each order is for and
    where a freeze window cut a scale-out: the orders (:func:`_orders`), scaled in to the
    highest of the last stabilisation window (the HPA's); inside a freeze window
    (``frozen``) never scaled in and scaled out only to the reactive need there; by the
    step and never where ``blocked``."""
    count = int(tt.size)
    ahead, cause = _orders(tt, need, react, delay, spec.lead_time, decided)
    # Scale-in to the highest order of the last stabilisation window (the HPA's): above
    # the order itself only within a window after a drop (elsewhere the window rises).
    window = spec.scale_in.stabilization
    out = ahead.copy()
    fell = (ahead[1:] < ahead[:-1]).nonzero()[0] + 1
    if fell.size:
        gap = float((tt[1:] - tt[:-1]).min())
        most = int(window // gap) + 1 if gap > 0 else count  # positions a window reaches back
        after = (fell[:, None] + np.arange(most + 1)).ravel()
        after = after[after < count]
        back = tt.searchsorted(tt[after] - window, side="left")  # the window's first
        lag = np.minimum(np.arange(most + 1), (after - back)[:, None])
        out[after] = ahead[after[:, None] - lag].max(axis=1)
    out[0] = decided
    cut = np.zeros(count, dtype=bool)
    if frozen is not None and count > 1:
        inside = frozen(tt).nonzero()[0]
        if inside.size:
            _freeze(out, react, cause, cut, inside)
    # The policy's scale-in options: holds in and after events, and the step (on plain
    # lists: most positions change nothing, and a list is read fastest one by one).
    seq: list[int] = out.tolist()
    # Only a drop can change: the positions where ``out`` falls, and the one after each
    # position a hold or a step raised (it may now be a drop from the raised value).
    drops = ((out[1:] < out[:-1]).nonzero()[0] + 1).tolist()
    k, j = 0, drops[0] if drops else count
    while j < count:
        raised = False
        if seq[j] < seq[j - 1]:
            if blocked is not None and blocked(float(tt[j])):
                seq[j], raised = seq[j - 1], True
            else:
                lowest = seq[j - 1] - spec.scale_in.step_for(seq[j - 1])
                if lowest > seq[j]:
                    seq[j], raised = lowest, True
        if raised:
            out[j] = seq[j]
        while k < len(drops) and drops[k] <= j:
            k += 1
        j = j + 1 if raised else (drops[k] if k < len(drops) else count)
    return out, cause, cut


def _freeze(
    out: IntArray, react: IntArray, cause: IntArray, cut: BoolArray, inside: IntArray
) -> None:
    """Inside a freeze window (the positions ``inside``), as the options do a decision:
    no scale-in, and a scale-out only to the demand then (the reactive need), not the
    forecast's; in place, in order (each position from the one before it)."""
    for j in inside.tolist():
        if j == 0:
            continue  # the decision now: the options already had it
        prev, want = int(out[j - 1]), int(out[j])
        allowed = freeze_allows(prev, want, int(react[j]))
        if want > allowed:  # a scale-out cut to the demand then
            out[j], cause[j], cut[j] = allowed, j, allowed > prev
        else:  # a scale-in held, or nothing cut
            out[j] = allowed


def _orders(
    tt: FloatArray,
    need: IntArray,
    react: IntArray,
    delay: Callable[[int, int], float],
    lead: float,
    decided: int,
) -> tuple[IntArray, IntArray]:
    """Per position ``j``: what is ordered there (the reactive need at ``j``, or the largest
    predictive need ``v`` at a later position its change's delay from ``react[j]`` plus the
    lead time reaches) and the position that need is for: the first position needing at
    least ``v`` that still holds demand once a change ordered at ``j`` could be ready (as
    the rule: what is over by then orders nothing), if it is due."""
    count = int(tt.size)
    ahead, cause = react.copy(), np.arange(count)
    if not count:
        return ahead, cause
    # What may be held (any need the delay reaches, as units already ordered) where it is
    # above the reactive need.
    js, held, held_cause = _due(tt, need, react, delay, lead, ahead, cause)
    # A need over before a change could be ready is not ordered, but what was ordered
    # for it before (or is now: the decision) is held through it, as the rule holds
    # units a coming need wants.
    ahead[0] = decided
    up = (held > ahead[js]).nonzero()[0]
    for j, most, why in zip(*(x[up].tolist() for x in (js, held, held_cause)), strict=True):
        if j and ahead[j - 1] > ahead[j]:
            keep = min(most, int(ahead[j - 1]))
            if keep > ahead[j]:
                ahead[j], cause[j] = keep, why
    return ahead, cause


def _due(
    tt: FloatArray,
    need: IntArray,
    react: IntArray,
    delay: Callable[[int, int], float],
    lead: float,
    ahead: IntArray,
    cause: IntArray,
) -> tuple[IntArray, IntArray, IntArray]:
    """The largest need due per position ``j`` (a need ``v`` whose first position from
    ``j`` on is within ``v``'s delay from ``react[j]`` plus the lead time): what may be
    ordered (from where a change ordered at ``j`` could be ready) into ``ahead`` and the
    position it is for into ``cause``, in place; what may be held (from ``j`` itself)
    where it is above ``react``: those positions, the units and the positions they are
    for."""
    count = int(tt.size)
    # A need at or below every reactive need orders nothing ahead of it.
    low = int(react.min()) + 1
    values = np.bincount(need)[low:].nonzero()[0] + low
    if not values.size:
        return values, values, values
    froms, inverse = distinct(react)  # the reactive units present, and each one's index
    table, longest, soonest = _delays(delay, lead, tuple(froms.tolist()), tuple(values.tolist()))
    # Only a position with a greater need within the longest delay's positions can have
    # one due (most have none: needs above the reactive ones are rare, mostly an event's).
    gap = float((tt[1:] - tt[:-1]).min()) if count > 1 else 0.0
    width = int(min(longest // gap + 2, count)) if gap > 0 and math.isfinite(longest) else count
    js = (_window_bound(need, width) > react).nonzero()[0]
    if not js.size:
        return js, js, js
    which = inverse[js]  # each one's reactive units, in froms
    step = float(tt[1] - tt[0]) if count > 1 else 0.0
    # The first position still holding demand when a change ordered at j is ready.
    ready = np.maximum(tt.searchsorted(tt[js] + soonest[which] - step, side="right"), js)
    # Read only from the first of them to the end of the last one's window.
    lo, hi = int(js[0]), min(count, int(js[-1]) + width)
    # after[r, i]: the first position from the i-th start on needing at least values[r],
    # from lo (hi - lo: none): the r-th row of positions needing that much, in one flat
    # index (``line`` per row, the last of each row a stop), read by how many come before.
    line = hi - lo + 1
    enough = np.append(need[lo:hi], -1)[None, :] >= values[:, None]
    enough[:, -1] = True
    flat = enough.ravel()
    rows = (np.arange(values.size) * line)[:, None]
    at = rows + np.minimum(np.concatenate([js, ready]) - lo, line - 1)
    after = flat.nonzero()[0][flat.cumsum()[at] - flat[at]] - rows
    # A need's time, NaN for none: never within reach.
    tx = np.append(tt[lo:hi], np.nan)
    pairs = np.concatenate([js, js])
    due = tx[after] - tt[pairs] <= table[:, np.concatenate([which, which])]
    top = np.where(due, np.arange(values.size)[:, None], -1).max(axis=0)  # the largest due
    n = js.size
    some = (top[n:] >= 0).nonzero()[0]
    ahead[js[some]], cause[js[some]] = values[top[n + some]], lo + after[top[n + some], n + some]
    some = (top[:n] >= 0).nonzero()[0]
    return js[some], values[top[some]], lo + after[top[some], some]


@lru_cache(maxsize=1024)
def _delays(
    delay: Callable[[int, int], float], lead: float, froms: tuple[int, ...], values: tuple[int, ...]
) -> tuple[FloatArray, float, FloatArray]:
    """The delay plus ``lead`` from each of ``froms`` (columns) to each of ``values`` above
    it (rows; NaN where not above: never due), the longest of them, and each from's
    soonest change (one unit). A target asks for the same few on every pass, and targets
    configured alike share their delay (:func:`~headroom.policies.combined._chain`)."""
    rows = [[delay(b, v) + lead if v > b else math.nan for b in froms] for v in values]
    table = np.array(rows)
    soonest = np.array([delay(b, b + 1) for b in froms])
    table.flags.writeable = soonest.flags.writeable = False  # shared by the callers
    return table, max(x for row in rows for x in row if x == x), soonest


def _window_bound(x: IntArray, width: int) -> IntArray:
    """At least ``max(x[j : j + width])`` per position ``j``: the largest of the two blocks
    of ``width`` positions that hold that window (-1 past the end)."""
    blocks = -(-x.size // width) + 1
    padded = np.full(blocks * width, -1, dtype=x.dtype)
    padded[: x.size] = x
    top = padded.reshape(blocks, width).max(axis=1)
    return np.repeat(np.maximum(top[:-1], top[1:]), width)[: x.size]


def distinct(x: IntArray) -> tuple[IntArray, IntArray]:
    """``np.unique(x, return_inverse=True)`` for small non-negative unit counts, by counting
    (a plan asks this of every position; sorting them costs more)."""
    if not x.size:
        return x.copy(), x.copy()
    present = np.bincount(x) > 0
    lookup = present.cumsum() - 1
    return present.nonzero()[0], lookup[x]
