"""The real ``kubectl`` as a subprocess, for tests against the API emulator.

    kubectl = make_kubectl(kube.kubeconfig(tmp_path / "kc", tls=True), tmp_path)
    rows = table(kubectl("get", "redisclusters", "-n", "shop").stdout)

kubectl sends tokens only over TLS, hence ``tls=True``. Used by tests/k8s/test_kubectl.py
and the operator's e2e tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path

# The first kubectl minor that finds server-side field validation in OpenAPI v3; older ones
# look only in the protobuf OpenAPI v2 document, which the emulator does not serve.
SERVER_SIDE_VALIDATION = 29

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def have_kubectl() -> bool:
    return shutil.which("kubectl") is not None


@cache
def kubectl_minor() -> int:
    """The installed kubectl's minor version (20 for Debian's 1.20)."""
    out = subprocess.run(
        ["kubectl", "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(re.sub(r"\D", "", json.loads(out.stdout)["clientVersion"]["minor"]))


# Seconds between two kubectl runs of a test polling for a state: one run costs about
# 0.13 s of CPU, so polling at wait_for's 0.2 s kept a third of a core busy on a 2-core
# machine shared with the other test worker.
KUBECTL_POLL = 1.0


def make_kubectl(kubeconfig: Path, home: Path, timeout: float = 60.0) -> Kubectl:
    """A runner: ``kubectl(*args, ok=True, stdin=None)`` -> CompletedProcess (text). With
    ``ok`` a non-zero exit fails the test with kubectl's stderr. ``home`` keeps kubectl's
    discovery cache out of the user's ~/.kube."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}
    old = kubectl_minor() < SERVER_SIDE_VALIDATION

    def run(
        *args: str, ok: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = ["kubectl", *args]
        if old and args and args[0] == "apply":
            argv.append("--validate=false")
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, input=stdin, timeout=timeout
        )
        if ok:
            assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr}"
        return done

    return run


def table(stdout: str) -> list[list[str]]:
    """kubectl's column output as rows of cells (columns are 2+ spaces apart)."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.strip().splitlines()]
