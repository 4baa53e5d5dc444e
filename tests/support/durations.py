"""How long the suite's tests take, so ``make test``'s workers start the longest first.

``tests/durations.json`` maps a test's node id to its measured seconds (tests of
:data:`KEEP` seconds or more; the rest count as :func:`expected` guesses from their
markers). ``tests/conftest.py`` orders the collection by it: see :func:`worker_order`.
Refresh the file from a whole run's JUnit report:

    .venv/bin/pytest -n 3 --dist worksteal --junitxml=/tmp/suite.xml
    .venv/bin/python -m tests.support.durations /tmp/suite.xml
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

FILE = Path(__file__).resolve().parents[1] / "durations.json"
KEEP = 2.0  # seconds: shorter tests are not listed
# Unlisted tests, by marker (pyproject.toml's "long" and "slow").
GUESS = {"long": 300.0, "slow": 10.0}

T = TypeVar("T")


def load(path: Path = FILE) -> dict[str, float]:
    """The measured seconds by node id ({} when the file is missing)."""
    try:
        return {str(k): float(v) for k, v in json.loads(path.read_text()).items()}
    except FileNotFoundError:
        return {}


def expected(nodeid: str, markers: set[str], known: dict[str, float]) -> float:
    """Measured seconds when listed, else the guess for the longest of its markers."""
    if nodeid in known:
        return known[nodeid]
    return max((GUESS[m] for m in markers if m in GUESS), default=0.0)


def worker_order(
    items: Sequence[T], seconds: Callable[[T], float], workers: int, chained: Callable[[T], bool]
) -> list[T]:
    """``items`` laid out for pytest-xdist's ``worksteal`` on ``workers`` workers.

    worksteal hands worker *i* the *i*-th contiguous share of the list (``len // n`` of
    what is left, in turn) and an idle worker then steals the back half of the longest
    queue. The ``chained`` items (the ``long`` tests: minutes of claims against the wall
    clock, a sale or a livestream the capacity must be ready before) open the first share
    one after another, shortest first, so no two of them share the machine; a run that
    started three at once with lint beside them missed both deadlines on a loaded 2-core
    machine. Every other item then goes, longest first, to the share with the fewest
    expected seconds that has room (longest-processing-time first): each worker starts on
    a long test, and what idle workers steal late is short."""
    n = max(1, workers)
    sizes, left = [], len(items)
    for i in range(n):
        sizes.append(left // (n - i))
        left -= sizes[-1]
    shares: list[list[T]] = [[] for _ in range(n)]
    totals = [0.0] * n

    def put(item: T, share: int) -> None:
        shares[share].append(item)
        totals[share] += seconds(item)

    chain = sorted((it for it in items if chained(it)), key=seconds)  # stable
    for k, item in enumerate(chain):  # more chained items than one share holds spill over
        put(item, next(i for i in range(n) if sum(sizes[: i + 1]) > k))
    rest = (it for it in items if not chained(it))
    for item in sorted(rest, key=lambda it: -seconds(it)):  # stable: ties keep their order
        room = [i for i in range(n) if len(shares[i]) < sizes[i]]
        put(item, min(room, key=lambda i: totals[i]))
    return [item for share in shares for item in share]


def measured(junit_xml: Path) -> dict[str, float]:
    """Seconds by node id of every test in a JUnit report that took :data:`KEEP` or more."""
    found: dict[str, float] = {}
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/") + ".py"
        seconds = float(case.get("time", "0"))
        if seconds >= KEEP:
            found[f"{module}::{case.get('name')}"] = round(seconds, 1)
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.support.durations JUNIT.xml", file=sys.stderr)
        return 2
    found = measured(Path(argv[0]))
    FILE.write_text(json.dumps(dict(sorted(found.items())), indent=1) + "\n")
    print(f"Wrote {FILE} tests={len(found)} seconds={sum(found.values()):.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
