"""``make playground``: the operator against the Kubernetes API emulator, for kubectl.

Starts the API emulator (HTTPS, RBAC enforced), the kubelet emulator (each redis pod a
real ``redis-server`` on its own loopback address), the chart's CRDs, ServiceAccount and
RBAC as ``helm install`` would create them, and ``headroom operator run`` as that
ServiceAccount -- from the operator image when ``make image`` has built it, else from the
venv. Writes an admin kubeconfig and prints the commands to try; Ctrl-C (SIGINT) or
SIGTERM stops every process it started. Test infrastructure, not in the wheel: run it from
the repository root (``python -m tests.harness.playground``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from tests.harness.chart_install import install_chart
from tests.harness.harness import KubeHarness
from tests.support.chart import EXAMPLES_DIR
from tests.support.image import image_built, image_ref, operator_argv, remove_container
from tests.support.kubectl import SERVER_SIDE_VALIDATION, kubectl_minor

NAMESPACE = "headroom"
MAX_RESTARTS = 5
STARTUP_SECONDS = 120.0
PORT_LINE = re.compile(r"Serving health and metrics port=(\d+)")


def _start_operator(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("KUBECONFIG", None)
    with log.open("ab") as out:
        # Its own process group: a terminal's Ctrl-C reaches only this script, which stops
        # the operator in order (podman forwards the SIGTERM into the container).
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def _served_port(
    operator: subprocess.Popen[bytes], log: Path, since: int, stop: threading.Event
) -> int | None:
    """The metrics port the operator logged it bound (it binds port 0: no port can be taken
    between picking and binding it), or None when it exited or was stopped first."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and operator.poll() is None and not stop.is_set():
        with log.open("rb") as lines:
            lines.seek(since)
            found = PORT_LINE.findall(lines.read().decode(errors="replace"))
        if found:
            return int(found[-1])
        stop.wait(0.2)
    if not stop.is_set():
        state = f"exited ({operator.returncode})" if operator.poll() is not None else "is silent"
        print(f"error: the operator {state} before serving; see {log}", file=sys.stderr)
    return None


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def try_commands(kubeconfig: Path) -> list[str]:
    """The commands printed for the reader (the test runs them as printed)."""
    example = _display(EXAMPLES_DIR / "rediscluster-cart.yaml")
    # kubectl before 1.29 finds server-side validation only in OpenAPI v2 (not served).
    validate = " --validate=false" if kubectl_minor() < SERVER_SIDE_VALIDATION else ""
    return [
        f"export KUBECONFIG={kubeconfig}",
        f"kubectl apply -n {NAMESPACE} -f {example}{validate}",
        f"kubectl get redisclusters -n {NAMESPACE} -w",
        f"kubectl scale rediscluster/cart -n {NAMESPACE} --replicas 4",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make playground", description=__doc__)
    parser.add_argument(
        "--dir", type=Path, default=Path(".headroom/playground"), help="state and logs"
    )
    parser.add_argument(
        "--operator",
        choices=("auto", "image", "venv"),
        default="auto",
        help="auto: the image when `make image` built it, else the venv's headroom",
    )
    opts = parser.parse_args(argv)
    workdir = opts.dir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    use_image = opts.operator == "image" or (opts.operator == "auto" and image_built())

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    kube = KubeHarness(workdir / "kube", rbac=True).start()
    container = f"headroom-playground-{os.getpid()}" if use_image else None
    operator: subprocess.Popen[bytes] | None = None
    code = pods = 0
    try:
        access = install_chart(
            kube, namespace=NAMESPACE, kubeconfig=workdir / "operator.kubeconfig"
        )
        kubelet = kube.start_kubelet()
        kubeconfig = kube.kubeconfig(workdir / "kubeconfig", namespace=NAMESPACE, tls=True)
        args = [
            "-n", NAMESPACE, "--host", "127.0.0.1", "--port", "0",
            "--lease-name", access.lease_name, "--identity", "playground",
        ]  # fmt: skip
        if container is not None:
            cmd = operator_argv(container, access.kubeconfig, *args)
            source = f"image {image_ref()}"
        else:
            headroom = str(Path(sys.executable).with_name("headroom"))
            cmd = [headroom, "operator", "run", "--kubeconfig", str(access.kubeconfig), *args]
            source = f"venv ({headroom})"
        log = workdir / "operator.log"
        operator = _start_operator(cmd, log)
        port = _served_port(operator, log, 0, stop)
        if port is None:
            code = 0 if stop.is_set() else 1
        else:
            print(
                f"Playground up in {_display(workdir)}:\n"
                f"  Kubernetes API emulator  {kube.server.tls_url} (RBAC on; the chart's CRDs, "
                f"ServiceAccount and roles in namespace {NAMESPACE})\n"
                f"  kubelet emulator         redis pods as redis-server processes on 127.0.0.x\n"
                f"  operator                 {source}, as the chart's ServiceAccount; log "
                f"{_display(log)}, metrics http://127.0.0.1:{port}/metrics\n"
                "Try, in another terminal:\n"
                + "".join(f"  {line}\n" for line in try_commands(kubeconfig))
                + "Ctrl-C stops every process the playground started.",
                flush=True,
            )
        restarts = 0
        while code == 0 and not stop.wait(0.5):
            if operator.poll() is None:
                continue
            # As the kubelet restarts the chart's operator container (a lost Lease exits 3).
            if restarts == MAX_RESTARTS:
                print(
                    f"error: the operator exited ({operator.returncode}) after {restarts} "
                    f"restarts; see {_display(log)}",
                    file=sys.stderr,
                    flush=True,
                )
                code = 1
                break
            restarts += 1
            print(
                f"The operator exited ({operator.returncode}); restarting it "
                f"({restarts} of {MAX_RESTARTS}), as the kubelet would; see {_display(log)}",
                flush=True,
            )
            if container is not None:
                remove_container(container)
            since = log.stat().st_size
            operator = _start_operator(cmd, log)
            port = _served_port(operator, log, since, stop)
            if port is not None:
                print(f"The operator serves metrics at http://127.0.0.1:{port}/metrics", flush=True)
        pods = len(kubelet.pids())
    finally:
        if operator is not None and operator.poll() is None:
            operator.send_signal(signal.SIGTERM)
            try:
                operator.wait(30)
            except subprocess.TimeoutExpired:
                operator.kill()
                operator.wait(10)
        if container is not None:
            remove_container(container)
        kube.close()
    if code == 0:
        print(f"Stopped the operator, {pods} redis-server pod(s) and the API emulator.", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
