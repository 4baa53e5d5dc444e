"""`headroom calendar` and `headroom policy`: exit codes, one-line stderr, tables, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from headroom.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
REPO = Path(__file__).resolve().parents[2]


def run(*args: str):
    # Separate streams: the one-line error must be on stderr, nothing on stdout.
    return CliRunner().invoke(app, list(args))


def test_calendar_validate_ok_and_json() -> None:
    res = run("calendar", "validate", str(EXAMPLES / "livestream-calendar.yaml"))
    assert res.exit_code == 0 and res.stdout.strip() == "ok: 5 events"
    res = run("calendar", "validate", "--json", str(EXAMPLES / "demand-events.yaml"))
    assert json.loads(res.stdout) == {
        "ok": True,
        "file": str(EXAMPLES / "demand-events.yaml"),
        "events": 2,
    }


def test_calendar_validate_bad_field_exit_2_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "cal.yaml"
    bad.write_text(
        "events:\n  - name: Spring sale\n    start: 2025-03-01T20:00:00+08:00\n"
        "    end: 2025-03-01T19:00:00+08:00\n"
    )
    res = run("calendar", "validate", str(bad))
    assert res.exit_code == 2
    assert res.stderr == f'error: {bad}: event "Spring sale": end is before start\n'
    assert res.stdout == ""
    broken = tmp_path / "broken.yaml"
    broken.write_text("events:\n  - name: a\n   start: 1\n")
    res = run("calendar", "validate", str(broken))
    assert res.exit_code == 2 and res.stderr.startswith(f"error: {broken}: line 3: ")
    assert res.stderr.count("\n") == 1
    res = run("calendar", "validate", str(tmp_path / "missing.yaml"))
    assert res.exit_code == 2 and "cannot read" in res.stderr


def test_calendar_list_window_tz_and_json() -> None:
    ics = str(EXAMPLES / "weekly-livestream.ics")
    # A wide terminal: the names fit their column (a worker may inherit a narrow $COLUMNS).
    res = CliRunner().invoke(
        app,
        ["calendar", "list", ics, "--from", "2025-03-01", "--to", "2025-03-22"],
        env={"COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.stderr
    assert res.stdout.count("Friday night live") == 3
    assert "2025-03-07 20:00" in res.stdout and "(Asia/Shanghai)" in res.stdout
    res = run(
        "calendar", "list", ics, "--from", "2025-03-01T00:00:00+08:00",
        "--to", "2025-03-15T00:00:00+08:00", "--tz", "UTC", "--json",
    )  # fmt: skip
    events = json.loads(res.stdout)["events"]
    assert [e["start"] for e in events] == [
        "2025-03-07T12:00:00+00:00",
        "2025-03-14T12:00:00+00:00",
    ]
    assert events[0]["labels"] == {"host": "lin", "channel": "app"}
    assert events[0]["expectation"] == {"multiplier": 3.0, "peak_qps": None}
    res = run("calendar", "list", ics, "--tz", "Mars/Base")
    assert res.exit_code == 2 and res.stderr.startswith("error: --tz: must be a time zone name")
    res = run("calendar", "list", ics, "--from", "yesterday")
    assert res.exit_code == 2 and res.stderr.startswith("error: --from: ")


def test_calendar_export_round_trips(tmp_path: Path) -> None:
    res = run("calendar", "export", "-n", "shop", str(EXAMPLES / "livestream-calendar.yaml"))
    assert res.exit_code == 0
    out = tmp_path / "events.yaml"
    out.write_text(res.stdout)
    res = run("calendar", "validate", str(out))
    assert res.stdout.strip() == "ok: 5 events"


def test_policy_validate_summary_json_and_errors(tmp_path: Path) -> None:
    res = run("policy", "validate", str(EXAMPLES / "redis-cart-policy.yaml"))
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith("ok: policy 'cart-cache': 1 target,")
    assert "shop/cart (RedisCluster): 3..24 masters" in res.stdout
    res = run("policy", "validate", "--json", str(EXAMPLES / "web-deployment-policy.yaml"))
    doc = json.loads(res.stdout)
    assert doc["targets"][0]["unit"] == "replicas" and doc["targets"][0]["max_units"] == 120
    bad = tmp_path / "p.yaml"
    bad.write_text("targets:\n  - name: cart\n    capacityPerUnit: 100\n    minUnits: 9\n"
                   "    maxUnits: 3\n")  # fmt: skip
    res = run("policy", "validate", str(bad))
    assert res.exit_code == 2
    assert res.stderr == f"error: {bad}: targets[0:cart]: minUnits 9 is above maxUnits 3\n"


def test_real_subprocess_calendar_validate(tmp_path: Path) -> None:
    exe = Path(sys.prefix) / "bin" / "headroom"
    if not exe.exists():
        exe = REPO / ".venv" / "bin" / "headroom"
    ok = subprocess.run(
        [str(exe), "calendar", "validate", str(EXAMPLES / "weekly-livestream.ics")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ok.returncode == 0 and ok.stdout.startswith("ok: ") and ok.stderr == ""
    bad = tmp_path / "cal.yaml"
    bad.write_text(
        "events:\n  - name: Launch\n    start: 2025-03-01 20:00\n    end: 2025-03-01 21:00\n"
    )
    res = subprocess.run(
        [str(exe), "calendar", "validate", str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 2
    assert res.stderr.startswith(
        f"error: {bad}: event \"Launch\": start: '2025-03-01 20:00' has no"
    )
    assert res.stderr.count("\n") == 1 and res.stdout == ""
