"""The seasonal baseline: daily/weekly shape, level, short, gappy, zero and irregular history."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from headroom.policies.calendar import Calendar
from headroom.policies.forecast.model import HeadroomForecaster, resample
from headroom.policies.forecast.seasonal.localtime import utc_offsets
from headroom.policies.series import Series
from headroom.policies.synthetic import DailyShape, generate_trace
from tests.forecast.conftest import DAY, HOUR, START


def _rel_err(forecast: np.ndarray, actual: np.ndarray) -> float:
    return float(np.median(np.abs(np.log(forecast) - np.log(actual))))


def test_daily_and_weekly_shape_are_learned() -> None:
    trace = generate_trace(START, 28, 60, 1000, noise=0.05, seed=1)
    truth = generate_trace(START + 28 * DAY, 7, 60, 1000, noise=0.0, seed=1)
    model = HeadroomForecaster().fit(trace, Calendar())
    fc = model.predict(START + 28 * DAY, 7 * DAY, 60)
    # Median error against the noise-free truth: a few percent, not the ~50% daily swing.
    assert _rel_err(fc.level(0.5), truth.v) < 0.04
    # The weekend dip (-15%) is in the weekly profile: Saturday noon below Friday noon.
    sat = int((5 * DAY + 12 * HOUR) / 60)
    fri = int((4 * DAY + 12 * HOUR) / 60)
    assert fc.level(0.5)[sat] < 0.93 * fc.level(0.5)[fri]
    assert model.baseline.profile.weekly_shrink > 0.5


def test_flat_forecast_fails_the_same_check() -> None:
    """The shape check above is not vacuous: a flat forecast at the mean misses it."""
    trace = generate_trace(START, 28, 60, 1000, noise=0.05, seed=1)
    truth = generate_trace(START + 28 * DAY, 7, 60, 1000, noise=0.0, seed=1)
    flat = np.full(truth.v.size, float(np.nanmean(trace.v)))
    assert _rel_err(flat, truth.v) > 0.1


def test_level_follows_recent_traffic() -> None:
    """After a lasting step up of 40% (a Tuesday), the forecast follows it (recent level)."""
    trace = generate_trace(START, 28, 60, 1000, noise=0.05, seed=2)
    v = trace.v.copy()
    v[trace.t >= START + 22 * DAY] *= 1.4
    model = HeadroomForecaster().fit(Series(trace.t, v), Calendar())
    fc = model.predict(START + 28 * DAY, DAY, 60)
    truth = generate_trace(START + 28 * DAY, 1, 60, 1000, noise=0.0, seed=2)
    ratio = float(np.median(fc.level(0.5) / truth.v))
    assert 1.3 < ratio < 1.5


def test_short_history_falls_back_to_daily_then_level() -> None:
    three_days = generate_trace(START, 3, 60, 500, noise=0.05, seed=3)
    model = HeadroomForecaster().fit(three_days, Calendar())
    assert model.baseline.profile.weekly.size == 0  # under a week: daily profile only
    fc = model.predict(START + 3 * DAY, DAY, 60)
    truth = generate_trace(START + 3 * DAY, 1, 60, 500, noise=0.0, seed=3)
    assert _rel_err(fc.level(0.5), truth.v) < 0.08

    six_hours = generate_trace(START + 10 * HOUR, 0.25, 60, 500, noise=0.05, seed=3)
    model = HeadroomForecaster().fit(six_hours, Calendar())
    assert not model.baseline.profile.daily.any()  # under a day: flat at the recent level
    fc = model.predict(six_hours.end + 60, 2 * HOUR, 60)
    recent = float(np.mean(six_hours.v[-60:]))
    assert 0.8 * recent < float(np.median(fc.level(0.5))) < 1.2 * recent
    assert np.all(fc.level(0.9) >= fc.level(0.5))


def test_gaps_are_not_zeros() -> None:
    trace = generate_trace(START, 21, 60, 1000, noise=0.05, seed=4, gap_fraction=0.2)
    assert np.isnan(trace.v).mean() > 0.1
    v = trace.v.copy()
    v[(trace.t > START + 20 * DAY) & (trace.t < START + 20.5 * DAY)] = np.nan  # a long outage
    model = HeadroomForecaster().fit(Series(trace.t, v), Calendar())
    fc = model.predict(START + 21 * DAY, DAY, 60)
    truth = generate_trace(START + 21 * DAY, 1, 60, 1000, noise=0.0, seed=4)
    assert np.all(np.isfinite(fc.level(0.99)))
    assert _rel_err(fc.level(0.5), truth.v) < 0.06


def test_zero_traffic_and_empty_history() -> None:
    t = START + np.arange(2 * 1440, dtype=np.float64) * 60.0
    v = np.zeros(t.size)
    v[t > START + DAY] = 50.0  # a service that went live yesterday
    model = HeadroomForecaster().fit(Series(t, v), Calendar())
    fc = model.predict(t[-1] + 60, DAY, 60)
    assert np.all(np.isfinite(fc.mean)) and np.all(fc.level(0.5) >= 0)
    assert 30 < float(np.median(fc.level(0.5))) < 70

    model = HeadroomForecaster().fit(Series(t, np.zeros(t.size)), Calendar())
    assert float(model.predict(t[-1] + 60, HOUR, 60).level(0.99).max()) < 1e-3

    empty = HeadroomForecaster().fit(Series.empty(), Calendar())
    assert float(empty.predict(START, HOUR, 60).level(0.99).max()) < 1e-3


def test_irregular_and_fine_steps_are_resampled() -> None:
    trace = generate_trace(START, 14, 60, 1000, noise=0.05, seed=5)
    rng = np.random.default_rng(0)
    # 10-second samples with jitter, then every other one dropped at random.
    t = np.sort(START + rng.uniform(0, 14 * DAY, size=14 * 8640 // 2))
    v = np.interp(t, trace.t, trace.v)
    fine = Series(t, v)
    grid = resample(fine, 60.0)
    assert float(np.median(np.diff(grid.t))) == 60.0
    model = HeadroomForecaster().fit(fine, Calendar())
    fc = model.predict(START + 14 * DAY, DAY, 300)
    truth = generate_trace(START + 14 * DAY, 1, 300, 1000, noise=0.0, seed=5)
    assert _rel_err(fc.level(0.5), truth.v) < 0.06


def test_local_time_zone_and_dst() -> None:
    # 2026-03-29: Europe/Berlin moves from UTC+1 to UTC+2 at 01:00 UTC.
    switch = datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()
    t = np.asarray([switch - 1, switch, switch + 3600.0])
    assert utc_offsets(t, "Europe/Berlin").tolist() == [3600.0, 7200.0, 7200.0]
    assert utc_offsets(t, None).tolist() == [0.0, 0.0, 0.0]

    # Traffic peaking at 20:30 Shanghai time: learned in that zone, the forecast peaks there.
    zone = ZoneInfo("Asia/Shanghai")
    trace = generate_trace(START, 14, 60, 1000, noise=0.05, seed=6, tz="Asia/Shanghai")
    model = HeadroomForecaster(tz="Asia/Shanghai").fit(trace, Calendar())
    fc = model.predict(START + 14 * DAY, DAY, 60)
    peak = datetime.fromtimestamp(float(fc.t[int(np.argmax(fc.level(0.5)))]), tz=zone)
    assert 19.5 <= peak.hour + peak.minute / 60 <= 21.5


def test_flat_shape_gives_flat_forecast() -> None:
    flat = DailyShape(amplitude=0.0, lunch=0.0, weekend=0.0)
    trace = generate_trace(START, 14, 60, 200, noise=0.1, shape=flat, seed=7)
    fc = HeadroomForecaster().fit(trace, Calendar()).predict(START + 14 * DAY, DAY, 60)
    p50 = fc.level(0.5)
    assert float(p50.max() / p50.min()) < 1.15
    assert math.isclose(float(np.median(p50)), 200, rel_tol=0.05)
