"""The cost/shortfall frontier, scoring from a time, the trace's value unit, the maxUnits
warning and the sizing rule `policy validate` prints (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from headroom.cli.main import app
from headroom.policies.baselines.frontier import (
    Point,
    _along_utilization,
    _toward,
    _with,
    frontier,
    hull,
    minutes_at,
)
from headroom.policies.baselines.suite import backtest
from headroom.policies.calendar import Calendar
from headroom.policies.errors import TraceError
from headroom.policies.policy import PolicySpec, load_policy
from headroom.policies.series import Series
from headroom.policies.trace import format_trace_csv, parse_trace_csv
from tests.simulate.test_cli import CALENDAR, POLICY, T0

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"


def _p(cost: float, minutes: float, ready: float | None = None) -> Point:
    return Point("x", None, None, minutes, cost, cost if ready is None else ready)


def test_a_refinement_aims_at_the_cost_where_the_headline_is_read() -> None:
    cheap = Point("headroom", 0.3, 0.9, 400.0, 1000.0, 1000.0)
    dear = Point("headroom", 0.6, 0.8, 100.0, 1200.0, 1200.0)
    q, u, margin = _toward(cheap, dear, 1050.0)  # a quarter of the way in cost
    assert u == pytest.approx(0.875)
    assert 0.3 < q < 0.45  # a quarter of the way in log-odds
    assert margin
    assert _toward(cheap, dear, 1190.0)[1] == pytest.approx(0.815)  # never the end itself
    # The event margin is the nearer point's: it is on or off, not in between.
    off = Point("headroom", 0.3, 0.9, 400.0, 1000.0, 1000.0, event_margin=False)
    assert _toward(off, dear, 1050.0)[2] is False
    assert _toward(off, dear, 1150.0)[2] is True


def test_between_two_points_that_differ_only_in_the_margin_a_refinement_moves_the_utilisation():
    """The two hull points around the bill are one setting with the margin off (cheaper)
    and on: :func:`_toward` gives one of them. The refinement then moves the cheaper one's
    utilisation by the cost slope to its neighbour at the same quantile and margin."""
    off = Point("headroom", 0.6, 0.8, 320.0, 5945.0, 5945.0, event_margin=False)
    on = Point("headroom", 0.6, 0.8, 268.0, 6039.0, 6039.0)
    looser = Point("headroom", 0.6, 0.85, 934.0, 5602.0, 5602.0, event_margin=False)
    other_q = Point("headroom", 0.3, 0.79, 300.0, 6000.0, 6000.0, event_margin=False)
    head = [off, on, looser, other_q]
    assert _toward(off, on, 6027.0) == (0.6, 0.8, True)  # `on` itself: no refinement
    # 6,860 unit-hours per unit of utilisation: 82 more is 0.012 lower.
    assert _along_utilization(off, head, 6027.0) == (0.6, 0.788, False)
    # Never more than MAX_STEP away; nothing without a neighbour, or with a slope that
    # does not say a lower utilisation costs more.
    assert _along_utilization(off, head, 9000.0) == (0.6, 0.75, False)
    assert _along_utilization(off, [off, on, other_q], 6027.0) is None
    flat = Point("headroom", 0.6, 0.85, 934.0, 6100.0, 6100.0, event_margin=False)
    assert _along_utilization(off, [off, on, flat], 6027.0) is None


def test_hull_keeps_only_points_no_cheaper_point_beats_and_interpolates_linearly() -> None:
    points = [_p(100, 50), _p(120, 60), _p(150, 20), _p(200, 0), _p(210, 5)]
    assert [(p.unit_hours, p.minutes) for p in hull(points, "order")] == [
        (100, 50),
        (150, 20),
        (200, 0),
    ]
    assert minutes_at(points, 125, "order") == pytest.approx(35.0)
    assert minutes_at(points, 99, "order") is None  # cheaper than any setting reached
    assert minutes_at(points, 500, "order") == 0.0
    # A point above the straight line between two others is not on the curve: a mix of
    # those two settings buys fewer minutes at its cost.
    bent = [_p(100, 50), _p(150, 40), _p(200, 0)]
    assert [p.minutes for p in hull(bent, "order")] == [50, 0]
    assert minutes_at(bent, 150, "order") == pytest.approx(25.0)
    # The other basis ranks by ready unit-hours.
    ready = [_p(100, 50, ready=300), _p(150, 20, ready=90)]
    assert [p.minutes for p in hull(ready, "ready")] == [20]


def test_another_setting_swept_never_raises_a_curve() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        costs = rng.uniform(100, 200, 6)
        points = [
            _p(float(c), float(m)) for c, m in zip(costs, rng.uniform(0, 100, 6), strict=True)
        ]
        more = [*points, _p(float(rng.uniform(100, 200)), float(rng.uniform(0, 100)))]
        for goal in np.linspace(100, 200, 21):
            before, after = minutes_at(points, goal, "order"), minutes_at(more, goal, "order")
            if before is not None:
                assert after is not None and after <= before + 1e-9


def test_the_cheap_end_of_the_event_knob_turns_the_event_margin_off() -> None:
    spec = _spec()
    off = _with(spec, 0.3, 0.85, margin=False)
    assert off.event_size_quantile == 0.3 and off.slo.target_utilization == 0.85
    assert off.event_utilization == off.forecast_utilization  # no margin over the forecast's
    on = _with(spec, 0.3, 0.85)  # the policy's event margin: 0.8 of the utilisation
    assert on.event_utilization == pytest.approx(0.8 * 0.85)
    assert "no event margin" in Point("headroom", 0.3, 0.85, 1, 1, 1, event_margin=False).label


def _trace(days: int = 3, seed: int = 7) -> Series:
    rng = np.random.default_rng(seed)
    t = T0 + np.arange(days * 1440, dtype=np.float64) * 60
    v = 1000 * (1.4 + np.sin(2 * np.pi * (t - T0) / 86400)) * rng.lognormal(0, 0.1, t.size)
    return Series(t, v)


def _spec() -> PolicySpec:
    return load_policy(POLICY)


@pytest.mark.slow
def test_frontier_sweeps_each_knob_and_the_headline_reads_the_other_curve() -> None:
    trace, spec = _trace(), _spec()
    fr = frontier(
        trace,
        Calendar(),
        spec,
        delay_seconds=600.0,
        hpa_utilizations=(0.5, 0.9),
        headroom_settings=((0.5, 1.0), (0.99, 0.6), (0.3, 0.8, False)),
        refine=0,
    )
    hpa_utils = sorted(p.utilization or 0.0 for p in fr.reactive_hpa)
    assert hpa_utils == [0.5, 0.8, 0.9]  # the policy's own 0.8 is always in
    assert {(p.quantile, p.utilization, p.event_margin) for p in fr.headroom} == {
        (0.5, 1.0, True),
        (0.99, 0.6, True),
        (0.3, 0.8, False),  # the cheap end of the event knob
        (0.6, 0.8, True),  # the policy as written: its event quantile (0.6) and utilisation
    }
    # A cost knob: more margin costs more unit-hours and is short fewer minutes.
    by_util = {p.utilization: p for p in fr.reactive_hpa}
    assert by_util[0.5].unit_hours > by_util[0.9].unit_hours
    assert by_util[0.5].minutes < by_util[0.9].minutes
    # The reference points are exactly what a single backtest gives.
    single = backtest(trace, Calendar(), spec, delay_seconds=600.0, names=["reactive_hpa"])
    assert fr.reference("reactive_hpa").unit_hours == pytest.approx(
        single.results["reactive_hpa"].unit_hours
    )
    h = fr.headline("order")
    assert h.headroom_at_hpa == minutes_at(fr.headroom, h.hpa.unit_hours, "order")
    assert h.hpa_at_headroom == minutes_at(fr.reactive_hpa, h.headroom.unit_hours, "order")
    assert fr.oracle.minutes == 0.0 and fr.oracle.unit_hours < by_util[0.9].unit_hours
    headline = fr.to_json()["headline"]
    assert isinstance(headline, dict) and set(headline) == {"order", "ready"}


def test_score_from_replays_everything_but_counts_only_the_later_part() -> None:
    trace, spec = _trace(), _spec()
    cut = T0 + 2 * 86400
    whole = backtest(trace, Calendar(), spec, delay_seconds=600.0, names=["reactive_hpa"])
    part = backtest(
        trace, Calendar(), spec, delay_seconds=600.0, names=["reactive_hpa"], score_from=cut
    )
    w, p = whole.results["reactive_hpa"], part.results["reactive_hpa"]
    # Same replay (same orders), scored from the cut.
    assert w.orders == p.orders
    late = trace.t >= cut
    assert p.underprovisioned_minutes == pytest.approx(w.under_seconds[late].sum() / 60)
    steps = np.append(w.ordered_t, whole.end)
    held = np.diff(np.clip(steps, cut, whole.end)) * w.ordered_v
    assert p.unit_hours == pytest.approx(held.sum() / 3600)
    assert p.unit_hours < w.unit_hours and p.actions <= w.actions
    with pytest.raises(TraceError, match="score-from"):
        backtest(trace, Calendar(), spec, names=["reactive_hpa"], score_from=T0 - 86400)


def test_a_requests_column_is_counts_per_row_and_values_sets_the_unit() -> None:
    rows = "timestamp,requests\n0,600\n60,1200\n120,\n"
    assert parse_trace_csv(rows).v[:2].tolist() == [10.0, 20.0]  # per 60 s row
    assert parse_trace_csv(rows, unit="per-second").v[:2].tolist() == [600.0, 1200.0]
    five = "timestamp,requests\n0,3000\n300,6000\n"
    assert parse_trace_csv(five).v.tolist() == [10.0, 20.0]  # per 300 s row
    assert parse_trace_csv(five, unit="per-minute").v.tolist() == [50.0, 100.0]
    assert parse_trace_csv("timestamp,qps\n0,5\n60,6\n").v.tolist() == [5.0, 6.0]
    with pytest.raises(TraceError, match="--values"):
        parse_trace_csv(rows, unit="per-hour")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    trace = _trace(days=2)
    paths = {
        "trace": tmp_path / "trace.csv",
        "requests": tmp_path / "requests.csv",
        "policy": tmp_path / "policy.yaml",
        "calendar": tmp_path / "calendar.yaml",
    }
    paths["trace"].write_text(format_trace_csv(trace))
    per_minute = Series(trace.t, trace.v * 60)
    paths["requests"].write_text(
        format_trace_csv(per_minute).replace("timestamp,qps", "timestamp,requests")
    )
    paths["policy"].write_text(POLICY)
    paths["calendar"].write_text(CALENDAR)
    return paths


def test_simulate_reads_requests_as_counts_and_warns_at_max_units(
    files: dict[str, Path],
) -> None:
    base = ["simulate", "--policy", str(files["policy"]), "--provisioning-delay", "10m"]
    as_qps = runner.invoke(app, [*base, "--trace", str(files["trace"]), "--json"])
    counts = runner.invoke(app, [*base, "--trace", str(files["requests"]), "--json"])
    assert as_qps.exit_code == 0 and counts.exit_code == 0, counts.stderr
    a, b = json.loads(as_qps.stdout), json.loads(counts.stdout)
    assert "column 'requests' read as requests per row (60 s)" in counts.stderr
    assert b["trace"]["peak_qps"] == pytest.approx(a["trace"]["peak_qps"], rel=1e-4)
    assert a["warnings"] == []
    # Read as per-second by mistake: 60x the demand, every strategy at maxUnits.
    wrong = runner.invoke(app, [*base, "--trace", str(files["requests"]), "--values", "per-second"])
    assert wrong.exit_code == 0
    assert "warning: reactive_hpa is at maxUnits 60 for" in wrong.stderr
    assert "wrong unit (see --values)" in wrong.stderr


@pytest.mark.slow
def test_simulate_frontier_prints_both_curves_and_the_headline(
    files: dict[str, Path], tmp_path: Path
) -> None:
    chart = tmp_path / "frontier.png"
    res = runner.invoke(
        app,
        [
            "simulate", "--trace", str(files["trace"]), "--policy", str(files["policy"]),
            "--calendar", str(files["calendar"]), "--provisioning-delay", "10m",
            "--frontier", "--chart", str(chart), "--score-from", "2023-11-16T00:00:00+00:00",
            "--json",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)["frontier"]
    assert len(doc["reactive_hpa"]) >= 6 and len(doc["headroom"]) >= 10
    assert doc["headline"]["order"]["hpa_unit_hours"] > 0
    assert chart.stat().st_size > 10_000
    bad = runner.invoke(
        app,
        ["simulate", "--trace", str(files["trace"]), "--policy", str(files["policy"]),
         "--score-from", "yesterday"],
    )  # fmt: skip
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --score-from")


def test_policy_validate_prints_the_sizing_rule_that_runs() -> None:
    res = runner.invoke(app, ["policy", "validate", str(EXAMPLES / "redis-cart-policy.yaml")])
    assert res.exit_code == 0
    out = " ".join(res.stdout.split())
    assert (
        "units = max(reactive (HPA v2: observed at 75%, tolerance 10%; away from events, "
        "if past demand bursts, a need that lasted 2m (at most a fifth of the delay; none unless "
        "longer than the samples' spacing))"
    ) in out
    assert "event start (the base before it x its learned size at p60" in out
    assert "let go once they say the start has come with odds p60" in out
    assert "the first 20 min at 60%, then to the end at 75%)) x headroom 1.1" in out
    assert "scale-in to the highest need of the last 20m" in out
