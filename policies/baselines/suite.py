"""The standard backtest: the four strategies on one trace, built the same way everywhere.

``headroom simulate`` and ``bench/backtest.py`` call :func:`backtest`; tests build
strategies one by one. The provisioning delay is one model for all strategies: a fixed
``delay_seconds`` when given (it then also replaces the target's ``provisioning`` so the
planner plans with the delay it will get), else the target's ``provisioning.delay``.
All start from ``units_for(first sample)``; static_peak is the exception by definition.
"""

from __future__ import annotations

from collections.abc import Sequence

from headroom.policies.baselines.headroom import HeadroomStrategy
from headroom.policies.baselines.hpa import ReactiveHpa
from headroom.policies.baselines.oracle import Oracle
from headroom.policies.baselines.static_peak import StaticPeak
from headroom.policies.calendar import Calendar
from headroom.policies.capacity import units_for
from headroom.policies.errors import PolicyError
from headroom.policies.policy import PolicySpec, Provisioning, Target
from headroom.policies.series import Series
from headroom.policies.simulate import Progress, Simulation, Strategy, simulate, target_delay

STRATEGIES = ("headroom", "reactive_hpa", "static_peak", "oracle")


def pick_target(spec: PolicySpec, name: str | None, source: str = "policy") -> Target:
    """The target called ``name`` (or ``namespace/name``); the first one when None."""
    if name is None:
        return spec.targets[0]
    for target in spec.targets:
        if name in (target.name, f"{target.namespace}/{target.name}"):
            return target
    known = ", ".join(t.name for t in spec.targets)
    raise PolicyError(f"{source}: no target named {name!r} (targets: {known})")


def with_fixed_delay(spec: PolicySpec, target: Target, seconds: float) -> tuple[PolicySpec, Target]:
    """The policy and target with ``provisioning`` replaced by a fixed delay."""
    fixed = target.model_copy(update={"provisioning": Provisioning(fixed_seconds=seconds)})
    targets = [fixed if t is target else t for t in spec.targets]
    return spec.model_copy(update={"targets": targets}), fixed


def build_strategies(
    trace: Series,
    calendar: Calendar,
    spec: PolicySpec,
    target: Target,
    names: Sequence[str] = STRATEGIES,
    *,
    headroom_decide_every: float = 15.0,
) -> list[Strategy]:
    """The named strategies for ``target`` (whose provisioning is the delay model)."""
    made: list[Strategy] = []
    for name in names:
        if name == "headroom":
            made.append(
                HeadroomStrategy(spec, target, calendar, decide_every=headroom_decide_every)
            )
        elif name == "reactive_hpa":
            made.append(ReactiveHpa(target, spec))
        elif name == "static_peak":
            made.append(StaticPeak(trace, target, spec))
        elif name == "oracle":
            made.append(Oracle(trace, target, target_delay(target)))
        else:
            raise ValueError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")
    return made


def backtest(
    trace: Series,
    calendar: Calendar,
    spec: PolicySpec,
    *,
    target_name: str | None = None,
    delay_seconds: float | None = None,
    names: Sequence[str] = STRATEGIES,
    progress: Progress | None = None,
    headroom_decide_every: float = 15.0,
    score_from: float | None = None,
) -> Simulation:
    """Replay ``trace`` under every strategy in ``names`` with one delay model (scored from
    ``score_from`` on: see :func:`headroom.policies.simulate.run_strategy`)."""
    target = pick_target(spec, target_name)
    if delay_seconds is not None:
        spec, target = with_fixed_delay(spec, target, delay_seconds)
    strategies = build_strategies(
        trace, calendar, spec, target, names, headroom_decide_every=headroom_decide_every
    )
    first = next((float(v) for v in trace.v if v == v), 0.0)  # the first non-gap sample
    return simulate(
        trace,
        strategies,
        target=target,
        delay=target_delay(target),
        initial_units=units_for(first, target, spec),
        progress=progress,
        score_from=score_from,
    )
