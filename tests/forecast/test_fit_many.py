"""``HeadroomForecaster.fit_many`` (the batch path) gives exactly what one ``fit`` per history
gives: histories on one time axis share its time-only work, and nothing else leaks between
them (gaps, spans, scales, calendars, time axes that differ)."""

from __future__ import annotations

import numpy as np
import pytest

from headroom.policies.calendar import Calendar, Expectation
from headroom.policies.forecast.base import Forecast
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import Forecasting
from headroom.policies.series import Series
from headroom.policies.synthetic import generate_trace
from tests.forecast.conftest import DAY, HOUR, START, livestream

NOW = START + 28 * DAY


def _calendar(tz: str) -> Calendar:
    events = [livestream(d, tz=tz) for d in (4, 11, 18, 25)]
    events.append(livestream(28, name="tonight", tz=tz))
    events.append(livestream(28.5, name="declared", expectation=Expectation(multiplier=2.5), tz=tz))
    return Calendar.of(events)


def _histories() -> list[Series]:
    cal = _calendar("UTC")
    base = generate_trace(START, 28, 60, 1000, list(cal.events)[:4], noise=0.0, seed=5)
    rng = np.random.default_rng(9)
    out = []
    for i in range(8):
        v = base.v * rng.uniform(0.5, 5.0) * np.exp(rng.normal(0, 0.08, base.v.size))
        if i == 1:
            v[rng.integers(0, v.size, 400)] = np.nan  # scattered gaps: ragged residual samples
        if i == 2:
            v[:5000] = np.nan  # a later first sample: another span
        if i == 3:
            v[-3000:-2000] = np.nan  # a gap in the newest days
        out.append(Series(base.t, v))
    out.append(Series(base.t[-9000:], out[0].v[-9000:]))  # shorter history: own time axis
    out.append(Series(base.t[::3], out[4].v[::3]))  # 3-minute samples: another time axis
    fine_t = START + 7 * DAY + np.arange(0, 21 * DAY, 30.0)  # finer than the grid: resampled
    out.append(Series(fine_t, np.interp(fine_t, base.t, out[5].v)))
    out.append(Series(base.t.copy(), out[6].v.copy()))  # equal times in other memory
    moved = base.t.copy()
    moved[20000:22000] -= 30.0  # as many samples, the same ends, other times: no sharing
    out.append(Series(moved, out[7].v))
    return out


def _assert_same(a: Forecast, b: Forecast) -> None:
    assert np.array_equal(a.t, b.t)
    assert np.array_equal(a.mean, b.mean)
    assert a.baseline is not None and b.baseline is not None
    assert np.array_equal(a.baseline, b.baseline)
    assert a.quantiles.keys() == b.quantiles.keys()
    for q in a.quantiles:
        assert np.array_equal(a.quantiles[q], b.quantiles[q])
    assert a.drivers == b.drivers


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Shanghai"])
def test_fit_many_equals_one_fit_per_history(tz: str) -> None:
    histories = _histories()
    calendar = _calendar(tz)
    spec = Forecasting()
    many = HeadroomForecaster.fit_many(histories, calendar, spec)
    assert len(many) == len(histories)
    for history, batch in zip(histories, many, strict=True):
        one = HeadroomForecaster(spec).fit(history, calendar)
        assert [le.event.name for le in one.learned_events] == [
            le.event.name for le in batch.learned_events
        ]
        for a, b in zip(one.learned_events, batch.learned_events, strict=True):
            assert np.array_equal(a.shape, b.shape, equal_nan=True)
        assert one.baseline.levels == batch.baseline.levels
        for step in (60.0, 300.0):
            _assert_same(one.predict(NOW, DAY, step), batch.predict(NOW, DAY, step))
        # The cheap update path starts from the same state too.
        recent = Series(NOW + np.arange(45, dtype=np.float64) * 60.0, np.full(45, 2000.0))
        one.update(recent)
        batch.update(recent)
        _assert_same(
            one.predict(NOW + 45 * 60, 6 * HOUR, 60.0), batch.predict(NOW + 45 * 60, 6 * HOUR, 60.0)
        )


def test_fit_many_takes_one_calendar_per_history() -> None:
    histories = _histories()[:4]
    calendars = [_calendar("UTC"), Calendar(), _calendar("Asia/Shanghai"), _calendar("UTC")]
    many = HeadroomForecaster.fit_many(histories, calendars, tz="Europe/Berlin")
    for history, calendar, batch in zip(histories, calendars, many, strict=True):
        one = HeadroomForecaster(tz="Europe/Berlin").fit(history, calendar)
        _assert_same(one.predict(NOW, DAY, 60.0), batch.predict(NOW, DAY, 60.0))
    assert many[1].learned_events == ()  # no calendar, nothing learned: none leaked in
    assert len(many[0].learned_events) == 4


def test_fit_many_rejects_a_calendar_count_that_does_not_match() -> None:
    with pytest.raises(ValueError, match="3 histories but 2 calendars"):
        HeadroomForecaster.fit_many(_histories()[:3], [Calendar(), Calendar()])


def test_fit_many_of_nothing_and_of_empty_histories() -> None:
    assert HeadroomForecaster.fit_many([], Calendar()) == []
    empty = HeadroomForecaster.fit_many([Series.empty(), Series.empty()], Calendar())
    one = HeadroomForecaster().fit(Series.empty(), Calendar())
    for batch in empty:
        _assert_same(one.predict(NOW, HOUR, 60.0), batch.predict(NOW, HOUR, 60.0))


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_predict_many_equals_one_predict_per_model(tz: str) -> None:
    histories = _histories()
    calendar = _calendar(tz)
    models = HeadroomForecaster.fit_many(histories, calendar)
    # One model refreshed with newer samples: another as_of, its own time index.
    models[3].update(Series(NOW + np.arange(30, dtype=np.float64) * 60.0, np.full(30, 900.0)))
    for start, step in ((NOW, 60.0), (NOW + 1800.0, 300.0), (NOW + 20 * HOUR, 60.0)):
        many = HeadroomForecaster.predict_many(models, start, DAY, step, (0.5, 0.8, 0.99))
        for model, batch in zip(models, many, strict=True):
            _assert_same(model.predict(start, DAY, step, (0.5, 0.8, 0.99)), batch)
