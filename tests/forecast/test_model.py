"""HeadroomForecaster as a whole: calibrated quantiles, strict causality, the cheap update path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

import numpy as np
import pytest

from headroom.policies.calendar import Calendar
from headroom.policies.forecast.base import Forecast, Forecaster
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.series import Series
from headroom.policies.synthetic import generate_trace
from tests.forecast.conftest import DAY, HOUR, START, livestream


@pytest.mark.parametrize("noise", [0.05, 0.15])
def test_p90_covers_about_90_percent_of_held_out_days(noise: float) -> None:
    trace = generate_trace(START, 36, 60, 1000, noise=noise, seed=21)
    hits = {0.5: [], 0.9: [], 0.99: []}  # type: dict[float, list[float]]
    for day in range(21, 35):
        now = START + day * DAY + (day % 5) * 3 * HOUR
        fc = HeadroomForecaster().fit(trace.before(now), Calendar()).predict(now, DAY, 60)
        actual = trace.between(now, now + DAY).v
        for q in hits:
            hits[q].append(float(np.mean(actual <= fc.level(q))))
    assert 0.35 < np.mean(hits[0.5]) < 0.65
    assert 0.80 < np.mean(hits[0.9]) < 0.97
    assert 0.95 < np.mean(hits[0.99]) <= 1.0


def test_quantiles_are_ordered_and_mean_is_sane() -> None:
    trace = generate_trace(START, 14, 60, 1000, noise=0.1, seed=22)
    fc = HeadroomForecaster().fit(trace, Calendar()).predict(START + 14 * DAY, DAY, 300)
    assert np.all(fc.level(0.5) <= fc.level(0.9)) and np.all(fc.level(0.9) <= fc.level(0.99))
    assert np.all(fc.mean > 0.9 * fc.level(0.5)) and np.all(fc.mean < fc.level(0.9))
    assert fc.t.size == 288 and fc.t[1] - fc.t[0] == 300


def _forecast_at(make: Callable[[], Forecaster], series: Series, cal: Calendar, t: float):
    """What the simulator does at a decision: fit on the past only, predict ahead."""
    return make().fit(series.before(t), cal).predict(t, 12 * HOUR, 60)


def assert_causal(make: Callable[[], Forecaster], series: Series, cal: Calendar, t: float):
    """Changing everything at or after ``t`` must not change the forecast made at ``t``."""
    before = _forecast_at(make, series, cal, t)
    v = series.v.copy()
    after = series.t >= t
    v[after] = v[after] * 7.0 + 500.0  # wildly different future
    changed = _forecast_at(make, Series(series.t, v), cal, t)
    for q in (0.5, 0.9, 0.99):
        np.testing.assert_array_equal(before.level(q), changed.level(q))
    np.testing.assert_array_equal(before.mean, changed.mean)
    assert before.drivers == changed.drivers


def _trace_and_calendar() -> tuple[Series, Calendar]:
    past = [livestream(d) for d in (3, 8, 12, 17)]
    future = livestream(20, "tonight")
    trace = generate_trace(START, 25, 60, 800, [*past, future], [3.0] * 5, seed=23)
    return trace, Calendar.of([*past, future])


def test_changing_data_after_t_does_not_change_the_forecast_at_t() -> None:
    trace, cal = _trace_and_calendar()
    for t in (START + 20 * DAY + 19 * HOUR, START + 20 * DAY + 20.5 * HOUR, START + 22 * DAY):
        assert_causal(HeadroomForecaster, trace, cal, t)


_FULL: dict[str, Series] = {}


class _PeekingForecaster:
    """A deliberately broken forecaster that reads the full trace from outside its input."""

    def __init__(self) -> None:
        self.inner = HeadroomForecaster()

    def fit(self, history: Series, calendar: Calendar) -> Self:
        self.inner.fit(_FULL["trace"].before(history.end + 6 * HOUR), calendar)
        return self

    def predict(self, start: float, horizon: float, step: float, levels=(0.5, 0.9, 0.99)):
        return self.inner.predict(start, horizon, step, levels)


def test_the_causality_check_catches_a_peeking_forecaster() -> None:
    trace, cal = _trace_and_calendar()
    _FULL["trace"] = trace
    try:
        t = START + 20 * DAY + 12 * HOUR
        with pytest.raises(AssertionError):
            # The check passes the changed trace to the forecaster... which ignores it.
            def make() -> _PeekingForecaster:
                return _PeekingForecaster()

            before = _forecast_at(make, trace, cal, t)
            v = trace.v.copy()
            v[trace.t >= t] *= 7.0
            _FULL["trace"] = Series(trace.t, v)
            changed = _forecast_at(make, _FULL["trace"], cal, t)
            np.testing.assert_array_equal(before.level(0.9), changed.level(0.9))
    finally:
        _FULL.clear()


def test_refit_leaves_no_state_behind() -> None:
    """A forecaster refitted on the past gives the same forecast as a fresh one."""
    trace, cal = _trace_and_calendar()
    t = START + 20 * DAY + 19 * HOUR
    reused = HeadroomForecaster().fit(trace, cal)  # first fitted on everything
    a = reused.fit(trace.before(t), cal).predict(t, 6 * HOUR, 60)
    b = HeadroomForecaster().fit(trace.before(t), cal).predict(t, 6 * HOUR, 60)
    np.testing.assert_array_equal(a.level(0.9), b.level(0.9))


def test_an_ongoing_event_is_not_learned_from_its_own_future() -> None:
    """At 20:30 the livestream is under way: the model must not have learned it yet."""
    trace, cal = _trace_and_calendar()
    t = START + 20 * DAY + 20.5 * HOUR
    model = HeadroomForecaster().fit(trace.before(t), cal)
    assert "tonight" not in {le.event.name for le in model.learned_events}


def test_update_moves_the_level_like_a_refit() -> None:
    trace = generate_trace(START, 23, 60, 1000, noise=0.05, seed=24)
    v = trace.v.copy()
    v[trace.t >= START + 21 * DAY] *= 1.5  # the last two days are busier
    busy = Series(trace.t, v)
    t_fit, t_now = START + 21 * DAY + 6 * HOUR, START + 22 * DAY
    model = HeadroomForecaster().fit(busy.before(t_fit), Calendar())
    # The next two hours: update keeps the level windows chosen at the last fit, so for
    # longer leads it can lag a refit (refit at least daily; see the model's docstring).
    stale = model.predict(t_now, 2 * HOUR, 60).level(0.5)
    model.update(busy.between(t_fit, t_now))
    fresh = model.predict(t_now, 2 * HOUR, 60).level(0.5)
    refit = HeadroomForecaster().fit(busy.before(t_now), Calendar()).predict(t_now, 2 * HOUR, 60)
    assert model.baseline.as_of == pytest.approx(t_now)
    gap_update = np.median(np.abs(np.log(fresh / refit.level(0.5))))
    gap_stale = np.median(np.abs(np.log(stale / refit.level(0.5))))
    assert gap_update < 0.1 and gap_update < gap_stale / 2


def test_protocol_is_implemented() -> None:
    model: Forecaster = HeadroomForecaster()
    trace = generate_trace(START, 2, 60, 100, seed=25)
    fc = model.fit(trace, Calendar()).predict(START + 2 * DAY, HOUR, 60, levels=(0.5, 0.95))
    assert isinstance(fc, Forecast) and set(fc.quantiles) == {0.5, 0.95}
    assert len(fc.drivers) == fc.t.size
