"""What the rule that orders units (``headroom.policies.combined``) returns and keeps, and
the policy limits it reads.

The modules, each one concern (callers import from the module that defines a name):

- ``values``: plans, decisions and orders (``Plan``, ``Decision``, ``PlannedAction``)
  and the state kept between ticks (``PlannerState``; the operator keeps it in a
  CapacityPolicy's status);
- ``budget``: the unit-hour budget's period, its ceiling on look-ahead units (the
  predictive half is capped at it; what is measured now never is) and
  :func:`~.budget.advance_state`, the state after a tick;
- ``windows``: freeze windows as merged intervals, and the labels an event selector is
  matched against.

The rule itself, and how a tick decides, is described in ``headroom.policies.combined``.
"""
