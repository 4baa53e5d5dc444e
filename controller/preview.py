"""A pass that only plans: what the operator would do now, on given inputs, without acting.

``headroom plan`` calls :func:`plan_pass` and ``headroom forecast`` :func:`forecast_pass`
(``cli/engine.py``), on history files or on what ``--from-cluster`` read. Both run what
the operator runs: :func:`plan_pass` is one pass of the runtime
:func:`~headroom.controller.assembly.build_runtime` builds — the same driver, forecaster
and time zone, calendar filter, history window and state — over stand-in targets that
report the units running and never scale; :func:`forecast_pass` fits the same
forecaster the same way and predicts at the quantiles asked for.
"""

from __future__ import annotations

from collections.abc import Mapping

from headroom.controller.assembly import World, build_forecaster, build_runtime
from headroom.controller.loop import PassReport
from headroom.controller.targets.base import ScaleStatus
from headroom.policies.calendar import Calendar
from headroom.policies.driver import DriverState
from headroom.policies.errors import HeadroomError
from headroom.policies.forecast.base import Forecast
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import PolicySpec
from headroom.policies.series import Series


class _Held:
    """A target as it runs now, for a pass that only plans: reports ``units``, never scales."""

    def __init__(self, name: str, units: int) -> None:
        self._name = name
        self._units = units

    @property
    def name(self) -> str:
        return self._name

    def status(self) -> ScaleStatus:
        return ScaleStatus(self._units, self._units)

    def scale(self, units: int, reason: str) -> None:
        raise HeadroomError(f"{self._name}: a planning pass does not scale")


class _At:
    """The clock of a planning pass: it is ``at``, and it stays there."""

    def __init__(self, at: float) -> None:
        self._at = at

    def now(self) -> float:
        return self._at

    def sleep(self, seconds: float) -> None:
        raise HeadroomError("a planning pass does not wait")


class _Recorded:
    """History already read (up to the pass): the same series at every call."""

    def __init__(self, series: Series) -> None:
        self._series = series

    def history(self, end: float) -> Series:
        return self._series


def plan_pass(
    spec: PolicySpec,
    history: Series,
    calendar: Calendar,
    *,
    at: float,
    units: Mapping[str, int],
    state: DriverState | None = None,
    step: float = 60.0,
) -> PassReport:
    """The operator's pass at ``at`` on these inputs, without acting (``headroom plan``):
    the runtime :func:`build_runtime` builds, over targets running ``units`` (by target
    name), with the driver ``state`` the operator kept; what it would order and the plan
    ahead are the report's. ``history``: the demand as the policy's history window reads
    it (:func:`build_history`) up to ``at``."""
    runtime = build_runtime(
        spec.model_copy(update={"dry_run": True}),
        World(),
        calendar=lambda: calendar,
        clock=_At(at),
        state=state,
        step=step,
        targets=lambda target: _Held(target.name, units[target.name]),
        history=_Recorded(history),
    )
    return runtime.loop.reconcile()


def forecast_pass(
    spec: PolicySpec | None,
    history: Series,
    calendar: Calendar,
    *,
    at: float,
    horizon: float,
    step: float,
    levels: tuple[float, ...],
) -> tuple[HeadroomForecaster, Forecast]:
    """The policy's forecast at ``at`` (``headroom forecast``): its forecaster, fitted as the
    driver fits it (on ``history`` before ``at`` and the events that select the policy),
    at the quantile ``levels`` asked for."""
    model = build_forecaster(spec)
    events = calendar.for_labels(spec.event_selector) if spec is not None else calendar
    model.fit(history.before(at), events)
    return model, model.predict(at, horizon, step, levels)
