"""Event sizes (policies/forecast/eventsize.py): measured steps, partially pooled."""

from __future__ import annotations

import math

import numpy as np
import pytest

from headroom.policies.calendar import DemandEvent, Expectation
from headroom.policies.forecast.eventsize import EventSizes
from headroom.policies.series import Series

T0 = 1_700_006_400.0
DAY = 86400.0
HOUR = 3600.0
BASE = 1000.0


def _event(name: str, day: int, hour: float, kind: str = "match", **labels: str) -> DemandEvent:
    start = T0 + day * DAY + hour * HOUR
    return DemandEvent(f"{name} #{day}", kind, start, start + HOUR, labels=labels)


def _trace(days: int, steps: list[tuple[DemandEvent, float]], seed: int = 3) -> Series:
    rng = np.random.default_rng(seed)
    t = T0 + np.arange(days * 1440, dtype=np.float64) * 60.0
    v = BASE * rng.lognormal(0.0, 0.03, t.size)
    for ev, size in steps:
        v = np.where((t >= ev.start) & (t < ev.end), v * size, v)
    return Series(t, v)


def _learned(events: list[DemandEvent], trace: Series) -> EventSizes:
    sizes = EventSizes(events)

    def since(start: float) -> Series:
        lo = int(np.searchsorted(trace.t, start, side="left"))
        return Series(trace.t[lo:], trace.v[lo:])

    sizes.learn(float(trace.t[-1]) + 60.0, since)
    return sizes


def test_with_nothing_measured_the_size_is_the_modest_prior() -> None:
    sizes = EventSizes([], prior=1.5)
    ev = _event("match", 1, 18)
    assert sizes.size(ev, 0.5) == pytest.approx(1.5)
    # The quantile spends by the prior's uncertainty: more above the median, never < 1.
    assert sizes.size(ev, 0.9) > 1.5 * math.exp(0.5)
    assert sizes.size(ev, 0.05) == 1.0


def test_a_kind_seen_many_times_gets_its_own_size_and_its_spread() -> None:
    events = [_event("match", d, 18) for d in range(1, 9)]
    truth = list(zip(events, (3.0, 3.3, 2.7, 3.1, 2.9, 3.2, 2.8, 3.0), strict=True))
    sizes = _learned(events, _trace(10, truth))
    assert len(sizes.measured) == 8
    for key, m in sizes.measured.items():
        size = next(x for e, x in truth if EventSizes.key(e) == key)
        assert m.step / m.base == pytest.approx(size, rel=0.08)
    nxt = _event("match", 9, 18)
    median = sizes.size(nxt, 0.5)
    # Eight of a kind against two prior pseudo-observations at 1.5 and three of the pool.
    assert 2.5 < median < 3.1
    # A tight kind has a narrow band: its p90 is not far above its median.
    assert sizes.size(nxt, 0.9) < 1.6 * median


def test_a_kind_never_seen_is_pooled_between_the_prior_and_every_event() -> None:
    events = [_event("match", d, 18) for d in range(1, 7)]
    sizes = _learned(events, _trace(8, [(e, 4.0) for e in events]))
    premiere = _event("premiere", 7, 18, kind="premiere")
    match = _event("match", 7, 18)
    pooled, own = sizes.size(premiere, 0.5), sizes.size(match, 0.5)
    assert 1.5 < pooled < own < 4.0
    # Labels shrink toward their kind: within one kind, a league seen before pulls its
    # own way (cup events run x5, youth ones x2).
    games = [_event("game", d, 18, league="cup" if d % 2 else "youth") for d in range(1, 9)]
    truth = [(e, 5.0 if d % 2 else 2.0) for d, e in enumerate(games, start=1)]
    sizes = _learned(games, _trace(10, truth))
    cup = sizes.size(_event("game", 9, 18, league="cup"), 0.5)
    youth = sizes.size(_event("game", 9, 18, league="youth"), 0.5)
    unknown = sizes.size(_event("game", 9, 18, league="friendly"), 0.5)
    assert youth < unknown < cup
    assert cup > 3.5 and youth < 2.8


def test_a_base_is_measured_before_the_previous_event_never_inflated_by_it() -> None:
    first = _event("show", 2, 10)
    second = _event("show", 2, 11.75)  # its base window lies in the first's after-window
    third = _event("show", 4, 18)
    truth = [(first, 4.0), (second, 2.0), (third, 2.0)]
    sizes = _learned([first, second, third], _trace(6, truth))
    assert len(sizes.measured) == 3
    # The second show's base window lies in the first's after-window: it is measured an
    # hour earlier, before the first show, so its size is its own (x2), not x2/x4.
    got = sizes.measured[EventSizes.key(second)]
    assert got.step / got.base == pytest.approx(2.0, rel=0.08)
    for m in sizes.measured.values():
        assert m.base == pytest.approx(BASE, rel=0.05)
    # ... and says when it stands for (the rule moves it by the daily shape from there):
    # the samples it took lie before the first show, not at the nominal 10:15-11:10.
    trace = _trace(6, truth)
    lo = int(np.searchsorted(trace.t, second.start - 8 * HOUR))
    base, at = sizes.base_at(second, lambda s: Series(trace.t[lo:], trace.v[lo:]))
    assert base == pytest.approx(BASE, rel=0.05)
    assert second.start - 3 * HOUR <= at < first.start


def test_a_declared_multiplier_is_used_as_given() -> None:
    ev = DemandEvent(
        "gala", "premiere", T0 + DAY, T0 + DAY + HOUR, expectation=Expectation(multiplier=6.0)
    )
    assert EventSizes([]).size(ev, 0.5) == 6.0
    assert EventSizes([]).size(ev, 0.99) == 6.0


