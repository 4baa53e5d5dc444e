"""Fuzzing every user-facing parser through the real ``headroom`` CLI.

Each parser gets random bytes and structured near-misses: a valid document with one
thing wrong (a wrong type, an out-of-range value, an unknown key, a missing key,
start and end swapped, a bad time zone). For every case the command must refuse with
a non-zero exit and exactly one stderr line that names the file and the field, with
no traceback and only printable characters, and must write nothing -- or, for random
input that happens to be valid, succeed with nothing on stderr.

``make test`` runs :data:`BASE` cases per test (about 2,500 in all, well under a
minute); ``pytest tests/fuzz --hypothesis-profile=long`` runs ten times as many.
"""

from __future__ import annotations

import copy
import io
import tempfile
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from headroom.cli.main import app
from headroom.policies.quantities import parse_duration

SCALE = max(
    1, (settings.default.max_examples if settings.default else 100) // 100
)  # 10 under --hypothesis-profile=long
BASE = 300


def fuzz(n: int = BASE) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(
        max_examples=n * SCALE,
        deadline=None,
        derandomize=SCALE == 1,  # the same cases every `make test`: a failure reproduces
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
        # No "explain" phase: its line tracing of every case grew the long profile's run
        # to gigabytes; a failing case is reported and shrunk without it.
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    )


# typer's CliRunner rebuilds the click command on every call (30 ms, most of a case);
# the fuzz suite builds it once and runs it the way the console script does.
COMMAND = typer.main.get_command(app)


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


def invoke(args: list[str]) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code, exception = 0, None
    with redirect_stdout(out), redirect_stderr(err):
        try:
            COMMAND.main(args, prog_name="headroom")
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        except Exception as crash:  # a crash is what the fuzzing looks for
            code, exception = 1, crash
    return Result(code, out.getvalue(), err.getvalue(), exception)


ZONE = "Asia/Shanghai"
EVENT: dict[str, Any] = {
    "name": "Sale",
    "kind": "livestream",
    "start": "2025-11-11T20:00:00+08:00",
    "end": "2025-11-11T22:00:00+08:00",
    "ramp": "30m",
    "labels": {"host": "a"},
    "expectation": {"multiplier": 3},
}
CALENDAR: dict[str, Any] = {"timezone": ZONE, "events": [EVENT]}
POLICY: dict[str, Any] = {
    "name": "p",
    "targets": [
        {
            "name": "cart",
            "kind": "RedisCluster",
            "capacityPerUnit": 1000,
            "minUnits": 2,
            "maxUnits": 10,
            "maxStep": 2,
            "provisioning": {"fixedSeconds": "2m", "dataBytes": "1Gi"},
        }
    ],
    "slo": {"latencyP99Ms": 5, "targetUtilization": 0.8},
    "forecast": {"quantile": 0.9, "horizon": "8h"},
    "scaleIn": {"cooldown": "30m", "stepUnits": 2},
    "freezeWindows": [{"start": "2025-11-10T00:00:00+08:00", "end": "2025-11-12T00:00:00+08:00"}],
    "budget": {"maxUnitHours": 100},
}
ICS_EVENT = {
    "SUMMARY": "Show",
    "DTSTART": "20251110T200000Z",
    "DTEND": "20251110T210000Z",
    "X-HEADROOM-KIND": "livestream",
    "X-HEADROOM-MULTIPLIER": "3",
    "X-HEADROOM-LABELS": "host=a,channel=b",
}
TRACE = [("1762776000", "100"), ("1762776060", "110"), ("1762776120", "120")]

# Values of the wrong type for a field, and text that is no time, zone or duration.
junk_text = st.text(min_size=1, max_size=30).filter(lambda s: s.strip() != "")
RANDOM_BYTES = st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
wrong_scalar = st.one_of(
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
)


def check_refused(args: list[str], files: dict[str, Path], *fields: str) -> None:
    """Run ``headroom args``: it must refuse as one printable stderr line naming a file of
    ``files`` (when any) and one of ``fields``, write nothing, and not crash."""
    folder = next(iter(files.values())).parent if files else None
    before = sorted(p.name for p in folder.iterdir()) if folder else []
    res = invoke(args)
    assert res.exception is None, repr(res.exception)
    assert res.exit_code != 0, (args, res.stdout)
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith("error: ") and line.isprintable(), line
    assert "Traceback" not in res.stderr and res.stdout == ""
    if files:
        assert any(str(path) in line for path in files.values()), line
    if fields:
        assert any(field in line for field in fields), (fields, line)
    if folder:
        assert sorted(p.name for p in folder.iterdir()) == before


