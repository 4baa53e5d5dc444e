"""One wording for every validation error, whichever parser finds it (issue 14's cases).

Each test here failed before the shared wording (``headroom.policies.errors`` and
``headroom.policies.validation``) and passes after it; the fuzz suite
(``tests/fuzz``) checks the same promises over generated inputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headroom.cli.main import app
from headroom.policies.calendars import load_calendar
from headroom.policies.errors import CalendarError, InputError, PolicyError
from headroom.policies.policy import load_policy
from headroom.policies.text import format_qps
from headroom.policies.trace import parse_trace_csv

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
WINDOW = (1735689600.0, 1767225600.0)  # 2025
POLICY = "targets:\n  - name: cart\n    capacityPerUnit: 100\n"
ICS = (
    "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//t//EN\nBEGIN:VEVENT\nUID:a@t\n"
    "SUMMARY:Show\nDTSTART:20251110T200000Z\nDTEND:20251110T210000Z\nEND:VEVENT\n"
    "END:VCALENDAR\n"
)
PYDANTIC_WORDS = ("Input should", "Extra inputs", "List should", "Field required", "Value error")


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_an_empty_calendar_file_is_an_error_but_events_list_empty_is_valid(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "cal.yaml"
    empty.write_bytes(b"")
    res = run("calendar", "validate", str(empty))
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr == f"error: {empty}: is empty (a calendar needs events:, even events: [])\n"
    empty.write_text("events: []\n")
    res = run("calendar", "validate", str(empty))
    assert res.exit_code == 0 and res.stdout == "ok: 0 events\n"


def test_a_malformed_ics_dtstart_is_malformed_not_missing() -> None:
    bad = ICS.replace("DTSTART:20251110T200000Z", "DTSTART:2025XX10T200000Z")
    with pytest.raises(CalendarError) as err:
        load_calendar(bad, "x.ics", window=WINDOW)
    assert str(err.value) == (
        'x.ics: event "Show": DTSTART: must be an iCalendar date or date-time like '
        "20251110T200000Z, not '2025XX10T200000Z'"
    )


def test_a_binary_file_is_named_as_such_and_never_echoed(tmp_path: Path) -> None:
    blob = tmp_path / "cal.yaml"
    blob.write_bytes(b"\x1b[31m\x00\x07" + bytes(range(256)) * 4)
    for command in ("calendar", "policy"):
        res = run(command, "validate", str(blob))
        assert res.exit_code == 2 and res.stdout == ""
        assert res.stderr == f"error: {blob}: is a binary file, not text (NUL byte at 5)\n"
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("events:\n  - name: caf\xe9\n".encode("latin-1"))
    res = run("calendar", "validate", str(latin))
    assert res.stderr == f"error: {latin}: is not a UTF-8 text file (byte 21 is 0xe9)\n"


def test_a_control_character_in_the_input_is_escaped_and_a_long_value_cut() -> None:
    with pytest.raises(CalendarError) as err:
        load_calendar(
            'events:\n  - name: A\n    start: "\\e[2J' + "x" * 500 + '"\n    end: 2\n', "c.yaml"
        )
    message = str(err.value)
    assert message.isprintable() and "\x1b" not in message and "\\x1b[2J" in message
    assert len(message) < 120, message
    # And every InputError is made so, whoever raises it.
    from headroom.policies.errors import one_line

    assert str(InputError("a\nb\x07c")) == "a b\\x07c" == one_line("a\nb\x07c")


def test_a_bad_file_timezone_is_blamed_on_the_file_not_the_first_event() -> None:
    text = "timezone: Mars/Olympus\nevents:\n  - name: A\n    start: 2025-01-01 10:00\n    end: 2\n"
    with pytest.raises(CalendarError) as err:
        load_calendar(text, "cal.yaml")
    assert str(err.value) == (
        "cal.yaml: timezone: must be a time zone name like Asia/Shanghai, not 'Mars/Olympus'"
    )
    with pytest.raises(CalendarError, match=r"^cal\.yaml: timezone: must be a time zone"):
        load_calendar("timezone: 8\nevents: []\n", "cal.yaml")


@pytest.mark.parametrize(
    ("policy_text", "calendar_text", "expected"),
    [
        # unknown field
        (
            POLICY + "    colour: red\n",
            "events:\n  - {name: A, start: 1, end: 2, colour: red}\n",
            "colour: is not a known field",
        ),
        # missing field
        (
            "targets:\n  - name: cart\n",
            "events:\n  - {name: A, start: 1}\n",
            ": is required",
        ),
        # wrong type
        (
            POLICY + "    maxUnits: ten\n",
            "events:\n  - {name: A, start: 1, end: 2, expectation: {multiplier: lots}}\n",
            ": must be a ",
        ),
        # out of range
        (
            POLICY.replace("100", "-1"),
            "events:\n  - {name: A, start: 1, end: 2, expectation: {multiplier: -1}}\n",
            ": must be > 0, not -1",
        ),
    ],
)
def test_one_wording_per_kind_of_mistake_in_policies_and_calendars(
    policy_text: str, calendar_text: str, expected: str
) -> None:
    with pytest.raises(PolicyError) as p_err:
        load_policy(policy_text, "p.yaml")
    with pytest.raises(CalendarError) as c_err:
        load_calendar(calendar_text, "c.yaml")
    for message in (str(p_err.value), str(c_err.value)):
        assert expected in message, message
        assert not any(word in message for word in PYDANTIC_WORDS), message


def test_no_pydantic_wording_reaches_a_user() -> None:
    cases = {
        "targets: []\n": "p.yaml: targets: must have at least 1 item",
        POLICY
        + "slo: {targetUtilization: 2}\n": "p.yaml: slo.targetUtilization: must be <= 1, not 2",
        POLICY + "dryRun: maybe\n": "p.yaml: dryRun: must be true or false, not 'maybe'",
        POLICY + "alerts: [{url: ftp://x}]\n": "p.yaml: alerts[0].url: must be a string matching",
        "targets:\n  - {name: c, capacityPerUnit: 1, kind: Pod}\n": (
            "p.yaml: targets[0:c].kind: must be one of 'Deployment', "
        ),
        POLICY + "metrics: 5\n": "p.yaml: metrics: must be a mapping, not 5",
    }
    for text, start in cases.items():
        with pytest.raises(PolicyError) as err:
            load_policy(text, "p.yaml")
        assert str(err.value).startswith(start), str(err.value)
        assert not any(word in str(err.value) for word in PYDANTIC_WORDS)


def test_the_other_kind_of_file_is_named(tmp_path: Path) -> None:
    cal = EXAMPLES / "livestream-calendar.yaml"
    ics = EXAMPLES / "weekly-livestream.ics"
    policy = EXAMPLES / "redis-cart-policy.yaml"
    res = run("calendar", "validate", str(policy))
    assert res.exit_code == 2
    assert res.stderr == (
        f"error: {policy}: is a capacity policy (it has targets:), not a calendar\n"
    )
    res = run("policy", "validate", str(cal))
    assert res.stderr == f"error: {cal}: is a calendar (it has events:), not a capacity policy\n"
    res = run("policy", "validate", str(ics))
    assert res.stderr == (
        f"error: {ics}: is an iCalendar file (BEGIN:VCALENDAR), not a capacity policy\n"
    )
    events = tmp_path / "events.yaml"
    events.write_text((EXAMPLES / "demand-events.yaml").read_text())
    res = run("policy", "validate", str(events))
    assert res.exit_code == 2 and "is a calendar" in res.stderr


def test_trace_errors_name_file_line_and_column() -> None:
    with pytest.raises(InputError) as err:
        parse_trace_csv(b"timestamp,qps\n1,\x1b[2Jx\n", "t.csv")
    assert str(err.value) == "t.csv: line 2: qps: must be a number, not '\\x1b[2Jx'"
    with pytest.raises(InputError) as err:
        parse_trace_csv("timestamp,qps\n1\n", "t.csv")
    assert str(err.value) == "t.csv: line 2: qps: is required"


def test_reasons_state_comparisons_that_are_visibly_true() -> None:
    from headroom.policies.text import compare_qps

    # 12.04 > 12.0 once printed to three digits read "12 QPS > 12 capacity".
    assert compare_qps("p90", 12.04, ">", 12.0, 1.0) == "p90 12.04 QPS > 12 capacity at 100%"
    assert compare_qps("p50", 3294.0, ">", 2400.0, 0.8) == "p50 3.29k QPS > 2.4k capacity at 80%"
    assert compare_qps("p50", 1000.0, "≤", 1000.0, 0.8) == "p50 1k QPS ≤ 1k capacity at 80%"
    assert format_qps(999.9) == "1k" and format_qps(999_999.0) == "1M"


def test_plan_reasons_carry_the_utilisation(tmp_path: Path) -> None:
    history = tmp_path / "qps.csv"
    rows = [f"{1735689600 + 60 * i},{30 if i > 50 else 2}" for i in range(120)]
    history.write_text("timestamp,qps\n" + "\n".join(rows) + "\n")
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "targets:\n  - {name: web, capacityPerUnit: 6, minUnits: 2, maxUnits: 10}\n"
        "slo: {targetUtilization: 1}\n"
    )
    res = run("plan", "--history", str(history), "--policy", str(policy), "--json")
    assert res.exit_code == 0, res.stderr
    reasons = [a["reason"] for t in json.loads(res.stdout)["targets"] for a in t["actions"]]
    assert reasons and all(" capacity at " in r for r in reasons), reasons


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["plan", "--history", "h", "--policy", "p", "--current-units", "x"],
            "--current-units: must be a whole number",
        ),
        (["plan", "--bogus"], "--bogus: is not a known option"),
        (["plan", "--policy", "p"], "--history: is required (or --from-cluster NAME)"),
        (["plan", "--history", "h"], "--policy: is required (or --from-cluster NAME)"),
        (["calendar", "validate"], "file: is required"),
        (["demo", "--speed", "fast"], "--speed: must be a number"),
        (
            ["operator", "run", "--pods-ready-deadline", "soon"],
            "--pods-ready-deadline: must be a number",
        ),
        (
            ["operator", "run", "--pods-ready-deadline", "0"],
            "--pods-ready-deadline: 0 is outside 1..86400 seconds",
        ),
        (
            ["operator", "run", "--pod-add-timeout", "2"],
            "--pod-add-timeout: 2 is outside 5..3600 seconds",
        ),
        (["operator", "run", "--lease-duration", "x"], "--lease-duration: must be a number"),
    ],
)
def test_usage_errors_are_one_line_in_the_same_wording(args: list[str], line: str) -> None:
    res = run(*args)
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr == f"error: {line}\n"


def test_fuzz_found_cases_stay_fixed() -> None:
    # Each was accepted (or crashed) before the fuzz suite found it.
    with pytest.raises(PolicyError, match=r"forecast\.horizon: must be > 0, not 0"):
        load_policy(POLICY + "forecast: {horizon: '0'}\n", "p.yaml")
    with pytest.raises(PolicyError, match=r"forecast\.history: must be > 0"):
        load_policy(POLICY + "forecast: {history: 0}\n", "p.yaml")
    with pytest.raises(CalendarError, match=r"labels: key '' must not be empty"):
        load_calendar("events:\n  - {name: A, start: 1, end: 2, labels: {'': 0}}\n", "c.yaml")
    with pytest.raises(InputError, match=r"^t\.csv: "):
        parse_trace_csv(b"\r\x01", "t.csv")


def test_an_empty_label_key_is_refused_everywhere_labels_are_given() -> None:
    """Label maps share one model: an empty key in a policy target's labels or its
    eventSelector is refused like one in an event's labels (it was accepted before)."""
    cases = {
        POLICY + '    labels: {"": web}\n': (
            "p.yaml: targets[0:cart].labels: key '' must not be empty"
        ),
        POLICY + 'eventSelector: {"": shop}\n': "p.yaml: eventSelector: key '' must not be empty",
    }
    for text, line in cases.items():
        with pytest.raises(PolicyError) as err:
            load_policy(text, "p.yaml")
        assert str(err.value) == line
    with pytest.raises(CalendarError) as cal:
        load_calendar('events:\n  - {name: A, start: 1, end: 2, labels: {"": x}}\n', "c.yaml")
    assert str(cal.value) == "c.yaml: event \"A\": labels: key '' must not be empty"
    # Numbers and booleans as label values still read as strings.
    spec = load_policy(POLICY + "    labels: {zone: 1, canary: true}\n", "p.yaml")
    assert dict(spec.targets[0].labels) == {"zone": "1", "canary": "true"}