def test_an_event_still_unfolding_teaches_nothing_yet() -> None:
    ev = _event("match", 2, 18)
    trace = _trace(3, [(ev, 3.0)])
    sizes = EventSizes([ev])

    def since(start: float) -> Series:
        lo = int(np.searchsorted(trace.t, start, side="left"))
        return Series(trace.t[lo:], trace.v[lo:])

    sizes.learn(ev.start + 600.0, since)  # ten minutes in: its step window is not past
    assert not sizes.measured
    sizes.learn(ev.start + 1800.0, since)
    assert EventSizes.key(ev) in sizes.measured


PRIOR = (-300.0, 900.0)  # the rule's window before arrivals are measured: -5 min, +15 min


def _late(events: list[DemandEvent], lates: list[float], size: float = 3.0) -> Series:
    """Steps of ``size`` that came ``lates`` minutes after each declared start."""
    moved = [
        (DemandEvent(e.name, e.kind, e.start + m * 60.0, e.end), size)
        for e, m in zip(events, lates, strict=True)
    ]
    return _trace(len(events) + 2, moved)


def test_the_pre_scale_window_narrows_to_when_past_starts_arrived() -> None:
    """Twelve starts that all came on time: the next one's pre-scale stands minutes around
    its start, not the prior's twenty; starts that came up to 10 minutes late keep a
    window reaching past the latest of them; two measured teach nothing yet."""
    events = [_event("match", d, 18) for d in range(1, 14)]
    nxt = events[-1]
    on_time = _learned(events[:-1], _late(events[:-1], [0.0] * 12))
    assert all(abs(m.arrival) <= 120.0 for m in on_time.measured.values())
    lo, hi = on_time.window(nxt, *PRIOR)
    assert -300.0 < lo <= 0.0 and 300.0 <= hi < 600.0, (lo, hi)
    late = _learned(events[:-1], _late(events[:-1], [0, 10, 2, 7, 9, 1, 5, 10, 3, 8, 6, 4]))
    lo, hi = late.window(nxt, *PRIOR)
    assert hi > 10 * 60.0, hi
    two = _learned(events[:2], _late(events[:2], [0.0, 0.0]))
    assert two.window(nxt, *PRIOR) == PRIOR


def test_a_start_that_has_not_come_is_let_go_once_it_has_come_with_the_odds_bought() -> None:
    """The pre-scale bought the size at the event quantile: after twelve starts that
    came on time, one bought at 0.6 is let go a few minutes after the start (the
    measured level's lag), sooner than one bought at 0.9, which keeps the arrivals'
    window (quantile 1: the window alone); after starts that came up to 10 minutes late
    the same 0.6 waits several minutes longer."""
    events = [_event("match", d, 18) for d in range(1, 14)]
    nxt = events[-1]
    on_time = _learned(events[:-1], _late(events[:-1], [0.0] * 12))
    lo, whole = on_time.window(nxt, *PRIOR)
    _, at9 = on_time.window(nxt, *PRIOR, 0.9)
    low, at6 = on_time.window(nxt, *PRIOR, 0.6)
    assert low == lo and at6 < at9 <= whole, (at6, at9, whole)
    assert 120.0 <= at6 <= 300.0, at6
    late = _learned(events[:-1], _late(events[:-1], [0, 10, 2, 7, 9, 1, 5, 10, 3, 8, 6, 4]))
    _, late6 = late.window(nxt, *PRIOR, 0.6)
    assert late6 >= at6 + 180.0, (late6, at6)
    # Before three starts were timed nothing is known of when they come: the prior's.
    two = _learned(events[:2], _late(events[:2], [0.0, 0.0]))
    assert two.window(nxt, *PRIOR, 0.3) == PRIOR


def test_a_step_too_small_to_time_says_nothing_about_when_starts_arrive() -> None:
    events = [_event("match", d, 18) for d in range(1, 8)]
    sizes = _learned(events, _late(events, [0.0] * 7, size=1.1))
    assert len(sizes.measured) == 7
    assert all(math.isnan(m.arrival) for m in sizes.measured.values())
    assert sizes.window(_event("match", 9, 18), *PRIOR) == PRIOR


def test_a_kinds_evening_shows_are_sized_apart_from_its_morning_ones() -> None:
    """One kind, no labels: its shows at 19:00 came in at x4, those at 09:00 at x1.5. The
    next evening show is expected bigger than the next morning one (what the kind's
    mean alone cannot say); with no such difference, both estimates stay together."""
    days = 10
    evening = [_event("show", d, 19) for d in range(1, days)]
    morning = [_event("show", d, 9) for d in range(1, days)]
    events = sorted(evening + morning, key=lambda e: e.start)
    nxt_eve, nxt_morn = _event("show", days + 1, 19), _event("show", days + 1, 9)

    def estimates(eve: float, morn: float) -> tuple[float, float]:
        steps = [(e, eve) for e in evening] + [(e, morn) for e in morning]
        sizes = _learned(events, _trace(days + 1, steps))
        assert len(sizes.measured) == len(events)
        return sizes.size(nxt_eve, 0.5), sizes.size(nxt_morn, 0.5)

    eve, morn = estimates(4.0, 1.5)
    assert eve > 1.4 * morn, (eve, morn)
    assert 2.8 < eve < 4.4 and 1.3 < morn < 2.2, (eve, morn)
    eve, morn = estimates(2.5, 2.5)
    assert abs(math.log(eve / morn)) < 0.05, (eve, morn)
