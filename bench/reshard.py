"""Benchmark: Headroom's rebalance vs `redis-cli --cluster rebalance` on identical clusters.

Each contender gets its own freshly built cluster (3 masters, the same keys and
big keys), then 2 empty masters are met and the contender rebalances with
empty masters in use. Keys are verified afterwards. Writes the `reshard`
section of docs/BENCHMARKS.md. Usage: python bench/reshard.py [--keys N] [--big N] [--new N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402
from headroom.controller.redis.resharder import Resharder  # noqa: E402
from tests.redis.data import load, total_keys, verify  # noqa: E402
from tests.support.redis_cluster import REDIS_CLI, start_cluster  # noqa: E402

HEADROOM = str(Path(sys.executable).parent / "headroom")


def contenders() -> list[tuple[str, list[str]]]:
    return [
        ("redis-cli (defaults)", [REDIS_CLI, "--cluster", "rebalance", "{seed}",
                                  "--cluster-use-empty-masters"]),
        ("redis-cli --cluster-pipeline 1000", [REDIS_CLI, "--cluster", "rebalance", "{seed}",
                                               "--cluster-use-empty-masters",
                                               "--cluster-pipeline", "1000"]),
        ("headroom", [HEADROOM, "redis", "rebalance", "--seed", "{seed}",
                      "--use-empty-masters", "--json"]),
    ]  # fmt: skip


def run_one(
    base: Path, name: str, argv: list[str], keys: int, big: int, new: int
) -> dict[str, Any]:
    cluster = start_cluster(base, 3)
    try:
        load(cluster, keys, big=big)
        added = [cluster.start_node() for _ in range(new)]
        Resharder(cluster.seed).meet(*[n.addr for n in added])
        cmd = [a.replace("{seed}", cluster.seed) for a in argv]
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed: {proc.stderr.strip()[-500:]}")
        topo = Resharder(cluster.seed).topology()
        counts = sorted(len(m.slots) for m in topo.masters)
        moved = sum(m.keys or 0 for m in topo.masters if m.addr in {n.addr for n in added})
        bad = verify(cluster, keys, big=big)
        return {
            "name": name,
            "seconds": seconds,
            "keys_moved": moved,
            "lost": len(bad) + (keys + big - total_keys(cluster)),
            "slots": f"{counts[0]}..{counts[-1]}",
            "open": len(topo.open_slots()),
        }
    finally:
        cluster.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--big", type=int, default=4)
    ap.add_argument("--new", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="headroom-bench-"))
    rows = []
    try:
        for i, (name, argv) in enumerate(contenders()):
            row = run_one(base / f"c{i}", name, argv, args.keys, args.big, args.new)
            rows.append(row)
            print(f"{name:36s} {row['seconds']:7.2f}s  keys moved {row['keys_moved']:>8,}  "
                  f"lost {row['lost']}  slots/master {row['slots']}  open {row['open']}",
                  flush=True)  # fmt: skip
    finally:
        shutil.rmtree(base, ignore_errors=True)
    ours = rows[-1]["seconds"]
    lines = [
        f"3 masters -> {3 + args.new} masters (`--use-empty-masters`), {args.keys:,} string keys "
        f"plus {args.big} keys of 4 MB; each contender on its own freshly built cluster with the "
        "same data; every key verified afterwards.",
        "",
        "| tool | seconds | keys moved | keys/s | lost | slots per master | Headroom faster by |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        rate = r["keys_moved"] / r["seconds"]
        ratio = r["seconds"] / ours
        lines.append(
            f"| {r['name']} | {r['seconds']:.2f} | {r['keys_moved']:,} | {rate:,.0f} | {r['lost']} "
            f"| {r['slots']} | {ratio:.2f}x |"
        )
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("reshard", "Redis Cluster rebalance: Headroom vs redis-cli", body)
    return 0 if all(r["lost"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
