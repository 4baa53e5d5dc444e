"""`headroom simulate` without --trace reads the policy's own csv demand source (through
controller/assembly, as the operator builds sources); other sources need --trace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from headroom.cli.main import app
from headroom.policies.series import Series
from headroom.policies.trace import format_trace_csv

runner = CliRunner()
T0 = 1_700_006_400.0


def _policy(tmp_path: Path, metrics: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "targets:\n  - {name: web, capacityPerUnit: 200, minUnits: 1, maxUnits: 60}\n" + metrics
    )
    return path


def _trace(tmp_path: Path) -> Path:
    t = T0 + 300.0 * np.arange(2 * 288)
    v = 1000.0 + 500.0 * np.sin(2 * np.pi * (t - T0) / 86400.0)
    path = tmp_path / "qps.csv"
    path.write_text(format_trace_csv(Series(t.astype(np.float64), v.astype(np.float64))))
    return path


def test_trace_defaults_to_the_policys_csv_source(tmp_path: Path) -> None:
    trace = _trace(tmp_path)
    policy = _policy(tmp_path, f"metrics:\n  qps: {{source: csv, url: {trace}}}\n")
    implicit = runner.invoke(app, ["simulate", "--policy", str(policy), "--json"])
    assert implicit.exit_code == 0, implicit.output
    explicit = runner.invoke(
        app, ["simulate", "--policy", str(policy), "--trace", str(trace), "--json"]
    )
    assert explicit.exit_code == 0, explicit.output
    got, want = json.loads(implicit.stdout), json.loads(explicit.stdout)
    assert got["results"] == want["results"]
    assert got["trace"]["samples"] == 576 and got["trace_file"] == str(trace)


def test_other_sources_need_a_trace(tmp_path: Path) -> None:
    policy = _policy(tmp_path, "metrics:\n  qps: {source: prometheus, url: http://127.0.0.1:1}\n")
    result = runner.invoke(app, ["simulate", "--policy", str(policy), "--json"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: --trace: is required ({policy}: metrics.qps.source is prometheus, not csv)"
    )
    missing_url = _policy(tmp_path, "metrics:\n  qps: {source: csv}\n")
    result = runner.invoke(app, ["simulate", "--policy", str(missing_url)])
    assert result.exit_code == 2
    assert "metrics.qps.url: is required for source csv" in result.stderr
