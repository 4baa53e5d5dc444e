"""`headroom forecast` and `headroom plan` through typer's CliRunner (and one real process)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headroom.cli.main import app
from headroom.policies.synthetic import generate_trace
from headroom.policies.trace import format_trace_csv
from tests.forecast.conftest import DAY, START, livestream

runner = CliRunner()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    past = [livestream(d) for d in (3, 10, 17)]
    trace = generate_trace(START, 21, 60, 2000, past, [3.0, 3.0, 3.0], seed=31)
    history = tmp_path / "history.csv"
    history.write_text(format_trace_csv(trace))
    events = [
        *past,
        livestream(21, "tonight"),
        livestream(21, "brand new", hour=10, kind="promotion"),
    ]
    lines = ["timezone: UTC", "events:"]
    for ev in events:
        kind = ev.kind if isinstance(ev.kind, str) else ev.kind.value
        lines += [
            f"  - name: {ev.name}",
            f"    kind: {kind}",
            f"    start: {_iso(ev.start)}",
            f"    end: {_iso(ev.end)}",
            "    ramp: 30m",
            "    labels: {host: big}",
        ]
    calendar = tmp_path / "calendar.yaml"
    calendar.write_text("\n".join(lines) + "\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "name: shop\n"
        "targets:\n"
        "  - {name: cart, kind: RedisCluster, capacityPerUnit: 1000, minUnits: 2,"
        " maxUnits: 30, provisioning: {fixedSeconds: 10m}}\n"
        "  - {name: web, kind: Deployment, capacityPerUnit: 500, minUnits: 3, maxUnits: 60}\n"
        "forecast: {quantile: 0.9, horizon: 1d, defaultEventMultiplier: 2.5}\n"
    )
    return {"history": history, "calendar": calendar, "policy": policy}


def _args(files: dict[str, Path], *names: str) -> list[str]:
    out: list[str] = []
    for name in names:
        out += [f"--{name}", str(files[name])]
    return out


def test_forecast_table_and_json(files: dict[str, Path]) -> None:
    res = runner.invoke(app, ["forecast", *_args(files, "history", "calendar")])
    assert res.exit_code == 0, res.output
    assert "p90" in res.output and "tonight" in res.output

    res = runner.invoke(app, ["forecast", *_args(files, "history", "calendar", "policy"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert len(doc["points"]) == 1440
    point = doc["points"][0]
    assert {"t", "mean", "p50", "p90", "p99", "baseline", "driver"} <= set(point)
    assert point["p50"] <= point["p90"] <= point["p99"]
    events = {e["name"]: e for e in doc["events"]}
    assert events["tonight"]["uplift_source"] == "learned"
    assert events["tonight"]["similar_past_events"] == 3
    assert events["brand new"]["uplift_source"] == "default"
    assert events["brand new"]["peak_multiplier"] == pytest.approx(2.5)
    assert doc["model"]["learned_events"] == 3


def test_forecast_at_and_horizon_cut_the_history(files: dict[str, Path]) -> None:
    at = _iso(START + 20 * DAY)
    res = runner.invoke(
        app,
        ["forecast", *_args(files, "history"), "--at", at, "--horizon", "2h", "--json"],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["at"].startswith("2023-12-10T00:00:00")
    assert len(doc["points"]) == 120
    assert doc["history_samples"] == 20 * 1440


def test_forecast_chart_writes_a_png(files: dict[str, Path], tmp_path: Path) -> None:
    chart = tmp_path / "forecast.png"
    res = runner.invoke(
        app, ["forecast", *_args(files, "history", "calendar"), "--chart", str(chart)]
    )
    assert res.exit_code == 0, res.output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plan_table_json_and_chart(files: dict[str, Path], tmp_path: Path) -> None:
    res = runner.invoke(app, ["plan", *_args(files, "history", "calendar", "policy")])
    assert res.exit_code == 0, res.output
    assert "default/cart" in res.output and "tonight" in res.output
    # One arrow in every column (the units column said 3->6 beside a reason saying 3→6).
    assert re.search(r"│ \d+→\d+ +│", res.output) and "->" not in res.output, res.output

    chart = tmp_path / "plan.png"
    res = runner.invoke(
        app,
        [
            "plan",
            *_args(files, "history", "calendar", "policy"),
            "--target",
            "cart",
            "--json",
            "--chart",
            str(chart),
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [t["target"] for t in doc["targets"]] == ["default/cart"]
    cart = doc["targets"][0]
    assert cart["current_units"] == 2
    assert cart["peak_units"] > cart["current_units"]
    outs = [a for a in cart["actions"] if a["to_units"] > a["from_units"]]
    assert outs and any(a["event"] == "tonight" for a in outs)
    # Capacity is ordered before the event starts, early enough to be ready.
    tonight = livestream(21, "tonight")
    first = min(datetime.fromisoformat(a["at"]).timestamp() for a in outs if a["event"])
    assert first < tonight.start
    assert len(cart["timeline"]["units"]) == len(cart["timeline"]["t"]) == 1440
    assert chart.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--target", "nope"], "no target 'nope'"),
        (["--horizon", "soon"], "--horizon"),
        (["--at", "yesterday-ish"], "--at"),
        (["--at", "1990-01-01T00:00:00+00:00"], "no samples before"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    files: dict[str, Path], extra: list[str], needle: str
) -> None:
    res = runner.invoke(app, ["plan", *_args(files, "history", "calendar", "policy"), *extra])
    assert res.exit_code == 2
    assert needle in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_bad_files_exit_2(files: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("when,qps\n1,2\n")
    res = runner.invoke(app, ["forecast", "--history", str(bad)])
    assert res.exit_code == 2 and "bad.csv" in res.stderr
    res = runner.invoke(app, ["forecast", "--history", str(tmp_path / "missing.csv")])
    assert res.exit_code == 2 and "missing.csv" in res.stderr
    policy = tmp_path / "p.yaml"
    policy.write_text("targets: []\n")
    res = runner.invoke(app, ["plan", *_args(files, "history"), "--policy", str(policy)])
    assert res.exit_code == 2 and "p.yaml" in res.stderr


def test_real_process_json(files: dict[str, Path]) -> None:
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "headroom"),
            "plan",
            *_args(files, "history", "policy"),
            "--horizon",
            "3h",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert {t["target"] for t in json.loads(proc.stdout)["targets"]} == {
        "default/cart",
        "default/web",
    }
