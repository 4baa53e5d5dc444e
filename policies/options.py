"""The policy's options over the rule's HPA-normalised order (:mod:`.combined`):
``maxStep``, freeze windows (no scale-in; scale-out only for the demand now), the scale-in
interval and step, ``scaleIn.duringEvents: hold|nowcast`` and ``scaleIn.cooldown``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from headroom.policies.calendar import DemandEvent
from headroom.policies.planner.values import PlannerState
from headroom.policies.planner.windows import inside as _inside
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import FloatArray
from headroom.policies.text import duration_text

FREEZE_CUT = "a freeze window scales out only for the demand now"


def budget_cut(wanted: int, held: int) -> str:
    """The words of a budget that held the forecast's ``wanted`` units to ``held`` (the
    decision's and the plan's reasons alike)."""
    return f"the unit-hour budget holds the forecast's {wanted} to {held}"


def freeze_allows(u: int, desired: int, reactive: int) -> int:
    """What a freeze window lets ``desired`` be from ``u`` units (the decision's options
    and the plan's projection alike): no scale-in, and a scale-out only as far as the
    demand now (``reactive``), not the forecast's."""
    return u if desired < u else min(desired, max(u, reactive))


@dataclass(frozen=True)
class ScaleInWindows:
    """What the options read: the policy, the target, its freeze windows and the events
    that apply to it with their windows (``lo``: ramp start, ``hi``: tail end)."""

    spec: PolicySpec
    target: Target
    freeze: tuple[FloatArray, FloatArray]  # starts, ends
    events: Sequence[DemandEvent]
    lo: FloatArray
    hi: FloatArray

    def blocked(self, now: float) -> bool:
        """:func:`blocked` here (a bound method: equal on every pass over the same
        windows, so a plan kept with it is found again)."""
        return blocked(self, now)

    def frozen(self, t: FloatArray) -> npt.NDArray[np.bool_]:
        """Which of the times ``t`` are inside a freeze window (a bound method, as
        :meth:`blocked`)."""
        return _inside(t, self.freeze)


def apply_options(
    rule: ScaleInWindows,
    now: float,
    u: int,
    desired: int,
    reactive: int | None,
    state: PlannerState,
) -> tuple[int, str, tuple[str, ...]]:
    """The policy's options over the HPA-normalised order: (units, why held, what cut a
    scale-out short). ``held`` is set when the units stay; ``cuts`` when a scale-out is
    ordered smaller than the rule wanted (:data:`FREEZE_CUT`, ``maxStep``'s words: for
    the order's reason)."""
    spec, target = rule.spec, rule.target
    cuts: tuple[str, ...] = ()
    frozen = bool(_inside(np.array([now]), rule.freeze)[0])
    if frozen:
        if desired < u:
            return u, "hold: freeze window", ()
        allowed = freeze_allows(u, desired, reactive or 0)
        if desired > allowed:
            desired, cuts = allowed, (FREEZE_CUT,)
            if desired == u:
                return u, "hold: freeze window (scale-out only for the demand now)", ()
    if target.max_step and abs(desired - u) > target.max_step:
        desired = u + target.max_step if desired > u else u - target.max_step
        if desired > u:
            cuts = (*cuts, f"at most maxStep {target.max_step} a change")
    if desired >= u or u > target.max_units:
        return desired, "", cuts
    si = spec.scale_in
    if state.last_scale_in is not None and now < state.last_scale_in + si.interval:
        return u, "hold: scale-in waits for its interval", ()
    desired = max(desired, u - si.step_for(u))
    if blocked(rule, now):
        return u, "hold: scale-in blocked by an event window or its cooldown", ()
    return desired, "", ()


def blocked(rule: ScaleInWindows, now: float) -> bool:
    """Scale-in is held here: ``duringEvents`` hold/nowcast, or ``cooldown`` after."""
    si = rule.spec.scale_in
    if si.during_events == "follow" and si.cooldown <= 0:
        return False
    for ev in _near(rule.events, rule.lo, rule.hi, now, si.cooldown):
        if si.during_events == "hold" and rule.lo[ev] <= now < rule.events[ev].end:
            return True
        e = rule.events[ev]
        if si.during_events == "nowcast" and rule.lo[ev] <= now < min(
            e.start + si.stabilization, e.end
        ):
            return True
        if e.end <= now < e.end + si.cooldown:
            return True
    return False


def _near(
    events: Sequence[DemandEvent], lo: FloatArray, hi: FloatArray, now: float, extra: float
) -> list[int]:
    if not events:
        return []
    return np.flatnonzero((lo <= now) & (hi + extra > now)).tolist()


def hold_reason(
    spec: PolicySpec, noun: str, u: int, reactive: int | None, predictive: int | None
) -> str:
    """Why ``u`` units stay: a need within the stabilisation window, or they cover it."""
    if max(reactive or 0, predictive or 0) < u:
        window = duration_text(spec.scale_in.stabilization)
        return f"hold: a need of {u} {noun} within the last {window}"
    return f"hold: {u} {noun} cover the need (reactive {reactive}, forecast {predictive})"


def chain_delay(target: Target, a: int, b: int) -> float:
    """The time from ``a`` to ``b`` units ready: one change's delay or, with ``maxStep``,
    the chain of changes it takes (each after the one before)."""
    delay, step = target.provisioning.delay, target.max_step
    if not step or b - a <= step:
        return delay(a, b)
    total, x = 0.0, a
    while x < b:
        y = min(x + step, b)
        total += delay(x, y)
        x = y
    return total
