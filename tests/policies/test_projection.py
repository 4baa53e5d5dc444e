"""The plan's projection (policies/projection.py) orders and holds as the rule does."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from headroom.policies.options import FREEZE_CUT
from headroom.policies.planner.values import Plan
from headroom.policies.policy import parse_policy
from headroom.policies.projection import Positions, Schedules, _orders, project

STEP = 60.0
T0 = 1_700_000_000.0
DELAY = 3600.0  # a reshard's hour


def _an_hour(a: int, b: int) -> float:
    """Every change's delay (one function: a kept plan compares its inputs)."""
    return DELAY


def _plan(need: np.ndarray, units: int = 3) -> np.ndarray:
    spec = parse_policy(
        {
            "name": "p",
            "targets": [
                {
                    "name": "cache",
                    "capacityPerUnit": 100,
                    "minUnits": 3,
                    "maxUnits": 20,
                    "provisioning": {"fixedSeconds": "1h"},
                }
            ],
        }
    )
    n = need.size
    t = np.asarray(T0 + np.arange(n) * STEP, dtype=np.float64)
    median = np.asarray(need * 20.0 * spec.forecast_utilization, dtype=np.float64)
    pos = Positions(
        t, need.astype(np.int64), median, np.full(n, 1.0), np.full(n, -1, dtype=np.int64),
        (), need.astype(np.int64),
    )  # fmt: skip
    plan = project(spec, spec.targets[0], t, pos, now=T0, units=units, decided=units,
                   delay=lambda a, b: DELAY)  # fmt: skip
    return np.asarray(plan.units)


def test_a_pre_scale_ordered_a_delay_ahead_is_held_through_the_need_it_is_for() -> None:
    """A 10-minute need for 7 units two hours ahead, on a target whose change takes an hour:
    ordered an hour ahead of it and held until it has passed, not dropped in the hour
    between (as the rule holds units a coming need wants); a need over before a change
    ordered at its start could be ready is not ordered there, but that changes nothing
    for units already ordered."""
    need = np.full(240, 3)
    need[120:130] = 7
    units = _plan(need)
    assert units[:55].max() == 3  # not yet: ordered one delay (and a tick) ahead
    assert (units[61:130] == 7).all(), units[55:135].tolist()
    assert units[140:].max() == 3  # released after it (and the stabilisation window)


def test_a_need_over_before_a_change_could_be_ready_orders_nothing_from_inside_it() -> None:
    """The same short need, but already under way when the plan starts: what a change
    ordered now would be ready for is the level after it, so nothing is ordered."""
    need = np.full(240, 3)
    need[0:10] = 7
    assert _plan(need)[1:].max() == 3


def test_units_ordered_before_the_plan_starts_are_held_for_the_need_they_are_for() -> None:
    """Planned 36 minutes before that need, with its 7 units already ordered: the plan
    holds them through it (the first plan ahead of the demo's show dropped them to its
    in-event need for a while, and planChanged fired)."""
    need = np.full(240, 3)
    need[36:46] = 7
    units = _plan(need, units=7)
    assert (units[:46] == 7).all(), units[:50].tolist()
    assert units[60:].max() == 3


def _orders_by_definition(
    tt: np.ndarray, need: np.ndarray, react: np.ndarray, delay: Callable[[int, int], float],
    lead: float, decided: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`_orders`' docstring, position by position and need by need."""
    n = tt.size
    step = float(tt[1] - tt[0]) if n > 1 else 0.0
    ahead, cause = react.copy(), np.arange(n)
    held, held_cause = react.copy(), np.arange(n)
    for j in range(n):
        b = int(react[j])
        ready = max(int(np.searchsorted(tt, tt[j] + delay(b, b + 1) - step, side="right")), j)
        for start, out, why in ((ready, ahead, cause), (j, held, held_cause)):
            for v in sorted(set(need.tolist())):  # ascending: the largest due wins
                later = [p for p in range(start, n) if need[p] >= v]
                if v > b and later and tt[later[0]] - tt[j] <= delay(b, v) + lead:
                    out[j], why[j] = v, later[0]
    ahead[0] = decided
    for j in range(1, n):
        if held[j] > ahead[j] and ahead[j - 1] > ahead[j]:
            keep = min(int(held[j]), int(ahead[j - 1]))
            if keep > ahead[j]:
                ahead[j], cause[j] = keep, held_cause[j]
    return ahead, cause


def test_the_order_pass_is_its_definition_on_random_needs_times_and_delays() -> None:
    """The order pass looks only where a greater need is within the longest delay; what
    it orders and for which position equal the definition's everywhere (uneven times,
    delays that are not monotone in the size of the change, one position)."""
    rng = np.random.default_rng(5)
    for case in range(300):
        n = int(rng.choice([1, 2, 9, 60]))
        gaps = rng.uniform(1, 3, n) if case % 3 == 0 else np.ones(n)
        tt = T0 + np.cumsum(gaps) * STEP
        need = np.clip(np.round(np.cumsum(rng.normal(0, 0.7, n)) + 5), 0, 40).astype(np.int64)
        react = np.maximum(0, need + rng.integers(-2, 3, n))
        table = rng.uniform(0, 20 * STEP, (64, 64)) if case % 2 else None
        fixed = float(rng.choice([0.0, 300.0, 1800.0]))

        def delay(a: int, b: int, table: np.ndarray | None = table, fixed: float = fixed) -> float:
            return float(table[a, b]) if table is not None else fixed + 60.0 * max(0, b - a)

        lead, decided = float(rng.choice([0.0, 120.0])), int(react[0]) + 1
        got = _orders(tt, need, react, delay, lead, decided)
        want = _orders_by_definition(tt, need, react, delay, lead, decided)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), case


