"""Every number a user gives is finite and in a documented range (issue 21, item 10;
``policies/bounds.py``): each edge the review found is one ``error:`` line naming the
field, exit 2, before anything runs -- no traceback, no plan that scales in during an
event, no NumPy allocation of a 99999999999-day horizon."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from headroom.cli.main import app
from tests.support.chart import chart_crd

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
POLICY = (EXAMPLES / "demo-policy.yaml").read_text()
TRACE = str(EXAMPLES / "qps.csv")
CALENDAR = str(EXAMPLES / "demo-calendar.yaml")


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stderr.strip()


def _policy(tmp_path: Path, field: str, value: str) -> str:
    lines = [
        f"{line.split(':')[0]}: {value}" if line.strip().startswith(f"{field}:") else line
        for line in POLICY.splitlines()
    ]
    assert lines != POLICY.splitlines(), field
    path = tmp_path / "policy.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("capacityPerUnit", "1e400", "capacityPerUnit: must be a finite number, not '1e400'"),
        ("capacityPerUnit", "1.0e+13", "capacityPerUnit: must be <= 1e+12, not 10000000000000.0"),
        ("maxUnits", "100000000000000000000000", "maxUnits: must be <= 100000, not 1000000"),
        ("minUnits", "100001", "minUnits: must be <= 100000, not 100001"),
    ],
)
def test_policy_numbers_out_of_range_are_one_line(
    tmp_path: Path, field: str, value: str, error: str
) -> None:
    path = _policy(tmp_path, field, value)
    for command in (["policy", "validate", path], ["plan", "--history", TRACE, "--policy", path]):
        code, stderr = _run(*command)
        assert code == 2, stderr
        assert stderr.startswith(f"error: {path}: targets[0:") and error in stderr, stderr
        assert "\n" not in stderr


def test_cli_durations_out_of_range_are_one_line() -> None:
    code, stderr = _run("forecast", "--history", TRACE, "--horizon", "99999999999d")
    assert (code, stderr) == (
        2,
        "error: --horizon: must be a duration up to 400d, not '99999999999d'",
    )
    code, stderr = _run("forecast", "--history", TRACE, "--horizon", "32d")
    assert (code, stderr) == (2, "error: --horizon: must be at most 31d, not '32d'")
    base = [
        "simulate",
        "--trace",
        TRACE,
        "--calendar",
        CALENDAR,
        "--policy",
        str(EXAMPLES / "demo-policy.yaml"),
    ]
    code, stderr = _run(*base, "--provisioning-delay", "99999999999d")
    assert (code, stderr) == (
        2,
        "error: --provisioning-delay: must be a duration up to 400d, not '99999999999d'",
    )
    code, stderr = _run(*base, "--provisioning-delay", "2d")
    assert (code, stderr) == (2, "error: --provisioning-delay: must be at most 1d, not '2d'")


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (
            '{name: a, start: "2026-01-01T00:00:00Z", end: "2026-01-01T01:00:00Z", '
            "expectation: {multiplier: 1.7e308}}",
            'event "a": expectation.multiplier: must be <= 1000, not',
        ),
        (
            "{name: a, start: 253402300800, end: 253402300900}",
            'event "a": start: must be in the years',
        ),
        (
            '{name: a, start: "9999-12-31T23:00:00Z", duration: 2h}',
            'event "a": end: must be in the years',
        ),
    ],
)
def test_event_numbers_out_of_range_are_one_line(tmp_path: Path, event: str, error: str) -> None:
    path = tmp_path / "calendar.yaml"
    path.write_text(f"events:\n- {event}\n")
    for command in ("validate", "list", "export"):
        code, stderr = _run("calendar", command, str(path))
        assert code == 2, stderr
        assert stderr.startswith(f"error: {path}: ") and error in stderr, stderr


def test_the_crd_schemas_carry_the_same_bounds() -> None:
    policy = chart_crd("capacitypolicies.headroom.dev")
    spec = policy["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    target = spec["properties"]["targets"]["items"]["properties"]
    assert target["capacityPerUnit"]["maximum"] == 1e12
    assert target["maxUnits"]["maximum"] == target["minUnits"]["maximum"] == 100_000
    event = chart_crd("demandevents.headroom.dev")
    espec = event["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert espec["properties"]["expectation"]["properties"]["multiplier"]["maximum"] == 1000
