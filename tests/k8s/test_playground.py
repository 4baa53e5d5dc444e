"""``make playground`` as a reader uses it: start it, run the three kubectl commands it
prints, press Ctrl-C, and find no process of it left."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.operator.support import wait_for
from tests.support.chart import REPO_ROOT
from tests.support.kubectl import KUBECTL_POLL, table

pytestmark = [pytest.mark.k8s, pytest.mark.redis, pytest.mark.slow]


def _processes() -> Iterator[tuple[int, list[str], str]]:
    """(pid, argv, working directory) of every process there is to read."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # gone, or not ours to read
        yield int(proc.name), argv, cwd


def _leftovers(workdir: Path) -> list[str]:
    """Processes whose working directory or command line is inside ``workdir`` (the
    operator's kubeconfig, each redis pod's --dir), or the playground's container."""
    found = []
    for pid, argv, cwd in _processes():
        cmd = " ".join(argv).strip()
        if cwd.startswith(str(workdir)) or str(workdir) in cmd:
            found.append(f"{pid}: {cmd} (cwd {cwd})")
    return found


def _operators(workdir: Path) -> list[int]:
    """Pids of ``headroom operator run`` processes using the playground's kubeconfig."""
    mine = str(workdir / "operator.kubeconfig")
    return [pid for pid, argv, _ in _processes() if "operator" in argv and mine in argv]


def _read_until(play: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    """The playground's output up to and including its first line starting with ``prefix``."""
    assert play.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = play.stdout.readline()
        assert line, "the playground exited:\n" + "".join(lines)
        lines.append(line)
        if line.startswith(prefix):
            return "".join(lines)
    raise AssertionError(f"no line starting {prefix!r} in {timeout:.0f}s:\n" + "".join(lines))


def _stopped(play: subprocess.Popen[str], workdir: Path) -> str:
    """Stop the playground; what it printed after its banner and its operator log's tail."""
    if play.poll() is None:
        os.killpg(play.pid, signal.SIGKILL)
    out = play.communicate(timeout=30)[0] or ""
    log = workdir / "operator.log"
    tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else []
    return f"playground (exit {play.returncode}) printed:\n{out}\noperator.log ends:\n" + (
        "\n".join(tail)
    )


def test_playground_runs_the_printed_commands_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    workdir = tmp_path / "playground"
    home = tmp_path / "home"
    play = subprocess.Popen(
        [sys.executable, "-m", "tests.harness.playground", "--dir", str(workdir),
         "--operator", "venv"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # a terminal's Ctrl-C goes to the whole process group
    )  # fmt: skip
    try:
        text = _read_until(play, "Ctrl-C stops", 120)
        lines = text.splitlines(keepends=True)
        commands = [ln.strip() for ln in lines if ln.startswith(("  export ", "  kubectl "))]
        assert [c.split()[:2] for c in commands] == [
            ["export", commands[0].split()[1]],
            ["kubectl", "apply"],
            ["kubectl", "get"],
            ["kubectl", "scale"],
        ], text
        kubeconfig = re.fullmatch(r"export KUBECONFIG=(\S+)", commands[0])
        assert kubeconfig is not None, text
        env = {**os.environ, "KUBECONFIG": kubeconfig[1], "HOME": str(home)}

        def kubectl(cmd: str) -> str:
            done = subprocess.run(
                shlex.split(cmd), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                timeout=60,
            )  # fmt: skip
            assert done.returncode == 0, f"{cmd}: {done.stderr}"
            return done.stdout

        apply, watch, scale = commands[1:]
        assert kubectl(apply).strip() == "rediscluster.headroom.dev/cart created"
        get = watch.removesuffix(" -w")

        def row() -> list[str]:
            rows = table(kubectl(get))
            return rows[1][:4] if len(rows) > 1 else []

        with subprocess.Popen(
            shlex.split(watch), cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True
        ) as watcher:
            try:
                wait_for(lambda: row() == ["cart", "3", "3", "Ready"], 180, "cart 3/3 Ready",
                         KUBECTL_POLL)  # fmt: skip
                # A crashed operator is restarted, as the kubelet would; the new one scales.
                operators = _operators(workdir)
                assert len(operators) == 1, operators
                os.kill(operators[0], signal.SIGKILL)
                restarted = _read_until(play, "The operator serves metrics at", 120)
                assert "The operator exited (-9); restarting it (1 of 5)" in restarted, restarted
                assert kubectl(scale).strip() == "rediscluster.headroom.dev/cart scaled"
                wait_for(lambda: row() == ["cart", "4", "4", "Ready"], 240, "cart 4/4 Ready",
                         KUBECTL_POLL)  # fmt: skip
            finally:
                watcher.terminate()
                watched = watcher.communicate(timeout=30)[0]
        assert re.search(r"^cart\s+4\s+4\s+Ready", watched, re.M), watched

        os.killpg(play.pid, signal.SIGINT)
        out, _ = play.communicate(timeout=90)
        assert play.returncode == 0, out
        assert "Stopped the operator, 8 redis-server pod(s) and the API emulator." in out, out
        assert _leftovers(workdir) == []
    except AssertionError as err:
        raise AssertionError(f"{err}\n{_stopped(play, workdir)}") from None
    finally:
        if play.poll() is None:
            os.killpg(play.pid, signal.SIGKILL)
            play.wait(30)
        if play.stdout is not None:
            play.stdout.close()