def check_valid_or_refused(args: list[str], files: dict[str, Path], ok_prefix: str) -> None:
    """For random input: either a clean success (``ok_prefix`` on stdout, nothing on
    stderr) or a refusal as in :func:`check_refused`."""
    res = invoke(args)
    assert res.exception is None, repr(res.exception)
    if res.exit_code == 0:
        assert res.stdout.startswith(ok_prefix) and res.stderr == "", res.stdout
        return
    check_refused(args, files)


def _write(folder: str, name: str, data: bytes | str) -> Path:
    path = Path(folder) / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --- calendars (YAML) ------------------------------------------------------------------


@st.composite
def calendar_near_miss(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A valid calendar with one mistake, and the field names the error must mention."""
    doc = copy.deepcopy(CALENDAR)
    event = doc["events"][0]
    kind = draw(st.sampled_from(["type", "range", "unknown", "missing", "swap", "zone"]))
    if kind == "type":
        field = draw(st.sampled_from(["start", "end", "ramp", "kind", "labels", "expectation"]))
        wrong: st.SearchStrategy[Any]
        if field in ("labels", "expectation"):
            wrong = st.lists(st.integers(), max_size=2) | st.integers() | junk_text
        else:
            wrong = wrong_scalar | st.booleans() | junk_text.filter(lambda s: _not_a(field, s))
        event[field] = draw(wrong)
        return doc, (field,)
    if kind == "range":
        field = draw(st.sampled_from(["multiplier", "peakQps"]))
        event["expectation"] = {field: draw(st.floats(max_value=0, allow_nan=False))}
        return doc, (f"expectation.{field}",)
    if kind == "unknown":
        key = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in _EVENT_KEYS))
        event[key] = draw(st.integers())
        return doc, ("is not a known field",)
    if kind == "missing":
        field = draw(st.sampled_from(["name", "start", "end"]))
        del event[field]
        return doc, (field,)
    if kind == "swap":
        event["start"], event["end"] = event["end"], event["start"]
        return doc, ("end",)
    zone = draw(junk_text.filter(lambda z: _not_a("timezone", z)))
    if draw(st.booleans()):
        doc["timezone"] = zone
    else:
        event["timezone"] = zone
    return doc, ("timezone",)


_EVENT_KEYS = {
    "name", "kind", "start", "end", "ramp", "labels", "expectation", "selector",
    "appliesTo", "applies_to", "timezone", "description",
}  # fmt: skip


def _not_a(field: str, text: str) -> bool:
    """True when ``text`` is not a valid value of ``field`` (the mutation is a mistake)."""
    from headroom.policies.calendars import parse_time
    from headroom.policies.text import zone

    try:
        if field in ("start", "end"):
            parse_time(text, ZONE)
        elif field == "ramp":
            parse_duration(text)
        elif field == "timezone":
            zone(text)
        elif field == "kind":  # any kind name is a kind: only a non-name is a mistake
            from headroom.policies.calendar import event_kind

            event_kind(text)
        else:
            return True
    except ValueError:
        return True
    return False


@pytest.mark.slow
@fuzz()
@given(calendar_near_miss())
def test_calendar_yaml_near_misses(case: tuple[dict[str, Any], tuple[str, ...]]) -> None:
    doc, fields = case
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "cal.yaml", yaml.safe_dump(doc, allow_unicode=True))
        check_refused(["calendar", "validate", str(path)], {"calendar": path}, *fields)


@fuzz()
@given(RANDOM_BYTES)
def test_calendar_random_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "cal.yaml", data)
        check_valid_or_refused(["calendar", "validate", str(path)], {"c": path}, "ok: ")


# --- calendars (ICS) -------------------------------------------------------------------


def _ics(props: dict[str, str], calendar_zone: str | None = None) -> str:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//fuzz//fuzz//EN"]
    if calendar_zone is not None:
        head.append(f"X-WR-TIMEZONE:{calendar_zone}")
    body = ["BEGIN:VEVENT", "UID:a@fuzz", *(f"{k}:{v}" for k, v in props.items()), "END:VEVENT"]
    return "\r\n".join([*head, *body, "END:VCALENDAR", ""])


ics_value = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20
).filter(lambda s: s.strip() != "")


@st.composite
def ics_near_miss(draw: st.DrawFn) -> tuple[str, tuple[str, ...]]:
    props = dict(ICS_EVENT)
    kind = draw(st.sampled_from(["time", "missing", "swap", "kind", "mult", "labels", "zone"]))
    if kind == "time":
        prop = draw(st.sampled_from(["DTSTART", "DTEND"]))
        props[prop] = draw(ics_value.filter(lambda v: not v.strip().isdigit()))
        return _ics(props), (prop,)
    if kind == "missing":
        del props["DTSTART"]
        return _ics(props), ("DTSTART",)
    if kind == "swap":
        props["DTSTART"], props["DTEND"] = props["DTEND"], props["DTSTART"]
        return _ics(props), ("end",)
    if kind == "kind":
        props["X-HEADROOM-KIND"] = draw(ics_value.filter(lambda v: _not_a("kind", v.lower())))
        return _ics(props), ("kind",)
    if kind == "mult":
        props["X-HEADROOM-MULTIPLIER"] = draw(ics_value.filter(lambda v: not _positive_number(v)))
        return _ics(props), ("multiplier",)
    if kind == "labels":
        props["X-HEADROOM-LABELS"] = draw(ics_value.filter(lambda v: "=" not in v and "," not in v))
        return _ics(props), ("labels",)
    zone = draw(ics_value.filter(lambda z: _not_a("timezone", z.strip())))
    return _ics(props, zone), ("X-WR-TIMEZONE",)


def _positive_number(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


@fuzz()
@given(ics_near_miss())
def test_calendar_ics_near_misses(case: tuple[str, tuple[str, ...]]) -> None:
    text, fields = case
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "cal.ics", text)
        check_refused(["calendar", "validate", str(path)], {"calendar": path}, *fields)


@fuzz()
@given(st.binary(max_size=200).map(lambda b: b"BEGIN:VCALENDAR\r\n" + b))
def test_calendar_ics_random_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "cal.ics", data)
        check_valid_or_refused(["calendar", "validate", str(path)], {"c": path}, "ok: ")


# --- policies --------------------------------------------------------------------------


# (path into POLICY, strategy of a wrong value, the field as the error names it)
def _not(valid: Callable[[str], bool]) -> st.SearchStrategy[str]:
    return junk_text.filter(lambda s: not valid(s))


_BOOLS = ("true", "false", "True", "False")
_POLICY_MISTAKES: list[tuple[tuple[Any, ...], st.SearchStrategy[Any], str]] = [
    (("targets", 0, "capacityPerUnit"), st.floats(max_value=0, allow_nan=False), "capacityPerUnit"),
    (("targets", 0, "capacityPerUnit"), junk_text | wrong_scalar, "capacityPerUnit"),
    (("targets", 0, "minUnits"), st.integers(max_value=-1), "minUnits"),
    (("targets", 0, "maxUnits"), st.integers(max_value=0) | junk_text, "maxUnits"),
    (("targets", 0, "kind"), junk_text, "kind"),
    (("targets", 0, "provisioning", "dataBytes"), _not(lambda s: _size(s)), "dataBytes"),
    (("targets", 0, "provisioning", "fixedSeconds"), _not(lambda s: _dur(s, zero_ok=True)),
     "fixedSeconds"),
    (("slo", "targetUtilization"), st.floats(min_value=1.0001) | st.floats(max_value=0),
     "targetUtilization"),
    (("forecast", "quantile"), st.floats(min_value=1) | st.floats(max_value=0), "quantile"),
    (("forecast", "horizon"), _not(lambda s: _dur(s)) | st.floats(max_value=-0.001), "horizon"),
    (("scaleIn", "stepUnits"), st.integers(max_value=0) | _not(lambda s: _step(s)), "stepUnits"),
    (("freezeWindows", 0, "start"), junk_text, "start"),
    (("budget", "maxUnitHours"), st.floats(max_value=0, allow_nan=False), "maxUnitHours"),
    (("dryRun",), _not(lambda s: s in _BOOLS), "dryRun"),
]  # fmt: skip


def _size(text: str) -> bool:
    from headroom.policies.quantities import parse_bytes

    try:
        return parse_bytes(text) >= 0
    except ValueError:
        return False


def _dur(text: str, zero_ok: bool = False) -> bool:
    """``text`` is a valid duration: > 0 (as CLI options need), or >= 0 with ``zero_ok``."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        return False
    return seconds > 0 or (zero_ok and seconds == 0)


def _step(text: str) -> bool:
    from headroom.policies.quantities import parse_step

    try:
        parse_step(text)
    except ValueError:
        return False
    return True


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


@st.composite
def policy_near_miss(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[str, ...]]:
    doc = copy.deepcopy(POLICY)
    kind = draw(st.sampled_from(["value", "value", "unknown", "missing", "swap", "bounds"]))
    if kind == "value":
        path, values, field = draw(st.sampled_from(_POLICY_MISTAKES))
        _set(doc, path, draw(values))
        return doc, (field,)
    if kind == "unknown":
        where = draw(st.sampled_from([doc, doc["targets"][0], doc["slo"], doc["scaleIn"]]))
        key = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in where))
        where[key] = 1
        return doc, ("is not a known field",)
    if kind == "missing":
        field = draw(st.sampled_from(["targets", "name", "capacityPerUnit"]))
        del (doc if field == "targets" else doc["targets"][0])[field]
        return doc, (field,)
    if kind == "swap":
        window = doc["freezeWindows"][0]
        window["start"], window["end"] = window["end"], window["start"]
        return doc, ("freezeWindows[0]",)
    doc["targets"][0]["minUnits"] = draw(st.integers(min_value=11, max_value=10**6))
    return doc, ("minUnits",)


