"""`headroom simulate`: the JSON contract, the table, the chart, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from headroom.cli.main import app
from headroom.policies.series import Series
from headroom.policies.trace import format_trace_csv

runner = CliRunner()
T0 = 1_700_006_400.0  # 2023-11-15 00:00 UTC
METRICS = {"underprovisioned_minutes", "shortfall_requests", "unit_hours", "peak_units", "actions"}

POLICY = """\
targets:
  - name: web
    capacityPerUnit: 200
    minUnits: 1
    maxUnits: 60
    provisioning: {fixedSeconds: 10m}
slo: {targetUtilization: 0.8}
"""

CALENDAR = """\
events:
  - name: launch
    kind: livestream
    start: 2023-11-16T12:00:00+00:00
    end: 2023-11-16T14:00:00+00:00
    ramp: 30m
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(7)
    t = T0 + np.arange(2 * 1440, dtype=np.float64) * 60
    v = 1000 * (1.4 + np.sin(2 * np.pi * (t - T0) / 86400)) * rng.lognormal(0, 0.05, t.size)
    launch = (t >= T0 + 86400 + 11.5 * 3600) & (t < T0 + 86400 + 14 * 3600)
    v[launch] *= 3
    paths = {
        "trace": tmp_path / "trace.csv",
        "policy": tmp_path / "policy.yaml",
        "calendar": tmp_path / "calendar.yaml",
    }
    paths["trace"].write_text(format_trace_csv(Series(t, v)))
    paths["policy"].write_text(POLICY)
    paths["calendar"].write_text(CALENDAR)
    return paths


def args(files: dict[str, Path], *extra: str) -> list[str]:
    return [
        "simulate",
        "--trace", str(files["trace"]),
        "--policy", str(files["policy"]),
        "--calendar", str(files["calendar"]),
        *extra,
    ]  # fmt: skip


def test_json_has_the_contract_shape(files: dict[str, Path]) -> None:
    result = runner.invoke(app, args(files, "--json", "--provisioning-delay", "2m"))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert list(doc)[0] == "results"
    assert list(doc["results"]) == ["headroom", "reactive_hpa", "static_peak", "oracle"]
    for metrics in doc["results"].values():
        assert METRICS <= set(metrics)
    assert doc["provisioning_delay_seconds"] == 120
    res = doc["results"]
    assert res["static_peak"]["actions"] == 0
    assert res["oracle"]["underprovisioned_minutes"] == 0
    assert res["oracle"]["unit_hours"] < res["reactive_hpa"]["unit_hours"]
    assert res["oracle"]["unit_hours"] < res["static_peak"]["unit_hours"]


def test_table_and_chart(files: dict[str, Path], tmp_path: Path) -> None:
    chart = tmp_path / "sim.png"
    result = runner.invoke(app, args(files, "--chart", str(chart)))
    assert result.exit_code == 0, result.output
    for name in ("headroom", "reactive_hpa", "static_peak", "oracle"):
        assert name in result.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("which", "content", "extra", "expected"),
    [
        ("trace", "when,qps\n1,2\n", (), "trace.csv: header"),
        (
            "trace",
            "timestamp,qps\n1700000000,abc\n",
            (),
            "trace.csv: line 2: qps: must be a number, not 'abc'",
        ),
        ("calendar", "events:\n  - name: x\n    kind: party\n", (), "calendar.yaml"),
        ("policy", "targets:\n  - name: web\n    capacityPerUnit: -1\n", (), "capacityPerUnit"),
        (None, "", ("--provisioning-delay", "soon"), "--provisioning-delay"),
        (None, "", ("--target", "nope"), "no target named 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    files: dict[str, Path], which: str | None, content: str, extra: tuple[str, ...], expected: str
) -> None:
    if which is not None:
        files[which].write_text(content)
    result = runner.invoke(app, args(files, "--json", *extra))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_missing_file_is_one_line_and_exit_2(files: dict[str, Path], tmp_path: Path) -> None:
    files["trace"] = tmp_path / "absent.csv"
    result = runner.invoke(app, args(files))
    assert result.exit_code == 2
    assert "absent.csv: cannot read" in result.stderr


def test_real_subprocess_prints_one_json_object(files: dict[str, Path]) -> None:
    exe = Path(sys.executable).with_name("headroom")
    proc = subprocess.run(
        [str(exe), *args(files, "--json")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # exactly one object: json.loads refuses trailing data
    assert set(doc["results"]) == {"headroom", "reactive_hpa", "static_peak", "oracle"}
    assert doc["provisioning_delay_seconds"] == 600


def test_chart_reads_in_the_policy_zone_with_one_zoomed_panel_per_event(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The x-axis was "days since 2025-11-06T04:00:00+00:00" (UTC) and a 2-hour event a
    sliver of a 5-day axis: now local time of the calendar's zone, and under the whole
    trace one panel per event from 2 h before its ramp to 2 h after its end."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import matplotlib.dates as mdates

    from headroom.cli import simulate as sim_cli

    figures = []
    monkeypatch.setattr(sim_cli, "save_figure", lambda fig, path: figures.append(fig))
    examples = Path(__file__).resolve().parents[2] / "policies" / "examples"
    res = runner.invoke(app, [
        "simulate", "--trace", str(examples / "qps.csv"),
        "--calendar", str(examples / "demo-calendar.yaml"),
        "--policy", str(examples / "demo-policy.yaml"), "--chart", str(tmp_path / "s.png"),
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    (fig,) = figures
    whole, *zooms = fig.axes
    assert whole.get_xlabel() == "local time (Asia/Shanghai)"
    assert [ax.get_title() for ax in zooms] == [
        "Livestream Nov 6 (Thu 06 Nov 20:00)",
        "Livestream Nov 8 (Sat 08 Nov 20:00)",
    ]
    zone = ZoneInfo("Asia/Shanghai")
    lo, hi = (mdates.num2date(x, tz=zone) for x in zooms[0].get_xlim())
    # The demo calendar's livestream: ramp from 19:30, end 21:30 local.
    assert lo <= datetime(2025, 11, 6, 17, 30, tzinfo=zone) and hi >= datetime(
        2025, 11, 6, 23, 30, tzinfo=zone
    )
    assert (hi - lo).total_seconds() < 8 * 3600