def test_a_bad_kubeconfig_is_one_line_naming_the_flag(tmp_path: Path) -> None:
    """A missing file, a file that is not a kubeconfig, or an unknown context: one line
    naming --kubeconfig (each raised a traceback from the kubernetes client before)."""
    not_yaml_map = tmp_path / "notes.txt"
    not_yaml_map.write_text("just some words\n")
    empty = tmp_path / "kubeconfig"
    empty.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    cases = [
        (["status", "--kubeconfig", str(tmp_path / "nope")], "no such file"),
        (["status", "--kubeconfig", str(not_yaml_map)], "not a kubeconfig (a YAML mapping"),
        (["status", "--kubeconfig", str(empty), "--context", "x"], "not a usable kubeconfig: "),
        (["calendar", "import", str(EXAMPLES / "livestream-calendar.yaml"), "--kubeconfig",
          str(not_yaml_map)], "not a kubeconfig"),
    ]  # fmt: skip
    for args, problem in cases:
        res = run(*args)
        assert res.exit_code == 2, (args, res.output)
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --kubeconfig: "), res.stderr
        assert problem in lines[0] and "Traceback" not in res.output


@pytest.mark.slow
def test_no_kubernetes_configuration_is_the_same_line_and_exit_code_everywhere(
    tmp_path: Path,
) -> None:
    """Without --kubeconfig, $KUBECONFIG, ~/.kube/config or a service account, every command
    that talks to a cluster exits 2 (bad input) with one line (operator run exited 1)."""
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("KUBECONFIG", None)
    env.pop("KUBERNETES_SERVICE_HOST", None)
    headroom = str(Path(sys.executable).with_name("headroom"))
    lines = set()
    for args in (
        ["status"],
        ["operator", "run", "--port", "0"],
        ["surge", "cart", "--factor", "2"],
    ):
        proc = subprocess.run(
            [headroom, *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 2, (args, proc.stderr)
        (line,) = proc.stderr.splitlines()
        assert line.startswith("error: no Kubernetes configuration: "), line
        lines.add(line)
    assert len(lines) == 1, lines
