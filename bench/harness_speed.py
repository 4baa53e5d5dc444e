"""Speed of the test harnesses, moved out of the tests that used to assert it.

Targets (issue 14 moved them here from tests/k8s/test_conformance.py and
tests/signals/test_probe.py, where a loaded machine made them fail behaviour tests):

- the Kubernetes API emulator serves its first request (``/readyz``) within 2 s of
  being started (median of ``--repeat`` starts);
- the whole conformance module (``tests/k8s/test_conformance.py``) runs in under 60 s;
- Redis INFO probing: the p99 queueing delay an idle local ``redis-server`` shows is
  under 10 ms.

Writes the ``harness_speed`` section of docs/BENCHMARKS.md.
Run: ``.venv/bin/python bench/harness_speed.py [--repeat 5] [--no-write]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `tests` importable
    sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402
from headroom.controller.signals.redis_info import RedisInfoSource  # noqa: E402
from tests.harness.harness import KubeHarness  # noqa: E402
from tests.support.procs import free_port, kill_group, spawn, wait_until  # noqa: E402

START_TARGET_S = 2.0
MODULE_TARGET_S = 60.0
PROBE_TARGET_S = 0.010


def harness_start(folder: Path) -> float:
    started = time.monotonic()
    with KubeHarness(folder) as kube:
        with urllib.request.urlopen(f"{kube.url}/readyz", timeout=5) as resp:
            assert resp.read() == b"ok"
        return time.monotonic() - started


def conformance_module() -> float:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(ROOT / "tests" / "k8s" / "test_conformance.py")],
        check=True, capture_output=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    return time.monotonic() - started


def idle_probe_p99(folder: Path) -> float:
    port = free_port()
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = spawn([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                  "--dir", str(folder)], folder, folder / "redis.log")  # fmt: skip
    try:
        import redis

        wait_until(lambda: redis.Redis(port=port).ping(), 10, "redis-server")
        source = RedisInfoSource(f"127.0.0.1:{port}", probes=10)
        try:
            for _ in range(3):
                source.sample()
            latest = source.latest()
            assert latest is not None
            return latest.nodes[0].p99_seconds
        finally:
            source.stop()
    finally:
        kill_group(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        starts = [harness_start(Path(tmp) / f"h{i}") for i in range(args.repeat)]
        probe = statistics.median(idle_probe_p99(Path(tmp)) for _ in range(3))
    module = conformance_module()
    start = statistics.median(starts)
    rows = [
        ("API emulator: first request served", f"{start:.2f} s (median of {len(starts)})",
         f"< {START_TARGET_S:g} s", start < START_TARGET_S),
        ("tests/k8s/test_conformance.py", f"{module:.1f} s", f"< {MODULE_TARGET_S:g} s",
         module < MODULE_TARGET_S),
        ("idle redis-server probe p99", f"{probe * 1000:.2f} ms", f"< {PROBE_TARGET_S * 1000:g} ms",
         probe < PROBE_TARGET_S),
    ]  # fmt: skip
    body = "| what | measured | target | met |\n|---|---:|---:|---|\n" + "\n".join(
        f"| {what} | {got} | {target} | {'yes' if ok else 'NO'} |" for what, got, target, ok in rows
    )
    print(body)
    if not args.no_write:
        write_section("harness_speed", "Test harness speed", body)
    return 0 if all(ok for *_, ok in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
