"""Runs every benchmark in bench/ in turn; each writes its own section of docs/BENCHMARKS.md."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    scripts = sorted(
        p for p in here.glob("*.py") if p.name != "run_all.py" and not p.name.startswith("_")
    )
    failed: list[str] = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        sys.argv = [str(script)]
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as done:  # every bench ends with raise SystemExit(main())
            if done.code not in (None, 0):
                failed.append(f"{script.name} (exit {done.code})")
    if failed:
        print("Benchmarks that missed their target or failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
