"""Gaps stay gaps (NaN, never zero) through resampling, CSV files and the INFO history file,
and `headroom capacity learn` over a recorded history."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from headroom.cli.main import app
from headroom.controller.signals.base import Metric, Reading, Unavailable, grid, require, resample
from headroom.controller.signals.csv import CsvSource
from headroom.controller.signals.redis_info import RedisInfoSource, load_history
from headroom.controller.signals.redis_samples import ClusterSample, NodeSample
from headroom.policies.errors import SourceUnavailable
from headroom.policies.series import Series


def test_grid_is_aligned_to_the_step():
    assert grid(101, 130, 10).tolist() == [110, 120, 130]
    assert grid(100, 100, 10).tolist() == [100]
    assert grid(101, 109, 10).size == 0


def test_resample_keeps_gaps_and_averages_buckets():
    raw = Series.from_lists([1, 2, 3, 11, 12, 31, 32], [10, 20, np.nan, 5, 7, np.nan, np.nan])
    out = resample(raw, 0, 40, 10)
    assert out.t.tolist() == [0, 10, 20, 30, 40]
    # (−10,0] empty; (0,10] -> 10,20; (10,20] -> 5,7; (20,30] empty; (30,40] only NaN samples.
    assert np.isnan(out.v[0]) and out.v[1] == 15 and out.v[2] == 6
    assert np.isnan(out.v[3]) and np.isnan(out.v[4])


def test_csv_source_blank_rows_and_missing_time_are_gaps(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("timestamp,qps\n0,100\n60,\n120,0\n300,50\n")
    source = CsvSource(path)
    series = require(source.range(Metric.QPS, 0, 300, 60))
    assert series.v[0] == 100 and np.isnan(series.v[1]) and series.v[2] == 0
    assert np.isnan(series.v[3]) and np.isnan(series.v[4]) and series.v[5] == 50
    last = source.instant(Metric.QPS)
    assert isinstance(last, Reading) and last.value == 50 and last.at == 300
    assert isinstance(source.instant(Metric.MEMORY), Unavailable)
    path.write_text("timestamp,qps\n0,1\n60,2\n")  # a rewritten file is read again
    series = require(source.range(Metric.QPS, 0, 60, 60))
    assert series.v.tolist() == [1, 2]


def test_csv_source_missing_or_bad_file_is_unavailable(tmp_path):
    gone = CsvSource(tmp_path / "nope.csv").instant(Metric.QPS)
    assert isinstance(gone, Unavailable) and "cannot read" in gone.reason
    bad = tmp_path / "bad.csv"
    bad.write_text("when,qps\n1,2\n")
    result = CsvSource(bad).range(Metric.QPS, 0, 10, 1)
    assert isinstance(result, Unavailable) and "timestamp" in result.reason
    with pytest.raises(SourceUnavailable, match="csv: "):
        require(result)


def node(at, qps, p99, addr="127.0.0.1:7000", role="master"):
    return NodeSample(addr, addr, role, at, qps, p99, math.nan, 1e6, 10.0, 0.1)


def test_info_history_round_trip_keeps_nan_as_gap(tmp_path):
    path = tmp_path / "h.json"
    source = RedisInfoSource("127.0.0.1:1", history_file=path)  # never contacted
    samples = [
        ClusterSample(100.0, (node(100.0, math.nan, 0.001),)),  # first look: no rate yet
        ClusterSample(101.0, (node(101.0, 500.0, 0.001),)),
        ClusterSample(102.0, (node(102.0, 600.0, 0.001),), {"127.0.0.1:7001": "refused"}),
    ]
    source._history.extend(samples)
    source.save(path)
    assert "NaN" not in path.read_text()
    restored = load_history(path)
    assert [s.at for s in restored] == [100.0, 101.0, 102.0]
    assert math.isnan(restored[0].nodes[0].qps) and restored[1].nodes[0].qps == 500.0
    again = RedisInfoSource("127.0.0.1:1", history_file=path)
    series = require(again.range(Metric.QPS, 100, 102, 1))
    # A partial tick (a master missing) is a gap, not a smaller sum.
    assert np.isnan(series.v[0]) and series.v[1] == 500.0 and np.isnan(series.v[2])
    assert isinstance(again.instant(Metric.QPS), Unavailable)  # stale: nothing sampled live


def test_capacity_learn_from_a_recorded_history(tmp_path):
    rng = np.random.default_rng(5)
    source = RedisInfoSource("127.0.0.1:1")
    at = 1000.0
    for clients in [1, 2, 4, 8, 16, 32, 64, 128, 256]:
        for _ in range(10):
            at += 1
            qps = min(clients * 5_000, 40_000) * rng.normal(1, 0.02)
            p99 = max(0.0003, clients / 40_000 * 2.5) * rng.lognormal(0, 0.1)
            source._history.append(ClusterSample(at, (node(at, qps, p99),)))
    history = source.save(tmp_path / "h.json")
    chart = tmp_path / "knee.png"
    result = CliRunner().invoke(
        app,
        ["capacity", "learn", "--redis", "127.0.0.1:1", "--history", str(history),
         "--slo-ms", "2", "--declared", "10000", "--json", "--chart", str(chart)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    est = doc["estimate"]
    assert est["method"] == "crossing" and est["crossed"] is True
    assert est["qps_per_unit"] == pytest.approx(40_000, rel=0.1)
    assert chart.stat().st_size > 10_000
    human = CliRunner().invoke(
        app, ["capacity", "learn", "--redis", "x:1", "--history", str(history), "--slo-ms", "2"]
    )
    assert human.exit_code == 0 and "QPS per unit" in human.stdout


def test_capacity_learn_input_errors(tmp_path):
    runner = CliRunner()
    both = runner.invoke(app, ["capacity", "learn", "--redis", "a:1", "--prometheus", "http://x"])
    assert both.exit_code == 2 and "not both" in both.stderr
    no_slo = runner.invoke(app, ["capacity", "learn", "--redis", "a:1"])
    assert no_slo.exit_code == 2 and "--slo-ms" in no_slo.stderr
    bad = tmp_path / "p.yaml"
    bad.write_text("targets: []\n")
    policy = runner.invoke(app, ["capacity", "learn", "--policy", str(bad)])
    assert policy.exit_code == 2 and "p.yaml" in policy.stderr
