"""Cost/shortfall frontiers: each strategy swept over its own cost knob, on one trace.

``headroom simulate --frontier`` and ``bench/backtest.py`` call :func:`frontier`. A single
backtest compares Headroom and the reactive HPA at one setting each, where they spend
different unit-hours; a user choosing between them asks *at the same bill, which one
runs short less?* So each strategy is replayed over its own knob — the HPA's target
utilisation, Headroom's event quantile and target utilisation (a grid) — and the
underprovisioned minutes are read off each curve at the other's unit-hours:

Headroom's knobs swept: the event quantile ``q`` (the size of events the pre-scale buys),
the target utilisation ``u`` and, near the HPA's target, the event margin switched off (the
event start provisioned at the forecast's utilisation, ``forecast.eventTargetUtilization``
set to it: the pre-scale buys the learned size and no margin over it). Where the
reactive HPA is short mostly on noise, not at events, that end is where Headroom's money
goes furthest (issue 20: at a 2-minute delay it was what kept Headroom from being worse
than the HPA at its bill on noisy traces).

- ``headroom_at_hpa``: Headroom's minutes at the reactive HPA's unit-hours (the HPA at
  the policy's target utilisation), interpolated on Headroom's curve;
- ``hpa_at_headroom``: the HPA's minutes at Headroom's unit-hours (Headroom as the
  policy is written), interpolated on the HPA's curve.

A curve is the lower convex hull of a strategy's points: for each cost, the fewest
minutes any of its settings, or a mix of two of them, reached at no more cost. A user can
mix two settings (run one for part of the time, the other for the rest) and gets, in
expectation, the straight line between them in both minutes and unit-hours, so a point
above that line is never the best buy; and with the convex hull another setting swept can
only lower a curve (on the staircase of undominated points read linearly it could raise
it: a point just off the line between two others replaced their segment by two worse
ones). Below a curve's cheapest point there is no value (None). Unit-hours are
counted for every strategy alike, twice: from the *order* (paying starts when units are
ordered, the default) and from *readiness* (units count once serving); every number
is given on both bases. With ``score_from`` the whole trace is replayed and only the
time from then on is scored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from headroom.policies.baselines.headroom import HeadroomStrategy
from headroom.policies.baselines.hpa import ReactiveHpa
from headroom.policies.baselines.oracle import Oracle
from headroom.policies.baselines.suite import pick_target, with_fixed_delay
from headroom.policies.calendar import Calendar
from headroom.policies.capacity import units_for
from headroom.policies.policy import PolicySpec, Target
from headroom.policies.series import Series
from headroom.policies.simulate import Strategy, StrategyResult, run_strategy, target_delay

HPA_UTILIZATIONS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# Headroom's (event quantile, target utilisation) settings. The utilisation is the
# reactive half's target (the HPA's) and, times EVENT_MARGIN, the one an event's start
# is provisioned at; the event quantile is the size of events the pre-scale buys.
# Around the HPA's usual targets, where a bill is set, and both ends of the size knob.
# A setting is (event quantile, target utilisation, event margin on); the margin off is
# the cheap end of the event knob. The margin and the quantile both insure the size of
# a start: the margin off is swept at each quantile near the HPA's target too, where a
# big size with no margin over it buys a start more cheaply than a smaller one with it
# (session 17, 10 minutes: 7 of 11 event cases 2-8 points lower at the HPA's bill, none
# more than 2 higher).
Setting = tuple[float, float, bool]
HEADROOM_SETTINGS: tuple[Setting, ...] = (
    *((q, u, True) for q in (0.3, 0.6, 0.9) for u in (0.75, 0.8, 0.85, 0.9)),
    (0.6, 0.7, True),
    (0.6, 0.825, True),
    (0.6, 0.95, True),
    *((0.3, u, False) for u in (0.8, 0.85, 0.9)),
    *((q, u, False) for q in (0.6, 0.9) for u in (0.8, 0.85)),
)


# How far :func:`_along_utilization` moves the utilisation from a point.
MAX_STEP = 0.05

BASES = ("order", "ready")
FrontierProgress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass(frozen=True)
class Point:
    """One strategy at one setting of its knob."""

    strategy: str
    quantile: float | None  # Headroom's event quantile (None for the HPA / oracle)
    utilization: float | None  # the SLO's target utilisation it ran with
    minutes: float
    unit_hours: float  # from the order
    ready_unit_hours: float  # from readiness
    reference: bool = False  # the policy as written (the setting a single backtest uses)
    event_margin: bool = True  # Headroom's event margin on (False: swept off)

    def cost(self, basis: str) -> float:
        return self.unit_hours if basis == "order" else self.ready_unit_hours

    @property
    def label(self) -> str:
        parts = []
        if self.quantile is not None:
            parts.append(f"q={self.quantile:g}")
        if self.utilization is not None:
            parts.append(f"util={self.utilization:g}")
        if not self.event_margin:
            parts.append("no event margin")
        return ", ".join(parts) or "-"


def hull(points: Sequence[Point], basis: str) -> list[Point]:
    """The lower convex hull, cheapest first: each point has fewer minutes than every
    cheaper one and lies below the straight line between its neighbours on the hull."""
    out: list[Point] = []
    for p in sorted(points, key=lambda p: (p.cost(basis), p.minutes)):
        if out and p.minutes >= out[-1].minutes:
            continue  # a cheaper point is short no longer
        while len(out) >= 2:
            a, b = out[-2], out[-1]
            # b is dropped when it lies on or above the line from a to p.
            rise = (b.minutes - a.minutes) * (p.cost(basis) - a.cost(basis))
            if rise >= (p.minutes - a.minutes) * (b.cost(basis) - a.cost(basis)):
                out.pop()
            else:
                break
        out.append(p)
    return out


def minutes_at(points: Sequence[Point], unit_hours: float, basis: str) -> float | None:
    """Minutes on the hull of ``points`` at ``unit_hours`` (linear between hull points;
    None below the cheapest point; the last point's minutes beyond the dearest)."""
    curve = hull(points, basis)
    if not curve or unit_hours < curve[0].cost(basis) - 1e-9:
        return None
    for a, b in zip(curve, curve[1:], strict=False):
        ca, cb = a.cost(basis), b.cost(basis)
        if unit_hours <= cb:
            w = (unit_hours - ca) / (cb - ca) if cb > ca else 1.0
            return a.minutes + w * (b.minutes - a.minutes)
    return curve[-1].minutes


@dataclass(frozen=True)
class Headline:
    """The two numbers a user compares, on one unit-hour basis."""

    basis: str
    hpa: Point  # the reactive HPA at the policy's target utilisation
    headroom: Point  # Headroom as the policy is written
    headroom_at_hpa: float | None  # Headroom's minutes at the HPA's unit-hours
    hpa_at_headroom: float | None  # the HPA's minutes at Headroom's unit-hours

    @property
    def share(self) -> float | None:
        """Headroom's minutes at the HPA's unit-hours as a share of the HPA's minutes."""
        if self.headroom_at_hpa is None or self.hpa.minutes <= 0:
            return None
        return self.headroom_at_hpa / self.hpa.minutes


@dataclass(frozen=True)
class Frontier:
    """Both strategies' points on one trace (same delay, start and scoring) and the oracle."""

    headroom: tuple[Point, ...]
    reactive_hpa: tuple[Point, ...]
    oracle: Point
    delay_seconds: float | None
    score_from: float | None

    def reference(self, name: str) -> Point:
        points = self.headroom if name == "headroom" else self.reactive_hpa
        return next(p for p in points if p.reference)

    def headline(self, basis: str = "order") -> Headline:
        hpa, head = self.reference("reactive_hpa"), self.reference("headroom")
        return Headline(
            basis,
            hpa,
            head,
            minutes_at(self.headroom, hpa.cost(basis), basis),
            minutes_at(self.reactive_hpa, head.cost(basis), basis),
        )

    def to_json(self) -> dict[str, object]:
        def point(p: Point) -> dict[str, object]:
            return {
                "quantile": p.quantile,
                "target_utilization": p.utilization,
                "event_margin": p.event_margin,
                "underprovisioned_minutes": round(p.minutes, 3),
                "unit_hours": round(p.unit_hours, 3),
                "ready_unit_hours": round(p.ready_unit_hours, 3),
                "reference": p.reference,
            }

        def rounded(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        headlines = {}
        for basis in BASES:
            h = self.headline(basis)
            headlines[basis] = {
                "headroom_minutes_at_hpa_unit_hours": rounded(h.headroom_at_hpa),
                "hpa_minutes_at_headroom_unit_hours": rounded(h.hpa_at_headroom),
                "hpa_unit_hours": round(h.hpa.cost(basis), 3),
                "hpa_minutes": round(h.hpa.minutes, 3),
                "headroom_unit_hours": round(h.headroom.cost(basis), 3),
                "headroom_minutes": round(h.headroom.minutes, 3),
            }
        return {
            "headroom": [point(p) for p in self.headroom],
            "reactive_hpa": [point(p) for p in self.reactive_hpa],
            "oracle": point(self.oracle),
            "headline": headlines,
            "unit_hours_basis": {"order": "unit_hours", "ready": "ready_unit_hours"},
        }


def _point(
    name: str,
    r: StrategyResult,
    q: float | None,
    u: float | None,
    ref: bool = False,
    margin: bool = True,
) -> Point:
    minutes, cost, ready = r.underprovisioned_minutes, r.unit_hours, r.ready_unit_hours
    return Point(name, q, u, minutes, cost, ready, ref, margin)


def _with(
    spec: PolicySpec, quantile: float | None, utilization: float | None, margin: bool = True
) -> PolicySpec:
    update: dict[str, object] = {}
    if utilization is not None:
        update["slo"] = spec.slo.model_copy(update={"target_utilization": utilization})
    if quantile is not None:  # the quantile of event sizes the pre-scale buys
        update["forecast"] = spec.forecast.model_copy(update={"event_quantile": quantile})
    out = spec.model_copy(update=update)
    return out if margin else without_event_margin(out)


def without_event_margin(spec: PolicySpec) -> PolicySpec:
    """``spec`` with an event's start provisioned at the forecast's utilisation (1.0 by
    default): the pre-scale buys the learned size and no margin over it (the cheap end of
    the event knob)."""
    off = {"event_target_utilization": spec.forecast_utilization}
    return spec.model_copy(update={"forecast": spec.forecast.model_copy(update=off)})


def _setting(s: tuple[float, float] | Setting) -> Setting:
    """A setting as (q, u, margin); a pair keeps the event margin on."""
    return (s[0], s[1], True) if len(s) == 2 else (s[0], s[1], s[2])


def _label(q: float, u: float, margin: bool) -> str:
    return f"q={q:g} util={u:g}" + ("" if margin else " no event margin")


def _toward(a: Point, b: Point, goal: float) -> Setting:
    """The setting between two Headroom points expected to spend ``goal`` unit-hours: the
    share of the way from ``a`` to ``b`` that ``goal`` lies at in cost (kept within
    15-85 %, so a refinement is never one of the two), quantile in log-odds and
    utilisation linear. A setting run at the cost where the headline is read measures the
    minutes there instead of reading them off the straight line between the two."""
    span = b.unit_hours - a.unit_hours
    w = (goal - a.unit_hours) / span if span > 0 else 0.5
    w = min(max(w, 0.15), 0.85)
    qa, qb = a.quantile or 0.5, b.quantile or 0.5
    logit = (1 - w) * math.log(qa / (1 - qa)) + w * math.log(qb / (1 - qb))
    q = round(1.0 / (1.0 + math.exp(-logit)), 4)
    u = round((1 - w) * (a.utilization or 0.8) + w * (b.utilization or 0.8), 3)
    return q, u, a.event_margin if w < 0.5 else b.event_margin


def _known(head: Sequence[Point], setting: Setting) -> bool:
    return any((p.quantile, p.utilization, p.event_margin) == setting for p in head)


def _along_utilization(a: Point, head: Sequence[Point], goal: float) -> Setting | None:
    """Where :func:`_toward` gives one of its two points (they differ only in the event
    margin): ``a``'s quantile and margin at the utilisation expected to spend ``goal``,
    by the cost slope between ``a`` and its nearest neighbour in utilisation at the same
    quantile and margin (at most ``MAX_STEP`` away). None without such a neighbour."""
    au = a.utilization
    if au is None:
        return None
    same = [
        (p.utilization, p)
        for p in head
        if (p.quantile, p.event_margin) == (a.quantile, a.event_margin)
        and p.utilization is not None
        and p.utilization != au
    ]
    if not same:
        return None
    cu, c = min(same, key=lambda x: abs(x[0] - au))
    slope = (c.unit_hours - a.unit_hours) / (cu - au)
    if slope >= 0:  # a higher target costing no less: nothing to read it by
        return None
    step = min(max((goal - a.unit_hours) / slope, -MAX_STEP), MAX_STEP)
    u = min(max(round(au + step, 3), 0.05), 1.0)
    return a.quantile or 0.5, u, a.event_margin


def frontier(
    trace: Series,
    calendar: Calendar,
    spec: PolicySpec,
    *,
    target_name: str | None = None,
    delay_seconds: float | None = None,
    score_from: float | None = None,
    hpa_utilizations: Sequence[float] = HPA_UTILIZATIONS,
    headroom_settings: Sequence[tuple[float, float] | Setting] = HEADROOM_SETTINGS,
    strategy_factory: Callable[[PolicySpec, Target, Calendar], Strategy] | None = None,
    progress: FrontierProgress | None = None,
    refine: int = 2,
) -> Frontier:
    """Sweep the HPA over ``hpa_utilizations`` and Headroom over ``headroom_settings``
    (event quantile, target utilisation), plus each as the policy is written; the
    oracle once; then ``refine`` more Headroom settings, each between the two hull points
    around the HPA's unit-hours where that cost is expected (where the headline is read),
    or, when those two differ only in the event margin, the cheaper one's setting at the
    utilisation expected to cost that (:func:`_along_utilization`).
    ``strategy_factory`` builds the Headroom strategy for a spec (default:
    :class:`HeadroomStrategy`)."""
    target = pick_target(spec, target_name)
    if delay_seconds is not None:
        spec, target = with_fixed_delay(spec, target, delay_seconds)
    first = next((float(v) for v in trace.v if v == v), 0.0)
    initial = units_for(first, target, spec)
    delay = target_delay(target)
    make = strategy_factory or (lambda s, t, c: HeadroomStrategy(s, t, c))
    q0, u0 = spec.event_size_quantile, spec.slo.target_utilization
    own: Setting = (q0, u0, True)
    head_settings = sorted({own, *(_setting(s) for s in headroom_settings)})
    hpa_settings = sorted({u0, *hpa_utilizations})
    total = len(head_settings) + len(hpa_settings) + 1
    done = 0

    def replay(strategy: Strategy, what: str) -> StrategyResult:
        nonlocal done
        if progress is not None:
            progress(what, done, total)
        r = run_strategy(
            trace,
            strategy,
            target=target,
            delay=delay,
            initial_units=initial,
            score_from=score_from,
        )
        done += 1
        return r

    hpa: list[Point] = []
    for u in hpa_settings:
        s = _with(spec, None, u)
        r = replay(ReactiveHpa(target, s), f"reactive_hpa util={u:g}")
        hpa.append(_point("reactive_hpa", r, None, u, ref=u == u0))
    head: list[Point] = []
    for q, u, m in head_settings:
        s = _with(spec, q, u, m)
        r = replay(make(s, target, calendar), f"headroom {_label(q, u, m)}")
        head.append(_point("headroom", r, q, u, ref=(q, u, m) == own, margin=m))
    # Refine where the headline is read: between the two hull points around the HPA's
    # unit-hours, try the setting expected to spend them (:func:`_toward`).
    goal = next(p for p in hpa if p.reference).unit_hours
    for _ in range(refine):
        curve = hull(head, "order")
        pair = next(
            (
                (a, b)
                for a, b in zip(curve, curve[1:], strict=False)
                if a.unit_hours <= goal <= b.unit_hours
            ),
            None,
        )
        if pair is None:
            break
        between = _toward(pair[0], pair[1], goal)
        setting = between if not _known(head, between) else _along_utilization(pair[0], head, goal)
        if setting is None or _known(head, setting):
            break
        q, u, m = setting
        total += 1
        s = _with(spec, q, u, m)
        r = replay(make(s, target, calendar), f"headroom {_label(q, u, m)}")
        head.append(_point("headroom", r, q, u, margin=m))
    oracle = _point("oracle", replay(Oracle(trace, target, delay), "oracle"), None, None)
    if progress is not None:
        progress("done", total, total)
    return Frontier(tuple(head), tuple(hpa), oracle, delay_seconds, score_from)
