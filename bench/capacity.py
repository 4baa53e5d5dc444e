"""Learned capacity vs direct measurement: one Redis master's throughput at a p99 SLO.

Direct (the peer's answer): redis-benchmark runs at increasing client counts against
one redis-server, the whole sweep repeated ``--reps`` times; per client count the
median throughput and median p99 are kept, and the capacity at the SLO is the highest
median throughput whose median p99 (as redis-benchmark measures it) is under the SLO.

Learned (Headroom's answer): during the same run Headroom's Redis INFO source samples
the server as it would in production: QPS from ``INFO commandstats`` call deltas, p99
from the queueing delay of its own ``TIME`` probes. ``learn_capacity`` estimates the
knee from those samples alone; redis-benchmark's output is never shown to it. The
estimate must land within 25% of the direct figure. Writes the ``capacity`` section of
docs/BENCHMARKS.md.

Run: ``.venv/bin/python bench/capacity.py [--slo-ms 10] [--seconds 1.5] [--reps 3]``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `tests.support` and `bench` importable
    sys.path.insert(0, str(ROOT))

from rich.progress import Progress  # noqa: E402

from bench._report import write_section  # noqa: E402
from headroom.controller.signals.redis_info import RedisInfoSource  # noqa: E402
from headroom.controller.signals.redis_samples import NodeSample, unit_pairs  # noqa: E402
from headroom.policies.capacity_learning import CapacityEstimate, learn_capacity  # noqa: E402
from tests.support.procs import free_port, kill_group, spawn, wait_until  # noqa: E402

BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
TASKSET = shutil.which("taskset")
CLIENTS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# The workload: BITCOUNT over a 256 KiB bitmap (daily active users among 2M user ids).
# Its cost is in the server (tens of microseconds of popcount) while request and reply
# are a few bytes, so the master saturates before the load generator does. With a
# one-key SET on two cores, redis-benchmark and the kernel's loopback cost as much CPU
# per request as the server, and the sweep would measure the machine, not the master.
BITMAP_KEY = "dau"
BITMAP_BYTES = 256 * 1024
COMMAND = ("bitcount", BITMAP_KEY)
SAMPLE_INTERVAL = 0.5  # seconds between INFO samples; also the probes' latency window
PROBES = 20  # TIME probes per sample


@dataclass(frozen=True)
class Step:
    """One redis-benchmark run at one client count (wall-clock start and end)."""

    sweep: int
    clients: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    start: float
    end: float


@dataclass(frozen=True)
class Level:
    """All repetitions at one client count: medians, and what INFO saw meanwhile."""

    clients: int
    rps: float
    p50_ms: float
    p99_ms: float
    rps_spread: tuple[float, float]
    info_qps: float
    probe_p99_ms: float
    server_cpu: float


@dataclass(frozen=True)
class Result:
    slo_ms: float
    steps: tuple[Step, ...]
    levels: tuple[Level, ...]
    direct: float | None
    estimate: CapacityEstimate
    pinned: bool
    nice: int
    usec_per_call: float
    load: str
    pairs: tuple[tuple[float, float], ...]  # the learner's input: (QPS, p99 seconds)
    waited: float = 0.0  # seconds spent waiting for a quieter machine before the run

    @property
    def spread(self) -> float:
        """Median over client counts of (max - min) / median throughput: machine steadiness."""
        widths = [(lv.rps_spread[1] - lv.rps_spread[0]) / lv.rps for lv in self.levels]
        return statistics.median(widths)

    @property
    def error(self) -> float | None:
        learned = self.estimate.qps_per_unit
        return learned / self.direct - 1 if learned and self.direct else None

    @property
    def ok(self) -> bool:
        return self.error is not None and abs(self.error) <= 0.25


def cpu_prefix(cpu: int | None, nice: int) -> list[str]:
    """Pin to ``cpu`` (when taskset exists) and run at niceness ``nice``."""
    prefix = ["nice", "-n", str(nice)] if nice else []
    if cpu is not None and TASKSET:
        prefix += [TASKSET, "-c", str(cpu)]
    return prefix


def run_step(
    port: int, clients: int, requests: int, sweep: int, cpu: int | None, nice: int
) -> Step:
    start = time.time()
    out = subprocess.run(
        [*cpu_prefix(cpu, nice), BENCHMARK, "-h", "127.0.0.1", "-p", str(port),
         "-n", str(requests), "-c", str(clients), "--csv", *COMMAND],
        check=True, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    end = time.time()
    # --csv columns (redis-benchmark 7.0): test, rps, avg, min, p50, p95, p99, max (ms).
    row = next(r for r in csv.reader(io.StringIO(out.stdout)) if r and r[0] != "test")
    return Step(sweep, clients, requests, float(row[1]), float(row[4]), float(row[6]), start, end)


def direct_capacity(levels: list[Level], slo_ms: float) -> float | None:
    """The peer's answer: highest median throughput whose median p99 is under the SLO."""
    ok = [lv.rps for lv in levels if lv.p99_ms <= slo_ms]
    return max(ok) if ok else None