@fuzz(300)
@given(policy_near_miss())
def test_policy_near_misses(case: tuple[dict[str, Any], tuple[str, ...]]) -> None:
    doc, fields = case
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "policy.yaml", yaml.safe_dump(doc, allow_unicode=True))
        check_refused(["policy", "validate", str(path)], {"policy": path}, *fields)


@fuzz()
@given(RANDOM_BYTES)
def test_policy_random_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "policy.yaml", data)
        check_valid_or_refused(["policy", "validate", str(path)], {"p": path}, "ok: ")


# --- traces (CSV) ----------------------------------------------------------------------


@st.composite
def trace_near_miss(draw: st.DrawFn) -> tuple[str, tuple[str, ...]]:
    rows = [list(r) for r in TRACE]
    kind = draw(st.sampled_from(["time", "value", "negative", "short", "naive", "header"]))
    row = draw(st.integers(0, len(rows) - 1))
    header = "timestamp,qps"
    fields: tuple[str, ...]
    if kind == "time":
        rows[row][0] = draw(
            st.text(
                st.characters(blacklist_categories=["Cs"], blacklist_characters=",\r\n\"'\x00"),
                min_size=1,
                max_size=20,
            ).filter(lambda s: not _number(s) and s.strip() != "")
        )
        fields = ("timestamp",)
    elif kind == "value":
        rows[row][1] = draw(
            st.text(
                st.characters(blacklist_categories=["Cs"], blacklist_characters=",\r\n\"'\x00"),
                min_size=1,
                max_size=20,
            ).filter(lambda s: not _number(s) and s.strip() != "")
        )
        fields = ("qps",)
    elif kind == "negative":
        rows[row][1] = str(draw(st.floats(max_value=-1e-9, allow_nan=False)))
        fields = ("qps",)
    elif kind == "short":
        rows[row] = rows[row][:1]
        fields = ("qps",)
    elif kind == "naive":
        rows[row][0] = "2025-11-11T20:00:00"
        fields = ("timestamp",)
    else:
        header = draw(st.sampled_from(["when,value,x", "when,qps", "timestamp,load", ""]))
        fields = ("header", "empty", "timestamp")
    text = header + "\n" + "\n".join(",".join(r) for r in rows) + "\n"
    return text, fields


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _plan_args(folder: str, trace: Path) -> tuple[list[str], dict[str, Path]]:
    policy = _write(folder, "policy.yaml", yaml.safe_dump(POLICY))
    chart = Path(folder) / "out.png"
    args = ["simulate", "--trace", str(trace), "--policy", str(policy), "--chart", str(chart)]
    return args, {"trace": trace}


