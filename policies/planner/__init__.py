"""The planner: forecast + policy -> when to order how many units, and why.

Called by ``headroom plan`` (:func:`~.entry.plan_target`, the whole timeline) and by the
driver (``headroom.policies.driver``) that the control loop and the backtest simulator
run: :func:`~.entry.decide` (what to order *now*, every tick),
:func:`~.entry.plan_and_decide` (both in one pass, when the caller shows the plan ahead)
and :func:`~.entry.advance_state` (state between ticks). ``plan_target`` replays the same
per-tick rule ``decide`` applies, so the two agree by construction: the plan's first
action is what ``decide`` orders now.

The modules, each one concern (callers import from the module that defines a name):

- ``entry``: the entry points above;
- ``values``: what they return and keep (``Plan``, ``Decision``, ``PlannedAction``,
  ``PlannerState``);
- ``rule``: the rule at one position of the forecast, and its reasons;
- ``sizing``: the per-position arrays the rule reads (needs, leads, chains);
- ``windows``: event and freeze windows as merged intervals (cached);
- ``budget``: the unit-hour budget's period and look-ahead ceiling;
- ``guard``: the reactive guard on the observed demand.

The rule at a tick ``t`` with ``u`` units ordered:

- **need**: units for the forecast (``policies/capacity.py``,
  :func:`~headroom.policies.capacity.planned_units_array`): the median at the SLO's
  target utilisation, the policy quantile at 100 % — each margin once (the utilisation
  margin is for latency at the expected demand, the quantile for the uncertainty). The
  order for demand at ``T`` is placed at ``T - (provisioning delay + lead_time)``, so
  capacity is ready before demand arrives (``L`` = that lead in forecast steps).
- **scale-out** when the need over ``[t, t + L]`` exceeds ``u``; it is never held back
  by a cooldown. It sizes for the need over ``[t, t + L + stabilization]`` so a ramp is
  one action, not one per step. With ``max_step`` each action adds at most that many
  units, and a chain of steps is started early enough (one lead apart) to be complete
  when demand arrives.
- **scale-in** only when the need over ``[t, t + L + stabilization]`` is below ``u``,
  outside every event window (from the longest lead before the ramp, when its
  pre-scale may be ordered, to the end) plus ``scale_in.cooldown`` of an event that
  applies to the target (with ``scale_in.during_events: nowcast`` the block ends one
  ``stabilization`` after the event's start: the nowcast has measured the event by then,
  the forecast's learned shape and tail keep what is still needed, and the reactive
  guard's floor keeps what the observed demand needs), outside freeze windows,
  ``scale_in.interval`` after the last scale-in and ``stabilization`` after the last
  scale-out, by ``step_units`` at a time (a number, or a share of the units ordered:
  ``10%`` by default).
- **freeze windows** block scale-in entirely; they block scale-out too, except when
  the demand *now* needs more units than are ordered (serving users beats the freeze):
  then the planner orders exactly what is needed now, no look-ahead.
- **reactive guard**: when the caller passes the demand it has *observed* (the newest
  sample before ``t``), the order is never below what that demand needs at the SLO's
  target utilisation (:func:`~.guard.reactive_guard`, the plan's median rule applied to what was
  seen), once it is above the target utilisation by more than ``GUARD_TOLERANCE`` (the
  HPA's default 10 %). It scales out at once — no cooldown, only ``max_step`` and
  ``max_units`` — so a surprise the forecast missed (an unscheduled spike, an event
  bigger than learned, the first day before a daily profile exists) is acted on as an
  HPA would, and a scale-in stops at that floor (going lower would be undone at the next
  tick). It never holds units up on its own: scale-in stays with the forecast rules.
- **bounds**: needs are clamped to ``[min_units, max_units]``; clamping is reported
  (``capped``, "capped at maxUnits").
- **budget**: unit-hours in the current ``budget.period`` (``PlannerState``) plus the
  projection to the period's end must fit ``max_unit_hours``. The planner lowers a
  ceiling on *look-ahead* capacity until the projection fits, and reports it. The
  trade-off: the budget never takes away units that the demand needs *right now* — an
  order for current demand goes through even over budget, flagged ``capped`` with a
  reason — so the budget trims pre-scaling, never silently the present.
"""