def summarise(steps: list[Step], samples: list[NodeSample]) -> list[Level]:
    levels = []
    for c in sorted({s.clients for s in steps}):
        runs = [s for s in steps if s.clients == c]
        # INFO samples wholly inside one of this level's runs (evidence only).
        inside = [
            n for n in samples for s in runs if s.start + SAMPLE_INTERVAL <= n.at <= s.end
        ]  # fmt: skip
        levels.append(
            Level(
                clients=c,
                rps=statistics.median(s.rps for s in runs),
                p50_ms=statistics.median(s.p50_ms for s in runs),
                p99_ms=statistics.median(s.p99_ms for s in runs),
                rps_spread=(min(s.rps for s in runs), max(s.rps for s in runs)),
                info_qps=_median([n.qps for n in inside]),
                probe_p99_ms=_median([n.p99_seconds * 1e3 for n in inside]),
                server_cpu=_median([n.cpu_rate for n in inside]),
            )
        )
    return levels


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def wait_for_quiet(threshold: float, max_wait: float) -> float:
    """Wait (up to ``max_wait`` s) until the 1-minute load average is under ``threshold``.

    Other engineers' test suites share this machine in bursts; starting in a lull
    makes the server's speed steadier across the run. Returns the seconds waited.
    """
    t0 = time.monotonic()
    while os.getloadavg()[0] > threshold and time.monotonic() - t0 < max_wait:
        time.sleep(5)
    return time.monotonic() - t0