def _project(
    need: np.ndarray,
    react: np.ndarray,
    *,
    frozen: tuple[int, int] | None = None,
    ceiling: int | None = None,
    memo: Schedules | None = None,
) -> Plan:
    """A plan from 3 units on a target whose change takes an hour: the predictive ``need``
    and the reactive need ``react`` per minute (its demand at 80 % of 100 QPS a unit);
    ``frozen``: a freeze window over those positions; ``ceiling``: a budget's."""
    spec = parse_policy(
        {"name": "p", "targets": [{"name": "cache", "capacityPerUnit": 100, "minUnits": 3,
                                   "maxUnits": 20, "provisioning": {"fixedSeconds": "1h"}}]}
    )  # fmt: skip
    n = need.size
    t = np.asarray(T0 + np.arange(n) * STEP, dtype=np.float64)
    median = np.asarray(react * 80.0, dtype=np.float64)
    pos = Positions(
        t, need.astype(np.int64), median, np.full(n, 1.0), np.full(n, -1, dtype=np.int64),
        (), need.astype(np.int64),
    )  # fmt: skip

    def inside(x: np.ndarray) -> np.ndarray:
        if frozen is None:
            return np.zeros(x.shape, dtype=bool)
        return np.asarray((x >= t[frozen[0]]) & (x < t[frozen[1]]), dtype=bool)

    return project(spec, spec.targets[0], t, pos, now=T0, units=3, decided=3,
                   delay=_an_hour, frozen=inside if frozen else None, ceiling=ceiling,
                   memo=memo)  # fmt: skip


def test_a_freeze_window_in_the_plan_holds_scale_in_and_the_forecasts_scale_out() -> None:
    """A need of 7 from two hours on, due an hour ahead, while a freeze window runs to
    100 minutes: inside it the plan orders only what the demand then needs (a rise to 5 at
    70 minutes, cut from the forecast's 7 and said so), the 7 when the window ends; and a
    fall of the demand inside it waits for its end."""
    need = np.full(240, 3)
    need[120:200] = 7
    react = np.full(240, 3)
    react[70:90] = 5
    plan = _project(need, react, frozen=(30, 100))
    units = np.asarray(plan.units)
    assert units[:70].max() == 3 and (units[70:100] == 5).all(), units[55:105].tolist()
    assert (units[100:200] == 7).all()
    cut, later = plan.actions[0], plan.actions[1]
    assert (cut.from_units, cut.to_units, cut.at) == (3, 5, T0 + 70 * STEP)
    assert "reactive: forecast p50" in cut.reason and cut.reason.endswith(FREEZE_CUT)
    assert (later.to_units, later.at) == (7, T0 + 100 * STEP)
    assert FREEZE_CUT not in later.reason and "reactive" not in later.reason
    # Without the window: the 7 an hour (and a tick) ahead of the need, nothing cut.
    free = _project(need, react)
    assert np.asarray(free.units)[60:120].min() == 7
    assert not [a for a in free.actions if FREEZE_CUT in a.reason]
    # A fall of the demand inside a window waits for its end.
    react = np.full(240, 3)
    react[10:40] = 5
    assert np.asarray(_project(np.full(240, 3), react).units)[50] == 3
    held = np.asarray(_project(np.full(240, 3), react, frozen=(30, 60)).units)
    assert (held[10:60] == 5).all() and held[60] == 3


def test_a_budget_ceiling_in_the_plan_holds_the_forecast_and_says_so() -> None:
    need = np.full(240, 3)
    need[120:200] = 7
    plan = _project(need, np.full(240, 3), ceiling=5)
    assert np.asarray(plan.units).max() == 5
    assert plan.capped and np.asarray(plan.required).max() == 7  # the capacityCapped alert's
    assert not _project(need, np.full(240, 3), ceiling=7).capped
    assert plan.actions[0].to_units == 5
    assert plan.actions[0].reason.endswith("; the unit-hour budget holds the forecast's 7 to 5")
    # Kept for the next pass, an order's words still follow the need the budget cut: the
    # same orders (the need held to 5 either way), another forecast.
    memo = Schedules()
    _project(need, np.full(240, 3), ceiling=5, memo=memo)
    more = need.copy()
    more[120:200] = 8
    again = _project(more, np.full(240, 3), ceiling=5, memo=memo)
    assert again.actions[0].reason.endswith("holds the forecast's 8 to 5")
    # A reactive need above the ceiling is still planned, as the rule serves it.
    react = np.full(240, 3)
    react[150:160] = 9
    assert np.asarray(_project(need, react, ceiling=5).units).max() == 9
