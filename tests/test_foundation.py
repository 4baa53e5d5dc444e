"""The package imports as ``headroom`` and the CLI answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from headroom.cli.main import app
from headroom.policies.series import Series, to_epoch


def test_cli_help_lists_groups() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in ("redis", "local", "calendar", "policy"):
        assert group in result.output


def test_console_script_runs() -> None:
    exe = Path(sys.executable).parent / "headroom"
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout


def test_series_before_is_causal() -> None:
    s = Series.from_lists([0, 60, 120, 180], [1, 2, float("nan"), 4])
    assert list(s.before(120).t) == [0, 60]
    assert s.step == 60
    assert np.isnan(s.v[2])
    with pytest.raises(ValueError):
        Series.from_lists([0, 0], [1, 2])


def test_naive_datetime_refused() -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="naive"):
        to_epoch(datetime(2026, 1, 1))


def _commands(group, path=()):
    for name, command in getattr(group, "commands", {}).items():
        yield (*path, name)
        yield from _commands(command, (*path, name))


def test_help_texts_have_no_markup_glitches() -> None:
    import typer

    from headroom.cli.main import build_app

    root = typer.main.get_command(build_app())
    paths = list(_commands(root))
    assert len(paths) > 20
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, path
        for glitch in ("<bool>", "``", "list[str]"):
            assert glitch not in result.output, (path, glitch)


def test_calendar_list_follows_columns_when_piped() -> None:
    cal = str(Path(__file__).resolve().parents[1] / "policies/examples/livestream-calendar.yaml")
    narrow = CliRunner().invoke(app, ["calendar", "list", cal], env={"COLUMNS": "90"})
    assert narrow.exit_code == 0
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 90