def measure(slo_ms: float, seconds: float, reps: int, pin: bool, nice: int) -> Result:
    load_before = os.getloadavg()
    pinned = pin and TASKSET is not None and (os.cpu_count() or 1) >= 2
    server_cpu, bench_cpu = (0, 1) if pinned else (None, None)
    workdir = Path(tempfile.mkdtemp(prefix="headroom-bench-capacity-"))
    port = free_port()
    server = spawn(
        [*cpu_prefix(server_cpu, nice), SERVER, "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        workdir, workdir / "redis.log",
    )  # fmt: skip
    steps: list[Step] = []
    source = RedisInfoSource(f"127.0.0.1:{port}", probes=PROBES, latency_window=SAMPLE_INTERVAL)
    admin = redis.Redis(port=port, socket_timeout=10)
    try:
        wait_until(lambda: bool(admin.ping()), 10, "redis-server")
        admin.set(BITMAP_KEY, bytes(range(256)) * (BITMAP_BYTES // 256))
        source.start(interval=SAMPLE_INTERVAL)
        fastest = 10_000.0  # sizes steps: the fastest rate seen keeps every step >= seconds
        with Progress(transient=True) as progress:
            task = progress.add_task("redis-benchmark steps", total=reps * len(CLIENTS))
            for sweep in range(reps):
                # Each sweep visits the client counts in its own order, so a burst of
                # other work on the machine lands on different counts in each sweep and
                # the medians shrug it off.
                for c in random.Random(sweep).sample(CLIENTS, len(CLIENTS)):
                    requests = max(2_000, int(fastest * seconds))
                    step = run_step(port, c, requests, sweep, bench_cpu, nice)
                    steps.append(step)
                    fastest = max(fastest, step.rps)
                    progress.update(
                        task, advance=1, description=f"sweep {sweep + 1} clients={c} "
                        f"rps={step.rps:,.0f} p99={step.p99_ms:.1f}ms"
                    )  # fmt: skip
        time.sleep(2 * SAMPLE_INTERVAL)
        stats = admin.info("commandstats").get(f"cmdstat_{COMMAND[0]}", {})
        usec_per_call = float(stats.get("usec_per_call", float("nan")))
    finally:
        source.stop()
        admin.close()
        kill_group(server)
        shutil.rmtree(workdir, ignore_errors=True)
    samples = source.node_samples()
    qps, p99 = unit_pairs(samples)
    estimate = learn_capacity(qps, p99, slo_ms / 1000.0)
    levels = summarise(steps, samples)
    after = os.getloadavg()
    load = f"{load_before[0]:.1f} before, {after[0]:.1f} after (5 min: {after[1]:.1f})"
    return Result(
        slo_ms, tuple(steps), tuple(levels), direct_capacity(levels, slo_ms), estimate,
        pinned, nice, usec_per_call, load, tuple(zip(qps, p99, strict=True)),
    )  # fmt: skip


def report(result: Result) -> str:
    est, direct, slo = result.estimate, result.direct, result.slo_ms
    learned = est.qps_per_unit
    placement = (
        "redis-server pinned to CPU 0 and redis-benchmark to CPU 1 (`taskset`)"
        if result.pinned
        else "unpinned"
    )
    if result.nice:
        placement += f", both at `nice -n {result.nice}`"
    reps = len({s.sweep for s in result.steps})
    lines = [
        f"One redis-server (single master, loopback; {placement}). Workload: "
        f"`BITCOUNT` over a {BITMAP_BYTES // 1024} KiB bitmap, "
        f"{result.usec_per_call:.0f} µs of server time per call (`INFO commandstats`). "
        f"SLO: p99 ≤ {slo:g} ms. redis-benchmark swept {CLIENTS[0]}→{CLIENTS[-1]} clients, "
        f"the sweep repeated {reps} times; the table shows medians per client count. "
        "**Direct** capacity: the highest median throughput whose median redis-benchmark "
        "p99 is under the SLO. **Learned**: during the same run Headroom's Redis INFO source "
        f"sampled the server every {SAMPLE_INTERVAL:g} s (QPS from `INFO commandstats` "
        f"deltas; p99 of the queueing delay of {PROBES} `TIME` probes per sample) and "
        "`learn_capacity` estimated the knee from those samples alone.",
        "",
        "| clients | redis-benchmark rps (min–max) | p50 ms | p99 ms | under SLO "
        "| INFO QPS | probe p99 ms | server CPU |",
        "|---:|---:|---:|---:|:--:|---:|---:|---:|",
    ]
    for lv in result.levels:
        mark = "yes" if lv.p99_ms <= slo else "no"
        lo, hi = lv.rps_spread
        lines.append(
            f"| {lv.clients} | {lv.rps:,.0f} ({lo:,.0f}–{hi:,.0f}) | {lv.p50_ms:.2f} "
            f"| {lv.p99_ms:.2f} | {mark} | {lv.info_qps:,.0f} | {lv.probe_p99_ms:.2f} "
            f"| {lv.server_cpu:.2f} |"
        )
    error = result.error
    lines += [
        "",
        "| capacity at the SLO | QPS per master |",
        "|---|---:|",
        f"| direct (redis-benchmark) | {direct:,.0f} |" if direct else "| direct | none |",
        f"| Headroom learned ({est.method}, confidence {est.confidence}, "
        f"{est.points} samples, {est.points_near} near the knee) | "
        + (f"{learned:,.0f} |" if learned else "none |"),
        f"| difference | {error:+.1%} (acceptance: within ±25%) |"
        if error is not None
        else "| difference | n/a |",
        "",
        f"Learner's reason: {est.reason}. Machine load average (1 min): {result.load}; "
        "other work shares these 2 cores.",
    ]
    return "\n".join(lines)


RATIONALE = """
Why it is measured this way:

- **What redis-benchmark's p99 measures.** Each of its clients keeps one request in
  flight and times it from send to reply, so its latency is mostly the wait behind the
  other clients on Redis' single event loop once the server is busy. The learner needs
  a metric that shows the same wait. Server-side command time (`INFO commandstats`,
  `INFO latencystats`, `redis_exporter`'s command duration) does not: it times the
  command once it runs (here a constant few tens of µs), never the queue in front of
  it. `INFO latencystats` is also accumulated since server start; resetting it per step
  (`CONFIG RESETSTAT`) would window it but would still not show queueing, and a
  production source must not reset an operator's stats.
- **The probe.** The INFO source sends `TIME` probes and takes the server's clock at
  execution minus its own clock at send: the queueing delay a client sees on the way
  in. The round trip would add the probe's own wake-up and parsing after the reply,
  which in Python on a busy 2-core machine is milliseconds, larger than the SLO (it is
  why a round-trip `PING` probe read 3–6 ms p99 at one client and put the knee at a
  third of the true capacity in an earlier version). Clocks are aligned on the
  least-delayed probe of the last 10 minutes, so the same probe works against a
  server on another host. It reads lower than redis-benchmark's round trip (compare
  the two p99 columns) because the reply's wait for the end of the event-loop
  iteration is left out with the probe's own delay; past saturation the SLO
  crossing sits on the wall, where that factor barely moves the QPS.
- **The workload.** With a one-key `SET`, redis-benchmark plus the kernel's loopback
  cost as much CPU per request as redis-server, so on 2 cores neither the server nor
  the generator saturates cleanly, the server's CPU stayed near 0.5 and the knee was
  set by whichever process the scheduler starved. `BITCOUNT` puts the cost in the
  server (see the server-CPU column: it reaches ~1 core at the knee), which is the
  thing whose capacity is being measured.
- **The SLO (10 ms).** It must sit above the machine's own noise floor: with other
  tests running, p99 at one or two clients already reaches 2–5 ms from scheduler
  stalls, so a 3 ms SLO is crossed where both methods measure the neighbours, not the
  master. At 10 ms the crossing falls past saturation (server CPU near one core),
  where throughput is flat and p99 grows with the number of clients queued.
- **The knee past saturation is a wall.** QPS stays flat while p99 climbs with the
  client count, so windows far under and far over the SLO share one QPS, and the
  median per QPS bin depends on how many client counts were swept past the SLO. The
  learner therefore also looks at the windows at its top QPS: when enough of them are
  over the SLO it reports that wall, at the median QPS of the top windows that met the
  SLO (reason "saturation wall").
- **Repetitions and medians.** Other engineers' tests share the machine; single steps
  swing by ±30%. Three sweeps, each visiting the client counts in a different order,
  and medians per client count make the direct figure stable; the learner sees every
  sample of all three sweeps.
- **What still moves the numbers.** This is a 2-vCPU VM shared with other engineers'
  test suites and benchmarks. Even `BITCOUNT`'s server CPU time per call (a pure
  popcount) ranges from ~60 to ~110 µs between runs, and within a run the server's
  speed can move by half (the *rps spread* column). Both answers then drift, and
  not alike: the direct figure is a median per client count, while the learner's
  wall is found among the fastest windows, so a disturbed run reads high. In ten
  development runs the learner landed between +3% and +50% of the direct figure;
  the three outside the band all ended at a load average of 3.5 or more with large
  spreads, and the steadiest run (spread 18%) gave +3%. The estimator was
  not tuned to these runs; the bench waits for a lull (`--quiet-load`) instead and
  reports the spread so a disturbed run is visible.
- **Server CPU** (`used_cpu_*` deltas, from the same INFO samples) is shown as a
  second signal, not used by the learner: a single-threaded master whose CPU
  approaches one core is at its knee whatever the SLO; the column confirms that the
  latency knee is the server's, not the load generator's.
"""


def summary(results: list[Result]) -> str:
    lines = [
        "| run | direct QPS | learned QPS | difference | learner | rps spread | load (1 min) |",
        "|---:|---:|---:|---:|---|---:|---|",
    ]
    for i, r in enumerate(results, 1):
        direct = f"{r.direct:,.0f}" if r.direct else "none"
        learned = f"{r.estimate.qps_per_unit:,.0f}" if r.estimate.qps_per_unit else "none"
        error = f"{r.error:+.1%}" if r.error is not None else "n/a"
        lines.append(
            f"| {i} | {direct} | {learned} | {error} | {r.estimate.method}, "
            f"{r.estimate.confidence} | {r.spread:.0%} | {r.load}, waited {r.waited:.0f} s |"
        )
    verdict = "within" if all(r.ok for r in results) else "NOT within"
    lines += [
        "",
        f"Every run {verdict} ±25% (acceptance). *rps spread*: median over client counts of "
        "(max − min) / median redis-benchmark throughput across the sweeps, i.e. how much "
        "the machine's speed moved during the run. Each run starts once the 1-minute load "
        "average is under the `--quiet-load` threshold (or after `--max-wait`).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--slo-ms", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=1.5, help="target seconds per step")
    parser.add_argument("--reps", type=int, default=3, help="sweeps over the client counts")
    parser.add_argument("--runs", type=int, default=2, help="independent runs, fresh server each")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--nice", type=int, default=0, help="niceness of server and benchmark")
    parser.add_argument(
        "--quiet-load", type=float, default=2.0, help="start each run under this load average"
    )
    parser.add_argument("--max-wait", type=float, default=300, help="seconds to wait for it")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/BENCHMARKS.md")
    args = parser.parse_args()
    results = []
    for _ in range(args.runs):
        waited = wait_for_quiet(args.quiet_load, args.max_wait)
        result = measure(args.slo_ms, args.seconds, args.reps, not args.no_pin, args.nice)
        results.append(replace(result, waited=waited))
    body = "\n\n".join(
        [summary(results)] + [f"### Run {i}\n\n{report(r)}" for i, r in enumerate(results, 1)]
    )
    if args.json:
        doc = [
            {
                "direct": r.direct,
                "learned": r.estimate.qps_per_unit,
                "error": r.error,
                "estimate": r.estimate.to_json(),
                "levels": [asdict(lv) for lv in r.levels],
                "steps": [asdict(s) for s in r.steps],
                "learner_input": r.pairs,
            }
            for r in results
        ]
        print(json.dumps(doc, indent=2))
    else:
        print(body)
    if not args.no_write:
        write_section(
            "capacity", "Learned capacity vs redis-benchmark at a p99 SLO", body + "\n" + RATIONALE
        )
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
