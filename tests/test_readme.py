"""A newcomer's first hour: a fresh clone, a plain ``pip install -e .``, every README command.

The clone is the checkout's files as git would give them (tracked and not ignored), the
venv is new, and the install is the plain editable one users and tools run -- no
Makefile -- offline (``tests/support/fresh_clone.py``; ``tests/test_install.py`` checks
what it imports, and the wheel). Then each command in README.md's code blocks runs from
the clone's root as written, except where the README names a server of the reader's:
``10.0.0.5:6379`` becomes a real local cluster, and the Prometheus, Helm and kubectl
lines (a Prometheus and a Kubernetes cluster of yours) and the ``make`` lines
(``tests/controller/test_demo.py`` runs the demo) are left out -- :data:`NOT_RUN` lists
them, and the test fails when a command is neither run nor listed.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from headroom.controller.provisioning.local import port_in_use
from tests.conftest import ClusterFactory
from tests.support import fresh_clone

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SEED_IN_README = "10.0.0.5:6379"
# What this file runs, from the fresh clone, as written.
RUN_HERE = (
    "headroom redis ",
    "headroom calendar validate ",
    "headroom policy validate ",
    "headroom forecast ",
    "headroom plan --history ",
    "headroom simulate ",
    "headroom local ",
)
NOT_RUN = {
    "make demo": "tests/controller/test_demo.py runs the demo",
    "make test": "this is make test",
    "make image": "tests/operator/test_image.py builds the image and runs the operator from it",
    "make playground": "tests/k8s/test_playground.py runs it and the kubectl lines it prints",
    "podman ": "needs make image and the reader's registry",
    "headroom capacity learn --prometheus": "needs the reader's Prometheus",
    "helm install": "needs a Kubernetes cluster",
    "headroom alerts test": "sends to the reader's own sinks (tests/alerts runs it on loopback)",
    "headroom operator run": "needs a Kubernetes cluster (tests/operator runs it)",
    "kubectl ": "needs a Kubernetes cluster (tests/operator/test_kubectl.py and "
    "tests/k8s/test_playground.py run these against the API emulator)",
    "headroom calendar import": "needs a Kubernetes cluster (tests/calendar_import runs it)",
    "headroom surge": "needs a Kubernetes cluster (tests/calendar_import runs it)",
    "headroom plan --from-cluster": "needs a Kubernetes cluster (tests/operator runs it)",
}

pytestmark = pytest.mark.slow


def readme_commands() -> list[str]:
    """Every shell command in README.md's code blocks (``&&`` chains split, ``| kubectl``
    pipes cut to the headroom side, comments dropped)."""
    blocks = re.findall(r"^```\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    out: list[str] = []
    for block in blocks:
        for raw in block.splitlines():
            line = raw.split("  #", 1)[0].strip()
            if not re.match(r"^(headroom|make|helm|kubectl|podman|docker)\s", raw):
                continue  # captured output (indented, or not a command)
            for part in line.split(" && "):
                out.append(" ".join(part.split(" | ")[0].split()))  # README aligns with spaces
    return out


def _runs(cmd: str) -> bool:
    return cmd.startswith(RUN_HERE)


def assert_untouched(clone: Path) -> None:
    """Nothing the commands wrote is in the repository: every new or changed file of the
    clone is git-ignored (``.headroom/`` holds charts, reports and local state)."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=clone, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert status == "", f"README commands wrote into the repository:\n{status}"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """(clone dir, environment whose PATH finds the fresh venv's ``headroom``)."""
    root = tmp_path_factory.mktemp("fresh")
    clone = fresh_clone.clone(root / "headroom")
    env = {
        **fresh_clone.install(clone, root / "venv", editable=True),
        "HEADROOM_LOCAL_DIR": str(root / "local-state"),
        "COLUMNS": "120",
    }
    yield clone, env
    subprocess.run(["headroom", "local", "down"], cwd=clone, env=env, capture_output=True)


def run(cmd: str, clone: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        shlex.split(cmd), cwd=clone, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"{cmd}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    if "--json" in cmd:
        json.loads(proc.stdout)
    return proc


def test_every_readme_command_is_run_or_listed_with_a_reason() -> None:
    commands = readme_commands()
    assert len(commands) >= 15
    for cmd in commands:
        listed = [p for p in NOT_RUN if cmd.startswith(p)]
        assert _runs(cmd) != bool(listed), f"neither run nor listed (or both): {cmd}"
    assert SEED_IN_README in " ".join(commands)


def test_every_file_a_readme_command_names_is_in_the_repository() -> None:
    """`alerts test --alerts-config alerts.yaml` named files nobody had; outputs go to
    .headroom/ (git-ignored) or dist/ (make image)."""
    for cmd in readme_commands():
        for word in shlex.split(cmd)[1:]:
            if re.fullmatch(r"[\w.-]+(/[\w.-]+)*\.(ya?ml|csv|ics|json|png)", word):
                assert word.startswith((".headroom/", "dist/")) or (REPO / word).is_file(), (
                    f"{cmd}: {word} is not in the repository"
                )


def test_the_example_alerts_config_has_every_sink_the_example_policy_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The README's `alerts test` line: the shipped policy's sinks resolve against the
    shipped alerts config (with the routing key it asks for set; nothing is sent)."""
    from headroom.cli.policy import read_policy
    from headroom.controller.alerts.config import build_bindings, load_alerts_config

    (line,) = [c for c in readme_commands() if c.startswith("headroom alerts test")]
    args = shlex.split(line)
    policy = REPO / args[args.index("--policy") + 1]
    config = REPO / args[args.index("--alerts-config") + 1]
    monkeypatch.setenv("HEADROOM_PAGERDUTY_KEY", "0123456789abcdef0123456789abcdef")
    bindings = build_bindings(read_policy(policy), load_alerts_config(config))
    assert "oncall-pagerduty" in [b.sink.name for b in bindings]


def test_the_planning_commands_run_as_written(fresh: tuple[Path, dict[str, str]]) -> None:
    clone, env = fresh
    planning = [
        c
        for c in readme_commands()
        if _runs(c) and c.split()[1] in ("calendar", "policy", "forecast", "plan", "simulate")
    ]
    assert len(planning) >= 5, planning
    for cmd in planning:
        proc = run(cmd, clone, env)
        if cmd.startswith("headroom plan"):
            actions = json.loads(proc.stdout)["targets"][0]["actions"]
            assert any(a["to_units"] > a["from_units"] for a in actions), actions
        if cmd.startswith("headroom simulate"):
            assert set(json.loads(proc.stdout)["results"]) >= {"headroom", "reactive_hpa"}
        if cmd.startswith("headroom forecast"):
            # The horizon reaches past the livestream the forecast is asked about.
            assert "Singles' Day livestream" in proc.stdout, proc.stdout
    assert (clone / ".headroom" / "forecast.png").read_bytes()[:4] == b"\x89PNG"
    assert_untouched(clone)


@pytest.mark.redis
def test_the_redis_commands_run_on_a_local_cluster(
    fresh: tuple[Path, dict[str, str]], redis_cluster_factory: ClusterFactory
) -> None:
    clone, env = fresh
    cluster = redis_cluster_factory(masters=3)
    leaving = cluster.nodes[-1].node_id()
    redis_lines = [c for c in readme_commands() if c.startswith("headroom redis")]
    assert len(redis_lines) == 5
    for cmd in redis_lines:
        run(cmd.replace(SEED_IN_README, cluster.seed).replace("<node-id>", leaving), clone, env)
    assert_untouched(clone)
    masters = [n for n in cluster.nodes if "master" in n.client().execute_command("ROLE")[0]]
    assert len(masters) >= 2


@pytest.mark.redis
def test_the_local_cluster_commands_run_as_written(fresh: tuple[Path, dict[str, str]]) -> None:
    clone, env = fresh
    lines = [c for c in readme_commands() if c.startswith("headroom local")]
    assert [c.split()[2] for c in lines] == ["up", "scale", "down"]
    if any(port_in_use("127.0.0.1", p) for p in range(7300, 7306)):
        pytest.skip("ports 7300-7305 (the README's default) are in use by another run")
    for cmd in lines:
        run(cmd, clone, env)
    assert_untouched(clone)


def test_the_shipped_history_is_what_the_project_generates() -> None:
    from headroom.policies.calendars import load_calendar
    from headroom.policies.synthetic import example_history
    from headroom.policies.trace import format_trace_csv, parse_trace_csv

    examples = REPO / "policies" / "examples"
    calendar = load_calendar((examples / "demo-calendar.yaml").read_bytes(), "demo-calendar")
    shipped = (examples / "qps.csv").read_text()
    assert shipped == format_trace_csv(example_history(calendar.events)), (
        "regenerate policies/examples/qps.csv with example_history (see its docstring)"
    )
    series = parse_trace_csv(shipped, "qps.csv")
    assert len(series) == 5 * 1440 and series.step == 60.0
    past = [e for e in calendar.events if series.start <= e.start and e.end <= series.end]
    assert [e.name for e in past] == ["Livestream Nov 6", "Livestream Nov 8"]
