"""Benchmark: Headroom vs `redis-cli --cluster` growing a Redis Cluster 3->6 and shrinking it 6->3.

Each contender gets its own freshly built cluster (3 masters, the same 1,000,000
keys by default), then 3 empty masters are met (untimed) and the contender runs
what a user would run:

* scale-out: `headroom redis rebalance --use-empty-masters` vs
  `redis-cli --cluster rebalance --cluster-use-empty-masters`;
* scale-in (the 3 new masters leave): `headroom redis drain --forget` with the
  three `--node`s in one command (they drain in parallel) vs the fastest fair
  redis-cli way we know: one `redis-cli --cluster rebalance --cluster-weight
  ID=0 ...` for all three (one command computes one plan and moves every slot to
  the staying masters), then `redis-cli --cluster del-node` for each.

redis-cli runs with its defaults and with `--cluster-pipeline 1000`. Every key
is verified (count and value) after each step. Timed: the wall clock of the
commands, including Headroom's CLI start-up. Writes the `reshard` section of
docs/BENCHMARKS.md. Usage: python bench/reshard.py [--keys N] [--big N] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402
from headroom.controller.redis.resharder import Resharder  # noqa: E402
from tests.redis.data import load, total_keys, verify  # noqa: E402
from tests.support.redis_cluster import REDIS_CLI, RedisTestCluster, start_cluster  # noqa: E402

HEADROOM = str(Path(sys.executable).parent / "headroom")
NEW = 3


@dataclass(frozen=True)
class Step:
    seconds: float
    keys_moved: int
    lost: int
    slots: str  # "min..max" slots per master afterwards
    masters: int


@dataclass(frozen=True)
class Row:
    name: str
    out: Step
    into: Step


def _run(cmds: list[list[str]]) -> float:
    started = time.monotonic()
    for argv in cmds:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:4])} failed: {proc.stderr.strip()[-800:]}")
    return time.monotonic() - started


def _after(cluster: RedisTestCluster, seconds: float, moved: int, keys: int, big: int) -> Step:
    topo = Resharder(cluster.seed).topology()
    masters = [m for m in topo.masters if m.slots]
    counts = sorted(len(m.slots) for m in masters)
    if topo.open_slots() or sum(counts) != 16384:
        raise SystemExit(f"cluster not clean after the step: {topo.problems()}")
    lost = len(verify(cluster, keys, big=big)) + (keys + big - total_keys(cluster))
    return Step(seconds, moved, lost, f"{counts[0]}..{counts[-1]}", len(masters))


def _keys_on(cluster: RedisTestCluster, addrs: set[str]) -> int:
    topo = Resharder(cluster.seed).topology()
    return sum(m.keys or 0 for m in topo.masters if m.addr in addrs)


def run_one(base: Path, name: str, pipeline: int | None, keys: int, big: int) -> Row:
    cluster = start_cluster(base, 3)
    try:
        load(cluster, keys, big=big)
        added = [cluster.start_node() for _ in range(NEW)]
        Resharder(cluster.seed).meet(*[n.addr for n in added])
        new_addrs = {n.addr for n in added}
        seed = cluster.seed
        pipe = [] if pipeline is None else ["--cluster-pipeline", str(pipeline)]
        ids = [n.node_id() for n in added]
        if name == "headroom":
            out_cmds = [
                [HEADROOM, "redis", "rebalance", "--seed", seed, "--use-empty-masters", "--json"]
            ]
            in_cmds = [
                [
                    HEADROOM,
                    "redis",
                    "drain",
                    "--seed",
                    seed,
                    "--forget",
                    "--json",
                    *[a for i in ids for a in ("--node", i)],
                ]
            ]
        else:
            out_cmds = [
                [REDIS_CLI, "--cluster", "rebalance", seed, "--cluster-use-empty-masters", *pipe]
            ]
            in_cmds = [
                [
                    REDIS_CLI,
                    "--cluster",
                    "rebalance",
                    seed,
                    "--cluster-weight",
                    *[f"{i}=0" for i in ids],
                    *pipe,
                ]
            ]
            in_cmds += [[REDIS_CLI, "--cluster", "del-node", seed, i] for i in ids]
        out = _after(cluster, _run(out_cmds), _keys_on(cluster, new_addrs), keys, big)
        moving = _keys_on(cluster, new_addrs)
        into = _after(cluster, _run(in_cmds), moving, keys, big)
        if _keys_on(cluster, new_addrs):
            raise SystemExit(f"{name}: drained masters still hold keys")
        return Row(name, out, into)
    finally:
        cluster.stop()


LABEL = {
    "redis-cli": "redis-cli (defaults)",
    "redis-cli-p1000": "redis-cli --cluster-pipeline 1000",
    "headroom": "headroom",
}


def one_run(contenders: list[tuple[str, int | None]], keys: int, big: int) -> list[Row]:
    base = Path(tempfile.mkdtemp(prefix="headroom-bench-"))
    rows: list[Row] = []
    try:
        for i, (name, pipeline) in enumerate(contenders):
            row = run_one(base / f"c{i}", name, pipeline, keys, big)
            rows.append(row)
            for what, st in (("3->6", row.out), ("6->3", row.into)):
                print(f"{LABEL[name]:36s} {what} {st.seconds:7.2f}s  moved {st.keys_moved:>9,}  "
                      f"lost {st.lost}  slots/master {st.slots}", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return rows


def table(rows: list[Row], run: int) -> list[str]:
    ours = next((r for r in rows if r.name == "headroom"), None)
    out = []
    for r in rows:
        ratio = (
            f"{r.out.seconds / ours.out.seconds:.2f}x / {r.into.seconds / ours.into.seconds:.2f}x"
            if ours
            else "-"
        )
        out.append(
            f"| {run} | {LABEL[r.name]} | {r.out.seconds:.2f} | {r.out.keys_moved:,} | "
            f"{r.out.keys_moved / r.out.seconds:,.0f} | {r.out.lost} | {r.into.seconds:.2f} | "
            f"{r.into.keys_moved:,} | {r.into.keys_moved / r.into.seconds:,.0f} | {r.into.lost} "
            f"| {ratio} |"
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--big", type=int, default=0)
    ap.add_argument("--runs", type=int, default=1, help="repeat the whole comparison")
    ap.add_argument("--only", choices=sorted(LABEL))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    contenders: list[tuple[str, int | None]] = [
        ("redis-cli", None),
        ("redis-cli-p1000", 1000),
        ("headroom", None),
    ]
    if args.only:
        contenders = [c for c in contenders if c[0] == args.only]
    loads: list[str] = []
    rows: list[str] = []
    every: list[Row] = []
    for run in range(1, args.runs + 1):
        before = os.getloadavg()[0]
        got = one_run(contenders, args.keys, args.big)
        loads.append(f"run {run}: {before:.2f} -> {os.getloadavg()[0]:.2f}")
        rows += table(got, run)
        every += got
    lines = [
        f"{args.keys:,} string keys"
        + (f" plus {args.big} keys of 10 MB" if args.big else "")
        + "; each contender on its own freshly built cluster with the same data; every "
        "key verified (count and value) after each step. **3->6**: 3 empty masters met "
        "(untimed), then `headroom redis rebalance --use-empty-masters` vs `redis-cli --cluster "
        "rebalance --cluster-use-empty-masters`. **6->3**: the 3 new masters leave: one "
        "`headroom redis drain --forget --node A --node B --node C` (the three drain as "
        "parallel pairs) vs the fastest fair redis-cli way we found, one `redis-cli --cluster "
        "rebalance --cluster-weight A=0 B=0 C=0` (one plan, all slots to the staying masters) "
        "then `redis-cli --cluster del-node` for each. Seconds are the wall clock of the "
        "commands, Headroom's CLI start-up included. Load average (1 min, 2 cores) "
        + "; ".join(loads)
        + ".",
        "",
        "| run | tool | 3->6 s | keys moved | keys/s | lost | 6->3 s | keys moved | keys/s "
        "| lost | Headroom faster by (3->6 / 6->3) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write and not args.only:
        write_section("reshard", "Redis Cluster 3->6->3: Headroom vs redis-cli", body)
    return 0 if all(r.out.lost == 0 and r.into.lost == 0 for r in every) else 1


if __name__ == "__main__":
    raise SystemExit(main())
