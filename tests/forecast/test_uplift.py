"""Event uplift learned from past events: per kind and labels, defaults, declared expectations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from headroom.policies.calendar import Calendar, DemandEvent, EventKind, Expectation
from headroom.policies.forecast.model import HeadroomForecaster
from headroom.policies.policy import Forecasting
from headroom.policies.synthetic import generate_trace
from tests.forecast.conftest import DAY, HOUR, START, livestream

PAST_DAYS = (2, 6, 9, 13, 16, 20, 23)


def _fit(events: list[DemandEvent], truths: list[float], future: list[DemandEvent], **kw):
    trace = generate_trace(START, 28, 60, 1000, events, truths, noise=0.08, seed=11)
    spec = Forecasting(default_event_multiplier=kw.pop("default", 2.0))
    model = HeadroomForecaster(spec, **kw).fit(trace, Calendar.of([*events, *future]))
    return model


def _peak_ratio(model: HeadroomForecaster, ev: DemandEvent) -> float:
    """Forecast p50 at the event's busiest point over the forecast without events."""
    fc = model.predict(ev.start - 2 * HOUR, ev.end - ev.start + 4 * HOUR, 60)
    assert fc.baseline is not None
    return float(np.max(fc.level(0.5) / fc.baseline))


def test_learned_multiplier_is_within_20_percent() -> None:
    past = [livestream(d) for d in PAST_DAYS]
    truths = [3.0, 2.8, 3.2, 3.1, 2.9, 3.0, 3.1]
    nxt = livestream(29, "next show")
    model = _fit(past, truths, [nxt])
    assert len(model.learned_events) == len(past)
    up = model.uplift_for(nxt)
    assert up.source == "learned" and up.similar == len(past)
    assert 0.8 * 3.0 < up.peak < 1.2 * 3.0
    assert 0.8 * 3.0 < _peak_ratio(model, nxt) < 1.2 * 3.0
    # The drivers name the event while it lifts demand, and nothing far from it.
    fc = model.predict(nxt.start - 6 * HOUR, 12 * HOUR, 60)
    at_start = int((nxt.start - fc.t[0]) // 60)
    assert fc.drivers[at_start] == nxt
    assert fc.drivers[0] is None
    # The shape: lower during the ramp than at the peak, then it decays after the end.
    mu = up.mu
    assert mu[:6].max() < mu[6:18].max() and mu[-1] < mu[6:18].max()


def test_unknown_kind_gets_the_policy_default() -> None:
    past = [livestream(d) for d in PAST_DAYS]
    promo = DemandEvent(
        "first promotion",
        EventKind.PROMOTION,
        START + 29 * DAY + 10 * HOUR,
        START + 29 * DAY + 14 * HOUR,
        ramp=HOUR,
    )
    model = _fit(past, [3.0] * len(past), [promo], default=2.0)
    up = model.uplift_for(promo)
    assert up.source == "default" and up.similar == 0
    assert math.isclose(up.peak, 2.0, rel_tol=1e-9)
    assert math.isclose(_peak_ratio(model, promo), 2.0, rel_tol=0.02)


def test_declared_expectation_overrides_learned() -> None:
    past = [livestream(d) for d in PAST_DAYS]
    declared = livestream(29, "declared", expectation=Expectation(multiplier=5.0))
    model = _fit(past, [3.0] * len(past), [declared])
    up = model.uplift_for(declared)
    assert up.source == "declared+learned"
    assert math.isclose(up.peak, 5.0, rel_tol=1e-6)
    assert 4.5 < _peak_ratio(model, declared) < 5.5

    # Blend halfway (in log space) between declared 5x and learned ~3x.
    blended = _fit(past, [3.0] * len(past), [declared], declared_weight=0.5)
    assert 3.4 < blended.uplift_for(declared).peak < 4.4

    # A peak QPS is turned into a multiplier over the baseline during the event.
    by_qps = livestream(29, "by qps", expectation=Expectation(peak_qps=10_000.0))
    model = _fit(past, [3.0] * len(past), [by_qps])
    fc = model.predict(by_qps.start, by_qps.end - by_qps.start, 60)
    assert 8_000 < float(fc.level(0.5).max()) < 13_000


def test_labels_tell_a_big_host_from_a_small_one() -> None:
    past: list[DemandEvent] = []
    truths: list[float] = []
    for i, d in enumerate(PAST_DAYS):
        big = i % 2 == 0
        past.append(livestream(d, host="big" if big else "small", hour=20 if big else 14))
        truths.append(4.0 if big else 1.5)
    big_next = livestream(29, "big next", host="big")
    small_next = livestream(29, "small next", host="small", hour=14)
    stranger = livestream(30, "new host", host="newcomer")
    model = _fit(past, truths, [big_next, small_next, stranger])
    big_up, small_up = model.uplift_for(big_next), model.uplift_for(small_next)
    assert big_up.similar == 4 and small_up.similar == 3
    assert 3.2 < big_up.peak < 4.8
    assert 1.2 < small_up.peak < 1.8
    # A host never seen: all livestreams (the kind) are the best evidence there is.
    assert model.uplift_for(stranger).similar == len(past)
    assert small_up.peak < model.uplift_for(stranger).peak < big_up.peak


def test_spread_across_past_events_widens_the_band() -> None:
    steady = [livestream(d) for d in PAST_DAYS]
    nxt = livestream(29, "next")
    tight = _fit(steady, [3.0] * 7, [nxt])
    loose = _fit(steady, [1.8, 4.5, 2.2, 4.0, 1.6, 4.8, 2.5], [nxt])

    def band(model: HeadroomForecaster) -> float:
        fc = model.predict(nxt.start, nxt.end - nxt.start, 60)
        return float(np.median(fc.level(0.9) / fc.level(0.5)))

    assert band(loose) > band(tight) * 1.1


def test_a_host_seen_once_borrows_the_spread_of_its_kind() -> None:
    """One past show says little about how far the next may stray from it: the spread of
    every past event of the kind (other hosts included) widens that host's band, while
    its median stays its own."""
    others = [livestream(d, host=h) for d, h in zip(PAST_DAYS[:6], "abcabc", strict=True)]
    solo = livestream(PAST_DAYS[6], host="solo")
    nxt = livestream(29, "solo next", host="solo")
    alike = _fit([*others, solo], [3.0] * 7, [nxt])
    varied = _fit([*others, solo], [1.8, 4.5, 2.2, 4.0, 1.6, 4.8, 3.0], [nxt])

    def band(model: HeadroomForecaster) -> float:
        fc = model.predict(nxt.start, nxt.end - nxt.start, 60)
        return float(np.median(fc.level(0.9) / fc.level(0.5)))

    for model in (alike, varied):
        up = model.uplift_for(nxt)
        assert up.similar == 1 and 2.4 < up.peak < 3.6  # the host's own show
    assert band(varied) > band(alike) * 1.15


@pytest.mark.parametrize("ramp", [0.0, 2 * HOUR])
def test_events_with_or_without_declared_ramp(ramp: float) -> None:
    past = [livestream(d, ramp=ramp) for d in PAST_DAYS]
    nxt = livestream(29, "next", ramp=ramp)
    model = _fit(past, [3.0] * 7, [nxt])
    assert 0.8 * 3.0 < model.uplift_for(nxt).peak < 1.2 * 3.0


def test_an_event_running_hotter_than_learned_raises_the_rest_of_its_forecast() -> None:
    """Past shows were ~3x; tonight's runs at 6x. Twenty minutes in, the forecast for the
    rest of the show follows what is observed (causally: only samples before now)."""
    past = [livestream(d) for d in PAST_DAYS]
    tonight = livestream(29, "tonight")
    trace = generate_trace(START, 30, 60, 1000, [*past, tonight], [3.0] * 7 + [6.0], seed=12)
    cal = Calendar.of([*past, tonight])
    now = tonight.start + 20 * 60
    model = HeadroomForecaster().fit(trace.before(now), cal)
    fc = model.predict(now, tonight.end - now, 60)
    assert fc.baseline is not None
    hot = float(np.median(fc.level(0.5) / fc.baseline))
    assert hot > 4.5
    # Before the show started the model could only know the past shows: about 3x.
    early = HeadroomForecaster().fit(trace.before(tonight.start - HOUR), cal)
    fc = early.predict(tonight.start, tonight.end - tonight.start, 60)
    assert fc.baseline is not None
    assert float(np.median(fc.level(0.5) / fc.baseline)) < 3.6


def test_an_event_running_cooler_than_learned_lowers_and_narrows_the_rest() -> None:
    """Past shows were ~4x; tonight's is 1.8x. Twenty minutes in, the nowcast lowers the
    rest of the show's forecast (a Bayesian update, not a one-way ratchet) and its band
    narrows; before the start the model still expects the learned size."""
    past = [livestream(d) for d in PAST_DAYS]
    tonight = livestream(29, "tonight")
    truths = [4.0, 3.6, 4.4, 4.1, 3.9, 4.0, 4.2]
    trace = generate_trace(START, 30, 60, 1000, [*past, tonight], [*truths, 1.8], seed=12)
    cal = Calendar.of([*past, tonight])
    early = HeadroomForecaster().fit(trace.before(tonight.window_start), cal)
    fc = early.predict(tonight.start, tonight.end - tonight.start, 60)
    assert fc.baseline is not None
    before = float(np.median(fc.level(0.5) / fc.baseline))
    width_before = float(np.median(fc.level(0.99) / fc.level(0.5)))
    assert before > 3.3
    now = tonight.start + 20 * 60
    model = HeadroomForecaster().fit(trace.before(now), cal)
    fc = model.predict(now, tonight.end - now, 60)
    assert fc.baseline is not None
    assert float(np.median(fc.level(0.5) / fc.baseline)) < 2.4
    assert float(np.median(fc.level(0.99) / fc.level(0.5))) < width_before


def test_an_event_ahead_of_its_learned_shape_moves_the_peak_at_most_threefold() -> None:
    """Past starts came 0-15 minutes late, so the learned shape climbs over its first
    quarter hour; tonight's step is on time. Ten minutes in, the nowcast reads tonight as
    far bigger than the shape says there, but the forecast's peak moves at most 3x: its
    scale acts on the log uplift (the multiplier to its power), so unbounded it said 27x."""
    past = [livestream(d) for d in PAST_DAYS]
    tonight = livestream(29, "tonight")
    events = [*past, tonight]
    trace = generate_trace(START, 30, 60, 1000, [], noise=0.02, seed=3)
    v = trace.v.copy()
    lates = (15, 0, 12, 15, 10, 14, 12, 0)
    for ev, late in zip(events, lates, strict=True):
        v = np.where((trace.t >= ev.start + late * 60) & (trace.t < ev.end), 3.0 * v, v)
    trace = type(trace)(trace.t, v)
    cal = Calendar.of(events)
    now = tonight.start + 10 * 60
    fc = HeadroomForecaster().fit(trace.before(now), cal).predict(now, tonight.end - now, 60)
    assert fc.baseline is not None
    peak = float(np.max(fc.level(0.5) / fc.baseline))
    assert 2.5 < peak <= 3.0 * 3.0 * 1.1
    assert fc.shape is not None  # the learned shape, for the rule to move its level by
    assert float(np.max(fc.shape / fc.baseline)) < 3.6
