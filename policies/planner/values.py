"""What the rule returns and keeps: plans, decisions, orders and the state between ticks.

Plain frozen values: the driver keeps :class:`PlannerState` per target (the operator in a
CapacityPolicy status), the CLI draws a :class:`Plan`, the control loop acts on a
:class:`Decision`'s :class:`PlannedAction`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from headroom.policies.capacity import IntArray
from headroom.policies.series import FloatArray


@dataclass(frozen=True)
class PlannerState:
    """What the caller remembers between decisions (the operator keeps it in status)."""

    last_scale_out: float | None = None
    last_scale_in: float | None = None
    unit_seconds_used: float = 0.0  # unit-seconds in the current budget period
    period_start: float | None = None


@dataclass(frozen=True)
class PlannedAction:
    """One order: at ``at`` change ``from_units`` -> ``to_units``, ready by ``ready_by``,
    for ``reason``: ``why`` is its text or a function that writes it when it is first read
    (a plan has dozens of orders and its readers read a few). Orders compare by what they
    order, not by their text."""

    at: float
    ready_by: float
    target: str
    from_units: int
    to_units: int
    why: str | Callable[[], str] = field(compare=False)
    event: str | None = None
    capped: bool = False

    @cached_property
    def reason(self) -> str:
        return self.why if isinstance(self.why, str) else self.why()

    @property
    def is_scale_out(self) -> bool:
        return self.to_units > self.from_units


@dataclass(frozen=True)
class Plan:
    """The timeline for one target on the forecast's times.

    ``required[i]``: units that must be *ready* at ``t[i]``; ``units[i]``: units
    *ordered* at ``t[i]`` (the schedule, with lead time, steps, cooldowns, caps);
    ``capped``: maxUnits or a budget holds a need the plan would order.
    """

    target: str
    t: FloatArray
    required: IntArray
    units: IntArray
    actions: tuple[PlannedAction, ...]
    capped: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """What to order now: ``desired_units`` (== current when ``action`` is None)."""

    desired_units: int
    action: PlannedAction | None
    capped: bool
    reason: str


def after_action(state: PlannerState, action: PlannedAction) -> PlannerState:
    # Built directly: dataclasses.replace costs several times more, once per action.
    if action.to_units > action.from_units:
        return PlannerState(
            action.at, state.last_scale_in, state.unit_seconds_used, state.period_start
        )
    return PlannerState(
        state.last_scale_out, action.at, state.unit_seconds_used, state.period_start
    )
