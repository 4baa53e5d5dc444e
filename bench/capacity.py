"""Learned capacity vs direct measurement: one Redis master's QPS at a p99 SLO.

Direct: redis-benchmark (the peer tool) runs at increasing client counts against one
redis-server; the capacity at the SLO is the highest throughput whose p99 (as
redis-benchmark measures it) stays under the SLO. Learned: during the same run,
Headroom's Redis INFO source samples the server (QPS from command-counter deltas, p99
from its PING probes) and ``learn_capacity`` estimates the knee from those samples
alone. The estimate must land within 25% of the direct figure. Writes the
``capacity`` section of docs/BENCHMARKS.md.

Run: ``.venv/bin/python bench/capacity.py [--slo-ms 3] [--seconds 3]``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `tests.support` and `bench` importable
    sys.path.insert(0, str(ROOT))

from rich.progress import Progress  # noqa: E402

from bench._report import write_section  # noqa: E402
from headroom.controller.signals.redis_info import RedisInfoSource, unit_pairs  # noqa: E402
from headroom.policies.capacity_learning import CapacityEstimate, learn_capacity  # noqa: E402
from tests.support.procs import free_port, kill_group, spawn, wait_until  # noqa: E402

BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
CLIENTS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass(frozen=True)
class Step:
    clients: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    seconds: float


def run_step(port: int, clients: int, requests: int) -> Step:
    t0 = time.monotonic()
    out = subprocess.run(
        [BENCHMARK, "-h", "127.0.0.1", "-p", str(port), "-t", "set", "-r", "100000",
         "-n", str(requests), "-c", str(clients), "--csv"],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    row = next(r for r in csv.reader(io.StringIO(out.stdout)) if r and r[0] == "SET")
    return Step(
        clients, requests, float(row[1]), float(row[4]), float(row[6]), time.monotonic() - t0
    )


def direct_capacity(steps: list[Step], slo_ms: float) -> float | None:
    """The peer's answer: highest measured throughput whose p99 is under the SLO."""
    ok = [s.rps for s in steps if s.p99_ms <= slo_ms]
    return max(ok) if ok else None


def measure(slo_ms: float, seconds: float, clients: tuple[int, ...]) -> dict[str, object]:
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="headroom-bench-capacity-"))
    port = free_port()
    server = spawn(
        [SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        workdir, workdir / "redis.log",
    )  # fmt: skip
    steps: list[Step] = []
    source = RedisInfoSource(f"127.0.0.1:{port}", probes=20, latency_window=1.0)
    try:
        wait_until(
            lambda: (
                subprocess.run([CLI, "-p", str(port), "ping"], capture_output=True).returncode == 0
            ),
            10,
            "redis-server",
        )
        source.start(interval=0.25)
        rps_guess = 20_000.0
        with Progress(transient=True) as progress:
            task = progress.add_task("redis-benchmark steps", total=len(clients))
            for c in clients:
                requests = max(5_000, int(rps_guess * seconds))
                step = run_step(port, c, requests)
                steps.append(step)
                rps_guess = step.rps
                progress.update(task, advance=1, description=f"clients={c} rps={step.rps:.0f}")
        time.sleep(0.5)
    finally:
        source.stop()
        kill_group(server)
        shutil.rmtree(workdir, ignore_errors=True)
    qps, p99 = unit_pairs(source.node_samples())
    estimate = learn_capacity(qps, p99, slo_ms / 1000.0)
    direct = direct_capacity(steps, slo_ms)
    load = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    return {
        "steps": steps, "direct": direct, "estimate": estimate, "slo_ms": slo_ms, "load": load,
    }  # fmt: skip


def report(result: dict[str, object]) -> str:
    steps: list[Step] = result["steps"]  # type: ignore[assignment]
    est: CapacityEstimate = result["estimate"]  # type: ignore[assignment]
    direct: float | None = result["direct"]  # type: ignore[assignment]
    slo = result["slo_ms"]
    learned = est.qps_per_unit
    error = (learned / direct - 1) if learned and direct else float("nan")
    lines = [
        f"One redis-server (single master, loopback), `SET` with 100k random keys; SLO: p99 "
        f"≤ {slo} ms. redis-benchmark ran at increasing client counts; **direct** capacity is "
        "the highest throughput among steps whose p99 (measured by redis-benchmark) stayed "
        "under the SLO. During the same run Headroom's Redis INFO source sampled the server "
        "every 0.25 s (QPS from `total_commands_processed` deltas over wall time, p99 from 20 "
        "timed `PING`s per sample over a 1 s window) and `learn_capacity` estimated the knee "
        "from those samples alone.",
        "",
        "| clients | requests | redis-benchmark rps | p50 ms | p99 ms | under SLO |",
        "|---:|---:|---:|---:|---:|:--:|",
    ]
    for s in steps:
        mark = "yes" if s.p99_ms <= float(str(slo)) else "no"
        lines.append(
            f"| {s.clients} | {s.requests} | {s.rps:,.0f} | {s.p50_ms:.3f} | {s.p99_ms:.3f} "
            f"| {mark} |"
        )
    lines += [
        "",
        "| capacity at the SLO | QPS per master |",
        "|---|---:|",
        f"| direct (redis-benchmark) | {direct:,.0f} |" if direct else "| direct | none |",
        f"| Headroom learned ({est.method}, confidence {est.confidence}, "
        f"{est.points} samples, {est.points_near} near the knee) | "
        + (f"{learned:,.0f} |" if learned else "none |"),
        f"| difference | {error:+.1%} (acceptance: within ±25%) |",
        "",
        f"Learner's reason: {est.reason}. Machine load average (1 min) during the run: "
        f"{result['load']} (other work shares these 2 cores; latency tails follow it).",
        "",
        "Why these settings: on a 2-core machine redis-benchmark and redis-server share the "
        "CPU, so the server saturates (throughput stops rising) long before latency is "
        "interesting at low client counts. Past saturation, extra clients only queue: p99 "
        "grows roughly with the client count while throughput stays flat, which is the knee "
        "both methods look for. A p99 SLO of a few milliseconds with up to 512 clients "
        "puts the crossing inside the measured range. Server-side command time "
        "(`INFO commandstats`, a few µs) never shows that queueing, which is why the INFO "
        "source times its own PINGs.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--slo-ms", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=3.0, help="target seconds per step")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/BENCHMARKS.md")
    args = parser.parse_args()
    result = measure(args.slo_ms, args.seconds, CLIENTS)
    body = report(result)
    est: CapacityEstimate = result["estimate"]  # type: ignore[assignment]
    if args.json:
        print(
            json.dumps(
                {
                    "direct": result["direct"],
                    "estimate": est.to_json(),
                    "steps": [s.__dict__ for s in result["steps"]],  # type: ignore[attr-defined]
                },
                indent=2,
            )
        )
    else:
        print(body)
    if not args.no_write:
        write_section("capacity", "Learned capacity vs redis-benchmark at a p99 SLO", body)
    direct = result["direct"]
    ok = bool(est.qps_per_unit and direct and abs(est.qps_per_unit / direct - 1) <= 0.25)  # type: ignore[operator]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