@fuzz()
@given(trace_near_miss())
def test_trace_near_misses(case: tuple[str, tuple[str, ...]]) -> None:
    text, fields = case
    with tempfile.TemporaryDirectory() as folder:
        trace = _write(folder, "trace.csv", text)
        args, files = _plan_args(folder, trace)
        check_refused(args, files, *fields)


@fuzz(200)
@given(RANDOM_BYTES)
def test_trace_random_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        trace = _write(folder, "trace.csv", data)
        args, files = _plan_args(folder, trace)
        # Random bytes are never a usable trace (a simulation needs two samples and more).
        check_refused(args, files)


# --- CLI options: durations, weights ---------------------------------------------------

option_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20
).filter(lambda s: not s.startswith("-"))


@fuzz(200)
@given(st.sampled_from(["--horizon", "--step"]), option_text.filter(lambda s: not _dur(s)))
def test_duration_options(option: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        history = _write(
            folder, "h.csv", "timestamp,qps\n" + "".join(f"{a},{b}\n" for a, b in TRACE)
        )
        policy = _write(folder, "p.yaml", yaml.safe_dump(POLICY))
        args = ["plan", "--history", str(history), "--policy", str(policy), option, value]
        check_refused(args, {}, option)


@fuzz(200)
@given(option_text)
def test_weight_option(value: str) -> None:
    # Port 1 on loopback refuses at once: a weight that parses fails on the seed instead.
    args = ["redis", "rebalance", "--seed", "127.0.0.1:1", "--weight", value, "--dry-run"]
    check_refused(args, {}, "--weight", "127.0.0.1:1")
